/// Magnitude pruning kernels over F32 buffers.
///
/// Exact: zeroes exactly `k` elements with the smallest |x| (NaN counts as the largest
/// magnitude, so it is never pruned; -0 and +0 are equal). Ties at the threshold are broken by
/// position: earlier elements are pruned first. The threshold is found by a two-pass radix
/// histogram on the IEEE bits of |x| — no sort — and the result does not depend on `threads`.
public enum MagnitudePruning {
    static let chunk = 1 << 16

    @inline(__always)
    static func key(_ x: Float) -> UInt32 { x.isNaN ? UInt32.max : (x.bitPattern & 0x7FFF_FFFF) }

    /// Number of elements a sparsity fraction prunes from `numel`: round half away from zero.
    public static func pruneCount(sparsity: Double, numel: Int) -> Int {
        min(numel, max(0, Int((sparsity * Double(numel)).rounded(.toNearestOrAwayFromZero))))
    }

    /// The key of the k-th smallest magnitude (1-based k) and how many keys are strictly below it.
    static func threshold(_ x: UnsafeBufferPointer<Float>, k: Int, threads: Int) -> (key: UInt32, below: Int) {
        let ranges = Parallel.chunks(x.count, chunk: chunk)
        // Pass 1: histogram of the high 16 bits.
        var hist = histogram(x, ranges: ranges, threads: threads, bins: 1 << 16) { key($0) >> 16 }
        var acc = 0, hi = 0
        for b in 0..<(1 << 16) {
            if acc + hist[b] >= k { hi = b; break }
            acc += hist[b]
        }
        let belowHi = acc
        // Pass 2: histogram of the low 16 bits within that bucket.
        let hiKey = UInt32(hi)
        hist = histogram(x, ranges: ranges, threads: threads, bins: 1 << 16) { v in
            let kk = key(v)
            return (kk >> 16) == hiKey ? (kk & 0xFFFF) : UInt32.max
        }
        acc = belowHi
        var lo = 0
        for b in 0..<(1 << 16) {
            if acc + hist[b] >= k { lo = b; break }
            acc += hist[b]
        }
        return (hiKey << 16 | UInt32(lo), acc)
    }

    /// Per-chunk histograms summed in chunk order (integer counts: exact for any thread count).
    static func histogram(_ x: UnsafeBufferPointer<Float>, ranges: [Range<Int>], threads: Int, bins: Int,
                          _ bin: (Float) -> UInt32) -> [Int] {
        let t = max(1, min(threads, ranges.count))
        var perThread = [[Int]](repeating: [Int](repeating: 0, count: bins), count: t)
        perThread.withUnsafeMutableBufferPointer { pt in
            Parallel.forEach(t, threads: t) { tid in
                pt[tid].withUnsafeMutableBufferPointer { h in
                    var r = tid
                    while r < ranges.count {
                        for i in ranges[r] {
                            let b = bin(x[i])
                            if b != UInt32.max { h[Int(b)] += 1 }
                        }
                        r += t
                    }
                }
            }
        }
        var total = perThread[0]
        for p in perThread.dropFirst() { for i in 0..<bins { total[i] += p[i] } }
        return total
    }

    /// Zeroes exactly `k` smallest-magnitude elements of `x` in place (see the type's note on ties).
    public static func prune(_ x: UnsafeMutableBufferPointer<Float>, k: Int, threads: Int) {
        let n = x.count
        if k <= 0 || n == 0 { return }
        if k >= n {
            for i in 0..<n { x[i] = 0 }
            return
        }
        let (t, below) = threshold(UnsafeBufferPointer(x), k: k, threads: threads)
        let tieQuota = k - below
        let ranges = Parallel.chunks(n, chunk: chunk)
        // Count ties per chunk, then give each chunk its share of the quota in index order.
        var ties = [Int](repeating: 0, count: ranges.count)
        ties.withUnsafeMutableBufferPointer { tb in
            Parallel.forEach(ranges.count, threads: threads) { r in
                var c = 0
                for i in ranges[r] where key(x[i]) == t { c += 1 }
                tb[r] = c
            }
        }
        var quota = [Int](repeating: 0, count: ranges.count)
        var left = tieQuota
        for r in 0..<ranges.count {
            quota[r] = min(left, ties[r])
            left -= quota[r]
        }
        Parallel.forEach(ranges.count, threads: threads) { r in
            var q = quota[r]
            for i in ranges[r] {
                let kk = key(x[i])
                if kk < t {
                    x[i] = 0
                } else if kk == t && q > 0 {
                    x[i] = 0
                    q -= 1
                }
            }
        }
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
