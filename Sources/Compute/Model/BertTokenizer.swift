import Foundation

/// BERT's uncased WordPiece tokenizer (the `BertNormalizer` + `BertPreTokenizer` + `WordPiece`
/// of tokenizer.json, with lowercasing and accent stripping), from the model's `vocab.txt`.
/// Checked against the `tokenizers` package in the tests.
public struct BertTokenizer: Sendable {
    public let vocab: [String: Int32]
    public let unk: Int32, cls: Int32, sep: Int32, pad: Int32
    public let lowercase: Bool
    /// The vocab.txt it was loaded from (identifies the tokenizer in caches).
    public let vocabFile: String
    static let maxCharsPerWord = 100

    /// Loads `vocab.txt` (one token per line, id = line number).
    public init(vocabFile: String, lowercase: Bool = true) throws {
        let text = try InputFile.text(of: vocabFile, what: "tokenizer vocabulary", limit: InputFile.configLimit)
        var v = [String: Int32]()
        var id: Int32 = 0
        text.enumerateLines { line, _ in
            if v[line] == nil { v[line] = id }
            id += 1
        }
        func special(_ s: String) throws -> Int32 {
            guard let i = v[s] else {
                throw ComputeError(.corruptData, "vocabulary has no \(s) token", file: vocabFile)
            }
            return i
        }
        vocab = v
        unk = try special("[UNK]")
        cls = try special("[CLS]")
        sep = try special("[SEP]")
        pad = try special("[PAD]")
        self.lowercase = lowercase
        self.vocabFile = vocabFile
    }

    /// Token ids of `text`, without [CLS]/[SEP].
    public func encode(_ text: String) -> [Int32] {
        var ids = [Int32]()
        for word in preTokenize(normalize(text)) { wordPiece(word, into: &ids) }
        return ids
    }

    /// Cleans control characters, maps whitespace to spaces, pads CJK ideographs with spaces,
    /// lowercases and strips accents (NFD, combining marks removed).
    func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            let v = u.value
            if v == 0 || v == 0xFFFD || (Self.isControl(u)) { continue }
            if Self.isWhitespace(u) {
                out.append(" ")
                continue
            }
            if Self.isCJK(v) {
                out.append(" ")
                out.append(u)
                out.append(" ")
                continue
            }
            out.append(u)
        }
        var s = String(out)
        if lowercase {
            s = s.lowercased().decomposedStringWithCanonicalMapping
            s = String(
                String.UnicodeScalarView(s.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }))
        }
        return s
    }

    /// Splits on whitespace, then isolates every punctuation character.
    func preTokenize(_ s: String) -> [[Unicode.Scalar]] {
        var words = [[Unicode.Scalar]]()
        var cur = [Unicode.Scalar]()
        for u in s.unicodeScalars {
            if Self.isWhitespace(u) {
                if !cur.isEmpty {
                    words.append(cur)
                    cur = []
                }
            } else if Self.isPunctuation(u) {
                if !cur.isEmpty {
                    words.append(cur)
                    cur = []
                }
                words.append([u])
            } else {
                cur.append(u)
            }
        }
        if !cur.isEmpty { words.append(cur) }
        return words
    }

    /// Greedy longest-match-first WordPiece; a word with an unmatched rest becomes [UNK].
    func wordPiece(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        if word.count > Self.maxCharsPerWord {
            ids.append(unk)
            return
        }
        var pieces = [Int32]()
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var sub = String(String.UnicodeScalarView(word[start..<end]))
                if start > 0 { sub = "##" + sub }
                if let id = vocab[sub] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.append(unk)
                return
            }
            pieces.append(id)
            start = end
        }
        ids += pieces
    }

    static func isWhitespace(_ u: Unicode.Scalar) -> Bool {
        u == " " || u == "\t" || u == "\n" || u == "\r" || u.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ u: Unicode.Scalar) -> Bool {
        if u == "\t" || u == "\n" || u == "\r" { return false }
        switch u.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    static func isPunctuation(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        switch u.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
