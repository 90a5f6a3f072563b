import CBLAS
import Foundation

/// Activation-aware truncated SVD: the matrix is scaled on its input side by S before the SVD and
/// by S⁻¹ after, so the truncation minimises the layer's output error on the calibration inputs
/// instead of the weights' error. SVD-LLM: S the lower Cholesky factor of XᵀX, for which
/// ‖(W − Ŵ)S‖_F² = ‖XWᵀ − XŴᵀ‖_F² exactly (the discarded σ² are the output error). ASVD:
/// S = diag(sᵢ) with sᵢ = rms(Xᵢ)^α. F64 throughout (LAPACK `dpotrf`, `dgesdd`, BLAS `dtrmm`,
/// `dtrsm`); OpenBLAS single-threaded, so the factors are the same for any thread count.
extension LowRank {
    /// How a matrix is scaled on its input side before the SVD, and back after it.
    enum InputScaling {
        /// SVD-LLM: the lower Cholesky factor of XᵀX (cols × cols, row-major, upper triangle zero).
        case cholesky([Double])
        /// ASVD: one positive factor per column.
        case columns([Double])

        /// The scaling `stage`'s method takes from one layer's calibration inputs (nil: plain SVD).
        static func of(
            _ stage: LowRankStage, calibration c: LinearCalibration, cols: Int, threads: Int, tensor: String
        ) throws -> InputScaling? {
            switch stage.method {
            case .svd: return nil
            case .svdLLM: return try whitening(gram: try c.inputGram(threads: threads), n: cols, tensor: tensor)
            case .asvd:
                let n = Double(max(c.tokens, 1))
                let norms = try c.inputNorms(threads: threads)
                return .columns(norms.map { Foundation.pow(max($0 / n.squareRoot(), 1e-12), stage.alpha) })
            }
        }

        /// SVD-LLM's scaling: the lower Cholesky factor of `gram` + δ·mean(diag)·I, δ from 1e-6 up by
        /// tenfold steps until it is positive definite (dead or collinear inputs).
        static func whitening(gram: [Float], n: Int, tensor: String) throws -> InputScaling {
            let mean = max((0..<n).reduce(0.0) { $0 + Double(gram[$1 * n + $1]) } / Double(n), 1e-30)
            var damp = 1e-6
            while damp <= 1 {
                var a = gram.map(Double.init)
                for i in 0..<n { a[i * n + i] += damp * mean }
                if LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), &a, Int32(n)) == 0 {
                    for i in 0..<n { for j in (i + 1)..<n { a[i * n + j] = 0 } }
                    return .cholesky(a)
                }
                damp *= 10
            }
            throw ComputeError(
                .numerical, "the calibration inputs' XᵀX is not positive definite even with 100% dampening",
                tensor: tensor)
        }

        /// m (rows × cols) ← m·S.
        func apply(_ m: inout [Double], rows: Int, cols: Int) {
            switch self {
            case .cholesky(let l):
                cblas_dtrmm(
                    CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, Int32(rows), Int32(cols), 1, l,
                    Int32(cols), &m, Int32(cols))
            case .columns(let s):
                for i in 0..<rows { for j in 0..<cols { m[i * cols + j] *= s[j] } }
            }
        }

        /// vt (rows × cols) ← vt·S⁻¹.
        func undo(_ vt: inout [Double], rows: Int, cols: Int) {
            switch self {
            case .cholesky(let l):
                // Solve X·L = vt.
                cblas_dtrsm(
                    CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, Int32(rows), Int32(cols), 1, l,
                    Int32(cols), &vt, Int32(cols))
            case .columns(let s):
                for i in 0..<rows { for j in 0..<cols { vt[i * cols + j] /= s[j] } }
            }
        }
    }

    /// W (rows × cols) ≈ U·V truncated where it is multiplied by `scaling`.
    static func factorize(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, rank spec: Rank, scaling: InputScaling, tensor: String
    ) throws -> Factors {
        var m = try scaled(w, rows: rows, cols: cols, scaling, tensor: tensor)
        let (s, u, vt) = try svd(&m, rows: rows, cols: cols, vectors: true, tensor: tensor)
        let k = min(rows, cols)
        let r = rank(spec, singularValues: s.map { Float($0) }, rows: rows, cols: cols)
        var v = Array(vt[0..<(r * cols)])
        scaling.undo(&v, rows: r, cols: cols)
        var uf = [Float](repeating: 0, count: rows * r)
        for i in 0..<rows { for j in 0..<r { uf[i * r + j] = Float(u[i * k + j] * s[j]) } }
        let total = s.reduce(0.0) { $0 + $1 * $1 }
        let kept = s.prefix(r).reduce(0.0) { $0 + $1 * $1 }
        return Factors(u: uf, v: v.map { Float($0) }, rank: r, retainedEnergy: total > 0 ? kept / total : 1)
    }

    /// Squared singular values (descending) of the matrix multiplied by `scaling`.
    static func scaledEnergy(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, scaling: InputScaling, tensor: String
    ) throws -> [Double] {
        var m = try scaled(w, rows: rows, cols: cols, scaling, tensor: tensor)
        return try svd(&m, rows: rows, cols: cols, vectors: false, tensor: tensor).s.map { $0 * $0 }
    }

    /// W·S in F64, after checking W is finite.
    private static func scaled(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, _ scaling: InputScaling, tensor: String
    ) throws -> [Double] {
        precondition(w.count == rows * cols)
        guard w.allSatisfy({ $0.isFinite }) else {
            throw ComputeError(
                .numerical, "holds NaN or infinity; a low-rank factorization needs finite values", tensor: tensor)
        }
        var m = w.map(Double.init)
        scaling.apply(&m, rows: rows, cols: cols)
        return m
    }

    /// LAPACK `dgesdd` of `m` (overwritten): singular values, and with `vectors` U (rows × k) and Vᵀ (k × cols).
    private static func svd(_ m: inout [Double], rows: Int, cols: Int, vectors: Bool, tensor: String) throws -> (
        s: [Double], u: [Double], vt: [Double]
    ) {
        BLAS.configure()
        guard rows > 0, cols > 0, rows < Int(Int32.max), cols < Int(Int32.max) else {
            throw ComputeError(.shapeMismatch, "cannot factorize a \(rows) × \(cols) matrix", tensor: tensor)
        }
        let k = min(rows, cols)
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: vectors ? rows * k : 1)
        var vt = [Double](repeating: 0, count: vectors ? k * cols : 1)
        let info = LAPACKE_dgesdd(
            LAPACK_ROW_MAJOR, Int8(UInt8(ascii: vectors ? "S" : "N")), Int32(rows), Int32(cols), &m, Int32(cols), &s,
            &u, Int32(vectors ? k : 1), &vt, Int32(cols))
        guard info == 0 else {
            throw ComputeError(.numerical, "SVD did not converge (LAPACK dgesdd info \(info))", tensor: tensor)
        }
        return (s, u, vt)
    }
}
