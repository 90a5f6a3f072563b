import Foundation

extension ByteLevelBPE {
    /// Loads a Hugging Face `tokenizer.json` whose model is byte-level BPE (byte fallback only where
    /// the vocabulary holds every byte, so it never applies; no normalizer, NFC, or a `Sequence` of
    /// those, as `tokenizers` writes them); its pre-tokenizer may be `ByteLevel`, `Digits`, `Split`
    /// (Isolated) or a `Sequence` of them. Anything else is refused naming the key.
    public init(tokenizerJSON file: String) throws {
        try self.init(tokenizerJSON: try DecoderTokenizers.parse(tokenizerJSON: file), file: file)
    }

    init(tokenizerJSON root: JSONValue, file: String) throws {
        func fail(_ key: String, _ why: String) -> ComputeError {
            ComputeError(.corruptData, "tokenizer.json \(key): \(why)", file: file)
        }
        guard let model = root["model"], model["type"]?.stringValue == "BPE" else {
            throw fail("model.type", "must be BPE (byte-level or SentencePiece-style BPE tokenizers are supported)")
        }
        // A normalizer, or a Sequence of them, each NFC (an empty Sequence normalizes nothing).
        var nfc = false
        if let n = root["normalizer"], n != .null {
            var parts = [n]
            if n["type"]?.stringValue == "Sequence" {
                guard case .array(let list)? = n["normalizers"] else {
                    throw fail("normalizer.normalizers", "missing or not a list")
                }
                parts = list
            }
            for p in parts where p["type"]?.stringValue != "NFC" {
                throw fail("normalizer", "\(p["type"]?.stringValue ?? "?") is not supported (none or NFC)")
            }
            nfc = !parts.isEmpty
        }
        let byteFallback: Bool = { if case .bool(true)? = model["byte_fallback"] { true } else { false } }()
        let (tokens, added, special) = try DecoderTokenizers.vocabulary(root, model: model, fail: fail)
        let merges = try DecoderTokenizers.mergeLines(model, fail: fail)
        let patterns = try Self.patterns(root["pre_tokenizer"] ?? .null, fail: fail)
        let bos = DecoderTokenizers.templateBOS(root, ids: DecoderTokenizers.index(tokens))
        var ignore = false
        if case .bool(let b)? = model["ignore_merges"] { ignore = b }
        // Byte fallback turns a byte without a token into <0xNN>; a byte-level vocabulary has a token
        // for every byte, so it never applies there (transformers writes it true for SmolLM2).
        if byteFallback {
            let known = Set(tokens)
            guard Self.byteChars.allSatisfy({ known.contains(String($0)) }) else {
                throw fail(
                    "model.byte_fallback",
                    "true on a vocabulary without every byte-level character, and no Metaspace pre-tokenizer or "
                        + "\"▁\" normalizer: neither byte-level nor SentencePiece-style BPE")
            }
        }
        try self.init(
            tokens: tokens, merges: merges, added: added, special: special,
            preTokenizer: PreTokenizer(patterns: patterns),
            ignoreMerges: ignore, bos: bos, eos: nil, addBOS: bos != nil, identity: file, nfc: nfc)
    }

    /// The regex sequence a tokenizer.json pre-tokenizer amounts to.
    private static func patterns(_ p: JSONValue, fail: (String, String) -> ComputeError) throws -> [String] {
        switch p["type"]?.stringValue {
        case nil where p == .null: return []
        case "Sequence":
            guard case .array(let items)? = p["pretokenizers"] else {
                throw fail("pre_tokenizer.pretokenizers", "missing")
            }
            return try items.flatMap { try patterns($0, fail: fail) }
        case "ByteLevel":
            if case .bool(true)? = p["add_prefix_space"] {
                throw fail("pre_tokenizer.add_prefix_space", "true is not supported")
            }
            if case .bool(false)? = p["use_regex"] { return [] }
            return [PreTokenizer.gpt2]
        case "Digits":
            guard case .bool(true)? = p["individual_digits"] else { return [#"\p{N}+"#] }
            return [PreTokenizer.digits]
        case "Split":
            guard
                let pattern = p["pattern"]?["Regex"]?.stringValue
                    ?? p["pattern"]?["String"]?.stringValue.map(NSRegularExpression.escapedPattern)
            else {
                throw fail("pre_tokenizer.pattern", "missing")
            }
            guard p["behavior"]?.stringValue == "Isolated", p["invert"] != .bool(true) else {
                throw fail("pre_tokenizer.behavior", "only Isolated, not inverted, is supported")
            }
            return [pattern]
        case let t:
            throw fail("pre_tokenizer.type", "\(t ?? "?") is not supported (ByteLevel, Digits, Split, Sequence)")
        }
    }

    /// Loads `tokenizer.ggml.*` of a GGUF file (`model` gpt2, a `pre` Squeeze knows).
    public init(gguf meta: [String: GGUFValue], file: String) throws {
        func fail(_ key: String, _ why: String) -> ComputeError {
            ComputeError(.corruptData, "\(key): \(why)", file: file)
        }
        guard case .string(let model)? = meta["tokenizer.ggml.model"] else {
            throw fail("tokenizer.ggml.model", "missing")
        }
        guard model == "gpt2" else {
            throw fail("tokenizer.ggml.model", "\(TextRules.printable(model)) is not supported (gpt2: byte-level BPE)")
        }
        guard case .array(.string(let tokens))? = meta["tokenizer.ggml.tokens"], !tokens.isEmpty else {
            throw fail("tokenizer.ggml.tokens", "missing or not a string array")
        }
        guard case .array(.string(let merges))? = meta["tokenizer.ggml.merges"] else {
            throw fail("tokenizer.ggml.merges", "missing or not a string array")
        }
        var pre = "default"
        if case .string(let p)? = meta["tokenizer.ggml.pre"] { pre = p }
        guard let patterns = PreTokenizer.forGGMLPre(pre) else {
            throw fail(
                "tokenizer.ggml.pre",
                "\(TextRules.printable(pre)) is not a pre-tokenizer Squeeze knows (gpt-2, smollm, starcoder, "
                    + "llama-bpe, qwen2)"
            )
        }
        var added = [(String, Int32)]()
        var special = Set<Int32>()
        if let types = meta["tokenizer.ggml.token_type"] {
            guard case .array(.int32(let t)) = types, t.count == tokens.count else {
                throw fail("tokenizer.ggml.token_type", "must be \(tokens.count) int32 values")
            }
            for (i, ty) in t.enumerated() where ty == 3 || ty == 4 {
                added.append((tokens[i], Int32(i)))
                if ty == 3 { special.insert(Int32(i)) }
            }
        }
        func id(_ key: String) throws -> Int32? {
            guard let v = meta[key] else { return nil }
            guard let n = v.integer, n >= 0, n < tokens.count else {
                throw fail(key, "is not a token id below \(tokens.count)")
            }
            return Int32(n)
        }
        var addBOS = false
        if case .bool(let b)? = meta["tokenizer.ggml.add_bos_token"] { addBOS = b }
        let bos = try id("tokenizer.ggml.bos_token_id")
        try self.init(
            tokens: tokens, merges: merges, added: added, special: special,
            preTokenizer: PreTokenizer(patterns: patterns),
            ignoreMerges: pre.hasPrefix("llama"),
            bos: bos, eos: try id("tokenizer.ggml.eos_token_id"), addBOS: addBOS && bos != nil, identity: file)
    }
}
