import Foundation

extension SentencePieceBPE {
    /// `tokenizer.ggml.*` with model `llama`, as llama.cpp's converter writes a SentencePiece model:
    /// tokens, scores that give merges llama.cpp's order (a token made by merges scores minus its
    /// first merge's rank; tokens no merge makes score −1e9; control and byte tokens 0), types
    /// (2 unknown, 3 control, 4 user-defined, 6 byte), special ids and `add_space_prefix`.
    public func ggufKeys(vocabSize: Int, bos: Int32?, eos: Int32?) throws -> [(String, GGUFValue)] {
        var firstRank = [Int32: Int32]()
        for (_, m) in rules { firstRank[m.merged] = min(firstRank[m.merged] ?? .max, m.rank) }
        let addedIDs = Set(addedTokens.map(\.id))
        let bytes = Set(byteTokens.compactMap { $0 })
        func type(_ i: Int) -> Int32 {
            let id = Int32(i)
            if id == unk { return 2 }
            if specialIDs.contains(id) { return 3 }
            if addedIDs.contains(id) { return 4 }
            return bytes.contains(id) ? 6 : 1
        }
        let (all, types) = DecoderTokenizers.padded(tokens, vocabSize: vocabSize, type: type)
        let scores: [Float] = all.indices.map { i in
            if let r = firstRank[Int32(i)] { return -Float(r) - 1 }
            return types[i] == 1 ? -1e9 : 0
        }
        var keys: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.tokens", .array(.string(all))),
            ("tokenizer.ggml.scores", .array(.float32(scores))), ("tokenizer.ggml.token_type", .array(.int32(types)))
        ]
        if let b = bos ?? self.bos { keys.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(b)))) }
        if let e = eos ?? self.eos { keys.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(e)))) }
        if let u = unk { keys.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(u)))) }
        keys.append(("tokenizer.ggml.add_bos_token", .bool(addBOS)))
        keys.append(("tokenizer.ggml.add_space_prefix", .bool(prefix != .none)))
        return keys
    }

    /// The `tokenizers` package's description, in the legacy form of Llama 2's hub files (a
    /// `Prepend("▁")` + `Replace(" ", "▁")` normalizer, no pre-tokenizer), merges by rank.
    public func tokenizerJSON() -> [String: Any] {
        let (vocab, added) = DecoderTokenizers.vocabularyJSON(tokens, added: addedTokens, special: specialIDs)
        var normalizers: [[String: Any]] = [
            ["type": "Replace", "pattern": ["String": " "], "content": "\u{2581}"]
        ]
        if prefix != .none { normalizers.insert(["type": "Prepend", "prepend": "\u{2581}"], at: 0) }
        if nfc { normalizers.insert(["type": "NFC"], at: 0) }
        let decoder: [String: Any] = [
            "type": "Sequence",
            "decoders": [
                ["type": "Replace", "pattern": ["String": "\u{2581}"], "content": " "], ["type": "ByteFallback"],
                ["type": "Fuse"], ["type": "Strip", "content": " ", "start": 1, "stop": 0]
            ]
        ]
        var post: Any = NSNull()
        if addBOS, let b = bos {
            let t = tokens[Int(b)]
            post =
                [
                    "type": "TemplateProcessing",
                    "single": [["SpecialToken": ["id": t, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [
                        ["SpecialToken": ["id": t, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                        ["SpecialToken": ["id": t, "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]
                    ],
                    "special_tokens": [t: ["id": t, "ids": [Int(b)], "tokens": [t]]]
                ] as [String: Any]
        }
        return [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": ["type": "Sequence", "normalizers": normalizers], "pre_tokenizer": NSNull(),
            "post_processor": post, "decoder": decoder,
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": unk.map { tokens[Int($0)] } as Any,
                "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(), "fuse_unk": fuseUnknown,
                "byte_fallback": true, "ignore_merges": false, "vocab": vocab, "merges": mergeList
            ] as [String: Any]
        ]
    }
}
