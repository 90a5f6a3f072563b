/// Greedy generation with the decoder forward pass and a KV cache: the prompt runs once, then
/// each new token one position (a way to try a compressed model by hand, not a serving path).
public enum GreedyDecoding {
    /// Up to `count` new token ids after `prompt`, stopping early at `stop` or at the model's context.
    public static func generate(
        prompt: [Int32], count: Int, config: LlamaConfig, weights: WeightSupplier, threads: Int,
        stop: Int32? = nil, each: (Int32) -> Void = { _ in }
    ) throws -> [Int32] {
        guard !prompt.isEmpty else { throw ComputeError(.invalidRecipe, "the prompt has no tokens") }
        guard prompt.count <= config.contextLength else {
            throw ComputeError(
                .invalidRecipe,
                "the prompt has \(prompt.count) tokens, more than the model's context of \(config.contextLength)")
        }
        let one = LlamaDecoder(config: config, samples: 1, seqLen: 1, threads: threads)
        let head = try one.head(weights)
        let cache = KVCache(config: config)
        var x = try cache.append(prompt, weights, threads: threads)
        var out = [Int32]()
        for _ in 0..<count {
            let last = Activations(
                data: Array(x.data[((x.rows - 1) * config.hidden)...]), rows: 1, width: config.hidden)
            let logits = one.logits(last, sample: 0, head: head)
            var best = 0
            for j in 1..<logits.count where logits[j] > logits[best] { best = j }
            let id = Int32(best)
            out.append(id)
            each(id)
            if id == stop || cache.count >= config.contextLength { break }
            x = try cache.append([id], weights, threads: threads)
        }
        return out
    }
}
