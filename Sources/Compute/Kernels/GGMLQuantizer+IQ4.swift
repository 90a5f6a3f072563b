/// ggml's non-linear 4-bit types, bit-exact with what llama.cpp's `llama_model_quantize` writes
/// (`quantize_iq4_nl`, `quantize_iq4_xs`: `quantize_row_iq4_nl_impl` with 7 trial scales each
/// side). Every value is an index into the fixed 16-value grid `kvalues_iq4nl`, scaled per 32
/// values: IQ4_NL keeps one fp16 scale per 32 values (18 bytes), IQ4_XS one fp16 scale per 256
/// values and a 6-bit sub-scale per 32 (136 bytes). Each value's error weight is x², or with an
/// importance matrix importance·√(σ² + x²), σ² twice the block's mean square. Blocks are
/// independent, so the bytes are the same for any thread count. Same float operations in the
/// same order as ggml's C (no fused multiply-adds).
extension GGMLQuantizer {
    /// `kvalues_iq4nl`, the grid both types index.
    static let iq4Grid: SIMD16<Float> = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// Quantizes `src` (a multiple of the type's block) to IQ4_NL or IQ4_XS without importance,
    /// in fixed chunks of blocks over `threads`.
    static func quantizeIQ4(
        _ type: GGMLType, _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        let n = type.block.count, bytes = type.block.bytes
        let ranges = Parallel.chunks(src.count / n, chunk: 65_536 / n)
        Parallel.forEach(ranges.count, threads: threads) { r in
            for b in ranges[r] { iq4Block(src.baseAddress! + b * n, n, importance: nil, dst.baseAddress! + b * bytes) }
        }
    }

    /// One row of `n` values with its columns' importance (`quantize_iq4_nl`/`_xs` given `quant_weights`).
    static func iq4Row(
        _ type: GGMLType, _ x: UnsafePointer<Float>, _ n: Int, _ qw: UnsafePointer<Float>,
        _ out: UnsafeMutableRawPointer
    ) {
        let size = type.block.count, bytes = type.block.bytes
        for b in 0..<(n / size) { iq4Block(x + b * size, size, importance: qw + b * size, out + b * bytes) }
    }

    /// ggml's `best_index_int8` (the grid index nearest to x, the lower on ties, by bisection) of 16
    /// values at once, lane by lane the bisection's answer: the bisection ends between the last grid
    /// value ≤ x and the next, so each lane keeps the pair its comparisons with g[1]…g[14] leave, then
    /// takes the nearer (the lower on ties; below g[0] and above g[15] the comparison picks the end).
    /// A NaN lane, which every bisection step sends up, takes index 15.
    @inline(__always)
    static func iq4Nearest(_ x: SIMD16<Float>, _ g: SIMD16<Float>) -> (value: SIMD16<Float>, index: SIMD16<Int32>) {
        var lo = SIMD16<Float>(repeating: g[0])
        var hi = SIMD16<Float>(repeating: g[1])
        var index = SIMD16<Int32>(repeating: 0)
        for k in 1..<15 {
            let above = SIMD16<Float>(repeating: g[k]) .<= x
            lo.replace(with: g[k], where: above)
            hi.replace(with: g[k + 1], where: above)
            index.replace(with: Int32(k), where: above)
        }
        let up = .!((x - lo) .< (hi - x))
        let nan = x .!= x
        lo.replace(with: hi, where: up)
        index.replace(with: index &+ 1, where: up)
        lo.replace(with: g[15], where: nan)
        index.replace(with: 15, where: nan)
        return (lo, index)
    }

    /// One IQ4_NL block (`size` 32) or IQ4_XS super-block (`size` 256) into `out`.
    static func iq4Block(
        _ x: UnsafePointer<Float>, _ size: Int, importance qw: UnsafePointer<Float>?, _ out: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 40) { f in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
                let weight = f.baseAddress!, scales = weight + 32, L = codes.baseAddress!
                var sigma2: Float = 0
                if qw != nil {
                    for j in 0..<size { sigma2 += x[j] * x[j] }
                    sigma2 *= 2 / Float(size)
                }
                var maxScale: Float = 0, amaxScale: Float = 0
                for ib in 0..<(size / 32) {
                    let xb = x + 32 * ib
                    if let qw {
                        for j in 0..<32 { weight[j] = qw[32 * ib + j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
                    } else {
                        for j in 0..<32 { weight[j] = xb[j] * xb[j] }
                    }
                    let d = iq4Scale(xb, weight)
                    scales[ib] = d
                    if abs(d) > amaxScale {
                        amaxScale = abs(d)
                        maxScale = d
                    }
                }
                if size > 32 {
                    iq4SubScales(x, size, scales, maxScale: maxScale, L, out)
                } else {
                    store(half(scales[0]), out)
                    let id: Float = scales[0] != 0 ? 1 / scales[0] : 0
                    iq4Codes(x, id, iq4Grid, L)
                }
                let qs = (out + (size > 32 ? 8 : 2)).assumingMemoryBound(to: UInt8.self)
                for i in 0..<(size / 32) {
                    for j in 0..<16 { qs[16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4) }
                }
            }
        }
    }

    /// The weighted least-squares scale of 32 values on the grid: the start −max/−127, then the
    /// best of 15 trial scales (−127 + t)/max, t in −7…7 (0 for a block below ggml's epsilon). The 16
    /// scales run as the lanes of one vector, each lane's sums taken value by value in ggml's order,
    /// then compared in ggml's order.
    @inline(__always)
    private static func iq4Scale(_ xb: UnsafePointer<Float>, _ weight: UnsafePointer<Float>) -> Float {
        var amax: Float = 0, mx: Float = 0
        for j in 0..<32 {
            let ax = abs(xb[j])
            if ax > amax {
                amax = ax
                mx = xb[j]
            }
        }
        if amax < KQuantSearch.groupMaxEps { return 0 }
        let g = iq4Grid
        var ids = SIMD16<Float>(repeating: 0)
        ids[0] = 1 / (-mx / g[0])
        for t in 1..<16 { ids[t] = Float(t - 8 - 127) / mx }
        var sumqx = SIMD16<Float>(repeating: 0), sumq2 = SIMD16<Float>(repeating: 0)
        for j in 0..<32 {
            let x = SIMD16<Float>(repeating: xb[j])
            let q = iq4Nearest(ids * x, g).value
            let wq = SIMD16<Float>(repeating: weight[j]) * q
            sumqx += wq * x
            sumq2 += wq * q
        }
        var d = sumqx[0] / sumq2[0]
        var best = d * sumqx[0]
        for t in 1..<16 where sumq2[t] > 0 && sumqx[t] * sumqx[t] > best * sumq2[t] {
            d = sumqx[t] / sumq2[t]
            best = d * sumqx[t]
        }
        return d
    }

    /// The grid indices of 32 values times `id` into `codes`, 16 at a time.
    @inline(__always)
    private static func iq4Codes(
        _ x: UnsafePointer<Float>, _ id: Float, _ g: SIMD16<Float>, _ codes: UnsafeMutablePointer<UInt8>
    ) {
        for half in 0..<2 {
            let v = UnsafeRawPointer(x + 16 * half).loadUnaligned(as: SIMD16<Float>.self)
            let index = iq4Nearest(SIMD16<Float>(repeating: id) * v, g).index
            for j in 0..<16 { codes[16 * half + j] = UInt8(truncatingIfNeeded: index[j]) }
        }
    }

    /// IQ4_XS: the sub-block scales as 6-bit multiples of one fp16 scale (max_scale/−32), low
    /// nibbles in `scales_l`, high bit pairs in `scales_h`; every value re-indexed on its sub-block's
    /// quantized scale.
    private static func iq4SubScales(
        _ x: UnsafePointer<Float>, _ size: Int, _ scales: UnsafePointer<Float>, maxScale: Float,
        _ L: UnsafeMutablePointer<UInt8>, _ out: UnsafeMutableRawPointer
    ) {
        let d = -maxScale / 32
        store(half(d), out)
        let id: Float = d != 0 ? 1 / d : 0
        var high: UInt16 = 0
        let low = (out + 4).assumingMemoryBound(to: UInt8.self)
        let g = iq4Grid
        for ib in 0..<(size / 32) {
            var l = max(-32, min(31, KQuantSearch.nearestInt(id * scales[ib])))
            let dl = d * Float(l)
            let idl: Float = dl != 0 ? 1 / dl : 0
            iq4Codes(x + 32 * ib, idl, g, L + 32 * ib)
            l += 32
            let nibble = UInt8(l & 0xF)
            if ib % 2 == 0 { low[ib / 2] = nibble } else { low[ib / 2] |= nibble << 4 }
            high |= UInt16(l >> 4) << UInt16(2 * (ib % 8))
        }
        (out + 2).storeBytes(of: high.littleEndian, as: UInt16.self)
    }

    /// Dequantizes IQ4_NL (`size` 32) or IQ4_XS (`size` 256) blocks.
    static func dequantizeIQ4(
        _ src: UnsafeRawBufferPointer, size: Int, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        let bytes = size > 32 ? 136 : 18
        let g = iq4Grid
        for b in 0..<(count / size) {
            let base = b * bytes
            let d = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: base, as: UInt16.self).littleEndian)
            let high =
                size > 32 ? UInt16(littleEndian: src.loadUnaligned(fromByteOffset: base + 2, as: UInt16.self)) : 0
            let qs = base + (size > 32 ? 8 : 2)
            for ib in 0..<(size / 32) {
                var dl = d
                if size > 32 {
                    let ls =
                        Int((src[base + 4 + ib / 2] >> (4 * UInt8(ib % 2))) & 0xF) | Int((high >> (2 * UInt16(ib))) & 3)
                        << 4
                    dl = d * Float(ls - 32)
                }
                let y = b * size + 32 * ib
                for j in 0..<16 {
                    let q = src[qs + 16 * ib + j]
                    dst[y + j] = dl * g[Int(q & 0xF)]
                    dst[y + 16 + j] = dl * g[Int(q >> 4)]
                }
            }
        }
    }
}
