import CBLAS
import Foundation

/// The calibration Hessian of a linear layer, H = 2/n · XᵀX over its n input tokens, as GPTQ and
/// SparseGPT use it: inputs that never fire get 1 on the diagonal (their weights are zeroed), the
/// diagonal is dampened by a fraction of its mean, and the upper Cholesky factor U of H⁻¹
/// (H⁻¹ = UᵀU) is returned. A Hessian that is still not positive definite is dampened ten times
/// more, up to 10× its mean diagonal, before giving up with a numerical error — never NaN weights.
/// The factorization runs in F64, in fixed tiles over `threads` (`BlockedCholesky`): the same
/// bytes for any thread count.
enum CalibrationHessian {
    /// U (cols × cols, row-major) and the dampening that made H positive definite.
    /// `gram` is XᵀX over `tokens` input rows.
    /// With `shared`, a factor of the same XᵀX (in the same column order, `ordered`) and dampening
    /// computed for an earlier layer is reused: the same bytes as computing it again.
    static func inverseFactor(
        gram g: [Float], tokens: Int, cols n: Int, damp: Double, weight w: UnsafeMutableBufferPointer<Float>,
        rows: Int, threads: Int = 1, shared: HessianFactorCache? = nil, ordered: Bool = false,
        tensor: String
    ) throws -> (u: [Float], damp: Double) {
        let key = HessianFactorCache.Key(damp: damp, ordered: ordered), f: HessianFactorCache.Factor
        if let hit = shared?.factor(key) {
            f = hit
        } else {
            f = try factor(gram: g, tokens: tokens, cols: n, damp: damp, threads: threads, tensor: tensor)
            shared?.keep(f, for: key)
        }
        for i in f.dead { for r in 0..<rows { w[r * n + i] = 0 } }
        return (f.u, f.damp)
    }

    private static func factor(gram g: [Float], tokens: Int, cols n: Int, damp: Double, threads: Int, tensor: String)
        throws -> HessianFactorCache.Factor
    {
        guard g.allSatisfy(\.isFinite) else {
            throw ComputeError(.numerical, "the calibration inputs hold NaN or infinite values", tensor: tensor)
        }
        let scale = 2 / Double(max(tokens, 1))
        var dead = [Bool](repeating: false, count: n)
        var sum = 0.0
        for i in 0..<n {
            dead[i] = g[i * n + i] == 0
            sum += dead[i] ? 1 : Double(g[i * n + i]) * scale
        }
        let mean = sum / Double(n)
        var d = damp
        while true {
            if let u = factor(g, cols: n, scale: scale, dead: dead, add: d * mean, threads: threads) {
                return .init(u: u, damp: d, dead: dead.indices.filter { dead[$0] })
            }
            guard d < 10 else { break }
            d *= 10
        }
        throw ComputeError(
            .numerical, "the calibration Hessian is not positive definite even dampened by \(d) × its mean diagonal",
            tensor: tensor)
    }

    /// U with H + add·I = (UᵀU)⁻¹, or nil when the Cholesky factorization fails. With J the
    /// reversal permutation, J H J = L Lᵀ gives H = R Rᵀ for the upper triangular R = J L J, so
    /// H⁻¹ = (R⁻¹)ᵀ R⁻¹ and U = R⁻¹ = J L⁻¹ J: one Cholesky and one triangular inverse.
    private static func factor(_ g: [Float], cols n: Int, scale: Double, dead: [Bool], add: Double, threads: Int)
        -> [Float]?
    {
        let rowChunks = Parallel.chunks(n, chunk: 64)
        // The lower triangle of J H J (+ add·I); the factorization reads nothing above it.
        var a = [Double](unsafeUninitializedCapacity: n * n) { _, count in count = n * n }
        a.withUnsafeMutableBufferPointer { ap in
            g.withUnsafeBufferPointer { gp in
                Parallel.forEach(rowChunks.count, threads: threads) { c in
                    for i in rowChunks[c] {
                        let src = gp.baseAddress! + (n - 1 - i) * n + (n - 1), dst = ap.baseAddress! + i * n
                        for j in 0..<i { dst[j] = Double(src[-j]) * scale }
                        dst[i] = dead[n - 1 - i] ? 1 + add : Double(src[-i]) * scale + add
                    }
                }
            }
        }
        guard let x = BlockedCholesky.inverseOfFactor(&a, n: n, threads: threads) else { return nil }
        var u = [Float](repeating: 0, count: n * n)
        u.withUnsafeMutableBufferPointer { up in
            x.withUnsafeBufferPointer { xp in
                Parallel.forEach(rowChunks.count, threads: threads) { c in
                    for i in rowChunks[c] {
                        let src = xp.baseAddress! + (n - 1 - i) * n + (n - 1), dst = up.baseAddress! + i * n
                        for j in i..<n { dst[j] = Float(src[-j]) }
                    }
                }
            }
        }
        return u.allSatisfy(\.isFinite) ? u : nil
    }
}

/// Factors of H⁻¹ already computed from one XᵀX, so the layers that read the same input (Q, K and
/// V; gate and up) factor it once per dampening and column order.
final class HessianFactorCache: @unchecked Sendable {
    struct Key: Hashable {
        let damp: Double
        /// The XᵀX in act order (decreasing diagonal) rather than stored order.
        let ordered: Bool
    }

    /// U, the dampening that made H positive definite, and the inputs that never fire.
    struct Factor {
        let u: [Float]
        let damp: Double
        let dead: [Int]
    }

    private var factors = [Key: Factor]()
    private let lock = NSLock()

    func factor(_ key: Key) -> Factor? { lock.withLock { factors[key] } }

    func keep(_ f: Factor, for key: Key) { lock.withLock { factors[key] = f } }
}
