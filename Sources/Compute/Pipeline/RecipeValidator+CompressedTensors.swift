import Foundation

extension RecipeValidator {
    /// A compressed-tensors export is a Hugging Face directory made from the input's: it needs a
    /// safetensors model with config.json, and it packs only linear layers' weights (2-D `.weight`
    /// tensors; a decoder's block linears and LM head), which transformers and vLLM replace.
    static func checkCompressedTensorsExport(_ recipe: Recipe, model: ModelSource, tensors: [TensorInfo]) throws {
        guard recipe.exports(.compressedTensors) else { return }
        guard model.format == .safetensors, model.extraFiles.contains(where: { $0.hasSuffix("/config.json") }) else {
            throw RecipeError(
                "export",
                "compressed-tensors writes a Hugging Face directory: \(model.path) is not one (safetensors weights "
                    + "with config.json beside them)")
        }
        let linear = CompressedTensorsLayout.linearWeights(tensors)
        let quantizers = recipe.stages.enumerated().compactMap { i, st -> (index: Int, stage: QuantizeStage)? in
            if case .quantize(let q) = st { return (i, q) }
            return nil
        }
        for t in tensors {
            guard let i = quantizers.last(where: { $0.stage.selector.matches(t.name) })?.index else { continue }
            guard linear.contains(t.name) else {
                throw RecipeError(
                    "stages[\(i)].quantize",
                    "\(TextRules.display(t.name)) is not a linear layer's weight: compressed-tensors packs only those "
                        + "(narrow targets, or add it to ignore)")
            }
        }
    }
}
