/// Checks a recipe against a model's headers: every selector matches a tensor, matched tensors
/// are floating point, N:M groups fit the rows. Errors name the recipe path.
public enum RecipeValidator {
    public static func validate(_ recipe: Recipe, tensors: [TensorInfo]) throws {
        for (i, stage) in recipe.stages.enumerated() {
            if case .quantize(let q) = stage {
                let path = "stages[\(i)].quantize"
                let matched = tensors.filter { q.selector.matches($0.name) }
                if matched.isEmpty {
                    throw RecipeError("\(path).targets", "\(q.selector.targets) (minus ignore \(q.selector.ignore)) matches no tensor of the model (\(tensors.count) tensors)")
                }
                for t in matched where !t.dtype.isFloat16Or32 {
                    throw RecipeError("\(path).targets", "matches \(t.name) of dtype \(t.dtype.rawValue); only F32, F16 and BF16 tensors can be quantized (add it to ignore)")
                }
                switch q.granularity {
                case .group(let g):
                    for t in matched where (t.shape.last ?? 0) % g != 0 {
                        throw RecipeError("\(path).group_size", "tensor \(t.name) has rows of \(t.shape.last ?? 0) values, not a multiple of \(g)")
                    }
                case .channel:
                    for t in matched where t.shape.count < 2 {
                        throw RecipeError("\(path).granularity", "tensor \(t.name) is 1-D and has no channels (use granularity tensor or ignore it)")
                    }
                case .tensor: break
                }
                continue
            }
            guard case .prune(let p) = stage else { continue }
            let path = "stages[\(i)].prune"
            let matched = tensors.filter { p.selector.matches($0.name) }
            if matched.isEmpty {
                let sample = tensors.prefix(3).map(\.name).joined(separator: ", ")
                throw RecipeError("\(path).targets", "\(p.selector.targets) (minus ignore \(p.selector.ignore)) matches no tensor of the model (\(tensors.count) tensors, e.g. \(sample))")
            }
            for t in matched where !t.dtype.isFloat16Or32 {
                throw RecipeError("\(path).targets", "matches \(t.name) of dtype \(t.dtype.rawValue); only F32, F16 and BF16 tensors can be pruned (add it to ignore)")
            }
            if case .nm(_, let m) = p.method {
                for t in matched where (t.shape.last ?? 0) % m != 0 {
                    throw RecipeError("\(path).m", "tensor \(t.name) has rows of \(t.shape.last ?? 0) elements, not a multiple of \(m)")
                }
            }
        }
    }

    /// Peak working memory of a run, in bytes: F32 original + working copy + encoded output of the largest tensor.
    public static func memoryEstimate(tensors: [TensorInfo]) -> Int64 {
        let maxNumel = tensors.map(\.numel).max() ?? 0
        return Int64(maxNumel) * 12 + 32 << 20
    }
}
