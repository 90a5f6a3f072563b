import Foundation

extension RecipeValidator {
    /// Every check of a recipe against a model's headers and files; returns the model family that
    /// calibrated stages and evaluation use (nil when the recipe needs none). A decoder model
    /// (GGUF, or config.json naming a `…ForCausalLM`) has its config, tokenizer and tensors checked
    /// whatever the recipe. Run once per job.
    public static func validateAll(_ recipe: Recipe, model: ModelSource, tensors: [TensorInfo]) throws -> ModelFamily? {
        try validate(recipe, tensors: tensors)
        try checkCompressedTensorsExport(recipe, model: model, tensors: tensors)
        let stage = recipe.stages.enumerated().lazy.compactMap { i, st -> String? in
            switch st {
            case .calibrate: return "stages[\(i)].calibrate"
            case .evaluate: return "stages[\(i)].evaluate"
            default: return nil
            }
        }.first
        if case .unsupported(let arch) = DecoderModelFiles.kind(model), stage != nil || recipe.exports(.gguf) {
            throw RecipeError(
                stage ?? "export",
                "\(model.path): config.json architectures \(arch) is not supported "
                    + "(\(LlamaConfig.architectures.joined(separator: ", "))); weights-only recipes that export "
                    + "safetensors still run on it"
            )
        }
        try checkAWQ(recipe, model: model)
        try checkSlice(recipe, model: model)
        if let s = recipe.structuralPrune, !DecoderModelFiles.isDecoder(model) {
            throw RecipeError(
                "stages[\(s.index)].prune.method",
                "flap removes FFN channels of Llama-family decoder blocks; \(model.path) is not such a decoder")
        }
        if DecoderModelFiles.isDecoder(model) {
            let files: DecoderModelFiles
            let linear: Set<String>
            do {
                files = try DecoderModelFiles(model: model)
                linear = try files.checkTensors(tensors, format: model.format)
            } catch let e as ComputeError {
                throw RecipeError(stage ?? "model", "\(e)")
            }
            try checkShortcuts(recipe, config: files.config, model: model.path)
            try checkStructural(recipe, config: files.config)
            try checkEvaluationReference(recipe, config: files.config)
            try checkGGUFExport(recipe, files: files, tensors: tensors, modelName: model.name)
            if stage != nil {
                try checkCalibrated(recipe, tensors: tensors, linearWeights: linear, what: "decoder")
                try checkContext(recipe, config: files.config, format: model.format)
                try checkDatasets(recipe, tokenizer: files.tokenizer)
            }
            return DecoderFamily(files: files)
        }
        // A BERT directory's GGUF export takes llama.cpp's `bert` layout, so the family comes along
        // (not with low-rank factors, which llama.cpp's graph has no place for: generic names then).
        let factors = recipe.stages.contains { if case .lowrank(let l) = $0 { l.output == .factors } else { false } }
        let ggufBert =
            recipe.exports(.gguf) && !factors
            ? try? BertModelFiles(model: model, tensorNames: tensors.map(\.name)) : nil
        if let bert = ggufBert {
            try checkBertGGUFExport(recipe, layout: bert.ggufLayout(), tensors: tensors, modelName: model.name)
        } else {
            try GGUFMix.check(recipe, tensors: tensors, layout: nil, modelName: model.name)
        }
        guard let stage else { return ggufBert.map { BertFamily(files: $0) } }
        let bert: BertModelFiles
        do { bert = try ggufBert ?? BertModelFiles(model: model, tensorNames: tensors.map(\.name)) } catch let e
            as ComputeError
        {
            throw RecipeError(
                stage,
                "needs a BERT model directory or a decoder (config.json with architectures …ForCausalLM, or a GGUF): "
                    + "\(e)"
            )
        }
        if let ev = recipe.evaluation, ev.reference != nil || ev.saveReference {
            throw RecipeError(
                stage, "reference and save_reference share a decoder's next-token logits; a BERT evaluation has none")
        }
        let linearWeights = try checkImpliedTensors(bert.config, tensors, at: stage)
        if recipe.evaluation != nil && !recipe.exports(.safetensors) {
            throw RecipeError(
                stage, "evaluate measures a BERT model's safetensors export: add `- export: {format: safetensors}`")
        }
        try checkCalibrated(recipe, tensors: tensors, linearWeights: linearWeights, what: "encoder")
        try checkDatasets(recipe, tokenizer: bert.tokenizer)
        return BertFamily(files: bert)
    }

    /// A structural stage comes before every stage that changes weights (it changes their shapes),
    /// once, and its ratio leaves every block at least `multiple` FFN channels (and a head per KV group).
    private static func checkStructural(_ recipe: Recipe, config c: LlamaConfig) throws {
        guard let (at, m) = recipe.structuralPrune else { return }
        let path = "stages[\(at)].prune"
        for (j, st) in recipe.stages.enumerated() where j < at {
            switch st {
            case .prune, .quantize, .lowrank, .distill:
                throw RecipeError(path, "flap must come before stages[\(j)]: it changes the shapes of the tensors")
            default: continue
            }
        }
        for (j, st) in recipe.stages.enumerated() where j > at {
            if case .prune(let p) = st, p.method.isStructural {
                throw RecipeError("stages[\(j)].prune", "a recipe has one flap stage")
            }
        }
        let remove = StructuredModelPass.channelsToRemove(ratio: m.ratio, config: c)
        for i in 0..<c.layers where c.intermediate(i) < m.multiple {
            throw RecipeError(
                "\(path).multiple",
                "\(m.multiple) is more than layer \(i)'s \(c.intermediate(i)) FFN channels")
        }
        let total = (0..<c.layers).reduce(0) { $0 + c.intermediate($1) }
        let spare = (0..<c.layers).reduce(0) { $0 + c.intermediate($1) - m.multiple }
        if m.heads != .none {
            for i in 0..<c.layers {
                let cut = FlapSelection.uniformShare(ratio: m.ratio, config: c, layer: i, heads: m.heads)
                let s = c.shape(i)
                if m.heads == .query && s.heads == s.kvHeads {
                    throw RecipeError(
                        "\(path).heads",
                        "query needs grouped-query attention: layer \(i) has one query head per KV head "
                            + "(heads: group removes whole heads)")
                }
                if cut.units > cut.maxUnits {
                    let unit = m.heads == .query ? "query heads of a KV group" : "KV groups"
                    throw RecipeError(
                        "\(path).ratio",
                        "\(RecipeParser.fmt(m.ratio)) would remove every head of layer \(i) (heads: "
                            + "\(m.heads.rawValue): its \(cut.maxUnits + 1) \(unit) can give \(cut.maxUnits))")
                }
                if Double(s.intermediate - cut.channels) < Double(m.multiple) / 2 {
                    throw RecipeError(
                        "\(path).ratio", "\(RecipeParser.fmt(m.ratio)) would leave layer \(i) no FFN channel")
                }
            }
        } else if m.structure == .uniform {
            let fraction = Double(remove) / Double(total)
            for i in 0..<c.layers where Double(c.intermediate(i)) * (1 - fraction) < Double(m.multiple) / 2 {
                throw RecipeError(
                    "\(path).ratio",
                    "\(RecipeParser.fmt(m.ratio)) would leave layer \(i) no FFN channel "
                        + "(flap removes FFN channels only)")
            }
        } else if remove > spare {
            throw RecipeError(
                "\(path).ratio",
                "\(RecipeParser.fmt(m.ratio)) of the blocks' parameters is \(remove) FFN channels, more than "
                    + "the \(spare) the blocks can give while each keeps \(m.multiple) (flap removes FFN channels only)"
            )
        }
    }

    /// Windows no longer than the model's context: RoPE and the attention are defined only there.
    private static func checkContext(_ recipe: Recipe, config: LlamaConfig, format: ModelSource.Format) throws {
        let key = format == .gguf ? "llama.context_length" : "max_position_embeddings"
        for (i, st) in recipe.stages.enumerated() {
            let (name, seqLen): (String, Int)
            switch st {
            case .calibrate(let c): (name, seqLen) = ("calibrate", c.seqLen)
            case .evaluate(let e): (name, seqLen) = ("evaluate", e.seqLen)
            default: continue
            }
            guard seqLen <= config.contextLength else {
                throw RecipeError(
                    "stages[\(i)].\(name).seq_len",
                    "\(seqLen) tokens is longer than the model's context (\(key) \(config.contextLength))")
            }
        }
    }

    /// A decoder's GGUF export holds the model's own tensors under llama.cpp's names, with a
    /// tokenizer llama.cpp can reproduce.
    private static func checkGGUFExport(
        _ recipe: Recipe, files: DecoderModelFiles, tensors: [TensorInfo], modelName: String
    ) throws {
        guard let i = recipe.stageIndex(exporting: .gguf) else { return }
        let layout: GGUFExportLayout
        do { layout = try files.ggufLayout() } catch let e as ComputeError {
            throw RecipeError("stages[\(i)].export", "\(e)")
        }
        for (j, st) in recipe.stages.enumerated() {
            if case .lowrank(let l) = st, l.output == .factors {
                throw RecipeError(
                    "stages[\(j)].lowrank.output",
                    "factors have no place in a llama GGUF (use output: dense, or export safetensors)")
            }
        }
        for t in tensors where LlamaNames.gguf(t.name) == nil {
            throw RecipeError(
                "stages[\(i)].export", "tensor \(t.name) has no llama.cpp name, so llama.cpp could not load the GGUF")
        }
        try GGUFMix.check(recipe, tensors: tensors, layout: layout, modelName: modelName)
    }

    /// A BERT GGUF holds every tensor llama.cpp's converter keeps, each under its llama.cpp name.
    private static func checkBertGGUFExport(
        _ recipe: Recipe, layout: GGUFExportLayout, tensors: [TensorInfo], modelName: String
    ) throws {
        guard let i = recipe.stageIndex(exporting: .gguf) else { return }
        let kept = tensors.filter { !layout.dropped($0.name) }
        for t in kept where layout.name(t.name) == nil {
            throw RecipeError(
                "stages[\(i)].export",
                "tensor \(t.name) has no llama.cpp BERT name, so llama.cpp could not load the GGUF")
        }
        try GGUFMix.check(recipe, tensors: kept, layout: layout, modelName: modelName)
    }

    /// `wanda`, `sparsegpt`, `gptq` and `distill` targets must be linear layers' weights: they need
    /// the layer's calibration inputs.
    private static func checkCalibrated(
        _ recipe: Recipe, tensors: [TensorInfo], linearWeights: Set<String>, what: String
    ) throws {
        for (j, st) in recipe.stages.enumerated() {
            var sel: TensorSelector?
            var path = ""
            if case .prune(let p) = st, p.method.isCalibrated, !p.method.isStructural {
                sel = p.selector
                path = "stages[\(j)].prune.targets"
            }
            if case .distill(let d) = st {
                sel = d.selector
                path = "stages[\(j)].distill.targets"
            }
            if case .decompose(let d) = st {
                sel = d.selector
                path = "stages[\(j)].decompose.targets"
            }
            if case .quantize(let q) = st, q.usesHessian {
                sel = q.selector
                path = "stages[\(j)].quantize.targets"
            }
            if case .lowrank(let l) = st, l.isCalibrated {
                sel = l.selector
                path = "stages[\(j)].lowrank.targets"
            }
            guard let sel else { continue }
            for t in tensors where sel.matches(t.name) && !linearWeights.contains(t.name) {
                throw RecipeError(
                    path,
                    "matches \(t.name), which is not a linear layer's weight of the \(what) (wanda, sparsegpt, gptq, "
                        + "vptq, decompose, svd-llm, asvd and distill need its calibration inputs; add it to ignore)"
                )
            }
        }
    }

    /// Every tensor the BERT config implies exists as floats of the implied size; returns the
    /// names of the encoder's linear weights.
    private static func checkImpliedTensors(_ c: BertConfig, _ tensors: [TensorInfo], at path: String) throws -> Set<
        String
    > {
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var implied = [(String, Int)]()
        implied += [
            (c.embedding("word_embeddings.weight"), c.vocabSize * c.hidden),
            (c.embedding("position_embeddings.weight"), c.maxPositions * c.hidden),
            (c.embedding("token_type_embeddings.weight"), c.typeVocabSize * c.hidden),
            (c.embedding("LayerNorm.weight"), c.hidden), (c.embedding("LayerNorm.bias"), c.hidden)
        ]
        var linearWeights = Set<String>()
        for l in 0..<c.layers {
            for (base, out, inDim) in c.linears(l) {
                implied += [(base + ".weight", out * inDim), (base + ".bias", out)]
                linearWeights.insert(base + ".weight")
            }
            for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                implied += [(c.layer(l, ln + ".weight"), c.hidden), (c.layer(l, ln + ".bias"), c.hidden)]
            }
        }
        for (n, count) in implied {
            guard let t = byName[n] else {
                throw RecipeError(path, "the model has no tensor \(n), which its config.json implies")
            }
            guard t.numel == count, t.dtype.isFloat16Or32 else {
                throw RecipeError(
                    path, "tensor \(n) is \(t.dtype.rawValue) \(t.shape), the config implies \(count) float values")
            }
        }
        return linearWeights
    }

    /// Each calibrate/evaluate dataset is a readable file whose windows can be cut now (tokenizing
    /// each dataset once per process), so a dataset that is not text or too short is refused at
    /// submit rather than failing on a worker.
    private static func checkDatasets(_ recipe: Recipe, tokenizer: some TextTokenizer) throws {
        let calibrateDataset = recipe.calibration?.dataset
        for (j, st) in recipe.stages.enumerated() {
            let file: String?, path: String, samples: Int, seqLen: Int, part: CalibrationText.Part
            switch st {
            case .calibrate(let cal):
                (file, path, samples, seqLen, part) = (
                    cal.dataset, "stages[\(j)].calibrate.dataset", cal.samples, cal.seqLen, .calibration
                )
            case .evaluate(let ev):
                (file, path, samples, seqLen, part) = (
                    ev.dataset ?? calibrateDataset, "stages[\(j)].evaluate", ev.samples, ev.seqLen, .evaluation
                )
            default: continue
            }
            guard let file else { continue }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDir), !isDir.boolValue,
                FileManager.default.isReadableFile(atPath: file)
            else {
                throw RecipeError(path, "\(file) is not a readable file")
            }
            do {
                _ = try CalibrationText.batches(
                    file: file, tokenizer: tokenizer, samples: samples, seqLen: seqLen, part: part)
            } catch let e as ComputeError {
                throw RecipeError(path, "\(e)")
            }
        }
    }

    /// An evaluation reference: not with a structural prune (its original is not the model the
    /// later stages see), and a reference file must describe this evaluation's windows and vocabulary.
    static func checkEvaluationReference(_ recipe: Recipe, config: LlamaConfig) throws {
        for (i, st) in recipe.stages.enumerated() {
            guard case .evaluate(let ev) = st, ev.reference != nil || ev.saveReference else { continue }
            let at = "stages[\(i)].evaluate"
            if recipe.structuralPrune != nil {
                throw RecipeError(at, "reference and save_reference do not combine with a structural prune (flap)")
            }
            if recipe.awq != nil {
                throw RecipeError(at, "reference and save_reference do not combine with awq (it stages a scaled copy)")
            }
            if recipe.slice != nil {
                throw RecipeError(
                    at, "reference and save_reference do not combine with slice (it stages a sliced copy)")
            }
            guard case .file(let path)? = ev.reference else { continue }
            let h: EvaluationReference.Header
            do { h = try EvaluationReference.header(path: path) } catch let e as ComputeError {
                throw RecipeError(at + ".reference", "\(e)")
            }
            guard h.samples == ev.samples, h.seqLen == ev.seqLen, h.vocab == config.vocabSize else {
                throw RecipeError(
                    at + ".reference",
                    "\(path) holds \(h.samples) × \(h.seqLen) windows over \(h.vocab) tokens; this evaluation is "
                        + "\(ev.samples) × \(ev.seqLen) over the model's \(config.vocabSize)")
            }
        }
    }
}
