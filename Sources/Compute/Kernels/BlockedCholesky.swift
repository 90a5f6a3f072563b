import CBLAS
import Foundation

/// Cholesky factorization and triangular inverse in F64 for the calibration Hessian, blocked in
/// fixed 128 × 128 tiles whose products (OpenBLAS, single-threaded) spread over threads. Every
/// tile is computed by the same calls in the same order whatever the thread count, so the bytes
/// are too; LAPACK's own blocked routines run on one thread and their parallel versions choose
/// their blocking by thread count.
enum BlockedCholesky {
    static let tile = 128

    /// X = L⁻¹ for the lower Cholesky factor L of the symmetric positive definite `a` (n × n,
    /// row-major, lower triangle read; overwritten by L), or nil when `a` is not positive definite.
    static func inverseOfFactor(_ a: inout [Double], n: Int, threads: Int) -> [Double]? {
        BLAS.configure()
        guard factor(&a, n: n, threads: threads) else { return nil }
        return invertLower(a, n: n, threads: threads)
    }

    /// In-place right-looking Cholesky, a = L Lᵀ (lower triangle); false when not positive definite.
    static func factor(_ a: inout [Double], n: Int, threads: Int) -> Bool {
        let blocks = Parallel.chunks(n, chunk: tile)
        let ld = Int32(n)
        return a.withUnsafeMutableBufferPointer { ap in
            let p = ap.baseAddress!
            func at(_ r: Range<Int>, _ c: Range<Int>) -> UnsafeMutablePointer<Double> {
                p + r.lowerBound * n + c.lowerBound
            }
            for (k, kr) in blocks.enumerated() {
                // A row-major lower triangle is LAPACK's column-major upper one.
                guard
                    LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "U")), Int32(kr.count), at(kr, kr), ld) == 0
                else { return false }
                let below = Array(blocks[(k + 1)...])
                guard !below.isEmpty else { break }
                // Panel: L[I,K] = A[I,K] · L[K,K]⁻ᵀ.
                Parallel.forEach(below.count, threads: threads) { t in
                    let ir = below[t]
                    cblas_dtrsm(
                        CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, Int32(ir.count),
                        Int32(kr.count), 1,
                        at(kr, kr), ld, at(ir, kr), ld)
                }
                // Trailing update of the lower tiles: A[I,J] −= L[I,K] · L[J,K]ᵀ.
                let tiles = below.indices.flatMap { i in (0...i).map { (below[i], below[$0]) } }
                Parallel.forEach(tiles.count, threads: threads) { t in
                    let (ir, jr) = tiles[t]
                    if ir == jr {
                        cblas_dsyrk(
                            CblasRowMajor, CblasLower, CblasNoTrans, Int32(ir.count), Int32(kr.count), -1, at(ir, kr),
                            ld, 1, at(ir, ir), ld)
                    } else {
                        cblas_dgemm(
                            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(ir.count), Int32(jr.count), Int32(kr.count),
                            -1,
                            at(ir, kr), ld, at(jr, kr), ld, 1, at(ir, jr), ld)
                    }
                }
            }
            return true
        }
    }

    /// L⁻¹ (lower; zeros above) for the lower triangular `l`, nil when a diagonal tile is singular.
    /// Block column J: X[J,J] = L[J,J]⁻¹, then down the rows X[I,J] = −L[I,I]⁻¹ · Σ_{J≤K<I} L[I,K] X[K,J].
    /// Columns are independent; they are handed out in order (the widest first) to whichever
    /// thread is free.
    static func invertLower(_ l: [Double], n: Int, threads: Int) -> [Double]? {
        let blocks = Parallel.chunks(n, chunk: tile)
        let ld = Int32(n)
        var x = [Double](repeating: 0, count: n * n)
        var singular = [Bool](repeating: false, count: blocks.count)
        singular.withUnsafeMutableBufferPointer { failed in
            l.withUnsafeBufferPointer { lb in
                x.withUnsafeMutableBufferPointer { xb in
                    let lp = lb.baseAddress!, xp = xb.baseAddress!
                    func at<T>(_ p: UnsafePointer<T>, _ r: Range<Int>, _ c: Range<Int>) -> UnsafePointer<T> {
                        p + r.lowerBound * n + c.lowerBound
                    }
                    func at(_ r: Range<Int>, _ c: Range<Int>) -> UnsafeMutablePointer<Double> {
                        xp + r.lowerBound * n + c.lowerBound
                    }
                    Parallel.forEachInOrder(blocks.count, threads: threads) { j in
                        let jr = blocks[j]
                        for r in jr { for c in jr.lowerBound...r { xp[r * n + c] = lp[r * n + c] } }
                        guard
                            LAPACKE_dtrtri_work(
                                LAPACK_COL_MAJOR, Int8(UInt8(ascii: "U")), Int8(UInt8(ascii: "N")), Int32(jr.count),
                                at(jr, jr), ld) == 0
                        else {
                            failed[j] = true
                            return
                        }
                        for i in (j + 1)..<blocks.count {
                            let ir = blocks[i]
                            for k in j..<i {
                                let kr = blocks[k]
                                cblas_dgemm(
                                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(ir.count), Int32(jr.count),
                                    Int32(kr.count), 1,
                                    at(lp, ir, kr), ld, at(UnsafePointer(xp), kr, jr), ld, 1, at(ir, jr), ld)
                            }
                            cblas_dtrsm(
                                CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, Int32(ir.count),
                                Int32(jr.count), -1,
                                at(lp, ir, ir), ld, at(ir, jr), ld)
                        }
                    }
                }
            }
        }
        return singular.contains(true) ? nil : x
    }
}
