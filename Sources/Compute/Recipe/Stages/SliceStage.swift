import Foundation

/// `slice`: SliceGPT (Ashkboos et al., 2024) on a pre-norm Llama decoder. Every RMSNorm's weight is
/// folded into the linears that read it; the residual stream is rotated by the principal
/// components of its normalised calibration vectors and its `ratio` least-used dimensions are
/// deleted, so every matrix that reads or writes the stream gets smaller. `uniform`: one rotation
/// for the whole stream, no shortcut matrices, a plain Llama with a smaller `hidden_size` that
/// llama.cpp runs; otherwise one rotation per place a norm reads, with shortcut matrices between
/// them that only Squeeze's forward runs. Runs on the calibration windows before any unit (SlicePass).
public struct SliceStage: Equatable, Sendable {
    /// Fraction of the residual stream's dimensions deleted, in [0, 1) (0: rotation only).
    public var ratio: Double
    /// One rotation for the whole stream (false: one per place, with shortcut matrices between them).
    public var uniform = true
    /// The kept width is rounded to a multiple of this (32 fills ggml's quantization blocks).
    public var multiple = 32
    /// Refit each linear that reads the stream by least squares on the calibration vectors at its
    /// place (the dimensions deleted there are partly predicted from the kept ones).
    public var refit = true

    public init(ratio: Double) { self.ratio = ratio }
}

extension SliceStage: StageOptions {
    public static let keys = ["ratio", "uniform", "multiple", "refit"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        guard let ratio = try r.number("ratio") else { throw RecipeError(r.at("ratio"), "is required") }
        self.ratio = try OptionCheck.fraction(ratio, at: r.at("ratio"))
        uniform = try r.flag("uniform") ?? uniform
        multiple = try OptionCheck.integer(try r.integer("multiple") ?? multiple, at: r.at("multiple"), in: 1...4096)
        refit = try r.flag("refit") ?? refit
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("ratio", ratio)
        try w.put("uniform", uniform)
        try w.put("multiple", multiple)
        try w.put("refit", refit)
    }
}
