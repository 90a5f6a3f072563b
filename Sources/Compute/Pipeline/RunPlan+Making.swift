import Foundation

extension RunPlan {
    /// Plans a run of `recipe` over the opened shards: unit order (forward order when the recipe
    /// calibrates, from `family`), global pruning thresholds, then low-rank factor ranks.
    static func make(recipe: Recipe, readers: [any TensorFile], family: ModelFamily?, threads: Int, modelPath: String)
        throws -> RunPlan
    {
        if let key = recipe.dependencyJobs.first {
            throw ComputeError(
                .invalidRecipe,
                "{job: \(key)} reads a file another job publishes: submit this recipe to the queue (the job then "
                    + "waits for that one), or give the file's path")
        }
        var fileOrder = [Unit]()
        var seen = Set<String>()
        for (s, r) in readers.enumerated() {
            for t in r.tensors {
                guard seen.insert(t.name).inserted else {
                    throw ComputeError(
                        .corruptHeader, "tensor appears in more than one shard", file: r.path, tensor: t.name)
                }
                fileOrder.append(Unit(shard: s, tensor: t))
            }
        }
        var units = fileOrder
        if recipe.calibration != nil {
            guard let family else {
                throw ComputeError(
                    .invalidRecipe, "calibrate needs a model family (a BERT model directory)", file: modelPath)
            }
            units = try forwardOrder(fileOrder, names: try family.forwardOrder(), modelPath: modelPath)
        }
        var plan = RunPlan(
            recipe: recipe, fileOrder: fileOrder, units: units, slots: ExportSlot.slots(recipe), globalCounts: [:],
            factorRanks: [:])
        if plan.hasGGUF {
            plan.ggufLayout = try family?.ggufLayout()
            plan.linearWeights = family?.linearWeights() ?? []
            try plan.planGGUFTypes()
            for i in plan.slots.indices {
                guard case .file(let f)? = plan.slots[i].export.importance else { continue }
                let m = try ImportanceMatrix.read(path: f)
                do {
                    try GGUFMix.checkImportance(
                        m, path: f, tensors: fileOrder.map(\.tensor), ggufName: plan.ggufName, at: "export.imatrix")
                } catch let e as RecipeError {
                    throw ComputeError(.invalidRecipe, "\(e) (the file changed since submit?)", file: f)
                }
                plan.slots[i].importanceFile = m
            }
        }
        // Ranks by energy run the stages before the factorization, global pruning included.
        plan.globalCounts = try plan.globalPruneCounts(readers: readers, threads: threads)
        plan.factorRanks = try plan.planFactorRanks(readers: readers, threads: threads)
        return plan
    }

    /// Each GGUF slot's per-tensor types (llama.cpp's rules for mixes).
    private mutating func planGGUFTypes() throws {
        let pieces = fileOrder.flatMap { ggufPieces($0.tensor) }
        let model = GGUFMix.Model(layout: ggufLayout, names: pieces.map { ggufName($0.name) })
        for i in slots.indices where slots[i].kind == .gguf {
            slots[i].ggufTypes = try GGUFMix.types(slots[i].export, tensors: pieces, ggufName: ggufName, model: model)
        }
    }

    /// Units in `names` order, then every tensor the forward pass does not use (position ids,
    /// pooler, ...) in file order.
    private static func forwardOrder(_ all: [Unit], names: [String], modelPath: String) throws -> [Unit] {
        let byName = Dictionary(all.map { ($0.tensor.name, $0) }, uniquingKeysWith: { a, _ in a })
        let order = try names.map { n in
            guard let u = byName[n] else {
                throw ComputeError(.notFound, "the model has no tensor \(n), which its config implies", file: modelPath)
            }
            return u
        }
        let used = Set(names)
        return order + all.filter { !used.contains($0.tensor.name) }
    }

    /// Per-tensor prune counts of a leading `scope: global` magnitude stage (empty when there is none).
    private func globalPruneCounts(readers: [any TensorFile], threads: Int) throws -> [String: GlobalMagnitude.Plan] {
        guard case .prune(let p)? = recipe.stages.first, let magnitude = p.method as? MagnitudePrune,
            case .global(let minKeep) = magnitude.scope
        else { return [:] }
        let sparsity = magnitude.sparsity
        var names = [String]()
        var sources = [GlobalMagnitude.Source]()
        // Sources decode ranges from worker threads, which cannot throw: the first read error is
        // kept and thrown once planning returns.
        let failure = FirstError()
        for r in readers {
            for t in r.tensors where p.selector.matches(t.name) && t.dtype.isFloat16Or32 {
                names.append(t.name)
                sources.append(
                    GlobalMagnitude.Source(numel: t.numel) { range, dst in
                        do {
                            try r.withData(t, elements: range) {
                                DTypeCodec.decode($0, dtype: t.dtype, into: dst, threads: 1)
                            }
                        } catch {
                            failure.keep(error)
                            dst.initialize(repeating: 0)
                        }
                    })
            }
        }
        let counts = GlobalMagnitude.plans(sources, sparsity: sparsity, minKeep: minKeep, threads: threads)
        try failure.rethrow()
        return Dictionary(uniqueKeysWithValues: zip(names, counts))
    }

    /// The factors' rank of every tensor a `lowrank` stage with `output: factors` selects. A fixed
    /// rank needs only the shape; an energy target runs the tensor's earlier stages and an SVD
    /// (values only), one tensor at a time.
    private func planFactorRanks(readers: [any TensorFile], threads: Int) throws -> [String: Int] {
        var out = [String: Int]()
        let transform = TensorTransform(plan: self, threads: threads)
        for r in readers {
            for t in r.tensors {
                let st = stages(for: t)
                guard
                    let i = st.firstIndex(where: {
                        if case .lowrank(let l) = $0 { return l.output == .factors }
                        return false
                    }),
                    case .lowrank(let l) = st[i]
                else { continue }
                let (rows, cols) = Self.matrixShape(t)
                if case .fixed(let k) = l.rank {
                    out[t.name] = max(1, min(k, min(rows, cols)))
                    continue
                }
                let work = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.numel)
                defer { work.deallocate() }
                try r.withData(t) { DTypeCodec.decode($0, dtype: t.dtype, into: work, threads: threads) }
                _ = try transform.run(t, work, stages: st[..<i])
                let s = try LowRank.singularValues(UnsafeBufferPointer(work), rows: rows, cols: cols, tensor: t.name)
                out[t.name] = LowRank.rank(l.rank, singularValues: s, rows: rows, cols: cols)
            }
        }
        return out
    }
}
