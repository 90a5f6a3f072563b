import Foundation

/// A byte-level BPE tokenizer (GPT-2 style, as Llama 3, Qwen2, Mistral's newer and SmolLM
/// models use): added/special tokens matched first, a regex pre-tokenizer, UTF-8 bytes mapped to
/// printable characters, then merges by rank. Loaded from tokenizer.json or from a GGUF's
/// `tokenizer.ggml.*`; token ids checked against the `tokenizers` package in the tests.
public struct ByteLevelBPE: TextTokenizer {
    /// Token text (byte-level characters) by id.
    public let tokens: [String]
    let ids: [String: Int32]
    /// (left id << 32 | right id) → (rank, merged id).
    let merges: [UInt64: (rank: Int32, merged: Int32)]
    /// The merges as "left right" lines, by rank.
    public let mergeList: [String]
    /// Added tokens matched verbatim before pre-tokenizing, longest first.
    let added: [(text: String, id: Int32)]
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

    public var vocabularySize: Int { tokens.count }
    /// The pre-tokenizer's regex sequence (its source text).
    public var preTokenizerPatterns: [String] { preTokenizer.patterns }
    /// Added tokens (text, id), longest first.
    public var addedTokens: [(text: String, id: Int32)] { added }
    public var framing: (prefix: [Int32], suffix: [Int32]) { (addBOS ? bos.map { [$0] } ?? [] : [], []) }

    init(
        tokens: [String], merges mergeList: [String], added: [(String, Int32)], special: Set<Int32>,
        preTokenizer: PreTokenizer,
        ignoreMerges: Bool, bos: Int32?, eos: Int32?, addBOS: Bool, identity: String
    ) throws {
        self.tokens = tokens
        var ids = [String: Int32](minimumCapacity: tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        self.ids = ids
        var m = [UInt64: (rank: Int32, merged: Int32)](minimumCapacity: mergeList.count)
        for (rank, line) in mergeList.enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let a = ids[String(parts[0])], let b = ids[String(parts[1])],
                let c = ids[String(parts[0] + parts[1])]
            else {
                throw ComputeError(
                    .corruptData,
                    "merge \(rank) (\(TextRules.printable(line))) does not join two tokens of the vocabulary into a "
                    + "third",
                    file: identity)
            }
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if m[key] == nil { m[key] = (Int32(rank), c) }
        }
        merges = m
        self.mergeList = mergeList
        specialIDs = special
        self.added = added.sorted { $0.0.utf8.count > $1.0.utf8.count }
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

    /// Token ids of `text` (no BOS).
    public func encode(_ text: String) -> [Int32] {
        var out = [Int32]()
        var cache = [String: [Int32]]()
        for (piece, special) in splitAdded(text) {
            if let special {
                out.append(special)
                continue
            }
            for word in preTokenizer.split(String(piece)) {
                if let hit = cache[word] {
                    out += hit
                    continue
                }
                let ids = bpe(word)
                cache[word] = ids
                out += ids
            }
        }
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

    /// `text` cut into plain pieces and added tokens (with their ids), in order: at each step the
    /// earliest occurrence of any added token (the longest at one position). Each token's next
    /// occurrence is searched again only once the text has moved past it, so a text full of special
    /// tokens is cut in one pass, not one scan per occurrence.
    private func splitAdded(_ text: String) -> [(Substring, Int32?)] {
        guard !added.isEmpty else { return [(text[...], nil)] }
        var out = [(Substring, Int32?)]()
        var start = text.startIndex
        var next = added.map { text.range(of: $0.text) }
        while start < text.endIndex {
            var best: Int?
            for (i, r) in next.enumerated() {
                guard let r else { continue }
                if best == nil || r.lowerBound < next[best!]!.lowerBound { best = i }
            }
            guard let b = best, let r = next[b] else {
                out.append((text[start...], nil))
                break
            }
            if r.lowerBound > start { out.append((text[start..<r.lowerBound], nil)) }
            out.append((text[r], added[b].id))
            start = r.upperBound
            for i in next.indices where next[i].map({ $0.lowerBound < start }) ?? false {
                next[i] = text.range(of: added[i].text, range: start..<text.endIndex)
            }
        }
        return out
    }

    /// Merges one pre-tokenized word: the lowest-ranked adjacent pair first, leftmost on ties.
    func bpe(_ word: String) -> [Int32] {
        let mapped = String(String.UnicodeScalarView(word.utf8.map { Self.byteChars[Int($0)] }))
        if ignoreMerges, let id = ids[mapped] { return [id] }
        // Bytes without a token are dropped, as the `tokenizers` BPE does without an unknown token.
        var syms = mapped.unicodeScalars.compactMap { ids[String($0)] }
        while syms.count > 1 {
            var bestRank = Int32.max, bestAt = -1, bestID: Int32 = 0
            for i in 0..<(syms.count - 1) {
                let key = UInt64(UInt32(syms[i])) << 32 | UInt64(UInt32(syms[i + 1]))
                if let m = merges[key], m.rank < bestRank { (bestRank, bestAt, bestID) = (m.rank, i, m.merged) }
            }
            guard bestAt >= 0 else { break }
            syms[bestAt] = bestID
            syms.remove(at: bestAt + 1)
        }
        return syms
    }

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
