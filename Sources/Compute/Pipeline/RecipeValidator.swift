/// Checks a recipe against a model's headers: every selector matches a tensor, matched tensors
/// are floating point, N:M groups fit the rows. Errors name the recipe path.
public enum RecipeValidator {
    public static func validate(_ recipe: Recipe, tensors: [TensorInfo]) throws {
        // GGUF holds 1 to 4 dimensions per tensor (ggml's GGML_MAX_DIMS); no reshaping rule is guessed.
        if let i = recipe.stageIndex(exporting: .gguf),
            let t = tensors.first(where: { $0.shape.count > 4 })
        {
            throw RecipeError(
                "stages[\(i)].export",
                "tensor \(t.name) has \(t.shape.count) dimensions \(t.shape); GGUF holds at most 4 (export it as "
                    + "safetensors)"
            )
        }
        for (i, stage) in recipe.stages.enumerated() {
            if case .quantize(let q) = stage {
                let path = "stages[\(i)].quantize"
                let matched = try selected(q.selector, tensors, at: path, verb: "quantized")
                if case .vptq(let o) = q.method {
                    for t in matched where (t.shape.last ?? 0) % o.vector != 0 {
                        throw RecipeError(
                            "\(path).vector",
                            "tensor \(t.name) has rows of \(t.shape.last ?? 0) values, not a multiple of \(o.vector)")
                    }
                    for t in matched where (t.shape.last ?? 0) <= o.outliers {
                        throw RecipeError(
                            "\(path).outliers",
                            "\(o.outliers) outlier columns leave tensor \(t.name) (rows of \(t.shape.last ?? 0)) "
                                + "none to quantize")
                    }
                    continue
                }
                switch q.granularity {
                case .group(let g):
                    for t in matched where (t.shape.last ?? 0) % g != 0 {
                        throw RecipeError(
                            "\(path).group_size",
                            "tensor \(t.name) has rows of \(t.shape.last ?? 0) values, not a multiple of \(g)")
                    }
                case .channel:
                    for t in matched where t.shape.count < 2 {
                        throw RecipeError(
                            "\(path).granularity",
                            "tensor \(t.name) is 1-D and has no channels (use granularity tensor or ignore it)")
                    }
                case .tensor: break
                }
                continue
            }
            if case .decompose(let d) = stage {
                _ = try selected(d.selector, tensors, at: "stages[\(i)].decompose", verb: "decomposed")
                continue
            }
            if case .lowrank(let l) = stage {
                let path = "stages[\(i)].lowrank"
                let matched = try selected(l.selector, tensors, at: path, verb: "factorized")
                for t in matched where t.shape.count < 2 {
                    throw RecipeError(
                        "\(path).targets",
                        "matches \(t.name), which is 1-D; low-rank factorization needs a matrix (add it to ignore)")
                }
                guard l.output == .factors else { continue }
                for t in matched {
                    for (j, later) in recipe.stages.enumerated() where later.selector?.matches(t.name) ?? false {
                        if case .quantize = later {
                            throw RecipeError(
                                "stages[\(j)].quantize.targets",
                                "matches \(t.name), which stages[\(i)].lowrank writes as factors; quantize it before "
                                    + "factorizing is not supported, and factors are not quantized (use output: dense, "
                                    + "or "
                                    + "ignore it)"
                            )
                        }
                        if j > i {
                            throw RecipeError(
                                "stages[\(j)].targets",
                                "matches \(t.name), which stages[\(i)].lowrank already wrote as factors (it must be "
                                    + "the tensor's last stage)"
                            )
                        }
                    }
                }
                continue
            }
            guard case .prune(let p) = stage, !p.method.isStructural else { continue }
            let path = "stages[\(i)].prune"
            let matched = try selected(p.selector, tensors, at: path, verb: "pruned")
            if p.method is StructuredPrune {
                for t in matched where t.shape.count < 2 {
                    throw RecipeError(
                        "\(path).targets",
                        "matches \(t.name), which is 1-D and has no rows or columns to remove (add it to ignore)")
                }
            }
            var groupM = (p.method as? NMPrune)?.m
            if case .nm(_, let m)? = (p.method as? SparseGPTPrune)?.pattern { groupM = m }
            if let m = groupM {
                for t in matched where (t.shape.last ?? 0) % m != 0 {
                    throw RecipeError(
                        "\(path).m",
                        "tensor \(t.name) has rows of \(t.shape.last ?? 0) elements, not a multiple of \(m)")
                }
            }
        }
    }

    private static func selected(_ sel: TensorSelector, _ tensors: [TensorInfo], at path: String, verb: String) throws
        -> [TensorInfo]
    {
        let matched = tensors.filter { sel.matches($0.name) }
        if matched.isEmpty {
            let sample = tensors.prefix(3).map(\.name).joined(separator: ", ")
            throw RecipeError(
                "\(path).targets",
                "\(sel.targets) (minus ignore \(sel.ignore)) matches no tensor of the model (\(tensors.count) tensors, "
                    + "e.g. \(sample))"
            )
        }
        for t in matched where !t.dtype.isFloat16Or32 {
            throw RecipeError(
                "\(path).targets",
                "matches \(t.name) of dtype \(t.dtype.rawValue); only F32, F16 and BF16 tensors can be \(verb) (add it "
                    + "to ignore)"
            )
        }
        return matched
    }

    /// Peak working memory of a run, in bytes: F32 working copy + encoded outputs of the largest
    /// tensor (a `lowrank` stage adds the SVD's copy of the matrix, U, Vᵀ and the factors), plus
    /// what the model family needs for calibration and evaluation (`ModelFamily.workingMemory`),
    /// plus each export file's write-behind queue, plus tokenizing the largest dataset.
    public static func memoryEstimate(tensors: [TensorInfo], recipe: Recipe? = nil, family: ModelFamily? = nil) -> Int64
    {
        let maxNumel = tensors.map(\.numel).max() ?? 0
        let lowrank = recipe.map { r in !r.lowRankStages.isEmpty } ?? false
        let files = recipe.map { r in r.stages.filter { if case .export = $0 { true } else { false } }.count } ?? 1
        var bytes =
            Int64(maxNumel) * (lowrank ? 28 : 12) + 32 << 20 + Int64(files * (WriteBehind.chunk + WriteBehind.limit))
        if let r = recipe, let family {
            bytes += family.workingMemory(r)
            let largest = r.datasets.map { CalibrationText.fileBytes($0) }.max() ?? 0
            bytes += CalibrationText.tokenizingMemory(fileBytes: largest)
        }
        return bytes
    }
}
