import Foundation

/// VPTQ's pass over the column groups of a chunk of rows (columns in visiting order, rows at unit
/// RMS): each group of `vector` columns is quantized jointly, block by block of about 128 columns with
/// GPTQ's lazy update after each block. For a group B whose values x have reached it, the entries
/// minimise ‖(x − q) · U_BB⁻¹‖² (U the upper Cholesky factor of H⁻¹): the first codebook's nearest
/// entry, or with a residual codebook the best pair among the first codebook's four nearest entries and
/// the residual entry nearest to what each leaves. The scaled error E = (x − q)·U_BB⁻¹
/// updates the later columns by −E·U_B,later. The first `exact` groups (VPTQ's outlier columns) are
/// rounded to F16 instead, their error fed forward the same way.
struct VectorSweep {
    let u: [Float]
    let cols: Int
    let vector: Int
    let codebooks: [[Float]]
    let exact: Int
    /// Per group: M = U_BB⁻¹ (vector × vector, upper triangular) and the metric A = M·Mᵀ.
    private let inverse: [[Float]]
    private let metric: [[Float]]
    /// Columns per lazy-update block: a whole number of groups.
    private let block: Int

    init(u: [Float], cols: Int, vector v: Int, codebooks: [[Float]], exact: Int = 0) {
        self.u = u
        self.cols = cols
        self.vector = v
        self.codebooks = codebooks
        self.exact = exact
        block = max(1, 128 / v) * v
        var inverse = [[Float]]()
        var metric = [[Float]]()
        for gi in 0..<(cols / v) {
            let p = gi * v
            // Back substitution on the upper triangular U_BB, column by column of M.
            var m = [Double](repeating: 0, count: v * v)
            for j in 0..<v {
                for i in stride(from: j, through: 0, by: -1) {
                    var sum = i == j ? 1.0 : 0.0
                    for k in (i + 1)..<(j + 1) { sum -= Double(u[(p + i) * cols + p + k]) * m[k * v + j] }
                    m[i * v + j] = sum / Double(u[(p + i) * cols + p + i])
                }
            }
            var a = [Float](repeating: 0, count: v * v)
            for i in 0..<v {
                for j in 0..<v {
                    var sum = 0.0
                    for k in 0..<v { sum += m[i * v + k] * m[j * v + k] }
                    a[i * v + j] = Float(sum)
                }
            }
            inverse.append(m.map { Float($0) })
            metric.append(a)
        }
        self.inverse = inverse
        self.metric = metric
    }

    /// Quantizes rows `range` of `w` (rows × cols, visiting order) in place to their decoded values; returns each
    /// codebook's indices for these rows, rows × groups in visiting order.
    func run(_ range: Range<Int>, w: UnsafeMutableBufferPointer<Float>) -> [[Int32]] {
        let n = range.count
        let v = vector
        let groups = cols / v
        let base = w.baseAddress! + range.lowerBound * cols
        var indices = [[Int32]](repeating: [Int32](repeating: 0, count: n * groups), count: codebooks.count)
        var err = [Float](repeating: 0, count: n * block)
        var x = [Float](repeating: 0, count: n * v)
        var q = [Float](repeating: 0, count: n * v)
        var i1 = 0
        while i1 < cols {
            let i2 = min(i1 + block, cols)
            for p in stride(from: i1, to: i2, by: v) {
                let gi = p / v
                for k in 0..<n {
                    for d in 0..<v {
                        x[k * v + d] = base[k * cols + p + d]
                        q[k * v + d] = 0
                    }
                }
                if gi < exact {
                    for i in 0..<(n * v) { q[i] = Float(Float16(x[i])) }
                } else {
                    let picks = entries(x, rows: n, metric: metric[gi])
                    for k in 0..<n {
                        for (b, book) in codebooks.enumerated() {
                            let e = Int(picks[b][k])
                            indices[b][k * groups + gi] = picks[b][k]
                            for d in 0..<v { q[k * v + d] += book[e * v + d] }
                        }
                    }
                }
                let m = inverse[gi]
                for k in 0..<n {
                    let row = base + k * cols
                    for j in 0..<v {
                        var e: Float = 0
                        for i in 0...j { e += (x[k * v + i] - q[k * v + i]) * m[i * v + j] }
                        err[k * block + p - i1 + j] = e.isFinite ? e : 0
                    }
                    for d in 0..<v { row[p + d] = q[k * v + d] }
                }
                // The block's later columns now: W[:, p+v..<i2] −= E_B · U[B, p+v..<i2].
                if p + v < i2 {
                    err.withUnsafeBufferPointer { ep in
                        u.withUnsafeBufferPointer { up in
                            BLAS.gemm(
                                m: n, n: i2 - p - v, k: v, a: ep.baseAddress! + (p - i1), lda: block,
                                b: up.baseAddress! + p * cols + p + v, ldb: cols, bTransposed: false,
                                c: base + p + v, ldc: cols, alpha: -1, beta: 1)
                        }
                    }
                }
            }
            if i2 < cols {
                // W[:, i2:] −= Err · U[i1:i2, i2:]
                err.withUnsafeBufferPointer { ep in
                    u.withUnsafeBufferPointer { up in
                        BLAS.gemm(
                            m: n, n: cols - i2, k: i2 - i1, a: ep.baseAddress!, lda: block,
                            b: up.baseAddress! + i1 * cols + i2, ldb: cols, bTransposed: false, c: base + i2, ldc: cols,
                            alpha: -1, beta: 1)
                    }
                }
            }
            for i in err.indices { err[i] = 0 }
            i1 = i2
        }
        return indices
    }

    /// Each row's entries, per codebook: with one codebook the entry minimising the error; with a residual
    /// codebook the best pair among the first codebook's `beam` nearest entries, each with the residual
    /// entry nearest to what it leaves.
    private func entries(_ x: [Float], rows n: Int, metric a: [Float]) -> [[Int32]] {
        let v = vector
        let first = scores(x, rows: n, book: codebooks[0], metric: a)
        let k0 = codebooks[0].count / v
        guard codebooks.count > 1 else {
            return [
                (0..<n).map { k in
                    first.withUnsafeBufferPointer { Int32(VectorKMeans.argmin($0.baseAddress! + k * k0, count: k0).0) }
                }
            ]
        }
        let beam = min(Self.beam, k0)
        var candidates = [Int32](repeating: 0, count: n * beam)
        var left = [Float](repeating: 0, count: n * beam * v)
        var row = [Float](repeating: 0, count: k0)
        for k in 0..<n {
            for e in 0..<k0 { row[e] = first[k * k0 + e] }
            for j in 0..<beam {
                let (e, _) = row.withUnsafeBufferPointer { VectorKMeans.argmin($0.baseAddress!, count: k0) }
                row[e] = .infinity
                candidates[k * beam + j] = Int32(e)
                for d in 0..<v { left[(k * beam + j) * v + d] = x[k * v + d] - codebooks[0][e * v + d] }
            }
        }
        let k1 = codebooks[1].count / v
        let second = scores(left, rows: n * beam, book: codebooks[1], metric: a)
        var out = [[Int32]](repeating: [Int32](repeating: 0, count: n), count: 2)
        second.withUnsafeBufferPointer { sp in
            for k in 0..<n {
                var best = Float.infinity
                for j in 0..<beam {
                    let c = k * beam + j
                    let (e, score) = VectorKMeans.argmin(sp.baseAddress! + c * k1, count: k1)
                    // The pair's error: the residual search's score plus rAr of what the first entry left.
                    let rar = Self.quadratic(left, at: c * v, a, v)
                    if j == 0 || score + rar < best {
                        best = score + rar
                        out[0][k] = candidates[c]
                        out[1][k] = Int32(e)
                    }
                }
            }
        }
        return out
    }

    /// r·A·rᵀ for the `v` values of `r` from `start` (A is v × v), summed as the scalar loops did.
    private static func quadratic(_ r: [Float], at start: Int, _ a: [Float], _ v: Int) -> Float {
        r.withUnsafeBufferPointer { rp in
            a.withUnsafeBufferPointer { ap in
                let x = rp.baseAddress! + start
                let am = ap.baseAddress!
                var rar: Float = 0
                for i in 0..<v {
                    var ra: Float = 0
                    for d in 0..<v { ra += x[d] * am[d &* v &+ i] }
                    rar += ra * x[i]
                }
                return rar
            }
        }
    }

    /// Entries of the first codebook tried with the residual codebook, per vector.
    static let beam = 4

    /// Per row and entry of `book`: (x − c)·A·(x − c)ᵀ − x·A·xᵀ = c·A·cᵀ − 2·(x·A)·cᵀ,
    /// as one product [x·A | 1] · [−2c | c·A·cᵀ]ᵀ added into zeros (the same bytes as scaling
    /// the product by −2 and adding the norms after it: doubling is exact, the norm is the
    /// last term of each sum).
    private func scores(_ x: [Float], rows n: Int, book: [Float], metric a: [Float]) -> [Float] {
        let v = vector
        let k = v + 1
        let entries = book.count / v
        var right = [Float](repeating: 0, count: entries * k)
        for e in 0..<entries {
            for i in 0..<v { right[e * k + i] = -2 * book[e * v + i] }
            right[e * k + v] = Self.quadratic(book, at: e * v, a, v)
        }
        var left = [Float](repeating: 1, count: n * k)
        // Through pointers: these small products cost more than the product below with bounds checks.
        a.withUnsafeBufferPointer { ap in
            let am = ap.baseAddress!
            x.withUnsafeBufferPointer { xp in
                left.withUnsafeMutableBufferPointer { lp in
                    for r in 0..<n {
                        let row = xp.baseAddress! + r &* v
                        let out = lp.baseAddress! + r &* k
                        for i in 0..<v {
                            var sum: Float = 0
                            for j in 0..<v { sum += row[j] * am[j &* v &+ i] }
                            out[i] = sum
                        }
                    }
                }
            }
        }
        var scores = [Float](repeating: 0, count: n * entries)
        left.withUnsafeBufferPointer { lp in
            right.withUnsafeBufferPointer { rp in
                scores.withUnsafeMutableBufferPointer { sp in
                    BLAS.gemm(
                        m: n, n: entries, k: k, a: lp.baseAddress!, lda: k, b: rp.baseAddress!, ldb: k,
                        bTransposed: true, c: sp.baseAddress!, ldc: entries, beta: 1)
                }
            }
        }
        return scores
    }
}
