/// ggml's Q6_K without an importance matrix (`quantize_row_q6_K_ref`), bit-exact with what
/// llama.cpp's `llama_model_quantize` writes: 16 sub-blocks of 16 values, each with an int8 scale
/// against one fp16 super-block scale, 6-bit codes. Tests/reference/check_kquants.py pins the bytes.
extension GGMLQuantizer {
    /// Q6_K: 16 sub-blocks of 16, 6-bit codes (low 4 bits in ql, high 2 in qh), 8-bit signed
    /// scales (210 bytes: ql, qh, scales, d).
    static func q6K(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { buf in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { s in
                let L = buf.baseAddress!, scales = s.baseAddress!
                var maxScale: Float = 0, maxAbs: Float = 0
                withLanes { xt, _, Lt, aux in
                    for h in 0..<2 {
                        KQuantSearch.transpose(x + 128 * h, n: 16, into: xt)
                        let r = KQuantSearch.symmetric(xt, 16, nmax: 32, Lt, aux: aux)
                        untranspose(Lt, n: 16, into: L + 128 * h)
                        for j in 0..<8 { scales[8 * h + j] = r[j] }
                    }
                }
                for b in 0..<16 {
                    let a = abs(scales[b])
                    if a > maxAbs {
                        maxAbs = a
                        maxScale = scales[b]
                    }
                }
                if q6KScales(scales, maxScale: maxScale, maxAbs: maxAbs, out) { q6KFinish(x, out, L) }
            }
        }
    }

    /// Q6_K's 8-bit sub-block scales against one fp16 d (the value of largest magnitude maps to
    /// −128); false, with the block zeroed, when every scale is below `groupMaxEps`.
    static func q6KScales(
        _ scales: UnsafePointer<Float>, maxScale: Float, maxAbs: Float, _ out: UnsafeMutableRawPointer
    ) -> Bool {
        if maxAbs < KQuantSearch.groupMaxEps {
            let p = out.assumingMemoryBound(to: UInt8.self)
            for i in 0..<210 { p[i] = 0 }
            return false
        }
        let iscale = -128 / maxScale
        store(half(1 / iscale), out + 208)
        let sc = (out + 192).assumingMemoryBound(to: Int8.self)
        for b in 0..<16 { sc[b] = Int8(truncatingIfNeeded: min(127, KQuantSearch.nearestInt(iscale * scales[b]))) }
        return true
    }

    /// The rest of a Q6_K super-block once its d and scales are stored: values rounded to that
    /// grid (zero-scale sub-blocks keep their codes), packed into ql and qh.
    static func q6KFinish(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>) {
        let p = out.assumingMemoryBound(to: UInt8.self)
        let sc = (out + 192).assumingMemoryBound(to: Int8.self)
        let d0 = HalfConversion.f16ToF32(out.load(fromByteOffset: 208, as: UInt16.self))
        for j in 0..<16 {
            let d = d0 * Float(sc[j])
            if d == 0 { continue }
            for i in 0..<16 { L[16 * j + i] = Int8(max(-32, min(31, KQuantSearch.nearestInt(x[16 * j + i] / d))) + 32) }
        }
        L.withMemoryRebound(to: UInt8.self, capacity: 256) { u in
            let ql = p, qh = p + 128
            for (k, j) in stride(from: 0, to: superBlock, by: 128).enumerated() {
                for l in 0..<32 {
                    ql[64 * k + l] = (u[j + l] & 0xF) | ((u[j + l + 64] & 0xF) << 4)
                    ql[64 * k + l + 32] = (u[j + l + 32] & 0xF) | ((u[j + l + 96] & 0xF) << 4)
                    qh[32 * k + l] =
                        (u[j + l] >> 4) | ((u[j + l + 32] >> 4) << 2) | ((u[j + l + 64] >> 4) << 4)
                        | ((u[j + l + 96] >> 4) << 6)
                }
            }
        }
    }
}
