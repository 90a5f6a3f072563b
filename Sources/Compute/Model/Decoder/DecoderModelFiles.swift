import Foundation

/// The config and tokenizer of a decoder model: a Hugging Face directory (config.json,
/// tokenizer.json) or a Llama GGUF (`llama.*`, `tokenizer.ggml.*`).
public struct DecoderModelFiles: Sendable {
    public let config: LlamaConfig
    public let tokenizer: any DecoderTokenizer
    /// A GGUF input's `tokenizer.*` keys, carried into GGUF exports as they were.
    let tokenizerKeys: [(String, GGUFValue)]?

    /// The same tokenizer with another config (a structurally pruned copy of the model).
    func with(config: LlamaConfig) -> DecoderModelFiles {
        DecoderModelFiles(config: config, tokenizer: tokenizer, tokenizerKeys: tokenizerKeys)
    }

    private init(config: LlamaConfig, tokenizer: any DecoderTokenizer, tokenizerKeys: [(String, GGUFValue)]?) {
        self.config = config
        self.tokenizer = tokenizer
        self.tokenizerKeys = tokenizerKeys
    }

    /// Reads the model's config and tokenizer; errors name the file and key.
    public init(model: ModelSource) throws {
        if model.format == .gguf {
            let g = try GGUFTensorFile(path: model.shards[0].path)
            config = g.config
            tokenizer = try DecoderTokenizers.load(gguf: g.meta, file: g.path)
            tokenizerKeys = g.reader.metadata.filter { $0.0.hasPrefix("tokenizer.") }
            return
        }
        guard let cfg = model.extraFiles.first(where: { $0.hasSuffix("/config.json") }) else {
            throw ComputeError(.notFound, "has no config.json beside its weights", file: model.path)
        }
        guard let tok = model.extraFiles.first(where: { $0.hasSuffix("/tokenizer.json") }) else {
            throw ComputeError(
                .notFound, "has no tokenizer.json beside its weights (a decoder's BPE tokenizer)",
                file: model.path)
        }
        config = try LlamaConfig(configJSON: cfg)
        tokenizer = try DecoderTokenizers.load(tokenizerJSON: tok)
        tokenizerKeys = nil
        // Every id the tokenizer can produce must have an embedding row.
        if tokenizer.vocabularySize > config.vocabSize {
            let id = tokenizer.vocabularySize - 1
            throw ComputeError(
                .shapeMismatch,
                "holds token id \(id) (\(TextRules.printable(tokenizer.tokens[id]))), beyond the model's vocab_size "
                    + "\(config.vocabSize) in config.json",
                file: tok)
        }
    }

    /// What config.json's `architectures` says of a model directory (a GGUF is a decoder).
    public enum Kind: Equatable, Sendable {
        case notDecoder
        case supported
        /// A causal LM Squeeze cannot run (its architecture name).
        case unsupported(String)
    }

    /// Whether `model` is a decoder Squeeze runs; reads only config.json's `architectures`.
    public static func kind(_ model: ModelSource) -> Kind {
        if model.format == .gguf { return .supported }
        guard let cfg = model.extraFiles.first(where: { $0.hasSuffix("/config.json") }),
            let bytes = try? InputFile.contents(of: cfg, what: "config.json", limit: InputFile.configLimit),
            let root = try? JSONParser.parse(bytes, maxDepth: 64), case .array(let a)? = root["architectures"]
        else { return .notDecoder }
        let names = a.compactMap(\.stringValue)
        if names.contains(where: LlamaConfig.architectures.contains) { return .supported }
        if let n = names.first(where: { $0.hasSuffix("ForCausalLM") || $0.hasSuffix("LMHeadModel") }) {
            return .unsupported(n)
        }
        return .notDecoder
    }

    /// Whether `model` is a decoder Squeeze runs (a GGUF, or config.json naming a supported architecture).
    public static func isDecoder(_ model: ModelSource) -> Bool { kind(model) == .supported }

    /// Every tensor the config implies, with its shape [rows, cols] or [n]; linear weights flagged.
    public func impliedTensors() -> [(name: String, shape: [Int], linear: Bool)] {
        let c = config
        var out: [(String, [Int], Bool)] = [(LlamaNames.embedding, [c.vocabSize, c.hidden], false)]
        for i in 0..<c.layers {
            let b = { (p: String) in LlamaNames.block(i, p) }
            out.append((b("input_layernorm.weight"), [c.hidden], false))
            for (p, rows) in [("q_proj", c.qWidth(i)), ("k_proj", c.kvWidth(i)), ("v_proj", c.kvWidth(i))] {
                out.append((b("self_attn.\(p).weight"), [rows, c.hidden], true))
                if c.qkvBias { out.append((b("self_attn.\(p).bias"), [rows], false)) }
            }
            out.append((b("self_attn.o_proj.weight"), [c.hidden, c.qWidth(i)], true))
            if c.outputBias { out.append((b("self_attn.o_proj.bias"), [c.hidden], false)) }
            out.append((b("post_attention_layernorm.weight"), [c.hidden], false))
            out.append((b("mlp.gate_proj.weight"), [c.intermediate(i), c.hidden], true))
            out.append((b("mlp.up_proj.weight"), [c.intermediate(i), c.hidden], true))
            out.append((b("mlp.down_proj.weight"), [c.hidden, c.intermediate(i)], true))
            if c.outputBias { out.append((b("mlp.down_proj.bias"), [c.hidden], false)) }
            if c.shortcuts {
                out.append((b(LlamaNames.attentionShortcut), [c.hidden, c.hidden], false))
                out.append((b(LlamaNames.mlpShortcut), [c.hidden, c.hidden], false))
            }
        }
        out.append((LlamaNames.finalNorm, [c.hidden], false))
        if !c.tied { out.append((LlamaNames.lmHead, [c.vocabSize, c.hidden], false)) }
        return out
    }
}

extension DecoderModelFiles {
    /// Checks that every tensor the config implies exists as floats with its shape (errors name a
    /// GGUF input's tensors by their GGUF names too); returns the linear weights' names.
    @discardableResult
    public func checkTensors(_ tensors: [TensorInfo], format: ModelSource.Format) throws -> Set<String> {
        let source = format == .gguf ? "the GGUF's llama.* keys" : "its config.json"
        try checkBlockCount(tensorCount: tensors.count, source: source)
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let implied = impliedTensors()
        for (n, shape, _) in implied {
            let shown = format == .gguf ? "\(LlamaNames.gguf(n) ?? n) (\(n))" : n
            guard let t = byName[n] else {
                throw ComputeError(.shapeMismatch, "the model has no tensor \(shown), which \(source) implies")
            }
            guard t.shape == shape, t.dtype.isFloat16Or32 else {
                throw ComputeError(
                    .shapeMismatch,
                    "tensor \(shown) is \(t.dtype.rawValue) \(t.shape), \(source) implies float \(shape)")
            }
        }
        return Set(implied.filter(\.linear).map(\.name))
    }

    /// Tensors every block holds (norms, q/k/v/o, gate/up/down, Q/K/V biases in Qwen2, o/down biases, shortcuts).
    var tensorsPerBlock: Int {
        9 + (config.qkvBias ? 3 : 0) + (config.outputBias ? 2 : 0) + (config.shortcuts ? 2 : 0)
    }

    /// Refuses a block count the model's tensors cannot hold, before anything is built per block
    /// (16,777,216 blocks would otherwise take gigabytes to list).
    func checkBlockCount(tensorCount: Int, source: String) throws {
        let most = max(0, tensorCount - 2) / tensorsPerBlock
        guard config.layers <= most else {
            let key = source.hasPrefix("the GGUF") ? "llama.block_count" : "num_hidden_layers"
            throw ComputeError(
                .shapeMismatch,
                "\(key) \(config.layers) is more blocks than the model's \(tensorCount) tensors hold (at most \(most))")
        }
    }
}
