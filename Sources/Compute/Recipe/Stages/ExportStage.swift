import Foundation

/// `export`: an output file format.
public struct ExportStage: Equatable, Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case safetensors, gguf, compressed
        /// A Hugging Face directory in compressed-tensors' pack-quantized format (vLLM, transformers).
        case compressedTensors = "compressed-tensors"
    }
    /// GGUF tensor types an export can ask for.
    public enum GGUFType: String, Sendable, CaseIterable {
        case q8_0, q4_0, q4_1, q5_0, q5_1, f16, f32
        /// k-quants, one type on every eligible matrix.
        case q2_k, q3_k, q4_k, q5_k, q6_k
        /// llama-quantize's mixes: more bits where llama.cpp's rules put them (`GGUFMix`).
        case q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m
        /// ggml's non-linear 4-bit types; as a file type, llama-quantize's IQ4_NL / IQ4_XS mix.
        case iq4_nl, iq4_xs

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
            case .iq4_nl: return .iq4_nl
            case .iq4_xs: return .iq4_xs
            }
        }

        /// Whether llama-quantize's rules give some tensors other types (`pure` turns them off).
        var isMix: Bool { [.q3_k_m, .q4_k_s, .q4_k_m, .q5_k_s, .q5_k_m, .iq4_nl, .iq4_xs].contains(self) }

        /// Whether it names one ggml type (what `tensor_types`, `output_type` and `embedding_type` take).
        var isTensorType: Bool { !isMix || self == .iq4_nl || self == .iq4_xs }

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
            case .iq4_nl: return 25
            case .iq4_xs: return 30
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
    /// gguf: false refuses, at submit, a matrix whose rows cannot take its k-quant type (instead of llama.cpp's
    /// fallback type).
    public var allowFallback = true
    /// gguf: weight each matrix's quantization error by an importance matrix (llama-quantize --imatrix).
    public var importance: Importance?
    /// gguf: GPTQ-style error feedback on the type's own grid for linear layers (needs calibrate; `GGUFErrorFeedback`).
    public var errorFeedback = false
    /// gguf: refine each block type's codes by learned rounding on its own grid (needs `calibrate`).
    public var learnedRounding: FlexRound.Options?
    /// gguf: the whole file's size limit, instead of `type`: each matrix's type is chosen to fit it (`GGUFBudget`).
    public var budget: SizeBudget?

    /// A GGUF file's size limit: bytes, or bits per weight over every tensor's values.
    public enum SizeBudget: Equatable, Sendable {
        case bytes(Int64)
        case bitsPerWeight(Double)

        /// The byte limit for a file of `parameters` values.
        func bytes(parameters: Int) -> Int64 {
            switch self {
            case .bytes(let b): return b
            case .bitsPerWeight(let bpw): return Int64((bpw * Double(parameters) / 8).rounded(.down))
            }
        }
    }

    /// Where an importance matrix comes from.
    public enum Importance: Equatable, Sendable {
        /// `imatrix: true`: collected by the recipe's calibrate stage (written beside the model as imatrix.gguf and
        /// imatrix.dat).
        case calibration
        /// `imatrix: PATH`: a llama.cpp imatrix file (GGUF-based or legacy .dat).
        case file(String)
        /// `imatrix: {job: KEY}`: the imatrix.gguf that the job with idempotency key KEY published (a
        /// dependency of this job; the worker resolves it to a file before the recipe runs).
        case job(String)

        /// "a file's" or "a job's" for a matrix collected outside this recipe (on the unchanged
        /// model's inputs), nil for one the recipe collects itself.
        public var collectedElsewhere: String? {
            switch self {
            case .calibration: return nil
            case .file: return "a file's"
            case .job: return "a job's"
            }
        }
    }

    public init(format: Format, dtype: DType? = nil, ggufType: GGUFType = .q8_0, ggufFallback: GGUFType = .f32) {
        self.format = format
        self.dtype = dtype
        self.ggufType = ggufType
        self.ggufFallback = ggufFallback
    }

    /// The output file name of a GGUF export.
    public var ggufFileName: String {
        switch budget {
        case .bytes(let b)?: return "model-budget-\(b).gguf"
        case .bitsPerWeight(let bpw)?: return "model-bpw-\(bpw).gguf"
        case nil: return "model-\(ggufType.rawValue).gguf"
        }
    }
}
