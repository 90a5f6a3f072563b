import Foundation
import Testing
@testable import Compute

/// `ImportanceSearch.symmetric` runs its 18 trial scales eight to a vector; each lane must give the
/// sums, and the search the codes and scale, of ggml's scalar `make_qx_quants` (rmse_type 1, with
/// weights), written out below as it is in ggml's C. (The whole quantizers against llama.cpp:
/// SqueezeCLITests/ImportanceMatrixReferenceTests.)
@Suite struct ImportanceSearchTests {
    /// ggml's loop, scalar, in its order.
    static func scalar(_ x: [Float], nmax: Int32, weights w: [Float]) -> (scale: Float, codes: [Int8]) {
        let n = x.count
        var L = [Int8](repeating: 0, count: n)
        var mx: Float = 0, amax: Float = 0
        for i in 0..<n where abs(x[i]) > amax {
            amax = abs(x[i])
            mx = x[i]
        }
        if amax < KQuantSearch.groupMaxEps { return (0, L) }
        func code(_ iscale: Float, _ i: Int) -> Int32 {
            max(-nmax, min(nmax - 1, KQuantSearch.nearestInt(iscale * x[i])))
        }
        var iscale = Float(-nmax) / mx
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = code(iscale, i)
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            sumLX += w[i] * x[i] * Float(l)
            sumL2 += w[i] * Float(l) * Float(l)
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(Float(nmax) + 0.1 * Float(step)) / mx
            sumLX = 0
            sumL2 = 0
            for i in 0..<n {
                let fl = Float(code(iscale, i))
                sumLX += w[i] * x[i] * fl
                sumL2 += w[i] * fl * fl
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n { L[i] = Int8(truncatingIfNeeded: code(iscale, i) + nmax) }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return (scale, L)
    }

    @Test(arguments: [4, 8, 16, 32] as [Int32])
    func vectorTrialsGiveTheScalarSearchsCodesAndScale(_ nmax: Int32) {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(nmax)
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 2_000_000) / 1_000_000 - 1
        }
        var differing = 0
        for trial in 0..<4000 {
            let n = trial % 2 == 0 ? 32 : 16
            var x = (0..<n).map { _ in next() * (trial % 7 == 0 ? 1e-3 : 3) }
            // Values on the grid's midpoints, where the rounding ties.
            if trial % 5 == 0 { x = x.map { (($0 * Float(nmax)).rounded(.down) + 0.5) / Float(nmax) } }
            if trial % 11 == 0 { x[trial % n] = 0 }
            let w = (0..<n).map { i in trial % 3 == 0 && i % 4 == 0 ? 0 : abs(next()) + 0.01 }
            let want = Self.scalar(x, nmax: nmax, weights: w)
            var codes = [Int8](repeating: 0, count: n)
            let scale = x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    codes.withUnsafeMutableBufferPointer {
                        ImportanceSearch.symmetric(xp.baseAddress!, n, nmax: nmax, $0.baseAddress!, weights: wp.baseAddress!)
                    }
                }
            }
            if scale.bitPattern != want.scale.bitPattern || codes != want.codes { differing += 1 }
        }
        #expect(differing == 0, "nmax \(nmax): \(differing) of 4000 groups differ from the scalar search")
    }
}
