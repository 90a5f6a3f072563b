import Foundation

extension DecoderModelFiles {
    /// The layout llama.cpp expects: GGUF tensor names, Q/K permuted into interleaved pairs, the
    /// hyper-parameters and the tokenizer as `tokenizer.ggml.*` (a GGUF input's
    /// tokenizer keys are carried over as they were). A model with per-block widths or o_proj /
    /// down_proj biases is written as llama.cpp's `deci` architecture (per-block sizes as INT32
    /// arrays, which is what llama.cpp reads there); any other as `llama`.
    public func ggufLayout() throws -> GGUFExportLayout {
        let c = config
        guard !c.shortcuts else {
            throw ComputeError(
                .unsupportedModel,
                "a per-block slice's shortcut matrices have no GGUF form: llama.cpp cannot run them "
                    + "(slice with uniform: true for a GGUF)")
        }
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
        if arch == "deci" || c.headDim * c.heads != c.hidden {
            meta += [
                ("\(arch).attention.key_length", .uint32(UInt32(c.headDim))),
                ("\(arch).attention.value_length", .uint32(UInt32(c.headDim)))
            ]
        }
        meta += [
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(c.eps)),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).vocab_size", .uint32(UInt32(c.vocabSize)))
        ]
        meta += try tokenizerKeys ?? tokenizer.ggufKeys(vocabSize: c.vocabSize, bos: c.bosTokenID, eos: c.eosTokenID)
        return GGUFExportLayout(
            architecture: arch, metadata: meta, name: { LlamaNames.gguf($0) },
            permutedHeads: { LlamaNames.permutedHeads($0, c) })
    }
}

extension DecoderFamily {
    public func ggufLayout() throws -> GGUFExportLayout? { try files.ggufLayout() }

    public func linearWeights() -> Set<String> { Set(files.impliedTensors().filter(\.linear).map(\.name)) }
}
