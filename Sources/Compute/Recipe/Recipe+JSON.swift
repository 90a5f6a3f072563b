import Foundation

extension Recipe: Encodable {
    enum CodingKeys: String, CodingKey { case stages, version }

    /// Canonical JSON (sorted keys, JSONEncoder), as stored in `jobs.recipe`, `manifest.json` and
    /// GGUF metadata: every option written out and `"version"`, so `RecipeParser` reads it back to
    /// the same recipe whatever the defaults are by then.
    public var canonicalJSON: String {
        // Encoding values of these types cannot fail.
        String(decoding: (try? JSONEncoder.canonical.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stages, forKey: .stages)
        try c.encode(RecipeVersion.current, forKey: .version)
    }
}

/// A JSON object key given at run time.
struct JSONKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Stage: Codable {
    /// Every stage by its recipe key: the dispatch table of decoding.
    static let decoders: [(name: String, decode: (Decoder) throws -> Stage)] = [
        ("prune", { .prune(try PruneStage(from: $0)) }),
        ("quantize", { .quantize(try QuantizeStage(from: $0)) }),
        ("lowrank", { .lowrank(try LowRankStage(from: $0)) }),
        ("awq", { .awq(try AWQStage(from: $0)) }),
        ("slice", { .slice(try SliceStage(from: $0)) }),
        ("decompose", { .decompose(try DecomposeStage(from: $0)) }),
        ("calibrate", { .calibrate(try CalibrateStage(from: $0)) }),
        ("distill", { .distill(try DistillStage(from: $0)) }),
        ("evaluate", { .evaluate(try EvaluateStage(from: $0)) }),
        ("export", { .export(try ExportStage(from: $0)) })
    ]

    /// `{"<stage name>": {options}}`: a mapping with exactly one key, the stage name.
    public init(from decoder: Decoder) throws {
        let at = RecipeDocument.path(decoder.codingPath)
        let names = Self.decoders.map(\.name).joined(separator: ", ")
        let only = "each stage is a mapping with exactly one key, the stage name (one of \(names))"
        let c = try RecipeDocument.mapping(decoder, only)
        guard c.allKeys.count == 1, let key = c.allKeys.first else { throw RecipeError(at, only) }
        guard let entry = Self.decoders.first(where: { $0.name == key.stringValue }) else {
            throw RecipeError("\(at).\(key.stringValue)", "unknown stage (expected one of \(names))")
        }
        self = try entry.decode(try c.superDecoder(forKey: key))
    }

    public func encode(to encoder: Encoder) throws {
        var outer = encoder.container(keyedBy: JSONKey.self)
        let inner = outer.superEncoder(forKey: JSONKey(name))
        switch self {
        case .prune(let p): try p.encode(to: inner)
        case .quantize(let q): try q.encode(to: inner)
        case .lowrank(let l): try l.encode(to: inner)
        case .awq(let a): try a.encode(to: inner)
        case .slice(let s): try s.encode(to: inner)
        case .decompose(let d): try d.encode(to: inner)
        case .calibrate(let c): try c.encode(to: inner)
        case .distill(let d): try d.encode(to: inner)
        case .evaluate(let e): try e.encode(to: inner)
        case .export(let e): try e.encode(to: inner)
        }
    }

    /// The stage's key in recipes.
    var name: String {
        switch self {
        case .prune: return "prune"
        case .quantize: return "quantize"
        case .lowrank: return "lowrank"
        case .awq: return "awq"
        case .slice: return "slice"
        case .decompose: return "decompose"
        case .calibrate: return "calibrate"
        case .distill: return "distill"
        case .evaluate: return "evaluate"
        case .export: return "export"
        }
    }
}
