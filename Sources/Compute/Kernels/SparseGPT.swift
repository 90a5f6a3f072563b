/// SparseGPT (Frantar & Alistarh): prunes a linear layer's weight column by column with the
/// calibration Hessian, folding each pruned weight's error into the columns not yet visited
/// (OBS updates through U, the Cholesky factor of H⁻¹; lazy updates of 128-column blocks through
/// OpenBLAS). Unstructured: at each block's start the block's weights with the smallest
/// w² / U_jj² across all rows are chosen (exactly round(s · rows · block) of them; ties to the
/// lower index). N:M: in every group of M columns, each row drops the N smallest by the same score.
/// Rows run in fixed chunks of 32 over `threads`: identical bytes for any thread count.
public enum SparseGPT {
    public enum Pattern: Equatable, Sendable {
        case unstructured(sparsity: Double)
        case nm(n: Int, m: Int)
    }

    /// Prunes the rows × cols weight `w` in place; returns the dampening the Hessian needed.
    public static func prune(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, input x: Activations, gram: [Float]? = nil,
        pattern: Pattern, damp: Double = 0.01, threads: Int, tensor: String
    ) throws -> Double {
        precondition(x.width == cols)
        return try prune(
            w, rows: rows, cols: cols, gram: gram ?? BLAS.gram(x.data, rows: x.rows, n: cols, threads: threads),
            tokens: x.rows,
            pattern: pattern, damp: damp, threads: threads, tensor: tensor)
    }

    /// Prunes with the Hessian of `tokens` calibration inputs given as their XᵀX.
    public static func prune(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, gram: [Float], tokens: Int,
        pattern: Pattern, damp: Double = 0.01, threads: Int, tensor: String
    ) throws -> Double {
        try prune(
            w, rows: rows, cols: cols, gram: gram, tokens: tokens, pattern: pattern, damp: damp, factors: nil,
            threads: threads, tensor: tensor)
    }

    /// Prunes with a Hessian factor shared with the other layers that read the same input.
    static func prune(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, gram: [Float], tokens: Int,
        pattern: Pattern, damp: Double, factors: HessianFactorCache?, threads: Int, tensor: String
    ) throws -> Double {
        precondition(w.count == rows * cols && gram.count == cols * cols)
        let (u, used) = try CalibrationHessian.inverseFactor(
            gram: gram, tokens: tokens, cols: cols, damp: damp, weight: w, rows: rows, threads: threads,
            shared: factors, tensor: tensor)
        var block = 128
        if case .nm(_, let m) = pattern { block = max(m, 128 / m * m) }
        let chunks = Parallel.chunks(rows, chunk: 32)
        var mask = [Bool](repeating: false, count: rows * block)
        var i1 = 0
        while i1 < cols {
            let i2 = min(i1 + block, cols)
            if case .unstructured(let s) = pattern {
                blockMask(
                    w, cols: cols, rows: rows, i1: i1, i2: i2, u: u, sparsity: s, into: &mask, width: block,
                    threads: threads)
            }
            mask.withUnsafeMutableBufferPointer { mp in
                u.withUnsafeBufferPointer { up in
                    Parallel.forEach(chunks.count, threads: threads) { ci in
                        sweep(
                            chunks[ci], w: w, cols: cols, i1: i1, i2: i2, u: up, pattern: pattern, mask: mp,
                            width: block)
                    }
                }
            }
            i1 = i2
        }
        return used
    }

    /// Marks, for columns i1..<i2 of every row, the weights with the smallest w² / U_jj² (ties to
    /// the lower row-major index, NaN largest); scores in fixed row chunks over `threads`.
    private static func blockMask(
        _ w: UnsafeMutableBufferPointer<Float>, cols: Int, rows: Int, i1: Int, i2: Int, u: [Float],
        sparsity: Double, into mask: inout [Bool], width: Int, threads: Int
    ) {
        let count = i2 - i1, k = MagnitudePruning.pruneCount(sparsity: sparsity, numel: rows * count)
        var keys = [UInt64](unsafeUninitializedCapacity: rows * count) { _, n in n = rows * count }
        let chunks = Parallel.chunks(rows, chunk: 64)
        keys.withUnsafeMutableBufferPointer { kp in
            Parallel.forEach(chunks.count, threads: threads) { c in
                for r in chunks[c] {
                    for j in 0..<count {
                        let v = Double(w[r * cols + i1 + j]), d = Double(u[(i1 + j) * cols + i1 + j])
                        kp[r * count + j] = StructuredPruning.orderKey(v * v / (d * d))
                    }
                }
            }
        }
        let t = k > 0 ? StructuredPruning.kthSmallest(keys, k: k) : nil
        mask.withUnsafeMutableBufferPointer { mp in
            keys.withUnsafeBufferPointer { kp in
                Parallel.forEach(chunks.count, threads: threads) { c in
                    for r in chunks[c] {
                        for j in 0..<width {
                            guard j < count else {
                                mp[r * width + j] = false
                                continue
                            }
                            mp[r * width + j] = t?.admits(kp[r * count + j], at: r * count + j) ?? false
                        }
                    }
                }
            }
        }
    }

    /// One chunk of rows over columns i1..<i2, then the lazy update of the columns after i2.
    private static func sweep(
        _ rowRange: Range<Int>, w: UnsafeMutableBufferPointer<Float>, cols: Int, i1: Int, i2: Int,
        u: UnsafeBufferPointer<Float>, pattern: Pattern, mask: UnsafeMutableBufferPointer<Bool>, width: Int
    ) {
        let n = rowRange.count, count = i2 - i1
        let base = w.baseAddress! + rowRange.lowerBound * cols
        var err = [Float](repeating: 0, count: n * count)
        for col in i1..<i2 {
            if case .nm(let pn, let m) = pattern, col % m == 0 {
                for (k, r) in rowRange.enumerated() {
                    let row = base + k * cols
                    let score = (0..<m).map { j -> Double in
                        let v = Double(row[col + j]), d = Double(u[(col + j) * cols + col + j])
                        return v * v / (d * d)
                    }
                    for j in 0..<m { mask[r * width + col - i1 + j] = false }
                    for j in StructuredPruning.select(score, k: pn) { mask[r * width + col - i1 + j] = true }
                }
            }
            let d = u[col * cols + col]
            let urow = u.baseAddress! + col * cols
            for (k, r) in rowRange.enumerated() where mask[r * width + col - i1] {
                let row = base + k * cols
                let e = row[col] / d
                row[col] = 0
                err[k * count + (col - i1)] = e
                if e != 0 && e.isFinite { for j in (col + 1)..<i2 { row[j] -= e * urow[j] } }
            }
        }
        if i2 < cols {
            // W[:, i2:] −= Err · U[i1:i2, i2:]
            err.withUnsafeBufferPointer { ep in
                BLAS.gemm(
                    m: n, n: cols - i2, k: count, a: ep.baseAddress!, lda: count, b: u.baseAddress! + i1 * cols + i2,
                    ldb: cols,
                    bTransposed: false, c: base + i2, ldc: cols, alpha: -1, beta: 1)
            }
        }
    }
}
