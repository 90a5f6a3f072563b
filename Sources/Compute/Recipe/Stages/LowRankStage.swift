import Foundation

/// `lowrank`: truncated SVD of each selected matrix (viewed as [numel / last, last]), kept as the
/// dense product (same tensor, same shape) or written as two factors `T.lowrank_u` [rows, r] and
/// `T.lowrank_v` [r, last] with T ≈ lowrank_u · lowrank_v.
public struct LowRankStage: Equatable, Sendable {
    public enum Output: String, Sendable, CaseIterable { case dense, factors }
    public var rank: LowRank.Rank
    public var output: Output
    public var selector: TensorSelector

    public init(rank: LowRank.Rank, output: Output, selector: TensorSelector) {
        self.rank = rank
        self.output = output
        self.selector = selector
    }

    /// The factor tensors' names for tensor `name`.
    public static func factorNames(_ name: String) -> (u: String, v: String) {
        (name + ".lowrank_u", name + ".lowrank_v")
    }
}

extension LowRankStage: StageOptions {
    public static let keys = ["rank", "energy", "output", "targets", "ignore"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        switch (try r.integer("rank"), try r.number("energy")) {
        case (let k?, nil):
            guard k >= 1 else { throw RecipeError(r.at("rank"), "\(k) must be at least 1") }
            rank = .fixed(k)
        case (nil, let e?):
            rank = .energy(try OptionCheck.fraction(e, at: r.at("energy"), open: true, closed: true))
        case (nil, nil): throw RecipeError(r.path, "needs rank (an integer) or energy (a fraction of Σσ² to keep)")
        default: throw RecipeError(r.at("energy"), "give rank or energy, not both")
        }
        output = try r.choice("output", Output.self) ?? .dense
        selector = try TensorSelector(r)
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        switch rank {
        case .fixed(let k): try w.put("rank", k)
        case .energy(let e): try w.put("energy", e)
        }
        try w.put("output", output.rawValue)
        try selector.write(&w)
    }
}
