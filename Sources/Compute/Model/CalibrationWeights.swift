import Foundation

/// Records the names a forward pass asks for, handing out zeros.
final class RecordingWeights: WeightSupplier {
    var names = [String]()
    func tensor(_ name: String, count: Int) throws -> [Float] {
        names.append(name)
        return [Float](repeating: 0, count: count)
    }
    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        names.append(base + ".weight")
        return [Float](repeating: 0, count: out * `in`)
    }
}

/// The compressed model's weights, each computed by its unit when the forward pass asks for it.
final class StudentWeights: WeightSupplier {
    let compute: (String, LinearCalibration?) throws -> [Float]
    var teacherInputs = [String: Activations]()

    init(compute: @escaping (String, LinearCalibration?) throws -> [Float]) { self.compute = compute }

    func tensor(_ name: String, count: Int) throws -> [Float] {
        let v = try compute(name, nil)
        guard v.count == count else { throw ComputeError(.shapeMismatch, "holds \(v.count) values, the config implies \(count)", tensor: name) }
        return v
    }

    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        let v = try compute(base + ".weight", LinearCalibration(input: input, teacherInput: teacherInputs[base]))
        guard v.count == out * `in` else {
            throw ComputeError(.shapeMismatch, "holds \(v.count) values, the config implies \(out) × \(`in`)", tensor: base + ".weight")
        }
        return v
    }
}

/// The original weights, recording the input each linear layer receives.
final class TeacherWeights: WeightSupplier {
    let weights: ModelWeights
    var inputs = [String: Activations]()

    init(_ weights: ModelWeights) { self.weights = weights }

    func tensor(_ name: String, count: Int) throws -> [Float] { try weights.tensor(name, count: count) }

    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        inputs[base] = input
        return try weights.linear(base, out: out, in: `in`, input: input)
    }
}
