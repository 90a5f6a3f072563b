/// ggml block quantizers, bit-exact with ggml's reference C (`quantize_row_q8_0_ref`,
/// `quantize_row_q4_0_ref`) and with gguf-py's numpy quantizers on finite input.
///
/// Blocks of 32 values. Work is split into fixed chunks of blocks (independent of the thread
/// count), so output is identical for any `threads`.
/// NaN follows the C reference on x86, not numpy: in Q8_0 a NaN is dropped by ggml's MAX() unless
/// it is the block's last value (then d is NaN), and its own quant is 0 (`cvttss2si` gives
/// 0x80000000, whose low byte is stored); in Q4_0 a NaN is never the block max and its quant is 0.
public enum GGMLQuantizer {
    public static let blockSize = 32
    static let chunkBlocks = 2048

    /// Runs `body` on every 32-value block of `src` and its `blockBytes` output slot, in fixed
    /// chunks of blocks spread over `threads` (the same bytes for any thread count).
    @inline(__always)
    static func forEachBlock(
        _ src: UnsafeBufferPointer<Float>, _ dst: UnsafeMutableRawBufferPointer, blockBytes: Int, threads: Int,
        _ body: (UnsafePointer<Float>, UnsafeMutableRawPointer) -> Void
    ) {
        let ranges = Parallel.chunks(src.count / 32, chunk: chunkBlocks)
        Parallel.forEach(ranges.count, threads: threads) { r in
            for b in ranges[r] { body(src.baseAddress! + b * 32, dst.baseAddress! + b * blockBytes) }
        }
    }

    /// x86 `cvttss2si` semantics: truncation, and 0x80000000 for NaN or out-of-range values.
    @inline(__always)
    static func cvtt(_ x: Float) -> Int32 {
        guard x.isFinite, x > -2_147_483_904, x < 2_147_483_648 else { return Int32.min }
        return Int32(x)
    }

    /// x86 `cvtss2si` under round-half-away: `roundf` then convert (what `(int8_t)roundf(x)` compiles to).
    @inline(__always)
    static func roundToInt8(_ x: Float) -> Int8 {
        let r = x.rounded(.toNearestOrAwayFromZero)
        return Int8(truncatingIfNeeded: cvtt(r))
    }

    /// Largest |x| of a block and whether it holds a NaN or ±inf, without branches: the largest
    /// |x| bit pattern (as an unsigned integer, |x| of finite floats orders like its bits) — an
    /// integer max reduction the compiler vectorizes. Bits at or above infinity's mean ±inf or NaN.
    @inline(__always)
    static func blockAbsMax(_ x: UnsafePointer<Float>) -> (amax: Float, nonFinite: Bool) {
        let p = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
        var m: UInt32 = 0
        for j in 0..<32 { m = max(m, p[j] & 0x7FFF_FFFF) }
        return (Float(bitPattern: m), m >= 0x7F80_0000)
    }

    /// The signed value of largest magnitude (the first on ties; +0 for an all-zero block; NaN
    /// never wins, as with C's `amax < fabsf(v)`) and whether the block holds ±inf or NaN — the
    /// block scale of Q4_0 and Q5_0.
    @inline(__always)
    static func blockSignedMax(_ x: UnsafePointer<Float>) -> (max: Float, nonFinite: Bool) {
        // Largest |x| bits among non-negative values (as Int32, negatives are below 0) and among
        // negative ones (sign bit flipped): two vectorized max-reductions, no index scan unless a
        // positive and a negative value tie for the largest magnitude.
        let p = UnsafeRawPointer(x).assumingMemoryBound(to: Int32.self)
        var pos = Int32.min, neg = Int32.min
        for j in 0..<32 {
            pos = max(pos, p[j])
            neg = max(neg, p[j] ^ Int32.min)
        }
        let m = max(pos, neg)
        if m >= 0x7F80_0000 {
            var a: Float = 0, mx: Float = 0
            for j in 0..<32 {
                let v = x[j]
                if a < abs(v) {
                    a = abs(v)
                    mx = v
                }
            }
            return (mx, true)
        }
        if m <= 0 { return (0, false) }
        if pos > neg { return (Float(bitPattern: UInt32(pos)), false) }
        if neg > pos { return (Float(bitPattern: UInt32(neg) | 0x8000_0000), false) }
        var j = 0
        while abs(x[j]) != Float(bitPattern: UInt32(m)) { j += 1 }
        return (x[j], false)
    }

    /// `roundf` (half away from zero) for |v| < 2^23 without a libm call: truncate, then step
    /// away from zero when the exact remaining fraction is at least one half.
    @inline(__always)
    static func roundHalfAway(_ v: Float) -> Int32 {
        let t = Int32(v)
        let f = v - Float(t)
        return t + (f >= 0.5 ? 1 : 0) - (f <= -0.5 ? 1 : 0)
    }

    /// Quantizes `src` (count multiple of 32) into Q8_0 blocks in `dst` (count/32 × 34 bytes).
    public static func quantizeQ8_0(
        _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        forEachBlock(src, dst, blockBytes: 34, threads: threads) { x, out in
            let qs = (out + 2).assumingMemoryBound(to: Int8.self)
            var (amax, nonFinite) = blockAbsMax(x)
            if nonFinite {
                amax = 0
                for j in 0..<32 {
                    let v = abs(x[j])
                    amax = amax > v ? amax : v  // ggml MAX(a, b), NaN order as in C
                }
            }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            out.storeBytes(
                of: (nonFinite ? HalfConversion.f32ToF16(d) : HalfConversion.f32ToF16Finite(d)).littleEndian,
                as: UInt16.self)
            if !nonFinite && id.isFinite {
                // Every x·id lies in [-127, 127]: the exact fast path applies. (A subnormal
                // amax makes 1/d overflow to inf; that block takes the careful path.)
                for j in 0..<32 { qs[j] = Int8(truncatingIfNeeded: roundHalfAway(x[j] * id)) }
            } else {
                for j in 0..<32 { qs[j] = roundToInt8(x[j] * id) }
            }
        }
    }

    /// Quantizes `src` (count multiple of 32) into Q4_0 blocks in `dst` (count/32 × 18 bytes).
    public static func quantizeQ4_0(
        _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        forEachBlock(src, dst, blockBytes: 18, threads: threads) { x, out in
            let (mx, nonFinite) = blockSignedMax(x)
            let d = mx / -8
            let id: Float = d != 0 ? 1 / d : 0
            out.storeBytes(
                of: (nonFinite ? HalfConversion.f32ToF16(d) : HalfConversion.f32ToF16Finite(d)).littleEndian,
                as: UInt16.self)
            let qs = (out + 2).assumingMemoryBound(to: UInt8.self)
            if !nonFinite && id.isFinite {
                // x·id + 8.5 lies in [0.5, 16.5]: plain truncation is cvttss2si's result.
                for j in 0..<16 {
                    let q0 = UInt8(truncatingIfNeeded: min(15, Int32(x[j] * id + 8.5)))
                    let q1 = UInt8(truncatingIfNeeded: min(15, Int32(x[16 + j] * id + 8.5)))
                    qs[j] = q0 | (q1 << 4)
                }
            } else {
                for j in 0..<16 {
                    let x0 = Int8(truncatingIfNeeded: cvtt(x[j] * id + 8.5))
                    let x1 = Int8(truncatingIfNeeded: cvtt(x[16 + j] * id + 8.5))
                    let q0 = UInt8(truncatingIfNeeded: min(15, x0))
                    let q1 = UInt8(truncatingIfNeeded: min(15, x1))
                    qs[j] = q0 | (q1 << 4)
                }
            }
        }
    }

    /// Dequantizes Q8_0 blocks (for error metrics and round-trip tests).
    public static func dequantizeQ8_0(
        _ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        for b in 0..<(count / 32) {
            let d = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: b * 34, as: UInt16.self).littleEndian)
            for j in 0..<32 { dst[b * 32 + j] = d * Float(Int8(bitPattern: src[b * 34 + 2 + j])) }
        }
    }

    /// Dequantizes Q4_0 blocks.
    public static func dequantizeQ4_0(
        _ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        for b in 0..<(count / 32) {
            let d = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: b * 18, as: UInt16.self).littleEndian)
            for j in 0..<16 {
                let q = src[b * 18 + 2 + j]
                dst[b * 32 + j] = d * Float(Int(q & 0xF) - 8)
                dst[b * 32 + 16 + j] = d * Float(Int(q >> 4) - 8)
            }
        }
    }
}
