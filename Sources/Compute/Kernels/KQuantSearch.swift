/// The scale searches ggml's k-quants run per sub-block (`make_qkx2_quants`, `make_qx_quants`,
/// `make_q3_quants`), eight sub-blocks at once: lane j runs sub-block j's search with the same float
/// operations in the same order as ggml's scalar C (no fused multiply-adds, ties through
/// `nearestInt` like ggml's `nearest_int`), so every lane's result is ggml's bit for bit. Branches
/// become masks. Inputs are transposed: row i holds element i of each of the eight sub-blocks.
/// (Sixteen lanes, two AVX2 vectors, measured slower: the loops' values no longer fit the registers.)
enum KQuantSearch {
    typealias Lanes = SIMD8<Float>
    typealias Codes = SIMD8<Int32>

    /// Values below this magnitude make an all-zero group (ggml's `GROUP_MAX_EPS`).
    static let groupMaxEps: Float = 1e-15

    /// Round half to even through the 1.5·2²³ trick (valid for |f| ≤ 4,194,303).
    @inline(__always)
    static func nearestInt(_ f: Float) -> Int32 {
        let v = f + 12_582_912
        return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) - 0x0040_0000
    }

    @inline(__always)
    static func nearestInt(_ f: Lanes) -> Codes {
        let v = f + 12_582_912
        return (unsafeBitCast(v, to: Codes.self) & 0x007F_FFFF) &- 0x0040_0000
    }

    @inline(__always)
    static func magnitude(_ v: Lanes) -> Lanes {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Lanes.self)
    }

    /// Codes as floats, exactly (|l| < 2²²), without the generic SIMD conversion.
    @inline(__always)
    static func float(_ l: Codes) -> Lanes {
        unsafeBitCast(l &+ 0x4B40_0000, to: Lanes.self) - 12_582_912
    }

    /// −v as a scalar Float negates (the sign bit flipped; SIMD's prefix minus is 0 − v, which keeps +0).
    @inline(__always)
    static func negated(_ v: Lanes) -> Lanes {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) ^ 0x8000_0000, to: Lanes.self)
    }

    @inline(__always)
    static func clamp(_ l: Codes, _ lo: Int32, _ hi: Int32) -> Codes {
        pointwiseMin(pointwiseMax(l, Codes(repeating: lo)), Codes(repeating: hi))
    }

    /// Row i of eight sub-blocks of `n` values, one after another.
    @inline(__always)
    static func transpose(_ x: UnsafePointer<Float>, n: Int, into t: UnsafeMutablePointer<Lanes>) {
        for i in 0..<n {
            t[i] = Lanes(
                x[i], x[n + i], x[2 * n + i], x[3 * n + i], x[4 * n + i], x[5 * n + i], x[6 * n + i], x[7 * n + i])
        }
    }

    /// Asymmetric search (`make_qkx2_quants`): codes 0…nmax in `L`, returns each lane's scale and
    /// (non-negative) offset subtracted; tries nstep+1 shrunk ranges, weighted squared (or
    /// absolute, `mad`) error, least-squares scale and min per try.
    @inline(__always)
    static func asymmetric(
        _ x: UnsafePointer<Lanes>, _ n: Int, nmax: Int32, weights w: UnsafePointer<Lanes>,
        _ L: UnsafeMutablePointer<Codes>, aux: UnsafeMutablePointer<Codes>,
        rmin: Float, rdelta: Float, nstep: Int, mad: Bool
    ) -> (scale: Lanes, min: Lanes) {
        var lo = x[0], hi = x[0]
        var sumW = w[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            lo.replace(with: x[i], where: x[i] .< lo)
            hi.replace(with: x[i], where: x[i] .> hi)
            sumW += w[i]
            sumX += w[i] * x[i]
        }
        lo.replace(with: 0, where: lo .> 0)
        let flat = hi .== lo, flatMin = negated(lo)
        let fmax = Float(nmax)
        var iscale = fmax / (hi - lo)
        var scale = 1 / iscale
        var best = Lanes(repeating: 0)
        for i in 0..<n {
            let l = clamp(nearestInt(iscale * (x[i] - lo)), 0, nmax)
            L[i] = l
            let diff = scale * float(l) + lo - x[i]
            best += w[i] * (mad ? magnitude(diff) : diff * diff)
        }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + fmax) / (hi - lo)
            var sumL = Lanes(repeating: 0), sumL2 = Lanes(repeating: 0), sumXL = Lanes(repeating: 0)
            for i in 0..<n {
                let l = clamp(nearestInt(iscale * (x[i] - lo)), 0, nmax)
                aux[i] = l
                let fl = float(l)
                sumL += w[i] * fl
                sumL2 += w[i] * fl * fl
                sumXL += w[i] * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            let positive = thisMin .> 0
            thisMin.replace(with: 0, where: positive)
            thisScale.replace(with: sumXL / sumL2, where: positive)
            var err = Lanes(repeating: 0)
            for i in 0..<n {
                let diff = thisScale * float(aux[i]) + thisMin - x[i]
                err += w[i] * (mad ? magnitude(diff) : diff * diff)
            }
            let better = (D .> 0) .& (err .< best)
            guard any(better) else { continue }
            let take = unsafeBitCast(better, to: Codes.self)
            for i in 0..<n { L[i] = (aux[i] & take) | (L[i] & ~take) }
            best.replace(with: err, where: better)
            scale.replace(with: thisScale, where: better)
            lo.replace(with: thisMin, where: better)
        }
        if any(flat) {
            let keep = ~unsafeBitCast(flat, to: Codes.self)
            for i in 0..<n { L[i] &= keep }
            scale.replace(with: 0, where: flat)
            lo.replace(with: negated(flatMin), where: flat)
        }
        return (scale, negated(lo))
    }

    /// The value of largest magnitude per lane (the first on ties) and that magnitude.
    @inline(__always)
    private static func signedMax(_ x: UnsafePointer<Lanes>, _ n: Int) -> (mx: Lanes, amax: Lanes) {
        var mx = Lanes(repeating: 0), amax = Lanes(repeating: 0)
        for i in 0..<n {
            let ax = magnitude(x[i])
            let more = ax .> amax
            amax.replace(with: ax, where: more)
            mx.replace(with: x[i], where: more)
        }
        return (mx, amax)
    }

    /// Symmetric search weighted by x² (`make_qx_quants` with rmse_type 1, no importance): codes
    /// nmax + clamp(l, −nmax, nmax−1) in `L`; tries 18 scales around nmax/max, keeps the best
    /// least-squares fit.
    static func symmetric(
        _ x: UnsafePointer<Lanes>, _ n: Int, nmax: Int32, _ L: UnsafeMutablePointer<Codes>,
        aux: UnsafeMutablePointer<Codes>
    ) -> Lanes {
        let (mx, amax) = signedMax(x, n)
        let fmax = Float(nmax), lowest = -nmax, highest = nmax - 1
        var iscale = -fmax / mx
        var sumLX = Lanes(repeating: 0), sumL2 = Lanes(repeating: 0)
        for i in 0..<n {
            let l = clamp(nearestInt(iscale * x[i]), lowest, highest)
            L[i] = l &+ nmax
            let w = x[i] * x[i], fl = float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        var scale = sumLX / sumL2
        scale.replace(with: 0, where: sumL2 .== 0)
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / mx
            sumLX = Lanes(repeating: 0)
            sumL2 = Lanes(repeating: 0)
            for i in 0..<n {
                let l = clamp(nearestInt(iscale * x[i]), lowest, highest)
                aux[i] = l &+ nmax
                let w = x[i] * x[i], fl = float(l)
                sumLX += w * x[i] * fl
                sumL2 += w * fl * fl
            }
            let better = (sumL2 .> 0) .& (sumLX * sumLX .> best * sumL2)
            guard any(better) else { continue }
            let take = unsafeBitCast(better, to: Codes.self)
            for i in 0..<n { L[i] = (aux[i] & take) | (L[i] & ~take) }
            scale.replace(with: sumLX / sumL2, where: better)
            best.replace(with: scale * sumLX, where: better)
        }
        return zeroSmall(amax, L, n, scale)
    }

    /// Q3_K's search (`make_q3_quants` with rmse): symmetric codes, then up to five passes that
    /// move single codes while the x²-weighted fit improves (a lane with no move in a pass would
    /// make none in the next, so lanes that settled early are left as they are). Codes nmax + l.
    static func symmetricRefined(_ x: UnsafePointer<Lanes>, _ n: Int, nmax: Int32, _ L: UnsafeMutablePointer<Codes>)
        -> Lanes
    {
        let (mx, amax) = signedMax(x, n)
        let lowest = -nmax, highest = nmax - 1
        let iscale = -Float(nmax) / mx
        var sumLX = Lanes(repeating: 0), sumL2 = Lanes(repeating: 0)
        for i in 0..<n {
            let l = clamp(nearestInt(iscale * x[i]), lowest, highest)
            L[i] = l
            let w = x[i] * x[i], fl = float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        for _ in 0..<5 {
            var changed = SIMDMask<Codes>(repeating: false)
            for i in 0..<n {
                let w = x[i] * x[i], li = float(L[i])
                var slx = sumLX - w * x[i] * li
                let active = slx .> 0
                var sl2 = sumL2 - w * li * li
                let newL = clamp(nearestInt(x[i] * sl2 / slx), lowest, highest)
                let fl = float(newL)
                slx += w * x[i] * fl
                sl2 += w * fl * fl
                let accept = active .& (newL .!= L[i]) .& (sl2 .> 0) .& (slx * slx * sumL2 .> sumLX * sumLX * sl2)
                // rare: a branch, not a blend, keeps the sums off the critical path
                guard any(accept) else { continue }
                L[i].replace(with: newL, where: accept)
                sumLX.replace(with: slx, where: accept)
                sumL2.replace(with: sl2, where: accept)
                changed .|= accept
            }
            if !any(changed) { break }
        }
        for i in 0..<n { L[i] &+= nmax }
        var scale = sumLX / sumL2
        scale.replace(with: 0, where: .!(sumL2 .> 0))
        return zeroSmall(amax, L, n, scale)
    }

    /// Lanes whose largest magnitude is below `groupMaxEps` get all-zero codes and scale 0.
    @inline(__always)
    private static func zeroSmall(_ amax: Lanes, _ L: UnsafeMutablePointer<Codes>, _ n: Int, _ scale: Lanes) -> Lanes {
        let small = amax .< groupMaxEps
        guard any(small) else { return scale }
        let keep = ~unsafeBitCast(small, to: Codes.self)
        for i in 0..<n { L[i] &= keep }
        var s = scale
        s.replace(with: 0, where: small)
        return s
    }
}
