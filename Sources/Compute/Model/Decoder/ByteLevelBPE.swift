import Foundation

/// A byte-level BPE tokenizer (GPT-2 style, as Llama 3, Qwen2, Mistral's newer and SmolLM
/// models use): added/special tokens matched first, a regex pre-tokenizer, UTF-8 bytes mapped to
/// printable characters, then merges by rank. Loaded from tokenizer.json or from a GGUF's
/// `tokenizer.ggml.*`; token ids checked against the `tokenizers` package in the tests.
public struct ByteLevelBPE: DecoderTokenizer {
    /// Token text (byte-level characters) by id.
    public let tokens: [String]
    let ids: [String: Int32]
    /// (left id << 32 | right id) → (rank, merged id).
    let merges: [UInt64: (rank: Int32, merged: Int32)]
    /// The merges as "left right" lines, by rank.
    public let mergeList: [String]
    /// Added tokens matched verbatim before pre-tokenizing, longest first.
    let added: [(text: String, id: Int32)]
    /// The added tokens, searched in one pass (`splitAdded`).
    let addedMatcher: AddedTokenMatcher
    /// Added tokens that are special (control) tokens; the other added tokens are user-defined.
    public let specialIDs: Set<Int32>
    let preTokenizer: PreTokenizer
    /// Llama 3's `ignore_merges`: a word that is itself a token is not merged.
    let ignoreMerges: Bool
    public let bos: Int32?
    public let eos: Int32?
    /// Whether a window starts with the BOS token (tokenizer config / `tokenizer.ggml.add_bos_token`).
    public let addBOS: Bool
    /// Where it was loaded from (identifies it in caches).
    public let identity: String
    /// The tokenizer's normalizer is NFC: text is composed before anything else.
    let nfc: Bool

    public var vocabularySize: Int { tokens.count }
    /// The pre-tokenizer's regex sequence (its source text).
    public var preTokenizerPatterns: [String] { preTokenizer.patterns }
    /// Added tokens (text, id), longest first.
    public var addedTokens: [(text: String, id: Int32)] { added }
    public var framing: (prefix: [Int32], suffix: [Int32]) { (addBOS ? bos.map { [$0] } ?? [] : [], []) }

    init(
        tokens: [String], merges mergeList: [String], added: [(String, Int32)], special: Set<Int32>,
        preTokenizer: PreTokenizer,
        ignoreMerges: Bool, bos: Int32?, eos: Int32?, addBOS: Bool, identity: String, nfc: Bool = false
    ) throws {
        self.nfc = nfc
        self.tokens = tokens
        let ids = DecoderTokenizers.index(tokens)
        self.ids = ids
        merges = try BPEMerge.rules(lines: mergeList, ids: ids) { rank, line in
            ComputeError(
                .corruptData,
                "merge \(rank) (\(TextRules.printable(line))) does not join two tokens of the vocabulary into a third",
                file: identity)
        }
        self.mergeList = mergeList
        specialIDs = special
        self.added = added.sorted { $0.0.utf8.count > $1.0.utf8.count }
        addedMatcher = AddedTokenMatcher(added.map { (text: $0.0, id: $0.1) })
        self.preTokenizer = preTokenizer
        self.ignoreMerges = ignoreMerges
        self.bos = bos
        self.eos = eos
        self.addBOS = addBOS
        self.identity = identity
        let known = Self.byteChars.filter { ids[String($0)] != nil }.count
        guard known >= 128 else {
            throw ComputeError(
                .corruptData,
                "the vocabulary holds tokens for \(known) of the 256 byte characters (not a byte-level BPE vocabulary)",
                file: identity)
        }
    }

    /// Token ids of `text` (no BOS). Plain text is pre-tokenized in chunks of about 1 MiB cut where
    /// no pre-token can cross (a newline after a letter or digit), so memory stays a small multiple
    /// of the ids however long the text; a pre-token over `maxWordBytes` (runs of one character,
    /// never prose) is merged in pieces of that size.
    public func encode(_ raw: String) -> [Int32] {
        let text = nfc ? raw.precomposedStringWithCanonicalMapping : raw
        var out = [Int32]()
        var cache = [String: [Int32]]()
        for (piece, special) in addedMatcher.split(text) {
            if let special {
                out.append(special)
                continue
            }
            for chunk in Self.chunks(piece) {
                for word in preTokenizer.split(String(chunk)) {
                    for part in Self.capped(word) {
                        if let hit = cache[part] {
                            out += hit
                            continue
                        }
                        let ids = bpe(part)
                        if cache.count >= Self.cacheWords { cache.removeAll(keepingCapacity: true) }
                        cache[part] = ids
                        out += ids
                    }
                }
            }
        }
        return out
    }

    /// Pre-tokenizing works on pieces of about this many bytes.
    static let chunkBytes = 1 << 20
    /// Longest pre-token merged whole (bytes); longer ones are merged in pieces of this size.
    public static let maxWordBytes = 8192
    /// Words whose ids are remembered within one `encode` (the cache is emptied beyond).
    static let cacheWords = 1 << 16

    /// `text` cut before a newline that follows a letter or digit once a piece reaches
    /// `chunkBytes`: no alternative of the supported pre-tokenizer patterns matches across such a
    /// point, so the pieces pre-tokenize to the same words as the whole. Text with no such point
    /// for 4 × `chunkBytes` is cut where it stands (a run of symbols, never prose).
    static func chunks(_ text: Substring) -> [Substring] {
        guard text.utf8.count > chunkBytes else { return [text] }
        var out = [Substring]()
        var start = text.startIndex
        var bytes = 0
        var previous: Unicode.Scalar?
        var i = text.unicodeScalars.startIndex
        while i < text.unicodeScalars.endIndex {
            let c = text.unicodeScalars[i]
            let safe = c == "\n" && previous.map(isLetterOrDigit) == true
            if (bytes >= chunkBytes && safe) || bytes >= 4 * chunkBytes {
                out.append(text[start..<i])
                start = i
                bytes = 0
            }
            bytes += c.utf8.count
            previous = c
            i = text.unicodeScalars.index(after: i)
        }
        if start < text.endIndex { out.append(text[start...]) }
        return out
    }

    /// \p{L} or \p{N}, as the pre-tokenizer patterns read them.
    static func isLetterOrDigit(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    /// `word` in pieces of at most `maxWordBytes` bytes, cut between characters.
    static func capped(_ word: String) -> [String] {
        guard word.utf8.count > maxWordBytes else { return [word] }
        var out = [String]()
        var piece = String.UnicodeScalarView()
        var bytes = 0
        for c in word.unicodeScalars {
            if bytes + c.utf8.count > maxWordBytes {
                out.append(String(piece))
                piece = String.UnicodeScalarView()
                bytes = 0
            }
            piece.append(c)
            bytes += c.utf8.count
        }
        if !piece.isEmpty { out.append(String(piece)) }
        return out
    }

    /// Text of `ids` (byte-level characters mapped back to UTF-8; invalid sequences replaced).
    public func decode(_ ids: [Int32]) -> String {
        var bytes = [UInt8]()
        let addedIDs = Set(added.map(\.id))
        for id in ids where id >= 0 && Int(id) < tokens.count {
            if addedIDs.contains(id) {
                bytes += Array(tokens[Int(id)].utf8)
                continue
            }
            for ch in tokens[Int(id)].unicodeScalars { if let b = Self.charToByte[ch] { bytes.append(b) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Merges one pre-tokenized word by the merge ranks (`BPEMerge`).
    func bpe(_ word: String) -> [Int32] {
        let mapped = String(String.UnicodeScalarView(word.utf8.map { Self.byteChars[Int($0)] }))
        if ignoreMerges, let id = ids[mapped] { return [id] }
        // Bytes without a token are dropped, as the `tokenizers` BPE does without an unknown token.
        return BPEMerge.apply(mapped.unicodeScalars.compactMap { ids[String($0)] }, rules: merges)
    }

    static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { BPEMerge.pairKey(a, b) }

    /// GPT-2's byte → printable character table.
    static let byteChars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar?](repeating: nil, count: 256)
        for b in Array(33...126) + Array(161...172) + Array(174...255) { table[b] = Unicode.Scalar(UInt32(b)) }
        var n: UInt32 = 0
        for b in 0..<256 where table[b] == nil {
            table[b] = Unicode.Scalar(256 + n)
            n += 1
        }
        return table.map { $0! }
    }()

    static let charToByte: [Unicode.Scalar: UInt8] = {
        var m = [Unicode.Scalar: UInt8]()
        for (i, c) in byteChars.enumerated() { m[c] = UInt8(i) }
        return m
    }()
}
