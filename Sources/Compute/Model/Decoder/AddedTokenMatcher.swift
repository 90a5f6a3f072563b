/// Finds added (special) tokens in text: the token list sorted by UTF-8 bytes, narrowed one byte
/// at a time by binary search, so a position costs O(match length · log tokens) and a text is
/// scanned once however many tokens there are (300,000 added tokens used to mean 300,000 scans of
/// the text). Matches are byte-literal, as the `tokenizers` package matches added tokens.
struct AddedTokenMatcher: Sendable {
    private let tokens: [[UInt8]]
    private let ids: [Int32]
    private let firstBytes: [Bool]

    /// `added` as (text, id); of two tokens with the same text the first listed wins.
    init(_ added: [(text: String, id: Int32)]) {
        var seen = Set<[UInt8]>()
        var pairs = [([UInt8], Int32)]()
        for (text, id) in added where !text.isEmpty && seen.insert(Array(text.utf8)).inserted {
            pairs.append((Array(text.utf8), id))
        }
        pairs.sort { $0.0.lexicographicallyPrecedes($1.0) }
        tokens = pairs.map(\.0)
        ids = pairs.map(\.1)
        var first = [Bool](repeating: false, count: 256)
        for t in tokens { first[Int(t[0])] = true }
        firstBytes = first
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The longest token that starts at `bytes[i]`: its length in bytes and id.
    func longest(in bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (length: Int, id: Int32)? {
        guard firstBytes[Int(bytes[i])] else { return nil }
        var lo = 0
        var hi = tokens.count
        var best: (Int, Int32)?
        var k = 0
        while i + k < bytes.count && lo < hi {
            // Tokens of exactly k bytes sort first in the range (they are prefixes of the rest).
            while lo < hi && tokens[lo].count == k { lo += 1 }
            let b = bytes[i + k]
            lo = lowerBound(lo, hi) { $0[k] < b }
            hi = lowerBound(lo, hi) { $0[k] <= b }
            k += 1
            if lo < hi && tokens[lo].count == k { best = (k, ids[lo]) }
        }
        return best
    }

    /// The first index in lo..<hi whose token does not satisfy `before` (which holds for a prefix).
    private func lowerBound(_ lo: Int, _ hi: Int, _ before: ([UInt8]) -> Bool) -> Int {
        var (l, h) = (lo, hi)
        while l < h {
            let m = (l + h) / 2
            if before(tokens[m]) { l = m + 1 } else { h = m }
        }
        return l
    }

    /// `text` cut into plain pieces and added tokens (with their ids), in order: at each step the
    /// earliest occurrence of any added token (the longest at one position), found in one pass.
    func split(_ text: String) -> [(Substring, Int32?)] {
        guard !isEmpty else { return [(text[...], nil)] }
        var out = [(Substring, Int32?)]()
        let pieces: [(Int, Int, Int32?)]? = text.utf8.withContiguousStorageIfAvailable { bytes in
            var found = [(Int, Int, Int32?)]()
            var start = 0
            var i = 0
            while i < bytes.count {
                guard let m = longest(in: bytes, at: i) else {
                    i += 1
                    continue
                }
                if i > start { found.append((start, i, nil)) }
                found.append((i, i + m.length, m.id))
                i += m.length
                start = i
            }
            if start < bytes.count { found.append((start, bytes.count, nil)) }
            return found
        }
        guard let pieces else {
            // A bridged string without contiguous UTF-8: make it native first.
            var native = text
            native.makeContiguousUTF8()
            return split(native)
        }
        var index = text.startIndex
        var offset = 0
        for (a, b, id) in pieces {
            let from = text.utf8.index(index, offsetBy: a - offset)
            let to = text.utf8.index(from, offsetBy: b - a)
            out.append((text[from..<to], id))
            (index, offset) = (to, b)
        }
        return out
    }
}
