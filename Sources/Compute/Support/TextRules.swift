/// Rules for text that ends up in PostgreSQL, file names or terminals: names, keys, patterns, paths.
public enum TextRules {
    /// Throws `invalidText` naming `field` when `s` holds a NUL byte (PostgreSQL text cannot, and C
    /// strings would silently cut it short).
    public static func check(_ s: String, field: String, file: String? = nil) throws {
        if s.utf8.contains(0) {
            throw ComputeError(.invalidText, "\(field) \(printable(s)) contains a NUL byte", file: file)
        }
    }

    /// `s` quoted with control characters escaped, safe to print on one terminal line.
    public static func printable(_ s: String) -> String {
        quoted(s, escapes: isControl) { "\\u{\(String($0, radix: 16))}" }
    }

    /// `s` as a JSON string literal (control characters as `\u00XX`).
    public static func json(_ s: String) -> String {
        quoted(s, escapes: { $0 < 0x20 }) { String(format: "\\u%04x", $0) }
    }

    /// C0 and C1 control characters and DEL: what must not reach a terminal raw.
    static func isControl(_ v: UInt32) -> Bool { v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) }

    /// `s` in double quotes with `"`, `\\`, newline, return and tab backslash-escaped, and every other
    /// scalar that `escapes` selects written by `escape` (JSON strings and terminal output share this).
    static func quoted(_ s: String, escapes: (UInt32) -> Bool, _ escape: (UInt32) -> String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: if escapes(u.value) { out += escape(u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// `s` unchanged when it has no control characters, else `printable(s)`.
    public static func display(_ s: String) -> String {
        s.unicodeScalars.contains { isControl($0.value) } ? printable(s) : s
    }
}
