import Foundation

extension RecipeValidator {
    /// An `awq` stage runs once, on a Llama-family decoder, before every stage that changes weights,
    /// with a later quantize stage or GGUF export to scale for, and not beside flap or an imatrix
    /// file (which was collected on inputs the scaling changes).
    static func checkAWQ(_ recipe: Recipe, model: ModelSource) throws {
        guard let (at, _) = recipe.awq else { return }
        let path = "stages[\(at)].awq"
        guard DecoderModelFiles.isDecoder(model) else {
            throw RecipeError(
                path, "awq scales the linears of Llama-family decoder blocks; \(model.path) is not such a decoder")
        }
        var target = false
        for (j, st) in recipe.stages.enumerated() where j != at {
            switch st {
            case .awq: throw RecipeError("stages[\(j)].awq", "a recipe has one awq stage")
            case .decompose:
                throw RecipeError(path, "awq scales for an integer grid; decompose (stages[\(j)]) makes a BitStack")
            case .prune(let p) where p.method.isStructural:
                throw RecipeError(path, "awq does not combine with flap (stages[\(j)])")
            case .prune, .quantize, .lowrank, .distill:
                if j < at {
                    throw RecipeError(path, "awq must come before stages[\(j)]: it scales the input model's weights")
                }
                if case .quantize(let q) = st {
                    if case .vptq = q.method {
                        throw RecipeError(path, "awq scales for an integer grid; vptq (stages[\(j)]) has codebooks")
                    }
                    target = true
                }
            case .export(let e) where e.format == .gguf:
                target = true
                if let source = e.importance?.collectedElsewhere {
                    throw RecipeError(
                        "stages[\(j)].export.imatrix",
                        "\(source) importance matrix was collected on inputs that awq rescales: use imatrix: true")
                }
            default: continue
            }
        }
        guard target else {
            throw RecipeError(
                path,
                "scales for the grid of a later quantize stage or GGUF export: add one (awq alone changes nothing)")
        }
    }
}
