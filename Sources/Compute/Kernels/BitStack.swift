import Foundation

/// BitStack (Wang et al.): a linear weight decomposed into stacked residual blocks, any prefix of
/// which is a smaller model. The columns are scaled by the square root of their inputs' RMS (an
/// activation-aware scaling, normalised to geometric mean 1, stored in F16). Then, `blocks` times:
/// the sign matrix of the residual (1 bit per weight) and a rank-`rank` approximation of its
/// magnitudes (randomized range finder, two power iterations, factors stored in F16) form one block,
/// which is subtracted. A prefix of k blocks decodes to (Σ_{t≤k} sign_t ⊙ U_t·V_t) / s, the sum and
/// each U_t·V_t taken term by term in order, so an independent decoder reproduces the bytes. Each
/// block records the output error left after it, Σ_ij mean(x_j²)·(W − Ŵ)_ij² — the calibration
/// inputs' diagonal in place of their full Gram — which orders blocks across matrices.
public enum BitStack {
    /// One matrix's stack.
    public struct Result: Sendable {
        /// Column scales (F16 values).
        public var scales: [Float]
        /// Per block: signs packed along each row (bit set: +), lowest bit first, rows padded to whole bytes.
        public var signs: [[UInt8]]
        /// Per block: U (rows × rank) and V (rank × cols), F16 values.
        public var u: [[Float]]
        public var v: [[Float]]
        /// Per block: the output error left once it is added.
        public var errors: [Float]
    }

    /// Range-finder columns beyond the rank.
    static let oversampling = 8
    static let seed: UInt64 = 0x4249_5453_5441_434B

    /// Decomposes the rows × cols `w`; `meanSquares` is each input's mean square over the calibration tokens.
    /// `w` is left holding the whole stack's decoded values.
    static func decompose(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, meanSquares: [Float], blocks: Int, rank: Int,
        tensor: String
    ) throws -> Result {
        let original = Array(w)
        let scales = columnScales(meanSquares)
        var residual = [Float](repeating: 0, count: rows * cols)
        for i in 0..<rows { for j in 0..<cols { residual[i * cols + j] = original[i * cols + j] * scales[j] } }
        var out = Result(scales: scales, signs: [], u: [], v: [], errors: [])
        var sum = [Float](repeating: 0, count: rows * cols)
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<blocks {
            let magnitude = residual.map { abs($0) }
            var (u, v) = try lowRank(magnitude, rows: rows, cols: cols, rank: rank, rng: &rng, tensor: tensor)
            u = u.map { Float(Float16($0)) }
            v = v.map { Float(Float16($0)) }
            let signs = packSigns(residual, rows: rows, cols: cols)
            let block = product(u, v, signs: signs, rows: rows, cols: cols, rank: rank)
            var error = 0.0
            for i in 0..<rows {
                for j in 0..<cols {
                    residual[i * cols + j] -= block[i * cols + j]
                    sum[i * cols + j] += block[i * cols + j]
                    let e = Double(original[i * cols + j] - sum[i * cols + j] / scales[j])
                    error += Double(meanSquares[j]) * e * e
                }
            }
            out.signs.append(signs)
            out.u.append(u)
            out.v.append(v)
            out.errors.append(Float(error))
        }
        for i in 0..<rows { for j in 0..<cols { w[i * cols + j] = sum[i * cols + j] / scales[j] } }
        return out
    }

    /// s_j = √rms_j over its geometric mean, in F16; an input that never fires takes 1.
    static func columnScales(_ meanSquares: [Float]) -> [Float] {
        let raw = meanSquares.map { $0 > 0 && $0.isFinite ? Double($0).squareRoot().squareRoot() : 0 }
        let live = raw.filter { $0 > 0 }
        let mean = live.isEmpty ? 1 : exp(live.reduce(0) { $0 + log($1) } / Double(live.count))
        return raw.map { r in
            let s = r > 0 ? Float(Float16(Float(r / mean))) : 1
            return s > 0 && s.isFinite ? s : 1
        }
    }

    /// sign ⊙ (U·V), U·V summed term by term (t = 0 first).
    /// Rows run in fixed chunks over `threads` (each value is computed alone: the same bytes for any count).
    static func product(
        _ u: [Float], _ v: [Float], signs: [UInt8], rows: Int, cols: Int, rank: Int,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) -> [Float] {
        let rowBytes = (cols + 7) / 8
        var out = [Float](repeating: 0, count: rows * cols)
        let chunks = Parallel.chunks(rows, chunk: 32)
        out.withUnsafeMutableBufferPointer { o in
            u.withUnsafeBufferPointer { up in
                v.withUnsafeBufferPointer { vp in
                    signs.withUnsafeBufferPointer { sp in
                        Parallel.forEach(chunks.count, threads: threads) { c in
                            for i in chunks[c] {
                                let row = o.baseAddress! + i * cols
                                for t in 0..<rank {
                                    let ut = up[i * rank + t]
                                    let vt = vp.baseAddress! + t * cols
                                    for j in 0..<cols { row[j] = row[j] + ut * vt[j] }
                                }
                                for j in 0..<cols where sp[i * rowBytes + j / 8] >> UInt8(j % 8) & 1 == 0 {
                                    row[j] = -row[j]
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Bit j of row i set when x[i, j] ≥ 0 (−0 and NaN too), rows padded to whole bytes.
    static func packSigns(_ x: [Float], rows: Int, cols: Int) -> [UInt8] {
        let rowBytes = (cols + 7) / 8
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        for i in 0..<rows {
            for j in 0..<cols where !(x[i * cols + j] < 0) { out[i * rowBytes + j / 8] |= 1 << UInt8(j % 8) }
        }
        return out
    }

    /// A rank-`rank` approximation U (rows × rank, singular values folded in) · V (rank × cols) of `m`:
    /// a seeded Gaussian range of rank + 8 columns, two power iterations, then the SVD of the small projection.
    static func lowRank(
        _ m: [Float], rows: Int, cols: Int, rank: Int, rng: inout SeededGenerator, tensor: String
    ) throws -> (u: [Float], v: [Float]) {
        let k = min(rank + oversampling, rows, cols)
        var omega = [Float](repeating: 0, count: cols * k)
        for i in omega.indices { omega[i] = gaussian(&rng) }
        var q = orthonormal(
            multiply(m, omega, rows: rows, inner: cols, cols: k, transposeA: false), rows: rows, cols: k)
        for _ in 0..<2 {
            let z = orthonormal(multiply(m, q, rows: cols, inner: rows, cols: k, transposeA: true), rows: cols, cols: k)
            q = orthonormal(multiply(m, z, rows: rows, inner: cols, cols: k, transposeA: false), rows: rows, cols: k)
        }
        // B = Qᵀ·M (k × cols), factorized exactly.
        let b = multiply(q, m, rows: k, inner: rows, cols: cols, transposeA: true)
        let r = min(rank, k)
        let f = try b.withUnsafeBufferPointer {
            try LowRank.factorize($0, rows: k, cols: cols, rank: .fixed(r), tensor: tensor)
        }
        var u = multiply(q, f.u, rows: rows, inner: k, cols: r, transposeA: false)
        var v = f.v
        if r < rank {
            u = (0..<rows).flatMap { i in (0..<rank).map { t in t < r ? u[i * r + t] : 0 } }
            v += [Float](repeating: 0, count: (rank - r) * cols)
        }
        return (u, v)
    }

    /// a (rows × inner, or its transpose stored inner × rows) · b (inner × cols).
    private static func multiply(_ a: [Float], _ b: [Float], rows: Int, inner: Int, cols: Int, transposeA: Bool)
        -> [Float]
    {
        var c = [Float](repeating: 0, count: rows * cols)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(
                        m: rows, n: cols, k: inner, a: ap.baseAddress!, lda: transposeA ? rows : inner,
                        aTransposed: transposeA, b: bp.baseAddress!, ldb: cols, bTransposed: false,
                        c: cp.baseAddress!, ldc: cols)
                }
            }
        }
        return c
    }

    /// The columns of x (rows × cols) made orthonormal by modified Gram–Schmidt in F64; a column that
    /// vanishes stays zero.
    private static func orthonormal(_ x: [Float], rows: Int, cols: Int) -> [Float] {
        var q = x.map(Double.init)
        for j in 0..<cols {
            for p in 0..<j {
                var dot = 0.0
                for i in 0..<rows { dot += q[i * cols + p] * q[i * cols + j] }
                for i in 0..<rows { q[i * cols + j] -= dot * q[i * cols + p] }
            }
            var norm = 0.0
            for i in 0..<rows { norm += q[i * cols + j] * q[i * cols + j] }
            norm = norm.squareRoot()
            for i in 0..<rows { q[i * cols + j] = norm > 1e-30 ? q[i * cols + j] / norm : 0 }
        }
        return q.map { Float($0) }
    }

    /// A standard normal value (Box–Muller).
    private static func gaussian(_ rng: inout SeededGenerator) -> Float {
        let a = (Double(rng.next() >> 11) + 0.5) / Double(1 << 53)
        let b = Double(rng.next() >> 11) / Double(1 << 53)
        return Float((-2 * log(a)).squareRoot() * cos(2 * Double.pi * b))
    }

    /// Decoded values of the first `count` blocks: (Σ_{t<count} sign_t ⊙ U_t·V_t) / s.
    public static func decode(_ r: Result, count: Int, rows: Int, cols: Int, rank: Int) -> [Float] {
        var sum = [Float](repeating: 0, count: rows * cols)
        for t in 0..<count {
            let block = product(r.u[t], r.v[t], signs: r.signs[t], rows: rows, cols: cols, rank: rank)
            for i in sum.indices { sum[i] += block[i] }
        }
        for i in 0..<rows { for j in 0..<cols { sum[i * cols + j] /= r.scales[j] } }
        return sum
    }
}
