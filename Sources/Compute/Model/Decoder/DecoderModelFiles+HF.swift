import Foundation

extension DecoderModelFiles {
    /// config.json and tokenizer.json of a Hugging Face directory for this model (written beside
    /// the weights when a GGUF input is exported as safetensors); keys sorted, so bytes are stable.
    public func huggingFaceFiles() throws -> [(name: String, data: Data)] {
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
        if let b = config.bosTokenID ?? tokenizer.bos { cfg["bos_token_id"] = Int(b) }
        if let e = config.eosTokenID ?? tokenizer.eos { cfg["eos_token_id"] = Int(e) }
        return [("config.json", try Self.json(cfg)), ("tokenizer.json", try Self.json(tokenizerJSON()))]
    }

    /// The `tokenizers` package's description of this byte-level BPE tokenizer.
    func tokenizerJSON() throws -> [String: Any] {
        let t = tokenizer
        var vocab = [String: Int]()
        for (i, tok) in t.tokens.enumerated() where !tok.isEmpty && vocab[tok] == nil { vocab[tok] = i }
        let addedTokens: [[String: Any]] = t.addedTokens.sorted { $0.id < $1.id }.map { a in
            [
                "id": Int(a.id), "content": a.text, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false,
                "special": t.specialIDs.contains(a.id)
            ]
        }
        let byteLevel = { (regex: Bool) -> [String: Any] in
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex]
        }
        var pieces = [[String: Any]]()
        var regexDone = false
        for p in t.preTokenizerPatterns {
            switch p {
            case PreTokenizer.digits: pieces.append(["type": "Digits", "individual_digits": true])
            case PreTokenizer.gpt2:
                pieces.append(byteLevel(true))
                regexDone = true
            default: pieces.append(["type": "Split", "pattern": ["Regex": p], "behavior": "Isolated", "invert": false])
            }
        }
        if !regexDone { pieces.append(byteLevel(false)) }
        return [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": addedTokens,
            "normalizer": NSNull(),
            "pre_tokenizer": pieces.count == 1 ? pieces[0] : ["type": "Sequence", "pretokenizers": pieces],
            "post_processor": byteLevel(false), "decoder": byteLevel(true),
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false,
                "ignore_merges": t.ignoreMerges,
                "vocab": vocab, "merges": t.mergeList
            ] as [String: Any]
        ]
    }

    private static func json(_ o: Any) throws -> Data {
        var d = try JSONSerialization.data(
            withJSONObject: o, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        d.append(0x0A)
        return d
    }
}
