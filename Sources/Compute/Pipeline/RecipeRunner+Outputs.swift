import Foundation

/// `model.safetensors.index.json`: the total size and each tensor's shard.
struct ShardIndexJSON: Encodable {
    var metadata: [String: Int]
    var weight_map: [String: String]
}

extension RecipeRunner {
    /// The output shards' index: the input's tensor → shard map, and the dense outputs' total size.
    func writeIndex(from index: String, to dir: String, plan: RunPlan) throws -> OutputRecord {
        var index = ShardIndexJSON(metadata: ["total_size": 0], weight_map: [:])
        for u in plan.fileOrder {
            for p in plan.outputTensors(u.tensor) {
                index.weight_map[p.name] = model.shards[u.shard].name
                index.metadata["total_size", default: 0] += p.numel * plan.denseDType(u.tensor).size
            }
        }
        let data = try JSONEncoder.canonical.encode(index) + Data("\n".utf8)
        let sha = try FileOps.writeFile(dir + "/" + ModelSource.indexName, data)
        return OutputRecord(
            path: ModelSource.indexName, bytes: Int64(data.count), sha256: sha, format: "safetensors-index")
    }

    /// The files beside the input's weights (config.json, tokenizer files) by name, read once.
    func readExtraFiles() throws -> [(name: String, data: Data)] {
        try model.extraFiles.map { extra in
            (
                (extra as NSString).lastPathComponent,
                Data(try InputFile.contents(of: extra, what: "model file", limit: InputFile.modelFileLimit))
            )
        }
    }

    /// Copies the files beside the weights into the output; a GGUF decoder exported as safetensors
    /// gets a config.json and tokenizer.json made from its keys.
    func copyExtraFiles(_ extras: [(name: String, data: Data)], to dir: String, plan: RunPlan) throws
        -> [OutputRecord]
    {
        var files = extras
        if model.format == .gguf, plan.writtenDense != nil, let d = family as? DecoderFamily {
            files += try d.files.huggingFaceFiles()
        }
        return try Self.writeModelFiles(files, to: dir)
    }

    /// The compressed-tensors export's other files: the input's config.json with
    /// `quantization_config`, and its tokenizer and generation files.
    func writeCompressedTensorsFiles(_ extras: [(name: String, data: Data)], to dir: String, plan: RunPlan) throws
        -> [OutputRecord]
    {
        guard plan.slots.contains(where: { $0.kind == .compressedTensors }) else { return [] }
        let tensors = plan.fileOrder.flatMap { plan.outputTensors($0.tensor) }
        let quantization = CompressedTensorsLayout.quantizationConfig(
            tensors, linears: CompressedTensorsLayout.linearWeights(tensors), stage: plan.lastQuantize)
        let configPath = model.extraFiles.first { $0.hasSuffix("/config.json") } ?? "config.json"
        let files = try extras.map { name, data in
            (
                CompressedTensorsLayout.directory + "/" + name,
                name == "config.json"
                    ? try CompressedTensorsLayout.config(from: data, quantization: quantization, file: configPath)
                    : data
            )
        }
        return try Self.writeModelFiles(files, to: dir)
    }

    /// Writes model files (paths relative to `dir`) and records them.
    static func writeModelFiles(_ files: [(name: String, data: Data)], to dir: String) throws -> [OutputRecord] {
        try files.map { name, data in
            let sha = try FileOps.writeFile(dir + "/" + name, data)
            return OutputRecord(path: name, bytes: Int64(data.count), sha256: sha, format: "model-file")
        }
    }

    /// The importance matrix an `imatrix: true` export collected, as llama.cpp's GGUF imatrix file
    /// and its legacy `.dat` (both usable with `llama-quantize --imatrix`).
    func writeImportance(_ entries: [String: ImportanceMatrix.Entry], to dir: String, plan: RunPlan) throws
        -> [OutputRecord]
    {
        guard plan.importanceFromCalibration, let cal = recipe.calibration else { return [] }
        let m = ImportanceMatrix(
            entries: entries, datasets: [cal.dataset], chunkCount: cal.samples, chunkSize: cal.seqLen)
        let g = try m.writeGGUF(to: dir + "/" + ImportanceMatrix.ggufName)
        let dat = m.legacyData()
        let sha = try FileOps.writeFile(dir + "/" + ImportanceMatrix.legacyName, dat)
        return [
            OutputRecord(path: ImportanceMatrix.ggufName, bytes: g.bytes, sha256: g.sha256, format: "imatrix"),
            OutputRecord(path: ImportanceMatrix.legacyName, bytes: Int64(dat.count), sha256: sha, format: "imatrix-dat")
        ]
    }

    /// Measures an output just written against the input, with the model's family: a decoder's
    /// last GGUF export when there is one (the file llama.cpp would run), else the dense export,
    /// else the compressed-tensors export, else the compressed export.
    /// A decoder's `reference` is read, or with `save_reference` written into `outputDir` and
    /// returned; `modelSHA256` is the input's checksum a reference carries.
    func evaluate(
        _ ev: EvaluateStage, family: ModelFamily, readers: [any TensorFile], outputDir: String,
        outputs: [OutputRecord], plan: RunPlan, modelSHA256: String
    ) throws -> (evaluation: Evaluation, written: OutputRecord?) {
        guard let dataset = ev.dataset ?? recipe.calibration?.dataset else {
            throw ComputeError(.invalidRecipe, "evaluate has no dataset")
        }
        let out: [any TensorFile]
        let files: [String]
        if plan.ggufLayout != nil, let g = plan.slots.last(where: { $0.kind == .gguf }) {
            files = [g.export.ggufFileName]
            out = [try GGUFTensorFile(path: outputDir + "/" + g.export.ggufFileName)]
        } else if model.shards.allSatisfy({ s in outputs.contains { $0.path == s.name } }) {
            files = model.shards.map(\.name)
            out = try files.map { try SafeTensorsReader(path: outputDir + "/" + $0) as any TensorFile }
        } else if outputs.contains(where: { $0.path == CompressedTensorsLayout.filePath }),
            let ct = try CompressedTensorsFile.Config.read(
                configFile: outputDir + "/" + CompressedTensorsLayout.directory + "/config.json")
        {
            // The compressed-tensors directory, read back as transformers would load it.
            files = [CompressedTensorsLayout.filePath]
            out = [try CompressedTensorsFile(path: outputDir + "/" + CompressedTensorsLayout.filePath, config: ct)]
        } else if let c = outputs.first(where: { CompressedLayout.fileNames.contains($0.path) }) {
            // The compressed export, decoded as `squeeze run --model` reads it (a stack: whole).
            files = [c.path]
            out = [try CompressedFile(reader: SafeTensorsReader(path: outputDir + "/" + c.path))]
        } else {
            throw ComputeError(.invalidRecipe, "evaluate needs the dense safetensors or a compressed export")
        }
        let original = ModelWeights(readers: readers), compressed = ModelWeights(readers: out)
        var e: Evaluation
        var written: OutputRecord?
        if let decoder = family as? DecoderFamily, ev.reference != nil || ev.saveReference {
            var read: String?
            if case .file(let f)? = ev.reference { read = f }
            let write = ev.saveReference ? outputDir + "/" + EvaluationReference.fileName : nil
            (e, written) = try decoder.evaluate(
                ev, dataset: dataset, original: original, compressed: compressed, threads: threads,
                reference: .init(read: read, write: write, modelSHA256: modelSHA256))
        } else {
            e = try family.evaluate(ev, dataset: dataset, original: original, compressed: compressed, threads: threads)
        }
        e.modelBytes = outputs.filter { files.contains($0.path) }.reduce(0) { $0 + $1.bytes }
        // A BitStack stack evaluated through its dense export: the model a user loads is the stack at its size.
        if files == model.shards.map(\.name),
            let load = readers.lazy.compactMap({ ($0 as? CompressedFile)?.stackLoad }).first
        {
            e.modelBytes = Int64(load.bytes)
        }
        return (e, written)
    }
}

func ms(since t0: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6 }
