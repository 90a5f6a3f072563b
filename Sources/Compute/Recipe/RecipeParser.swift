import Foundation
import Yams

/// Parses and validates recipes from YAML (JSON is accepted as YAML), and renders canonical JSON.
public enum RecipeParser {
    public static let knownStages = ["prune", "quantize", "lowrank", "calibrate", "distill", "evaluate", "export"]

    /// Parses recipe text; every error names the path of the offending key.
    public static func parse(_ text: String) throws -> Recipe {
        let doc: Any?
        do { doc = try SafeYAML.load(text, limits: SafeYAML.recipe, rootKeys: ["stages"]) } catch let e as SafeYAML.Failure {
            throw RecipeError(e.path, e.reason)
        }
        guard let root = doc as? [String: Any] else { throw RecipeError("", "a recipe must be a mapping with a `stages` list") }
        try allowOnly(root, ["stages"], at: "")
        guard let rawStages = root["stages"] else { throw RecipeError("stages", "is required") }
        guard let list = rawStages as? [Any] else { throw RecipeError("stages", "must be a list") }
        guard !list.isEmpty else { throw RecipeError("stages", "must have at least one stage") }
        var stages = [Stage]()
        for (i, raw) in list.enumerated() {
            let path = "stages[\(i)]"
            guard let m = raw as? [String: Any], m.count == 1, let (name, body) = m.first else {
                throw RecipeError(path, "each stage is a mapping with exactly one key, the stage name (one of \(knownStages.joined(separator: ", ")))")
            }
            guard knownStages.contains(name) else {
                throw RecipeError("\(path).\(name)", "unknown stage (expected one of \(knownStages.joined(separator: ", ")))")
            }
            let sp = "\(path).\(name)"
            let fields: [String: Any]
            if body is NSNull { fields = [:] } else {
                guard let f = body as? [String: Any] else { throw RecipeError(sp, "must be a mapping") }
                fields = f
            }
            switch name {
            case "prune": stages.append(.prune(try prune(fields, at: sp)))
            case "quantize": stages.append(.quantize(try quantize(fields, at: sp)))
            case "lowrank": stages.append(.lowrank(try lowrank(fields, at: sp)))
            case "calibrate": stages.append(.calibrate(try calibrate(fields, at: sp)))
            case "distill": stages.append(.distill(try distill(fields, at: sp)))
            case "evaluate": stages.append(.evaluate(try evaluate(fields, at: sp)))
            case "export": stages.append(.export(try export(fields, at: sp)))
            default: break
            }
        }
        let recipe = Recipe(stages: stages)
        for (i, st) in stages.enumerated() where i > 0 {
            if case .prune(let p) = st, case .global = p.scope {
                throw RecipeError("stages[\(i)].prune.scope", "global pruning ranks the input weights, so it must be the first stage")
            }
        }
        try checkCalibration(stages)
        guard !recipe.exportStages.isEmpty else {
            throw RecipeError("stages", "no export stage: add `- export: {format: safetensors}` so the job produces an artifact")
        }
        if recipe.exportStages.contains(where: { $0.format == .compressed }) && recipe.quantizeStages.isEmpty {
            throw RecipeError("stages", "a compressed export needs a quantize stage (it stores packed codes and scales)")
        }
        var formats = Set<String>()
        for (i, e) in recipe.exportStages.enumerated() {
            let key = e.format == .gguf ? e.ggufFileName : e.format.rawValue
            if !formats.insert(key).inserted {
                throw RecipeError("stages", "export #\(i + 1) repeats an earlier \(e.format.rawValue) export (one safetensors export, one gguf export per type)")
            }
        }
        return recipe
    }

    /// Parses a recipe file.
    public static func parse(file: String) throws -> Recipe {
        let text: String
        do { text = try InputFile.text(of: file, what: "recipe", limit: InputFile.recipeLimit) } catch let e as ComputeError {
            throw RecipeError("", e.description)
        }
        return try parse(text)
    }

    private static func allowOnly(_ m: [String: Any], _ keys: [String], at path: String) throws {
        for k in m.keys.sorted() where !keys.contains(k) {
            throw RecipeError(path.isEmpty ? k : "\(path).\(k)", "unknown key (allowed: \(keys.joined(separator: ", ")))")
        }
    }

    private static func double(_ v: Any?, at path: String) throws -> Double? {
        guard let v else { return nil }
        if let b = v as? Bool { throw RecipeError(path, "\(b) is not a number") }
        if let i = v as? Int { return Double(i) }
        if let d = v as? Double { return d }
        throw RecipeError(path, "\(v) is not a number")
    }

    private static func int(_ v: Any?, at path: String) throws -> Int? {
        guard let v else { return nil }
        if v is Bool { throw RecipeError(path, "\(v) is not an integer") }
        if let i = v as? Int { return i }
        throw RecipeError(path, "\(v) is not an integer")
    }

    private static func string(_ v: Any?, at path: String) throws -> String? {
        guard let v else { return nil }
        guard let s = v as? String else { throw RecipeError(path, "\(v) is not a string") }
        if s.utf8.contains(0) { throw RecipeError(path, "\(TextRules.printable(s)) contains a NUL byte") }
        return s
    }

    private static func patterns(_ v: Any?, at path: String) throws -> [String]? {
        guard let v else { return nil }
        if let s = v as? String { return try patterns([s], at: path) }
        guard let a = v as? [Any] else { throw RecipeError(path, "must be a list of glob patterns") }
        return try a.enumerated().map { i, p in
            guard let s = p as? String, !s.isEmpty else { throw RecipeError("\(path)[\(i)]", "must be a non-empty string") }
            if s.utf8.contains(0) { throw RecipeError("\(path)[\(i)]", "\(TextRules.printable(s)) contains a NUL byte") }
            return s
        }
    }

    private static func selector(_ f: [String: Any], at path: String) throws -> TensorSelector {
        let targets = try patterns(f["targets"], at: "\(path).targets") ?? ["*.weight"]
        guard !targets.isEmpty else { throw RecipeError("\(path).targets", "must not be empty") }
        return TensorSelector(targets: targets, ignore: try patterns(f["ignore"], at: "\(path).ignore") ?? [])
    }

    static func prune(_ f: [String: Any], at path: String) throws -> PruneStage {
        try allowOnly(f, ["method", "sparsity", "n", "m", "scope", "min_keep", "schedule", "dim", "norm", "targets", "ignore"], at: path)
        let method = try string(f["method"], at: "\(path).method") ?? "magnitude"
        let sel = try selector(f, at: path)
        func sparsity() throws -> Double {
            guard let s = try double(f["sparsity"], at: "\(path).sparsity") else { throw RecipeError("\(path).sparsity", "is required for method \(method)") }
            guard s >= 0 && s < 1 else { throw RecipeError("\(path).sparsity", "\(fmt(s)) is not in [0, 1)") }
            return s
        }
        func refuse(_ keys: [String], _ why: String) throws {
            for k in keys where f[k] != nil { throw RecipeError("\(path).\(k)", why) }
        }
        switch method {
        case "magnitude":
            let s = try sparsity()
            try refuse(["n", "m"], "belongs to method nm, not magnitude")
            try refuse(["dim", "norm"], "belongs to method structured, not magnitude")
            let scope = try string(f["scope"], at: "\(path).scope") ?? "layer"
            guard scope == "layer" || scope == "global" else { throw RecipeError("\(path).scope", "\(scope) is not one of layer, global") }
            let minKeep = try double(f["min_keep"], at: "\(path).min_keep")
            if scope == "layer" {
                if minKeep != nil { throw RecipeError("\(path).min_keep", "only applies to scope global") }
                return PruneStage(method: .magnitude(sparsity: s), schedule: try schedule(f["schedule"], final: s, at: "\(path).schedule"),
                                  selector: sel)
            }
            try refuse(["schedule"], "only applies to scope layer")
            let mk = minKeep ?? 0
            guard mk >= 0 && mk <= 1 else { throw RecipeError("\(path).min_keep", "\(fmt(mk)) is not in [0, 1]") }
            return PruneStage(method: .magnitude(sparsity: s), scope: .global(minKeep: mk), selector: sel)
        case "nm":
            guard let n = try int(f["n"], at: "\(path).n") else { throw RecipeError("\(path).n", "is required for method nm") }
            guard let m = try int(f["m"], at: "\(path).m") else { throw RecipeError("\(path).m", "is required for method nm") }
            guard m >= 2 && m <= 64 else { throw RecipeError("\(path).m", "\(m) is not in [2, 64]") }
            guard n >= 1 && n < m else { throw RecipeError("\(path).n", "\(n) must be at least 1 and less than m (\(m))") }
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
            let d = try string(f["dim"], at: "\(path).dim") ?? "rows"
            guard let dim = StructuredPruning.Dimension(rawValue: d) else { throw RecipeError("\(path).dim", "\(d) is not one of rows, columns") }
            let nm = try string(f["norm"], at: "\(path).norm") ?? "l2"
            guard let norm = StructuredPruning.Norm(rawValue: nm.lowercased()) else { throw RecipeError("\(path).norm", "\(nm) is not one of l1, l2") }
            return PruneStage(method: .structured(sparsity: s, dim: dim, norm: norm), selector: sel)
        default:
            throw RecipeError("\(path).method", "\(method) is not one of magnitude, nm, structured, wanda")
        }
    }

    private static func schedule(_ v: Any?, final: Double, at path: String) throws -> CubicSchedule? {
        guard let v else { return nil }
        guard let f = v as? [String: Any] else { throw RecipeError(path, "must be a mapping with steps and initial_sparsity") }
        try allowOnly(f, ["type", "steps", "initial_sparsity"], at: path)
        let type = try string(f["type"], at: "\(path).type") ?? "cubic"
        guard type == "cubic" else { throw RecipeError("\(path).type", "\(type) is not one of cubic") }
        guard let steps = try int(f["steps"], at: "\(path).steps") else { throw RecipeError("\(path).steps", "is required") }
        guard steps >= 1 && steps <= 1000 else { throw RecipeError("\(path).steps", "\(steps) is not in [1, 1000]") }
        let initial = try double(f["initial_sparsity"], at: "\(path).initial_sparsity") ?? 0
        guard initial >= 0 && initial <= final else {
            throw RecipeError("\(path).initial_sparsity", "\(fmt(initial)) is not in [0, sparsity \(fmt(final))]")
        }
        return CubicSchedule(initial: initial, final: final, steps: steps)
    }

    private static func window(_ f: [String: Any], at path: String, samples: Int) throws -> (Int, Int) {
        let n = try int(f["samples"], at: "\(path).samples") ?? samples
        guard n >= 1 && n <= 4096 else { throw RecipeError("\(path).samples", "\(n) is not in [1, 4096]") }
        let l = try int(f["seq_len"], at: "\(path).seq_len") ?? 128
        guard l >= 8 && l <= 512 else { throw RecipeError("\(path).seq_len", "\(l) is not in [8, 512]") }
        return (n, l)
    }

    static func calibrate(_ f: [String: Any], at path: String) throws -> CalibrateStage {
        try allowOnly(f, ["dataset", "samples", "seq_len"], at: path)
        guard let d = try string(f["dataset"], at: "\(path).dataset"), !d.isEmpty else {
            throw RecipeError("\(path).dataset", "is required: a UTF-8 text file under an allowed input root")
        }
        let (n, l) = try window(f, at: path, samples: 16)
        return CalibrateStage(dataset: d, samples: n, seqLen: l)
    }

    static func distill(_ f: [String: Any], at path: String) throws -> DistillStage {
        try allowOnly(f, ["iterations", "targets", "ignore"], at: path)
        let it = try int(f["iterations"], at: "\(path).iterations") ?? 10
        guard it >= 1 && it <= 1000 else { throw RecipeError("\(path).iterations", "\(it) is not in [1, 1000]") }
        return DistillStage(iterations: it, selector: try selector(f, at: path))
    }

    static func evaluate(_ f: [String: Any], at path: String) throws -> EvaluateStage {
        try allowOnly(f, ["dataset", "samples", "seq_len"], at: path)
        let d = try string(f["dataset"], at: "\(path).dataset")
        if let d, d.isEmpty { throw RecipeError("\(path).dataset", "must not be empty") }
        let (n, l) = try window(f, at: path, samples: 16)
        return EvaluateStage(dataset: d, samples: n, seqLen: l)
    }

    /// At most one calibrate and one evaluate stage; calibrate precedes the stages that use it;
    /// an evaluate stage without a dataset needs a calibrate stage's.
    private static func checkCalibration(_ stages: [Stage]) throws {
        var calibrateAt: Int?
        var evaluateSeen = false
        for (i, st) in stages.enumerated() {
            switch st {
            case .calibrate:
                if calibrateAt != nil { throw RecipeError("stages[\(i)].calibrate", "a recipe has at most one calibrate stage") }
                calibrateAt = i
            case .evaluate(let e):
                if evaluateSeen { throw RecipeError("stages[\(i)].evaluate", "a recipe has at most one evaluate stage") }
                evaluateSeen = true
                if e.dataset == nil && !stages.contains(where: { if case .calibrate = $0 { return true }; return false }) {
                    throw RecipeError("stages[\(i)].evaluate.dataset", "is required when the recipe has no calibrate stage")
                }
            case .distill:
                if calibrateAt == nil { throw RecipeError("stages[\(i)].distill", "needs an earlier calibrate stage (it fits layers on calibration inputs)") }
            case .prune(let p):
                if case .wanda = p.method, calibrateAt == nil {
                    throw RecipeError("stages[\(i)].prune.method", "wanda needs an earlier calibrate stage (it weighs |W| by input norms)")
                }
            case .quantize(let q):
                if case .gptq = q.method, calibrateAt == nil {
                    throw RecipeError("stages[\(i)].quantize.method", "gptq needs an earlier calibrate stage (it uses the inputs' Hessian)")
                }
            case .lowrank(let l):
                if l.output == .factors && stages.contains(where: { if case .calibrate = $0 { return true }; return false }) {
                    throw RecipeError("stages[\(i)].lowrank.output", "factors cannot be used with calibrate (the forward pass needs whole matrices): use output: dense")
                }
            default: break
            }
        }
        let needsDense = stages.contains { if case .calibrate = $0 { return true }; if case .evaluate = $0 { return true }; return false }
        if needsDense && !stages.contains(where: { if case .export(let e) = $0 { return e.format == .safetensors }; return false }) {
            throw RecipeError("stages", "calibrate and evaluate run the compressed model from its safetensors export: add `- export: {format: safetensors}`")
        }
    }

    static func lowrank(_ f: [String: Any], at path: String) throws -> LowRankStage {
        try allowOnly(f, ["rank", "energy", "output", "targets", "ignore"], at: path)
        let rank = try int(f["rank"], at: "\(path).rank")
        let energy = try double(f["energy"], at: "\(path).energy")
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
        let o = try string(f["output"], at: "\(path).output") ?? "dense"
        guard let output = LowRankStage.Output(rawValue: o) else { throw RecipeError("\(path).output", "\(o) is not one of dense, factors") }
        return LowRankStage(rank: spec, output: output, selector: try selector(f, at: path))
    }

    static func quantize(_ f: [String: Any], at path: String) throws -> QuantizeStage {
        try allowOnly(f, ["method", "bits", "scheme", "granularity", "group_size", "damp", "targets", "ignore"], at: path)
        let methodName = try string(f["method"], at: "\(path).method") ?? "rtn"
        let method: QuantizeStage.Method
        switch methodName {
        case "rtn":
            if f["damp"] != nil { throw RecipeError("\(path).damp", "only applies to method gptq") }
            method = .rtn
        case "gptq":
            let damp = try double(f["damp"], at: "\(path).damp") ?? 0.01
            guard damp > 0 && damp <= 1 else { throw RecipeError("\(path).damp", "\(fmt(damp)) is not in (0, 1]") }
            method = .gptq(damp: damp)
        default: throw RecipeError("\(path).method", "\(methodName) is not one of rtn, gptq")
        }
        guard let bits = try int(f["bits"], at: "\(path).bits") else { throw RecipeError("\(path).bits", "is required") }
        guard [2, 3, 4, 8].contains(bits) else { throw RecipeError("\(path).bits", "\(bits) is not one of 2, 3, 4, 8") }
        let scheme = try string(f["scheme"], at: "\(path).scheme") ?? "symmetric"
        guard scheme == "symmetric" || scheme == "asymmetric" else {
            throw RecipeError("\(path).scheme", "\(scheme) is not one of symmetric, asymmetric")
        }
        let gs = try int(f["group_size"], at: "\(path).group_size")
        let gran = try string(f["granularity"], at: "\(path).granularity") ?? (gs == nil ? "channel" : "group")
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
        return QuantizeStage(bits: bits, symmetric: scheme == "symmetric", granularity: granularity, method: method,
                             selector: try selector(f, at: path))
    }

    static func export(_ f: [String: Any], at path: String) throws -> ExportStage {
        let fs = try string(f["format"], at: "\(path).format") ?? "safetensors"
        guard let format = ExportStage.Format(rawValue: fs) else {
            throw RecipeError("\(path).format", "\(fs) is not one of \(ExportStage.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if format == .gguf {
            try allowOnly(f, ["format", "type", "fallback"], at: path)
            let ts = try string(f["type"], at: "\(path).type") ?? "q8_0"
            guard let t = ExportStage.GGUFType(rawValue: ts.lowercased()) else {
                throw RecipeError("\(path).type", "\(ts) is not one of \(ExportStage.GGUFType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let fb = try string(f["fallback"], at: "\(path).fallback") ?? "f32"
            guard let fallback = ExportStage.GGUFType(rawValue: fb.lowercased()), fallback == .f32 || fallback == .f16 else {
                throw RecipeError("\(path).fallback", "\(fb) is not one of f32, f16")
            }
            return ExportStage(format: .gguf, ggufType: t, ggufFallback: fallback)
        }
        if format == .compressed {
            try allowOnly(f, ["format"], at: path)
            return ExportStage(format: .compressed)
        }
        try allowOnly(f, ["format", "dtype"], at: path)
        var dtype: DType?
        if let ds = try string(f["dtype"], at: "\(path).dtype") {
            guard let d = DType(rawValue: ds.uppercased()), d.isFloat16Or32 else {
                throw RecipeError("\(path).dtype", "\(ds) is not one of F32, F16, BF16")
            }
            dtype = d
        }
        return ExportStage(format: format, dtype: dtype)
    }

    private static func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }
}
