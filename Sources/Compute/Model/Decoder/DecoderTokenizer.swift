import Foundation

/// A decoder model's tokenizer: byte-level BPE (`ByteLevelBPE`: GPT-2 style, Llama 3, Qwen2,
/// SmolLM) or SentencePiece-style BPE (`SentencePieceBPE`: Llama 2, Mistral 7B, TinyLlama).
public protocol DecoderTokenizer: TextTokenizer {
    var bos: Int32? { get }
    var eos: Int32? { get }
    /// Whether a window starts with the BOS token.
    var addBOS: Bool { get }
    var vocabularySize: Int { get }
    /// Token text by id.
    var tokens: [String] { get }
    /// Text of `ids` (invalid UTF-8 replaced).
    func decode(_ ids: [Int32]) -> String
    /// llama.cpp's `tokenizer.ggml.*` keys for a GGUF with `vocabSize` embedding rows (ids beyond the
    /// tokenizer's get placeholder tokens) and the config's special ids.
    func ggufKeys(vocabSize: Int, bos: Int32?, eos: Int32?) throws -> [(String, GGUFValue)]
    /// The `tokenizers` package's tokenizer.json for it.
    func tokenizerJSON() -> [String: Any]
}

/// Loading a decoder tokenizer of either kind.
public enum DecoderTokenizers {
    /// A tokenizer.json, SentencePiece-style when its pre-tokenizer or normalizer says so.
    public static func load(tokenizerJSON file: String) throws -> any DecoderTokenizer {
        let root = try parse(tokenizerJSON: file)
        if SentencePieceBPE.describes(root) { return try SentencePieceBPE(tokenizerJSON: root, file: file) }
        return try ByteLevelBPE(tokenizerJSON: root, file: file)
    }

    /// A GGUF's `tokenizer.ggml.*`: model `llama` (SentencePiece) or `gpt2` (byte-level BPE).
    public static func load(gguf meta: [String: GGUFValue], file: String) throws -> any DecoderTokenizer {
        if case .string("llama")? = meta["tokenizer.ggml.model"] { return try SentencePieceBPE(gguf: meta, file: file) }
        return try ByteLevelBPE(gguf: meta, file: file)
    }

    /// A tokenizer.json's JSON.
    static func parse(tokenizerJSON file: String) throws -> JSONValue {
        let bytes = try InputFile.contents(of: file, what: "tokenizer.json", limit: InputFile.configLimit)
        do { return try JSONParser.parse(bytes, maxDepth: 16) } catch {
            throw ComputeError(.corruptData, "tokenizer.json: \(error)", file: file)
        }
    }

    /// Token text → id (the first id of a repeated text).
    static func index(_ tokens: [String]) -> [String: Int32] {
        var ids = [String: Int32](minimumCapacity: tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        return ids
    }

    /// A BPE tokenizer.json's tokens by id (vocabulary and added tokens), its added tokens and which of those
    /// are special.
    static func vocabulary(_ root: JSONValue, model: JSONValue, fail: (String, String) -> ComputeError) throws
        -> (tokens: [String], added: [(String, Int32)], special: Set<Int32>)
    {
        guard case .object(let vocab)? = model["vocab"] else { throw fail("model.vocab", "missing or not an object") }
        var byID = [Int: String]()
        for (t, v) in vocab {
            guard let i = v.uint64Value, i < 1 << 22 else {
                throw fail("model.vocab", "id of \(TextRules.printable(t)) is not a small integer")
            }
            byID[Int(i)] = t
        }
        var added = [(String, Int32)]()
        var special = Set<Int32>()
        if case .array(let list)? = root["added_tokens"] {
            for a in list {
                guard let t = a["content"]?.stringValue, !t.isEmpty, let i = a["id"]?.uint64Value, i < 1 << 22 else {
                    throw fail("added_tokens", "entry without content or id")
                }
                byID[Int(i)] = t
                added.append((t, Int32(i)))
                if case .bool(true)? = a["special"] { special.insert(Int32(i)) }
            }
        }
        let count = (byID.keys.max() ?? -1) + 1
        return ((0..<count).map { byID[$0] ?? "" }, added, special)
    }

    /// A BPE model's merges as "left right" lines (written as strings or as [left, right] pairs).
    static func mergeLines(_ model: JSONValue, fail: (String, String) -> ComputeError) throws -> [String] {
        guard case .array(let mergeValues)? = model["merges"] else {
            throw fail("model.merges", "missing or not an array")
        }
        return try mergeValues.map { v in
            if let s = v.stringValue { return s }
            if case .array(let p) = v, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue {
                return a + " " + b
            }
            throw fail("model.merges", "entries must be \"a b\" strings or [a, b] pairs")
        }
    }

    /// The token a `TemplateProcessing` post-processor puts first in a single sequence (the BOS).
    static func templateBOS(_ root: JSONValue, ids: [String: Int32]) -> Int32? {
        guard let single = root["post_processor"]?["single"], case .array(let items) = single,
            let first = items.first?["SpecialToken"]?["id"]?.stringValue
        else { return nil }
        return ids[first]
    }

    /// tokenizer.json's `model.vocab` (text → the first id of that text) and `added_tokens`.
    static func vocabularyJSON(_ tokens: [String], added: [(text: String, id: Int32)], special: Set<Int32>) -> (
        vocab: [String: Int], added: [[String: Any]]
    ) {
        var vocab = [String: Int]()
        for (i, tok) in tokens.enumerated() where !tok.isEmpty && vocab[tok] == nil { vocab[tok] = i }
        let list: [[String: Any]] = added.sorted { $0.id < $1.id }.map { a in
            [
                "id": Int(a.id), "content": a.text, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": special.contains(a.id)
            ]
        }
        return (vocab, list)
    }

    /// Tokens padded with placeholders to `vocabSize` embedding rows, and llama.cpp's token type
    /// of each (`type` for the tokenizer's own, 5 unused for placeholders and holes).
    static func padded(_ tokens: [String], vocabSize: Int, type: (Int) -> Int32) -> ([String], [Int32]) {
        var all = tokens
        if all.count < vocabSize { all += (all.count..<vocabSize).map { "[PAD\($0)]" } }
        let types: [Int32] = all.indices.map { i in i >= tokens.count || tokens[i].isEmpty ? 5 : type(i) }
        return (all, types)
    }
}
