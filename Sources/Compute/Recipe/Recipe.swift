import Foundation

/// A compression recipe: stages applied in order to the tensors their patterns select.
public struct Recipe: Equatable, Sendable {
    public var stages: [Stage]

    public init(stages: [Stage]) { self.stages = stages }

    /// The prune stages, in order.
    public var pruneStages: [PruneStage] { stages.compactMap { if case .prune(let p) = $0 { return p }; return nil } }
    /// The quantize stages, in order.
    public var quantizeStages: [QuantizeStage] { stages.compactMap { if case .quantize(let q) = $0 { return q }; return nil } }
    /// The calibrate stage, if any (at most one).
    public var calibration: CalibrateStage? { stages.lazy.compactMap { if case .calibrate(let c) = $0 { return c }; return nil }.first }
    /// The evaluate stage, if any (at most one).
    public var evaluation: EvaluateStage? { stages.lazy.compactMap { if case .evaluate(let e) = $0 { return e }; return nil }.first }
    /// The lowrank stages, in order.
    public var lowRankStages: [LowRankStage] { stages.compactMap { if case .lowrank(let l) = $0 { return l }; return nil } }
    /// The export stages, in order.
    public var exportStages: [ExportStage] { stages.compactMap { if case .export(let e) = $0 { return e }; return nil } }
    /// The index in `stages` of the first export of `format` (for error paths), if any.
    public func stageIndex(exporting format: ExportStage.Format) -> Int? {
        stages.firstIndex { if case .export(let e) = $0 { return e.format == format }; return false }
    }
    /// Whether the recipe exports `format`.
    public func exports(_ format: ExportStage.Format) -> Bool { stageIndex(exporting: format) != nil }
    /// Whether a `distill` stage runs (the original model then runs beside the compressed one).
    public var distills: Bool { stages.contains { if case .distill = $0 { return true }; return false } }

    /// The statistics of each linear layer's inputs that the recipe's calibrated stages read.
    public var calibrationNeeds: CalibrationNeeds {
        var n = CalibrationNeeds(distill: distills, gramPrecision: calibration?.hessian ?? .f32)
        for s in stages {
            switch s {
            case .prune(let p):
                if case .sparsegpt = p.method { n.gram = true }
                if case .wanda = p.method { n.norms = true }
            case .quantize(let q):
                if case .gptq = q.method { n.gram = true }
            case .export(let e):
                if e.importance == .calibration { n.norms = true }
                if e.errorFeedback { n.gram = true }
            default: break
            }
        }
        return n
    }
}

/// One recipe stage.
public enum Stage: Equatable, Sendable {
    case prune(PruneStage)
    case quantize(QuantizeStage)
    case lowrank(LowRankStage)
    case calibrate(CalibrateStage)
    case distill(DistillStage)
    case evaluate(EvaluateStage)
    case export(ExportStage)

    /// The tensors a transforming stage selects (nil for export).
    public var selector: TensorSelector? {
        switch self {
        case .prune(let p): return p.selector
        case .quantize(let q): return q.selector
        case .lowrank(let l): return l.selector
        case .distill(let d): return d.selector
        case .calibrate, .evaluate, .export: return nil
        }
    }
}

/// `lowrank`: truncated SVD of each selected matrix (viewed as [numel / last, last]), kept as the
/// dense product (same tensor, same shape) or written as two factors `T.lowrank_u` [rows, r] and
/// `T.lowrank_v` [r, last] with T ≈ lowrank_u · lowrank_v.
public struct LowRankStage: Equatable, Sendable {
    public enum Output: String, Sendable, CaseIterable { case dense, factors }
    public var rank: LowRank.Rank
    public var output: Output
    public var selector: TensorSelector

    public init(rank: LowRank.Rank, output: Output, selector: TensorSelector) {
        self.rank = rank
        self.output = output
        self.selector = selector
    }

    /// The factor tensors' names for tensor `name`.
    public static func factorNames(_ name: String) -> (u: String, v: String) { (name + ".lowrank_u", name + ".lowrank_v") }
}

/// `quantize`: integer quantization on the round-to-nearest grid — plain RTN, or GPTQ (error
/// feedback through the calibration Hessian; needs `calibrate`). The tensor continues through the
/// recipe as its dequantized values, and a `compressed` export stores the packed codes and scales.
public struct QuantizeStage: Equatable, Sendable {
    public enum Method: Equatable, Sendable {
        case rtn
        /// `damp`: fraction of the Hessian's mean diagonal added to its diagonal.
        case gptq(damp: Double)
    }
    public var bits: Int
    public var symmetric: Bool
    public var granularity: RTNQuantizer.Granularity
    public var method: Method
    public var selector: TensorSelector
    /// `gptq`: visit columns by decreasing Hessian diagonal, with group parameters fixed up front.
    public var actOrder = false
    /// How each group's scale and zero point are chosen (`observer: mse` searches shrunk ranges).
    public var observer = RTNQuantizer.Observer.minmax

    public init(bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity, method: Method = .rtn, selector: TensorSelector) {
        self.bits = bits
        self.symmetric = symmetric
        self.granularity = granularity
        self.method = method
        self.selector = selector
    }
}

/// Tensor selection by glob patterns on names (`*` and `?` match any character, dots included).
/// A Llama tensor also answers to its GGUF name (`blk.0.attn_q.weight` for
/// `model.layers.0.self_attn.q_proj.weight`).
public struct TensorSelector: Equatable, Sendable {
    public var targets: [String]
    public var ignore: [String]

    public init(targets: [String], ignore: [String] = []) {
        self.targets = targets
        self.ignore = ignore
    }

    public func matches(_ name: String) -> Bool {
        let alias = LlamaNames.gguf(name)
        let hit = { (p: String) in Glob.match(p, name) || alias.map { Glob.match(p, $0) } ?? false }
        return targets.contains(where: hit) && !ignore.contains(where: hit)
    }
}

/// `prune`: magnitude (exact fraction of zeros per tensor), N:M semi-structured along the last
/// dimension, or structured (whole rows or columns by norm).
public struct PruneStage: Equatable, Sendable {
    public enum Method: Equatable, Sendable {
        case magnitude(sparsity: Double)
        case nm(n: Int, m: Int)
        case structured(sparsity: Double, dim: StructuredPruning.Dimension, norm: StructuredPruning.Norm)
        /// Wanda: per output row, the smallest |W_ij|·‖X_j‖₂ on calibration inputs (needs `calibrate`).
        case wanda(sparsity: Double)
        /// SparseGPT: OBS-style pruning with weight updates through the calibration Hessian
        /// (needs `calibrate`); `damp`: fraction of the Hessian's mean diagonal added to it.
        case sparsegpt(SparseGPT.Pattern, damp: Double)

        /// Methods that need the layer's calibration inputs.
        public var isCalibrated: Bool {
            switch self {
            case .wanda, .sparsegpt: return true
            default: return false
            }
        }
    }
    /// Magnitude pruning per tensor, or across all selected tensors with a minimum density each.
    public enum Scope: Equatable, Sendable {
        case layer
        case global(minKeep: Double)
    }
    public var method: Method
    public var scope: Scope
    /// Magnitude pruning in gradual steps (cubic schedule up to `sparsity`); nil: one step.
    public var schedule: CubicSchedule?
    public var selector: TensorSelector

    public init(method: Method, scope: Scope = .layer, schedule: CubicSchedule? = nil, selector: TensorSelector) {
        self.method = method
        self.scope = scope
        self.schedule = schedule
        self.selector = selector
    }
}

/// `export`: an output file format.
public struct ExportStage: Equatable, Sendable {
    public enum Format: String, Sendable, CaseIterable { case safetensors, gguf, compressed }
    /// GGUF tensor types an export can ask for.
    public enum GGUFType: String, Sendable, CaseIterable {
        case q8_0, q4_0, q4_1, q5_0, q5_1, f16, f32
        /// k-quants, one type on every eligible matrix.
        case q2_k, q3_k, q4_k, q5_k, q6_k
        /// llama-quantize's mixes: more bits where llama.cpp's rules put them (`GGUFMix`).
        case q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m

        /// The type of every eligible matrix, or the mix's default type.
        var ggml: GGMLType {
            switch self {
            case .q8_0: return .q8_0
            case .q4_0: return .q4_0
            case .q4_1: return .q4_1
            case .q5_0: return .q5_0
            case .q5_1: return .q5_1
            case .f16: return .f16
            case .f32: return .f32
            case .q2_k: return .q2_K
            case .q3_k, .q3_k_m: return .q3_K
            case .q4_k, .q4_k_s, .q4_k_m: return .q4_K
            case .q5_k, .q5_k_s, .q5_k_m: return .q5_K
            case .q6_k: return .q6_K
            }
        }

        var isMix: Bool { [.q3_k_m, .q4_k_s, .q4_k_m, .q5_k_s, .q5_k_m].contains(self) }

        /// `general.file_type` (llama.cpp's LLAMA_FTYPE_MOSTLY_*; a plain k-quant is its _S file type).
        var fileType: UInt32 {
            switch self {
            case .f32: return 0
            case .f16: return 1
            case .q4_0: return 2
            case .q4_1: return 3
            case .q8_0: return 7
            case .q5_0: return 8
            case .q5_1: return 9
            case .q2_k: return 10
            case .q3_k: return 11
            case .q3_k_m: return 12
            case .q4_k, .q4_k_s: return 14
            case .q4_k_m: return 15
            case .q5_k, .q5_k_s: return 16
            case .q5_k_m: return 17
            case .q6_k: return 18
            }
        }
    }
    public var format: Format
    /// safetensors: convert floating-point tensors to this dtype (default: keep each tensor's dtype).
    public var dtype: DType?
    /// gguf: the type of eligible matrices (2-D or more, rows a multiple of 32).
    public var ggufType: GGUFType
    /// gguf: the type of float tensors that cannot take `ggufType` (1-D, odd rows): f32 or f16.
    public var ggufFallback: GGUFType
    /// gguf: per-tensor types by glob on the GGUF (or input) name, as llama-quantize's --tensor-type.
    public var tensorTypes: [String: GGUFType] = [:]
    /// gguf: the output matrix's type (the tied embedding's when there is no output matrix).
    public var outputType: GGUFType?
    /// gguf: the token embedding's type.
    public var embeddingType: GGUFType?
    /// gguf: no mix rules, the default type on every matrix (llama-quantize --pure).
    public var pure = false
    /// gguf: false refuses, at submit, a matrix whose rows cannot take its k-quant type (instead of llama.cpp's fallback type).
    public var allowFallback = true
    /// gguf: weight each matrix's quantization error by an importance matrix (llama-quantize --imatrix).
    public var importance: Importance?
    /// gguf: GPTQ-style error feedback on the type's own grid for linear layers (needs calibrate; `GGUFErrorFeedback`).
    public var errorFeedback = false

    /// Where an importance matrix comes from.
    public enum Importance: Equatable, Sendable {
        /// `imatrix: true`: collected by the recipe's calibrate stage (written beside the model as imatrix.gguf and imatrix.dat).
        case calibration
        /// `imatrix: PATH`: a llama.cpp imatrix file (GGUF-based or legacy .dat).
        case file(String)
    }

    public init(format: Format, dtype: DType? = nil, ggufType: GGUFType = .q8_0, ggufFallback: GGUFType = .f32) {
        self.format = format
        self.dtype = dtype
        self.ggufType = ggufType
        self.ggufFallback = ggufFallback
    }

    /// The output file name of a GGUF export.
    public var ggufFileName: String { "model-\(ggufType.rawValue).gguf" }
}

/// `calibrate`: run the model (BERT) on `samples` windows of `seqLen` tokens of a text dataset,
/// layer by layer through the compressed model, so later stages see each linear layer's inputs.
public struct CalibrateStage: Equatable, Sendable {
    public var dataset: String
    public var samples: Int
    public var seqLen: Int
    /// How XᵀX is computed from the calibration inputs (`hessian: f32|bf16`; `GramPrecision`).
    public var hessian: GramPrecision

    public init(dataset: String, samples: Int = 16, seqLen: Int = 128, hessian: GramPrecision = .f32) {
        self.dataset = dataset
        self.samples = samples
        self.seqLen = seqLen
        self.hessian = hessian
    }
}

/// `distill`: layer-wise reconstruction. Each selected linear weight, with its zeros kept, is
/// fitted so that the student's layer output on its own inputs matches the teacher's output on
/// the teacher's inputs: min ‖X_s Ŵᵀ − X_t Wᵀ‖², by `iterations` steps of accelerated projected gradient.
public struct DistillStage: Equatable, Sendable {
    public var iterations: Int
    public var selector: TensorSelector

    public init(iterations: Int = 10, selector: TensorSelector) {
        self.iterations = iterations
        self.selector = selector
    }
}

/// `evaluate`: after the run, embed held-out windows (the last 20% of the dataset's tokens) with
/// the original and the compressed model and report their cosine similarity.
public struct EvaluateStage: Equatable, Sendable {
    /// nil: the calibrate stage's dataset.
    public var dataset: String?
    public var samples: Int
    public var seqLen: Int

    public init(dataset: String? = nil, samples: Int = 16, seqLen: Int = 128) {
        self.dataset = dataset
        self.samples = samples
        self.seqLen = seqLen
    }
}

extension Recipe {
    /// The input files the recipe reads besides the model (datasets, imatrix files).
    public var datasets: [String] {
        stages.compactMap {
            switch $0 {
            case .calibrate(let c): return c.dataset
            case .evaluate(let e): return e.dataset
            case .export(let e): if case .file(let f)? = e.importance { return f }; return nil
            default: return nil
            }
        }
    }

    /// The recipe with relative dataset (and imatrix file) paths made absolute against `base` (the submitter's directory).
    public func resolvingDatasets(against base: String) -> Recipe {
        func abs(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        return Recipe(stages: stages.map {
            switch $0 {
            case .calibrate(var c): c.dataset = abs(c.dataset); return .calibrate(c)
            case .evaluate(var e): e.dataset = e.dataset.map(abs); return .evaluate(e)
            case .export(var e):
                if case .file(let f)? = e.importance { e.importance = .file(abs(f)) }
                return .export(e)
            default: return $0
            }
        })
    }
}
