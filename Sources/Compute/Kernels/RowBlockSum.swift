import CBLAS

/// XᵀX (a Gram matrix) or XᵀY (a cross product) summed over rows that may arrive in chunks: each
/// 256-row block's product is computed on its own (blocks spread over `threads`) and the products
/// are added in row order, so the sum does not depend on the thread count, and rows given in
/// chunks whose sizes are multiples of 256 sum to the same bytes as all rows given at once.
final class RowBlockSum {
    enum Kind {
        /// XᵀX for X [rows × n], by `ssyrk` (half the work of a general product).
        case gram(n: Int)
        /// XᵀY for X [rows × p] and Y [rows × q].
        case cross(p: Int, q: Int)
    }

    let kind: Kind
    let threads: Int
    private var sum: [Float]
    private var partial: [[Float]]

    init(_ kind: Kind, threads: Int) {
        self.kind = kind
        self.threads = max(1, threads)
        let size: Int
        switch kind {
        case .gram(let n): size = n * n
        case .cross(let p, let q): size = p * q
        }
        sum = [Float](repeating: 0, count: size)
        partial = [[Float]](repeating: [Float](repeating: 0, count: size), count: self.threads)
    }

    /// Adds `rows` rows of X (and of Y for a cross product).
    func add(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>? = nil, rows: Int) {
        BLAS.configure()
        let ranges = Parallel.chunks(rows, chunk: 256)
        var first = 0
        while first < ranges.count {
            let group = first..<min(first + threads, ranges.count)
            partial.withUnsafeMutableBufferPointer { pp in
                Parallel.forEach(group.count, threads: threads) { g in
                    let rg = ranges[group.lowerBound + g]
                    pp[g].withUnsafeMutableBufferPointer { cp in product(x, y, rg, into: cp.baseAddress!) }
                }
            }
            for g in 0..<group.count { addPartial(g) }
            first = group.upperBound
        }
    }

    /// The sum (a Gram matrix is mirrored into a full symmetric matrix).
    func result() -> [Float] {
        guard case .gram(let n) = kind else { return sum }
        var out = sum
        for i in 0..<n { for j in 0..<i { out[i * n + j] = out[j * n + i] } }
        return out
    }

    private func product(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>?, _ rg: Range<Int>, into c: UnsafeMutablePointer<Float>) {
        switch kind {
        case .gram(let n):
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(rg.count), 1, x + rg.lowerBound * n, Int32(n), 0, c, Int32(n))
        case .cross(let p, let q):
            BLAS.gemm(m: p, n: q, k: rg.count, a: x + rg.lowerBound * p, lda: p, aTransposed: true,
                      b: y! + rg.lowerBound * q, ldb: q, bTransposed: false, c: c, ldc: q)
        }
    }

    private func addPartial(_ g: Int) {
        switch kind {
        case .gram(let n): for i in 0..<n { for j in i..<n { sum[i * n + j] += partial[g][i * n + j] } }
        case .cross: for i in sum.indices { sum[i] += partial[g][i] }
        }
    }
}
