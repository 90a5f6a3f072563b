import Foundation

/// The parsers of each stage's fields; every error names the key's path.
extension RecipeParser {
    static func prune(_ f: StageFields, at path: String) throws -> PruneStage {
        try allowOnly(f.keys, ["method", "sparsity", "n", "m", "scope", "min_keep", "schedule", "dim", "norm", "damp", "targets", "ignore"], at: path)
        let method = try text(f.method, at: "\(path).method") ?? "magnitude"
        let sel = try selector(f, at: path)
        func sparsity() throws -> Double {
            guard let s = f.sparsity else { throw RecipeError("\(path).sparsity", "is required for method \(method)") }
            guard s >= 0 && s < 1 else { throw RecipeError("\(path).sparsity", "\(fmt(s)) is not in [0, 1)") }
            return s
        }
        func refuse(_ keys: [String], _ why: String) throws {
            for k in keys where f.has(k) { throw RecipeError("\(path).\(k)", why) }
        }
        if method != "sparsegpt" { try refuse(["damp"], "only applies to method sparsegpt") }
        switch method {
        case "sparsegpt":
            try refuse(["scope", "min_keep", "schedule"], "only applies to method magnitude")
            try refuse(["dim", "norm"], "belongs to method structured, not sparsegpt")
            let damp = f.damp ?? 0.01
            guard damp > 0 && damp <= 1 else { throw RecipeError("\(path).damp", "\(fmt(damp)) is not in (0, 1]") }
            if f.has("n") || f.has("m") {
                try refuse(["sparsity"], "is implied by n and m (give either sparsity or n and m)")
                let (n, m) = try nm(f, at: path)
                return PruneStage(method: .sparsegpt(.nm(n: n, m: m), damp: damp), selector: sel)
            }
            return PruneStage(method: .sparsegpt(.unstructured(sparsity: try sparsity()), damp: damp), selector: sel)
        case "magnitude":
            let s = try sparsity()
            try refuse(["n", "m"], "belongs to method nm, not magnitude")
            try refuse(["dim", "norm"], "belongs to method structured, not magnitude")
            let scope = try text(f.scope, at: "\(path).scope") ?? "layer"
            guard scope == "layer" || scope == "global" else { throw RecipeError("\(path).scope", "\(scope) is not one of layer, global") }
            let minKeep = f.minKeep
            if scope == "layer" {
                if minKeep != nil { throw RecipeError("\(path).min_keep", "only applies to scope global") }
                return PruneStage(method: .magnitude(sparsity: s), schedule: try schedule(f.schedule, final: s, at: "\(path).schedule"),
                                  selector: sel)
            }
            try refuse(["schedule"], "only applies to scope layer")
            let mk = minKeep ?? 0
            guard mk >= 0 && mk <= 1 else { throw RecipeError("\(path).min_keep", "\(fmt(mk)) is not in [0, 1]") }
            return PruneStage(method: .magnitude(sparsity: s), scope: .global(minKeep: mk), selector: sel)
        case "nm":
            let (n, m) = try nm(f, at: path)
            try refuse(["sparsity"], "is implied by n and m for method nm")
            try refuse(["scope", "min_keep", "schedule"], "only applies to method magnitude")
            try refuse(["dim", "norm"], "belongs to method structured, not nm")
            return PruneStage(method: .nm(n: n, m: m), selector: sel)
        case "wanda":
            let s = try sparsity()
            try refuse(["n", "m"], "belongs to method nm, not wanda")
            try refuse(["scope", "min_keep", "schedule"], "only applies to method magnitude")
            try refuse(["dim", "norm"], "belongs to method structured, not wanda")
            return PruneStage(method: .wanda(sparsity: s), selector: sel)
        case "structured":
            let s = try sparsity()
            try refuse(["n", "m"], "belongs to method nm, not structured")
            try refuse(["scope", "min_keep", "schedule"], "only applies to method magnitude")
            let d = try text(f.dim, at: "\(path).dim") ?? "rows"
            guard let dim = StructuredPruning.Dimension(rawValue: d) else { throw RecipeError("\(path).dim", "\(d) is not one of rows, columns") }
            let nm = try text(f.norm, at: "\(path).norm") ?? "l2"
            guard let norm = StructuredPruning.Norm(rawValue: nm.lowercased()) else { throw RecipeError("\(path).norm", "\(nm) is not one of l1, l2") }
            return PruneStage(method: .structured(sparsity: s, dim: dim, norm: norm), selector: sel)
        default:
            throw RecipeError("\(path).method", "\(method) is not one of magnitude, nm, structured, wanda, sparsegpt")
        }
    }

    /// `n` and `m` of an N:M pattern (both required).
    private static func nm(_ f: StageFields, at path: String) throws -> (Int, Int) {
        guard let n = f.n else { throw RecipeError("\(path).n", "is required with m") }
        guard let m = f.m else { throw RecipeError("\(path).m", "is required with n") }
        guard m >= 2 && m <= 64 else { throw RecipeError("\(path).m", "\(m) is not in [2, 64]") }
        guard n >= 1 && n < m else { throw RecipeError("\(path).n", "\(n) must be at least 1 and less than m (\(m))") }
        return (n, m)
    }

    static func schedule(_ v: ScheduleFields?, final: Double, at path: String) throws -> CubicSchedule? {
        guard let f = v else { return nil }
        try allowOnly(f.keys, ["type", "steps", "initial_sparsity"], at: path)
        let type = try text(f.type, at: "\(path).type") ?? "cubic"
        guard type == "cubic" else { throw RecipeError("\(path).type", "\(type) is not one of cubic") }
        guard let steps = f.steps else { throw RecipeError("\(path).steps", "is required") }
        guard steps >= 1 && steps <= 1000 else { throw RecipeError("\(path).steps", "\(steps) is not in [1, 1000]") }
        let initial = f.initialSparsity ?? 0
        guard initial >= 0 && initial <= final else {
            throw RecipeError("\(path).initial_sparsity", "\(fmt(initial)) is not in [0, sparsity \(fmt(final))]")
        }
        return CubicSchedule(initial: initial, final: final, steps: steps)
    }

    static func window(_ f: StageFields, at path: String, samples: Int) throws -> (Int, Int) {
        let n = f.samples ?? samples
        guard n >= 1 && n <= 4096 else { throw RecipeError("\(path).samples", "\(n) is not in [1, 4096]") }
        let l = f.seqLen ?? 128
        guard l >= 8 && l <= 512 else { throw RecipeError("\(path).seq_len", "\(l) is not in [8, 512]") }
        return (n, l)
    }

    static func calibrate(_ f: StageFields, at path: String) throws -> CalibrateStage {
        try allowOnly(f.keys, ["dataset", "samples", "seq_len", "hessian"], at: path)
        guard let d = try text(f.dataset, at: "\(path).dataset"), !d.isEmpty else {
            throw RecipeError("\(path).dataset", "is required: a UTF-8 text file under an allowed input root")
        }
        let (n, l) = try window(f, at: path, samples: 16)
        var hessian = GramPrecision.f32
        if let h = try text(f.hessian, at: "\(path).hessian") {
            guard let p = GramPrecision(rawValue: h) else { throw RecipeError("\(path).hessian", "\(h) is not one of f32, bf16") }
            hessian = p
        }
        return CalibrateStage(dataset: d, samples: n, seqLen: l, hessian: hessian)
    }

    static func distill(_ f: StageFields, at path: String) throws -> DistillStage {
        try allowOnly(f.keys, ["iterations", "targets", "ignore"], at: path)
        let it = f.iterations ?? 10
        guard it >= 1 && it <= 1000 else { throw RecipeError("\(path).iterations", "\(it) is not in [1, 1000]") }
        return DistillStage(iterations: it, selector: try selector(f, at: path))
    }

    static func evaluate(_ f: StageFields, at path: String) throws -> EvaluateStage {
        try allowOnly(f.keys, ["dataset", "samples", "seq_len"], at: path)
        let d = try text(f.dataset, at: "\(path).dataset")
        if let d, d.isEmpty { throw RecipeError("\(path).dataset", "must not be empty") }
        let (n, l) = try window(f, at: path, samples: 16)
        return EvaluateStage(dataset: d, samples: n, seqLen: l)
    }

    /// At most one calibrate and one evaluate stage; calibrate precedes the stages that use it;
    /// an evaluate stage without a dataset needs a calibrate stage's.
    static func lowrank(_ f: StageFields, at path: String) throws -> LowRankStage {
        try allowOnly(f.keys, ["rank", "energy", "output", "targets", "ignore"], at: path)
        let rank = f.rank
        let energy = f.energy
        let spec: LowRank.Rank
        switch (rank, energy) {
        case (let r?, nil):
            guard r >= 1 else { throw RecipeError("\(path).rank", "\(r) must be at least 1") }
            spec = .fixed(r)
        case (nil, let e?):
            guard e > 0 && e <= 1 else { throw RecipeError("\(path).energy", "\(fmt(e)) is not in (0, 1]") }
            spec = .energy(e)
        case (nil, nil): throw RecipeError(path, "needs rank (an integer) or energy (a fraction of Σσ² to keep)")
        default: throw RecipeError("\(path).energy", "give rank or energy, not both")
        }
        let o = try text(f.output, at: "\(path).output") ?? "dense"
        guard let output = LowRankStage.Output(rawValue: o) else { throw RecipeError("\(path).output", "\(o) is not one of dense, factors") }
        return LowRankStage(rank: spec, output: output, selector: try selector(f, at: path))
    }

    static func quantize(_ f: StageFields, at path: String) throws -> QuantizeStage {
        try allowOnly(f.keys, ["method", "bits", "scheme", "granularity", "group_size", "damp", "act_order", "observer", "targets", "ignore"], at: path)
        let methodName = try text(f.method, at: "\(path).method") ?? "rtn"
        let method: QuantizeStage.Method
        switch methodName {
        case "rtn":
            if f.has("damp") { throw RecipeError("\(path).damp", "only applies to method gptq") }
            if f.has("act_order") { throw RecipeError("\(path).act_order", "only applies to method gptq") }
            method = .rtn
        case "gptq":
            let damp = f.damp ?? 0.01
            guard damp > 0 && damp <= 1 else { throw RecipeError("\(path).damp", "\(fmt(damp)) is not in (0, 1]") }
            method = .gptq(damp: damp)
        default: throw RecipeError("\(path).method", "\(methodName) is not one of rtn, gptq")
        }
        guard let bits = f.bits else { throw RecipeError("\(path).bits", "is required") }
        guard [2, 3, 4, 8].contains(bits) else { throw RecipeError("\(path).bits", "\(bits) is not one of 2, 3, 4, 8") }
        let scheme = try text(f.scheme, at: "\(path).scheme") ?? "symmetric"
        guard scheme == "symmetric" || scheme == "asymmetric" else {
            throw RecipeError("\(path).scheme", "\(scheme) is not one of symmetric, asymmetric")
        }
        let gs = f.groupSize
        let gran = try text(f.granularity, at: "\(path).granularity") ?? (gs == nil ? "channel" : "group")
        let granularity: RTNQuantizer.Granularity
        switch gran {
        case "tensor", "channel":
            if gs != nil { throw RecipeError("\(path).group_size", "only applies to granularity group") }
            granularity = gran == "tensor" ? .tensor : .channel
        case "group":
            guard let g = gs else { throw RecipeError("\(path).group_size", "is required for granularity group (32, 64 or 128)") }
            guard [32, 64, 128].contains(g) else { throw RecipeError("\(path).group_size", "\(g) is not one of 32, 64, 128") }
            granularity = .group(g)
        default:
            throw RecipeError("\(path).granularity", "\(gran) is not one of tensor, channel, group")
        }
        var stage = QuantizeStage(bits: bits, symmetric: scheme == "symmetric", granularity: granularity, method: method,
                                  selector: try selector(f, at: path))
        if let b = f.actOrder { stage.actOrder = b }
        if let o = try text(f.observer, at: "\(path).observer") {
            guard let obs = RTNQuantizer.Observer(rawValue: o) else { throw RecipeError("\(path).observer", "\(o) is not one of minmax, mse") }
            stage.observer = obs
        }
        return stage
    }

    /// A GGUF type name (`mixes`: a llama-quantize mix is allowed too).
    private static func ggufType(_ v: String?, at path: String, default d: String, mixes: Bool) throws -> ExportStage.GGUFType {
        let s = try text(v, at: path) ?? d
        let allowed = ExportStage.GGUFType.allCases.filter { mixes || !$0.isMix }
        guard let t = ExportStage.GGUFType(rawValue: s.lowercased()), allowed.contains(t) else {
            throw RecipeError(path, "\(s) is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }

    static func export(_ f: StageFields, at path: String) throws -> ExportStage {
        let fs = try text(f.format, at: "\(path).format") ?? "safetensors"
        guard let format = ExportStage.Format(rawValue: fs) else {
            throw RecipeError("\(path).format", "\(fs) is not one of \(ExportStage.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if format == .gguf {
            try allowOnly(f.keys, ["format", "type", "fallback", "tensor_types", "output_type", "embedding_type", "pure", "allow_fallback", "imatrix", "gptq"], at: path)
            var e = ExportStage(format: .gguf, ggufType: try ggufType(f.type, at: "\(path).type", default: "q8_0", mixes: true),
                                ggufFallback: try ggufType(f.fallback, at: "\(path).fallback", default: "f32", mixes: false))
            guard e.ggufFallback == .f32 || e.ggufFallback == .f16 else {
                throw RecipeError("\(path).fallback", "\(e.ggufFallback.rawValue) is not one of f32, f16")
            }
            for (pattern, t) in f.tensorTypes ?? [:] {
                let at = "\(path).tensor_types.\(TextRules.display(pattern))"
                guard !pattern.isEmpty else { throw RecipeError(at, "a pattern must not be empty") }
                _ = try text(pattern, at: at)
                e.tensorTypes[pattern] = try ggufType(t, at: at, default: "", mixes: false)
            }
            if f.outputType != nil { e.outputType = try ggufType(f.outputType, at: "\(path).output_type", default: "", mixes: false) }
            if f.embeddingType != nil { e.embeddingType = try ggufType(f.embeddingType, at: "\(path).embedding_type", default: "", mixes: false) }
            e.pure = f.pure ?? false
            e.allowFallback = f.allowFallback ?? true
            e.errorFeedback = f.gptq ?? false
            switch f.imatrix {
            case .flag(true)?: e.importance = .calibration
            case .text(let p)?:
                guard !p.isEmpty else { throw RecipeError("\(path).imatrix", "must not be empty (true, or an imatrix file)") }
                _ = try text(p, at: "\(path).imatrix")
                e.importance = .file(p)
            default: break
            }
            if e.pure && !e.ggufType.isMix { throw RecipeError("\(path).pure", "only applies to a mix (q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m); \(e.ggufType.rawValue) is one type already") }
            return e
        }
        if format == .compressed {
            try allowOnly(f.keys, ["format"], at: path)
            return ExportStage(format: .compressed)
        }
        try allowOnly(f.keys, ["format", "dtype"], at: path)
        var dtype: DType?
        if let ds = try text(f.dtype, at: "\(path).dtype") {
            guard let d = DType(rawValue: ds.uppercased()), d.isFloat16Or32 else {
                throw RecipeError("\(path).dtype", "\(ds) is not one of F32, F16, BF16")
            }
            dtype = d
        }
        return ExportStage(format: format, dtype: dtype)
    }
}
