import CBLAS
import Foundation

/// The least-squares refit of a down_proj whose input channels were removed (structured OBS, as in
/// ZipLM and SlimGPT): from the calibration inputs' mean μ and covariance C, the kept columns
/// W_K' = W_K + W_R M and the bias W_R (μ_R − M μ_K), with M = C_RK C_KK⁻¹, reproduce the dense
/// layer's output from the kept channels with the least squared error over the calibration tokens
/// (C_KK dampened by `damp` × its mean diagonal). F64 throughout; fixed tiles, so the bytes do not
/// depend on the thread count.
enum FlapRefit {
    /// The refit kept columns (rows × kept.count, row-major) and bias, or nil when C_KK is not
    /// positive definite even dampened (the caller then keeps the mean compensation).
    static func refit(
        weight: [Float], rows: Int, cols n: Int, gram: [Float], tokens: Int, mean: [Double], kept: [Int],
        damp: Double = 0.01, threads: Int
    ) -> (weight: [Float], bias: [Float])? {
        let keptSet = Set(kept)
        let removed = (0..<n).filter { !keptSet.contains($0) }
        let k = kept.count, r = removed.count
        let t = Double(max(1, tokens))
        func cov(_ a: Int, _ b: Int) -> Double { Double(gram[a * n + b]) / t - mean[a] * mean[b] }
        var ckk = [Double](repeating: 0, count: k * k)
        for (i, a) in kept.enumerated() { for (j, b) in kept.enumerated() { ckk[i * k + j] = cov(a, b) } }
        let diag = (0..<k).reduce(0.0) { $0 + ckk[$1 * k + $1] } / Double(max(1, k))
        for i in 0..<k { ckk[i * k + i] += damp * max(diag, 1e-12) }
        guard r > 0 else { return nil }
        // X = C_KK⁻¹ C_KR (k × r): Cholesky L Lᵀ, then two triangular solves.
        var x = [Double](repeating: 0, count: k * r)
        for (i, a) in kept.enumerated() { for (j, b) in removed.enumerated() { x[i * r + j] = cov(a, b) } }
        guard BlockedCholesky.factor(&ckk, n: k, threads: threads) else { return nil }
        ckk.withUnsafeBufferPointer { l in
            x.withUnsafeMutableBufferPointer { xp in
                for trans in [CblasNoTrans, CblasTrans] {
                    cblas_dtrsm(
                        CblasRowMajor, CblasLeft, CblasLower, trans, CblasNonUnit, Int32(k), Int32(r), 1,
                        l.baseAddress!, Int32(k), xp.baseAddress!, Int32(r))
                }
            }
        }
        // W_K' = W_K + W_R Xᵀ; c = μ_R − Xᵀ μ_K; bias = W_R c.
        var wr = [Double](repeating: 0, count: rows * r)
        var out = [Double](repeating: 0, count: rows * k)
        for row in 0..<rows {
            for (j, c) in removed.enumerated() { wr[row * r + j] = Double(weight[row * n + c]) }
            for (j, c) in kept.enumerated() { out[row * k + j] = Double(weight[row * n + c]) }
        }
        wr.withUnsafeBufferPointer { a in
            x.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    cblas_dgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(k), Int32(r), 1, a.baseAddress!,
                        Int32(r), b.baseAddress!, Int32(r), 1, c.baseAddress!, Int32(k))
                }
            }
        }
        var shift = removed.map { mean[$0] }
        for j in 0..<r { for (i, a) in kept.enumerated() { shift[j] -= x[i * r + j] * mean[a] } }
        let bias = (0..<rows).map { row in Float((0..<r).reduce(0.0) { $0 + wr[row * r + $1] * shift[$1] }) }
        guard out.allSatisfy(\.isFinite), bias.allSatisfy(\.isFinite) else { return nil }
        return (out.map { Float($0) }, bias)
    }
}
