import Foundation

extension RecipeValidator {
    /// A `slice` stage runs once, on a pre-norm Llama-family decoder, before every stage that
    /// changes weights, not beside flap or awq (each stages its own copy of the model), and not
    /// with an importance matrix collected on the unrotated model.
    static func checkSlice(_ recipe: Recipe, model: ModelSource) throws {
        guard let (at, s) = recipe.slice else { return }
        let path = "stages[\(at)].slice"
        guard DecoderModelFiles.isDecoder(model) else {
            throw RecipeError(
                path,
                "slice rotates the residual stream of a pre-norm (RMSNorm) Llama-family decoder; \(model.path) is "
                    + "not one (a post-norm model such as BERT normalises each residual sum, which no rotation "
                    + "passes through)"
            )
        }
        for (j, st) in recipe.stages.enumerated() where j != at {
            switch st {
            case .slice: throw RecipeError("stages[\(j)].slice", "a recipe has one slice stage")
            case .awq: throw RecipeError(path, "slice does not combine with awq (stages[\(j)])")
            case .prune(let p) where p.method.isStructural:
                throw RecipeError(path, "slice does not combine with flap (stages[\(j)])")
            case .prune, .quantize, .lowrank, .distill:
                if j < at {
                    throw RecipeError(path, "slice must come before stages[\(j)]: it changes the shapes of the tensors")
                }
            case .export(let e) where e.format == .gguf && e.importance?.collectedElsewhere != nil:
                throw RecipeError(
                    "stages[\(j)].export.imatrix",
                    "an importance matrix collected on the unrotated model does not fit the sliced one: "
                        + "use imatrix: true")
            default: continue
            }
        }
        if !s.uniform {
            for (j, st) in recipe.stages.enumerated() where j > at {
                if let reason = shortcutRefusal(st) {
                    throw RecipeError(
                        "stages[\(j)]", "\(reason) after a per-block slice (uniform: false); \(shortcutRunners)")
                }
            }
        }
    }

    /// A model that carries a per-block slice's shortcut matrices (config.json `residual_shortcuts`)
    /// runs in Squeeze's own forward only: evaluate it or export it as safetensors.
    static func checkShortcuts(_ recipe: Recipe, config: LlamaConfig, model: String) throws {
        guard config.shortcuts else { return }
        for (j, st) in recipe.stages.enumerated() {
            if let reason = shortcutRefusal(st) {
                throw RecipeError(
                    "stages[\(j)]",
                    "\(reason) on \(model), a per-block slice with shortcut matrices; \(shortcutRunners)")
            }
        }
    }

    private static let shortcutRunners =
        "its shortcut matrices run in Squeeze's forward only (evaluate, generate, a safetensors export)"

    /// Why `stage` cannot run on (or after) shortcut matrices, or nil when it can.
    private static func shortcutRefusal(_ stage: Stage) -> String? {
        switch stage {
        case .calibrate, .evaluate: return nil
        case .export(let e) where e.format == .safetensors: return nil
        case .export(let e) where e.format == .gguf: return "llama.cpp cannot run a GGUF export"
        case .export(let e): return "a \(e.format.rawValue) export is not built"
        case .prune, .quantize, .lowrank, .awq, .slice, .decompose, .distill:
            return "a stage that changes weights is not built"
        }
    }
}
