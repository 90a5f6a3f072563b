import Foundation

/// FLAP's choice of the FFN channels each decoder block keeps (An et al., 2024, "Fluctuation-based
/// Adaptive Structured Pruning for Large Language Models"), and the bias that compensates for the
/// removed ones. A channel's score is WIFV: the variance of down_proj's input channel over the
/// calibration tokens times the squared norm of its weight column.
public enum FlapSelection {
    /// One block's statistics of down_proj's input channels, over the calibration tokens.
    public struct Channels: Sendable {
        public var mean: [Double]
        public var variance: [Double]
        /// Σᵢ W[i, j]² of down_proj's column j.
        public var columnNormSq: [Double]
        /// Σᵢ |W[i, j]| of down_proj's column j (Wanda-sp).
        public var columnAbsSum: [Double] = []
        /// ‖up_proj[j]‖ + ‖gate_proj[j]‖ of channel j's rows (the weight-norm baseline).
        public var rowNorms: [Double] = []

        public init(mean: [Double], variance: [Double], columnNormSq: [Double]) {
            (self.mean, self.variance, self.columnNormSq) = (mean, variance, columnNormSq)
        }
    }

    /// One channel's score under `score`: WIFV (variance · ‖W[:, j]‖²), Wanda-sp (Σᵢ |W[i, j]| ·
    /// ‖X_j‖, ‖X_j‖² = mean square · tokens, the token count a common factor left out), or the
    /// data-free weight norm ‖W[:, j]‖ · (‖up[j]‖ + ‖gate[j]‖).
    static func raw(_ c: Channels, score: FlapPrune.Score) -> [Double] {
        switch score {
        case .fluctuation: return zip(c.variance, c.columnNormSq).map { $0 * $1 }
        case .wanda:
            return c.mean.indices.map { j in c.columnAbsSum[j] * (c.variance[j] + c.mean[j] * c.mean[j]).squareRoot() }
        case .weightNorm: return c.mean.indices.map { j in c.columnNormSq[j].squareRoot() * c.rowNorms[j] }
        }
    }

    /// Scores of one block, standardised within the block (mean 0, sample standard deviation 1).
    static func standardised(_ c: Channels, score: FlapPrune.Score = .fluctuation) -> [Double] {
        let s = raw(c, score: score)
        let n = Double(s.count)
        let mean = s.reduce(0, +) / n
        let sd = (s.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(1, n - 1)).squareRoot()
        return s.map { sd > 0 ? ($0 - mean) / sd : 0 }
    }

    /// The FFN channels each block keeps under `adaptive`, ascending: one threshold over every
    /// block's standardised scores keeps the total − `remove` best channels; each block's count is
    /// then rounded to a multiple of `multiple` (at least one multiple, at most its width). Ties go
    /// to the lower index, so the choice is deterministic.
    public static func keepAdaptive(
        _ blocks: [Channels], remove: Int, multiple: Int, score: FlapPrune.Score = .fluctuation
    ) -> [[Int]] {
        let scores = blocks.map { standardised($0, score: score) }
        let total = blocks.reduce(0) { $0 + $1.mean.count }
        var all = [(score: Double, block: Int, index: Int)]()
        all.reserveCapacity(total)
        for (b, s) in scores.enumerated() { for (j, v) in s.enumerated() { all.append((v, b, j)) } }
        all.sort { ($0.score, -$0.block, -$0.index) > ($1.score, -$1.block, -$1.index) }
        var counts = Array(repeating: 0, count: blocks.count)
        for e in all.prefix(max(0, total - remove)) { counts[e.block] += 1 }
        return blocks.indices.map { keep(scores[$0], count: counts[$0], multiple: multiple) }
    }

    /// The kept channels of one block under `uniform`: the same fraction of every block removed.
    static func keepUniform(
        _ block: Channels, fraction: Double, multiple: Int, score: FlapPrune.Score = .fluctuation
    ) -> [Int] {
        let count = Int((Double(block.mean.count) * (1 - fraction)).rounded())
        return keepBest(block, count: count, multiple: multiple, score: score)
    }

    /// The `count` best channels of one block (rounded to a multiple), ascending.
    static func keepBest(_ block: Channels, count: Int, multiple: Int, score: FlapPrune.Score = .fluctuation) -> [Int] {
        keep(standardised(block, score: score), count: count, multiple: multiple)
    }

    /// The `count` best-scored channels (rounded to a multiple, at least one multiple), ascending.
    private static func keep(_ scores: [Double], count: Int, multiple: Int) -> [Int] {
        let m = max(1, multiple)
        let rounded = Int((Double(count) / Double(m)).rounded()) * m
        let k = min(scores.count, max(min(m, scores.count), rounded))
        let order = scores.indices.sorted { (scores[$0], -$0) > (scores[$1], -$1) }
        return order.prefix(k).sorted()
    }

    /// down_proj's bias that keeps the block's expected output: Σ over removed channels j of
    /// W[:, j] · mean[j] (`weight` is rows × cols, row-major).
    public static func compensation(weight: [Float], rows: Int, cols: Int, mean: [Double], kept: [Int]) -> [Float] {
        var removed = [Bool](repeating: true, count: cols)
        for j in kept { removed[j] = false }
        return (0..<rows).map { i in
            var sum = 0.0
            for j in 0..<cols where removed[j] { sum += Double(weight[i * cols + j]) * mean[j] }
            return Float(sum)
        }
    }
}
