import Foundation
import Yams

/// YAML (and JSON) from untrusted files, parsed without the failure modes of a plain `Yams.load`:
/// the text size, the nesting depth and the number of values after alias expansion are bounded
/// before anything is built (a "billion laughs" document is refused, not expanded), and mapping
/// keys must be plain scalars (a complex `? [a]` key is refused instead of crashing the constructor).
public enum SafeYAML {
    public struct Limits: Sendable {
        public var maxBytes: Int
        /// Values (scalars, lists, mappings) after alias expansion; also never more than half the
        /// text's bytes plus 1,000, so aliases cannot amplify a small document.
        public var maxValues: Int
        public var maxDepth: Int
    }

    public static let recipe = Limits(maxBytes: InputFile.recipeLimit, maxValues: 100_000, maxDepth: 32)
    public static let manifest = Limits(maxBytes: InputFile.manifestLimit, maxValues: 4_000_000, maxDepth: 32)

    /// Why a document was refused; `path` names where (e.g. `stages[2].prune`), empty for the root.
    public struct Failure: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
    }

    /// Parses one document into String, Int, Double, Bool, NSNull, [Any] and [String: Any] values.
    /// With `rootKeys`, a root mapping's keys are checked before any value is built.
    public static func load(_ text: String, limits: Limits, rootKeys: [String]? = nil) throws -> Any? {
        try compose(text, limits: limits, rootKeys: rootKeys).map(build)
    }

    /// Parses one document into Yams' node tree (for `YAMLDecoder`) once it has passed every limit.
    public static func compose(_ text: String, limits: Limits, rootKeys: [String]? = nil) throws -> Node? {
        guard text.utf8.count <= limits.maxBytes else {
            throw Failure(
                path: "", reason: "document is \(text.utf8.count) bytes, over the \(limits.maxBytes)-byte limit")
        }
        if let depth = flowDepthOver(text, limits.maxDepth) {
            throw Failure(path: "", reason: "nesting deeper than \(limits.maxDepth) levels (at byte \(depth))")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw Failure(
                path: "",
                reason: "not valid YAML or JSON: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        guard let root else { return nil }
        if let allowed = rootKeys, case .mapping(let map) = root {
            for k in map.keys {
                let name = k.scalar?.string ?? "(a complex key)"
                guard allowed.contains(name) else {
                    throw Failure(
                        path: TextRules.display(name),
                        reason: "unknown key (allowed: \(allowed.joined(separator: ", ")))")
                }
            }
        }
        // Each value written out takes at least two bytes of text: more values than that can only
        // come from aliases, which must not amplify a document.
        let cap = min(limits.maxValues, text.utf8.count / 2 + 1_000)
        var budget = cap
        try check(root, path: "", depth: 0, budget: &budget, cap: cap, limits: limits)
        return root
    }

    /// Counts the values after alias expansion, the depth and the key kinds, building nothing.
    private static func check(_ node: Node, path: String, depth: Int, budget: inout Int, cap: Int, limits: Limits)
        throws
    {
        budget -= 1
        guard budget >= 0 else {
            throw Failure(
                path: path, reason: "document expands to more than \(cap) values (aliases repeating aliases?)")
        }
        guard depth <= limits.maxDepth else {
            throw Failure(path: path, reason: "nesting deeper than \(limits.maxDepth) levels")
        }
        switch node {
        case .scalar: break
        case .sequence(let seq):
            for (i, item) in seq.enumerated() {
                try check(item, path: "\(path)[\(i)]", depth: depth + 1, budget: &budget, cap: cap, limits: limits)
            }
        case .mapping(let map):
            for (k, v) in map {
                guard case .scalar(let key) = k else {
                    throw Failure(
                        path: path,
                        reason: "a mapping key must be a plain string, not a \(k.isMapping ? "mapping" : "list")")
                }
                let child = path.isEmpty ? key.string : "\(path).\(key.string)"
                try check(v, path: child, depth: depth + 1, budget: &budget, cap: cap, limits: limits)
            }
        case .alias:
            throw Failure(path: path, reason: "unresolved alias")
        }
    }

    /// The checked tree as Foundation values.
    private static func build(_ node: Node) -> Any {
        switch node {
        case .scalar, .alias: return node.any
        case .sequence(let seq): return seq.map(build)
        case .mapping(let map):
            var out = [String: Any]()
            for (k, v) in map { out[k.scalar?.string ?? ""] = build(v) }
            return out
        }
    }

    /// The byte offset where `[`/`{` flow nesting first exceeds `limit` (outside quotes and comments), or nil.
    /// Checked before parsing: the parser itself recurses once per level.
    /// Bytes after which a quote opens a quoted scalar.
    static let tokenBoundaries: [UInt8] = [
        0x20, 0x0A, 0x09, UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "-")
    ]

    static func flowDepthOver(_ text: String, _ limit: Int) -> Int? {
        var depth = 0
        var quote: UInt8 = 0
        var comment = false
        var prev: UInt8 = 0x0A
        for (i, c) in text.utf8.enumerated() {
            defer { prev = c }
            if comment {
                if c == 0x0A { comment = false }
                continue
            }
            if quote != 0 {
                if c == quote && !(quote == UInt8(ascii: "\"") && prev == UInt8(ascii: "\\")) { quote = 0 }
                continue
            }
            switch c {
            // A quoted scalar starts only at a token boundary (an apostrophe inside `it's` starts nothing).
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                if Self.tokenBoundaries.contains(prev) { quote = c }
            case UInt8(ascii: "#") where prev == 0x20 || prev == 0x0A || prev == 0x09: comment = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return i }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            default: break
            }
        }
        return nil
    }
}

private extension Node {
    var isMapping: Bool {
        if case .mapping = self { return true }
        return false
    }
}
