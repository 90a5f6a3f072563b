import Foundation

extension Recipe: Encodable {
    enum CodingKeys: String, CodingKey { case stages }

    /// Canonical JSON (sorted keys, JSONEncoder), as stored in `jobs.recipe`, `manifest.json` and
    /// GGUF metadata; `RecipeParser` reads it back to the same recipe.
    public var canonicalJSON: String {
        // Encoding values of these types cannot fail.
        String(decoding: (try? JSONEncoder.canonical.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stages, forKey: .stages)
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

extension Stage: Encodable {
    /// `{"<stage name>": {fields}}`.
    public func encode(to encoder: Encoder) throws {
        var outer = encoder.container(keyedBy: JSONKey.self)
        var f = outer.nestedContainer(keyedBy: JSONKey.self, forKey: JSONKey(name))
        func put<T: Encodable>(_ k: String, _ v: T) throws { try f.encode(v, forKey: JSONKey(k)) }
        func selector(_ s: TensorSelector) throws { try put("targets", s.targets); try put("ignore", s.ignore) }
        switch self {
        case .prune(let p):
            switch p.method {
            case .magnitude(let s):
                try put("method", "magnitude"); try put("sparsity", s)
                if case .global(let mk) = p.scope { try put("scope", "global"); try put("min_keep", mk) }
            case .nm(let n, let m): try put("method", "nm"); try put("n", n); try put("m", m)
            case .wanda(let s): try put("method", "wanda"); try put("sparsity", s)
            case .sparsegpt(let pattern, let damp):
                try put("method", "sparsegpt"); try put("damp", damp)
                switch pattern {
                case .unstructured(let s): try put("sparsity", s)
                case .nm(let n, let m): try put("n", n); try put("m", m)
                }
            case .structured(let s, let dim, let norm):
                try put("method", "structured"); try put("sparsity", s); try put("dim", dim.rawValue); try put("norm", norm.rawValue)
            }
            if let sc = p.schedule {
                var n = f.nestedContainer(keyedBy: JSONKey.self, forKey: JSONKey("schedule"))
                try n.encode("cubic", forKey: JSONKey("type")); try n.encode(sc.steps, forKey: JSONKey("steps"))
                try n.encode(sc.initial, forKey: JSONKey("initial_sparsity"))
            }
            try selector(p.selector)
        case .quantize(let q):
            try put("method", q.method == .rtn ? "rtn" : "gptq"); try put("bits", q.bits); try put("scheme", q.symmetric ? "symmetric" : "asymmetric")
            switch q.granularity {
            case .tensor: try put("granularity", "tensor")
            case .channel: try put("granularity", "channel")
            case .group(let g): try put("granularity", "group"); try put("group_size", g)
            }
            if case .gptq(let damp) = q.method { try put("damp", damp) }
            if q.actOrder { try put("act_order", true) }
            if q.observer != .minmax { try put("observer", q.observer.rawValue) }
            try selector(q.selector)
        case .lowrank(let l):
            switch l.rank {
            case .fixed(let r): try put("rank", r)
            case .energy(let e): try put("energy", e)
            }
            try put("output", l.output.rawValue)
            try selector(l.selector)
        case .calibrate(let c):
            try put("dataset", c.dataset); try put("samples", c.samples); try put("seq_len", c.seqLen)
            if c.hessian != .f32 { try put("hessian", c.hessian.rawValue) }
        case .distill(let d): try put("iterations", d.iterations); try selector(d.selector)
        case .evaluate(let e):
            if let d = e.dataset { try put("dataset", d) }
            try put("samples", e.samples); try put("seq_len", e.seqLen)
        case .export(let e):
            try put("format", e.format.rawValue)
            if let d = e.dtype { try put("dtype", d.rawValue) }
            if e.format == .gguf {
                try put("type", e.ggufType.rawValue); try put("fallback", e.ggufFallback.rawValue)
                if !e.tensorTypes.isEmpty { try put("tensor_types", e.tensorTypes.mapValues(\.rawValue)) }
                if let t = e.outputType { try put("output_type", t.rawValue) }
                if let t = e.embeddingType { try put("embedding_type", t.rawValue) }
                if e.pure { try put("pure", true) }
                if !e.allowFallback { try put("allow_fallback", false) }
                if e.errorFeedback { try put("gptq", true) }
                switch e.importance {
                case .calibration?: try put("imatrix", true)
                case .file(let f)?: try put("imatrix", f)
                case nil: break
                }
            }
        }
    }

    /// The stage's key in recipes.
    var name: String {
        switch self {
        case .prune: return "prune"
        case .quantize: return "quantize"
        case .lowrank: return "lowrank"
        case .calibrate: return "calibrate"
        case .distill: return "distill"
        case .evaluate: return "evaluate"
        case .export: return "export"
        }
    }
}
