import Foundation

/// A decoder's hyper-parameters from a GGUF's keys (the `llama` and `deci` architectures).
extension LlamaConfig {
    static let ggufKeys = [
        "hidden": "llama.embedding_length", "intermediate": "llama.feed_forward_length", "layers": "llama.block_count",
        "heads": "llama.attention.head_count", "kvHeads": "llama.attention.head_count_kv",
        "headDim": "llama.rope.dimension_count", "vocabSize": "llama.vocab_size",
        "contextLength": "llama.context_length",
        "eps": "llama.attention.layer_norm_rms_epsilon", "ropeTheta": "llama.rope.freq_base"
    ]

    /// Reads the `llama.*` keys of a GGUF, or the `deci.*` keys of one with per-layer widths
    /// (FFN width and head counts as INT32 arrays, o_proj / down_proj biases as tensors); `tied`
    /// when the file has no `output.weight`.
    public init(gguf meta: [String: GGUFValue], tensorNames: Set<String>, file: String) throws {
        guard case .string(let arch)? = meta["general.architecture"] else {
            throw ComputeError(.corruptHeader, "general.architecture is missing", file: file)
        }
        guard arch == "llama" || arch == "deci" else {
            throw ComputeError(
                .unsupportedModel,
                "general.architecture \(TextRules.printable(arch)) is not supported (llama and deci are)",
                file: file)
        }
        func int(_ k: String, _ fallback: Int? = nil) throws -> Int {
            guard let v = meta[arch + "." + k] else {
                if let fallback { return fallback }
                throw ComputeError(.corruptHeader, "\(arch).\(k) is missing", file: file)
            }
            guard let n = v.integer else {
                throw ComputeError(.corruptHeader, "\(arch).\(k) is not an integer", file: file)
            }
            return n
        }
        // A deci per-layer size: an INT32 array with one entry per block (nil: one integer for all).
        func perLayer(_ k: String, layers: Int) throws -> [Int]? {
            guard arch == "deci", case .array(let a)? = meta[arch + "." + k] else { return nil }
            guard case .int32(let v) = a, v.count == layers else {
                throw ComputeError(
                    .corruptHeader, "\(arch).\(k) is not an INT32 array of \(layers) entries (one per block)",
                    file: file)
            }
            return v.map(Int.init)
        }
        if case .string(let t)? = meta[arch + ".rope.scaling.type"], t != "none" {
            throw ComputeError(
                .unsupportedModel,
                "\(arch).rope.scaling.type \(TextRules.printable(t)) is not supported (only unscaled RoPE)", file: file)
        }
        let hidden = try int("embedding_length")
        let layers = try int("block_count")
        let ffn = try perLayer("feed_forward_length", layers: layers)
        let headList = try perLayer("attention.head_count", layers: layers)
        let kvList = try perLayer("attention.head_count_kv", layers: layers)
        let heads = try headList?.max() ?? int("attention.head_count")
        let kvHeads = try kvList?[headList?.firstIndex(of: heads) ?? 0] ?? int("attention.head_count_kv", heads)
        var vocab = 0
        if case .array(let a)? = meta["tokenizer.ggml.tokens"] { vocab = a.typeAndCount.count }
        guard let eps = meta[arch + ".attention.layer_norm_rms_epsilon"]?.float else {
            throw ComputeError(
                .corruptHeader, "\(arch).attention.layer_norm_rms_epsilon is missing or not a float", file: file)
        }
        self.init(
            hidden: hidden, intermediate: try ffn?.max() ?? int("feed_forward_length"), layers: layers, heads: heads,
            kvHeads: kvHeads, headDim: try int("rope.dimension_count", hidden / max(heads, 1)), eps: Float(eps),
            ropeTheta: meta[arch + ".rope.freq_base"]?.float ?? 10000, vocabSize: try int("vocab_size", vocab),
            contextLength: try int("context_length"), tied: !tensorNames.contains("output.weight"))
        let kvMissing = meta[arch + ".attention.head_count_kv"] == nil
        if ffn != nil || headList != nil || kvList != nil {
            // Arrays hold one entry per block, so `layers` is bounded by the file here.
            let global = LayerShape(intermediate: intermediate, heads: self.heads, kvHeads: self.kvHeads)
            let shapes = (0..<layers).map {
                LayerShape(
                    intermediate: ffn?[$0] ?? intermediate, heads: headList?[$0] ?? self.heads,
                    kvHeads: kvList?[$0] ?? (kvMissing ? headList?[$0] ?? self.kvHeads : self.kvHeads))
            }
            if shapes.contains(where: { $0 != global }) { layerShapes = shapes }
        }
        outputBias = tensorNames.contains("blk.0.attn_output.bias") || tensorNames.contains("blk.0.ffn_down.bias")
        self = try validated(file) { k in Self.ggufKeys[k].map { arch + $0.dropFirst(5) } ?? k }
        // A sliced model (SliceGPT) keeps its heads' width and says it in key_length.
        let keyLength = meta[arch + ".attention.key_length"] != nil ? try int("attention.key_length") : nil
        if let keyLength, keyLength != headDim {
            throw ComputeError(
                .unsupportedModel,
                "\(arch).attention.key_length \(keyLength) is not \(arch).rope.dimension_count \(headDim) "
                    + "(partial RoPE is not supported)",
                file: file)
        }
        if arch == "llama" && keyLength == nil {
            guard headDim * self.heads == hidden else {
                throw ComputeError(
                    .corruptHeader,
                    "llama.rope.dimension_count \(headDim) × llama.attention.head_count \(self.heads) is not "
                        + "llama.embedding_length \(hidden)",
                    file: file)
            }
        }
    }
}
