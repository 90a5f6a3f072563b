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

        public init(checkContinue: @escaping () throws -> Void = {}, unitFinished: @escaping (UnitMetrics) throws -> Void = { _ in },
                    restore: ((Int, TensorInfo) throws -> [UInt8]?)? = nil,
                    checkpoint: ((UnitMetrics, [UnsafeRawBufferPointer]) throws -> Void)? = nil) {
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
    }

    public let model: ModelSource
    public let recipe: Recipe
    public let threads: Int

    public init(model: ModelSource, recipe: Recipe, threads: Int) {
        self.model = model
        self.recipe = recipe
        self.threads = max(1, threads)
    }

    /// The open output writers and running totals of one run.
    final class RunState {
        let dense: ExportStage?
        let ggufExports: [ExportStage]
        let compressed: ExportStage?
        let denseWriters: [SafeTensorsWriter?]
        let ggufWriters: [GGUFWriter]
        let compressedWriter: SafeTensorsWriter?
        let readers: [SafeTensorsReader]
        let observer: Observer
        /// Units in processing order: (shard, tensor).
        let order: [(shard: Int, tensor: TensorInfo)]
        var units = [UnitMetrics]()
        var computed = 0, restored = 0
        /// Each input shard's SHA-256 so far; `unit` feeds it when units run in file order.
        var hashers: [SHA256]
        var hashInUnit = false

        init(dense: ExportStage?, ggufExports: [ExportStage], compressed: ExportStage?, denseWriters: [SafeTensorsWriter?],
             ggufWriters: [GGUFWriter], compressedWriter: SafeTensorsWriter?, readers: [SafeTensorsReader], observer: Observer,
             order: [(shard: Int, tensor: TensorInfo)]) {
            self.dense = dense
            self.ggufExports = ggufExports
            self.compressed = compressed
            self.denseWriters = denseWriters
            self.ggufWriters = ggufWriters
            self.compressedWriter = compressedWriter
            self.readers = readers
            self.observer = observer
            self.order = order
            hashers = readers.map { r in var h = SHA256(); h.update(r.headerBytes); return h }
        }

        var next: Int { units.count }
    }

    /// Runs into `outputDir` (which must exist and be empty of the output names). Units are the
    /// tensors in file order, or, when the recipe calibrates, in the order the model's forward
    /// pass uses them (that is then also the order of the output files).
    public func run(outputDir: String, observer: Observer = Observer()) throws -> Result {
        let start = DispatchTime.now()
        let readers = try model.shards.map { try SafeTensorsReader(path: $0.path) }
        var allTensors = [(shard: Int, tensor: TensorInfo)]()
        var seen = Set<String>()
        for (s, r) in readers.enumerated() {
            for t in r.tensors {
                guard seen.insert(t.name).inserted else {
                    throw ComputeError(.corruptHeader, "tensor appears in more than one shard", file: r.path, tensor: t.name)
                }
                allTensors.append((s, t))
            }
        }
        try RecipeValidator.validate(recipe, tensors: allTensors.map(\.tensor))
        let bert = try RecipeValidator.validate(recipe, model: model, tensors: allTensors.map(\.tensor))
        let calibration = recipe.calibration
        let order = try calibration == nil ? allTensors : forwardOrder(allTensors, config: bert!.config)
        globalCounts = try globalPruneCounts(readers: readers)
        factorRanks = try planFactorRanks(readers: readers)
        let dense = recipe.exportStages.first { $0.format == .safetensors }
        let ggufExports = recipe.exportStages.filter { $0.format == .gguf }
        let ggufWriters = try ggufExports.map { e in
            try GGUFWriter(path: outputDir + "/" + e.ggufFileName, metadata: ggufMetadata(e),
                           tensors: order.map(\.tensor).flatMap(outputTensors).map { t in
                               let ty = GGUFPlanner.type(for: t, export: e)
                               return GGUFWriter.TensorPlan(name: t.name, shape: t.shape, type: ty,
                                                            byteCount: ty.byteCount(numel: t.numel, rowLength: t.shape.last ?? 1)!)
                           })
        }
        let compressed = recipe.exportStages.first { $0.format == .compressed }
        let compressedWriter = try compressed.map { _ in
            try SafeTensorsWriter(path: outputDir + "/" + CompressedLayout.fileName,
                                  tensors: order.flatMap { e in
                                      outputTensors(e.tensor).flatMap { CompressedLayout.plan($0, stage: lastQuantize(for: $0)) }
                                  },
                                  metadata: CompressedLayout.metadata(order.map(\.tensor), recipe: recipe, base: readers.first?.header.metadata ?? [:]))
        }
        let denseWriters: [SafeTensorsWriter?] = try readers.enumerated().map { s, reader in
            try dense.map { _ in
                let plan = order.filter { $0.shard == s }.flatMap { e in
                    outputTensors(e.tensor).map { (name: $0.name, dtype: outputDType(e.tensor, dense), shape: $0.shape) }
                }
                return try SafeTensorsWriter(path: outputDir + "/" + model.shards[s].name, tensors: plan, metadata: reader.header.metadata)
            }
        }
        let state = RunState(dense: dense, ggufExports: ggufExports, compressed: compressed, denseWriters: denseWriters,
                             ggufWriters: ggufWriters, compressedWriter: compressedWriter, readers: readers, observer: observer, order: order)
        var evaluation: Evaluation?
        if let bert, let cal = calibration {
            // Hash the inputs first (in file order), then run the units in forward order.
            for (s, r) in readers.enumerated() {
                for t in r.tensors {
                    try observer.checkContinue()
                    try r.withData(t) { state.hashers[s].update($0) }
                }
            }
            try runLayers(state, bert: bert, calibration: cal)
        } else {
            state.hashInUnit = true
            for _ in order { _ = try unit(state, calibration: nil, wantValues: false) }
        }
        for r in readers { try r.checkUnchanged() }
        var outputs = [OutputRecord]()
        var inputSHA = [String: String]()
        var inputBytes: Int64 = 0
        for (s, reader) in readers.enumerated() {
            let shard = model.shards[s]
            inputSHA[shard.name] = state.hashers[s].finalizeHex()
            inputBytes += Int64(reader.fileSize)
            if let w = denseWriters[s] {
                let (bytes, sha) = try w.finish()
                outputs.append(OutputRecord(path: shard.name, bytes: bytes, sha256: sha, format: "safetensors"))
            }
        }
        for (i, w) in ggufWriters.enumerated() {
            let (bytes, sha) = try w.finish()
            outputs.append(OutputRecord(path: ggufExports[i].ggufFileName, bytes: bytes, sha256: sha, format: "gguf"))
        }
        if let w = compressedWriter {
            let (bytes, sha) = try w.finish()
            outputs.append(OutputRecord(path: CompressedLayout.fileName, bytes: bytes, sha256: sha, format: "compressed-safetensors"))
        }
        if dense != nil, let index = model.indexFile {
            outputs.append(try writeIndex(from: index, to: outputDir, readers: readers, dense: dense))
        }
        for extra in model.extraFiles {
            let name = (extra as NSString).lastPathComponent
            let data = Data(try InputFile.contents(of: extra, what: "model file", limit: InputFile.modelFileLimit))
            let sha = try FileOps.writeFile(outputDir + "/" + name, data)
            outputs.append(OutputRecord(path: name, bytes: Int64(data.count), sha256: sha, format: "model-file"))
        }
        if let ev = recipe.evaluation, let bert {
            try observer.checkContinue()
            evaluation = try evaluate(ev, bert: bert, readers: readers, outputDir: outputDir, outputs: outputs)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return Result(outputs: outputs, units: state.units, inputSHA256: inputSHA, inputBytes: inputBytes, elapsedSeconds: elapsed,
                      computedUnits: state.computed, restoredUnits: state.restored, evaluation: evaluation)
    }

    /// Runs (or restores from a checkpoint) the next unit of `state.order` and writes its outputs.
    /// Returns, when `wantValues`, the tensor's values as the dense export holds them (decoded to F32).
    func unit(_ state: RunState, calibration: LinearCalibration?, wantValues: Bool) throws -> [Float]? {
        try state.observer.checkContinue()
        let index = state.next
        let (s, t) = state.order[index]
        return try state.readers[s].withData(t) { src in
            if state.hashInUnit { state.hashers[s].update(src) }
            return try unit(state, index: index, shard: s, tensor: t, src: src, calibration: calibration, wantValues: wantValues)
        }
    }

    private func unit(_ state: RunState, index: Int, shard s: Int, tensor t: TensorInfo, src: UnsafeRawBufferPointer,
                      calibration: LinearCalibration?, wantValues: Bool) throws -> [Float]? {
        let dense = state.dense, ggufExports = state.ggufExports, compressed = state.compressed
        let pieces = outputTensors(t)
        let writer = state.denseWriters[s]
        var values: [Float]?
        func keep(_ denseBytes: UnsafeRawBufferPointer) {
            guard wantValues else { return }
            var v = [Float](repeating: 0, count: t.numel)
            v.withUnsafeMutableBufferPointer { DTypeCodec.decode(denseBytes, dtype: outputDType(t, dense), into: $0, threads: threads) }
            values = v
        }
        let emitDense: (UnsafeRawBufferPointer) throws -> Void = { bytes in
            keep(bytes)
            guard let w = writer else { return }
            try Self.split(bytes, pieces, size: { $0.numel * self.outputDType(t, dense).size }) { try w.write(name: $0.name, bytes: $1) }
        }
        let emitGGUF: (Int, UnsafeRawBufferPointer) throws -> Void = { i, bytes in
            if i < state.ggufWriters.count {
                try Self.split(bytes, pieces, size: { self.ggufBytes($0, ggufExports[i]) }) { try state.ggufWriters[i].write(name: $0.name, bytes: $1) }
            } else {
                try Self.split(bytes, pieces, size: { self.compressedBytes($0) }) {
                    try CompressedLayout.write($0, stage: self.lastQuantize(for: $0), bytes: $1, to: state.compressedWriter!)
                }
            }
        }
        let m: UnitMetrics
        if let blob = try state.observer.restore?(index, t), let restored = try UnitCheckpoint.decode(blob, tensor: t) {
            m = restored.metrics
            try UnitCheckpoint.emit(restored.payload, sizes: exportSizes(t, dense: dense, ggufExports: ggufExports, compressed: compressed),
                                    hasDense: dense != nil, emitDense: emitDense, emitGGUF: emitGGUF)
            state.restored += 1
        } else {
            let (metrics, parts) = try processUnit(t, index: index, src: src, dense: dense, ggufExports: ggufExports,
                                                   compressed: compressed, calibration: calibration)
            m = metrics
            defer { for p in parts { p.deallocate() } }
            let slots = ggufExports.count + (compressed == nil ? 0 : 1)
            if parts.isEmpty {
                if dense != nil { try emitDense(src) } else { keep(src) }
                for i in 0..<slots { try emitGGUF(i, src) }
            } else {
                var k = 0
                if dense != nil { try emitDense(UnsafeRawBufferPointer(parts[0])); k = 1 }
                for i in 0..<slots { try emitGGUF(i, UnsafeRawBufferPointer(parts[k + i])) }
                state.computed += 1
                try state.observer.checkpoint?(m, parts.map { UnsafeRawBufferPointer($0) })
            }
        }
        state.units.append(m)
        try state.observer.unitFinished(m)
        return values
    }

    /// Bytes each export writes for `t`, in slot order (dense, each GGUF export, compressed).
    private func exportSizes(_ t: TensorInfo, dense: ExportStage?, ggufExports: [ExportStage], compressed: ExportStage?) -> [Int] {
        let pieces = outputTensors(t)
        var sizes = [Int]()
        if dense != nil { sizes.append(pieces.reduce(0) { $0 + $1.numel * outputDType(t, dense).size }) }
        for e in ggufExports { sizes.append(pieces.reduce(0) { $0 + ggufBytes($1, e) }) }
        if compressed != nil { sizes.append(pieces.reduce(0) { $0 + compressedBytes($1) }) }
        return sizes
    }

    private func ggufBytes(_ t: TensorInfo, _ e: ExportStage) -> Int {
        GGUFPlanner.type(for: t, export: e).byteCount(numel: t.numel, rowLength: t.shape.last ?? 1)!
    }

    private func compressedBytes(_ t: TensorInfo) -> Int {
        CompressedLayout.plan(t, stage: lastQuantize(for: t)).reduce(0) { $0 + $1.shape.reduce(1, *) * $1.dtype.size }
    }

    /// Hands `write` each piece's slice of `bytes`, in order.
    static func split(_ bytes: UnsafeRawBufferPointer, _ pieces: [TensorInfo], size: (TensorInfo) -> Int,
                      _ write: (TensorInfo, UnsafeRawBufferPointer) throws -> Void) throws {
        var off = 0
        for p in pieces {
            let n = size(p)
            try write(p, UnsafeRawBufferPointer(rebasing: bytes[off..<(off + n)]))
            off += n
        }
    }

    /// Ranks of tensors that a `lowrank` stage writes as factors (fixed before any header is written).
    private var factorRanks = [String: Int]()

    /// The tensors `t` is written as: itself, or its two low-rank factors.
    func outputTensors(_ t: TensorInfo) -> [TensorInfo] {
        guard let r = factorRanks[t.name] else { return [t] }
        let (rows, cols) = Self.matrixShape(t)
        let names = LowRankStage.factorNames(t.name)
        return [TensorInfo(name: names.u, dtype: t.dtype, shape: [rows, r], begin: 0, end: 0),
                TensorInfo(name: names.v, dtype: t.dtype, shape: [r, cols], begin: 0, end: 0)]
    }

    /// A tensor as a matrix: [numel / last, last].
    static func matrixShape(_ t: TensorInfo) -> (rows: Int, cols: Int) {
        let cols = max(t.shape.last ?? 1, 1)
        return (t.numel / cols, cols)
    }

    /// The stages that select `t`, in recipe order.
    private func stages(for t: TensorInfo) -> [Stage] { recipe.stages.filter { $0.selector?.matches(t.name) ?? false } }

    /// The factors' rank of every tensor a `lowrank` stage with `output: factors` selects. A fixed
    /// rank needs only the shape; an energy target runs the tensor's earlier stages and an SVD
    /// (values only), one tensor at a time.
    private func planFactorRanks(readers: [SafeTensorsReader]) throws -> [String: Int] {
        var out = [String: Int]()
        for r in readers {
            for t in r.tensors {
                let st = stages(for: t)
                guard let i = st.firstIndex(where: { if case .lowrank(let l) = $0 { return l.output == .factors }; return false }),
                      case .lowrank(let l) = st[i] else { continue }
                let (rows, cols) = Self.matrixShape(t)
                if case .fixed(let k) = l.rank {
                    out[t.name] = max(1, min(k, min(rows, cols)))
                    continue
                }
                let work = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.numel)
                defer { work.deallocate() }
                try r.withData(t) { DTypeCodec.decode($0, dtype: t.dtype, into: work, threads: threads) }
                _ = try transform(t, work, stages: st[..<i])
                let s = try LowRank.singularValues(UnsafeBufferPointer(work), rows: rows, cols: cols, tensor: t.name)
                out[t.name] = LowRank.rank(l.rank, singularValues: s)
            }
        }
        return out
    }

    /// Per-tensor prune counts of a leading `scope: global` magnitude stage (empty when there is none).
    private var globalCounts = [String: GlobalMagnitude.Plan]()

    private func globalPruneCounts(readers: [SafeTensorsReader]) throws -> [String: GlobalMagnitude.Plan] {
        guard case .prune(let p)? = recipe.stages.first, case .global(let minKeep) = p.scope,
              case .magnitude(let sparsity) = p.method else { return [:] }
        var names = [String]()
        var sources = [GlobalMagnitude.Source]()
        // Sources decode ranges from worker threads, which cannot throw: the first read error is
        // kept and thrown once planning returns.
        let failure = FirstError()
        for r in readers {
            for t in r.tensors where p.selector.matches(t.name) && t.dtype.isFloat16Or32 {
                names.append(t.name)
                sources.append(GlobalMagnitude.Source(numel: t.numel) { range, dst in
                    do { try r.withData(t, elements: range) { DTypeCodec.decode($0, dtype: t.dtype, into: dst, threads: 1) } } catch {
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

    /// The last quantize stage that selects `t` (the one whose codes the compressed export stores).
    func lastQuantize(for t: TensorInfo) -> QuantizeStage? {
        recipe.quantizeStages.last { $0.selector.matches(t.name) }
    }

    private func outputDType(_ t: TensorInfo, _ export: ExportStage?) -> DType {
        if let d = export?.dtype, t.dtype.isFloat16Or32 { return d }
        return t.dtype
    }

    private func ggufMetadata(_ e: ExportStage) -> [(String, GGUFValue)] {
        var arch = "unknown"
        if let cfg = model.extraFiles.first(where: { $0.hasSuffix("/config.json") }),
           let data = try? Data(InputFile.contents(of: cfg, what: "config.json", limit: InputFile.configLimit)),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let mt = obj["model_type"] as? String {
            arch = mt
        }
        let fileType: UInt32 = [.f32: 0, .f16: 1, .q4_0: 2, .q4_1: 3, .q8_0: 7, .q5_0: 8][e.ggufType]!
        return [
            ("general.architecture", .string(arch)),
            ("general.name", .string((model.path as NSString).lastPathComponent)),
            ("general.alignment", .uint32(32)),
            ("general.file_type", .uint32(fileType)),
            ("general.quantization_version", .uint32(2)),
            ("squeeze.version", .string(Manifest.toolVersion)),
            ("squeeze.recipe", .string(recipe.canonicalJSON)),
        ]
    }

    /// What a tensor's stages produced besides the values left in the work buffer.
    struct Transformed {
        var codes: RTNQuantizer.Result?
        var factors: LowRank.Factors?
        var rank: Int?
    }

    /// Runs `stages` on the F32 values of `t` in `work`, in order. After a `lowrank` stage `work`
    /// holds the product of the factors.
    private func transform(_ t: TensorInfo, _ work: UnsafeMutableBufferPointer<Float>, stages: ArraySlice<Stage>,
                           calibration: LinearCalibration? = nil, original: [Float]? = nil) throws -> Transformed {
        func needCalibration(_ what: String) throws -> LinearCalibration {
            guard let c = calibration else {
                throw ComputeError(.invalidRecipe, "\(what) needs calibration inputs, and this tensor is not a linear layer's weight", tensor: t.name)
            }
            return c
        }
        var out = Transformed()
        let numel = t.numel
        let (rows, cols) = Self.matrixShape(t)
        for stage in stages {
            switch stage {
            case .prune(let st):
                switch st.method {
                case .magnitude(let s):
                    if case .global = st.scope {
                        GlobalMagnitude.apply(globalCounts[t.name] ?? .init(count: 0, threshold: nil), to: work, threads: threads)
                    } else {
                        for step in st.schedule?.targets ?? [s] {
                            MagnitudePruning.prune(work, k: MagnitudePruning.pruneCount(sparsity: step, numel: numel), threads: threads)
                        }
                    }
                case .nm(let n, let m):
                    guard numel % m == 0 else { throw ComputeError(.shapeMismatch, "\(numel) elements are not a multiple of m=\(m)", tensor: t.name) }
                    MagnitudePruning.pruneNM(work, n: n, m: m, threads: threads)
                case .structured(let s, let dim, let norm):
                    let k = MagnitudePruning.pruneCount(sparsity: s, numel: dim == .rows ? rows : cols)
                    StructuredPruning.prune(work, rows: rows, cols: cols, dim: dim, norm: norm, k: k, threads: threads)
                case .wanda(let s):
                    let c = try needCalibration("wanda pruning")
                    Wanda.prune(work, rows: rows, cols: cols, norms: Wanda.inputNorms(c.input, threads: threads),
                                k: MagnitudePruning.pruneCount(sparsity: s, numel: cols), threads: threads)
                }
            case .distill(let d):
                let c = try needCalibration("distill")
                guard let teacherW = original else { throw ComputeError(.internalError, "distill has no original weights", tensor: t.name) }
                var w = Array(work)
                let problem = LayerReconstruction.problem(student: c.input, teacher: c.teacherInput ?? c.input, weight: teacherW,
                                                          out: rows, threads: threads)
                LayerReconstruction.fit(&w, problem, iterations: d.iterations, threads: threads)
                _ = w.withUnsafeBufferPointer { work.update(fromContentsOf: $0) }
            case .calibrate, .evaluate: break
            case .quantize(let q):
                switch q.method {
                case .rtn:
                    out.codes = RTNQuantizer.quantize(work, shape: t.shape, bits: q.bits, symmetric: q.symmetric, granularity: q.granularity,
                                                      threads: threads)
                case .gptq(let damp):
                    let c = try needCalibration("gptq")
                    out.codes = try GPTQ.quantize(work, rows: rows, cols: cols, input: c.input, bits: q.bits, symmetric: q.symmetric,
                                                  granularity: q.granularity, damp: damp, threads: threads, tensor: t.name)
                }
            case .lowrank(let l):
                let f = try LowRank.factorize(UnsafeBufferPointer(work), rows: rows, cols: cols, rank: l.rank, tensor: t.name)
                LowRank.multiply(f.u, f.v, rows: rows, rank: f.rank, cols: cols, into: work)
                out.rank = f.rank
                if l.output == .factors {
                    guard f.rank == factorRanks[t.name] else {
                        throw ComputeError(.internalError, "rank \(f.rank) differs from the planned \(factorRanks[t.name] ?? 0)", tensor: t.name)
                    }
                    out.factors = f
                }
            case .export: break
            }
        }
        return out
    }

    /// Runs the stages on one tensor. Returns its metrics and, when kernels ran, one owned output
    /// buffer per export (dense first, then each GGUF export, then compressed); no buffers means
    /// "copy the input". Each buffer holds the tensor's output pieces (itself, or its two
    /// low-rank factors) back to back. Memory: one F32 working copy plus the encoded outputs.
    private func processUnit(_ t: TensorInfo, index: Int, src: UnsafeRawBufferPointer, dense: ExportStage?,
                             ggufExports: [ExportStage], compressed: ExportStage?,
                             calibration: LinearCalibration? = nil) throws -> (UnitMetrics, [UnsafeMutableRawBufferPointer]) {
        let t0 = DispatchTime.now()
        let stages = stages(for: t)
        let numel = t.numel
        let denseType = outputDType(t, dense)
        let needsFloat = t.dtype.isFloat16Or32 && (!stages.isEmpty || denseType != t.dtype || !ggufExports.isEmpty)
        guard needsFloat else {
            return (UnitMetrics(index: index, tensor: t.name, dtype: t.dtype.rawValue, shape: t.shape, numel: numel, targeted: false,
                                sparsity: t.dtype.isFloat16Or32 ? zeroFraction(src, dtype: t.dtype) : 0, bits: Double(t.dtype.size * 8),
                                relativeError: 0, elapsedMS: ms(since: t0), bytesIn: src.count, bytesOut: src.count), [])
        }
        let work = UnsafeMutableBufferPointer<Float>.allocate(capacity: numel)
        defer { work.deallocate() }
        DTypeCodec.decode(src, dtype: t.dtype, into: work, threads: threads)
        // Calibrated units also need the original values (distill's target, the output error).
        let original = calibration.map { _ in Array(UnsafeBufferPointer(work)) }
        let done = try transform(t, work, stages: stages[...], calibration: calibration, original: original)
        let pieces = outputTensors(t)
        // Each output piece's F32 values: the work buffer, or the two factors.
        func eachPiece(_ body: (Int, TensorInfo, UnsafeBufferPointer<Float>) -> Void) {
            if let f = done.factors {
                f.u.withUnsafeBufferPointer { body(0, pieces[0], $0) }
                f.v.withUnsafeBufferPointer { body(1, pieces[1], $0) }
            } else {
                body(0, t, UnsafeBufferPointer(work))
            }
        }
        func encodeAll(size: (TensorInfo) -> Int, _ encode: (UnsafeBufferPointer<Float>, TensorInfo, UnsafeMutableRawBufferPointer) -> Void)
            -> UnsafeMutableRawBufferPointer {
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: pieces.reduce(0) { $0 + size($1) }, alignment: 64)
            var off = 0
            eachPiece { _, p, values in
                let n = size(p)
                encode(values, p, UnsafeMutableRawBufferPointer(rebasing: out[off..<(off + n)]))
                off += n
            }
            return out
        }
        var parts = [UnsafeMutableRawBufferPointer]()
        var bits = Double(denseType.size * 8)
        var bytesOut = 0
        if dense != nil {
            let out = encodeAll(size: { $0.numel * denseType.size }) { v, _, dst in DTypeCodec.encode(v, dtype: denseType, into: dst, threads: threads) }
            parts.append(out)
            bytesOut = out.count
        }
        // The metrics describe the last GGUF export's reconstruction if there is one (of the
        // tensor itself, not factors), else the dense values.
        var measured: (type: GGMLType, bytes: UnsafeRawBufferPointer)?
        for e in ggufExports {
            let out = encodeAll(size: { self.ggufBytes($0, e) }) { v, p, dst in
                GGUFPlanner.encode(v, type: GGUFPlanner.type(for: p, export: e), into: dst, threads: threads)
            }
            parts.append(out)
            if done.factors == nil { measured = (GGUFPlanner.type(for: t, export: e), UnsafeRawBufferPointer(out)) }
            bits = Double(out.count * 8) / Double(max(numel, 1))
            bytesOut = out.count
        }
        if compressed != nil {
            let out: UnsafeMutableRawBufferPointer
            if let q = lastQuantize(for: t), let c = done.codes {
                let bytes = CompressedLayout.encode(t, stage: q, result: c)
                out = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
                bytes.withUnsafeBytes { out.copyMemory(from: $0) }
                bits = Double(bytes.count * 8) / Double(max(numel, 1))
            } else {
                out = encodeAll(size: { $0.numel * t.dtype.size }) { v, _, dst in DTypeCodec.encode(v, dtype: t.dtype, into: dst, threads: threads) }
            }
            parts.append(out)
            if ggufExports.isEmpty { bytesOut = out.count }
        }
        if done.factors != nil && ggufExports.isEmpty {
            bits = Double(bytesOut * 8) / Double(max(numel, 1))
        }
        let work_ = UnsafeBufferPointer(work)
        let (err, zeros) = Self.errorAndZeros(src: src, dtype: t.dtype, count: numel, threads: threads) { range, dst in
            if let (ty, bytes) = measured {
                let (c, b) = ty.block
                let sub = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound / c * b)..<(range.upperBound / c * b)])
                GGUFPlanner.decode(sub, type: ty, into: dst)
            } else {
                for (k, i) in range.enumerated() { dst[k] = work_[i] }
            }
        }
        var m = UnitMetrics(index: index, tensor: t.name, dtype: ggufExports.last.map { GGUFPlanner.type(for: t, export: $0).name } ?? denseType.rawValue,
                            shape: t.shape, numel: numel, targeted: true,
                            sparsity: numel == 0 ? 0 : Double(zeros) / Double(numel), bits: bits,
                            relativeError: err.isFinite ? err : nil, elapsedMS: ms(since: t0), bytesIn: src.count, bytesOut: bytesOut)
        m.rank = done.rank
        if let c = calibration, let original {
            let (rows, _) = Self.matrixShape(t)
            m.outputError = original.withUnsafeBufferPointer { Self.outputError(c, original: $0, compressed: UnsafeBufferPointer(work), out: rows, threads: threads) }
        }
        return (m, parts)
    }

    /// ‖a − b‖ / ‖a‖ and the number of zeros in b, where a is decoded from `src` and b produced by
    /// `reconstruct` one 64 Ki-element chunk at a time (a multiple of 32: whole quant blocks);
    /// partial sums are combined in chunk order, so the result does not depend on `threads`.
    static func errorAndZeros(src: UnsafeRawBufferPointer, dtype: DType, count: Int, threads: Int,
                              reconstruct: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void) -> (Double, Int) {
        let ranges = Parallel.chunks(count, chunk: 1 << 16)
        var parts = [(Double, Double, Int)](repeating: (0, 0, 0), count: ranges.count)
        parts.withUnsafeMutableBufferPointer { pb in
            Parallel.forEach(ranges.count, threads: threads) { r in
                let range = ranges[r]
                let a = UnsafeMutableBufferPointer<Float>.allocate(capacity: range.count)
                let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: range.count)
                defer { a.deallocate(); b.deallocate() }
                let sz = dtype.size
                DTypeCodec.decode(UnsafeRawBufferPointer(rebasing: src[(range.lowerBound * sz)..<(range.upperBound * sz)]), dtype: dtype,
                                  into: a, threads: 1)
                reconstruct(range, b)
                var num = 0.0, den = 0.0, z = 0
                for i in 0..<range.count {
                    let x = Double(a[i]), d = Double(a[i]) - Double(b[i])
                    num += d * d
                    den += x * x
                    if b[i] == 0 { z += 1 }
                }
                pb[r] = (num, den, z)
            }
        }
        var num = 0.0, den = 0.0, z = 0
        for p in parts { num += p.0; den += p.1; z += p.2 }
        return (den == 0 ? (num == 0 ? 0 : .infinity) : (num / den).squareRoot(), z)
    }

    private func zeroFraction(_ src: UnsafeRawBufferPointer, dtype: DType) -> Double {
        let n = src.count / dtype.size
        return n == 0 ? 0 : Double(DTypeCodec.zeroCount(src, dtype: dtype) ?? 0) / Double(n)
    }

    /// The output shards' index: the input's tensor → shard map, and the dense outputs' total size.
    private func writeIndex(from index: String, to dir: String, readers: [SafeTensorsReader], dense: ExportStage?) throws -> OutputRecord {
        var map = [(String, String)]()
        var total = 0
        for (shard, r) in zip(model.shards, readers) {
            for t in r.tensors {
                for p in outputTensors(t) {
                    map.append((p.name, shard.name))
                    total += p.numel * outputDType(t, dense).size
                }
            }
        }
        map.sort { $0.0 < $1.0 }
        let json = "{\"metadata\":{\"total_size\":\(total)},\"weight_map\":{" +
            map.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}}\n"
        let data = Data(json.utf8)
        let sha = try FileOps.writeFile(dir + "/" + ModelSource.indexName, data)
        return OutputRecord(path: ModelSource.indexName, bytes: Int64(data.count), sha256: sha, format: "safetensors-index")
    }
}

func ms(since t0: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6 }
