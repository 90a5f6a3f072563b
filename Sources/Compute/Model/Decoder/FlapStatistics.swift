import Foundation

/// The statistics FLAP scores, from the dense model's forward pass over the calibration windows:
/// per block, each down_proj input channel's mean and variance over every calibration token (the
/// SwiGLU product), the squared norm of its down_proj column, and when asked the Gram Σ a aᵀ of
/// those inputs (for the least-squares refit); with `heads`, the same of o_proj's input channels
/// (the attention context). Block by block, windows in chunks, one block's weights at a time;
/// moments summed in Double column by column in token order, the Gram as the calibrate stage's XᵀX
/// in its `hessian` precision (`RowBlockSum`'s upper-triangle tiles, or `BF16GramSum`), so the
/// result does not depend on the thread count.
enum FlapStatistics {
    /// One finished block's statistics.
    struct Block {
        /// down_proj's input channels.
        var ffn: FlapSelection.Channels
        /// Their Gram (F32, width × width), when asked.
        var ffnGram: [Float]?
        /// o_proj's input channels (rowNorms: ‖q_proj[j]‖), with `heads`.
        var context: FlapSelection.Channels?
        /// Their Gram, when asked with `heads`.
        var contextGram: [Float]?
        /// Calibration tokens summed.
        var tokens: Int
    }

    /// Every block's FFN channel statistics (one pass, no Gram).
    static func collect(config c: LlamaConfig, ids: [[Int32]], seqLen: Int, weights: ModelWeights, threads: Int)
        throws -> [FlapSelection.Channels]
    {
        var out = [FlapSelection.Channels]()
        try scan(config: c, ids: ids, seqLen: seqLen, weights: weights, threads: threads, gram: false) { _, s, _ in
            out.append(s.ffn)
        }
        return out
    }

    /// Runs the pass, handing each finished block's statistics and weights to `block`.
    static func scan(
        config c: LlamaConfig, ids: [[Int32]], seqLen: Int, weights: ModelWeights, threads: Int, gram wantGram: Bool,
        precision: GramPrecision = .f32, heads: Bool = false, block: (Int, Block, WeightSupplier) throws -> Void
    ) throws {
        var ffn = Moments(), context = Moments()
        try DenseBlockPass.run(config: c, ids: ids, seqLen: seqLen, weights: weights, threads: threads) {
            _, inputs, _ in
            ffn.add(inputs.product, gram: wantGram ? precision : nil, threads: threads)
            if heads { context.add(inputs.context, gram: wantGram ? precision : nil, threads: threads) }
        } blockDone: { i, w in
            let down = try w.tensor(LlamaNames.block(i, "mlp.down_proj.weight"), count: c.hidden * c.intermediate(i))
            var stats = Block(
                ffn: ffn.channels(weight: down, rows: c.hidden), ffnGram: ffn.gram?.result(), tokens: ffn.tokens)
            stats.ffn.rowNorms = try rowNorms(
                i, ["mlp.up_proj.weight", "mlp.gate_proj.weight"], c.intermediate(i), c, w)
            if heads {
                let o = try w.tensor(LlamaNames.block(i, "self_attn.o_proj.weight"), count: c.hidden * c.qWidth(i))
                stats.context = context.channels(weight: o, rows: c.hidden)
                stats.context?.rowNorms = try rowNorms(i, ["self_attn.q_proj.weight"], c.qWidth(i), c, w)
                stats.contextGram = context.gram?.result()
            }
            try block(i, stats, w)
            ffn = Moments()
            context = Moments()
        }
    }

    /// Column sums, sums of squares and (when asked) the Gram of one block's inputs of one linear.
    private struct Moments {
        var sum = [Double](), squares = [Double](), tokens = 0
        var gram: GramAccumulator?

        mutating func add(_ a: Activations, gram precision: GramPrecision?, threads: Int) {
            if sum.isEmpty {
                sum = [Double](repeating: 0, count: a.width)
                squares = sum
                gram = precision?.accumulator(n: a.width, threads: threads)
            }
            accumulate(a, threads: threads)
            a.data.withUnsafeBufferPointer { gram?.add($0.baseAddress!, rows: a.rows) }
            tokens += a.rows
        }

        /// Mean and variance per channel, with the norms of the reading matrix's columns (rows × width).
        func channels(weight: [Float], rows: Int) -> FlapSelection.Channels {
            let width = sum.count
            var norms = [Double](repeating: 0, count: width), abs = norms
            for row in 0..<rows {
                for j in 0..<width {
                    let v = Double(weight[row * width + j])
                    norms[j] += v * v
                    abs[j] += Swift.abs(v)
                }
            }
            let n = Double(max(1, tokens))
            let mean = sum.map { $0 / n }
            let variance = zip(squares, mean).map { max(0, $0 / n - $1 * $1) }
            var c = FlapSelection.Channels(mean: mean, variance: variance, columnNormSq: norms)
            c.columnAbsSum = abs
            return c
        }

        /// Adds each column's values and squares, columns split over the threads, rows in order.
        private mutating func accumulate(_ a: Activations, threads: Int) {
            let width = a.width
            let ranges = Parallel.chunks(width, chunk: 64)
            a.data.withUnsafeBufferPointer { p in
                sum.withUnsafeMutableBufferPointer { s in
                    squares.withUnsafeMutableBufferPointer { q in
                        Parallel.forEach(ranges.count, threads: threads) { k in
                            for r in 0..<a.rows {
                                let row = p.baseAddress! + r * width
                                for j in ranges[k] {
                                    let v = Double(row[j])
                                    s[j] += v
                                    q[j] += v * v
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Σ over `parts` of ‖part[j]‖ for block i's `width` rows (each `hidden` wide).
    private static func rowNorms(_ i: Int, _ parts: [String], _ width: Int, _ c: LlamaConfig, _ w: WeightSupplier)
        throws -> [Double]
    {
        var out = [Double](repeating: 0, count: width)
        for part in parts {
            let m = try w.tensor(LlamaNames.block(i, part), count: width * c.hidden)
            for j in 0..<width {
                var s = 0.0
                for k in 0..<c.hidden { s += Double(m[j * c.hidden + k]) * Double(m[j * c.hidden + k]) }
                out[j] += s.squareRoot()
            }
        }
        return out
    }
}
