import Foundation

/// `prune: {method: flap}`: FLAP's fluctuation-based structured pruning of every decoder block's
/// FFN channels (and with `heads`, attention heads), removing them from the tensors (the model gets
/// smaller), with the removed channels' mean contribution added to down_proj's (o_proj's) bias.
public struct FlapPrune: PruneMethod {
    public static let name = "flap"
    public static let keys = ["ratio", "structure", "score", "multiple", "compensate", "refit", "heads"]
    public static let calibrationReason: String? = "it scores FFN channels by their calibration inputs' fluctuation"
    public static let isStructural = true

    /// How widths are spread over the blocks.
    public enum Structure: String, CaseIterable, Sendable {
        /// Scores standardised within each block, one threshold over all blocks: each block keeps its own width.
        case adaptive
        /// The same fraction of channels removed in every block.
        case uniform
    }

    /// How a channel is scored: FLAP's own, or a baseline to compare it with.
    public enum Score: String, CaseIterable, Sendable {
        /// WIFV: the variance of down_proj's input channel over the calibration tokens × its weight
        /// column's ‖·‖².
        case fluctuation
        /// Wanda-sp: Σᵢ |W[i, j]| of down_proj's column × the input channel's norm.
        case wanda
        /// No data: ‖down_proj[:, j]‖ · (‖up_proj[j]‖ + ‖gate_proj[j]‖).
        case weightNorm = "weight-norm"
    }

    /// Which attention heads go too, in units that keep grouped-query attention valid.
    public enum Heads: String, CaseIterable, Sendable {
        /// FFN channels only.
        case none
        /// The same number of query heads from every KV group (every KV head stays).
        case query
        /// Whole KV groups: a KV head with all its query heads.
        case group
    }

    /// Fraction of the decoder blocks' parameters removed, in (0, 1).
    public var ratio: Double
    public var structure: Structure
    public var score = Score.fluctuation
    /// Every block keeps a multiple of this many FFN channels (32 fills ggml's blocks; 256 a k-quant's).
    public var multiple: Int
    /// Add the removed channels' mean contribution to down_proj's bias.
    public var compensate: Bool
    /// Refit down_proj's kept columns and bias by least squares on the calibration inputs
    /// (`FlapRefit`), so the kept channels also carry what the removed ones correlate with.
    public var refit: Bool
    /// Attention heads pruned with the FFN channels (`uniform` only: each block removes its share of
    /// attention parameters in whole units, its FFN the rest).
    public var heads = Heads.none

    public init(
        ratio: Double, structure: Structure = .uniform, multiple: Int = 32, compensate: Bool = true,
        refit: Bool = true
    ) {
        self.ratio = ratio
        self.structure = structure
        self.multiple = multiple
        self.compensate = compensate
        self.refit = refit
    }

    public init(from decoder: Decoder) throws {
        let r = try Self.reader(decoder)
        for k in ["targets", "ignore"] where r.has(k) {
            throw RecipeError(r.at(k), "does not apply to method flap, which prunes every decoder block's FFN")
        }
        guard let ratio = try r.number("ratio") else { throw RecipeError(r.at("ratio"), "is required for method flap") }
        self.ratio = try OptionCheck.fraction(ratio, at: r.at("ratio"), open: true)
        structure = try r.choice("structure", Structure.self) ?? .uniform
        score = try r.choice("score", Score.self) ?? .fluctuation
        multiple = try OptionCheck.integer(try r.integer("multiple") ?? 32, at: r.at("multiple"), in: 1...4096)
        compensate = try r.flag("compensate") ?? true
        refit = try r.flag("refit") ?? true
        heads = try r.choice("heads", Heads.self) ?? .none
        if heads != .none && structure == .adaptive {
            throw RecipeError(
                r.at("heads"), "\(heads.rawValue) needs structure: uniform (adaptive widths are FFN only)")
        }
        if refit && !compensate {
            let at = r.has("refit") ? r.at("refit") : r.at("compensate")
            throw RecipeError(at, "false needs refit: false too (the refit writes down_proj's bias)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("ratio", ratio)
        try w.put("structure", structure.rawValue)
        // Written only for a baseline score, so FLAP recipes keep their canonical JSON.
        if score != .fluctuation { try w.put("score", score.rawValue) }
        try w.put("multiple", multiple)
        try w.put("compensate", compensate)
        try w.put("refit", refit)
        // Written only when heads are pruned, so FFN-only recipes keep their canonical JSON.
        if heads != .none { try w.put("heads", heads.rawValue) }
    }
}
