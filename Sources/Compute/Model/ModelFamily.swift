import Foundation

/// A model architecture the recipe runner is given (BERT encoders today, decoder LLMs next): the
/// order in which a calibrated run computes units, the calibrated forward pass that hands each
/// linear layer its inputs, and evaluation. The runner has no branch on the architecture.
public protocol ModelFamily: Sendable {
    /// Bytes a run of `recipe` needs beyond one tensor's working copy: calibration activations,
    /// Hessians, the teacher's tensors, evaluation (0 when the recipe neither calibrates nor evaluates).
    func workingMemory(_ recipe: Recipe) -> Int64

    /// Tensor names in the order the forward pass uses them (a subset of the model's tensors).
    func forwardOrder() throws -> [String]

    /// Runs the compressed model's forward pass over the calibration windows. `compute` runs the
    /// unit of a tensor (in `forwardOrder`) and returns its values as exported; linear layers get
    /// their calibration inputs. With `teacher`, the original model runs alongside so each linear
    /// layer also sees the original input (for `distill`). `needs` says which statistics of the
    /// inputs the recipe's stages read (a family that streams its inputs collects only those).
    func calibrate(
        _ stage: CalibrateStage, needs: CalibrationNeeds, teacher: ModelWeights?, threads: Int,
        compute: (String, LinearCalibration?) throws -> [Float]) throws

    /// How the family's tensors appear in a GGUF export llama.cpp loads (nil: generic names and metadata).
    func ggufLayout() throws -> GGUFExportLayout?

    /// The linear layers' weights: the tensors calibration hands their inputs (and an importance matrix covers).
    func linearWeights() -> Set<String>

    /// Measures the compressed model against the original on held-out windows of `dataset`.
    func evaluate(
        _ stage: EvaluateStage, dataset: String, original: ModelWeights, compressed: ModelWeights,
        threads: Int
    ) throws -> Evaluation
}

/// What an `evaluate` stage measured on held-out windows. Encoders: the cosine of the original's
/// and the compressed model's sentence embeddings. Decoders: perplexity of both models, the mean
/// KL divergence of the compressed model's next-token distribution from the original's, and how
/// often their top-1 tokens agree.
public struct Evaluation: Sendable, Codable, Equatable {
    enum CodingKeys: String, CodingKey {
        case dataset, samples, seqLen = "seq_len", meanCosine = "mean_cosine", minCosine = "min_cosine", seconds
        case perplexity, originalPerplexity = "original_perplexity", meanKL = "mean_kl", top1Agreement =
            "top1_agreement"
        case scoredTokens = "scored_tokens"
        case modelBytes = "model_bytes"
    }
    public let dataset: String
    public let samples: Int
    public let seqLen: Int
    public var meanCosine: Double? = nil
    public var minCosine: Double? = nil
    public var perplexity: Double? = nil
    public var originalPerplexity: Double? = nil
    public var meanKL: Double? = nil
    public var top1Agreement: Double? = nil
    public var scoredTokens: Int? = nil
    /// Bytes of the file evaluated (the model a user downloads: a GGUF, or the dense safetensors).
    public var modelBytes: Int64? = nil
    public let seconds: Double

    init(dataset: String, samples: Int, seqLen: Int, meanCosine: Double, minCosine: Double, seconds: Double) {
        (self.dataset, self.samples, self.seqLen, self.seconds) = (dataset, samples, seqLen, seconds)
        (self.meanCosine, self.minCosine) = (meanCosine, minCosine)
    }

    init(dataset: String, samples: Int, seqLen: Int, decoder s: NextTokenStats, seconds: Double) {
        (self.dataset, self.samples, self.seqLen, self.seconds) = (dataset, samples, seqLen, seconds)
        let n = Double(max(s.tokens, 1))
        perplexity = Foundation.exp(s.nllCompressed / n)
        originalPerplexity = Foundation.exp(s.nllOriginal / n)
        meanKL = s.kl / n
        top1Agreement = Double(s.agree) / n
        scoredTokens = s.tokens
    }

    /// One line for the CLI.
    public var summary: String {
        if let p = perplexity, let o = originalPerplexity, let kl = meanKL, let t = top1Agreement {
            return String(
                format:
                    "evaluate: %d × %d held-out tokens of %@: perplexity %.3f (original %.3f, ×%.3f), mean KL %.5f, "
                    + "top-1 agreement %.4f (%.1fs)",
                samples, seqLen, dataset, p, o, p / o, kl, t, seconds)
        }
        return String(
            format: "evaluate: %d held-out windows of %d tokens of %@: embedding cosine mean %.5f, min %.5f (%.1fs)",
            samples, seqLen, dataset, meanCosine ?? .nan, minCosine ?? .nan, seconds)
    }
}
