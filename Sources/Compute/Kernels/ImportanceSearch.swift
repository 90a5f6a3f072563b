/// The scale searches ggml runs when quantizing with an importance matrix (`make_qx_quants` with
/// weights, `make_qkx3_quants`, `make_qp_quants`), scalar, with the same float operations in the
/// same order as ggml's C (no fused multiply-adds, ties through `nearestInt`), so the codes and
/// scales are ggml's bit for bit. Each minimises Σ wᵢ (xᵢ − x̂ᵢ)² for the caller's weights.
enum ImportanceSearch {
    @inline(__always)
    private static func near(_ f: Float) -> Int32 { KQuantSearch.nearestInt(f) }

    /// Symmetric codes nmax + clamp(l, −nmax, nmax−1) in `L` (as ggml's int8 array holds them) and
    /// the weighted least-squares scale, best of 19 trial scales around −nmax/max.
    static func symmetric(
        _ x: UnsafePointer<Float>, _ n: Int, nmax: Int32, _ L: UnsafeMutablePointer<Int8>,
        weights w: UnsafePointer<Float>
    ) -> Float {
        var mx: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax {
                amax = ax
                mx = x[i]
            }
        }
        if amax < KQuantSearch.groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        @inline(__always) func code(_ iscale: Float, _ i: Int) -> Int32 {
            max(-nmax, min(nmax - 1, near(iscale * x[i])))
        }
        var iscale = Float(-nmax) / mx
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = code(iscale, i)
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            let fl = Float(l)
            sumLX += w[i] * x[i] * fl
            sumL2 += w[i] * fl * fl
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        // The 18 trial scales' sums, eight trials per vector: lane k sums over i in order exactly as
        // the scalar loop does for its step, so each sum is ggml's; the choice then runs in step order.
        typealias Lanes = KQuantSearch.Lanes
        @inline(__always) func sums(_ steps: Lanes) -> (trial: Lanes, lx: Lanes, l2: Lanes) {
            let trial = -(Lanes(repeating: Float(nmax)) + 0.1 * steps) / mx
            var sx = Lanes.zero, s2 = Lanes.zero
            for i in 0..<n {
                let fl = Lanes(KQuantSearch.clamp(KQuantSearch.nearestInt(trial * x[i]), -nmax, nmax - 1))
                sx += w[i] * x[i] * fl
                s2 += w[i] * fl * fl
            }
            return (trial, sx, s2)
        }
        let trials = (sums(Self.steps.0), sums(Self.steps.1), sums(Self.steps.2))
        var winner: Float?
        for k in 0..<18 {
            let t = k < 8 ? trials.0 : k < 16 ? trials.1 : trials.2
            let (sx, s2) = (t.lx[k % 8], t.l2[k % 8])
            if s2 > 0 && sx * sx > best * s2 {
                scale = sx / s2
                best = scale * sx
                winner = t.trial[k % 8]
            }
        }
        if let winner {
            for i in 0..<n { L[i] = Int8(truncatingIfNeeded: code(winner, i) + nmax) }
        }
        return scale
    }

    /// The trial steps of `symmetric` after the first (iscale = −(nmax + 0.1·step)/max): −9…−1, 1…9,
    /// eight per vector, the last two lanes of the third repeating 9 (not read).
    private static let steps = (
        KQuantSearch.Lanes(-9, -8, -7, -6, -5, -4, -3, -2), KQuantSearch.Lanes(-1, 1, 2, 3, 4, 5, 6, 7),
        KQuantSearch.Lanes(8, 9, 9, 9, 9, 9, 9, 9)
    )

    /// Asymmetric codes 0…nmax in `L` with a scale and a non-negative offset subtracted
    /// (`make_qkx3_quants`, squared error): the min/max grid, then nstep+1 shrunk ranges, each
    /// refitted by weighted least squares; returns (scale, offset).
    static func asymmetric(
        _ x: UnsafePointer<Float>, _ n: Int, nmax: Int32, weights w: UnsafePointer<Float>,
        _ L: UnsafeMutablePointer<UInt8>, aux: UnsafeMutablePointer<UInt8>,
        rmin: Float, rdelta: Float, nstep: Int
    ) -> (scale: Float, min: Float) {
        var lo = x[0], hi = x[0]
        var sumW = w[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
            sumW += w[i]
            sumX += w[i] * x[i]
        }
        if lo > 0 { lo = 0 }
        if !(hi > lo) {
            for i in 0..<n { L[i] = 0 }
            return (0, -lo)
        }
        let fmax = Float(nmax)
        var iscale = fmax / (hi - lo)
        var scale = 1 / iscale
        var best: Float = 0
        for i in 0..<n {
            let l = max(0, min(nmax, near(iscale * (x[i] - lo))))
            L[i] = UInt8(truncatingIfNeeded: l)
            let diff = scale * Float(l) + lo - x[i]
            best += w[i] * (diff * diff)
        }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + fmax) / (hi - lo)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let v = iscale * (x[i] - lo)
                let l: Int32 = v > 0 ? near(min(v, fmax)) : 0
                aux[i] = UInt8(truncatingIfNeeded: l)
                let fl = Float(l)
                sumL += w[i] * fl
                sumL2 += w[i] * fl * fl
                sumXL += w[i] * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            guard D > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var err: Float = 0
            for i in 0..<n {
                let diff = thisScale * Float(aux[i]) + thisMin - x[i]
                err += w[i] * (diff * diff)
            }
            if err < best {
                for i in 0..<n { L[i] = aux[i] }
                best = err
                scale = thisScale
                lo = thisMin
            }
        }
        return (scale, -lo)
    }

    /// Non-negative codes 0…nmax for non-negative values (`make_qp_quants`: the sub-block scales
    /// and mins of Q2_K/Q4_K/Q5_K against one super-block scale): 9 trial scales, then up to five
    /// passes that move single codes while the weighted fit improves. Returns the scale.
    static func positive(
        _ x: UnsafePointer<Float>, _ n: Int, nmax: Int32, _ L: UnsafeMutablePointer<UInt8>,
        weights w: UnsafePointer<Float>
    ) -> Float {
        var mx: Float = 0
        for i in 0..<n { mx = mx > x[i] ? mx : x[i] }
        if mx < KQuantSearch.groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        var iscale = fmax / mx
        for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: near(iscale * x[i])) }
        let scale = 1 / iscale
        var best: Float = 0
        for i in 0..<n {
            let diff = x[i] - scale * Float(L[i])
            best += w[i] * diff * diff
        }
        for step in -4...4 where step != 0 {
            let iscaleStep = (0.1 * Float(step) + fmax) / mx
            let scaleStep = 1 / iscaleStep
            var err: Float = 0
            for i in 0..<n {
                let l = min(nmax, near(iscaleStep * x[i]))
                let diff = x[i] - scaleStep * Float(l)
                err += w[i] * diff * diff
            }
            if err < best {
                best = err
                iscale = iscaleStep
            }
        }
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = min(nmax, near(iscale * x[i]))
            L[i] = UInt8(truncatingIfNeeded: l)
            let fl = Float(l)
            sumLX += w[i] * x[i] * fl
            sumL2 += w[i] * fl * fl
        }
        for _ in 0..<5 {
            var changed = false
            for i in 0..<n {
                let li = Float(L[i])
                var slx = sumLX - w[i] * x[i] * li
                var sl2 = sumL2 - w[i] * li * li
                guard slx > 0 && sl2 > 0 else { continue }
                let newL = min(nmax, near(x[i] * sl2 / slx))
                guard newL != Int32(L[i]) else { continue }
                let fl = Float(newL)
                slx += w[i] * x[i] * fl
                sl2 += w[i] * fl * fl
                if slx * slx * sumL2 > sumLX * sumLX * sl2 {
                    L[i] = UInt8(truncatingIfNeeded: newL)
                    sumLX = slx
                    sumL2 = sl2
                    changed = true
                }
            }
            if !changed { break }
        }
        return sumL2 > 0 ? sumLX / sumL2 : 0
    }
}
