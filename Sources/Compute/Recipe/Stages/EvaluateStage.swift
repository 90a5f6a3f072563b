import Foundation

/// `evaluate`: after the run, compare the original and the compressed model on held-out windows
/// (the last 20% of the dataset's tokens): embedding cosine for encoders, perplexity, KL and top-1
/// agreement for decoders.
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

extension EvaluateStage: StageOptions {
    public static let keys = ["dataset", "samples", "seq_len"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        dataset = try r.string("dataset")
        if dataset?.isEmpty == true { throw RecipeError(r.at("dataset"), "must not be empty") }
        (samples, seqLen) = try Window.read(r)
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("dataset", ifPresent: dataset)
        try w.put("samples", samples)
        try w.put("seq_len", seqLen)
    }
}
