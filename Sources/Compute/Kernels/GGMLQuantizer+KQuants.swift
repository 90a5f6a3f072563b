/// ggml's k-quants without an importance matrix, bit-exact with what llama.cpp's
/// `llama_model_quantize` writes (ggml's `quantize_row_q{2..6}_K_ref`): super-blocks of 256 values
/// with 16 or 8 sub-blocks whose scales (and mins) are quantized again against one fp16 super-block
/// scale, then every value rounded to that packed grid. Tests/reference/check_kquants.py pins the
/// bytes on real and adversarial blocks. Finite input assumed, as in ggml.
extension GGMLQuantizer {
    static let superBlock = 256

    /// Quantizes `src` (a multiple of 256 values) to the k-quant `type`, in fixed chunks of
    /// super-blocks over `threads` (the same bytes for any thread count).
    public static func quantizeK(
        _ type: GGMLType, _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        let bytes = type.block.bytes
        let ranges = Parallel.chunks(src.count / superBlock, chunk: 256)
        Parallel.forEach(ranges.count, threads: threads) { r in
            for b in ranges[r] {
                let x = src.baseAddress! + b * superBlock, out = dst.baseAddress! + b * bytes
                switch type {
                case .q4_K: q45K(x, out, nmax: 15)
                case .q5_K: q45K(x, out, nmax: 31)
                case .q2_K: q2K(x, out)
                case .q3_K: q3K(x, out)
                default: q6K(x, out)
                }
            }
        }
    }

    @inline(__always)
    static func half(_ v: Float) -> UInt16 { HalfConversion.f32ToF16(v) }

    @inline(__always)
    static func store(_ h: UInt16, _ p: UnsafeMutableRawPointer) { p.storeBytes(of: h.littleEndian, as: UInt16.self) }

    /// Runs `body` with room for 8 sub-blocks of up to 32 values transposed (values, weights,
    /// codes and scratch codes; see KQuantSearch).
    @inline(__always)
    static func withLanes(
        _ body: (
            _ x: UnsafeMutablePointer<KQuantSearch.Lanes>, _ w: UnsafeMutablePointer<KQuantSearch.Lanes>,
            _ L: UnsafeMutablePointer<KQuantSearch.Codes>, _ aux: UnsafeMutablePointer<KQuantSearch.Codes>
        ) -> Void
    ) {
        withUnsafeTemporaryAllocation(of: KQuantSearch.Lanes.self, capacity: 64) { v in
            withUnsafeTemporaryAllocation(of: KQuantSearch.Codes.self, capacity: 64) { c in
                body(v.baseAddress!, v.baseAddress! + 32, c.baseAddress!, c.baseAddress! + 32)
            }
        }
    }

    /// Lane j's codes back to sub-block j of `n` values (codes 0…255 or −128…127, as `T` holds them).
    @inline(__always)
    static func untranspose<T: FixedWidthInteger>(
        _ t: UnsafePointer<KQuantSearch.Codes>, n: Int, into L: UnsafeMutablePointer<T>
    ) {
        for i in 0..<n {
            for j in 0..<8 { L[n * j + i] = T(truncatingIfNeeded: t[i][j]) }
        }
    }

    /// Four 2-bit codes per byte: byte j/4 + l of each 128-value half holds l, l+32, l+64, l+96.
    static func pack2(_ L: UnsafePointer<UInt8>, _ qs: UnsafeMutablePointer<UInt8>) {
        for j in stride(from: 0, to: superBlock, by: 128) {
            for l in 0..<32 {
                qs[j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
            }
        }
    }

    /// Q2_K: 16 sub-blocks of 16, 2-bit codes, 4-bit scales and mins (84 bytes: scales, qs, d, dmin).
    static func q2K(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buf in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { f in
                let L = buf.baseAddress!
                let scales = f.baseAddress!, mins = scales + 16
                var maxScale: Float = 0, maxMin: Float = 0
                withLanes { xt, wt, Lt, aux in
                    for h in 0..<2 {
                        KQuantSearch.transpose(x + 128 * h, n: 16, into: xt)
                        for l in 0..<16 { wt[l] = KQuantSearch.magnitude(xt[l]) }
                        let r = KQuantSearch.asymmetric(
                            xt, 16, nmax: 3, weights: wt, Lt, aux: aux, rmin: -0.5, rdelta: 0.1, nstep: 15, mad: true)
                        untranspose(Lt, n: 16, into: L + 128 * h)
                        for j in 0..<8 {
                            scales[8 * h + j] = r.scale[j]
                            mins[8 * h + j] = r.min[j]
                        }
                    }
                }
                for j in 0..<16 {
                    if scales[j] > maxScale { maxScale = scales[j] }
                    if mins[j] > maxMin { maxMin = mins[j] }
                }
                let sc = out.assumingMemoryBound(to: UInt8.self)
                if maxScale > 0 {
                    let iscale = 15 / maxScale
                    for j in 0..<16 { sc[j] = UInt8(truncatingIfNeeded: KQuantSearch.nearestInt(iscale * scales[j])) }
                    store(half(maxScale / 15), out + 80)
                } else {
                    for j in 0..<16 { sc[j] = 0 }
                    store(half(0), out + 80)
                }
                if maxMin > 0 {
                    let iscale = 15 / maxMin
                    for j in 0..<16 {
                        sc[j] |= UInt8(truncatingIfNeeded: KQuantSearch.nearestInt(iscale * mins[j]) << 4)
                    }
                    store(half(maxMin / 15), out + 82)
                } else {
                    store(half(0), out + 82)
                }
                q2KFinish(x, out, L)
            }
        }
    }

    /// The rest of a Q2_K super-block once its scales, mins, d and dmin are stored: every value
    /// rounded to that packed grid (sub-blocks with a zero scale keep their searched codes), packed.
    static func q2KFinish(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>) {
        let sc = out.assumingMemoryBound(to: UInt8.self)
        let d0 = HalfConversion.f16ToF32(out.load(fromByteOffset: 80, as: UInt16.self))
        let m0 = HalfConversion.f16ToF32(out.load(fromByteOffset: 82, as: UInt16.self))
        for j in 0..<16 {
            let d = d0 * Float(sc[j] & 0xF)
            if d == 0 { continue }
            let dm = m0 * Float(sc[j] >> 4)
            for i in 0..<16 { L[16 * j + i] = UInt8(max(0, min(3, KQuantSearch.nearestInt((x[16 * j + i] + dm) / d)))) }
        }
        pack2(L, sc + 16)
    }

    /// Q3_K: 16 sub-blocks of 16, 3-bit codes (high bit in `hmask`), 6-bit signed scales
    /// (110 bytes: hmask, qs, scales, d).
    static func q3K(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { buf in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { s in
                let L = buf.baseAddress!, scales = s.baseAddress!
                var maxScale: Float = 0, amax: Float = 0
                withLanes { xt, _, Lt, _ in
                    for h in 0..<2 {
                        KQuantSearch.transpose(x + 128 * h, n: 16, into: xt)
                        let r = KQuantSearch.symmetricRefined(xt, 16, nmax: 4, Lt)
                        untranspose(Lt, n: 16, into: L + 128 * h)
                        for j in 0..<8 { scales[8 * h + j] = r[j] }
                    }
                }
                for j in 0..<16 {
                    let a = abs(scales[j])
                    if a > amax {
                        amax = a
                        maxScale = scales[j]
                    }
                }
                let sc = out.assumingMemoryBound(to: UInt8.self) + 96
                for j in 0..<12 { sc[j] = 0 }
                if maxScale != 0 {
                    let iscale = -32 / maxScale
                    for j in 0..<16 {
                        let l8 = Int8(truncatingIfNeeded: KQuantSearch.nearestInt(iscale * scales[j]))
                        let l = UInt8(truncatingIfNeeded: max(-32, min(31, l8)) + 32)
                        if j < 8 { sc[j] = l & 0xF } else { sc[j - 8] |= (l & 0xF) << 4 }
                        sc[j % 4 + 8] |= (l >> 4) << (2 * (j / 4))
                    }
                    store(half(1 / iscale), out + 108)
                } else {
                    store(half(0), out + 108)
                }
                q3KFinish(x, out, L)
            }
        }
    }

    /// The rest of a Q3_K super-block once its scales and d are stored: values rounded to the
    /// packed grid, high bits to `hmask`, low bits packed.
    static func q3KFinish(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>) {
        let p = out.assumingMemoryBound(to: UInt8.self)
        let hmask = p, qs = p + 32, sc = p + 96
        let d0 = HalfConversion.f16ToF32(out.load(fromByteOffset: 108, as: UInt16.self))
        for j in 0..<16 {
            let low = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4
            let s = Int8(truncatingIfNeeded: low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) &- 32
            let d = d0 * Float(s)
            if d == 0 { continue }
            for i in 0..<16 { L[16 * j + i] = Int8(max(-4, min(3, KQuantSearch.nearestInt(x[16 * j + i] / d))) + 4) }
        }
        for j in 0..<32 { hmask[j] = 0 }
        for k in 0..<8 {  // code bit 2 of value 32k + m goes to bit k of hmask[m] (branch-free)
            for m in 0..<32 {
                let l = UInt8(bitPattern: L[32 * k + m])
                hmask[m] |= ((l >> 2) & 1) << k
                L[32 * k + m] = Int8(bitPattern: l & 3)
            }
        }
        L.withMemoryRebound(to: UInt8.self, capacity: 256) { pack2($0, qs) }
    }

    /// The 12 bytes of Q4_K/Q5_K's eight 6-bit scales and mins.
    static func packScalesMins(_ ls: UInt8, _ lm: UInt8, _ j: Int, _ sc: UnsafeMutablePointer<UInt8>) {
        if j < 4 {
            sc[j] = ls
            sc[j + 4] = lm
        } else {
            sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
            sc[j - 4] |= (ls >> 4) << 6
            sc[j] |= (lm >> 4) << 6
        }
    }

    /// Sub-block j's 6-bit scale and min back from the 12 packed bytes (`get_scale_min_k4`).
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    /// Q4_K (nmax 15; 144 bytes: d, dmin, scales, qs) and Q5_K (nmax 31; 176 bytes: d, dmin,
    /// scales, qh, qs): 8 sub-blocks of 32, weights av|x| + |x|.
    static func q45K(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer, nmax: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buf in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { f in
                let L = buf.baseAddress!
                let scales = f.baseAddress!, mins = scales + 8
                let five = nmax == 31
                withLanes { xt, wt, Lt, aux in
                    KQuantSearch.transpose(x, n: 32, into: xt)
                    var sumX2 = KQuantSearch.Lanes(repeating: 0)
                    for l in 0..<32 { sumX2 += xt[l] * xt[l] }
                    let av = (sumX2 / 32).squareRoot()
                    for l in 0..<32 { wt[l] = av + KQuantSearch.magnitude(xt[l]) }
                    let r = KQuantSearch.asymmetric(
                        xt, 32, nmax: Int32(nmax), weights: wt, Lt, aux: aux,
                        rmin: five ? -0.5 : -1, rdelta: 0.1, nstep: five ? 15 : 20, mad: false)
                    untranspose(Lt, n: 32, into: L)
                    for j in 0..<8 {
                        scales[j] = r.scale[j]
                        mins[j] = r.min[j]
                    }
                }
                q45KPack(x, out, L, scales, mins, nmax: nmax)
            }
        }
    }

    /// One Q4_K/Q5_K super-block from its sub-blocks' searched scales, mins and codes: the scales
    /// and mins packed to 6 bits, then every value rounded to that packed grid.
    private static func q45KPack(
        _ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>,
        _ scales: UnsafePointer<Float>, _ mins: UnsafePointer<Float>, nmax: Int
    ) {
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<8 {
            if scales[j] > maxScale { maxScale = scales[j] }
            if mins[j] > maxMin { maxMin = mins[j] }
        }
        let p = out.assumingMemoryBound(to: UInt8.self)
        let sc = p + 4
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        for j in 0..<8 {
            let ls = min(63, UInt8(truncatingIfNeeded: KQuantSearch.nearestInt(invScale * scales[j])))
            let lm = min(63, UInt8(truncatingIfNeeded: KQuantSearch.nearestInt(invMin * mins[j])))
            packScalesMins(ls, lm, j, sc)
        }
        store(half(maxScale / 63), out)
        store(half(maxMin / 63), out + 2)
        q45KFinish(x, out, L, nmax: nmax)
    }

    /// The rest of a Q4_K/Q5_K super-block once its d, dmin and packed scales and mins are
    /// stored: every value rounded to that grid (zero-scale sub-blocks keep their codes), packed.
    static func q45KFinish(
        _ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>, nmax: Int
    ) {
        let p = out.assumingMemoryBound(to: UInt8.self)
        let sc = p + 4
        let d0 = HalfConversion.f16ToF32(out.load(fromByteOffset: 0, as: UInt16.self))
        let m0 = HalfConversion.f16ToF32(out.load(fromByteOffset: 2, as: UInt16.self))
        for j in 0..<8 {
            let (s, m) = scaleMin(j, sc)
            let d = d0 * Float(s)
            if d == 0 { continue }
            let dm = m0 * Float(m)
            for i in 0..<32 {
                L[32 * j + i] = UInt8(max(0, min(Int32(nmax), KQuantSearch.nearestInt((x[32 * j + i] + dm) / d))))
            }
        }
        if nmax == 31 { packQ5(L, qh: p + 16, ql: p + 48) } else { packQ4(L, p + 16) }
    }

    private static func packQ4(_ L: UnsafePointer<UInt8>, _ q: UnsafeMutablePointer<UInt8>) {
        for (k, j) in stride(from: 0, to: superBlock, by: 64).enumerated() {
            for l in 0..<32 { q[32 * k + l] = L[j + l] | (L[j + l + 32] << 4) }
        }
    }

    private static func packQ5(
        _ L: UnsafePointer<UInt8>, qh: UnsafeMutablePointer<UInt8>, ql: UnsafeMutablePointer<UInt8>
    ) {
        for j in 0..<32 { qh[j] = 0 }
        var m1: UInt8 = 1, m2: UInt8 = 2
        for (k, n) in stride(from: 0, to: superBlock, by: 64).enumerated() {
            for j in 0..<32 {
                var l1 = L[n + j], l2 = L[n + j + 32]
                if l1 > 15 {
                    l1 -= 16
                    qh[j] |= m1
                }
                if l2 > 15 {
                    l2 -= 16
                    qh[j] |= m2
                }
                ql[32 * k + j] = l1 | (l2 << 4)
            }
            m1 <<= 2
            m2 <<= 2
        }
    }
}
