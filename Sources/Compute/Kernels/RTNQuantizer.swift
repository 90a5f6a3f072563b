/// Round-to-nearest integer quantization over F32 rows, per tensor, per output channel (row) or
/// per group of consecutive values within a row.
///
/// Exact with the numpy reference in Tests/reference/decode_compressed.py (float32 arithmetic,
/// round half to even like `np.rint`):
/// - symmetric: s = amax / (2^(b-1) − 1); code = clip(rint(x / s), −2^(b-1), 2^(b-1) − 1) + 2^(b-1);
/// - asymmetric: lo = min(min x, 0), hi = max(max x, 0); s = (hi − lo) / (2^b − 1);
///   z = clip(rint(−lo / s), 0, 2^b − 1); code = clip(rint(x / s) + z, 0, 2^b − 1);
/// with s = 0 giving code = z (x̂ = 0). Dequantized x̂ = (code − z) · s, z = 2^(b-1) when symmetric.
/// Non-finite values make their group's scale non-finite; codes of NaN are z.
public enum RTNQuantizer {
    public enum Granularity: Equatable, Sendable {
        case tensor, channel, group(Int)
    }

    /// How a group's scale and zero point are chosen: from its range (`minmax`), or the range
    /// shrunk by the factor, of 1, 0.99, …, 0.21, whose grid gives the least squared error (`mse`,
    /// the search GPTQ's reference code and llm-compressor's MSE observer run).
    public enum Observer: String, Equatable, Sendable, CaseIterable {
        case minmax, mse
    }

    /// Codes (one per value, unsigned), one scale and one zero point per group.
    public struct Result {
        public var codes: [UInt8]
        public var scales: [Float]
        public var zeros: [UInt8]
    }

    /// Values per group for a tensor of `shape`.
    public static func groupLength(_ g: Granularity, shape: [Int]) -> Int {
        let numel = shape.reduce(1, *)
        switch g {
        case .tensor: return max(numel, 1)
        case .channel: return max(shape.last ?? numel, 1)
        case .group(let n): return n
        }
    }

    /// Quantizes `x` in place to its dequantized values and returns codes, scales and zeros.
    public static func quantize(
        _ x: UnsafeMutableBufferPointer<Float>, shape: [Int], bits: Int, symmetric: Bool,
        granularity: Granularity, observer: Observer = .minmax, threads: Int
    ) -> Result {
        let n = x.count
        let gl = groupLength(granularity, shape: shape)
        let groups = n == 0 ? 0 : n / gl
        var res = Result(
            codes: [UInt8](repeating: 0, count: n), scales: [Float](repeating: 0, count: groups),
            zeros: [UInt8](repeating: 0, count: groups))
        res.codes.withUnsafeMutableBufferPointer { codes in
            res.scales.withUnsafeMutableBufferPointer { scales in
                res.zeros.withUnsafeMutableBufferPointer { zeros in
                    let per = max(1, (1 << 16) / gl)
                    let ranges = Parallel.chunks(groups, chunk: per)
                    Parallel.forEach(ranges.count, threads: threads) { r in
                        for g in ranges[r] {
                            let base = g * gl
                            let (s, z) = groupParameters(
                                UnsafeBufferPointer(rebasing: x[base..<(base + gl)]), bits: bits,
                                symmetric: symmetric, observer: observer)
                            scales[g] = s
                            zeros[g] = UInt8(z)
                            for j in 0..<gl {
                                let c = code(x[base + j], scale: s, zero: z, bits: bits)
                                codes[base + j] = UInt8(c)
                                x[base + j] = value(c, scale: s, zero: z)
                            }
                        }
                    }
                }
            }
        }
        return res
    }

    /// Scale and zero point of one group (see the type's note; NaN makes the scale NaN).
    @inline(__always)
    static func groupParameters(_ x: UnsafeBufferPointer<Float>, bits: Int, symmetric: Bool) -> (
        scale: Float, zero: Float
    ) {
        let (lo, hi) = range(x)
        return parameters(lo: lo, hi: hi, shrink: 1, bits: bits, symmetric: symmetric)
    }

    /// Scale and zero point of one group as `observer` chooses them.
    static func groupParameters(_ x: UnsafeBufferPointer<Float>, bits: Int, symmetric: Bool, observer: Observer) -> (
        scale: Float, zero: Float
    ) {
        let (lo, hi) = range(x)
        let plain = parameters(lo: lo, hi: hi, shrink: 1, bits: bits, symmetric: symmetric)
        guard observer == .mse, plain.scale.isFinite, plain.scale > 0 else { return plain }
        // The grids shrunk by 1 − i/100, i = 0…79 (0: the plain one), eight at a time as the lanes of one
        // vector; the first of the least error wins, as a loop over i in order would choose.
        var best = plain, bestErr = Float.infinity
        for first in stride(from: 0, to: 80, by: 8) {
            var s = SIMD8<Float>(), z = SIMD8<Float>()
            for k in 0..<8 {
                (s[k], z[k]) = parameters(
                    lo: lo, hi: hi, shrink: 1 - Float(first + k) / 100, bits: bits, symmetric: symmetric)
            }
            let e = squaredErrors(x, scales: s, zeros: z, bits: bits)
            for k in 0..<8 where first + k == 0 || (s[k] > 0 && s[k].isFinite && e[k] < bestErr) {
                (best, bestErr) = ((s[k], z[k]), e[k])
            }
        }
        return best
    }

    /// min(x, 0) and max(x, 0); both NaN once any element is.
    @inline(__always)
    static func range(_ x: UnsafeBufferPointer<Float>) -> (lo: Float, hi: Float) {
        var lo: Float = 0, hi: Float = 0
        for v in x {
            lo = v < lo || v.isNaN ? v : lo
            hi = v > hi || v.isNaN ? v : hi
        }
        return (lo, hi)
    }

    /// The grid for the range [p·lo, p·hi]: symmetric s = p·max(−lo, hi)/(2^(b−1) − 1), z = 2^(b−1);
    /// asymmetric s = (p·hi − p·lo)/(2^b − 1), z = clip(rint(−p·lo/s), 0, 2^b − 1).
    @inline(__always)
    static func parameters(lo: Float, hi: Float, shrink p: Float, bits: Int, symmetric: Bool) -> (
        scale: Float, zero: Float
    ) {
        let qmaxU = Float((1 << bits) - 1)
        let half = Float(1 << (bits - 1))
        if symmetric { return (p * max(-lo, hi) / (half - 1), half) }
        let s = (p * hi - p * lo) / qmaxU
        return (s, s.isFinite && s != 0 ? min(max((-(p * lo) / s).rounded(.toNearestOrEven), 0), qmaxU) : 0)
    }

    /// Σ (x̂ − x)² of a group on the grid (s, z), the squares added in value order.
    static func squaredError(_ x: UnsafeBufferPointer<Float>, _ p: (scale: Float, zero: Float), bits: Int) -> Float {
        squaredErrors(x, scales: SIMD8(repeating: p.scale), zeros: SIMD8(repeating: p.zero), bits: bits)[0]
    }

    /// Σ (x̂ − x)² of a group on eight grids at once (lane k: the grid (s[k], z[k])), each lane's
    /// squares added in value order.
    @inline(__always)
    static func squaredErrors(
        _ x: UnsafeBufferPointer<Float>, scales s: SIMD8<Float>, zeros z: SIMD8<Float>, bits: Int
    ) -> SIMD8<Float> {
        var e = SIMD8<Float>()
        for v in x {
            let lanes = SIMD8<Float>(repeating: v)
            let d = (code(lanes, scale: s, zero: z, bits: bits) - z) * s - lanes
            e += d * d
        }
        return e
    }

    /// The code of `v` (as a float): clip(rint(v / s) + z, 0, 2^b − 1), or z when s is 0 or not finite or v is NaN.
    @inline(__always)
    static func code(_ v: Float, scale s: Float, zero z: Float, bits: Int) -> Float {
        if s == 0 || !s.isFinite || v.isNaN { return z }
        return min(max((v / s).rounded(.toNearestOrEven) + z, 0), Float((1 << bits) - 1))
    }

    /// `code` of eight values at once, lane by lane the same operations (so the same bytes), with
    /// the eight divisions in flight together.
    @inline(__always)
    static func code(_ v: SIMD8<Float>, scale s: SIMD8<Float>, zero z: SIMD8<Float>, bits: Int) -> SIMD8<Float> {
        let maxCode = Float((1 << bits) - 1)
        var c = (v / s).rounded(.toNearestOrEven) + z
        c.replace(with: 0, where: c .< 0)
        c.replace(with: maxCode, where: c .> maxCode)
        c.replace(with: z, where: (s .== 0) .| .!isFinite(s) .| (v .!= v))
        return c
    }

    /// The value code `c` stands for on the grid (s, z): (c − z) · s, or 0 when s is not finite.
    @inline(__always)
    static func value(_ c: Float, scale s: Float, zero z: Float) -> Float { (c - z) * (s.isFinite ? s : 0) }

    /// `value` of eight codes at once, lane by lane the same operations.
    @inline(__always)
    static func value(_ c: SIMD8<Float>, scale s: SIMD8<Float>, zero z: SIMD8<Float>) -> SIMD8<Float> {
        (c - z) * s.replacing(with: 0, where: .!isFinite(s))
    }

    @inline(__always)
    private static func isFinite(_ s: SIMD8<Float>) -> SIMDMask<SIMD8<Float>.MaskStorage> {
        (s .> -Float.infinity) .& (s .< Float.infinity)
    }

    /// Bits each code takes when packed: 8 for 8-bit, 4 for 3- and 4-bit, 2 for 2-bit.
    public static func packedBits(_ bits: Int) -> Int { bits == 8 ? 8 : (bits == 2 ? 2 : 4) }

    /// Packs codes row by row (rows of `rowLength` values), lowest bits first, each row padded to whole bytes.
    public static func pack(_ codes: [UInt8], rowLength: Int, bits: Int) -> [UInt8] {
        let pb = packedBits(bits)
        if pb == 8 { return codes }
        let perByte = 8 / pb
        let rowBytes = (rowLength + perByte - 1) / perByte
        let rows = codes.count / max(rowLength, 1)
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        for r in 0..<rows {
            for j in 0..<rowLength {
                out[r * rowBytes + j / perByte] |= codes[r * rowLength + j] << UInt8((j % perByte) * pb)
            }
        }
        return out
    }

    /// Bytes of the packed codes of a tensor.
    public static func packedBytes(shape: [Int], bits: Int) -> Int {
        let rowLength = max(shape.last ?? 1, 1)
        let rows = shape.reduce(1, *) / rowLength
        let perByte = 8 / packedBits(bits)
        return rows * ((rowLength + perByte - 1) / perByte)
    }
}
