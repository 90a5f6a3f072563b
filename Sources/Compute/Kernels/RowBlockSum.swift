import CBLAS

/// XᵀX (a Gram matrix) or XᵀY (a cross product) summed over rows that may arrive in chunks. The
/// output is cut into fixed tiles (the upper triangle's for a Gram matrix; `tile(_:)` sizes them
/// from the dimension alone), and the 256-row blocks alternate between two partial sums (even and
/// odd blocks, counted from the first row ever added), added together by `result`. Each (tile,
/// partial) pair is one job, handed to `threads` as each becomes free, costliest first; a job adds
/// the product of each of its row blocks in order straight into its partial sum (`sgemm` with
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
    /// Row blocks alternate between this many partial sums: two threads then share even a single
    /// tile's work, so no tile has to be cut smaller to keep both busy (a 576-wide Gram of 32,768 rows
    /// takes 66 ms as one tile against 72–76 ms as three, on two Zen 3 cores).
    static let partials = 2
    /// The largest tile side: OpenBLAS's Haswell and SkylakeX sgemm take up to 768 rows of A per packing.
    static let maxTile = 768

    /// The tile side for a dimension of `n`: n cut into as few equal sides as keep each at most
    /// `maxTile`, rounded up to a multiple of 32. Fewer, larger products pack each row block fewer times.
    static func tile(_ n: Int) -> Int {
        let sides = max(1, (n + maxTile - 1) / maxTile)
        return ((n + sides - 1) / sides + 31) / 32 * 32
    }
    let kind: Kind
    let threads: Int
    /// The partial sums, back to back (`partials` × the output's size).
    private var sum: [Float]
    private let size: Int
    /// Row blocks added so far (which partial sum the next block goes to).
    private var blocksAdded = 0
    /// The output tiles: rows and columns of the sum.
    private let tiles: [(Range<Int>, Range<Int>)]

    init(_ kind: Kind, threads: Int) {
        self.kind = kind
        self.threads = max(1, threads)
        let cut = { (n: Int) in
            let t = Self.tile(n)
            return stride(from: 0, to: n, by: t).map { $0..<min($0 + t, n) }
        }
        switch kind {
        case .gram(let n):
            let r = cut(n)
            // Off-diagonal tiles (full products) before diagonal ones (half products, `ssyrk`).
            let upper = r.indices.flatMap { i in r[i...].map { (r[i], $0) } }
            tiles = upper.filter { $0.0 != $0.1 } + upper.filter { $0.0 == $0.1 }
            size = n * n
        case .cross(let p, let q):
            tiles = cut(p).flatMap { i in cut(q).map { (i, $0) } }
            size = p * q
        }
        sum = [Float](repeating: 0, count: Self.partials * size)
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
        let tiles = self.tiles, size = self.size, first = blocksAdded, partials = Self.partials
        blocksAdded += blocks.count
        sum.withUnsafeMutableBufferPointer { sp in
            // Job j: tile j / partials (in the tiles' costliest-first order), partial sum j % partials.
            Parallel.forEachInOrder(tiles.count * partials, threads: threads) { j in
                let (ri, rj) = tiles[j / partials], part = j % partials
                let diagonal = gram && ri == rj, c = sp.baseAddress! + part * size
                for (b, rg) in blocks.enumerated() where (first + b) % partials == part {
                    if diagonal {
                        cblas_ssyrk(
                            CblasRowMajor, CblasUpper, CblasTrans, Int32(ri.count), Int32(rg.count), 1,
                            x + rg.lowerBound * lda + ri.lowerBound,
                            Int32(lda), 1, c + ri.lowerBound * ldb + rj.lowerBound, Int32(ldb))
                        continue
                    }
                    BLAS.gemm(
                        m: ri.count, n: rj.count, k: rg.count, a: x + rg.lowerBound * lda + ri.lowerBound, lda: lda,
                        aTransposed: true,
                        b: other + rg.lowerBound * ldb + rj.lowerBound, ldb: ldb, bTransposed: false,
                        c: c + ri.lowerBound * ldb + rj.lowerBound, ldc: ldb, beta: 1)
                }
            }
        }
    }

    /// The sum: the partial sums added in order (a Gram matrix is then mirrored into a full
    /// symmetric matrix from its upper triangle).
    func result() -> [Float] {
        var out = Array(sum[0..<size])
        for p in 1..<Self.partials { for i in 0..<size { out[i] += sum[p * size + i] } }
        guard case .gram(let n) = kind else { return out }
        for i in 0..<n { for j in 0..<i { out[i * n + j] = out[j * n + i] } }
        return out
    }
}
