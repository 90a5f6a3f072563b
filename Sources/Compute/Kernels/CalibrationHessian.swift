import CBLAS

/// The calibration Hessian of a linear layer, H = 2/n · XᵀX over its n input tokens, as GPTQ and
/// SparseGPT use it: inputs that never fire get 1 on the diagonal (their weights are zeroed), the
/// diagonal is dampened by a fraction of its mean, and the upper Cholesky factor U of H⁻¹
/// (H⁻¹ = UᵀU) is returned. A Hessian that is still not positive definite is dampened ten times
/// more, up to 10× its mean diagonal, before giving up with a numerical error — never NaN weights.
enum CalibrationHessian {
    /// U (cols × cols, row-major) and the dampening that made H positive definite.
    static func inverseFactor(_ x: Activations, cols: Int, damp: Double, weight w: UnsafeMutableBufferPointer<Float>, rows: Int,
                              threads: Int, tensor: String) throws -> (u: [Float], damp: Double) {
        let g = BLAS.crossProduct(x.data, x.data, rows: x.rows, p: cols, q: cols, threads: threads)
        var base = g.map { Double($0) * 2 / Double(max(x.rows, 1)) }
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

    /// U with H + add·I = (UᵀU)⁻¹, or nil when a Cholesky factorization fails.
    private static func factor(_ base: [Double], cols: Int, add: Double) -> [Float]? {
        var h = base
        for i in 0..<cols { h[i * cols + i] += add }
        BLAS.configure()
        let n = Int32(cols)
        var info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), n, &h, n)
        if info == 0 { info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), n, &h, n) }
        guard info == 0 else { return nil }
        for i in 0..<cols { for j in (i + 1)..<max(i + 1, cols) { h[i * cols + j] = h[j * cols + i] } }
        guard LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), n, &h, n) == 0 else { return nil }
        var u = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols { for j in i..<cols { u[i * cols + j] = Float(h[i * cols + j]) } }
        return u.allSatisfy(\.isFinite) ? u : nil
    }
}
