import Foundation

extension DecoderModelFiles {
    /// The layout llama.cpp expects: GGUF tensor names, Q/K permuted into interleaved pairs, the
    /// hyper-parameters and the byte-level BPE vocabulary as `tokenizer.ggml.*` (a GGUF input's
    /// tokenizer keys are carried over as they were). A model with per-block widths or o_proj /
    /// down_proj biases is written as llama.cpp's `deci` architecture (per-block sizes as INT32
    /// arrays, which is what llama.cpp reads there); any other as `llama`.
    public func ggufLayout() throws -> GGUFExportLayout {
        let c = config
        let arch = c.isPlainLlama ? "llama" : "deci"
        func perLayer(_ f: (LlamaConfig.LayerShape) -> Int) -> GGUFValue {
            arch == "llama"
                ? .uint32(UInt32(f(c.shape(0)))) : .array(.int32((0..<c.layers).map { Int32(f(c.shape($0))) }))
        }
        var meta: [(String, GGUFValue)] = [
            ("\(arch).context_length", .uint32(UInt32(c.contextLength))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hidden))),
            ("\(arch).block_count", .uint32(UInt32(c.layers))),
            ("\(arch).feed_forward_length", perLayer(\.intermediate)),
            ("\(arch).rope.dimension_count", .uint32(UInt32(c.headDim))),
            ("\(arch).attention.head_count", perLayer(\.heads)),
            ("\(arch).attention.head_count_kv", perLayer(\.kvHeads))
        ]
        if arch == "deci" {
            meta += [
                ("deci.attention.key_length", .uint32(UInt32(c.headDim))),
                ("deci.attention.value_length", .uint32(UInt32(c.headDim)))
            ]
        }
        meta += [
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(c.eps)),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).vocab_size", .uint32(UInt32(c.vocabSize)))
        ]
        meta += try tokenizerKeys ?? hfTokenizerKeys()
        return GGUFExportLayout(
            architecture: arch, metadata: meta, name: { LlamaNames.gguf($0) },
            permutedHeads: { LlamaNames.permutedHeads($0, c) })
    }

    /// `tokenizer.ggml.*` of a Hugging Face tokenizer.json.
    private func hfTokenizerKeys() throws -> [(String, GGUFValue)] {
        let t = tokenizer
        guard let pre = PreTokenizer.ggmlPre(for: t.preTokenizerPatterns) else {
            throw ComputeError(
                .unsupportedModel,
                "the pre-tokenizer has no llama.cpp equivalent (gpt-2, smollm, llama-bpe, qwen2), so a GGUF of this "
                    + "model would tokenize differently",
                file: t.identity)
        }
        var tokens = t.tokens
        if tokens.count < config.vocabSize {
            // Embedding rows beyond the tokenizer's ids (padded vocabularies) get placeholder tokens.
            tokens += (tokens.count..<config.vocabSize).map { "[PAD\($0)]" }
        }
        let types: [Int32] = tokens.indices.map { i in
            let id = Int32(i)
            if i >= t.tokens.count || t.tokens[i].isEmpty { return 5 }
            if t.specialIDs.contains(id) { return 3 }
            return t.addedTokens.contains { $0.id == id } ? 4 : 1
        }
        var keys: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string(tokens))), ("tokenizer.ggml.token_type", .array(.int32(types))),
            ("tokenizer.ggml.merges", .array(.string(t.mergeList)))
        ]
        if let b = config.bosTokenID ?? t.bos { keys.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(b)))) }
        if let e = config.eosTokenID ?? t.eos { keys.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(e)))) }
        keys.append(("tokenizer.ggml.add_bos_token", .bool(t.addBOS)))
        return keys
    }
}

extension DecoderFamily {
    public func ggufLayout() throws -> GGUFExportLayout? { try files.ggufLayout() }

    public func linearWeights() -> Set<String> { Set(files.impliedTensors().filter(\.linear).map(\.name)) }
}
