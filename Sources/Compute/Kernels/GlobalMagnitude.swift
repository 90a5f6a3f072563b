/// Global magnitude pruning: the `k` smallest |w| across many tensors, with each tensor keeping
/// at least `minKeep` of its values (its cap on pruned values is numel − ceil(minKeep·numel)).
///
/// Exact and sort-free: per-tensor radix histograms of the IEEE bits of |w| (high 16 bits, then
/// low 16 within the crossing bucket) find the smallest key T with Σᵢ min(capᵢ, #{|w| ≤ T}ᵢ) ≥ k.
/// Every tensor prunes all its values below T (up to its cap), then ties at T are given out in
/// tensor order, earlier tensors first, until k is reached. The result is the number to prune in
/// each tensor; `MagnitudePruning.prune` then zeroes exactly that many (ties by position).
public enum GlobalMagnitude {
    /// A source of one tensor's values, decoded chunk by chunk into the buffer it is handed.
    public struct Source {
        public let numel: Int
        public let fill: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void

        public init(numel: Int, fill: @escaping (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void) {
            self.numel = numel
            self.fill = fill
        }
    }

    /// What each tensor prunes: `count` values; when `threshold` is set, exactly those with key below
    /// it plus the first `count − below` ties (a tensor at its cap has no threshold: it selects its own).
    public struct Plan: Equatable, Sendable {
        public let count: Int
        public let threshold: UInt32?
    }

    /// Per-tensor plans for a global sparsity with a per-tensor minimum density.
    public static func plans(_ sources: [Source], sparsity: Double, minKeep: Double, threads: Int) -> [Plan] {
        let total = sources.reduce(0) { $0 + $1.numel }
        let caps = sources.map { max(0, $0.numel - Int((minKeep * Double($0.numel)).rounded(.up))) }
        return plans(
            sources, k: MagnitudePruning.pruneCount(sparsity: sparsity, numel: total), caps: caps, threads: threads)
    }

    /// Per-tensor plans pruning `k` values in all (at most `caps[i]` in tensor i).
    static func plans(_ sources: [Source], k requested: Int, caps: [Int], threads: Int) -> [Plan] {
        let k = min(requested, caps.reduce(0, +))
        if k == 0 { return sources.map { _ in Plan(count: 0, threshold: nil) } }
        return uncappedPlans(sources, k: k, caps: caps, threads: threads)
            ?? exactPlans(sources, k: k, caps: caps, threads: threads)
    }

    /// The per-tensor path: histograms per tensor, so caps are honoured while the threshold is found.
    static func exactPlans(_ sources: [Source], k: Int, caps: [Int], threads: Int) -> [Plan] {
        // Pass 1: high 16 bits of the key, per tensor.
        let hi = sources.map { histogram($0, threads: threads, within: nil) }
        let bucket = crossing(hi, caps: caps, k: k, base: [Int](repeating: 0, count: sources.count))
        var cum = [Int](repeating: 0, count: sources.count)  // counts strictly below the crossing bucket
        for i in sources.indices { for b in 0..<bucket { cum[i] += hi[i][b] } }
        let hiKey = UInt32(bucket)
        // Pass 2: low 16 bits inside that bucket.
        let lo = sources.map { histogram($0, threads: threads, within: hiKey) }
        let low = crossing(lo, caps: caps, k: k, base: cum)
        var below = cum
        for i in sources.indices { for b in 0..<low { below[i] += lo[i][b] } }
        // T = hiKey<<16 | low. Prune everything below T (capped), then hand out ties at T in tensor order.
        var out = sources.indices.map { min(caps[$0], below[$0]) }
        var left = k - out.reduce(0, +)
        for i in sources.indices where left > 0 {
            let ties = lo[i][low]
            let take = min(left, ties, caps[i] - out[i])
            out[i] += take
            left -= take
        }
        let t = hiKey << 16 | UInt32(low)
        return sources.indices.map { i in Plan(count: out[i], threshold: below[i] <= out[i] ? t : nil) }
    }

    /// Applies a plan to one tensor: zeroes keys below the threshold and the first ties at it, in
    /// fixed chunks (identical for any thread count); without a threshold, the tensor's own exact selection.
    public static func apply(_ plan: Plan, to x: UnsafeMutableBufferPointer<Float>, threads: Int) {
        guard let t = plan.threshold else {
            MagnitudePruning.prune(x, k: plan.count, threads: threads)
            return
        }
        let ranges = Parallel.chunks(x.count, chunk: 1 << 16)
        var below = [Int](repeating: 0, count: ranges.count), ties = below
        let numeric = t <= MagnitudePruning.infinityKey
        below.withUnsafeMutableBufferPointer { bb in
            ties.withUnsafeMutableBufferPointer { tb in
                Parallel.forEach(ranges.count, threads: threads) { r in
                    let chunk = UnsafeBufferPointer(rebasing: x[ranges[r]])
                    if numeric {
                        (bb[r], tb[r]) = countBelowAndAt(chunk, t)
                    } else {
                        var b = 0, e = 0
                        for v in chunk {
                            let k = MagnitudePruning.key(v)
                            b += k < t ? 1 : 0
                            e += k == t ? 1 : 0
                        }
                        (bb[r], tb[r]) = (b, e)
                    }
                }
            }
        }
        var left = plan.count - below.reduce(0, +)
        var quota = [Int](repeating: 0, count: ranges.count)
        for r in ranges.indices {
            quota[r] = max(0, min(left, ties[r]))
            left -= quota[r]
        }
        Parallel.forEach(ranges.count, threads: threads) { r in
            let chunk = UnsafeMutableBufferPointer(rebasing: x[ranges[r]])
            let p = chunk.baseAddress!
            var q = quota[r]
            if numeric && (q == 0 || q == ties[r]) {
                // All or none of this chunk's ties go: a branch-free select the compiler vectorizes.
                let limit = q == 0 ? t : t &+ 1
                for i in 0..<chunk.count { p[i] = MagnitudePruning.absBits(p[i]) < limit ? 0 : p[i] }
                return
            }
            for i in 0..<chunk.count {
                let k = MagnitudePruning.key(p[i])
                if k < t {
                    p[i] = 0
                } else if k == t && q > 0 {
                    p[i] = 0
                    q -= 1
                }
            }
        }
    }

    /// Values of `x` whose |x| bits are below `t`, and equal to it (`t` at most `infinityKey`).
    static func countBelowAndAt(_ x: UnsafeBufferPointer<Float>, _ t: UInt32) -> (Int, Int) {
        guard let p = x.baseAddress else { return (0, 0) }
        var b: UInt32 = 0, e: UInt32 = 0
        var i = 0
        let n = x.count
        // 32-bit counters over at most 2^31 values per call keep the loop vector-friendly.
        precondition(n < 1 << 31)
        while i < n {
            let a = MagnitudePruning.absBits(p[i])
            b &+= a < t ? 1 : 0
            e &+= a == t ? 1 : 0
            i += 1
        }
        return (Int(b), Int(e))
    }

    /// The first bin b with Σᵢ min(capᵢ, baseᵢ + Σ_{c ≤ b} histᵢ[c]) ≥ k (no allocation per bin).
    static func crossing(_ hist: [[Int]], caps: [Int], k: Int, base: [Int]) -> Int {
        var cum = base
        for b in 0..<(1 << 16) {
            var s = 0
            for i in hist.indices { s += min(caps[i], cum[i] + hist[i][b]) }
            if s >= k { return b }
            for i in hist.indices { cum[i] += hist[i][b] }
        }
        return (1 << 16) - 1
    }

    /// Histogram of the keys' high 16 bits (`within` nil), or of the low 16 bits of keys whose high
    /// bits equal `within`; decoded in fixed chunks (counts add, so chunk order is irrelevant).
    /// Four interleaved sub-histograms per thread keep repeated increments of one bin (weights
    /// cluster in few bins) from serializing on the same counter.
    static func histogram(_ src: Source, threads: Int, within: UInt32?) -> [Int] {
        let ranges = Parallel.chunks(src.numel, chunk: 1 << 16)
        let t = max(1, min(threads, ranges.count))
        let bins = 1 << 16
        var per = [[UInt32]](repeating: [UInt32](repeating: 0, count: 4 * bins), count: t)
        per.withUnsafeMutableBufferPointer { pp in
            Parallel.forEach(t, threads: t) { tid in
                let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1 << 16)
                defer { buf.deallocate() }
                pp[tid].withUnsafeMutableBufferPointer { h in
                    let h0 = h.baseAddress!, h1 = h0 + bins, h2 = h1 + bins, h3 = h2 + bins
                    var r = tid
                    while r < ranges.count {
                        let range = ranges[r]
                        let n = range.count
                        src.fill(range, UnsafeMutableBufferPointer(rebasing: buf[0..<n]))
                        let x = buf.baseAddress!
                        var j = 0
                        if let hk = within {
                            while j < n {
                                let k = MagnitudePruning.key(x[j])
                                if k >> 16 == hk { h0[Int(k & 0xFFFF)] &+= 1 }
                                j += 1
                            }
                        } else {
                            binHigh16(x, n, h0, h1, h2, h3, key: MagnitudePruning.key)
                        }
                        r += t
                    }
                }
            }
        }
        var total = [Int](repeating: 0, count: bins)
        for p in per {
            p.withUnsafeBufferPointer { h in
                for i in 0..<bins {
                    total[i] += Int(h[i]) + Int(h[i + bins]) + Int(h[i + 2 * bins]) + Int(h[i + 3 * bins])
                }
            }
        }
        return total
    }

    /// Counts the high 16 bits of each value's key into four interleaved tables (value j into
    /// table j mod 4), so repeated hits on one bin do not serialize on one counter.
    @inline(__always)
    static func binHigh16(
        _ x: UnsafePointer<Float>, _ n: Int, _ h0: UnsafeMutablePointer<UInt32>, _ h1: UnsafeMutablePointer<UInt32>,
        _ h2: UnsafeMutablePointer<UInt32>, _ h3: UnsafeMutablePointer<UInt32>, key: (Float) -> UInt32
    ) {
        var j = 0
        while j + 4 <= n {
            h0[Int(key(x[j]) >> 16)] &+= 1
            h1[Int(key(x[j + 1]) >> 16)] &+= 1
            h2[Int(key(x[j + 2]) >> 16)] &+= 1
            h3[Int(key(x[j + 3]) >> 16)] &+= 1
            j += 4
        }
        while j < n {
            h0[Int(key(x[j]) >> 16)] &+= 1
            j += 1
        }
    }
}
