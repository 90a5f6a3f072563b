import CBLAS
import Foundation

/// Activation-aware truncated SVD: the matrix is scaled on its input side by S before the SVD and
/// by S⁻¹ after, so the truncation minimises the layer's output error on the calibration inputs
/// instead of the weights' error. SVD-LLM: S the lower Cholesky factor of XᵀX, for which
/// ‖(W − Ŵ)S‖_F² = ‖XWᵀ − XŴᵀ‖_F² exactly (the discarded σ² are the output error). ASVD:
/// S = diag(sᵢ) with sᵢ = rms(Xᵢ)^α. F64 throughout (LAPACK `dpotrf`, `dgesdd`, BLAS `dtrmm`,
/// `dtrsm`); OpenBLAS single-threaded, so the factors are the same for any thread count.
extension LowRank {
    /// W (rows × cols) ≈ U·V truncated where it is whitened by the Cholesky factor of `gram` (XᵀX, cols × cols).
    static func factorizeWhitened(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, rank spec: Rank, gram: [Float], tensor: String
    ) throws -> Factors {
        precondition(gram.count == cols * cols && w.count == rows * cols)
        try checkFinite(w, tensor: tensor)
        let l = try cholesky(gram, n: cols, tensor: tensor)
        var m = w.map(Double.init)
        cblas_dtrmm(
            CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, Int32(rows), Int32(cols), 1, l,
            Int32(cols), &m, Int32(cols))
        return try truncate(m, rows: rows, cols: cols, rank: spec, tensor: tensor) { vt, r in
            // Vᵀ_r L⁻¹: solve X·L = Vᵀ_r.
            cblas_dtrsm(
                CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, Int32(r), Int32(cols), 1, l,
                Int32(cols), &vt, Int32(cols))
        }
    }

    /// W ≈ U·V truncated where its columns are multiplied by `scales` (all positive).
    static func factorizeScaled(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, rank spec: Rank, scales: [Double], tensor: String
    ) throws -> Factors {
        precondition(scales.count == cols && w.count == rows * cols)
        try checkFinite(w, tensor: tensor)
        var m = [Double](repeating: 0, count: rows * cols)
        for i in 0..<rows { for j in 0..<cols { m[i * cols + j] = Double(w[i * cols + j]) * scales[j] } }
        return try truncate(m, rows: rows, cols: cols, rank: spec, tensor: tensor) { vt, r in
            for i in 0..<r { for j in 0..<cols { vt[i * cols + j] /= scales[j] } }
        }
    }

    /// Squared singular values (descending) of the matrix as `method` scales it for the SVD.
    static func scaledEnergy(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, method: LowRankStage.Method, alpha: Double,
        calibration c: LinearCalibration, threads: Int, tensor: String
    ) throws -> [Double] {
        try checkFinite(w, tensor: tensor)
        var m = w.map(Double.init)
        if method == .svdLLM {
            let l = try cholesky(try c.inputGram(threads: threads), n: cols, tensor: tensor)
            cblas_dtrmm(
                CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, Int32(rows), Int32(cols), 1, l,
                Int32(cols), &m, Int32(cols))
        } else {
            let scales = try activationScales(c, alpha: alpha, threads: threads)
            for i in 0..<rows { for j in 0..<cols { m[i * cols + j] *= scales[j] } }
        }
        BLAS.configure()
        let k = min(rows, cols)
        var s = [Double](repeating: 0, count: k)
        var none = [Double](repeating: 0, count: 1)
        var none2 = [Double](repeating: 0, count: 1)
        let info = LAPACKE_dgesdd(
            LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int32(rows), Int32(cols), &m, Int32(cols), &s, &none, 1,
            &none2, Int32(cols))
        guard info == 0 else {
            throw ComputeError(.numerical, "SVD did not converge (LAPACK dgesdd info \(info))", tensor: tensor)
        }
        return s.map { $0 * $0 }
    }

    /// ASVD's column scales: rms(Xⱼ)^α over the calibration tokens.
    static func activationScales(_ c: LinearCalibration, alpha: Double, threads: Int) throws -> [Double] {
        let n = Double(max(c.tokens, 1))
        return try c.inputNorms(threads: threads).map { Foundation.pow(max($0 / n.squareRoot(), 1e-12), alpha) }
    }

    private static func checkFinite(_ w: UnsafeBufferPointer<Float>, tensor: String) throws {
        guard w.allSatisfy({ $0.isFinite }) else {
            throw ComputeError(
                .numerical, "holds NaN or infinity; a low-rank factorization needs finite values", tensor: tensor)
        }
    }

    /// The lower Cholesky factor of `gram` + δ·mean(diag)·I (row-major, upper triangle zero), δ from
    /// 1e-6 up by tenfold steps until it is positive definite (dead or collinear inputs).
    private static func cholesky(_ gram: [Float], n: Int, tensor: String) throws -> [Double] {
        let mean = max((0..<n).reduce(0.0) { $0 + Double(gram[$1 * n + $1]) } / Double(n), 1e-30)
        var damp = 1e-6
        while damp <= 1 {
            var a = gram.map(Double.init)
            for i in 0..<n { a[i * n + i] += damp * mean }
            if LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), &a, Int32(n)) == 0 {
                for i in 0..<n { for j in (i + 1)..<n { a[i * n + j] = 0 } }
                return a
            }
            damp *= 10
        }
        throw ComputeError(
            .numerical, "the calibration inputs' XᵀX is not positive definite even with 100% dampening",
            tensor: tensor)
    }

    /// Truncated SVD of the scaled matrix `m`; `unscale` maps the kept Vᵀ rows (r × cols, in place) back.
    private static func truncate(
        _ m: [Double], rows: Int, cols: Int, rank spec: Rank, tensor: String,
        unscale: (_ vt: inout [Double], _ r: Int) -> Void
    ) throws -> Factors {
        BLAS.configure()
        guard rows > 0, cols > 0, rows < Int(Int32.max), cols < Int(Int32.max) else {
            throw ComputeError(.shapeMismatch, "cannot factorize a \(rows) × \(cols) matrix", tensor: tensor)
        }
        let k = min(rows, cols)
        var a = m
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: rows * k)
        var vt = [Double](repeating: 0, count: k * cols)
        let info = LAPACKE_dgesdd(
            LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(rows), Int32(cols), &a, Int32(cols), &s, &u, Int32(k),
            &vt, Int32(cols))
        guard info == 0 else {
            throw ComputeError(.numerical, "SVD did not converge (LAPACK dgesdd info \(info))", tensor: tensor)
        }
        let r = rank(spec, singularValues: s.map { Float($0) }, rows: rows, cols: cols)
        var v = Array(vt[0..<(r * cols)])
        unscale(&v, r)
        var uf = [Float](repeating: 0, count: rows * r)
        for i in 0..<rows { for j in 0..<r { uf[i * r + j] = Float(u[i * k + j] * s[j]) } }
        let total = s.reduce(0.0) { $0 + $1 * $1 }
        let kept = s.prefix(r).reduce(0.0) { $0 + $1 * $1 }
        return Factors(u: uf, v: v.map { Float($0) }, rank: r, retainedEnergy: total > 0 ? kept / total : 1)
    }
}
