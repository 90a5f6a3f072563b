import CBLAS

/// OpenBLAS entry points used by the kernels. OpenBLAS itself runs single-threaded (set once):
/// parallelism comes from Squeeze's own fixed chunks, so every product is computed the same way
/// for any thread count and results are byte-identical.
enum BLAS {
    private static let configured: Void = { openblas_set_num_threads(1) }()

    static func configure() { _ = configured }

    /// OpenBLAS's name for the kernel it selected on this CPU.
    static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// c[m × n] = alpha · a[m × k] · (b[k × n] or bᵀ when `bTransposed`, b being [n × k]) + beta · c;
    /// row-major with leading dimensions.
    static func gemm(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, aTransposed: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, bTransposed: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float = 0
    ) {
        configure()
        cblas_sgemm(
            CblasRowMajor, aTransposed ? CblasTrans : CblasNoTrans, bTransposed ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The rows of `Activations.linear`'s products of 256-token windows: a layer's outputs computed
    /// in products of this many rows get the bytes the forward pass gives them (OpenBLAS may round a
    /// row differently in a product of another row count, as its Haswell kernels do).
    static let forwardRows = 1024

    /// c[m × n] = a[m × k] · b (b is [k × n], or [n × k] when `bTransposed`), rows of `a` in fixed
    /// chunks of `chunk` spread over `threads` (identical bytes for any thread count).
    static func gemmRows(
        m: Int, n: Int, k: Int, a: [Float], b: [Float], bTransposed: Bool, threads: Int, chunk: Int = 256
    ) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        let ranges = Parallel.chunks(m, chunk: chunk)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    Parallel.forEach(ranges.count, threads: threads) { r in
                        let rg = ranges[r]
                        gemm(
                            m: rg.count, n: n, k: k, a: ap.baseAddress! + rg.lowerBound * k, lda: k, b: bp.baseAddress!,
                            ldb: bTransposed ? k : n, bTransposed: bTransposed, c: cp.baseAddress! + rg.lowerBound * n,
                            ldc: n)
                    }
                }
            }
        }
        return c
    }

    /// xᵀx for x [rows × n]: the symmetric Gram matrix (RowBlockSum: fixed output tiles of the upper
    /// triangle, each adding its 256-row blocks in order; any thread count, same bytes).
    static func gram(_ x: [Float], rows: Int, n: Int, threads: Int) -> [Float] {
        let sum = RowBlockSum(.gram(n: n), threads: threads)
        x.withUnsafeBufferPointer { sum.add($0.baseAddress!, rows: rows) }
        return sum.result()
    }

    /// xᵀ·y for x [rows × p] and y [rows × q]: a [p × q] cross-product (RowBlockSum: fixed output
    /// tiles, each adding its 256-row blocks in order, so the sum is the same for any thread count).
    static func crossProduct(_ x: [Float], _ y: [Float], rows: Int, p: Int, q: Int, threads: Int) -> [Float] {
        let sum = RowBlockSum(.cross(p: p, q: q), threads: threads)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in sum.add(xp.baseAddress!, yp.baseAddress!, rows: rows) }
        }
        return sum.result()
    }
}
