/// eˣ eight lanes at a time (Cephes' `expf`: n = round(x·log₂e), a degree-6 polynomial on the
/// remainder, 2ⁿ through the exponent bits; within 2 ulp of libm on the ranges used here), for the
/// decoder's hot elementwise loops: SwiGLU's sigmoid and attention's softmax. Elementwise, so the
/// result does not depend on how rows are split over threads. Below −87.3 the result is 0, above
/// 88 it is clamped to e⁸⁸ (SwiGLU's sigmoid is exact to a float there); NaN stays NaN.
enum VectorExp {
    typealias Lanes = SIMD8<Float>

    @inline(__always)
    static func exp(_ v: Lanes) -> Lanes {
        let x = v.replacing(with: 88, where: v .> 88)
        var n = (x * 1.442_695_04 + 0.5).rounded(.down)
        n.replace(with: 0, where: .!(n .== n))  // NaN: keep the polynomial's NaN, not an undefined conversion
        n.replace(with: -127, where: n .< -127)
        var r = x - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        let z = r * r
        var p: Lanes = Lanes(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * z + r + 1
        // 2ⁿ: n + 127 lands in the low mantissa bits of n + 127 + 2²³ (n is a whole number in
        // [−127, 128]); shifted into the exponent field. Bit operations only, so it stays in lanes.
        let biased = unsafeBitCast(n + 8_388_735, to: SIMD8<UInt32>.self) & 0x1FF
        let scaled = y * unsafeBitCast(biased &<< 23, to: Lanes.self)
        return scaled.replacing(with: 0, where: v .< -87.3)
    }

    /// p[i] = e^p[i] for `count` values.
    static func expInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: Lanes.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: exp(v), as: Lanes.self)
            i += 8
        }
        if i < count {
            var v = Lanes(repeating: 0)
            for j in 0..<(count - i) { v[j] = p[i + j] }
            let e = exp(v)
            for j in 0..<(count - i) { p[i + j] = e[j] }
        }
    }

    /// p[i] = e^(p[i] − max) / Σ e^(p[j] − max) over the `count` values (count ≥ 1): softmax in place.
    /// The exponentials are summed in eight lanes (the last run's missing lanes add 0), the lanes
    /// added in a fixed order, so the bytes do not depend on where the row sits.
    static func softmaxInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let whole = count / 8 * 8
        var m = Lanes(repeating: -.infinity)
        var i = 0
        while i < whole {
            m = pointwiseMax(m, UnsafeRawPointer(p + i).loadUnaligned(as: Lanes.self))
            i += 8
        }
        var mx = m.max()
        for j in whole..<count { mx = Swift.max(mx, p[j]) }
        var sum = Lanes(), tail = Lanes(repeating: -.infinity)
        i = 0
        while i < whole {
            let e = exp(UnsafeRawPointer(p + i).loadUnaligned(as: Lanes.self) - mx)
            UnsafeMutableRawPointer(p + i).storeBytes(of: e, as: Lanes.self)
            sum += e
            i += 8
        }
        if whole < count {
            for j in whole..<count { tail[j - whole] = p[j] - mx }
            let e = exp(tail)  // e^−∞ = 0 in the unused lanes
            for j in whole..<count { p[j] = e[j - whole] }
            sum += e
        }
        let inv = 1 / sum.sum()
        i = 0
        while i < whole {
            UnsafeMutableRawPointer(p + i).storeBytes(
                of: UnsafeRawPointer(p + i).loadUnaligned(as: Lanes.self) * inv, as: Lanes.self)
            i += 8
        }
        for j in whole..<count { p[j] *= inv }
    }

    /// g[i] = silu(g[i]) · u[i] = g[i] / (1 + e^(−g[i])) · u[i] for `count` values: SwiGLU's product.
    static func swiGLU(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let gv = UnsafeRawPointer(g + i).loadUnaligned(as: Lanes.self),
                uv = UnsafeRawPointer(u + i).loadUnaligned(as: Lanes.self)
            UnsafeMutableRawPointer(g + i).storeBytes(of: gv / (1 + exp(-gv)) * uv, as: Lanes.self)
            i += 8
        }
        while i < count {
            var v = Lanes(repeating: 0)
            v[0] = -g[i]
            g[i] = g[i] / (1 + exp(v)[0]) * u[i]
            i += 1
        }
    }
}
