import Foundation

/// `awq`: activation-aware scaling before quantization. For each group of linears that read one
/// input (q/k/v after the attention norm, o after v where heads have their own v, gate/up after the
/// FFN norm, down after up), the per-channel scale s = mean|x|^α (α on `grid` points in [0, 1))
/// that minimises the group's output error after quantization on the recipe's own grid is
/// multiplied into the linears' columns and divided out of the norm (or v's or up's rows), so the
/// model stays a plain Llama; then, with `clip`, each block's clipping range is searched the same
/// way. Runs on the calibration windows block by block before any unit (AWQPass).
public struct AWQStage: Equatable, Sendable {
    /// Points of the α grid (α = i / grid, i < grid).
    public var grid = 20
    /// Search a clipping range per block after scaling (not for q and k, as AWQ).
    public var clip = true
    /// s = mean|x|^α / mean|w|^(1−α) (AutoAWQ's duo scaling) instead of mean|x|^α: the default, as
    /// in AutoAWQ and llm-compressor; on SmolLM2 Q4_0 1.169× dense against 1.196× (docs/QUALITY.md).
    public var duoScaling = true

    public init() {}
}

extension AWQStage: StageOptions {
    public static let keys = ["grid", "clip", "duo_scaling"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        grid = try OptionCheck.integer(try r.integer("grid") ?? grid, at: r.at("grid"), in: 1...100)
        clip = try r.flag("clip") ?? clip
        duoScaling = try r.flag("duo_scaling") ?? duoScaling
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("grid", grid)
        try w.put("clip", clip)
        try w.put("duo_scaling", duoScaling)
    }
}
