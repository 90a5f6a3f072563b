import Foundation

extension RecipeValidator {
    /// A `slice` stage runs once, on a pre-norm Llama-family decoder, before every stage that
    /// changes weights, not beside flap or awq (each stages its own copy of the model), and not
    /// with an importance matrix collected on the unrotated model.
    static func checkSlice(_ recipe: Recipe, model: ModelSource) throws {
        guard let (at, _) = recipe.slice else { return }
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
    }
}
