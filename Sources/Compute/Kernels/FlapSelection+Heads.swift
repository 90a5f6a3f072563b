import Foundation

/// FLAP on attention heads: a head's score is the sum of its o_proj input channels' scores, and
/// heads go in units that keep grouped-query attention valid (`FlapPrune.Heads`).
extension FlapSelection {
    /// One block's share of a uniform ratio: attention units and FFN channels to remove.
    public struct UniformShare: Sendable, Equatable {
        /// Attention units removed (query heads per KV group, or KV groups).
        public var units: Int
        /// The most units the block can give while keeping one.
        public var maxUnits: Int
        /// FFN channels removed, before rounding the width to a multiple.
        public var channels: Int
    }

    /// Parameters of one attention unit of block i — a query head from every KV group (its q_proj
    /// rows and o_proj columns), or a KV group (its query heads, plus its k_proj and v_proj rows) —
    /// and how many units the block can give while keeping one.
    static func units(_ c: LlamaConfig, layer i: Int, heads: FlapPrune.Heads) -> (parameters: Int, most: Int) {
        let s = c.shape(i)
        let perGroup = s.heads / s.kvHeads
        switch heads {
        case .none: return (0, 0)
        case .query: return (2 * s.kvHeads * c.headDim * c.hidden, perGroup - 1)
        case .group: return ((2 * perGroup + 2) * c.headDim * c.hidden, s.kvHeads - 1)
        }
    }

    /// Block i's cut when `ratio` of its linear parameters go: round(ratio × attention parameters ÷
    /// a unit's) whole units from the attention, the rest of the share as FFN channels (3 × hidden each).
    public static func uniformShare(ratio: Double, config c: LlamaConfig, layer i: Int, heads: FlapPrune.Heads)
        -> UniformShare
    {
        let attention = c.hidden * (2 * c.qWidth(i) + 2 * c.kvWidth(i))
        let block = attention + 3 * c.hidden * c.intermediate(i)
        let (unit, maxUnits) = units(c, layer: i, heads: heads)
        let units = unit == 0 ? 0 : Int((ratio * Double(attention) / Double(unit)).rounded())
        let rest = ratio * Double(block) - Double(min(units, maxUnits) * unit)
        return UniformShare(
            units: units, maxUnits: maxUnits, channels: max(0, Int((rest / Double(3 * c.hidden)).rounded())))
    }

    /// The query heads and KV heads a block keeps (ascending) after removing `units`: per KV group
    /// its `units` lowest-scored query heads (`query`), or the `units` lowest-scored KV groups with
    /// their query heads (`group`). A head's score is the sum of its `headDim` o_proj input
    /// channels' raw scores; a group's, the sum of its heads'. Ties go to the lower index.
    public static func keepHeads(
        _ context: Channels, units: Int, heads: Int, kvHeads: Int, headDim: Int, mode: FlapPrune.Heads,
        score: FlapPrune.Score = .fluctuation
    ) -> (query: [Int], kv: [Int]) {
        let raw = raw(context, score: score)
        let head = (0..<heads).map { h in raw[(h * headDim)..<((h + 1) * headDim)].reduce(0, +) }
        let perGroup = heads / kvHeads
        func best(_ items: [Int], _ s: (Int) -> Double, keep: Int) -> [Int] {
            items.sorted { (s($0), -$0) > (s($1), -$1) }.prefix(max(1, keep)).sorted()
        }
        switch mode {
        case .none:
            return (Array(0..<heads), Array(0..<kvHeads))
        case .query:
            let kept = (0..<kvHeads).flatMap { g in
                best(Array((g * perGroup)..<((g + 1) * perGroup)), { head[$0] }, keep: perGroup - units)
            }
            return (kept, Array(0..<kvHeads))
        case .group:
            let groupScore = { (g: Int) in head[(g * perGroup)..<((g + 1) * perGroup)].reduce(0, +) }
            let groups = best(Array(0..<kvHeads), groupScore, keep: kvHeads - units)
            return (groups.flatMap { g in Array((g * perGroup)..<((g + 1) * perGroup)) }, groups)
        }
    }

    /// The query channels (o_proj's input columns) of the kept heads, ascending.
    static func channels(ofHeads heads: [Int], headDim: Int) -> [Int] {
        heads.flatMap { h in Array((h * headDim)..<((h + 1) * headDim)) }
    }
}
