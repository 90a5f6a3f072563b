import Foundation

/// The calibrated forward pass every family runs: the windows are embedded, then each layer runs
/// on the compressed model (`StudentWeights`, whose units compress each linear weight on its
/// input), with the original model (`TeacherWeights`) one layer ahead when `distill` needs its inputs.
enum CalibratedForward {
    static func run(
        layers: Int, teacher original: ModelWeights?, gramPrecision: GramPrecision,
        compute: (String, LinearCalibration?) throws -> [Float],
        embed: (WeightSupplier) throws -> Activations, layer: (Int, Activations, WeightSupplier) throws -> Activations
    ) throws {
        try withoutActuallyEscaping(compute) { compute in
            let student = StudentWeights(compute: compute, gramPrecision: gramPrecision)
            let teacher = original.map(TeacherWeights.init)
            var xs = try embed(student)
            var xt = try teacher.map { try embed($0) }
            for i in 0..<layers {
                if let teacher, let x = xt {
                    teacher.inputs = [:]
                    xt = try layer(i, x, teacher)
                    student.teacherInputs = teacher.inputs
                }
                xs = try layer(i, xs, student)
            }
        }
    }
}

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
    let gramPrecision: GramPrecision
    var teacherInputs = [String: Activations]()
    /// The last input handed out and its Gram cache: layers fed the same activations share it.
    private var last: (input: Activations, gram: GramCache)?

    init(compute: @escaping (String, LinearCalibration?) throws -> [Float], gramPrecision: GramPrecision = .f32) {
        self.compute = compute
        self.gramPrecision = gramPrecision
    }

    func tensor(_ name: String, count: Int) throws -> [Float] {
        let v = try compute(name, nil)
        guard v.count == count else {
            throw ComputeError(.shapeMismatch, "holds \(v.count) values, the config implies \(count)", tensor: name)
        }
        return v
    }

    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        let gram: GramCache
        if let l = last, l.input.rows == input.rows, l.input.width == input.width,
            Self.sameStorage(l.input.data, input.data)
        {
            gram = l.gram
        } else {
            gram = GramCache(precision: gramPrecision)
            last = (input, gram)
        }
        let v = try compute(
            base + ".weight", LinearCalibration(input: input, teacherInput: teacherInputs[base], gram: gram))
        guard v.count == out * `in` else {
            throw ComputeError(
                .shapeMismatch, "holds \(v.count) values, the config implies \(out) × \(`in`)",
                tensor: base + ".weight"
            )
        }
        return v
    }
}

extension StudentWeights {
    /// Whether two arrays share one buffer (copies of the same activations value).
    static func sameStorage(_ a: [Float], _ b: [Float]) -> Bool {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in pa.baseAddress == pb.baseAddress && pa.count == pb.count }
        }
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
