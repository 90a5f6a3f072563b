import Foundation

/// `evaluate`: after the run, compare the original and the compressed model on held-out windows
/// (the last 20% of the dataset's tokens): embedding cosine for encoders, perplexity, KL and top-1
/// agreement for decoders.
public struct EvaluateStage: Equatable, Sendable {
    /// nil: the calibrate stage's dataset.
    public var dataset: String?
    public var samples: Int
    public var seqLen: Int
    /// Decoders: read the original model's logits from this reference instead of running it.
    public var reference: Reference?
    /// Decoders: also write the original model's logits on the scored positions (`eval-reference.bin`).
    public var saveReference = false

    /// Where an evaluation's reference logits come from.
    public enum Reference: Equatable, Sendable {
        /// `reference: PATH`: an `eval-reference.bin` written by an earlier run.
        case file(String)
        /// `reference: {job: KEY}`: the one the job with idempotency key KEY publishes (a dependency).
        case job(String)
    }

    public init(dataset: String? = nil, samples: Int = 16, seqLen: Int = 128) {
        self.dataset = dataset
        self.samples = samples
        self.seqLen = seqLen
    }
}

extension EvaluateStage: StageOptions {
    public static let keys = ["dataset", "samples", "seq_len", "reference", "save_reference"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        dataset = try r.string("dataset")
        if dataset?.isEmpty == true { throw RecipeError(r.at("dataset"), "must not be empty") }
        (samples, seqLen) = try Window.read(r)
        switch try r.nested("reference", FlagOrText.self, "must be an eval-reference.bin path or {job: KEY}") {
        case .text(let p)?:
            guard !p.isEmpty else { throw RecipeError(r.at("reference"), "must not be empty") }
            reference = .file(try OptionReader.noNUL(p, at: r.at("reference")))
        case .job(let k)?:
            guard !k.isEmpty else { throw RecipeError(r.at("reference.job"), "must not be empty (a job's key)") }
            reference = .job(try OptionReader.noNUL(k, at: r.at("reference.job")))
        case .flag?: throw RecipeError(r.at("reference"), "must be an eval-reference.bin path or {job: KEY}")
        case nil: break
        }
        saveReference = try r.flag("save_reference") ?? false
        if saveReference && reference != nil {
            throw RecipeError(r.at("save_reference"), "a reference read from elsewhere is not saved again")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("dataset", ifPresent: dataset)
        try w.put("samples", samples)
        try w.put("seq_len", seqLen)
        // Written only when set, so recipes without them keep their canonical JSON.
        switch reference {
        case .file(let f)?: try w.put("reference", f)
        case .job(let k)?: try w.put("reference", ["job": k])
        case nil: break
        }
        if saveReference { try w.put("save_reference", true) }
    }
}
