import Foundation

/// `calibrate`: run the model on `samples` windows of `seqLen` tokens of a text dataset, block by
/// block (layer by layer for BERT) through the compressed model, so later stages see each linear
/// layer's inputs.
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

extension CalibrateStage {
    /// The calibration windows: `samples` × `seqLen` token ids from the calibration part of the dataset.
    func windows(_ tokenizer: some TextTokenizer) throws -> [[Int32]] {
        try CalibrationText.batches(
            file: dataset, tokenizer: tokenizer, samples: samples, seqLen: seqLen, part: .calibration)
    }
}

extension CalibrateStage: StageOptions {
    public static let keys = ["dataset", "samples", "seq_len", "hessian"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        guard let d = try r.string("dataset"), !d.isEmpty else {
            throw RecipeError(r.at("dataset"), "is required: a UTF-8 text file under an allowed input root")
        }
        dataset = d
        (samples, seqLen) = try Window.read(r)
        hessian = try r.choice("hessian", GramPrecision.self) ?? .f32
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("dataset", dataset)
        try w.put("samples", samples)
        try w.put("seq_len", seqLen)
        try w.put("hessian", hessian.rawValue)
    }
}

/// `samples` windows of `seq_len` tokens, as calibrate and evaluate read them.
enum Window {
    static func read(_ r: OptionReader) throws -> (samples: Int, seqLen: Int) {
        let n = try OptionCheck.integer(try r.integer("samples") ?? 16, at: r.at("samples"), in: 1...4096)
        let l = try OptionCheck.integer(try r.integer("seq_len") ?? 128, at: r.at("seq_len"), in: 8...512)
        return (n, l)
    }
}
