import Foundation

/// Applies a recipe to a model, one tensor at a time in file order, streaming the outputs.
/// Same input and recipe give byte-identical model files for any thread count.
public final class RecipeRunner {
    /// Hooks the caller uses to stop between units and to record progress.
    public struct Observer {
        /// Called before each unit; throw to stop (cancelled, lease lost, draining).
        public var checkContinue: () throws -> Void
        /// Called after each unit is written.
        public var unitFinished: (UnitMetrics) throws -> Void
        /// Returns a checkpoint of a unit computed earlier (as made by `checkpoint`) to reuse, or nil to compute it.
        public var restore: ((Int, TensorInfo) throws -> [UInt8]?)?
        /// Receives each computed unit's metrics and the bytes of every export (in export order) before
        /// `unitFinished`; `UnitCheckpoint.write` stores them. The buffers are valid during the call only.
        public var checkpoint: ((UnitMetrics, [UnsafeRawBufferPointer]) throws -> Void)?

        public init(
            checkContinue: @escaping () throws -> Void = {},
            unitFinished: @escaping (UnitMetrics) throws -> Void = { _ in },
            restore: ((Int, TensorInfo) throws -> [UInt8]?)? = nil,
            checkpoint: ((UnitMetrics, [UnsafeRawBufferPointer]) throws -> Void)? = nil
        ) {
            self.checkContinue = checkContinue
            self.unitFinished = unitFinished
            self.restore = restore
            self.checkpoint = checkpoint
        }
    }

    /// What a run produced.
    public struct Result: Sendable {
        public let outputs: [OutputRecord]
        public let units: [UnitMetrics]
        /// SHA-256 of each input shard, by shard file name.
        public let inputSHA256: [String: String]
        public let inputBytes: Int64
        public let elapsedSeconds: Double
        /// Units whose kernels ran in this run, and units taken from checkpoints.
        public let computedUnits: Int
        public let restoredUnits: Int
        /// What an `evaluate` stage measured (nil without one).
        public var evaluation: Evaluation? = nil
        /// Input tensors stored quantized and decoded for the run (a GGUF input), "name: TYPE".
        public var quantizedInput: [String] = []
        /// Seconds of a calibrated run's compression: tokenizing the calibration text, the forward
        /// passes and every unit's kernels, up to the last unit handed to the writers (what
        /// llm-compressor's `oneshot` times; opening the input and closing the outputs excluded).
        public var calibrationSeconds: Double? = nil
        /// What a structural stage (`prune: {method: flap}`) did to the model, when there is one.
        public var structure: StructureSummary? = nil
        /// What a `slice` stage kept, when there is one.
        public var slice: SliceSummary? = nil
        /// What an `awq` stage found, when there is one.
        public var awq: AWQSummary? = nil
        /// What each GGUF export to a size budget chose.
        public var budgets: [BudgetSummary] = []
    }

    /// A GGUF export fitted to a size budget: the file, its byte limit, the predicted loss of the
    /// types chosen (`GGUFBudget`), how many matrices took each type, and the seconds measuring took.
    public struct BudgetSummary: Sendable, Codable {
        public let file: String
        public let limitBytes: Int64
        public let predictedError: Double
        public let types: [String: Int]
        public let seconds: Double

        enum CodingKeys: String, CodingKey {
            case file, types, seconds
            case limitBytes = "limit_bytes"
            case predictedError = "predicted_error"
        }
    }

    /// The residual width a `slice` stage kept and the share of the normalised stream's variance in it.
    public struct SliceSummary: Sendable, Codable {
        public let hidden: Int
        public let kept: Int
        public let keptVariance: Double
        public let seconds: Double

        enum CodingKeys: String, CodingKey {
            case hidden, kept, seconds
            case keptVariance = "kept_variance"
        }
    }

    /// The widths a structural stage left and the share of the blocks' parameters it removed.
    public struct StructureSummary: Sendable, Codable {
        public let method: String
        public let ffnWidths: [Int]
        /// Query heads and KV heads per block, when heads were pruned.
        public var heads: [Int]?
        public var kvHeads: [Int]?
        public let removedFraction: Double
        public let seconds: Double

        enum CodingKeys: String, CodingKey {
            case method, heads
            case ffnWidths = "ffn_widths"
            case kvHeads = "kv_heads"
            case removedFraction = "removed_fraction"
            case seconds
        }
    }

    public let model: ModelSource
    public let recipe: Recipe
    public let threads: Int
    /// The model's architecture, for calibrated stages and evaluation (nil: weights only).
    public let family: ModelFamily?
    /// The model as submitted, when `model` is a whole-model pass's staged copy: what `evaluate` compares with.
    var submitted: [any TensorFile]?

    /// `recipe` must have been validated against `model` (`RecipeValidator.validateAll`), which
    /// also gives the family.
    public init(model: ModelSource, recipe: Recipe, threads: Int, family: ModelFamily? = nil) {
        self.model = model
        self.recipe = recipe
        self.threads = max(1, threads)
        self.family = family
    }

    /// How many units a run of `recipe` on a model of `tensors` has: one per tensor, and for a
    /// structural stage the o_proj and down_proj biases it adds to every block, for a slice of a
    /// tied model the untied head, for a per-block slice its two shortcut matrices per block.
    public static func unitCount(recipe: Recipe, tensors: [TensorInfo], family: ModelFamily?) -> Int {
        if let (_, s) = recipe.slice, let d = family as? DecoderFamily {
            let c = d.files.config
            return tensors.count + (c.tied ? 1 : 0) + (s.uniform ? 0 : 2 * c.layers)
        }
        guard let (_, m) = recipe.structuralPrune, let d = family as? DecoderFamily, m.compensate,
            !d.files.config.outputBias
        else { return tensors.count }
        return tensors.count + 2 * d.files.config.layers
    }

    /// The plan, open files and running totals of one run.
    final class RunState {
        let plan: RunPlan
        let readers: [any TensorFile]
        let writers: OutputWriters
        let observer: Observer
        var units = [UnitMetrics]()
        var computed = 0, restored = 0
        /// Each input shard's SHA-256 so far; `unit` feeds it when units run in file order.
        var hashers: [SHA256]
        var hashInUnit = false
        /// The importance matrix collected on the calibration windows (`imatrix: true`), by GGUF name.
        var importance = [String: ImportanceMatrix.Entry]()

        init(plan: RunPlan, readers: [any TensorFile], writers: OutputWriters, observer: Observer) {
            self.plan = plan
            self.readers = readers
            self.writers = writers
            self.observer = observer
            hashers = readers.map { r in
                var h = SHA256()
                if let p = r.hashPrefix { h.update(p) }
                return h
            }
        }

        var next: Int { units.count }
    }

    /// Runs into `outputDir` (which must exist and be empty of the output names). Units are the
    /// tensors in file order, or, when the recipe calibrates, in the order the model's forward
    /// pass uses them (that is then also the order of the output files).
    public func run(outputDir: String, observer: Observer = Observer()) throws -> Result {
        if submitted == nil, let s = recipe.structuralPrune {
            return try runStructured(s.method, outputDir: outputDir, observer: observer)
        }
        if submitted == nil, let s = recipe.slice {
            return try runSliced(s.stage, outputDir: outputDir, observer: observer)
        }
        if submitted == nil, let a = recipe.awq {
            return try runScaled(a.stage, outputDir: outputDir, observer: observer)
        }
        let start = DispatchTime.now()
        AllocatorTuning.keepFreedMemory()
        let readers = try model.open()
        var plan = try RunPlan.make(
            recipe: recipe, readers: readers, family: family, threads: threads, modelPath: model.path)
        try plan.fitBudgets(model: model, readers: readers, threads: threads)
        plan.allocatedRanks = try allocateLowRank(plan, readers: readers, observer: observer)
        let state = RunState(
            plan: plan, readers: readers,
            writers: try OutputWriters(plan: plan, model: model, readers: readers, outputDir: outputDir),
            observer: observer)
        let streamed = readers.allSatisfy { $0.hashPrefix != nil }
        let hasher = !streamed || recipe.calibration != nil ? InputHasher(readers: readers) : nil
        defer { hasher?.stop() }
        var calibrationSeconds: Double?
        if let cal = recipe.calibration, let family, recipe.calibratesUnits {
            let t0 = DispatchTime.now()
            try runCalibrated(state, family: family, calibration: cal)
            calibrationSeconds = ms(since: t0) / 1000
        } else {
            state.hashInUnit = streamed
            for _ in plan.units { _ = try unit(state, calibration: nil, wantValues: false) }
        }
        for r in readers { try r.checkUnchanged() }
        var outputs = try state.writers.finish()
        if plan.writtenDense != nil, let index = model.indexFile {
            outputs.append(try writeIndex(from: index, to: outputDir, plan: plan))
        }
        let extras = try readExtraFiles()
        outputs += try copyExtraFiles(extras, to: outputDir, plan: plan)
        outputs += try writeCompressedTensorsFiles(extras, to: outputDir, plan: plan)
        outputs += try writeImportance(state.importance, to: outputDir, plan: plan)
        let digests = try hasher?.wait() ?? state.hashers.indices.map { state.hashers[$0].finalizeHex() }
        var inputSHA = [String: String]()
        for (s, shard) in model.shards.enumerated() { inputSHA[shard.name] = digests[s] }
        var evaluation: Evaluation?
        if let ev = recipe.evaluation, let family {
            try observer.checkContinue()
            let r = try evaluate(
                ev, family: family, readers: submitted ?? readers, outputDir: outputDir, outputs: outputs, plan: plan,
                modelSHA256: ModelSource.combinedChecksum(inputSHA))
            evaluation = r.evaluation
            if let w = r.written { outputs.append(w) }
        }
        let elapsed = ms(since: start) / 1000
        return Result(
            outputs: outputs, units: state.units, inputSHA256: inputSHA,
            inputBytes: Int64(readers.reduce(0) { $0 + $1.fileSize }),
            elapsedSeconds: elapsed, computedUnits: state.computed, restoredUnits: state.restored,
            evaluation: evaluation,
            quantizedInput: readers.flatMap(\.quantizedTensors), calibrationSeconds: calibrationSeconds,
            budgets: plan.budgets)
    }

    /// A calibrated run: the family's forward pass asks for each unit in forward order, through
    /// the compressed model; with `distill` the original runs alongside. Remaining units follow.
    private func runCalibrated(_ state: RunState, family: ModelFamily, calibration cal: CalibrateStage) throws {
        try family.calibrate(
            cal, needs: recipe.calibrationNeeds, teacher: recipe.distills ? ModelWeights(readers: state.readers) : nil,
            threads: threads
        ) { name, calibration in
            guard state.next < state.plan.units.count, state.plan.units[state.next].tensor.name == name else {
                throw ComputeError(.internalError, "forward pass asked for \(name) out of unit order")
            }
            return try unit(state, calibration: calibration, wantValues: true) ?? []
        }
        while state.next < state.plan.units.count { _ = try unit(state, calibration: nil, wantValues: false) }
    }

    /// Runs (or restores from a checkpoint) the next unit and writes its outputs. Returns, when
    /// `wantValues`, the tensor's values as the dense export holds them (decoded to F32; nil when
    /// there is no dense export and kernels ran).
    func unit(_ state: RunState, calibration: LinearCalibration?, wantValues: Bool) throws -> [Float]? {
        try state.observer.checkContinue()
        let index = state.next
        let u = state.plan.units[index]
        var values: [Float]?
        let keep: (UnsafeRawBufferPointer) -> Void = { bytes in
            guard wantValues else { return }
            var v = [Float](repeating: 0, count: u.tensor.numel)
            v.withUnsafeMutableBufferPointer {
                DTypeCodec.decode(bytes, dtype: state.plan.denseDType(u.tensor), into: $0, threads: self.threads)
            }
            values = v
        }
        var importance: [Float]?
        if state.plan.importanceFromCalibration, let calibration {
            let entry = try calibration.importanceEntry(threads: threads)
            state.importance[state.plan.ggufName(u.tensor.name)] = entry
            importance = entry.importance
        }
        let m = try state.readers[u.shard].withData(u.tensor) { src in
            if state.hashInUnit { state.hashers[u.shard].update(src) }
            return try compute(
                state, index: index, unit: u, src: src, calibration: calibration, importance: importance, keep: keep)
        }
        state.units.append(m)
        try state.observer.unitFinished(m)
        return values
    }

    /// The unit's outputs, from a checkpoint or from its kernels, handed to the writers by slot;
    /// `keep` sees the dense slot's bytes (or the input's, when untouched and there is no dense export).
    private func compute(
        _ state: RunState, index: Int, unit u: RunPlan.Unit, src: UnsafeRawBufferPointer,
        calibration: LinearCalibration?,
        importance: [Float]?, keep: (UnsafeRawBufferPointer) -> Void
    ) throws -> UnitMetrics {
        let plan = state.plan
        func emit(_ slot: Int, _ bytes: UnsafeRawBufferPointer) throws {
            if plan.slots[slot].kind == .dense { keep(bytes) }
            try state.writers.write(slot: slot, unit: u, bytes: bytes)
        }
        if let blob = try state.observer.restore?(index, u.tensor),
            let restored = try UnitCheckpoint.decode(blob, tensor: u.tensor)
        {
            try UnitCheckpoint.emit(restored.payload, sizes: plan.slotSizes(u.tensor), emit: emit)
            state.restored += 1
            return restored.metrics
        }
        let (m, parts) = try UnitProcessor(plan: plan, threads: threads).process(
            u.tensor, index: index, src: src, calibration: calibration,
            importance: importance)
        defer { for p in parts { p.deallocate() } }
        if parts.isEmpty {
            if plan.dense == nil { keep(src) }
            for i in plan.slots.indices { try emit(i, src) }
            return m
        }
        for (i, p) in parts.enumerated() { try emit(i, UnsafeRawBufferPointer(p)) }
        state.computed += 1
        try state.observer.checkpoint?(m, parts.map { UnsafeRawBufferPointer($0) })
        return m
    }
}
