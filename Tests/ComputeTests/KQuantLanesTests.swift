import Foundation
import Testing
@testable import Compute

/// The lane-parallel k-quant searches give every lane exactly what ggml's scalar search gives
/// that sub-block (KQuantScalarSearch, line for line ggml's C): scales, mins and codes bit for
/// bit, on random sub-blocks and on the cases whose branches differ (all zero, constant, one
/// outlier, tiny values, ties), mixed within one group of eight lanes.
@Suite struct KQuantLanesTests {
    /// 8 sub-blocks of n values: lane kinds cycle so every group mixes branches.
    static func blocks(n: Int, seed: UInt64) -> [Float] {
        var s = seed
        func uniform() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(s >> 40) + 0.5) / Float(1 << 24) * 2 - 1
        }
        var x = [Float]()
        for j in 0..<8 {
            let kind = (Int(seed) + j) % 8
            for i in 0..<n {
                switch kind {
                case 0: x.append(0)
                case 1: x.append(0.25)
                case 2: x.append(i == 3 ? 40 : uniform() * 0.01)
                case 3: x.append(uniform() * 1e-17)
                case 4: x.append(Float(i % 5) * 0.5 - 1)  // exact grid points: ties
                case 5: x.append(-abs(uniform()))
                case 6: x.append(abs(uniform()) + 2)
                default: x.append(uniform() * 3)
                }
            }
        }
        return x
    }

    static func transposed(_ x: [Float], n: Int) -> [KQuantSearch.Lanes] {
        var t = [KQuantSearch.Lanes](repeating: .zero, count: n)
        x.withUnsafeBufferPointer { p in t.withUnsafeMutableBufferPointer { KQuantSearch.transpose(p.baseAddress!, n: n, into: $0.baseAddress!) } }
        return t
    }

    @Test(arguments: [(16, 3, Float(-0.5), 15, true), (32, 15, Float(-1), 20, false), (32, 31, Float(-0.5), 15, false)])
    func asymmetricLanesEqualScalar(n: Int, nmax: Int, rmin: Float, nstep: Int, mad: Bool) {
        for seed in UInt64(0)..<40 {
            let x = Self.blocks(n: n, seed: seed)
            let w = x.map { mad ? abs($0) : abs($0) + 0.5 }
            let xt = Self.transposed(x, n: n), wt = Self.transposed(w, n: n)
            var L = [KQuantSearch.Codes](repeating: .zero, count: n), aux = L
            let r = KQuantSearch.asymmetric(xt, n, nmax: Int32(nmax), weights: wt, &L, aux: &aux, rmin: rmin, rdelta: 0.1, nstep: nstep, mad: mad)
            for j in 0..<8 {
                var l = [UInt8](repeating: 0, count: n), a = l, m: Float = 0
                let s = KQuantScalarSearch.asymmetric(Array(x[(n * j)...]), n, nmax: nmax, weights: Array(w[(n * j)...]), &l, min: &m, aux: &a,
                                                      rmin: rmin, rdelta: 0.1, nstep: nstep, mad: mad)
                #expect(s.bitPattern == r.scale[j].bitPattern && m.bitPattern == r.min[j].bitPattern, "seed \(seed) lane \(j): \(s) \(m) vs \(r.scale[j]) \(r.min[j])")
                #expect(l == (0..<n).map { UInt8(L[$0][j]) }, "seed \(seed) lane \(j) codes")
            }
        }
    }

    @Test(arguments: [false, true]) func symmetricLanesEqualScalar(refined: Bool) {
        let n = 16, nmax = refined ? 4 : 32
        for seed in UInt64(0)..<40 {
            let x = Self.blocks(n: n, seed: seed)
            let xt = Self.transposed(x, n: n)
            var L = [KQuantSearch.Codes](repeating: .zero, count: n), aux = L
            let r = refined ? KQuantSearch.symmetricRefined(xt, n, nmax: Int32(nmax), &L)
                            : KQuantSearch.symmetric(xt, n, nmax: Int32(nmax), &L, aux: &aux)
            for j in 0..<8 {
                var l = [Int8](repeating: 0, count: n)
                let sub = Array(x[(n * j)..<(n * j + n)])
                let s = refined ? KQuantScalarSearch.symmetricRefined(sub, n, nmax: nmax, &l) : KQuantScalarSearch.symmetric(sub, n, nmax: nmax, &l)
                #expect(s.bitPattern == r[j].bitPattern, "seed \(seed) lane \(j): \(s) vs \(r[j])")
                #expect(l == (0..<n).map { Int8(L[$0][j]) }, "seed \(seed) lane \(j) codes")
            }
        }
    }
}
