import Foundation

/// What a run does, computed once before any output is written: the units in processing order,
/// the export slots every unit writes, and the decisions that span tensors (global pruning
/// thresholds, the ranks of low-rank factors). A value: nothing in it changes during the run.
struct RunPlan {
    /// One tensor of one input shard: the grain of processing and checkpoints.
    struct Unit {
        let shard: Int
        let tensor: TensorInfo
    }

    let recipe: Recipe
    /// Every tensor, shard by shard in file order.
    let fileOrder: [Unit]
    /// Processing order: file order, or the forward pass's order when the recipe calibrates.
    let units: [Unit]
    /// Set once by `make` (GGUF slots learn their per-tensor types there).
    var slots: [ExportSlot]
    /// Set once by `make`, before the run starts.
    var globalCounts: [String: GlobalMagnitude.Plan]
    var factorRanks: [String: Int]
    /// Ranks a `lowrank` stage with `allocation: global` chose for its matrices (LowRankAllocation).
    var allocatedRanks = [String: Int]()
    /// Names, permutations and metadata of GGUF exports for the model's family (nil: generic).
    var ggufLayout: GGUFExportLayout? = nil
    /// The family's linear weights (what a calibrated importance matrix covers; empty without a family).
    var linearWeights = Set<String>()
    /// What each size-budgeted GGUF slot's fitting chose (`fitBudgets`), in slot order.
    var budgets = [RecipeRunner.BudgetSummary]()

    /// The dense slot's export: the safetensors export, or the unwritten one a calibrated run
    /// without it keeps so the forward pass reads each compressed tensor's values.
    var dense: ExportStage? { slots.first { $0.kind == .dense }?.export }
    /// The safetensors export, when the recipe writes one.
    var writtenDense: ExportStage? { slots.first { $0.kind == .dense && $0.written }?.export }
    /// Whether a GGUF export weights its quantization by the calibration's importance matrix.
    var importanceFromCalibration: Bool { slots.contains { $0.kind == .gguf && $0.export.importance == .calibration } }
    var hasGGUF: Bool { slots.contains { $0.kind == .gguf } }

    /// A tensor's name in GGUF exports.
    func ggufName(_ name: String) -> String { ggufLayout?.name(name) ?? name }

    /// The stages that select `t`, in recipe order.
    func stages(for t: TensorInfo) -> [Stage] { recipe.stages.filter { $0.selector?.matches(t.name) ?? false } }

    /// The last quantize stage that selects `t` (the one whose codes the compressed export stores).
    func lastQuantize(for t: TensorInfo) -> QuantizeStage? { recipe.compression(for: t.name) }

    /// The dtype the dense export writes `t` in.
    func denseDType(_ t: TensorInfo) -> DType {
        if let d = dense?.dtype, t.dtype.isFloat16Or32 { return d }
        return t.dtype
    }

    /// The tensors `t` is written as: itself, or its two low-rank factors.
    func outputTensors(_ t: TensorInfo) -> [TensorInfo] {
        guard let r = factorRanks[t.name] else { return [t] }
        let (rows, cols) = Self.matrixShape(t)
        let names = LowRankStage.factorNames(t.name)
        return [
            TensorInfo(name: names.u, dtype: t.dtype, shape: [rows, r], begin: 0, end: 0),
            TensorInfo(name: names.v, dtype: t.dtype, shape: [r, cols], begin: 0, end: 0)
        ]
    }

    /// The pieces of `t` a GGUF export writes (the layout may leave some out).
    func ggufPieces(_ t: TensorInfo) -> [TensorInfo] { outputTensors(t).filter { !ggufDropped($0.name) } }

    /// Whether the GGUF layout leaves this tensor out.
    func ggufDropped(_ name: String) -> Bool { ggufLayout?.dropped(name) ?? false }

    /// Bytes each slot writes for `t`, in slot order.
    func slotSizes(_ t: TensorInfo) -> [Int] {
        let pieces = outputTensors(t)
        return slots.map { s in pieces.reduce(0) { $0 + s.bytes($1, of: t, plan: self) } }
    }

    /// A tensor as a matrix: [numel / last, last].
    static func matrixShape(_ t: TensorInfo) -> (rows: Int, cols: Int) {
        let cols = max(t.shape.last ?? 1, 1)
        return (t.numel / cols, cols)
    }
}

/// One output every unit writes, in the order writers, sizes and checkpoints all index them: the
/// dense safetensors export, each GGUF export, the compressed export, then the compressed-tensors one.
struct ExportSlot {
    enum Kind { case dense, gguf, compressed, compressedTensors }
    let kind: Kind
    let export: ExportStage
    /// A GGUF slot's type for each output tensor (set by `RunPlan.make`; mixes differ per tensor).
    var ggufTypes: [String: GGMLType] = [:]
    /// A GGUF slot's importance matrix read from a file (`imatrix: PATH`), set by `RunPlan.make`.
    var importanceFile: ImportanceMatrix?
    /// False for the dense slot a calibrated run keeps without a safetensors export: its bytes feed
    /// the forward pass and the checkpoints, and no file is written.
    var written = true

    /// The column importance this GGUF slot weights `p`'s quantization by: from the file by the
    /// piece's GGUF name, or the unit's calibration (`imatrix: true`); nil: none.
    func importance(_ p: TensorInfo, plan: RunPlan, calibrated: [Float]?) -> [Float]? {
        switch export.importance {
        case .calibration?: return ImportanceMatrix.weighting(calibrated)
        case .file?:
            guard let e = importanceFile?.entries[plan.ggufName(p.name)], e.sums.count == (p.shape.last ?? 0) else {
                return nil
            }
            return ImportanceMatrix.weighting(e.importance)
        case .job?, nil: return nil  // a job's matrix is a file by now (RunPlan.make refuses one that is not)
        }
    }

    /// The ggml type this GGUF slot writes `p` in.
    func ggufType(_ p: TensorInfo) -> GGMLType { ggufTypes[p.name] ?? GGUFPlanner.type(for: p, export: export) }

    /// The slots of a recipe's exports, in slot order.
    static func slots(_ recipe: Recipe) -> [ExportSlot] {
        let e = recipe.exportStages
        var dense = e.filter { $0.format == .safetensors }.prefix(1).map { ExportSlot(kind: .dense, export: $0) }
        if dense.isEmpty && recipe.calibration != nil && recipe.calibratesUnits {
            dense = [ExportSlot(kind: .dense, export: ExportStage(format: .safetensors), written: false)]
        }
        return dense
            + e.filter { $0.format == .gguf }.map { ExportSlot(kind: .gguf, export: $0) }
            + e.filter { $0.format == .compressed }.prefix(1).map { ExportSlot(kind: .compressed, export: $0) }
            + e.filter { $0.format == .compressedTensors }.prefix(1).map {
                ExportSlot(kind: .compressedTensors, export: $0)
            }
    }

    /// Bytes this slot writes for output piece `p` of tensor `t`.
    func bytes(_ p: TensorInfo, of t: TensorInfo, plan: RunPlan) -> Int {
        switch kind {
        case .dense: return p.numel * plan.denseDType(t).size
        case .gguf:
            return plan.ggufDropped(p.name) ? 0 : ggufType(p).byteCount(numel: p.numel, rowLength: p.shape.last ?? 1)!
        case .compressed: return SafeTensorsWriter.byteCount(CompressedLayout.plan(p, stage: plan.lastQuantize(for: p)))
        case .compressedTensors:
            return SafeTensorsWriter.byteCount(CompressedTensorsLayout.plan(p, stage: plan.lastQuantize(for: p)))
        }
    }
}
