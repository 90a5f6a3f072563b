import Foundation

extension BertModelFiles {
    /// The layout llama.cpp's `bert` architecture expects (as its converter writes it): GGUF tensor
    /// names, `bert.*` hyper-parameters with the sentence-transformers pooling, and the WordPiece
    /// vocabulary as `tokenizer.ggml.model = bert` (continuations lose `##`, other tokens gain the
    /// phantom space U+2581, special tokens stay as they are). The pooler and position ids are left out.
    public func ggufLayout() -> GGUFExportLayout {
        let c = config, t = tokenizer
        var meta: [(String, GGUFValue)] = [
            ("bert.context_length", .uint32(UInt32(c.maxPositions))),
            ("bert.embedding_length", .uint32(UInt32(c.hidden))),
            ("bert.feed_forward_length", .uint32(UInt32(c.intermediate))),
            ("bert.block_count", .uint32(UInt32(c.layers))),
            ("bert.attention.head_count", .uint32(UInt32(c.heads))),
            ("bert.attention.layer_norm_epsilon", .float32(c.eps)),
            ("bert.attention.causal", .bool(false)),
            ("bert.pooling_type", .uint32(Self.poolingType(modelDir: directory))),
            ("tokenizer.ggml.token_type_count", .uint32(UInt32(c.typeVocabSize)))
        ]
        var tokens = [String](repeating: "", count: c.vocabSize)
        for (tok, id) in t.vocab where Int(id) < c.vocabSize { tokens[Int(id)] = tok }
        let special = Set([t.unk, t.cls, t.sep, t.pad] + [t.vocab["[MASK]"]].compactMap { $0 })
        var types = [Int32](repeating: 1, count: c.vocabSize)
        for i in tokens.indices {
            if tokens[i].isEmpty {
                tokens[i] = "[PAD\(i)]"
                types[i] = 5
                continue
            }
            if special.contains(Int32(i)) {
                types[i] = 3
                continue
            }
            tokens[i] = tokens[i].hasPrefix("##") ? String(tokens[i].dropFirst(2)) : "\u{2581}" + tokens[i]
        }
        meta += [
            ("tokenizer.ggml.model", .string("bert")), ("tokenizer.ggml.tokens", .array(.string(tokens))),
            ("tokenizer.ggml.token_type", .array(.int32(types))),
            ("tokenizer.ggml.bos_token_id", .uint32(UInt32(t.cls))),
            ("tokenizer.ggml.eos_token_id", .uint32(UInt32(t.sep))),
            ("tokenizer.ggml.unknown_token_id", .uint32(UInt32(t.unk))),
            ("tokenizer.ggml.seperator_token_id", .uint32(UInt32(t.sep))),
            ("tokenizer.ggml.padding_token_id", .uint32(UInt32(t.pad))),
            ("tokenizer.ggml.cls_token_id", .uint32(UInt32(t.cls)))
        ]
        if let m = t.vocab["[MASK]"] { meta.append(("tokenizer.ggml.mask_token_id", .uint32(UInt32(m)))) }
        meta += [("tokenizer.ggml.add_bos_token", .bool(true)), ("tokenizer.ggml.add_eos_token", .bool(true))]
        let prefix = c.prefix
        return GGUFExportLayout(
            architecture: "bert", metadata: meta, name: { Self.ggufName($0, prefix: prefix) },
            permutedHeads: { _ in nil },
            dropped: { Self.isDropped($0, prefix: prefix) })
    }

    /// Tensors llama.cpp's converter leaves out of a BERT GGUF.
    static func isDropped(_ name: String, prefix: String) -> Bool {
        let n = name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
        return n.hasPrefix("pooler.") || n == "embeddings.position_ids"
    }

    /// llama.cpp's name of a BERT tensor (nil: the architecture has none).
    static func ggufName(_ name: String, prefix: String) -> String? {
        guard name.hasPrefix(prefix) else { return nil }
        let n = name.dropFirst(prefix.count)
        if let e = embeddingNames[String(n)] { return e }
        guard n.hasPrefix("encoder.layer.") else { return nil }
        let rest = n.dropFirst("encoder.layer.".count)
        guard let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]) else { return nil }
        let part = String(rest[rest.index(after: dot)...])
        let suffix = part.hasSuffix(".weight") ? "weight" : part.hasSuffix(".bias") ? "bias" : ""
        guard !suffix.isEmpty else { return nil }
        return blockNames[String(part.dropLast(suffix.count + 1))].map { "blk.\(i).\($0).\(suffix)" }
    }

    private static let embeddingNames = [
        "embeddings.word_embeddings.weight": "token_embd.weight",
        "embeddings.position_embeddings.weight": "position_embd.weight",
        "embeddings.token_type_embeddings.weight": "token_types.weight",
        "embeddings.LayerNorm.weight": "token_embd_norm.weight",
        "embeddings.LayerNorm.bias": "token_embd_norm.bias"
    ]
    private static let blockNames = [
        "attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
        "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
        "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"
    ]

    /// `bert.pooling_type`: CLS (2) when sentence-transformers' 1_Pooling/config.json pools the
    /// [CLS] token, else MEAN (1), as llama.cpp's converter and Squeeze's own embeddings do.
    static func poolingType(modelDir: String) -> UInt32 {
        let file = modelDir + "/1_Pooling/config.json"
        guard let d = FileManager.default.contents(atPath: file), d.count < 1 << 16,
            let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any]
        else { return 1 }
        return (o["pooling_mode_cls_token"] as? Bool) == true && (o["pooling_mode_mean_tokens"] as? Bool) != true
            ? 2 : 1
    }
}
