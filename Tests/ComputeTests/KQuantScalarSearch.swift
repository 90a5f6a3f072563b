@testable import Compute

/// ggml's k-quant scale searches one sub-block at a time, line for line as ggml's C
/// (`make_qkx2_quants`, `make_qx_quants`, `make_q3_quants`): the oracle KQuantLanesTests holds
/// Compute's lane-parallel searches to, bit for bit.
enum KQuantScalarSearch {
    /// Asymmetric search (`make_qkx2_quants`): codes 0…nmax in `L`, returns the scale and sets `min`
    /// to the (non-negative) offset subtracted; tries nstep+1 shrunk ranges, weighted squared
    /// (or absolute, `mad`) error, least-squares scale and min per try.
    static func asymmetric(_ x: UnsafePointer<Float>, _ n: Int, nmax: Int, weights w: UnsafePointer<Float>,
                           _ L: UnsafeMutablePointer<UInt8>, min theMin: inout Float, aux: UnsafeMutablePointer<UInt8>,
                           rmin: Float, rdelta: Float, nstep: Int, mad: Bool) -> Float {
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
        if hi == lo {
            for i in 0..<n { L[i] = 0 }
            theMin = -lo
            return 0
        }
        let fmax = Float(nmax)
        var iscale = fmax / (hi - lo)
        var scale = 1 / iscale
        var best: Float = 0
        for i in 0..<n {
            let l = KQuantSearch.nearestInt(iscale * (x[i] - lo))
            L[i] = UInt8(Swift.max(0, Swift.min(Int32(nmax), l)))
            var diff = scale * Float(L[i]) + lo - x[i]
            diff = mad ? abs(diff) : diff * diff
            best += w[i] * diff
        }
        if nstep < 1 { theMin = -lo; return scale }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + fmax) / (hi - lo)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = Swift.max(0, Swift.min(Int32(nmax), KQuantSearch.nearestInt(iscale * (x[i] - lo))))
                aux[i] = UInt8(l)
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
                var diff = thisScale * Float(aux[i]) + thisMin - x[i]
                diff = mad ? abs(diff) : diff * diff
                err += w[i] * diff
            }
            if err < best {
                for i in 0..<n { L[i] = aux[i] }
                best = err
                scale = thisScale
                lo = thisMin
            }
        }
        theMin = -lo
        return scale
    }

    /// Symmetric search weighted by x² (`make_qx_quants` with rmse_type 1, no importance): codes
    /// nmax + clamp(l, −nmax, nmax−1) in `L`; tries 18 scales around nmax/max, keeps the best
    /// least-squares fit.
    static func symmetric(_ x: UnsafePointer<Float>, _ n: Int, nmax: Int, _ L: UnsafeMutablePointer<Int8>) -> Float {
        guard let mx = signedMax(x, n, zeroing: L) else { return 0 }
        let fmax = Float(nmax), lowest = Int32(-nmax), highest = Int32(nmax - 1)
        var iscale = -fmax / mx
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = Swift.max(lowest, Swift.min(highest, KQuantSearch.nearestInt(iscale * x[i])))
            L[i] = Int8(l + Int32(nmax))
            let w = x[i] * x[i], fl = Float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        var scale = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / mx
            sumLX = 0; sumL2 = 0
            for i in 0..<n {
                let l = Swift.max(lowest, Swift.min(highest, KQuantSearch.nearestInt(iscale * x[i])))
                let w = x[i] * x[i], fl = Float(l)
                sumLX += w * x[i] * fl
                sumL2 += w * fl * fl
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n {
                    L[i] = Int8(Swift.max(lowest, Swift.min(highest, KQuantSearch.nearestInt(iscale * x[i]))) + Int32(nmax))
                }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }

    /// Q3_K's search (`make_q3_quants` with rmse): symmetric codes, then up to five passes that
    /// move single codes while the x²-weighted fit improves. Codes nmax + l in `L`.
    static func symmetricRefined(_ x: UnsafePointer<Float>, _ n: Int, nmax: Int, _ L: UnsafeMutablePointer<Int8>) -> Float {
        guard let mx = signedMax(x, n, zeroing: L) else { return 0 }
        let lowest = Int32(-nmax), highest = Int32(nmax - 1)
        let iscale = -Float(nmax) / mx
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = Swift.max(lowest, Swift.min(highest, KQuantSearch.nearestInt(iscale * x[i])))
            L[i] = Int8(l)
            let w = x[i] * x[i], fl = Float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = x[i] * x[i], li = Float(L[i])
                var slx = sumLX - w * x[i] * li
                guard slx > 0 else { continue }
                var sl2 = sumL2 - w * li * li
                let newL = Swift.max(lowest, Swift.min(highest, KQuantSearch.nearestInt(x[i] * sl2 / slx)))
                guard newL != Int32(L[i]) else { continue }
                let fl = Float(newL)
                slx += w * x[i] * fl
                sl2 += w * fl * fl
                if sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2 {
                    L[i] = Int8(newL); sumLX = slx; sumL2 = sl2
                    changed += 1
                }
            }
            if changed == 0 { break }
        }
        for i in 0..<n { L[i] += Int8(nmax) }
        return sumL2 > 0 ? sumLX / sumL2 : 0
    }

    /// The value of largest magnitude (the first on ties); nil, with all codes 0, below `groupMaxEps`.
    static func signedMax(_ x: UnsafePointer<Float>, _ n: Int, zeroing L: UnsafeMutablePointer<Int8>) -> Float? {
        var mx: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; mx = x[i] }
        }
        if amax < KQuantSearch.groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return nil
        }
        return mx
    }
}
