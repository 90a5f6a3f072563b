import Foundation
import Yams

/// Parses and validates recipes from YAML (JSON is accepted as YAML), and renders canonical JSON.
public enum RecipeParser {
    /// Parses recipe text; every error names the path of the offending key. Yams' decoder reads the
    /// document (`RecipeDocument`), each stage by its options type; the checks below span stages.
    /// Omitted options take the defaults of the recipe's `version` (default: the current one).
    public static func parse(_ text: String) throws -> Recipe { try parse(text, defaultVersion: RecipeVersion.current) }

    /// Parses a recipe stored by an earlier Squeeze (`jobs.recipe`): without a `version` it is
    /// version 1, so it keeps the meaning it was submitted with.
    public static func parse(stored json: String) throws -> Recipe { try parse(json, defaultVersion: 1) }

    static func parse(_ text: String, defaultVersion: Int) throws -> Recipe {
        let node: Node?
        do { node = try SafeYAML.compose(text, limits: SafeYAML.recipe, rootKeys: ["stages", "version"]) } catch let e
            as SafeYAML.Failure
        {
            throw RecipeError(e.path, e.reason)
        }
        guard let node else { throw RecipeError("", "a recipe must be a mapping with a `stages` list") }
        var version = defaultVersion
        if case .mapping(let map) = node, let v = map["version"] {
            guard let n = v.int, RecipeVersion.all.contains(n) else {
                throw RecipeError(
                    "version",
                    "\(v.string ?? "it") is not one of \(RecipeVersion.all.map(String.init).joined(separator: ", "))")
            }
            version = n
        }
        let doc: RecipeDocument
        let decoder = YAMLDecoder()
        do {
            doc = try decoder.decode(RecipeDocument.self, from: node, userInfo: [RecipeVersion.key: version])
        } catch let e as RecipeError {
            throw e
        } catch {
            throw RecipeError("", "not a valid recipe: \(error)")
        }
        guard let list = doc.stages else { throw RecipeError("stages", "is required") }
        guard !list.isEmpty else { throw RecipeError("stages", "must have at least one stage") }
        let stages = list
        let recipe = Recipe(stages: stages)
        for (i, st) in stages.enumerated() where i > 0 {
            if case .prune(let p) = st, let m = p.method as? MagnitudePrune, case .global = m.scope {
                throw RecipeError(
                    "stages[\(i)].prune.scope", "global pruning ranks the input weights, so it must be the first stage")
            }
        }
        try checkCalibration(stages)
        guard !recipe.exportStages.isEmpty else {
            throw RecipeError(
                "stages", "no export stage: add `- export: {format: safetensors}` so the job produces an artifact")
        }
        let decomposes = stages.contains {
            if case .decompose = $0 { return true }
            return false
        }
        if recipe.exports(.compressed) && recipe.quantizeStages.isEmpty && !decomposes {
            throw RecipeError(
                "stages", "a compressed export needs a quantize stage (it stores packed codes and scales)")
        }
        if decomposes && !recipe.exports(.compressed) {
            throw RecipeError(
                "stages", "decompose stores its stack in the compressed export: add `- export: {format: compressed}`")
        }
        if recipe.exportStages.contains(where: { $0.format == .compressedTensors }) {
            try checkCompressedTensors(recipe, stages: stages)
        }
        var formats = Set<String>()
        for (i, e) in recipe.exportStages.enumerated() {
            let key = e.format == .gguf ? e.ggufFileName : e.format.rawValue
            if !formats.insert(key).inserted {
                throw RecipeError(
                    "stages",
                    "export #\(i + 1) repeats an earlier \(e.format.rawValue) export (one safetensors export, one gguf "
                        + "export per type)"
                )
            }
        }
        return recipe
    }

    /// A compressed-tensors export stores what quantize stages produce as group or channel scales.
    static func checkCompressedTensors(_ recipe: Recipe, stages: [Stage]) throws {
        for (i, st) in stages.enumerated() {
            guard case .decompose = st else { continue }
            throw RecipeError(
                "stages[\(i)].decompose",
                "compressed-tensors has no BitStack blocks (export compressed, safetensors or gguf)")
        }
        guard !recipe.quantizeStages.isEmpty else {
            throw RecipeError(
                "stages", "a compressed-tensors export needs a quantize stage (it stores packed codes and scales)")
        }
        for (i, st) in stages.enumerated() {
            if case .quantize(let q) = st, case .vptq = q.method {
                throw RecipeError(
                    "stages[\(i)].quantize.method",
                    "vptq: compressed-tensors has no vector codebooks (export compressed, safetensors or gguf)")
            }
            guard case .quantize(let q) = st, q.granularity == .tensor else { continue }
            throw RecipeError(
                "stages[\(i)].quantize.granularity",
                "tensor: compressed-tensors' pack-quantized format stores channel or group scales "
                    + "(granularity: channel, or a group_size)")
        }
    }

    /// Parses a recipe file.
    public static func parse(file: String) throws -> Recipe {
        let text: String
        do { text = try InputFile.text(of: file, what: "recipe", limit: InputFile.recipeLimit) } catch let e
            as ComputeError
        {
            throw RecipeError("", e.description)
        }
        return try parse(text)
    }

    private static func checkCalibration(_ stages: [Stage]) throws {
        var calibrateAt: Int?
        var evaluateSeen = false
        for (i, st) in stages.enumerated() {
            switch st {
            case .calibrate:
                if calibrateAt != nil {
                    throw RecipeError("stages[\(i)].calibrate", "a recipe has at most one calibrate stage")
                }
                calibrateAt = i
            case .evaluate(let e):
                if evaluateSeen {
                    throw RecipeError("stages[\(i)].evaluate", "a recipe has at most one evaluate stage")
                }
                evaluateSeen = true
                if e.dataset == nil
                    && !stages.contains(where: {
                        if case .calibrate = $0 { return true }
                        return false
                    })
                {
                    throw RecipeError(
                        "stages[\(i)].evaluate.dataset", "is required when the recipe has no calibrate stage")
                }
            case .slice:
                if calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].slice", "needs an earlier calibrate stage (it rotates by the calibration inputs)")
                }
            case .decompose:
                if calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].decompose",
                        "needs an earlier calibrate stage (it scales and orders blocks by the calibration inputs)")
                }
            case .awq:
                if calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].awq", "needs an earlier calibrate stage (it scales by the calibration inputs)")
                }
            case .distill:
                if calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].distill",
                        "needs an earlier calibrate stage (it fits layers on calibration inputs)")
                }
            case .prune(let p):
                let method = type(of: p.method)
                if let why = method.calibrationReason, calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].prune.method", "\(method.name) needs an earlier calibrate stage (\(why))")
                }
            case .quantize(let q):
                if q.method.usesHessian, calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].quantize.method",
                        "\(q.method.name) needs an earlier calibrate stage (it uses the inputs' Hessian)")
                }
                if q.learnedRounding != nil, calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].quantize.learned_rounding",
                        "needs an earlier calibrate stage (learned rounding fits the inputs' Hessian)")
                }
            case .export(let e):
                if e.errorFeedback, calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].export.gptq",
                        "needs an earlier calibrate stage (error feedback uses the inputs' Hessian)")
                }
                if e.learnedRounding != nil, calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].export.learned_rounding",
                        "needs an earlier calibrate stage (learned rounding fits the inputs' Hessian)")
                }
                if e.importance == .calibration, calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].export.imatrix",
                        "true needs an earlier calibrate stage (the importance matrix is collected on its windows), or "
                            + "give an imatrix file"
                    )
                }
            case .lowrank(let l):
                if l.isCalibrated, calibrateAt == nil {
                    throw RecipeError(
                        "stages[\(i)].lowrank.method",
                        "\(l.method.rawValue) needs an earlier calibrate stage (it scales each matrix by its inputs)")
                }
                if l.output == .factors
                    && stages.contains(where: {
                        if case .calibrate = $0 { return true }
                        return false
                    })
                {
                    throw RecipeError(
                        "stages[\(i)].lowrank.output",
                        "factors cannot be used with calibrate (the forward pass needs whole matrices): use output: "
                            + "dense"
                    )
                }
            default: break
            }
        }
        let r = Recipe(stages: stages)
        let measurable: [ExportStage.Format] = [.safetensors, .gguf, .compressedTensors, .compressed]
        if r.evaluation != nil && !measurable.contains(where: r.exports) {
            throw RecipeError(
                "stages",
                "evaluate measures the safetensors export (or a decoder's GGUF or compressed export): add "
                    + "`- export: {format: safetensors}`"
            )
        }
    }

    static func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }
}
