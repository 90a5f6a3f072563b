/// Q4_1 and Q5_0, bit-exact with ggml's `quantize_row_q4_1_ref` / `quantize_row_q5_0_ref` and
/// gguf-py's numpy quantizers on finite input. NaN is never a block's min/max (ggml compares with
/// `<` / `>`), and its own quant is 0 (x86 `cvttss2si`), as in the C reference.
extension GGMLQuantizer {
    /// Q4_1 block (20 bytes): fp16 d = (max − min)/15, fp16 m = min, 16 bytes of nibbles,
    /// q = min(15, (int8)((x − min)·id + 0.5)); element j in the low nibble of byte j, j+16 in the high.
    public static func quantizeQ4_1(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int) {
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
                        out.storeBytes(of: (finite ? HalfConversion.f32ToF16Finite(d) : HalfConversion.f32ToF16(d)).littleEndian, as: UInt16.self)
            (out + 2).storeBytes(of: (finite ? HalfConversion.f32ToF16Finite(mn) : HalfConversion.f32ToF16(mn)).littleEndian, as: UInt16.self)
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
    public static func quantizeQ5_0(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int) {
        forEachBlock(src, dst, blockBytes: 22, threads: threads) { x, out in
            let (mx, nonFinite) = blockSignedMax(x)
            let d = mx / -16
            let id: Float = d != 0 ? 1 / d : 0
                        out.storeBytes(of: (nonFinite ? HalfConversion.f32ToF16(d) : HalfConversion.f32ToF16Finite(d)).littleEndian, as: UInt16.self)
            let qs = (out + 6).assumingMemoryBound(to: UInt8.self)
            var qh: UInt32 = 0
            let fast = !nonFinite && id.isFinite  // x·id + 16.5 in [0.5, 32.5]
            for j in 0..<16 {
                let x0 = fast ? UInt8(truncatingIfNeeded: Swift.min(31, Int32(x[j] * id + 16.5)))
                    : UInt8(truncatingIfNeeded: min(31, Int8(truncatingIfNeeded: cvtt(x[j] * id + 16.5))))
                let x1 = fast ? UInt8(truncatingIfNeeded: Swift.min(31, Int32(x[16 + j] * id + 16.5)))
                    : UInt8(truncatingIfNeeded: min(31, Int8(truncatingIfNeeded: cvtt(x[16 + j] * id + 16.5))))
                qs[j] = (x0 & 0x0F) | ((x1 & 0x0F) << 4)
                qh |= UInt32((x0 & 0x10) >> 4) << UInt32(j)
                qh |= UInt32((x1 & 0x10) >> 4) << UInt32(j + 16)
            }
            (out + 2).storeBytes(of: qh.littleEndian, as: UInt32.self)
        }
    }

    /// Dequantizes Q4_1 blocks.
    public static func dequantizeQ4_1(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
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
    public static func dequantizeQ5_0(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
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
    public static func quantizeQ5_1(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer, threads: Int) {
        forEachBlock(src, dst, blockBytes: 24, threads: threads) { x, out in
            var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                let v = x[j]
                mn = v < mn ? v : mn
                mx = v > mx ? v : mx
            }
            let d = (mx - mn) / 31
            let id: Float = d != 0 ? 1 / d : 0
            // NaN never becomes min or max, so look for it (and ±inf) separately.
            let finite = !blockAbsMax(x).nonFinite && (mx - mn).isFinite
            out.storeBytes(of: (finite ? HalfConversion.f32ToF16Finite(d) : HalfConversion.f32ToF16(d)).littleEndian, as: UInt16.self)
            (out + 2).storeBytes(of: (finite ? HalfConversion.f32ToF16Finite(mn) : HalfConversion.f32ToF16(mn)).littleEndian, as: UInt16.self)
            let qs = (out + 8).assumingMemoryBound(to: UInt8.self)
            var qh: UInt32 = 0
            // (x − min)·id + 0.5 lies in [0.5, 31.5]: plain truncation is cvttss2si's result.
            let fast = finite && id.isFinite
            for j in 0..<16 {
                let x0 = fast ? UInt8(truncatingIfNeeded: Int32((x[j] - mn) * id + 0.5)) : UInt8(truncatingIfNeeded: cvtt((x[j] - mn) * id + 0.5))
                let x1 = fast ? UInt8(truncatingIfNeeded: Int32((x[16 + j] - mn) * id + 0.5))
                    : UInt8(truncatingIfNeeded: cvtt((x[16 + j] - mn) * id + 0.5))
                qs[j] = (x0 & 0x0F) | ((x1 & 0x0F) << 4)
                qh |= UInt32((x0 & 0x10) >> 4) << UInt32(j)
                qh |= UInt32((x1 & 0x10) >> 4) << UInt32(j + 16)
            }
            (out + 4).storeBytes(of: qh.littleEndian, as: UInt32.self)
        }
    }

    /// Dequantizes Q5_1 blocks.
    public static func dequantizeQ5_1(_ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>) {
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
