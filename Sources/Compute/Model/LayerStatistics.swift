import Foundation

/// What calibrated stages need of a linear layer's inputs, so a streamed forward pass collects
/// only that: XᵀX (SparseGPT, GPTQ, distill), column norms (Wanda), the teacher's outputs (distill).
public struct CalibrationNeeds: Sendable, Equatable {
    public var gram = false
    public var norms = false
    public var distill = false
    /// How XᵀX is computed (the calibrate stage's `hessian`).
    public var gramPrecision = GramPrecision.f32

    public init(gram: Bool = false, norms: Bool = false, distill: Bool = false, gramPrecision: GramPrecision = .f32) {
        (self.gram, self.norms, self.distill, self.gramPrecision) = (gram, norms, distill, gramPrecision)
    }
}

/// An XᵀX sum that takes rows in chunks: F32 through OpenBLAS, or from BF16-rounded rows.
protocol GramAccumulator: AnyObject {
    func add(_ x: UnsafePointer<Float>, rows: Int)
    func result() -> [Float]
}

extension RowBlockSum: GramAccumulator {
    func add(_ x: UnsafePointer<Float>, rows: Int) { add(x, nil, rows: rows) }
}

extension BF16GramSum: GramAccumulator {}

extension GramPrecision {
    /// An empty XᵀX sum of this precision for n columns.
    func accumulator(n: Int, threads: Int) -> GramAccumulator {
        switch self {
        case .f32: return RowBlockSum(.gram(n: n), threads: threads)
        case .bf16: return BF16GramSum(n: n, threads: threads)
        }
    }

    /// XᵀX of all rows of x.
    func gram(_ x: Activations, threads: Int) -> [Float] {
        let sum = accumulator(n: x.width, threads: threads)
        x.data.withUnsafeBufferPointer { sum.add($0.baseAddress!, rows: x.rows) }
        return sum.result()
    }
}

/// Statistics of one input that one or more linear layers read (Q, K and V share one), added
/// chunk by chunk of calibration tokens in order: XᵀX, Σ x² per column, and the first
/// `headRows` rows of the student's and the teacher's input (for the output error).
final class InputStatistics {
    static let headRows = 512
    let width: Int
    let threads: Int
    private(set) var rows = 0
    private let gramSum: GramAccumulator?
    private var squares: [Double]?
    private(set) var head = [Float]()
    private(set) var teacherHead: [Float]?
    /// The last `gram()`, the row count it covered and the Hessian factors computed from it.
    private var summed: (rows: Int, gram: [Float], factors: HessianFactorCache)?

    init(width: Int, needs: CalibrationNeeds, teacher: Bool, threads: Int) {
        self.width = width
        self.threads = threads
        gramSum = needs.gram || needs.distill ? needs.gramPrecision.accumulator(n: width, threads: threads) : nil
        squares = needs.norms ? [Double](repeating: 0, count: width) : nil
        teacherHead = teacher ? [] : nil
    }

    /// Adds a chunk of the student's input (and the teacher's input to the same layer).
    func add(_ x: Activations, teacher xt: Activations?) {
        precondition(x.width == width)
        x.data.withUnsafeBufferPointer { xp in
            gramSum?.add(xp.baseAddress!, rows: x.rows)
            if squares != nil { addSquares(xp, rows: x.rows) }
        }
        let take = min(x.rows, Self.headRows - rows) * width
        if take > 0 {
            head += x.data[0..<take]
            if let xt { teacherHead! += xt.data[0..<take] }
        }
        rows += x.rows
    }

    /// XᵀX of every row added (computed once; the layers sharing this input read the same array).
    func gram() throws -> [Float] { try hessian().gram }

    /// XᵀX with the cache of the Hessian factors the layers sharing this input compute from it.
    func hessian() throws -> (gram: [Float], factors: HessianFactorCache) {
        guard let g = gramSum else { throw ComputeError(.internalError, "the calibration pass did not collect XᵀX") }
        if let done = summed, done.rows == rows { return (done.gram, done.factors) }
        let made = (rows: rows, gram: g.result(), factors: HessianFactorCache())
        summed = made
        return (made.gram, made.factors)
    }

    func columnNorms() throws -> [Double] { try columnSquares().map { $0.squareRoot() } }

    /// Σ x² of each column.
    func columnSquares() throws -> [Double] {
        guard let s = squares else {
            throw ComputeError(.internalError, "the calibration pass did not collect column norms")
        }
        return s
    }

    /// Σ x² per column in row order (the same sums as over all rows at once), columns in fixed
    /// ranges over the threads.
    private func addSquares(_ xp: UnsafeBufferPointer<Float>, rows: Int) {
        squares!.withUnsafeMutableBufferPointer {
            Wanda.addColumnSquares(xp, rows: rows, width: width, into: $0, threads: threads)
        }
    }
}

/// The teacher's side of `distill` for one linear layer, added chunk by chunk: Y_tᵀX_s (its
/// outputs against the student's inputs) and ‖Y_t‖², where Y_t = X_t Wᵀ is the original layer's output.
final class TargetStatistics {
    let cross: RowBlockSum
    private(set) var norm2 = 0.0

    init(out: Int, width: Int, threads: Int) {
        cross = RowBlockSum(.cross(p: out, q: width), threads: threads)
    }

    /// Adds the teacher's outputs `yt` (without bias) for the student's input chunk `x`.
    func add(teacherOutput yt: Activations, student x: Activations) {
        yt.data.withUnsafeBufferPointer { yp in
            x.data.withUnsafeBufferPointer { xp in cross.add(yp.baseAddress!, xp.baseAddress!, rows: x.rows) }
            for v in yp { norm2 += Double(v) * Double(v) }
        }
    }
}
