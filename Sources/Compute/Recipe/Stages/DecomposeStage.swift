import Foundation

/// `decompose`: BitStack — each selected linear weight becomes a stack of residual blocks (sign bits
/// and a low-rank magnitude, `BitStack`), any prefix of which is a model: the `compressed` export
/// stores the whole stack once and `--size` chooses the prefix when it is read back. Needs an earlier
/// `calibrate` (the scaling and the blocks' order use the inputs' mean squares). The recipe continues
/// with the whole stack's decoded values.
public struct DecomposeStage: Equatable, Sendable {
    /// Residual blocks per matrix.
    public var blocks = 16
    /// Rank of each block's magnitude approximation.
    public var rank = 8
    public var selector: TensorSelector

    public init(selector: TensorSelector) { self.selector = selector }

    /// The compressed export's description of a decomposed tensor (its entries and decoding).
    var asCompression: QuantizeStage {
        QuantizeStage(withoutGrid: .bitstack(blocks: blocks, rank: rank), selector: selector)
    }
}

extension DecomposeStage: StageOptions {
    public static let keys = ["method", "blocks", "rank", "targets", "ignore"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        let method = try r.string("method") ?? "bitstack"
        guard method == "bitstack" else { throw RecipeError(r.at("method"), "\(method) is not one of bitstack") }
        blocks = try OptionCheck.integer(try r.integer("blocks") ?? blocks, at: r.at("blocks"), in: 1...64)
        rank = try OptionCheck.integer(try r.integer("rank") ?? rank, at: r.at("rank"), in: 1...256)
        selector = try TensorSelector(r)
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("method", "bitstack")
        try w.put("blocks", blocks)
        try w.put("rank", rank)
        try selector.write(&w)
    }
}
