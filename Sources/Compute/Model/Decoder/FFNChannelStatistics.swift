import Foundation

/// The statistics FLAP scores, from the dense model's forward pass over the calibration windows:
/// per block, each down_proj input channel's mean and variance over every calibration token (the
/// SwiGLU product), and the squared norm of its down_proj column. Block by block, windows in
/// chunks, one block's weights at a time; sums in Double, column by column in token order, so the
/// result does not depend on the thread count. Every block is scored before any is cut, since one
/// threshold spans them (as FLAP's code does for its adaptive structures).
enum FFNChannelStatistics {
    static func collect(config c: LlamaConfig, ids: [[Int32]], seqLen: Int, weights: ModelWeights, threads: Int)
        throws -> [FlapSelection.Channels]
    {
        let whole = LlamaDecoder(config: c, samples: ids.count, seqLen: seqLen, threads: threads)
        let per = DecoderCalibration.chunkWindows(seqLen: seqLen)
        let chunks = stride(from: 0, to: ids.count, by: per).map { $0..<min($0 + per, ids.count) }
        var decoders = [Int: LlamaDecoder]()
        for r in chunks where decoders[r.count] == nil {
            decoders[r.count] = LlamaDecoder(config: c, samples: r.count, seqLen: seqLen, threads: threads)
        }
        var x = try whole.embed(ids, weights)
        var out = [FlapSelection.Channels]()
        for i in 0..<c.layers {
            let w = BlockWeights(weights)
            let name = { (part: String) in LlamaNames.block(i, part) }
            let width = c.intermediate(i)
            var sum = [Double](repeating: 0, count: width)
            var squares = [Double](repeating: 0, count: width)
            var tokens = 0
            for r in chunks {
                let d = decoders[r.count]!
                let xc = x.windows(r, seqLen, threads: threads)
                let ctx = try d.attentionContext(i, try d.rmsNorm(xc, name("input_layernorm.weight"), w), w)
                var h = try d.linear(name("self_attn.o_proj"), ctx, out: c.hidden, bias: c.outputBias, w)
                d.add(&h, xc)
                let act = try d.mlpProduct(i, try d.rmsNorm(h, name("post_attention_layernorm.weight"), w), w)
                accumulate(act, into: &sum, &squares, threads: threads)
                tokens += act.rows
                var o = try d.linear(name("mlp.down_proj"), act, out: c.hidden, bias: c.outputBias, w)
                d.add(&o, h)
                x.setWindows(r, seqLen, o, threads: threads)
            }
            let down = try w.tensor(name("mlp.down_proj.weight"), count: c.hidden * width)
            var norms = [Double](repeating: 0, count: width)
            for row in 0..<c.hidden {
                for j in 0..<width { norms[j] += Double(down[row * width + j]) * Double(down[row * width + j]) }
            }
            let n = Double(max(1, tokens))
            let mean = sum.map { $0 / n }
            let variance = zip(squares, mean).map { max(0, $0 / n - $1 * $1) }
            out.append(FlapSelection.Channels(mean: mean, variance: variance, columnNormSq: norms))
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

/// One block's weights, decoded once each while the block runs over every chunk of windows.
private final class BlockWeights: WeightSupplier {
    let source: ModelWeights
    private var cache = [String: [Float]]()

    init(_ source: ModelWeights) { self.source = source }

    func tensor(_ name: String, count: Int) throws -> [Float] {
        if let v = cache[name] { return v }
        let v = try source.tensor(name, count: count)
        cache[name] = v
        return v
    }

    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        try tensor(base + ".weight", count: out * `in`)
    }
}
