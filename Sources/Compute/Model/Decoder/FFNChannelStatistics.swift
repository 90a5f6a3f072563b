import Foundation

/// The statistics FLAP scores, from the dense model's forward pass over the calibration windows:
/// per block, each down_proj input channel's mean and variance over every calibration token (the
/// SwiGLU product), the squared norm of its down_proj column, and when asked the Gram Σ a aᵀ of
/// those inputs (for the least-squares refit). Block by block, windows in chunks, one block's
/// weights at a time; moments summed in Double column by column in token order, the Gram by
/// `RowBlockSum` (the upper triangle's tiles, as the calibrate stage's XᵀX), so the result does
/// not depend on the thread count.
enum FFNChannelStatistics {
    /// Every block's channel statistics (one pass, no Gram).
    static func collect(config c: LlamaConfig, ids: [[Int32]], seqLen: Int, weights: ModelWeights, threads: Int)
        throws -> [FlapSelection.Channels]
    {
        var out = [FlapSelection.Channels]()
        try scan(config: c, ids: ids, seqLen: seqLen, weights: weights, threads: threads, gram: false) {
            _, s, _, _, _ in
            out.append(s)
        }
        return out
    }

    /// Runs the pass, handing each finished block's statistics, Gram (F32, width × width, nil unless
    /// `gram`), token count and weights to `block`.
    static func scan(
        config c: LlamaConfig, ids: [[Int32]], seqLen: Int, weights: ModelWeights, threads: Int, gram wantGram: Bool,
        block: (Int, FlapSelection.Channels, [Float]?, Int, WeightSupplier) throws -> Void
    ) throws {
        var sum = [Double](), squares = [Double](), tokens = 0
        var gram: RowBlockSum?
        try DenseBlockPass.run(config: c, ids: ids, seqLen: seqLen, weights: weights, threads: threads) {
            _, inputs, _ in
            let act = inputs.product
            if sum.isEmpty {
                sum = [Double](repeating: 0, count: act.width)
                squares = sum
                gram = wantGram ? RowBlockSum(.gram(n: act.width), threads: threads) : nil
                tokens = 0
            }
            accumulate(act, into: &sum, &squares, threads: threads)
            act.data.withUnsafeBufferPointer { gram?.add($0.baseAddress!, rows: act.rows) }
            tokens += act.rows
        } blockDone: { i, w in
            let width = c.intermediate(i)
            let down = try w.tensor(LlamaNames.block(i, "mlp.down_proj.weight"), count: c.hidden * width)
            var norms = [Double](repeating: 0, count: width), abs = norms
            for row in 0..<c.hidden {
                for j in 0..<width {
                    let v = Double(down[row * width + j])
                    norms[j] += v * v
                    abs[j] += Swift.abs(v)
                }
            }
            let n = Double(max(1, tokens))
            let mean = sum.map { $0 / n }
            let variance = zip(squares, mean).map { max(0, $0 / n - $1 * $1) }
            var stats = FlapSelection.Channels(mean: mean, variance: variance, columnNormSq: norms)
            stats.columnAbsSum = abs
            stats.rowNorms = try rowNorms(i, config: c, w)
            try block(i, stats, gram?.result(), tokens, w)
            sum = []
            gram = nil
        }
    }

    /// ‖up_proj[j]‖ + ‖gate_proj[j]‖ of block i's channels.
    private static func rowNorms(_ i: Int, config c: LlamaConfig, _ w: WeightSupplier) throws -> [Double] {
        let width = c.intermediate(i)
        var out = [Double](repeating: 0, count: width)
        for part in ["mlp.up_proj.weight", "mlp.gate_proj.weight"] {
            let m = try w.tensor(LlamaNames.block(i, part), count: width * c.hidden)
            for j in 0..<width {
                var s = 0.0
                for k in 0..<c.hidden { s += Double(m[j * c.hidden + k]) * Double(m[j * c.hidden + k]) }
                out[j] += s.squareRoot()
            }
        }
        return out
    }

    /// Adds each column's values and squares, columns split over the threads, rows in order.
    private static func accumulate(_ a: Activations, into sum: inout [Double], _ squares: inout [Double], threads: Int)
    {
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
