/// Magnitude pruning kernels over F32 buffers.
///
/// Exact: zeroes exactly `k` elements with the smallest |x| (NaN counts as the largest
/// magnitude, so it is pruned only after every number; -0 and +0 are equal). Ties at the
/// threshold are broken by position: earlier elements are pruned first. The threshold comes from
/// the two-pass radix histogram of `GlobalMagnitude` on the IEEE bits of |x| — no sort — and the
/// result does not depend on `threads`.
public enum MagnitudePruning {
    static let chunk = 1 << 16

    @inline(__always)
    static func key(_ x: Float) -> UInt32 { x.isNaN ? UInt32.max : (x.bitPattern & 0x7FFF_FFFF) }

    /// The IEEE bits of |x|: equal to `key` for every non-NaN x, and above `infinityKey` for NaN, so
    /// comparisons against a threshold at or below `infinityKey` need no NaN test (and vectorize).
    @inline(__always)
    static func absBits(_ x: Float) -> UInt32 { x.bitPattern & 0x7FFF_FFFF }

    /// The key of ±infinity, the largest key of a number.
    static let infinityKey: UInt32 = 0x7F80_0000

    /// Number of elements a sparsity fraction prunes from `numel`: round half away from zero.
    public static func pruneCount(sparsity: Double, numel: Int) -> Int {
        min(numel, max(0, Int((sparsity * Double(numel)).rounded(.toNearestOrAwayFromZero))))
    }

    /// Zeroes exactly `k` smallest-magnitude elements of `x` in place (see the type's note on ties).
    public static func prune(_ x: UnsafeMutableBufferPointer<Float>, k: Int, threads: Int) {
        let n = x.count
        if k <= 0 || n == 0 { return }
        if k >= n {
            for i in 0..<n { x[i] = 0 }
            return
        }
        // One tensor, no cap: the global planner's threshold and tie split are exactly this selection.
        let src = GlobalMagnitude.Source(numel: n) { range, dst in
            dst.baseAddress!.update(from: x.baseAddress! + range.lowerBound, count: range.count)
        }
        let plan = GlobalMagnitude.plans([src], k: k, caps: [n], threads: threads)[0]
        GlobalMagnitude.apply(plan, to: x, threads: threads)
    }

    /// N:M sparsity: in every group of `m` consecutive elements (rows must be a multiple of `m`),
    /// zeroes the `m - n` smallest magnitudes; among equals the earlier element is pruned first.
    public static func pruneNM(_ x: UnsafeMutableBufferPointer<Float>, n: Int, m: Int, threads: Int) {
        let groups = x.count / m
        let per = max(1, chunk / m)
        let ranges = Parallel.chunks(groups, chunk: per)
        Parallel.forEach(ranges.count, threads: threads) { r in
            var keys = [UInt32](repeating: 0, count: m)
            var taken = [Bool](repeating: false, count: m)
            for g in ranges[r] {
                let base = g * m
                for j in 0..<m { keys[j] = key(x[base + j]) }
                // Prune m-n elements: repeatedly take the smallest key, first index wins ties.
                for j in 0..<m { taken[j] = false }
                for _ in 0..<(m - n) {
                    var best = -1
                    for j in 0..<m where !taken[j] {
                        if best == -1 || keys[j] < keys[best] { best = j }
                    }
                    taken[best] = true
                    x[base + best] = 0
                }
            }
        }
    }
}
