import Foundation

/// Reads typed option values from one mapping of a recipe; unknown keys are refused up front, and a
/// value of the wrong kind throws a `RecipeError` that names the key's path and shows the value.
struct OptionReader {
    /// nil for a stage written without a mapping (`- distill:`), which reads as an empty one.
    private let c: KeyedDecodingContainer<JSONKey>?
    /// The mapping's path, e.g. `stages[1].prune`.
    let path: String

    /// A reader for the mapping at `decoder` that takes only `allowed` (nil: any key); `elsewhere`
    /// names, for keys another method or format declares, who does (`n` → `method nm`), and `owner`
    /// is who reads here.
    init(_ decoder: Decoder, allowed: [String]?, elsewhere: [String: String] = [:], owner: String? = nil) throws {
        path = RecipeDocument.path(decoder.codingPath)
        if let single = try? decoder.singleValueContainer(), single.decodeNil() {
            c = nil
            return
        }
        let c = try RecipeDocument.mapping(decoder, "must be a mapping")
        self.c = c
        guard let allowed else { return }
        let shown = allowed.sorted().joined(separator: ", ")
        for k in c.allKeys.map(\.stringValue).sorted() where !allowed.contains(k) {
            if let other = elsewhere[k], let owner {
                throw RecipeError(at(k), "belongs to \(other), not \(owner) (which takes \(shown))")
            }
            throw RecipeError(at(k), "unknown key (allowed: \(shown))")
        }
    }

    /// The path of `key` for error messages.
    func at(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool { c?.contains(JSONKey(key)) ?? false }

    private func read<T: Decodable>(_ key: String, _ t: T.Type, _ what: String) throws -> T? {
        let k = JSONKey(key)
        guard let c, c.contains(k), !(try c.decodeNil(forKey: k)) else { return nil }
        do { return try c.decode(t, forKey: k) } catch let e as RecipeError { throw e } catch {
            let shown = (try? c.decode(String.self, forKey: k)).map(TextRules.display)
            throw RecipeError(at(key), shown.map { "\($0) \(what)" } ?? what)
        }
    }

    /// A string with no NUL byte.
    func string(_ key: String) throws -> String? {
        guard let s = try read(key, String.self, "is not a string") else { return nil }
        return try Self.noNUL(s, at: at(key))
    }

    /// `s`, refused when it holds a NUL byte (PostgreSQL and the formats cannot carry one).
    static func noNUL(_ s: String, at path: String) throws -> String {
        if s.utf8.contains(0) { throw RecipeError(path, "\(TextRules.printable(s)) contains a NUL byte") }
        return s
    }

    /// For each key that other owners declare (methods of a stage, formats of an export), who does:
    /// `method nm`, or `methods nm, sparsegpt` when several do; owners in the order given.
    static func owners(_ others: [(name: String, keys: [String])], kind: String) -> [String: String] {
        var by = [String: [String]]()
        for (name, keys) in others {
            for k in keys { by[k, default: []].append(name) }
        }
        return by.mapValues { $0.count == 1 ? "\(kind) \($0[0])" : "\(kind)s \($0.joined(separator: ", "))" }
    }

    func number(_ key: String) throws -> Double? { try read(key, Double.self, "is not a number") }
    func integer(_ key: String) throws -> Int? { try read(key, Int.self, "is not an integer") }
    func flag(_ key: String) throws -> Bool? { try read(key, Bool.self, "must be true or false") }

    /// One of `T`'s raw values (case-insensitive when `folding`), or nil when the key is absent.
    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ t: T.Type, folding: Bool = false) throws -> T?
    where T.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let v = T(rawValue: folding ? s.lowercased() : s) else {
            throw RecipeError(at(key), "\(s) is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }

    /// A list of non-empty glob patterns, or one pattern as a string.
    func patterns(_ key: String) throws -> [String]? {
        let list: [String]?
        if let one = try? read(key, String.self, "") {
            list = [one]
        } else {
            list = try read(key, [String].self, "must be a list of glob patterns")
        }
        return try list?.enumerated().map { i, s in
            guard !s.isEmpty else { throw RecipeError("\(at(key))[\(i)]", "must be a non-empty string") }
            return try Self.noNUL(s, at: "\(at(key))[\(i)]")
        }
    }

    /// A nested value decoded by its own type (`what` explains the expected shape).
    func nested<T: Decodable>(_ key: String, _ t: T.Type, _ what: String) throws -> T? { try read(key, t, what) }
}

/// Range checks with the messages every option uses.
enum OptionCheck {
    /// `v` in [lo, hi) or [lo, hi] as `closed` says; the message shows the interval.
    static func fraction(_ v: Double, at path: String, open lo: Bool = false, closed hi: Bool = false) throws -> Double
    {
        let okLo = lo ? v > 0 : v >= 0
        let okHi = hi ? v <= 1 : v < 1
        guard okLo && okHi else {
            throw RecipeError(path, "\(RecipeParser.fmt(v)) is not in \(lo ? "(" : "[")0, 1\(hi ? "]" : ")")")
        }
        return v
    }

    /// An integer in [lo, hi].
    static func integer(_ v: Int, at path: String, in r: ClosedRange<Int>) throws -> Int {
        guard r.contains(v) else { throw RecipeError(path, "\(v) is not in [\(r.lowerBound), \(r.upperBound)]") }
        return v
    }
}
