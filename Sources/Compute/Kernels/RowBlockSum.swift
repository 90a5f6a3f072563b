import CBLAS

/// XᵀX (a Gram matrix) or XᵀY (a cross product) summed over rows that may arrive in chunks. The
/// output is cut into fixed tiles (the upper triangle's for a Gram matrix; `tile(_:)` sizes them
/// from the dimension alone), handed to `threads` as each becomes free, costliest first; each tile
/// adds the product of every 256-row block in row order straight into the sum (`sgemm` with
/// β = 1). The sum therefore does not depend on the thread count, and rows given in chunks whose
/// sizes are multiples of 256 sum to the same bytes as all rows given at once. A Gram matrix's
/// diagonal tiles go through `ssyrk` (their upper triangles only).
final class RowBlockSum {
    enum Kind {
        /// XᵀX for X [rows × n] (upper-triangle tiles; mirrored by `result`).
        case gram(n: Int)
        /// XᵀY for X [rows × p] and Y [rows × q].
        case cross(p: Int, q: Int)
    }

    static let rowBlock = 256
    /// The largest tile side: OpenBLAS's Haswell and SkylakeX sgemm take up to 768 rows of A per packing.
    static let maxTile = 768

    /// The tile side for a dimension of `n`: half of it (a multiple of 32), at most `maxTile`. Fewer,
    /// larger products pack each row block fewer times (a 1536-wide Gram of 32,768 rows takes
    /// 0.72 s in 768-wide tiles against 0.89 s in 192-wide ones on two Zen 3 cores); at least two
    /// tiles a side keep two threads busy.
    static func tile(_ n: Int) -> Int { min(maxTile, max(32, ((n + 1) / 2 + 31) / 32 * 32)) }
    let kind: Kind
    let threads: Int
    private var sum: [Float]
    /// The output tiles: rows and columns of the sum.
    private let tiles: [(Range<Int>, Range<Int>)]

    init(_ kind: Kind, threads: Int) {
        self.kind = kind
        self.threads = max(1, threads)
        let cut = { (n: Int) in let t = Self.tile(n); return stride(from: 0, to: n, by: t).map { $0..<min($0 + t, n) } }
        switch kind {
        case .gram(let n):
            let r = cut(n)
            // Off-diagonal tiles (full products) before diagonal ones (half products, `ssyrk`).
            let upper = r.indices.flatMap { i in r[i...].map { (r[i], $0) } }
            tiles = upper.filter { $0.0 != $0.1 } + upper.filter { $0.0 == $0.1 }
            sum = [Float](repeating: 0, count: n * n)
        case .cross(let p, let q):
            tiles = cut(p).flatMap { i in cut(q).map { (i, $0) } }
            sum = [Float](repeating: 0, count: p * q)
        }
    }

    /// Adds `rows` rows of X (and of Y for a cross product).
    func add(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>? = nil, rows: Int) {
        BLAS.configure()
        let blocks = Parallel.chunks(rows, chunk: Self.rowBlock)
        let (lda, ldb, other, gram): (Int, Int, UnsafePointer<Float>, Bool)
        switch kind {
        case .gram(let n): (lda, ldb, other, gram) = (n, n, x, true)
        case .cross(let p, let q): (lda, ldb, other, gram) = (p, q, y!, false)
        }
        let tiles = self.tiles
        sum.withUnsafeMutableBufferPointer { sp in
            let c = sp.baseAddress!
            Parallel.forEachInOrder(tiles.count, threads: threads) { t in
                let (ri, rj) = tiles[t]
                let diagonal = gram && ri == rj
                for rg in blocks {
                    if diagonal {
                        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(ri.count), Int32(rg.count), 1, x + rg.lowerBound * lda + ri.lowerBound,
                                    Int32(lda), 1, c + ri.lowerBound * ldb + rj.lowerBound, Int32(ldb))
                        continue
                    }
                    BLAS.gemm(m: ri.count, n: rj.count, k: rg.count, a: x + rg.lowerBound * lda + ri.lowerBound, lda: lda, aTransposed: true,
                              b: other + rg.lowerBound * ldb + rj.lowerBound, ldb: ldb, bTransposed: false,
                              c: c + ri.lowerBound * ldb + rj.lowerBound, ldc: ldb, beta: 1)
                }
            }
        }
    }

    /// The sum (a Gram matrix is mirrored into a full symmetric matrix from its upper triangle).
    func result() -> [Float] {
        guard case .gram(let n) = kind else { return sum }
        var out = sum
        for i in 0..<n { for j in 0..<i { out[i * n + j] = out[j * n + i] } }
        return out
    }
}
