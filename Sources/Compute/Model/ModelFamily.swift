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
    /// layer also sees the original input (for `distill`).
    func calibrate(_ stage: CalibrateStage, teacher: ModelWeights?, threads: Int,
                   compute: (String, LinearCalibration?) throws -> [Float]) throws

    /// How the family's tensors appear in a GGUF export llama.cpp loads (nil: generic names and metadata).
    func ggufLayout() throws -> GGUFExportLayout?

    /// Measures the compressed model against the original on held-out windows of `dataset`.
    func evaluate(_ stage: EvaluateStage, dataset: String, original: ModelWeights, compressed: ModelWeights,
                  threads: Int) throws -> Evaluation
}

/// Calibration inputs of one linear layer, handed to its unit in a calibrated run.
public struct LinearCalibration {
    /// The student's (compressed model's) input to the layer, all calibration tokens.
    public let input: Activations
    /// The teacher's input to the same layer (when a `distill` stage needs it).
    public let teacherInput: Activations?
    /// XᵀX of `input`, computed once and shared by the layers that read the same input (Q, K and V;
    /// gate and up) and by every stage of a layer (SparseGPT or GPTQ, then distill).
    let gram: GramCache

    init(input: Activations, teacherInput: Activations?, gram: GramCache = GramCache()) {
        self.input = input
        self.teacherInput = teacherInput
        self.gram = gram
    }

    /// XᵀX of the student's input.
    func inputGram(threads: Int) -> [Float] { gram.value(input, threads: threads) }

    /// ‖X_s Ŵᵀ − X_t Wᵀ‖² / ‖X_t Wᵀ‖² on the first 512 calibration tokens, where W is the
    /// original weight and X_t the teacher's input (the student's own when there is no teacher).
    func outputError(original: UnsafeBufferPointer<Float>, compressed: UnsafeBufferPointer<Float>, out: Int, threads: Int) -> Double {
        let n = input.width
        let rows = min(input.rows, 512)
        let xs = Array(input.data[0..<(rows * n)])
        let xt = teacherInput.map { Array($0.data[0..<(rows * n)]) } ?? xs
        let ys = BLAS.gemmRows(m: rows, n: out, k: n, a: xs, b: Array(compressed), bTransposed: true, threads: threads)
        let yt = BLAS.gemmRows(m: rows, n: out, k: n, a: xt, b: Array(original), bTransposed: true, threads: threads)
        var num = 0.0, den = 0.0
        for i in ys.indices {
            let d = Double(ys[i]) - Double(yt[i])
            num += d * d
            den += Double(yt[i]) * Double(yt[i])
        }
        return den > 0 ? num / den : 0
    }
}

/// A Gram matrix computed on first use.
final class GramCache: @unchecked Sendable {
    private var cached: [Float]?

    func value(_ x: Activations, threads: Int) -> [Float] {
        if let c = cached { return c }
        let g = BLAS.gram(x.data, rows: x.rows, n: x.width, threads: threads)
        cached = g
        return g
    }
}

/// What an `evaluate` stage measured on held-out windows. Encoders: the cosine of the original's
/// and the compressed model's sentence embeddings. Decoders: perplexity of both models, the mean
/// KL divergence of the compressed model's next-token distribution from the original's, and how
/// often their top-1 tokens agree.
public struct Evaluation: Sendable, Codable, Equatable {
    enum CodingKeys: String, CodingKey {
        case dataset, samples, seqLen = "seq_len", meanCosine = "mean_cosine", minCosine = "min_cosine", seconds
        case perplexity, originalPerplexity = "original_perplexity", meanKL = "mean_kl", top1Agreement = "top1_agreement"
        case scoredTokens = "scored_tokens"
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
            return String(format: "evaluate: %d × %d held-out tokens of %@: perplexity %.3f (original %.3f, ×%.3f), mean KL %.5f, top-1 agreement %.4f (%.1fs)",
                          samples, seqLen, dataset, p, o, p / o, kl, t, seconds)
        }
        return String(format: "evaluate: %d held-out windows of %d tokens of %@: embedding cosine mean %.5f, min %.5f (%.1fs)",
                      samples, seqLen, dataset, meanCosine ?? .nan, minCosine ?? .nan, seconds)
    }
}
