import Foundation

/// How byte-level BPE tokenizers cut text into words before merging: a sequence of regex splits
/// (GPT-2's pattern for `ByteLevel(use_regex)`, a `Split` pattern, or `Digits`), each applied to
/// every piece the previous one left, matches kept as their own pieces (`Isolated`).
struct PreTokenizer: Sendable {
    /// GPT-2's pattern, used by `ByteLevel` with `use_regex: true` (and llama.cpp's `gpt2` pre).
    static let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    /// Llama 3's pattern (llama.cpp `llama-bpe`).
    static let llama3 =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"#
        + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2's pattern (llama.cpp `qwen2`).
    static let qwen2 =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"#
        + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// `Digits(individual_digits: true)`: every numeric character alone.
    static let digits = #"\p{N}"#

    /// The patterns, applied in order; their source text identifies the tokenizer in caches.
    let patterns: [String]
    private let regexes: [NSRegularExpressionBox]

    init(patterns: [String]) throws {
        self.patterns = patterns
        regexes = try patterns.map { p in
            do { return NSRegularExpressionBox(try NSRegularExpression(pattern: p)) } catch {
                throw ComputeError(
                    .corruptData, "pre-tokenizer pattern \(TextRules.printable(p)) is not a valid regular expression")
            }
        }
    }

    /// llama.cpp's `tokenizer.ggml.pre` names Squeeze knows, as pattern sequences.
    static func forGGMLPre(_ pre: String) -> [String]? {
        switch pre {
        case "gpt-2": return [gpt2]
        case "smollm", "starcoder", "refact": return [digits, gpt2]
        case "llama3", "llama-v3", "llama-bpe": return [llama3]
        case "qwen2": return [qwen2]
        default: return nil
        }
    }

    /// The `tokenizer.ggml.pre` name of a pattern sequence (nil when llama.cpp has none for it).
    static func ggmlPre(for patterns: [String]) -> String? {
        switch patterns {
        case [gpt2]: return "gpt-2"
        case [digits, gpt2]: return "smollm"
        case [llama3]: return "llama-bpe"
        case [qwen2]: return "qwen2"
        default: return nil
        }
    }

    /// The words of `text`, in order; concatenated they give `text` back.
    func split(_ text: String) -> [String] {
        var pieces = [text]
        for r in regexes {
            var next = [String]()
            for p in pieces { r.isolate(p, into: &next) }
            pieces = next
        }
        return pieces
    }
}

/// An `NSRegularExpression` (immutable and thread-safe once built) shared across threads.
final class NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }

    /// Splits `s` into matches and the text between them, in order, dropping empty pieces.
    func isolate(_ s: String, into out: inout [String]) {
        let ns = s as NSString
        var last = 0
        for m in regex.matches(in: s, range: NSRange(location: 0, length: ns.length)) where m.range.length > 0 {
            if m.range.location > last {
                out.append(ns.substring(with: NSRange(location: last, length: m.range.location - last)))
            }
            out.append(ns.substring(with: m.range))
            last = m.range.location + m.range.length
        }
        if last < ns.length { out.append(ns.substring(from: last)) }
    }
}
