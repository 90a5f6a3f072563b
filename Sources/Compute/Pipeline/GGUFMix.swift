/// llama-quantize's per-tensor types for a file type (`llama_tensor_get_type` in llama.cpp's
/// llama-quant.cpp, without an importance matrix, for llama-architecture models): which tensors
/// get more bits, the output/tied-embedding rule, and the fallbacks for rows that do not fill a
/// block. Applied to GGUF names; tensors under other names take the mix's default type.
enum GGUFMix {
    /// What the rules read from the model.
    struct Model {
        /// Transformer blocks (`llama.block_count`).
        var layers: Int
        /// Query heads per KV head (`head_count / head_count_kv`).
        var gqa: Int
        /// Whether the file has its own `output.weight` (else the embedding is also the output).
        var hasOutput: Bool
        /// 1-D tensors (norms, biases) stay F32 whatever the type, as llama.cpp's BERT graph needs.
        var vectorsF32 = false

        /// From a family's GGUF layout (`llama.*` keys) and the file's tensor names.
        init(layout: GGUFExportLayout?, names: [String]) {
            let meta = Dictionary(layout?.metadata ?? [], uniquingKeysWith: { a, _ in a })
            // A per-block size (deci's INT32 arrays) counts as its first block's, as llama.cpp's rules read it.
            func int(_ k: String) -> Int? {
                if case .uint32(let v)? = meta[k] { return Int(v) }
                if case .array(.int32(let a))? = meta[k], let v = a.first { return Int(v) }
                return nil
            }
            let arch = layout?.architecture ?? "llama"
            let heads = int(arch + ".attention.head_count") ?? 1, kv = int(arch + ".attention.head_count_kv") ?? heads
            layers = int(arch + ".block_count") ?? 1
            vectorsF32 = arch == "bert"
            gqa = heads / max(kv, 1)
            hasOutput = names.contains("output.weight")
        }
    }

    /// Refuses, at submit, a GGUF export whose types Squeeze cannot write for these tensors.
    static func check(_ recipe: Recipe, tensors: [TensorInfo], layout: GGUFExportLayout?, modelName: String) throws {
        let name = { (n: String) in layout?.name(n) ?? n }
        let model = Model(layout: layout, names: tensors.map { name($0.name) })
        for (i, st) in recipe.stages.enumerated() {
            guard case .export(let e) = st, e.format == .gguf else { continue }
            let planned: [String: GGMLType]
            do { planned = try types(e, tensors: tensors, ggufName: name, model: model) } catch let err as ComputeError
            {
                throw RecipeError(
                    "stages[\(i)].export", err.tensor.map { "tensor \($0): \(err.message)" } ?? err.message)
            }
            if e.budget != nil {
                try GGUFBudget.checkReachable(
                    e, recipe: recipe, tensors: tensors, types: planned, ggufName: name, model: model, layout: layout,
                    modelName: modelName, at: "stages[\(i)].export")
            }
            if case .file(let path)? = e.importance {
                try checkImportance(path, tensors: tensors, ggufName: name, at: "stages[\(i)].export.imatrix")
            }
        }
    }

    /// An imatrix file must be for this model: every entry names one of its matrices (by GGUF
    /// name) with as many columns as the entry has values.
    static func checkImportance(_ path: String, tensors: [TensorInfo], ggufName: (String) -> String, at key: String)
        throws
    {
        let m: ImportanceMatrix
        do { m = try ImportanceMatrix.read(path: path) } catch let e as ComputeError { throw RecipeError(key, "\(e)") }
        try checkImportance(m, path: path, tensors: tensors, ggufName: ggufName, at: key)
    }

    /// The same check on a matrix already read (the worker re-checks the file it reads at run time).
    static func checkImportance(
        _ m: ImportanceMatrix, path: String, tensors: [TensorInfo], ggufName: (String) -> String, at key: String
    ) throws {
        let byName = Dictionary(tensors.map { (ggufName($0.name), $0) }, uniquingKeysWith: { a, _ in a })
        for (name, e) in m.entries.sorted(by: { $0.key < $1.key }) {
            guard let t = byName[name], t.shape.count >= 2 else {
                throw RecipeError(
                    key,
                    "\(path): entry \(TextRules.display(name)) names no matrix of this model (an imatrix made for "
                        + "another model?)"
                )
            }
            guard t.shape.last == e.sums.count else {
                throw RecipeError(
                    key,
                    "\(path): entry \(name) has \(e.sums.count) columns, the model's \(name) has \(t.shape.last ?? 0) "
                        + "(an imatrix made for another model?)"
                )
            }
        }
    }

    /// Types of every tensor (by output name) a GGUF export of `e` writes; throws when an override
    /// asks a type the rows cannot hold, or `allow_fallback: false` meets a row that needs a fallback.
    static func types(_ e: ExportStage, tensors: [TensorInfo], ggufName: (String) -> String, model: Model) throws
        -> [String: GGMLType]
    {
        var out = [String: GGMLType]()
        var used = Set<String>()
        for t in tensors {
            let name = ggufName(t.name)
            let cols = t.shape.last ?? 1
            var ty = GGUFPlanner.type(for: t, export: e)
            if t.dtype.isFloat16Or32 && quantizable(name, t) {
                let mixed = e.ggufType.isMix && !e.pure
                let wanted =
                    mixed
                    ? rule(e.ggufType, name: name, model: model, imatrix: e.importance != nil) : e.ggufType.ggml
                let asked = try override(e, name: name, input: t.name, model: model, used: &used)
                let fitting = rowType(wanted, cols: cols, export: e)
                if !e.allowFallback && asked == nil && fitting != wanted {
                    throw ComputeError(
                        .invalidRecipe,
                        "allow_fallback is false, but \(name) (rows of \(cols) values) cannot take \(wanted.name) "
                            + "(\(wanted.block.count)-value blocks); llama.cpp would write \(fitting.name)",
                        tensor: t.name)
                }
                if mixed { ty = fitting }
                if let o = asked {
                    guard cols % o.block.count == 0 else {
                        throw ComputeError(
                            .invalidRecipe,
                            "an override asks \(o.name) for \(name), whose rows of \(cols) values do not fill its "
                                + "\(o.block.count)-value blocks",
                            tensor: t.name)
                    }
                    ty = o
                }
            }
            if keepsFloat(name), t.dtype.isFloat16Or32 { ty = e.ggufFallback.ggml }
            if model.vectorsF32, t.dtype.isFloat16Or32, t.shape.count < 2 { ty = .f32 }
            out[t.name] = ty
        }
        if let p = e.tensorTypes.keys.sorted().first(where: { !used.contains($0) }) {
            throw ComputeError(
                .invalidRecipe, "tensor_types pattern \(TextRules.display(p)) matches no quantizable tensor")
        }
        for (key, set, name) in [
            ("output_type", e.outputType, model.hasOutput ? "output.weight" : "token_embd.weight"),
            ("embedding_type", e.embeddingType, "token_embd.weight")
        ] where set != nil && !used.contains(key) {
            throw ComputeError(.invalidRecipe, "\(key): the model has no \(name) to give it to")
        }
        return out
    }

    /// The type `tensor_types`, `output_type` or `embedding_type` asks for this tensor (nil: none);
    /// patterns match the GGUF or the input name, and all that match must agree.
    static func override(_ e: ExportStage, name: String, input: String, model: Model, used: inout Set<String>)
        throws -> GGMLType?
    {
        if let t = e.embeddingType, name == "token_embd.weight" {
            used.insert("embedding_type")
            // as in llama.cpp, the embedding's type wins
            if !model.hasOutput && e.outputType != nil { used.insert("output_type") }
            return t.ggml
        }
        if let t = e.outputType, name == "output.weight" || (!model.hasOutput && name == "token_embd.weight") {
            used.insert("output_type")
            return t.ggml
        }
        let hits = e.tensorTypes.filter { Glob.match($0.key, name) || Glob.match($0.key, input) }
        used.formUnion(hits.keys)
        let types = Set(hits.values)
        guard types.count <= 1 else {
            throw ComputeError(
                .invalidRecipe,
                "tensor_types patterns \(hits.keys.sorted().joined(separator: ", ")) all match \(name) but ask "
                    + "different types",
                tensor: input)
        }
        return types.first?.ggml
    }

    /// BERT's position and token-type embeddings, which llama.cpp never quantizes: they keep the
    /// export's float `fallback` type whatever the type, mix or overrides say.
    static func keepsFloat(_ name: String) -> Bool { name == "position_embd.weight" || name == "token_types.weight" }

    /// llama.cpp quantizes 2-D and larger `*weight` tensors other than norms.
    static func quantizable(_ name: String, _ t: TensorInfo) -> Bool {
        name.hasSuffix("weight") && t.shape.count >= 2 && !name.contains("_norm.weight")
    }

    /// Layers 0…n/8, the last eighth and every third in between (`use_more_bits`).
    static func moreBits(_ i: Int, _ n: Int) -> Bool { i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2 }

    /// The block index in `blk.N.…` (0 when the name has none).
    static func layer(_ name: String) -> Int {
        guard name.hasPrefix("blk.") else { return 0 }
        return Int(name.dropFirst(4).prefix { $0.isNumber }) ?? 0
    }

    /// The mix's type for a tensor before the row-length fallback (`imatrix`: the export has an
    /// importance matrix, which turns off IQ4's extra bits in the first ffn_down blocks).
    private static func rule(_ mix: ExportStage.GGUFType, name: String, model m: Model, imatrix: Bool) -> GGMLType {
        var ty = mix.ggml
        let i = layer(name), n = m.layers
        if name == "output.weight" || (!m.hasOutput && name == "token_embd.weight") {
            if ty != .q8_0 { ty = .q6_K }
        } else if name.contains("attn_v.weight") {
            switch mix {
            case .q3_k_m: ty = i < 2 ? .q5_K : .q4_K
            case .iq4_nl, .iq4_xs: if m.gqa >= 4 { ty = .q5_K }
            case .q4_k_m, .q5_k_m: if moreBits(i, n) { ty = .q6_K }
            case .q4_k_s: if i < 4 { ty = .q5_K }
            default: break
            }
        } else if name.contains("ffn_down") {
            switch mix {
            case .q3_k_m: ty = i < n / 16 ? .q5_K : .q4_K
            case .q4_k_m, .q5_k_m: if moreBits(i, n) { ty = .q6_K }
            case .iq4_nl, .iq4_xs: if i < n / 8 && !imatrix { ty = .q5_K }
            case .q4_k_s: if i < n / 8 { ty = .q5_K }
            default: break
            }
        } else if name.contains("attn_output.weight"), mix == .q3_k_m {
            ty = .q4_K
        }
        return ty
    }

    /// `t` where rows of `cols` values fill its blocks; else llama.cpp's fallback type, or the
    /// export's `fallback` for a type llama.cpp gives none (legacy types, IQ4_NL).
    static func rowType(_ t: GGMLType, cols: Int, export e: ExportStage) -> GGMLType {
        if cols % t.block.count == 0 { return t }
        let f = fallback(t, cols: cols)
        return f == t ? e.ggufFallback.ggml : f
    }

    /// llama.cpp's type for rows that do not fill a k-quant or IQ4_XS block, then F16 if even that does not fit.
    static func fallback(_ t: GGMLType, cols: Int) -> GGMLType {
        guard let f = t.traits.rowFallback else { return t }
        return cols % f.block.count == 0 ? f : .f16
    }
}
