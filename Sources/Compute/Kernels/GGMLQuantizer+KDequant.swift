/// Decoding of ggml's k-quants (`dequantize_row_q{2..6}_K`), for error metrics, evaluation of a
/// GGUF export and k-quant inputs.
extension GGMLQuantizer {
    /// Dequantizes `count` values (a multiple of 256) of the k-quant `type`.
    public static func dequantizeK(
        _ type: GGMLType, _ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        let bytes = type.block.bytes
        for b in 0..<(count / superBlock) {
            let x = src.baseAddress! + b * bytes, y = dst.baseAddress! + b * superBlock
            let p = x.assumingMemoryBound(to: UInt8.self)
            switch type {
            case .q2_K: q2KValues(p, y)
            case .q3_K: q3KValues(p, y)
            case .q4_K, .q5_K: q45KValues(p, y, five: type == .q5_K)
            default: q6KValues(p, y)
            }
        }
    }

    @inline(__always)
    private static func f16(_ p: UnsafePointer<UInt8>, _ offset: Int) -> Float {
        HalfConversion.f16ToF32(UnsafeRawPointer(p + offset).loadUnaligned(as: UInt16.self).littleEndian)
    }

    private static func q2KValues(_ p: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 80), mn = f16(p, 82)
        var o = 0, s = 0
        for half in 0..<2 {
            let q = p + 16 + 32 * half
            for shift in stride(from: 0, to: 8, by: 2) {
                for part in 0..<2 {
                    let sc = p[s]
                    s += 1
                    let dl = d * Float(sc & 0xF), ml = mn * Float(sc >> 4)
                    for l in 0..<16 {
                        y[o] = dl * Float((q[16 * part + l] >> UInt8(shift)) & 3) - ml
                        o += 1
                    }
                }
            }
        }
    }

    private static func q3KValues(_ p: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 108), hmask = p, sc = p + 96
        var o = 0, s = 0, m: UInt8 = 1
        for half in 0..<2 {
            let q = p + 32 + 32 * half
            for shift in stride(from: 0, to: 8, by: 2) {
                for part in 0..<2 {
                    let low = s < 8 ? sc[s] & 0xF : sc[s - 8] >> 4
                    let scale = Int(low | (((sc[8 + s % 4] >> UInt8(2 * (s / 4))) & 3) << 4)) - 32
                    s += 1
                    let dl = d * Float(scale)
                    for l in 0..<16 {
                        let i = 16 * part + l
                        y[o] = dl * Float(Int((q[i] >> UInt8(shift)) & 3) - (hmask[i] & m != 0 ? 0 : 4))
                        o += 1
                    }
                }
                m <<= 1
            }
        }
    }

    private static func q45KValues(_ p: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, five: Bool) {
        let d = f16(p, 0), mn = f16(p, 2), sc = p + 4
        let qh = p + 16, ql = p + (five ? 48 : 16)
        var u1: UInt8 = 1, u2: UInt8 = 2
        for k in 0..<4 {
            let (s1, m1) = scaleMin(2 * k, sc), (s2, m2) = scaleMin(2 * k + 1, sc)
            let d1 = d * Float(s1), n1 = mn * Float(m1), d2 = d * Float(s2), n2 = mn * Float(m2)
            let q = ql + 32 * k
            for l in 0..<32 {
                let hi: Float = five && qh[l] & u1 != 0 ? 16 : 0
                y[64 * k + l] = d1 * (Float(q[l] & 0xF) + hi) - n1
            }
            for l in 0..<32 {
                let hi: Float = five && qh[l] & u2 != 0 ? 16 : 0
                y[64 * k + 32 + l] = d2 * (Float(q[l] >> 4) + hi) - n2
            }
            u1 <<= 2
            u2 <<= 2
        }
    }

    private static func q6KValues(_ p: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 208)
        let scales = UnsafeRawPointer(p + 192).assumingMemoryBound(to: Int8.self)
        for k in 0..<2 {
            let ql = p + 64 * k, qh = p + 128 + 32 * k, sc = scales + 8 * k, out = y + 128 * k
            for l in 0..<32 {
                let s = l / 16
                let q1 = Int((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32
                let q2 = Int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
                let q3 = Int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                let q4 = Int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                out[l] = d * Float(sc[s]) * Float(q1)
                out[l + 32] = d * Float(sc[s + 2]) * Float(q2)
                out[l + 64] = d * Float(sc[s + 4]) * Float(q3)
                out[l + 96] = d * Float(sc[s + 6]) * Float(q4)
            }
        }
    }
}
