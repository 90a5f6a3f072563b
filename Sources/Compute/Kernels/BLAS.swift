import CBLAS

/// OpenBLAS entry points used by the kernels. OpenBLAS itself runs single-threaded (set once):
/// parallelism comes from Squeeze's own fixed chunks, so every product is computed the same way
/// for any thread count and results are byte-identical.
enum BLAS {
    private static let configured: Void = { openblas_set_num_threads(1) }()

    static func configure() { _ = configured }

    /// c[m × n] = alpha · a[m × k] · (b[k × n] or bᵀ when `bTransposed`, b being [n × k]) + beta · c; row-major with leading dimensions.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, bTransposed: Bool,
                     c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float = 0) {
        configure()
        cblas_sgemm(CblasRowMajor, CblasNoTrans, bTransposed ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
