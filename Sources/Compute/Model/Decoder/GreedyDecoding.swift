/// Greedy generation with the decoder forward pass (the whole sequence recomputed per token: a
/// way to try a compressed model by hand, not a serving path).
public enum GreedyDecoding {
    /// Up to `count` new token ids after `prompt`, stopping early at `stop`.
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
        var ids = prompt
        var out = [Int32]()
        let head = try LlamaDecoder(config: config, samples: 1, seqLen: 1, threads: threads).head(weights)
        for _ in 0..<count {
            guard ids.count <= config.contextLength else { break }
            let dec = LlamaDecoder(config: config, samples: 1, seqLen: ids.count, threads: threads)
            let x = try dec.hidden([ids], weights)
            let last = Activations(
                data: Array(x.data[((ids.count - 1) * config.hidden)...]), rows: 1, width: config.hidden)
            let logits = LlamaDecoder(config: config, samples: 1, seqLen: 1, threads: threads).logits(
                last, sample: 0, head: head)
            var best = 0
            for j in 1..<logits.count where logits[j] > logits[best] { best = j }
            let id = Int32(best)
            out.append(id)
            each(id)
            if id == stop { break }
            ids.append(id)
        }
        return out
    }
}
