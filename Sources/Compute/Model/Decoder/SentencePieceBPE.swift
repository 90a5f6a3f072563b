import Foundation

/// A SentencePiece-style BPE tokenizer (Llama 2, Mistral 7B, TinyLlama): spaces become "▁", a "▁"
/// goes before the text, characters merge by rank, and a character without a token becomes its
/// UTF-8 bytes' `<0xNN>` tokens (byte fallback). Loaded from tokenizer.json (merge ranks, as the
/// `tokenizers` package applies them) or from a GGUF with `tokenizer.ggml.model = llama` (token
/// scores, as llama.cpp applies them); token ids checked against both in the tests.
public struct SentencePieceBPE: DecoderTokenizer {
    /// Where a "▁" is put before a piece of plain text (the text between added tokens).
    public enum Prefix: String, Sendable {
        /// Before every piece: the legacy `Prepend` normalizer, llama.cpp's `add_space_prefix`.
        case everyPiece
        /// Before the text's first piece only, unless it starts with "▁" (Metaspace `first`).
        case firstPiece
        /// Before every piece that does not start with "▁" (Metaspace `always`).
        case unlessSpace
        case none
    }

    /// Token text by id ("▁" for spaces, `<0xNN>` for bytes).
    public let tokens: [String]
    let ids: [String: Int32]
    let rules: BPEMerge.Rules
    /// The merges as "left right" lines, by rank.
    let mergeList: [String]
    /// The `<0xNN>` token of each byte, where the vocabulary has one.
    let byteTokens: [Int32?]
    let unk: Int32?
    /// Added tokens matched verbatim before anything else.
    let addedMatcher: AddedTokenMatcher
    public let addedTokens: [(text: String, id: Int32)]
    public let specialIDs: Set<Int32>
    let prefix: Prefix
    /// Metaspace `split`: words cut before each "▁", merged one by one.
    let splitWords: Bool
    /// Consecutive unknown characters become one unknown token (`fuse_unk`).
    let fuseUnknown: Bool
    let nfc: Bool
    public let bos: Int32?
    public let eos: Int32?
    public let addBOS: Bool
    public let identity: String

    public var vocabularySize: Int { tokens.count }
    public var framing: (prefix: [Int32], suffix: [Int32]) { (addBOS ? bos.map { [$0] } ?? [] : [], []) }

    /// The configuration a loader reads.
    struct Options {
        var prefix = Prefix.everyPiece
        var splitWords = false
        var fuseUnknown = true
        var nfc = false
        var unk: Int32?
        var bos: Int32?
        var eos: Int32?
        var addBOS = true
    }

    init(
        tokens: [String], rules: BPEMerge.Rules, mergeList: [String], added: [(String, Int32)], special: Set<Int32>,
        options o: Options, identity: String
    ) {
        self.tokens = tokens
        ids = DecoderTokenizers.index(tokens)
        self.rules = rules
        self.mergeList = mergeList
        let index = ids
        byteTokens = (0..<256).map { index[String(format: "<0x%02X>", $0)] }
        unk = o.unk
        addedMatcher = AddedTokenMatcher(added.map { (text: $0.0, id: $0.1) })
        addedTokens = added.sorted { $0.0.utf8.count > $1.0.utf8.count }
        specialIDs = special
        prefix = o.prefix
        splitWords = o.splitWords
        fuseUnknown = o.fuseUnknown
        nfc = o.nfc
        bos = o.bos
        eos = o.eos
        addBOS = o.addBOS
        self.identity = identity
    }

    /// Token ids of `text` (no BOS).
    public func encode(_ raw: String) -> [Int32] {
        let text = nfc ? raw.precomposedStringWithCanonicalMapping : raw
        var out = [Int32]()
        var first = true
        for (piece, special) in addedMatcher.split(text) {
            defer { first = false }
            if let special {
                out.append(special)
                continue
            }
            var s = piece.replacingOccurrences(of: " ", with: "\u{2581}")
            switch prefix {
            case .everyPiece: s = "\u{2581}" + s
            case .firstPiece where first && !s.hasPrefix("\u{2581}"): s = "\u{2581}" + s
            case .unlessSpace where !s.hasPrefix("\u{2581}"): s = "\u{2581}" + s
            default: break
            }
            for word in splitWords ? Self.words(s) : [s[...]] { out += bpe(word) }
        }
        return out
    }

    /// `s` cut before each "▁" (Metaspace's split, merged with the next word).
    static func words(_ s: String) -> [Substring] {
        var out = [Substring]()
        var start = s.startIndex
        for i in s.indices where s[i] == "\u{2581}" && i > start {
            out.append(s[start..<i])
            start = i
        }
        if start < s.endIndex { out.append(s[start...]) }
        return out
    }

    /// One word's ids: characters (bytes or the unknown token where the vocabulary lacks them), merged.
    func bpe(_ word: Substring) -> [Int32] {
        var syms = [Int32]()
        var lastUnknown = false
        for c in word.unicodeScalars {
            if let id = ids[String(c)] {
                syms.append(id)
                lastUnknown = false
                continue
            }
            let bytes = Array(String(c).utf8)
            let fallback = bytes.compactMap { byteTokens[Int($0)] }
            if fallback.count == bytes.count {
                syms += fallback
                lastUnknown = false
            } else if let unk, !(fuseUnknown && lastUnknown) {
                syms.append(unk)
                lastUnknown = true
            }
        }
        return BPEMerge.apply(syms, rules: rules)
    }

    /// Text of `ids`: "▁" as spaces, byte tokens as their bytes (invalid UTF-8 replaced), control
    /// tokens left out.
    public func decode(_ ids: [Int32]) -> String {
        var bytes = [UInt8]()
        for id in ids where id >= 0 && Int(id) < tokens.count {
            if let b = byteTokens.firstIndex(of: id) {
                bytes.append(UInt8(b))
                continue
            }
            if specialIDs.contains(id) || id == unk { continue }
            bytes += Array(tokens[Int(id)].replacingOccurrences(of: "\u{2581}", with: " ").utf8)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
