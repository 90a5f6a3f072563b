import Foundation

/// A model architecture the recipe runner is given (BERT encoders today, decoder LLMs next): the
/// order in which a calibrated run computes units, the calibrated forward pass that hands each
/// linear layer its inputs, and evaluation. The runner has no branch on the architecture.
public protocol ModelFamily: Sendable {
    /// The model's widest activation (for the memory estimate of calibrated runs).
    var activationWidth: Int { get }

    /// Tensor names in the order the forward pass uses them (a subset of the model's tensors).
    func forwardOrder() throws -> [String]

    /// Runs the compressed model's forward pass over the calibration windows. `compute` runs the
    /// unit of a tensor (in `forwardOrder`) and returns its values as exported; linear layers get
    /// their calibration inputs. With `teacher`, the original model runs alongside so each linear
    /// layer also sees the original input (for `distill`).
    func calibrate(_ stage: CalibrateStage, teacher: ModelWeights?, threads: Int,
                   compute: (String, LinearCalibration?) throws -> [Float]) throws

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

/// What an `evaluate` stage measured: the original and the compressed model embed the same
/// held-out windows; cosine similarity of the sentence embeddings.
public struct Evaluation: Sendable, Codable, Equatable {
    enum CodingKeys: String, CodingKey {
        case dataset, samples, seqLen = "seq_len", meanCosine = "mean_cosine", minCosine = "min_cosine", seconds
    }
    public let dataset: String
    public let samples: Int
    public let seqLen: Int
    public let meanCosine: Double
    public let minCosine: Double
    public let seconds: Double
}
