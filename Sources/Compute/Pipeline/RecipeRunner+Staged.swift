import Foundation

/// Recipes with a whole-model pass (flap, awq): the pass stages a changed copy of the model and the
/// recipe runs on it.
extension RecipeRunner {
    /// Each AWQ search of each block: the α chosen (nil when no scaling won, and for a clipping search)
    /// and the output error on the calibration inputs with and without it.
    public struct AWQSummary: Sendable, Codable {
        public struct Group: Sendable, Codable {
            public let block: Int
            public let group: String
            public let alpha: Double?
            public let error: Double
            public let baseline: Double
        }
        public let groups: [Group]
        public let seconds: Double
    }

    /// A model staged by a whole-model pass (flap, awq): the files the rest of the recipe reads, the
    /// pass's seconds, and what it adds to the result.
    struct StagedInput {
        let model: ModelSource
        let files: DecoderModelFiles
        let seconds: Double
        let annotate: (inout Result) -> Void
    }

    /// A recipe with a whole-model pass (`prune: {method: flap}`, `awq`): the pass stages a copy of
    /// the model in `outputDir` (removed before returning), then the recipe runs on the staged copy;
    /// the input's checksum and `evaluate`'s original stay the submitted model's.
    func runStaged(
        outputDir: String, observer: Observer,
        stage: ([any TensorFile], DecoderFamily, CalibrateStage, String) throws -> StagedInput
    ) throws -> Result {
        guard let decoder = family as? DecoderFamily, let cal = recipe.calibration else {
            throw ComputeError(.internalError, "flap and awq run on a decoder after a calibrate stage")
        }
        let start = DispatchTime.now()
        try observer.checkContinue()
        let readers = try model.open()
        let hasher = InputHasher(readers: readers)
        defer { hasher.stop() }
        let dir = outputDir + "/.staged-input"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let staged = try stage(readers, decoder, cal, dir)
        for r in readers { try r.checkUnchanged() }
        let inner = RecipeRunner(
            model: staged.model, recipe: recipe, threads: threads,
            family: DecoderFamily(files: staged.files, original: decoder.files.config))
        inner.submitted = readers
        let r = try inner.run(outputDir: outputDir, observer: observer)
        let digests = try hasher.wait()
        var inputSHA = [String: String]()
        for (s, shard) in model.shards.enumerated() { inputSHA[shard.name] = digests[s] }
        var result = Result(
            outputs: r.outputs, units: r.units, inputSHA256: inputSHA,
            inputBytes: Int64(readers.reduce(0) { $0 + $1.fileSize }), elapsedSeconds: ms(since: start) / 1000,
            computedUnits: r.computedUnits, restoredUnits: r.restoredUnits, evaluation: r.evaluation,
            quantizedInput: readers.flatMap(\.quantizedTensors),
            calibrationSeconds: staged.seconds + (r.calibrationSeconds ?? 0), budgets: r.budgets)
        staged.annotate(&result)
        return result
    }

    /// FLAP prunes the model as a whole (StructuredModelPass).
    func runStructured(_ m: FlapPrune, outputDir: String, observer: Observer) throws -> Result {
        try runStaged(outputDir: outputDir, observer: observer) { readers, decoder, cal, dir in
            let s = try StructuredModelPass.run(
                m, model: model, readers: readers, files: decoder.files, calibration: cal, into: dir, threads: threads,
                checkContinue: observer.checkContinue)
            return StagedInput(model: s.model, files: s.files, seconds: s.seconds) {
                var summary = StructureSummary(
                    method: FlapPrune.name, ffnWidths: s.widths, removedFraction: s.removed, seconds: s.seconds)
                if m.heads != .none { (summary.heads, summary.kvHeads) = (s.heads, s.kvHeads) }
                $0.structure = summary
            }
        }
    }

    /// SliceGPT rotates and slices the model as a whole (SlicePass).
    func runSliced(_ s: SliceStage, outputDir: String, observer: Observer) throws -> Result {
        try runStaged(outputDir: outputDir, observer: observer) { readers, decoder, cal, dir in
            let r = try SlicePass.run(
                s, model: model, readers: readers, files: decoder.files, calibration: cal, into: dir, threads: threads,
                checkContinue: observer.checkContinue)
            return StagedInput(model: r.model, files: r.files, seconds: r.summary.seconds) { $0.slice = r.summary }
        }
    }

    /// AWQ scales the model as a whole (AWQPass) for the grids the plan of the submitted model gives.
    func runScaled(_ a: AWQStage, outputDir: String, observer: Observer) throws -> Result {
        try runStaged(outputDir: outputDir, observer: observer) { readers, decoder, cal, dir in
            var plan = try RunPlan.make(
                recipe: recipe, readers: readers, family: family, threads: threads, modelPath: model.path)
            try plan.fitBudgets(model: model, readers: readers, threads: threads)
            let s = try AWQPass.run(
                a, model: model, readers: readers, files: decoder.files, calibration: cal,
                targets: AWQTargets(plan: plan, threads: threads), into: dir, threads: threads,
                checkContinue: observer.checkContinue)
            return StagedInput(model: s.model, files: s.files, seconds: s.summary.seconds) { $0.awq = s.summary }
        }
    }
}
