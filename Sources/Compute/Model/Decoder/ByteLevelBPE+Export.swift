import Foundation

extension ByteLevelBPE {
    /// `tokenizer.ggml.*` with model `gpt2`: tokens, types, merges and llama.cpp's name for the
    /// pre-tokenizer (refused when llama.cpp has none: its GGUF would tokenize differently).
    public func ggufKeys(vocabSize: Int, bos: Int32?, eos: Int32?) throws -> [(String, GGUFValue)] {
        guard let pre = PreTokenizer.ggmlPre(for: preTokenizerPatterns) else {
            throw ComputeError(
                .unsupportedModel,
                "the pre-tokenizer has no llama.cpp equivalent (gpt-2, smollm, llama-bpe, qwen2), so a GGUF of this "
                    + "model would tokenize differently",
                file: identity)
        }
        let addedIDs = Set(added.map(\.id))
        let (all, types) = DecoderTokenizers.padded(tokens, vocabSize: vocabSize) { i in
            specialIDs.contains(Int32(i)) ? 3 : addedIDs.contains(Int32(i)) ? 4 : 1
        }
        var keys: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string(all))), ("tokenizer.ggml.token_type", .array(.int32(types))),
            ("tokenizer.ggml.merges", .array(.string(mergeList)))
        ]
        if let b = bos ?? self.bos { keys.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(b)))) }
        if let e = eos ?? self.eos { keys.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(e)))) }
        keys.append(("tokenizer.ggml.add_bos_token", .bool(addBOS)))
        return keys
    }

    /// The `tokenizers` package's description of this byte-level BPE tokenizer.
    public func tokenizerJSON() -> [String: Any] {
        let (vocab, addedTokens) = DecoderTokenizers.vocabularyJSON(tokens, added: addedTokens, special: specialIDs)
        let byteLevel = { (regex: Bool) -> [String: Any] in
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex]
        }
        var pieces = [[String: Any]]()
        var regexDone = false
        for p in preTokenizerPatterns {
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
                "ignore_merges": ignoreMerges, "vocab": vocab, "merges": mergeList
            ] as [String: Any]
        ]
    }
}
