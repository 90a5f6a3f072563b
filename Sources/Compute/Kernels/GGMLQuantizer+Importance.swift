/// ggml's quantizers with an importance matrix (`quantize_q4_K` and friends given `quant_weights`,
/// what llama-quantize runs with `--imatrix`): per row, each value's error is weighted by its
/// column's importance (the mean squared activation that multiplies it) times
/// √(σ² + x²), and the searches minimise that weighted error. Bit-exact with llama.cpp's
/// `llama_model_quantize` given the same importance (Tests/reference/check_kquants.py). Q8_0, F16
/// and F32 ignore the importance, as in ggml.
extension GGMLQuantizer {
    /// Quantizes `src` (rows of `importance.count` values) to `type`, weighting each column by its
    /// importance; rows are independent, so the bytes are the same for any `threads`.
    public static func quantize(
        _ type: GGMLType, _ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>,
        into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        let n = importance.count
        guard let quantizeRow = type.traits.weightedRow else { preconditionFailure("\(type.name) takes no importance") }
        precondition(n > 0 && src.count % n == 0 && n % type.block.count == 0)
        let rowBytes = n / type.block.count * type.block.bytes
        let rows = Parallel.chunks(src.count / n, chunk: 16)
        Parallel.forEach(rows.count, threads: threads) { r in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { wbuf in
                for row in rows[r] {
                    let x = src.baseAddress! + row * n, out = dst.baseAddress! + row * rowBytes
                    let qw = importance.baseAddress!, w = wbuf.baseAddress!
                    quantizeRow(x, n, qw, w, out)
                }
            }
        }
    }

    /// ggml's per-value weights importance[l] · √(σ² + x_l²) of one sub-block of `n` values, and their sum.
    @inline(__always)
    private static func weights(
        _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ n: Int, sigma2: Float,
        into w: UnsafeMutablePointer<Float>
    ) -> Float {
        var sum: Float = 0
        for l in 0..<n {
            w[l] = qw[l] * (sigma2 + x[l] * x[l]).squareRoot()
            sum += w[l]
        }
        return sum
    }

    /// Σ x² of `n` values, in order.
    @inline(__always)
    private static func sumSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for j in 0..<n { s += x[j] * x[j] }
        return s
    }

    /// One row of Q4_0/Q5_0 (symmetric) or Q4_1/Q5_1 (scale and min): σ² is the row's mean square.
    static func legacyRow(
        _ type: GGMLType, _ x: UnsafePointer<Float>, _ n: Int, _ qw: UnsafePointer<Float>,
        _ w: UnsafeMutablePointer<Float>, _ out: UnsafeMutableRawPointer
    ) {
        let sigma2 = sumSquares(x, n) / Float(n)
        let bytes = type.block.bytes
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { codes in
            let L = codes.baseAddress!, aux = L + 32
            for b in 0..<(n / 32) {
                let xb = x + 32 * b, ob = out + bytes * b
                for j in 0..<32 { w[j] = qw[32 * b + j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
                switch type {
                case .q4_0, .q5_0:
                    let five = type == .q5_0
                    let d = L.withMemoryRebound(to: Int8.self, capacity: 32) {
                        ImportanceSearch.symmetric(xb, 32, nmax: five ? 16 : 8, $0, weights: w)
                    }
                    store(half(d), ob)
                    packLegacy(L, ob + (five ? 6 : 2), qh: five ? ob + 2 : nil)
                default:
                    let five = type == .q5_1
                    let r = ImportanceSearch.asymmetric(
                        xb, 32, nmax: five ? 31 : 15, weights: w, L, aux: aux, rmin: -0.9, rdelta: 0.05, nstep: 36)
                    store(half(r.scale), ob)
                    store(half(-r.min), ob + 2)
                    packLegacy(L, ob + (five ? 8 : 4), qh: five ? ob + 4 : nil)
                }
            }
        }
    }

    /// 32 codes as nibbles (j low, j+16 high) and, for 5-bit types, their fifth bits as a little-endian u32.
    private static func packLegacy(
        _ L: UnsafePointer<UInt8>, _ qs: UnsafeMutableRawPointer, qh: UnsafeMutableRawPointer?
    ) {
        let q = qs.assumingMemoryBound(to: UInt8.self)
        var high: UInt32 = 0
        for j in 0..<16 {
            q[j] = (L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4)
            high |= UInt32((L[j] & 0x10) >> 4) << UInt32(j)
            high |= UInt32((L[j + 16] & 0x10) >> 4) << UInt32(j + 16)
        }
        qh?.storeBytes(of: high.littleEndian, as: UInt32.self)
    }

    /// Q4_K/Q5_K super-block (`quantize_row_q4_K_impl`): 8 sub-blocks searched with weights
    /// importance·√(σ² + x²), σ² = 2·mean square; their scales and mins quantized to 6 bits by
    /// `ImportanceSearch.positive` weighted by each sub-block's total weight.
    static func q45KImportance(
        _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer, nmax: Int
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 32 + 16) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + 24) { f in
                let L = codes.baseAddress!, aux = L + 256, Ls = aux + 32, Lm = Ls + 8
                let w = f.baseAddress!, sw = w + 32, scales = sw + 8, mins = scales + 8
                let sigma2 = 2 * sumSquares(x, superBlock) / Float(superBlock)
                for j in 0..<8 {
                    sw[j] = weights(x + 32 * j, qw + 32 * j, 32, sigma2: sigma2, into: w)
                    let r = ImportanceSearch.asymmetric(
                        x + 32 * j, 32, nmax: Int32(nmax), weights: w, L + 32 * j, aux: aux,
                        rmin: -0.9, rdelta: 0.05, nstep: 36)
                    scales[j] = r.scale
                    mins[j] = r.min
                }
                let d = ImportanceSearch.positive(scales, 8, nmax: 63, Ls, weights: sw)
                let m = ImportanceSearch.positive(mins, 8, nmax: 63, Lm, weights: sw)
                let sc = out.assumingMemoryBound(to: UInt8.self) + 4
                for j in 0..<8 {  // ggml clamps to 63 in Q5_K only
                    packScalesMins(nmax == 31 ? min(63, Ls[j]) : Ls[j], nmax == 31 ? min(63, Lm[j]) : Lm[j], j, sc)
                }
                store(half(d), out)
                store(half(m), out + 2)
                q45KFinish(x, out, L, nmax: nmax)
            }
        }
    }

    /// Q6_K super-block (`quantize_row_q6_K_impl`): each 16-value sub-block's symmetric search
    /// weighted by the importance alone; the scales packed as without importance.
    static func q6KImportance(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { f in
                let L = codes.baseAddress!, scales = f.baseAddress!
                var maxScale: Float = 0, maxAbs: Float = 0
                for b in 0..<16 {
                    let s = ImportanceSearch.symmetric(x + 16 * b, 16, nmax: 32, L + 16 * b, weights: qw + 16 * b)
                    scales[b] = s
                    if abs(s) > maxAbs {
                        maxAbs = abs(s)
                        maxScale = s
                    }
                }
                if q6KScales(scales, maxScale: maxScale, maxAbs: maxAbs, out) { q6KFinish(x, out, L) }
            }
        }
    }

    /// Q3_K super-block (`quantize_row_q3_K_impl`): weights importance·√(σ² + x²), σ² = 2·mean
    /// square; the 16 signed sub-block scales quantized to 6 bits by the weighted symmetric search.
    static func q3KImportance(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256 + 16) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 48) { f in
                let L = codes.baseAddress!, Ls = L + 256
                let w = f.baseAddress!, sw = w + 16, scales = sw + 16
                let sigma2 = 2 * sumSquares(x, superBlock) / Float(superBlock)
                for j in 0..<16 {
                    sw[j] = weights(x + 16 * j, qw + 16 * j, 16, sigma2: sigma2, into: w)
                    scales[j] = ImportanceSearch.symmetric(x + 16 * j, 16, nmax: 4, L + 16 * j, weights: w)
                }
                let sc = out.assumingMemoryBound(to: UInt8.self) + 96
                for j in 0..<12 { sc[j] = 0 }
                let d = ImportanceSearch.symmetric(scales, 16, nmax: 32, Ls, weights: sw)
                for j in 0..<16 {
                    let l = UInt8(bitPattern: Ls[j])
                    if j < 8 { sc[j] = l & 0xF } else { sc[j - 8] |= (l & 0xF) << 4 }
                    sc[j % 4 + 8] |= (l >> 4) << (2 * (j / 4))
                }
                store(half(d), out + 108)
                q3KFinish(x, out, L)
            }
        }
    }

    /// Q2_K super-block (`quantize_row_q2_K_impl`): weights importance·√(σ² + x²), σ² = mean
    /// square; 4-bit scales and mins by `ImportanceSearch.positive`; always requantized.
    static func q2KImportance(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 16 + 32) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { f in
                let L = codes.baseAddress!, aux = L + 256, Ls = aux + 16, Lm = Ls + 16
                let w = f.baseAddress!, sw = w + 16, scales = sw + 16, mins = scales + 16
                let sigma2 = sumSquares(x, superBlock) / Float(superBlock)
                for j in 0..<16 {
                    sw[j] = weights(x + 16 * j, qw + 16 * j, 16, sigma2: sigma2, into: w)
                    let r = ImportanceSearch.asymmetric(
                        x + 16 * j, 16, nmax: 3, weights: w, L + 16 * j, aux: aux,
                        rmin: -0.9, rdelta: 0.05, nstep: 36)
                    scales[j] = r.scale
                    mins[j] = r.min
                }
                let d = ImportanceSearch.positive(scales, 16, nmax: 15, Ls, weights: sw)
                let m = ImportanceSearch.positive(mins, 16, nmax: 15, Lm, weights: sw)
                let sc = out.assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 { sc[j] = Ls[j] | (Lm[j] << 4) }
                store(half(d), out + 80)
                store(half(m), out + 82)
                q2KFinish(x, out, L)
            }
        }
    }
}
