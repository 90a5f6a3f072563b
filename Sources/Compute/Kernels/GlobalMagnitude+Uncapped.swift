/// The fast path of global magnitude planning: one histogram for all tensors instead of one per
/// tensor. It finds the smallest key T with #{|w| ≤ T} ≥ k over the whole model, counts each
/// tensor's values below and at T, and returns nil when any tensor's cap would bind (the exact
/// per-tensor path then runs). When no cap binds both paths choose the same T and the same ties,
/// so the plans are identical; tests pin that. Keys are |w|'s bits without the NaN test: a
/// threshold beyond infinity (more values pruned than there are numbers) also goes to the exact path.
extension GlobalMagnitude {
    /// One 64 Ki-element chunk of one source; the boundaries match `apply`'s chunks.
    struct Piece {
        let source: Int
        let range: Range<Int>
    }

    static func uncappedPlans(_ sources: [Source], k: Int, caps: [Int], threads: Int) -> [Plan]? {
        var pieces = [Piece]()
        for (i, s) in sources.enumerated() {
            for r in Parallel.chunks(s.numel, chunk: 1 << 16) { pieces.append(Piece(source: i, range: r)) }
        }
        guard !pieces.isEmpty else { return nil }
        // Pass 1: high 16 bits of every key, all tensors together.
        let hi = sharedHistogram(pieces, sources, threads: threads) { x, n, h0, h1, h2, h3 in
            binHigh16(x, n, h0, h1, h2, h3, key: MagnitudePruning.absBits)
        }
        let (bucket, belowBucket) = firstCrossing(hi, k: k, base: 0)
        guard bucket < Int(MagnitudePruning.infinityKey >> 16) else { return nil }
        // Pass 2: low 16 bits of the keys inside the crossing bucket.
        let hk = UInt32(bucket)
        let lo = sharedHistogram(pieces, sources, threads: threads) { x, n, h0, _, _, _ in
            for j in 0..<n {
                let key = MagnitudePruning.absBits(x[j])
                if key >> 16 == hk { h0[Int(key & 0xFFFF)] &+= 1 }
            }
        }
        let (low, _) = firstCrossing(lo, k: k, base: belowBucket)
        let t = hk << 16 | UInt32(low)
        // Pass 3: each tensor's count below T and at T.
        var below = [Int](repeating: 0, count: pieces.count), ties = below
        let t3 = max(1, min(threads, pieces.count))
        below.withUnsafeMutableBufferPointer { bb in
            ties.withUnsafeMutableBufferPointer { tb in
                Parallel.forEach(t3, threads: t3) { tid in
                    let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1 << 16)
                    defer { buf.deallocate() }
                    var p = tid
                    while p < pieces.count {
                        let piece = pieces[p]
                        let n = piece.range.count
                        sources[piece.source].fill(piece.range, UnsafeMutableBufferPointer(rebasing: buf[0..<n]))
                        (bb[p], tb[p]) = GlobalMagnitude.countBelowAndAt(UnsafeBufferPointer(rebasing: buf[0..<n]), t)
                        p += t3
                    }
                }
            }
        }
        var belowT = [Int](repeating: 0, count: sources.count), tiesT = belowT
        for (p, piece) in pieces.enumerated() {
            belowT[piece.source] += below[p]
            tiesT[piece.source] += ties[p]
        }
        var out = belowT
        var left = k - belowT.reduce(0, +)
        for i in sources.indices {
            guard belowT[i] <= caps[i] else { return nil }
            let take = min(left, tiesT[i], caps[i] - belowT[i])
            out[i] += take
            left -= take
        }
        guard left == 0 else { return nil }
        return sources.indices.map { Plan(count: out[$0], threshold: t) }
    }

    /// The first bin b with base + Σ_{c ≤ b} hist[c] ≥ k, and base + Σ_{c < b} hist[c].
    private static func firstCrossing(_ hist: [Int], k: Int, base: Int) -> (Int, Int) {
        var cum = base
        for b in hist.indices {
            if cum + hist[b] >= k { return (b, cum) }
            cum += hist[b]
        }
        return (hist.count - 1, cum - hist[hist.count - 1])
    }

    /// A 2^16-bin histogram over all pieces: each thread counts into four interleaved UInt32 tables
    /// (folded into Int totals before they could overflow), `body` bins one decoded chunk.
    private static func sharedHistogram(
        _ pieces: [Piece], _ sources: [Source], threads: Int,
        _ body: (
            UnsafePointer<Float>, Int, UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt32>,
            UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt32>
        ) -> Void
    ) -> [Int] {
        let bins = 1 << 16
        let t = max(1, min(threads, pieces.count))
        var totals = [[Int]](repeating: [Int](repeating: 0, count: bins), count: t)
        totals.withUnsafeMutableBufferPointer { tp in
            Parallel.forEach(t, threads: t) { tid in
                let h = UnsafeMutablePointer<UInt32>.allocate(capacity: 4 * bins)
                let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1 << 16)
                defer {
                    h.deallocate()
                    buf.deallocate()
                }
                h.initialize(repeating: 0, count: 4 * bins)
                var pending = 0
                func fold() {
                    tp[tid].withUnsafeMutableBufferPointer { tot in
                        for i in 0..<bins {
                            tot[i] += Int(h[i]) + Int(h[i + bins]) + Int(h[i + 2 * bins]) + Int(h[i + 3 * bins])
                        }
                    }
                    h.update(repeating: 0, count: 4 * bins)
                    pending = 0
                }
                var p = tid
                while p < pieces.count {
                    let piece = pieces[p]
                    let n = piece.range.count
                    if pending + n > Int(UInt32.max) { fold() }
                    sources[piece.source].fill(piece.range, UnsafeMutableBufferPointer(rebasing: buf[0..<n]))
                    body(buf.baseAddress!, n, h, h + bins, h + 2 * bins, h + 3 * bins)
                    pending += n
                    p += t
                }
                fold()
            }
        }
        var total = totals[0]
        for other in totals.dropFirst() { for i in 0..<bins { total[i] += other[i] } }
        return total
    }
}
