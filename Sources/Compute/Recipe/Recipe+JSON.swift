import Foundation

extension Recipe {
    /// Canonical JSON (stable key order), as stored in `jobs.recipe` and `manifest.json`.
    public var canonicalJSON: String {
        "{\"stages\":[" + stages.map { $0.canonicalJSON }.joined(separator: ",") + "]}"
    }
}

extension Stage {
    var canonicalJSON: String {
        switch self {
        case .prune(let p):
            var fields = [String]()
            switch p.method {
            case .magnitude(let s):
                fields += ["\"method\":\"magnitude\"", "\"sparsity\":\(s)"]
                if case .global(let mk) = p.scope { fields += ["\"scope\":\"global\"", "\"min_keep\":\(mk)"] }
            case .nm(let n, let m): fields += ["\"method\":\"nm\"", "\"n\":\(n)", "\"m\":\(m)"]
            case .wanda(let s): fields += ["\"method\":\"wanda\"", "\"sparsity\":\(s)"]
            case .structured(let s, let dim, let norm):
                fields += ["\"method\":\"structured\"", "\"sparsity\":\(s)", "\"dim\":\"\(dim.rawValue)\"", "\"norm\":\"\(norm.rawValue)\""]
            }
            if let sc = p.schedule {
                fields.append("\"schedule\":{\"type\":\"cubic\",\"steps\":\(sc.steps),\"initial_sparsity\":\(sc.initial)}")
            }
            fields.append("\"targets\":[" + p.selector.targets.map(jsonString).joined(separator: ",") + "]")
            fields.append("\"ignore\":[" + p.selector.ignore.map(jsonString).joined(separator: ",") + "]")
            return "{\"prune\":{" + fields.joined(separator: ",") + "}}"
        case .quantize(let q):
            var fields = [q.method == .rtn ? "\"method\":\"rtn\"" : "\"method\":\"gptq\"", "\"bits\":\(q.bits)", "\"scheme\":\"\(q.symmetric ? "symmetric" : "asymmetric")\""]
            switch q.granularity {
            case .tensor: fields.append("\"granularity\":\"tensor\"")
            case .channel: fields.append("\"granularity\":\"channel\"")
            case .group(let g): fields += ["\"granularity\":\"group\"", "\"group_size\":\(g)"]
            }
            if case .gptq(let damp) = q.method { fields.append("\"damp\":\(damp)") }
            fields.append("\"targets\":[" + q.selector.targets.map(jsonString).joined(separator: ",") + "]")
            fields.append("\"ignore\":[" + q.selector.ignore.map(jsonString).joined(separator: ",") + "]")
            return "{\"quantize\":{" + fields.joined(separator: ",") + "}}"
        case .lowrank(let l):
            var fields = [String]()
            switch l.rank {
            case .fixed(let r): fields.append("\"rank\":\(r)")
            case .energy(let e): fields.append("\"energy\":\(e)")
            }
            fields.append("\"output\":\"\(l.output.rawValue)\"")
            fields.append("\"targets\":[" + l.selector.targets.map(jsonString).joined(separator: ",") + "]")
            fields.append("\"ignore\":[" + l.selector.ignore.map(jsonString).joined(separator: ",") + "]")
            return "{\"lowrank\":{" + fields.joined(separator: ",") + "}}"
        case .calibrate(let c):
            return "{\"calibrate\":{\"dataset\":\(jsonString(c.dataset)),\"samples\":\(c.samples),\"seq_len\":\(c.seqLen)}}"
        case .distill(let d):
            return "{\"distill\":{\"iterations\":\(d.iterations),\"targets\":[" + d.selector.targets.map(jsonString).joined(separator: ",")
                + "],\"ignore\":[" + d.selector.ignore.map(jsonString).joined(separator: ",") + "]}}"
        case .evaluate(let e):
            var fields = [String]()
            if let d = e.dataset { fields.append("\"dataset\":\(jsonString(d))") }
            fields += ["\"samples\":\(e.samples)", "\"seq_len\":\(e.seqLen)"]
            return "{\"evaluate\":{" + fields.joined(separator: ",") + "}}"
        case .export(let e):
            var fields = ["\"format\":\"\(e.format.rawValue)\""]
            if let d = e.dtype { fields.append("\"dtype\":\"\(d.rawValue)\"") }
            if e.format == .gguf {
                fields.append("\"type\":\"\(e.ggufType.rawValue)\"")
                fields.append("\"fallback\":\"\(e.ggufFallback.rawValue)\"")
            }
            return "{\"export\":{" + fields.joined(separator: ",") + "}}"
        }
    }
}
