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

    static func allowOnly(_ m: [String: Any], _ keys: [String], at path: String) throws {
        for k in m.keys.sorted() where !keys.contains(k) {
            throw RecipeError(path.isEmpty ? k : "\(path).\(k)", "unknown key (allowed: \(keys.joined(separator: ", ")))")
        }
    }

    static func double(_ v: Any?, at path: String) throws -> Double? {
        guard let v else { return nil }
        if let b = v as? Bool { throw RecipeError(path, "\(b) is not a number") }
        if let i = v as? Int { return Double(i) }
        if let d = v as? Double { return d }
        throw RecipeError(path, "\(v) is not a number")
    }

    static func int(_ v: Any?, at path: String) throws -> Int? {
        guard let v else { return nil }
        if v is Bool { throw RecipeError(path, "\(v) is not an integer") }
        if let i = v as? Int { return i }
        throw RecipeError(path, "\(v) is not an integer")
    }

    static func string(_ v: Any?, at path: String) throws -> String? {
        guard let v else { return nil }
        guard let s = v as? String else { throw RecipeError(path, "\(v) is not a string") }
        if s.utf8.contains(0) { throw RecipeError(path, "\(TextRules.printable(s)) contains a NUL byte") }
        return s
    }

    static func patterns(_ v: Any?, at path: String) throws -> [String]? {
        guard let v else { return nil }
        if let s = v as? String { return try patterns([s], at: path) }
        guard let a = v as? [Any] else { throw RecipeError(path, "must be a list of glob patterns") }
        return try a.enumerated().map { i, p in
            guard let s = p as? String, !s.isEmpty else { throw RecipeError("\(path)[\(i)]", "must be a non-empty string") }
            if s.utf8.contains(0) { throw RecipeError("\(path)[\(i)]", "\(TextRules.printable(s)) contains a NUL byte") }
            return s
        }
    }

    static func selector(_ f: [String: Any], at path: String) throws -> TensorSelector {
        let targets = try patterns(f["targets"], at: "\(path).targets") ?? ["*.weight"]
        guard !targets.isEmpty else { throw RecipeError("\(path).targets", "must not be empty") }
        return TensorSelector(targets: targets, ignore: try patterns(f["ignore"], at: "\(path).ignore") ?? [])
    }

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
                if p.method.isCalibrated, calibrateAt == nil {
                    let why = { if case .wanda = p.method { return true }; return false }()
                        ? "wanda needs an earlier calibrate stage (it weighs |W| by input norms)"
                        : "sparsegpt needs an earlier calibrate stage (it uses the inputs' Hessian)"
                    throw RecipeError("stages[\(i)].prune.method", why)
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
        let r = Recipe(stages: stages)
        if r.calibration != nil && !r.exports(.safetensors) {
            throw RecipeError("stages", "calibrate runs the compressed model from its safetensors export: add `- export: {format: safetensors}`")
        }
        if r.evaluation != nil && !r.exports(.safetensors) && !r.exports(.gguf) {
            throw RecipeError("stages", "evaluate measures the safetensors export (or a decoder's GGUF export): add `- export: {format: safetensors}`")
        }
    }

    static func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }
}
