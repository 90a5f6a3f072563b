import Foundation

/// The open output files of a run, one writer per export slot (the dense slot: one per input
/// shard), each with its header written from the plan before any data.
final class OutputWriters {
    let plan: RunPlan
    let model: ModelSource
    let outputDir: String
    /// Per slot: the dense slot's writer for each shard, or the slot's one writer.
    private let dense: [SafeTensorsWriter]
    private let gguf: [Int: GGUFWriter]
    private let compressed: SafeTensorsWriter?
    /// The compressed export's file name (a BitStack model's: the stack's).
    private let compressedName: String
    private let compressedTensors: SafeTensorsWriter?

    init(plan: RunPlan, model: ModelSource, readers: [any TensorFile], outputDir: String) throws {
        self.plan = plan
        self.model = model
        self.outputDir = outputDir
        let order = plan.units.map(\.tensor)
        dense =
            try plan.writtenDense == nil
            ? []
            : readers.indices.map { s in
                let tensors = plan.units.filter { $0.shard == s }.flatMap { u in
                    plan.outputTensors(u.tensor).map {
                        (name: $0.name, dtype: plan.denseDType(u.tensor), shape: $0.shape)
                    }
                }
                return try SafeTensorsWriter(
                    path: outputDir + "/" + model.shards[s].name, tensors: tensors, metadata: readers[s].metadata)
            }
        var g = [Int: GGUFWriter]()
        let pieces = order.flatMap(plan.ggufPieces)
        for (i, slot) in plan.slots.enumerated() where slot.kind == .gguf {
            let e = slot.export
            g[i] = try GGUFWriter(
                path: outputDir + "/" + e.ggufFileName,
                metadata: GGUFMetadata.make(
                    e, recipe: plan.recipe, model: model, layout: plan.ggufLayout,
                    fileType: e.budget == nil ? nil : GGUFBudget.fileType(slot, pieces: pieces))
                    + GGUFMetadata.importance(slot, plan: plan),
                tensors: pieces.map { t in
                    let ty = slot.ggufType(t)
                    return GGUFWriter.TensorPlan(
                        name: plan.ggufName(t.name), shape: t.shape, type: ty,
                        byteCount: ty.byteCount(numel: t.numel, rowLength: t.shape.last ?? 1)!)
                })
        }
        gguf = g
        let outputs = order.flatMap { plan.outputTensors($0) }
        compressedName = CompressedLayout.exportName(outputs) { plan.lastQuantize(for: $0) }
        compressed =
            try plan.slots.contains { $0.kind == .compressed }
            ? SafeTensorsWriter(
                path: outputDir + "/" + compressedName,
                tensors: order.flatMap { t in
                    plan.outputTensors(t).flatMap { CompressedLayout.plan($0, stage: plan.lastQuantize(for: $0)) }
                },
                metadata: CompressedLayout.metadata(order, recipe: plan.recipe, base: readers.first?.metadata ?? [:]))
            : nil
        compressedTensors =
            try plan.slots.contains { $0.kind == .compressedTensors }
            ? Self.compressedTensorsWriter(
                plan: plan, order: order, base: readers.first?.metadata, outputDir: outputDir)
            : nil
    }

    /// The compressed-tensors export's weights file (its directory made first); `format: pt` as
    /// transformers requires of a safetensors file.
    private static func compressedTensorsWriter(
        plan: RunPlan, order: [TensorInfo], base: [String: String]?, outputDir: String
    ) throws -> SafeTensorsWriter {
        try FileOps.makeDirectory(outputDir + "/" + CompressedTensorsLayout.directory)
        var metadata = base ?? [:]
        metadata["format"] = "pt"
        return try SafeTensorsWriter(
            path: outputDir + "/" + CompressedTensorsLayout.filePath,
            tensors: order.flatMap { t in
                plan.outputTensors(t).flatMap { CompressedTensorsLayout.plan($0, stage: plan.lastQuantize(for: $0)) }
            },
            metadata: metadata)
    }

    /// Writes slot `slot`'s bytes for unit `u`: its output pieces back to back.
    func write(slot: Int, unit u: RunPlan.Unit, bytes: UnsafeRawBufferPointer) throws {
        let s = plan.slots[slot]
        var off = 0
        for p in plan.outputTensors(u.tensor) {
            let n = s.bytes(p, of: u.tensor, plan: plan)
            let part = UnsafeRawBufferPointer(rebasing: bytes[off..<(off + n)])
            switch s.kind {
            case .dense: if s.written { try dense[u.shard].write(name: p.name, bytes: part) }
            case .gguf:
                if plan.ggufDropped(p.name) { break }
                if let heads = plan.ggufLayout?.permutedHeads(p.name), p.shape[0] % (2 * heads) == 0 {
                    let permuted = UnsafeMutableRawBufferPointer.allocate(byteCount: part.count, alignment: 64)
                    defer { permuted.deallocate() }
                    LlamaNames.permuteRows(part, into: permuted, rows: p.shape[0], heads: heads, toGGUF: true)
                    try gguf[slot]!.write(name: plan.ggufName(p.name), bytes: UnsafeRawBufferPointer(permuted))
                } else {
                    try gguf[slot]!.write(name: plan.ggufName(p.name), bytes: part)
                }
            case .compressed:
                try compressed!.write(entries: CompressedLayout.plan(p, stage: plan.lastQuantize(for: p)), bytes: part)
            case .compressedTensors:
                try compressedTensors!.write(
                    entries: CompressedTensorsLayout.plan(p, stage: plan.lastQuantize(for: p)), bytes: part)
            }
            off += n
        }
    }

    /// Closes every file; records in output order: dense shards, GGUF exports, compressed (a stack:
    /// with its size table), compressed-tensors.
    func finish() throws -> [OutputRecord] {
        var out = [OutputRecord]()
        for (s, w) in dense.enumerated() {
            let (bytes, sha) = try w.finish()
            out.append(OutputRecord(path: model.shards[s].name, bytes: bytes, sha256: sha, format: "safetensors"))
        }
        for (i, slot) in plan.slots.enumerated() where slot.kind == .gguf {
            let (bytes, sha) = try gguf[i]!.finish()
            out.append(OutputRecord(path: slot.export.ggufFileName, bytes: bytes, sha256: sha, format: "gguf"))
        }
        if let w = compressed {
            let (bytes, sha) = try w.finish()
            out.append(OutputRecord(path: compressedName, bytes: bytes, sha256: sha, format: "compressed-safetensors"))
            if compressedName == CompressedLayout.stackFileName {
                out.append(try StackSizeTable.write(stack: outputDir + "/" + compressedName, in: outputDir))
            }
        }
        if let w = compressedTensors {
            let (bytes, sha) = try w.finish()
            out.append(
                OutputRecord(
                    path: CompressedTensorsLayout.filePath, bytes: bytes, sha256: sha, format: "compressed-tensors"))
        }
        return out
    }
}

/// The metadata of a GGUF export.
enum GGUFMetadata {
    /// llama-quantize's `quantize.imatrix.*` keys for an export weighted by an importance matrix:
    /// the file, its (last) dataset, the entries it holds and the calibration windows.
    static func importance(_ slot: ExportSlot, plan: RunPlan) -> [(String, GGUFValue)] {
        let file: String, dataset: String?, entries: Int, chunks: Int
        switch slot.export.importance {
        case .calibration?:
            guard let cal = plan.recipe.calibration else { return [] }
            (file, dataset, chunks) = (ImportanceMatrix.ggufName, cal.dataset, cal.samples)
            entries = plan.fileOrder.filter { plan.linearWeights.contains($0.tensor.name) }.count
        case .file(let f)?:
            guard let m = slot.importanceFile else { return [] }
            (file, dataset, entries, chunks) = (f, m.datasets.last, m.entries.count, m.chunkCount)
        case .job?, nil: return []
        }
        return importanceKeys(file: file, dataset: dataset, entries: entries, chunks: chunks)
    }

    /// The `quantize.imatrix.*` keys themselves.
    static func importanceKeys(file: String, dataset: String?, entries: Int, chunks: Int) -> [(String, GGUFValue)] {
        var kv: [(String, GGUFValue)] = [("quantize.imatrix.file", .string(file))]
        if let dataset { kv.append(("quantize.imatrix.dataset", .string(dataset))) }
        kv.append(("quantize.imatrix.entries_count", .int32(Int32(clamping: entries))))
        if chunks > 0 { kv.append(("quantize.imatrix.chunks_count", .int32(Int32(clamping: chunks)))) }
        return kv
    }

    /// The general.* and squeeze.* keys, then the layout's (`fileType`: instead of the export type's).
    static func make(
        _ e: ExportStage, recipe: Recipe, model: ModelSource, layout: GGUFExportLayout?, fileType: UInt32? = nil
    ) -> [(String, GGUFValue)] {
        var arch = layout?.architecture ?? "unknown"
        if let cfg = model.extraFiles.first(where: { $0.hasSuffix("/config.json") }),
            let data = try? Data(InputFile.contents(of: cfg, what: "config.json", limit: InputFile.configLimit)),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let mt = obj["model_type"] as? String, layout == nil
        {
            arch = mt
        }
        return make(
            e, recipe: recipe, name: model.name, architecture: arch, layout: layout, fileType: fileType)
    }

    /// The same keys for a model named `name` of `architecture`.
    static func make(
        _ e: ExportStage, recipe: Recipe, name: String, architecture arch: String, layout: GGUFExportLayout?,
        fileType: UInt32?
    ) -> [(String, GGUFValue)] {
        let fileType = fileType ?? e.ggufType.fileType
        return [
            ("general.architecture", .string(arch)),
            ("general.name", .string(name)),
            ("general.alignment", .uint32(32)),
            ("general.file_type", .uint32(fileType)),
            ("general.quantization_version", .uint32(2)),
            ("squeeze.version", .string(Manifest.toolVersion)),
            ("squeeze.recipe", .string(recipe.canonicalJSON))
        ] + (layout?.metadata ?? [])
    }
}
