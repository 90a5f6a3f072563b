/// Q4_1, Q5_0 and Q5_1, bit-exact with ggml's `quantize_row_q4_1_ref` / `quantize_row_q5_0_ref` /
/// `quantize_row_q5_1_ref` and
/// gguf-py's numpy quantizers on finite input. NaN is never a block's min/max (ggml compares with
/// `<` / `>`), and its own quant is 0 (x86 `cvttss2si`), as in the C reference.
extension GGMLQuantizer {
    /// Q4_1 block (20 bytes): fp16 d = (max − min)/15, fp16 m = min, 16 bytes of nibbles,
    /// q = min(15, (int8)((x − min)·id + 0.5)); element j in the low nibble of byte j, j+16 in the high.
    public static func quantizeQ4_1(
        _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        forEachBlock(src, dst, blockBytes: 20, threads: threads) { x, out in
            var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                let v = x[j]
                mn = v < mn ? v : mn
                mx = v > mx ? v : mx
            }
            // NaN never becomes min or max, so look for it (and ±inf) separately.
            let finite = !blockAbsMax(x).nonFinite && (mx - mn).isFinite
            let d = (mx - mn) / 15
            let id: Float = d != 0 ? 1 / d : 0
            out.storeBytes(
                of: (finite ? HalfConversion.f32ToF16Finite(d) : HalfConversion.f32ToF16(d)).littleEndian,
                as: UInt16.self)
            (out + 2).storeBytes(
                of: (finite ? HalfConversion.f32ToF16Finite(mn) : HalfConversion.f32ToF16(mn)).littleEndian,
                as: UInt16.self)
            let qs = (out + 4).assumingMemoryBound(to: UInt8.self)
            if finite && id.isFinite {
                // (x − min)·id + 0.5 lies in [0.5, 15.5]: plain truncation is cvttss2si's result.
                for j in 0..<16 {
                    let q0 = UInt8(truncatingIfNeeded: Swift.min(15, Int32((x[j] - mn) * id + 0.5)))
                    let q1 = UInt8(truncatingIfNeeded: Swift.min(15, Int32((x[16 + j] - mn) * id + 0.5)))
                    qs[j] = q0 | (q1 << 4)
                }
                return
            }
            for j in 0..<16 {
                let x0 = Int8(truncatingIfNeeded: cvtt((x[j] - mn) * id + 0.5))
                let x1 = Int8(truncatingIfNeeded: cvtt((x[16 + j] - mn) * id + 0.5))
                qs[j] = UInt8(truncatingIfNeeded: min(15, x0)) | (UInt8(truncatingIfNeeded: min(15, x1)) << 4)
            }
        }
    }

    /// Q5_0 block (22 bytes): fp16 d = max/−16 (max: the signed value of largest magnitude, first
    /// wins), 4 bytes of fifth bits (bit j of the little-endian u32 is element j's), 16 bytes of
    /// low nibbles; q = min(31, (int8)(x·id + 16.5)).
    public static func quantizeQ5_0(
        _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        forEachBlock(src, dst, blockBytes: 22, threads: threads) { x, out in
            let (mx, nonFinite) = blockSignedMax(x)
            let d = mx / -16
            let id: Float = d != 0 ? 1 / d : 0
            out.storeBytes(
                of: (nonFinite ? HalfConversion.f32ToF16(d) : HalfConversion.f32ToF16Finite(d)).littleEndian,
                as: UInt16.self)
            if !nonFinite && id.isFinite {  // x·id + 16.5 in [0.5, 32.5]: truncation is cvttss2si's result
                let v = quarters(x)
                // min(31, trunc(f)) = trunc(min(f, 31)) for f ≥ 0
                @inline(__always) func code(_ w: Lanes8) -> Codes8 {
                    var f = w * id + 16.5
                    f.replace(with: 31, where: f .> 31)
                    return truncated(f)
                }
                packFiveBit((code(v.0), code(v.1), code(v.2), code(v.3)), qs: out + 6, qh: out + 2)
                return
            }
            var q = (Codes8(), Codes8(), Codes8(), Codes8())
            for j in 0..<8 {
                func c(_ i: Int) -> Int32 { Int32(min(31, Int8(truncatingIfNeeded: cvtt(x[i] * id + 16.5)))) & 0xFF }
                q.0[j] = c(j)
                q.1[j] = c(8 + j)
                q.2[j] = c(16 + j)
                q.3[j] = c(24 + j)
            }
            packFiveBit(q, qs: out + 6, qh: out + 2)
        }
    }

    typealias Lanes8 = SIMD8<Float>
    typealias Codes8 = SIMD8<Int32>

    /// A block's 32 values as four vectors of 8.
    @inline(__always)
    static func quarters(_ x: UnsafePointer<Float>) -> (Lanes8, Lanes8, Lanes8, Lanes8) {
        let p = UnsafeRawPointer(x)
        return (
            p.loadUnaligned(as: Lanes8.self), p.loadUnaligned(fromByteOffset: 32, as: Lanes8.self),
            p.loadUnaligned(fromByteOffset: 64, as: Lanes8.self), p.loadUnaligned(fromByteOffset: 96, as: Lanes8.self)
        )
    }

    /// Truncation toward zero of values in [0, 2²²) (what cvttss2si gives there) with compares and
    /// blends only: round to nearest through 1.5·2²³, then step down where that overshot.
    @inline(__always)
    static func truncated(_ v: Lanes8) -> Codes8 {
        let n = KQuantSearch.nearestInt(v)
        return n &+ Codes8(repeating: 0).replacing(with: -1, where: KQuantSearch.float(n) .> v)
    }

    /// 32 five-bit codes in four vectors of 8 (elements 0–7, 8–15, 16–23, 24–31; only the low 8 bits
    /// count, as in ggml's uint8_t): low nibbles of j and j+16 in byte j, fifth bits as a little-endian u32.
    @inline(__always)
    static func packFiveBit(
        _ q: (Codes8, Codes8, Codes8, Codes8), qs: UnsafeMutableRawPointer, qh: UnsafeMutableRawPointer
    ) {
        let lo0 = (q.0 & 0xF) | ((q.2 & 0xF) &<< 4), lo1 = (q.1 & 0xF) | ((q.3 & 0xF) &<< 4)
        qs.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: lo0), as: SIMD8<UInt8>.self)
        qs.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: lo1), toByteOffset: 8, as: SIMD8<UInt8>.self)
        let lane = Codes8(0, 1, 2, 3, 4, 5, 6, 7)
        // Spelled term by term: as one expression it took the type checker 6 s.
        let b0: Codes8 = ((q.0 &>> 4) & 1) &<< lane
        let b1: Codes8 = ((q.1 &>> 4) & 1) &<< (lane &+ 8)
        let b2: Codes8 = ((q.2 &>> 4) & 1) &<< (lane &+ 16)
        let b3: Codes8 = ((q.3 &>> 4) & 1) &<< (lane &+ 24)
        let bits = b0 | b1 | b2 | b3
        qh.storeBytes(of: UInt32(truncatingIfNeeded: bits.wrappedSum()).littleEndian, as: UInt32.self)
    }

    /// The smallest and largest of 32 finite values, by compares and blends.
    @inline(__always)
    static func minMax(_ v: (Lanes8, Lanes8, Lanes8, Lanes8)) -> (Float, Float) {
        var lo = v.0, hi = v.0
        lo.replace(with: v.1, where: v.1 .< lo)
        hi.replace(with: v.1, where: v.1 .> hi)
        lo.replace(with: v.2, where: v.2 .< lo)
        hi.replace(with: v.2, where: v.2 .> hi)
        lo.replace(with: v.3, where: v.3 .< lo)
        hi.replace(with: v.3, where: v.3 .> hi)
        var lo4 = lo.lowHalf, hi4 = hi.lowHalf
        let lo4b = lo.highHalf, hi4b = hi.highHalf
        lo4.replace(with: lo4b, where: lo4b .< lo4)
        hi4.replace(with: hi4b, where: hi4b .> hi4)
        var lo2 = lo4.lowHalf, hi2 = hi4.lowHalf
        let lo2b = lo4.highHalf, hi2b = hi4.highHalf
        lo2.replace(with: lo2b, where: lo2b .< lo2)
        hi2.replace(with: hi2b, where: hi2b .> hi2)
        return (lo2[1] < lo2[0] ? lo2[1] : lo2[0], hi2[1] > hi2[0] ? hi2[1] : hi2[0])
    }

    /// Dequantizes Q4_1 blocks.
    public static func dequantizeQ4_1(
        _ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        for b in 0..<(count / 32) {
            let d = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: b * 20, as: UInt16.self).littleEndian)
            let m = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: b * 20 + 2, as: UInt16.self).littleEndian)
            for j in 0..<16 {
                let q = src[b * 20 + 4 + j]
                dst[b * 32 + j] = d * Float(q & 0xF) + m
                dst[b * 32 + 16 + j] = d * Float(q >> 4) + m
            }
        }
    }

    /// Dequantizes Q5_0 blocks.
    public static func dequantizeQ5_0(
        _ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        for b in 0..<(count / 32) {
            let d = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: b * 22, as: UInt16.self).littleEndian)
            let qh = src.loadUnaligned(fromByteOffset: b * 22 + 2, as: UInt32.self).littleEndian
            for j in 0..<16 {
                let q = src[b * 22 + 6 + j]
                let lo = Int(q & 0xF) | Int((qh >> UInt32(j)) & 1) << 4
                let hi = Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
                dst[b * 32 + j] = d * Float(lo - 16)
                dst[b * 32 + 16 + j] = d * Float(hi - 16)
            }
        }
    }
}

extension GGMLQuantizer {
    /// Q5_1 block (24 bytes): fp16 d = (max − min)/31, fp16 m = min, 4 bytes of fifth bits, 16 bytes
    /// of low nibbles; q = (uint8)((x − min)·id + 0.5) (`quantize_row_q5_1_ref`, llama.cpp's
    /// fallback for Q5_K rows that do not fill 256 values).
    public static func quantizeQ5_1(
        _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        forEachBlock(src, dst, blockBytes: 24, threads: threads) { x, out in
            if !blockAbsMax(x).nonFinite {
                // All finite: min and max by vector reductions, exact, unless a zero is the
                // extreme (then which signed zero ggml's scan keeps matters: the scalar path).
                let v = quarters(x)
                let (mn, mx) = minMax(v)
                let d = (mx - mn) / 31
                let id: Float = d != 0 ? 1 / d : 0
                if mn != 0 && mx != 0 && (mx - mn).isFinite && id.isFinite {  // (x − min)·id + 0.5 in [0.5, 31.5]
                    out.storeBytes(of: HalfConversion.f32ToF16Finite(d).littleEndian, as: UInt16.self)
                    (out + 2).storeBytes(of: HalfConversion.f32ToF16Finite(mn).littleEndian, as: UInt16.self)
                    @inline(__always) func code(_ w: Lanes8) -> Codes8 { truncated((w - mn) * id + 0.5) }
                    packFiveBit((code(v.0), code(v.1), code(v.2), code(v.3)), qs: out + 8, qh: out + 4)
                    return
                }
            }
            var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                let v = x[j]
                mn = v < mn ? v : mn
                mx = v > mx ? v : mx
            }
            let d = (mx - mn) / 31
            let id: Float = d != 0 ? 1 / d : 0
            out.storeBytes(of: HalfConversion.f32ToF16(d).littleEndian, as: UInt16.self)
            (out + 2).storeBytes(of: HalfConversion.f32ToF16(mn).littleEndian, as: UInt16.self)
            var q = (Codes8(), Codes8(), Codes8(), Codes8())
            for j in 0..<8 {
                func c(_ i: Int) -> Int32 { Int32(UInt8(truncatingIfNeeded: cvtt((x[i] - mn) * id + 0.5))) }
                q.0[j] = c(j)
                q.1[j] = c(8 + j)
                q.2[j] = c(16 + j)
                q.3[j] = c(24 + j)
            }
            packFiveBit(q, qs: out + 8, qh: out + 4)
        }
    }

    /// Dequantizes Q5_1 blocks.
    public static func dequantizeQ5_1(
        _ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        for b in 0..<(count / 32) {
            let d = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: b * 24, as: UInt16.self).littleEndian)
            let m = HalfConversion.f16ToF32(src.loadUnaligned(fromByteOffset: b * 24 + 2, as: UInt16.self).littleEndian)
            let qh = src.loadUnaligned(fromByteOffset: b * 24 + 4, as: UInt32.self).littleEndian
            for j in 0..<16 {
                let q = src[b * 24 + 8 + j]
                let lo = UInt32(q & 0xF) | ((qh >> UInt32(j)) & 1) << 4
                let hi = UInt32(q >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
                dst[b * 32 + j] = d * Float(lo) + m
                dst[b * 32 + 16 + j] = d * Float(hi) + m
            }
        }
    }
}
