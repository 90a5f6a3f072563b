import Compute
import Foundation
import Queue

/// Entries of a batch manifest file.
public enum ManifestEntries {
    /// Settings for entries that do not give their own.
    public struct Defaults: Sendable {
        public var priority = 0
        public var maxAttempts = 3
        public var checksum = true
        public init() {}
    }

    /// Longest idempotency key or batch name, in bytes.
    public static let maxNameBytes = 1000

    /// Most attempts an entry may ask for (`jobs.max_attempts` is a 32-bit integer; more is a mistake).
    public static let maxAttemptsLimit = 1000

    /// Every entry validated into a job (models, recipes, fields), or a `SubmitError` naming the entry.
    public static func load(_ file: String, defaults: Defaults, delay: Double, policy: PathPolicy) throws -> [NewJob] {
        let doc: Any?
        do {
            let text = try InputFile.text(of: file, what: "manifest", limit: InputFile.manifestLimit)
            doc = try SafeYAML.load(text, limits: SafeYAML.manifest, rootKeys: ["jobs"])
        } catch let e as SafeYAML.Failure {
            throw SubmitError("manifest \(file): \(e)")
        }
        let list: [Any]
        if let l = doc as? [Any] {
            list = l
        } else if let m = doc as? [String: Any], let l = m["jobs"] as? [Any] {
            list = l
        } else {
            throw SubmitError("manifest \(file) must be a list of entries (or {jobs: [...]})")
        }
        let base = (file as NSString).deletingLastPathComponent
        var recipeCache = [String: NewJob]()
        var jobs = [NewJob]()
        for (i, raw) in list.enumerated() {
            guard let e = raw as? [String: Any] else {
                throw SubmitError("manifest \(file): entry \(i) is not a mapping")
            }
            let known = ["model", "recipe", "size", "priority", "key", "max_attempts", "needs"]
            for k in e.keys where !known.contains(k) {
                throw SubmitError("manifest \(file): entry \(i): unknown key \(k)")
            }
            guard let model = e["model"] as? String, let recipe = e["recipe"] as? String else {
                throw SubmitError("manifest \(file): entry \(i) needs model and recipe (strings)")
            }
            for (field, v) in [("model", model), ("recipe", recipe)] where v.utf8.contains(0) {
                throw SubmitError(
                    "manifest \(file): entry \(i): \(field) \(TextRules.printable(v)) contains a NUL byte")
            }
            let modelPath = model.hasPrefix("/") ? model : (base.isEmpty ? model : base + "/" + model)
            let size = try Self.size(e["size"], at: "manifest \(file): entry \(i)")
            let cacheKey = modelPath + "\u{0}" + recipe + "\u{0}" + (size ?? "")
            var j: NewJob
            do {
                if let c = recipeCache[cacheKey] {
                    j = c
                } else {
                    j = try CompressJobBuilder.build(
                        model: modelPath, recipeFile: recipe, checksum: defaults.checksum,
                        policy: policy, recipeBase: base.isEmpty ? "." : base, size: size)
                    recipeCache[cacheKey] = j
                }
            } catch { throw SubmitError("manifest \(file): entry \(i): \(error)") }
            let at = "manifest \(file): entry \(i)"
            j.priority = try Self.integer(e["priority"], "priority", in: -1000...1000, at: at) ?? defaults.priority
            j.maxAttempts =
                try Self.integer(e["max_attempts"], "max_attempts", in: 1...maxAttemptsLimit, at: at)
                ?? defaults.maxAttempts
            j.idempotencyKey = try Self.key(e["key"], at: at)
            j.needsKeys = Array(Set(j.needsKeys + (try Self.needs(e["needs"], at: at)))).sorted()
            j.delaySeconds = delay
            jobs.append(j)
        }
        guard !jobs.isEmpty else { throw SubmitError("manifest \(file) has no entries") }
        try checkDependencies(jobs, file: file)
        return jobs
    }

    /// `needs`: a list of keys (strings or integers), or one key.
    static func needs(_ v: Any?, at: String) throws -> [String] {
        guard let v, !(v is NSNull) else { return [] }
        let list = (v as? [Any]) ?? [v]
        guard list.count <= 10_000 else { throw SubmitError("\(at): needs lists more than 10000 keys") }
        return try list.map { k in
            guard let s = try key(k, at: at + ": needs") else { throw SubmitError("\(at): needs holds an empty key") }
            return s
        }
    }

    /// A manifest's dependencies form no cycle and no entry needs itself; keys not in the manifest
    /// must name jobs already queued (checked at insert).
    static func checkDependencies(_ jobs: [NewJob], file: String) throws {
        var index = [String: Int]()
        for (i, j) in jobs.enumerated() {
            if let k = j.idempotencyKey { index[k] = i }
        }
        for (i, j) in jobs.enumerated() {
            for k in j.needsKeys where k == j.idempotencyKey {
                throw SubmitError("manifest \(file): entry \(i) needs itself (key \(TextRules.printable(k)))")
            }
        }
        // Depth-first search over the entries' keys with an explicit stack (a chain of 100,000
        // entries must not exhaust the thread's stack): 1 = on the current path, 2 = done.
        let edges = jobs.map { j in j.needsKeys.compactMap { index[$0] } }
        var mark = [Int](repeating: 0, count: jobs.count)
        for root in jobs.indices where mark[root] == 0 {
            var stack = [(node: root, next: 0)]
            mark[root] = 1
            while let top = stack.last {
                guard top.next < edges[top.node].count else {
                    mark[top.node] = 2
                    stack.removeLast()
                    continue
                }
                stack[stack.count - 1].next += 1
                let n = edges[top.node][top.next]
                if mark[n] == 1 {
                    let path = stack.map(\.node).drop { $0 != n } + [n]
                    let keys = path.map { TextRules.printable(jobs[$0].idempotencyKey ?? "?") }
                    throw SubmitError("manifest \(file): needs form a cycle: \(keys.joined(separator: " -> "))")
                }
                if mark[n] == 0 {
                    mark[n] = 1
                    stack.append((n, 0))
                }
            }
        }
    }

    /// An integer field: a YAML integer (not a string, float or bool) within `range`.
    static func integer(_ v: Any?, _ field: String, in range: ClosedRange<Int>, at: String) throws -> Int? {
        guard let v, !(v is NSNull) else { return nil }
        guard !(v is Bool), let n = v as? Int else {
            throw SubmitError(
                "\(at): \(field) must be an integer in \(range.lowerBound)...\(range.upperBound), not \(describe(v))")
        }
        guard range.contains(n) else {
            throw SubmitError("\(at): \(field) \(n) is out of \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    /// `size`, the size a BitStack model is loaded at: a string (60MB, 3bpw) or a byte count; nil when absent.
    static func size(_ v: Any?, at: String) throws -> String? {
        switch v {
        case nil: return nil
        case let s as String where !s.isEmpty && s.utf8.count <= 64 && !s.utf8.contains(0): return s
        case let n as Int: return String(n)
        default: throw SubmitError("\(at): size must be a size such as 60MB, 1.5G, a byte count or 3bpw")
        }
    }

    /// The idempotency key: a string or an integer (written as its decimal text), at most 1,000 bytes, no NUL.
    static func key(_ v: Any?, at: String) throws -> String? {
        guard let v, !(v is NSNull) else { return nil }
        let s: String
        if let str = v as? String {
            s = str
        } else if !(v is Bool), let n = v as? Int {
            s = String(n)
        } else {
            throw SubmitError("\(at): key must be a string, not \(describe(v))")
        }
        guard !s.isEmpty, s.utf8.count <= maxNameBytes else {
            throw SubmitError("\(at): key must be 1 to \(maxNameBytes) bytes")
        }
        guard !s.utf8.contains(0) else { throw SubmitError("\(at): key \(TextRules.printable(s)) contains a NUL byte") }
        return s
    }

    private static func describe(_ v: Any) -> String {
        switch v {
        case let s as String: return "the string \(TextRules.printable(s))"
        case is Bool: return "a boolean"
        case let d as Double: return "\(d)"
        case is [Any]: return "a list"
        case is [String: Any]: return "a mapping"
        default: return "\(v)"
        }
    }
}
