import CBLAS

/// The calibration Hessian of a linear layer, H = 2/n · XᵀX over its n input tokens, as GPTQ and
/// SparseGPT use it: inputs that never fire get 1 on the diagonal (their weights are zeroed), the
/// diagonal is dampened by a fraction of its mean, and the upper Cholesky factor U of H⁻¹
/// (H⁻¹ = UᵀU) is returned. A Hessian that is still not positive definite is dampened ten times
/// more, up to 10× its mean diagonal, before giving up with a numerical error — never NaN weights.
enum CalibrationHessian {
    /// U (cols × cols, row-major) and the dampening that made H positive definite.
    /// `gram` is XᵀX over `tokens` input rows.
    static func inverseFactor(gram g: [Float], tokens: Int, cols: Int, damp: Double, weight w: UnsafeMutableBufferPointer<Float>,
                              rows: Int, tensor: String) throws -> (u: [Float], damp: Double) {
        var base = g.map { Double($0) * 2 / Double(max(tokens, 1)) }
        guard base.allSatisfy(\.isFinite) else { throw ComputeError(.numerical, "the calibration inputs hold NaN or infinite values", tensor: tensor) }
        for i in 0..<cols where base[i * cols + i] == 0 {
            base[i * cols + i] = 1
            for r in 0..<rows { w[r * cols + i] = 0 }
        }
        let mean = (0..<cols).reduce(0.0) { $0 + base[$1 * cols + $1] } / Double(cols)
        var d = damp
        while true {
            if let u = factor(base, cols: cols, add: d * mean) { return (u, d) }
            guard d < 10 else { break }
            d *= 10
        }
        throw ComputeError(.numerical, "the calibration Hessian is not positive definite even dampened by \(d) × its mean diagonal", tensor: tensor)
    }

    /// U with H + add·I = (UᵀU)⁻¹, or nil when a Cholesky factorization fails. With J the
    /// reversal permutation, J H J = L Lᵀ gives H = R Rᵀ for the upper triangular R = J L J, so
    /// H⁻¹ = (R⁻¹)ᵀ R⁻¹ and U = R⁻¹: one Cholesky and one triangular inverse (no full inverse).
    private static func factor(_ base: [Double], cols n: Int, add: Double) -> [Float]? {
        var h = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { h[i * n + j] = base[(n - 1 - i) * n + (n - 1 - j)] } }
        for i in 0..<n { h[i * n + i] += add }
        BLAS.configure()
        let n32 = Int32(n)
        // A row-major matrix read column-major is its transpose, so the row-major lower factor of
        // the symmetric h is LAPACK's column-major upper one, and the row-major upper inverse is the
        // column-major lower one: the `_work` calls run in place, without LAPACKE's transposed copies
        // and NaN scans (base was checked finite).
        guard LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "U")), n32, &h, n32) == 0 else { return nil }
        var r = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)] } }
        guard LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "L")), Int8(UInt8(ascii: "N")), n32, &r, n32) == 0 else { return nil }
        var u = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { u[i * n + j] = Float(r[i * n + j]) } }
        return u.allSatisfy(\.isFinite) ? u : nil
    }
}
