import Foundation

/// The hyper-parameters of a Llama-family decoder (Llama, Mistral, Qwen2, SmolLM), from a
/// Hugging Face config.json or a GGUF's `llama.*` keys.
public struct LlamaConfig: Equatable, Sendable {
    public var architecture = "LlamaForCausalLM"
    public var hidden: Int
    public var intermediate: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var eps: Float
    public var ropeTheta: Double
    public var vocabSize: Int
    public var contextLength: Int
    /// The LM head is the token embedding (no `lm_head.weight` / `output.weight`).
    public var tied: Bool
    /// Q, K and V projections carry biases (Qwen2).
    public var qkvBias = false
    /// Mistral's sliding attention window (nil: full causal attention).
    public var slidingWindow: Int?
    /// config.json's `bos_token_id` and `eos_token_id` (a GGUF says them in `tokenizer.ggml.*`).
    public var bosTokenID: Int32?, eosTokenID: Int32?
    /// Per-block widths of a structurally pruned model (nil: every block has the global widths).
    public var layerShapes: [LayerShape]?
    /// o_proj and down_proj carry biases (a structured prune's compensation of removed channels).
    public var outputBias = false
    /// Each block carries SliceGPT's shortcut matrices (`attn_shortcut_Q`, `mlp_shortcut_Q`): the
    /// residual is rotated from one block's basis into the next's (a per-block `slice`).
    public var shortcuts = false

    /// One block's widths: FFN channels, query heads and KV heads.
    public struct LayerShape: Equatable, Sendable {
        public var intermediate: Int
        public var heads: Int
        public var kvHeads: Int

        public init(intermediate: Int, heads: Int, kvHeads: Int) {
            (self.intermediate, self.heads, self.kvHeads) = (intermediate, heads, kvHeads)
        }
    }

    public static let architectures = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"]

    public init(
        hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int? = nil, eps: Float = 1e-5,
        ropeTheta: Double = 10000, vocabSize: Int, contextLength: Int = 2048, tied: Bool
    ) {
        (self.hidden, self.intermediate, self.layers, self.heads, self.kvHeads) = (
            hidden, intermediate, layers, heads, kvHeads
        )
        self.headDim = headDim ?? hidden / max(heads, 1)
        (self.eps, self.ropeTheta, self.vocabSize, self.contextLength, self.tied) = (
            eps, ropeTheta, vocabSize, contextLength, tied
        )
    }

    /// Width of the query projection's output.
    public var qWidth: Int { heads * headDim }
    /// Width of the key and value projections' outputs.
    public var kvWidth: Int { kvHeads * headDim }

    /// Block `i`'s widths (the global ones unless the model is structurally pruned).
    public func shape(_ i: Int) -> LayerShape {
        layerShapes?[i] ?? LayerShape(intermediate: intermediate, heads: heads, kvHeads: kvHeads)
    }
    /// Block `i`'s FFN channels.
    public func intermediate(_ i: Int) -> Int { shape(i).intermediate }
    /// Block `i`'s query projection width.
    public func qWidth(_ i: Int) -> Int { shape(i).heads * headDim }
    /// Block `i`'s key and value projection width.
    public func kvWidth(_ i: Int) -> Int { shape(i).kvHeads * headDim }
    /// The widest query projection and FFN of any block.
    public var widestQ: Int { (0..<layers).map(qWidth).max() ?? qWidth }
    public var widestFFN: Int { (0..<layers).map(intermediate).max() ?? intermediate }
    /// Whether every block has the same widths and no output biases (a plain `llama` GGUF can hold it).
    public var isPlainLlama: Bool { layerShapes == nil && !outputBias && !shortcuts }

    /// Checks the shape rules every reader relies on; `file` names the source in errors.
    func validated(_ file: String, key: (String) -> String) throws -> LlamaConfig {
        for (k, v) in [
            ("hidden", hidden), ("intermediate", intermediate), ("layers", layers), ("heads", heads),
            ("kvHeads", kvHeads),
            ("headDim", headDim), ("vocabSize", vocabSize), ("contextLength", contextLength)
        ] where v <= 0 || v > 1 << 24 {
            throw ComputeError(.corruptData, "\(key(k)) is \(v), not a positive size", file: file)
        }
        guard heads % kvHeads == 0 else {
            throw ComputeError(
                .corruptData, "\(key("heads")) \(heads) is not a multiple of \(key("kvHeads")) \(kvHeads)", file: file)
        }
        guard headDim % 2 == 0 else {
            throw ComputeError(.corruptData, "head dimension \(headDim) is odd; RoPE rotates pairs", file: file)
        }
        guard eps.isFinite, eps > 0, ropeTheta.isFinite, ropeTheta > 1 else {
            throw ComputeError(.corruptData, "\(key("eps")) or \(key("ropeTheta")) is out of range", file: file)
        }
        if let w = slidingWindow, w < 1 {
            throw ComputeError(
                .corruptData, "\(key("slidingWindow")) is \(w): a window must hold at least one token", file: file)
        }
        if let shapes = layerShapes {
            guard shapes.count == layers else {
                throw ComputeError(
                    .corruptData, "per-layer sizes list \(shapes.count) layers, \(key("layers")) is \(layers)",
                    file: file)
            }
            for (i, s) in shapes.enumerated() {
                guard (1...(1 << 24)).contains(s.intermediate), (1...(1 << 16)).contains(s.heads),
                    (1...(1 << 16)).contains(s.kvHeads), s.heads % s.kvHeads == 0
                else {
                    throw ComputeError(
                        .corruptData,
                        "layer \(i) has \(s.intermediate) FFN channels, \(s.heads) heads and \(s.kvHeads) KV heads: "
                            + "each must be positive and the heads a multiple of the KV heads",
                        file: file)
                }
            }
        }
        return self
    }
}

extension LlamaConfig {
    /// Reads a Hugging Face config.json of a supported architecture; an unknown `rope_scaling`
    /// type, an activation other than SiLU or MLP biases are refused, not run wrongly.
    public init(configJSON file: String) throws {
        let data = Data(try InputFile.contents(of: file, what: "config.json", limit: InputFile.configLimit))
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ComputeError(.corruptData, "config.json is not a JSON object", file: file)
        }
        let arch = (o["architectures"] as? [String])?.first ?? "missing"
        guard Self.architectures.contains(arch) else {
            throw ComputeError(
                .unsupportedModel,
                "architectures \(arch) is not supported (\(Self.architectures.joined(separator: ", ")))", file: file)
        }
        func int(_ k: String) throws -> Int {
            guard let v = try optionalInt(k) else {
                throw ComputeError(.corruptData, "\(k) is missing or not an integer", file: file)
            }
            return v
        }
        // A present key of the wrong type is refused, never read as its default.
        func optionalInt(_ k: String) throws -> Int? {
            guard let raw = o[k], !(raw is NSNull) else { return nil }
            guard let n = raw as? NSNumber, !Self.isBool(n), let v = Int(exactly: n.doubleValue) else {
                throw ComputeError(.corruptData, "\(k) is \(Self.shown(raw)), not an integer", file: file)
            }
            return v
        }
        func number(_ k: String) throws -> Double? {
            guard let raw = o[k], !(raw is NSNull) else { return nil }
            guard let n = raw as? NSNumber, !Self.isBool(n) else {
                throw ComputeError(.corruptData, "\(k) is \(Self.shown(raw)), not a number", file: file)
            }
            return n.doubleValue
        }
        func bool(_ k: String) throws -> Bool? {
            guard let raw = o[k], !(raw is NSNull) else { return nil }
            guard let n = raw as? NSNumber, Self.isBool(n) else {
                throw ComputeError(.corruptData, "\(k) is \(Self.shown(raw)), not true or false", file: file)
            }
            return n.boolValue
        }
        if let s = o["rope_scaling"], !(s is NSNull) {
            let type = (s as? [String: Any]).flatMap { ($0["rope_type"] ?? $0["type"]) as? String } ?? "unknown"
            guard type == "default" else {
                throw ComputeError(
                    .unsupportedModel, "rope_scaling type \(type) is not supported (only unscaled RoPE)", file: file)
            }
        }
        let act = o["hidden_act"] as? String ?? "silu"
        guard act == "silu" else {
            throw ComputeError(.unsupportedModel, "hidden_act \(act) is not supported (silu is)", file: file)
        }
        if o["mlp_bias"] as? Bool == true {
            throw ComputeError(.unsupportedModel, "mlp_bias true is not supported", file: file)
        }
        let heads = try int("num_attention_heads")
        self.init(
            hidden: try int("hidden_size"), intermediate: try int("intermediate_size"),
            layers: try int("num_hidden_layers"),
            heads: heads, kvHeads: try optionalInt("num_key_value_heads") ?? heads,
            headDim: try optionalInt("head_dim"),
            eps: Float(try number("rms_norm_eps") ?? 1e-6), ropeTheta: try number("rope_theta") ?? 10000,
            vocabSize: try int("vocab_size"), contextLength: try optionalInt("max_position_embeddings") ?? 2048,
            tied: try bool("tie_word_embeddings") ?? false)
        architecture = arch
        func intArray(_ k: String) throws -> [Int]? {
            guard let raw = o[k], !(raw is NSNull) else { return nil }
            guard let a = raw as? [Any], a.count <= 1 << 16 else {
                throw ComputeError(.corruptData, "\(k) is \(Self.shown(raw)), not a list of integers", file: file)
            }
            return try a.map { v in
                guard let n = v as? NSNumber, !Self.isBool(n), let i = Int(exactly: n.doubleValue) else {
                    throw ComputeError(.corruptData, "\(k) holds \(Self.shown(v)), not an integer", file: file)
                }
                return i
            }
        }
        let perLayer = (
            try intArray(Self.layerKeys.intermediate), try intArray(Self.layerKeys.heads),
            try intArray(Self.layerKeys.kvHeads)
        )
        if perLayer.0 != nil || perLayer.1 != nil || perLayer.2 != nil {
            let n = perLayer.0?.count ?? perLayer.1?.count ?? perLayer.2?.count ?? 0
            let counts: [Int?] = [perLayer.0?.count, perLayer.1?.count, perLayer.2?.count]
            guard counts.allSatisfy({ $0 == nil || $0 == n }) else {
                throw ComputeError(.corruptData, "the per-layer size lists differ in length", file: file)
            }
            layerShapes = (0..<n).map { i in
                LayerShape(
                    intermediate: perLayer.0?[i] ?? intermediate, heads: perLayer.1?[i] ?? heads,
                    kvHeads: perLayer.2?[i] ?? kvHeads)
            }
        }
        outputBias = try bool(Self.layerKeys.outputBias) ?? false
        shortcuts = try bool(Self.layerKeys.shortcuts) ?? false
        let attentionBias = try bool("attention_bias") ?? false
        qkvBias = arch == "Qwen2ForCausalLM" || attentionBias
        if arch == "MistralForCausalLM" { slidingWindow = try optionalInt("sliding_window") }
        for (key, id) in [
            ("bos_token_id", try optionalInt("bos_token_id")), ("eos_token_id", try optionalInt("eos_token_id"))
        ] {
            guard let id else { continue }
            guard id >= 0 && id < vocabSize else {
                throw ComputeError(
                    .corruptData, "\(key) \(id) is not a token id below vocab_size \(vocabSize)", file: file)
            }
            if key == "bos_token_id" { bosTokenID = Int32(id) } else { eosTokenID = Int32(id) }
        }
        self = try validated(file) { k in Self.hfKeys[k] ?? k }
    }

    /// JSONSerialization gives booleans as NSNumber too: tell them apart from numbers.
    private static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    /// A config value as the error shows it (strings quoted, at most 40 characters).
    private static func shown(_ v: Any) -> String {
        if let s = v as? String { return "the string \(TextRules.printable(String(s.prefix(40))))" }
        return TextRules.printable(String(String(describing: v).prefix(40)))
    }

    /// config.json keys of a structurally pruned model (Squeeze's own; documented in docs/FORMATS.md).
    public static let layerKeys = (
        intermediate: "layer_intermediate_sizes", heads: "layer_num_attention_heads",
        kvHeads: "layer_num_key_value_heads", outputBias: "output_bias", shortcuts: "residual_shortcuts"
    )

    static let hfKeys = [
        "hidden": "hidden_size", "intermediate": "intermediate_size", "layers": "num_hidden_layers",
        "heads": "num_attention_heads", "kvHeads": "num_key_value_heads", "headDim": "head_dim",
        "vocabSize": "vocab_size", "contextLength": "max_position_embeddings", "eps": "rms_norm_eps",
        "ropeTheta": "rope_theta",
        "slidingWindow": "sliding_window"
    ]
}
