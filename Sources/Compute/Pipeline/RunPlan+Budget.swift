import Foundation

extension RunPlan {
    /// Chooses the types of every GGUF slot with a `budget` or `bpw` (`GGUFBudget`): each quantizable
    /// matrix that no override pins is measured in every type its rows allow, on its weights after
    /// the recipe's weight-only stages (a calibrated recipe's on the input weights), and the file —
    /// header, pinned and float tensors included — is fitted to the budget.
    mutating func fitBudgets(model: ModelSource, readers: [any TensorFile], threads: Int) throws {
        let budgeted = slots.indices.filter { slots[$0].kind == .gguf && slots[$0].export.budget != nil }
        guard !budgeted.isEmpty else { return }
        let start = DispatchTime.now()
        let pieces = fileOrder.flatMap { ggufPieces($0.tensor) }
        let mixModel = GGUFMix.Model(layout: ggufLayout, names: pieces.map { ggufName($0.name) })
        var free = [Set<String>](repeating: [], count: slots.count)
        for i in budgeted {
            for p in pieces
            where GGUFBudget.chooses(p, export: slots[i].export, ggufName: ggufName(p.name), model: mixModel) {
                free[i].insert(p.name)
            }
        }
        var options = [[String: [GGUFBudget.Option]]](repeating: [:], count: slots.count)
        let transform = TensorTransform(plan: self, threads: threads)
        for r in readers {
            for t in r.tensors where budgeted.contains(where: { free[$0].contains(t.name) }) {
                let (rows, cols) = Self.matrixShape(t)
                let work = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.numel)
                defer { work.deallocate() }
                try r.withData(t) { DTypeCodec.decode($0, dtype: t.dtype, into: work, threads: threads) }
                if recipe.calibration == nil { _ = try transform.run(t, work, stages: stages(for: t)[...]) }
                let extremes = GGUFBudget.extremeRows(UnsafeBufferPointer(work), cols: cols)
                for i in budgeted where free[i].contains(t.name) {
                    let importance = budgetImportance(slots[i], t)
                    let held = GGUFBudget.types(cols: cols).filter { ty in
                        GGUFBudget.represents(
                            UnsafeBufferPointer(work), rows: extremes, cols: cols, type: ty, importance: importance)
                    }
                    // No type holds it: F32 alone, exact.
                    let (types, errors): ([GGMLType], [Double]) =
                        held.isEmpty
                        ? ([.f32], [0])
                        : (
                            held,
                            GGUFBudget.errors(
                                UnsafeBufferPointer(work), rows: rows, cols: cols, importance: importance, types: held,
                                threads: threads)
                        )
                    options[i][t.name] = zip(types, errors).map { ty, e in
                        GGUFBudget.Option(
                            type: ty, bytes: GGUFBudget.padded(ty.byteCount(numel: t.numel, rowLength: cols)!), error: e
                        )
                    }
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        for i in budgeted {
            try fitBudget(slot: i, pieces: pieces, options: options[i], model: model, seconds: seconds)
        }
    }

    /// The column weights a budget measures `t`'s error with: the slot's importance matrix entry; for a
    /// matrix the file has no entry for, the median entry's mean weight on every column; none without a file.
    private func budgetImportance(_ slot: ExportSlot, _ t: TensorInfo) -> [Float]? {
        guard let m = slot.importanceFile else { return nil }
        if let e = m.entries[ggufName(t.name)], e.sums.count == (t.shape.last ?? 0) { return e.importance }
        let means = m.entries.values.map { e in e.importance.reduce(0, +) / Float(max(e.importance.count, 1)) }.sorted()
        guard !means.isEmpty else { return nil }
        return [Float](repeating: means[means.count / 2], count: t.shape.last ?? 1)
    }

    /// Sets one slot's types from the measured options; refuses a budget the types cannot reach.
    private mutating func fitBudget(
        slot i: Int, pieces: [TensorInfo], options: [String: [GGUFBudget.Option]], model: ModelSource,
        seconds: Double
    ) throws {
        let e = slots[i].export
        let metadata =
            GGUFMetadata.make(e, recipe: recipe, model: model, layout: ggufLayout)
            + GGUFMetadata.importance(slots[i], plan: self)
        let header = GGUFBudget.headerBytes(metadata: metadata, tensors: pieces, ggufName: ggufName)
        let fixed = pieces.filter { options[$0.name] == nil }.reduce(0) { sum, p in
            sum + GGUFBudget.padded(slots[i].ggufType(p).byteCount(numel: p.numel, rowLength: p.shape.last ?? 1)!)
        }
        let items = pieces.compactMap { p in options[p.name].map { GGUFBudget.Item(name: p.name, options: $0) } }
        let limit = e.budget!.bytes(parameters: pieces.reduce(0) { $0 + $1.numel })
        guard let pick = GGUFBudget.choose(items, limit: Int(clamping: limit) - header - fixed) else {
            let sizes = items.map { $0.options.map(\.bytes) }
            let range = GGUFBudget.reachable(header: header + fixed, sizes: sizes)
            let parameters = pieces.reduce(0) { $0 + $1.numel }
            throw ComputeError(
                .invalidRecipe,
                "a budget of \(limit) bytes is below the smallest GGUF these types allow "
                    + "(\(GGUFBudget.describe(range, parameters: parameters)))")
        }
        var counts = [String: Int]()
        for (item, k) in zip(items, pick) {
            slots[i].ggufTypes[item.name] = item.options[k].type
            counts[item.options[k].type.name, default: 0] += 1
        }
        let predicted = zip(items, pick).reduce(0.0) { $0 + $1.0.options[$1.1].error }
        budgets.append(
            RecipeRunner.BudgetSummary(
                file: e.ggufFileName, limitBytes: limit, predictedError: predicted, types: counts, seconds: seconds))
    }
}

extension GGUFBudget {
    /// The bytes of a GGUF header with `metadata` and these tensors (whatever their types: a type is a
    /// fixed-width field), padded to the alignment.
    static func headerBytes(metadata: [(String, GGUFValue)], tensors: [TensorInfo], ggufName: (String) -> String)
        -> Int
    {
        let plans = tensors.map {
            GGUFWriter.TensorPlan(name: ggufName($0.name), shape: $0.shape, type: .f32, byteCount: 0)
        }
        return GGUFWriter.header(metadata: metadata, tensors: plans, alignment: alignment).count
    }

    /// "reachable: A–B bytes, a–b bits per weight" for a range of file sizes of `parameters` weights.
    static func describe(_ range: ClosedRange<Int>, parameters: Int) -> String {
        func bpw(_ n: Int) -> String { String(format: "%.2f", Double(n) * 8 / Double(max(parameters, 1))) }
        return "reachable: \(range.lowerBound)–\(range.upperBound) bytes, "
            + "\(bpw(range.lowerBound))–\(bpw(range.upperBound)) bits per weight"
    }

    /// The file sizes a budget can reach: fixed bytes plus every chosen matrix at its smallest, or largest, type.
    static func reachable(header: Int, sizes: [[Int]]) -> ClosedRange<Int> {
        header + sizes.reduce(0) { $0 + $1.min()! }...header + sizes.reduce(0) { $0 + $1.max()! }
    }

    /// Refuses, at submit, a budget below the smallest file these types allow or above the F32 file's
    /// size, naming the reachable range (with `imatrix: {job: KEY}` the header leaves out the importance
    /// keys, which the run then counts).
    static func checkReachable(
        _ e: ExportStage, recipe: Recipe, tensors: [TensorInfo], types planned: [String: GGMLType],
        ggufName: (String) -> String, model: GGUFMix.Model, layout: GGUFExportLayout?, modelName: String,
        at path: String
    ) throws {
        guard let budget = e.budget else { return }
        var fixed = 0
        var f32 = 0
        var sizes = [[Int]]()
        for t in tensors {
            let cols = t.shape.last ?? 1
            f32 += padded(t.numel * 4)
            if chooses(t, export: e, ggufName: ggufName(t.name), model: model) {
                sizes.append(types(cols: cols).map { padded($0.byteCount(numel: t.numel, rowLength: cols)!) })
            } else {
                let ty = planned[t.name] ?? GGUFPlanner.type(for: t, export: e)
                fixed += padded(ty.byteCount(numel: t.numel, rowLength: cols) ?? t.numel * 4)
            }
        }
        var metadata = GGUFMetadata.make(
            e, recipe: recipe, name: modelName, architecture: layout?.architecture ?? "unknown", layout: layout,
            fileType: nil)
        if case .file(let f)? = e.importance, let m = try? ImportanceMatrix.read(path: f) {
            metadata += GGUFMetadata.importanceKeys(
                file: f, dataset: m.datasets.last, entries: m.entries.count, chunks: m.chunkCount)
        }
        let header = headerBytes(metadata: metadata, tensors: tensors, ggufName: ggufName)
        let parameters = tensors.reduce(0) { $0 + $1.numel }
        let range = reachable(header: header + fixed, sizes: sizes)
        let limit = budget.bytes(parameters: parameters)
        let key: String
        let asked: String
        switch budget {
        case .bytes: (key, asked) = ("budget", "\(limit) bytes")
        case .bitsPerWeight(let b): (key, asked) = ("bpw", "\(b) bits per weight (\(limit) bytes)")
        }
        let reach = describe(range, parameters: parameters)
        if limit < range.lowerBound {
            throw RecipeError("\(path).\(key)", "\(asked) is below the smallest GGUF these types allow (\(reach))")
        }
        if limit > header + f32 {
            throw RecipeError(
                "\(path).\(key)", "\(asked) is above the F32 file's size (\(header + f32) bytes; \(reach))")
        }
    }

    /// Whether a budget chooses `p`'s type: a float matrix llama.cpp quantizes, that no `tensor_types`,
    /// `output_type` or `embedding_type` pins and whose rows fill at least one type's blocks.
    static func chooses(_ p: TensorInfo, export e: ExportStage, ggufName name: String, model: GGUFMix.Model) -> Bool {
        guard p.dtype.isFloat16Or32, GGUFMix.quantizable(name, p), !GGUFMix.keepsFloat(name) else { return false }
        var used = Set<String>()
        guard (try? GGUFMix.override(e, name: name, input: p.name, model: model, used: &used)) == .some(nil) else {
            return false
        }
        return !types(cols: p.shape.last ?? 0).isEmpty
    }
}
