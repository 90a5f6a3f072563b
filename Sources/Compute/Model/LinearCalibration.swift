import Foundation

/// Calibration inputs of one linear layer, handed to its unit in a calibrated run: either all of
/// its input activations (encoders: statistics are computed from them when a stage asks), or
/// statistics accumulated while the inputs streamed through in chunks (decoders: no layer's
/// full input is ever held).
public struct LinearCalibration {
    enum Source {
        case activations(input: Activations, teacherInput: Activations?, gram: GramCache)
        case statistics(InputStatistics, target: TargetStatistics?)
    }
    let source: Source

    init(input: Activations, teacherInput: Activations?, gram: GramCache = GramCache()) {
        source = .activations(input: input, teacherInput: teacherInput, gram: gram)
    }

    init(statistics: InputStatistics, target: TargetStatistics?) {
        source = .statistics(statistics, target: target)
    }

    /// Calibration tokens the statistics cover.
    var tokens: Int {
        switch source {
        case .activations(let x, _, _): return x.rows
        case .statistics(let s, _): return s.rows
        }
    }

    /// XᵀX of the student's input, shared by the layers that read the same input (Q, K and V;
    /// gate and up) and by every stage of a layer (SparseGPT or GPTQ, then distill).
    func inputGram(threads: Int) throws -> [Float] { try inputHessian(threads: threads).gram }

    /// The input's XᵀX with the cache of its Hessian factors, which the layers reading the same
    /// input share as they share the XᵀX (SparseGPT, GPTQ, GGUF error feedback).
    func inputHessian(threads: Int) throws -> (gram: [Float], factors: HessianFactorCache) {
        switch source {
        case .activations(let x, _, let g): return (g.value(x, threads: threads), g.factors)
        case .statistics(let s, _): return try s.hessian()
        }
    }

    /// ‖X_j‖ of each input column (Wanda).
    func inputNorms(threads: Int) throws -> [Double] {
        switch source {
        case .activations(let x, _, _): return Wanda.inputNorms(x, threads: threads)
        case .statistics(let s, _): return try s.columnNorms()
        }
    }

    /// The layer's importance-matrix entry (what llama-imatrix collects): Σ x² of each input
    /// column over the calibration tokens, as F32, and the token count.
    func importanceEntry(threads: Int) throws -> ImportanceMatrix.Entry {
        let squares: [Double]
        switch source {
        case .activations(let x, _, _): squares = Wanda.inputNorms(x, threads: threads).map { $0 * $0 }
        case .statistics(let s, _): squares = try s.columnSquares()
        }
        return ImportanceMatrix.Entry(sums: squares.map { Float($0) }, count: Float(tokens))
    }

    /// The layer-wise reconstruction problem of `distill`: fit the student's output to the
    /// teacher's, X_t Wᵀ, where W is the original weight.
    func distillProblem(weight: [Float], out: Int, threads: Int) throws -> LayerReconstruction.Problem {
        switch source {
        case .activations(let x, let xt, let g):
            return LayerReconstruction.problem(
                student: x, teacher: xt ?? x, weight: weight, out: out, gram: g.value(x, threads: threads),
                threads: threads)
        case .statistics(let s, let target):
            guard let target else { throw ComputeError(.internalError, "distill ran without the teacher's outputs") }
            return LayerReconstruction.Problem(
                a: try s.gram(), c: target.cross.result(), targetNorm2: target.norm2, out: out, inDim: s.width)
        }
    }

    /// ‖X_s Ŵᵀ − X_t Wᵀ‖² / ‖X_t Wᵀ‖² on the first 512 calibration tokens, where W is the
    /// original weight and X_t the teacher's input (the student's own when there is no teacher).
    func outputError(
        original: UnsafeBufferPointer<Float>, compressed: UnsafeBufferPointer<Float>, out: Int, threads: Int
    ) -> Double {
        let xs: [Float], xt: [Float], n: Int
        switch source {
        case .activations(let x, let t, _):
            n = x.width
            let rows = min(x.rows, InputStatistics.headRows)
            xs = Array(x.data[0..<(rows * n)])
            xt = t.map { Array($0.data[0..<(rows * n)]) } ?? xs
        case .statistics(let s, _):
            (n, xs, xt) = (s.width, s.head, s.teacherHead ?? s.head)
        }
        let rows = xs.count / max(n, 1)
        let ys = BLAS.gemmRows(m: rows, n: out, k: n, a: xs, b: Array(compressed), bTransposed: true, threads: threads)
        let yt = BLAS.gemmRows(m: rows, n: out, k: n, a: xt, b: Array(original), bTransposed: true, threads: threads)
        var num = 0.0, den = 0.0
        for i in ys.indices {
            let d = Double(ys[i]) - Double(yt[i])
            num += d * d
            den += Double(yt[i]) * Double(yt[i])
        }
        return den > 0 ? num / den : 0
    }
}

/// A Gram matrix computed on first use, and the Hessian factors computed from it.
final class GramCache: @unchecked Sendable {
    let precision: GramPrecision
    let factors = HessianFactorCache()
    private var cached: [Float]?

    init(precision: GramPrecision = .f32) { self.precision = precision }

    func value(_ x: Activations, threads: Int) -> [Float] {
        if let c = cached { return c }
        let g = precision.gram(x, threads: threads)
        cached = g
        return g
    }
}
