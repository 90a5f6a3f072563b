import Foundation

extension DecoderModelFiles {
    /// config.json and tokenizer.json of a Hugging Face directory for this model (written beside
    /// the weights when a GGUF input is exported as safetensors); keys sorted, so bytes are stable.
    public func huggingFaceFiles() throws -> [(name: String, data: Data)] {
        [("config.json", try huggingFaceConfig()), ("tokenizer.json", try huggingFaceTokenizer())]
    }

    /// config.json alone (writing tokenizer.json, a large sorted object, takes seconds).
    func huggingFaceConfig() throws -> Data {
        let c = config
        var cfg: [String: Any] = [
            "architectures": [c.architecture], "model_type": c.architecture == "Qwen2ForCausalLM" ? "qwen2" : "llama",
            "hidden_size": c.hidden, "intermediate_size": c.intermediate, "num_hidden_layers": c.layers,
            "num_attention_heads": c.heads, "num_key_value_heads": c.kvHeads, "head_dim": c.headDim,
            "rms_norm_eps": Double(c.eps), "rope_theta": c.ropeTheta, "max_position_embeddings": c.contextLength,
            "vocab_size": c.vocabSize, "tie_word_embeddings": c.tied, "hidden_act": "silu", "torch_dtype": "float32"
        ]
        if let shapes = c.layerShapes {
            cfg[LlamaConfig.layerKeys.intermediate] = shapes.map(\.intermediate)
            cfg[LlamaConfig.layerKeys.heads] = shapes.map(\.heads)
            cfg[LlamaConfig.layerKeys.kvHeads] = shapes.map(\.kvHeads)
        }
        if c.outputBias { cfg[LlamaConfig.layerKeys.outputBias] = true }
        if c.shortcuts { cfg[LlamaConfig.layerKeys.shortcuts] = true }
        if let b = config.bosTokenID ?? tokenizer.bos { cfg["bos_token_id"] = Int(b) }
        if let e = config.eosTokenID ?? tokenizer.eos { cfg["eos_token_id"] = Int(e) }
        return try Self.json(cfg)
    }

    /// tokenizer.json, as the `tokenizers` package reads it.
    func huggingFaceTokenizer() throws -> Data { try Self.json(tokenizer.tokenizerJSON()) }

    private static func json(_ o: Any) throws -> Data {
        var d = try JSONSerialization.data(
            withJSONObject: o, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        d.append(0x0A)
        return d
    }
}
