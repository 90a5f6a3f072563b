import Foundation

/// Every block's keys (RoPE applied) and values for the tokens run so far, so that each new token
/// runs one position of the forward pass instead of the whole sequence again, as every runtime
/// does for generation. One sequence; grows by the tokens each `append` runs.
public final class KVCache {
    let config: LlamaConfig
    /// Per block: positions × kvWidth.
    var keys: [[Float]]
    var values: [[Float]]
    /// Tokens held.
    public private(set) var count = 0

    public init(config: LlamaConfig) {
        self.config = config
        keys = Array(repeating: [], count: config.layers)
        values = Array(repeating: [], count: config.layers)
    }

    /// Runs `ids` (the next tokens) through the model on top of the cached ones and keeps their keys
    /// and values; returns their final hidden states (normed, what the LM head reads).
    public func append(_ ids: [Int32], _ w: WeightSupplier, threads: Int) throws -> Activations {
        guard !ids.isEmpty else { throw ComputeError(.invalidRecipe, "no tokens to run") }
        guard count + ids.count <= config.contextLength else {
            throw ComputeError(
                .invalidRecipe,
                "\(count + ids.count) tokens are more than the model's context of \(config.contextLength)")
        }
        let dec = LlamaDecoder(config: config, samples: 1, seqLen: ids.count, threads: threads, firstPosition: count)
        var x = try dec.embed([ids], w)
        for i in 0..<config.layers {
            x = try dec.block(i, x, w) { q, k, v in
                self.keys[i] += k.data
                self.values[i] += v.data
                return self.attention(q, layer: i, threads: dec.threads)
            }
        }
        count += ids.count
        return try dec.rmsNorm(x, LlamaNames.finalNorm, w)
    }

    /// Grouped-query causal attention of the new queries (positions `count`…) over every cached key
    /// (Mistral's sliding window when set); heads over the threads.
    private func attention(_ q: Activations, layer i: Int, threads: Int) -> Activations {
        let c = config, d = c.headDim, n = q.rows, qw = q.width, kw = c.kvWidth(i), heads = qw / d
        let group = heads / (kw / d)
        let total = count + n
        let window = max(1, c.slidingWindow ?? Int.max)
        let scale = 1 / Float(d).squareRoot()
        var ctx = [Float](repeating: 0, count: n * qw)
        q.data.withUnsafeBufferPointer { qp in
            keys[i].withUnsafeBufferPointer { kp in
                values[i].withUnsafeBufferPointer { vp in
                    ctx.withUnsafeMutableBufferPointer { cp in
                        Parallel.forEach(heads, threads: threads) { hd in
                            let kvh = hd / group
                            var scores = [Float](repeating: 0, count: n * total)
                            scores.withUnsafeMutableBufferPointer { sp in
                                BLAS.gemm(
                                    m: n, n: total, k: d, a: qp.baseAddress! + hd * d, lda: qw,
                                    b: kp.baseAddress! + kvh * d, ldb: kw, bTransposed: true, c: sp.baseAddress!,
                                    ldc: total, alpha: scale)
                                for r in 0..<n {
                                    let pos = count + r
                                    let row = sp.baseAddress! + r * total
                                    let lo = window == Int.max ? 0 : max(0, pos - window + 1)
                                    VectorExp.softmaxInPlace(row + lo, count: pos - lo + 1)
                                    row.update(repeating: 0, count: lo)
                                    (row + pos + 1).update(repeating: 0, count: total - pos - 1)
                                }
                                BLAS.gemm(
                                    m: n, n: d, k: total, a: sp.baseAddress!, lda: total,
                                    b: vp.baseAddress! + kvh * d, ldb: kw, bTransposed: false,
                                    c: cp.baseAddress! + hd * d, ldc: qw)
                            }
                        }
                    }
                }
            }
        }
        return Activations(data: ctx, rows: n, width: qw)
    }
}
