import Foundation
import Testing
@testable import Compute

/// The IQ4 quantizer's lane-parallel search gives what ggml's scalar C gives: `iq4Nearest` the index
/// `best_index_int8`'s bisection finds for every value (grid points, ties, the ends, ±∞, NaN), and
/// whole IQ4_NL blocks the bytes of `quantize_row_iq4_nl_impl` written value by value (IQ4Scalar).
@Suite struct IQ4LanesTests {
    static let grid = GGMLQuantizer.iq4Grid

    /// Grid points, midpoints (ties), their float neighbours, the ends and beyond, ±∞ and NaN.
    static var edgeValues: [Float] {
        var v: [Float] = [0, -0, .infinity, -.infinity, .nan, 1e30, -1e30, .leastNonzeroMagnitude]
        for k in 0..<16 {
            let g = grid[k]
            v += [g, g.nextUp, g.nextDown]
            if k < 15 {
                let mid = (g + grid[k + 1]) / 2
                v += [mid, mid.nextUp, mid.nextDown]
            }
        }
        return v
    }

    @Test func nearestIsTheBisectionsIndexOnEdgesAndRandomValues() {
        var values = Self.edgeValues
        var s: UInt64 = 7
        for _ in 0..<4096 {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            values.append((Float(s >> 40) / Float(1 << 24) * 2 - 1) * 160)
        }
        while values.count % 16 != 0 { values.append(.nan) }
        for start in stride(from: 0, to: values.count, by: 16) {
            var x = SIMD16<Float>()
            for j in 0..<16 { x[j] = values[start + j] }
            let (value, index) = GGMLQuantizer.iq4Nearest(x, Self.grid)
            for j in 0..<16 {
                let want = IQ4Scalar.bestIndex(x[j])
                #expect(Int(index[j]) == want, "\(x[j]): \(index[j]) against \(want)")
                #expect(value[j] == Self.grid[want], "\(x[j])")
            }
        }
    }

    /// Blocks whose branches differ: zero, constant, one outlier, tiny values, exact grid multiples
    /// (ties), all negative, all positive, random; without and with importance.
    @Test(arguments: [false, true])
    func nlBlocksMatchGGMLsScalarSearch(importance: Bool) {
        var s: UInt64 = importance ? 11 : 5
        func uniform() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(s >> 40) + 0.5) / Float(1 << 24) * 2 - 1
        }
        for kind in 0..<64 {
            let x: [Float] = (0..<32).map { i in
                switch kind % 8 {
                case 0: 0
                case 1: 0.25
                case 2: i == 3 ? 40 : uniform() * 0.01
                case 3: uniform() * 1e-17
                case 4: Self.grid[i % 16] * 0.01
                case 5: -abs(uniform())
                case 6: abs(uniform()) + 2
                default: uniform() * 3
                }
            }
            let qw: [Float] = (0..<32).map { _ in abs(uniform()) + 0.01 }
            var got = [UInt8](repeating: 0, count: 18)
            x.withUnsafeBufferPointer { xp in
                qw.withUnsafeBufferPointer { wp in
                    got.withUnsafeMutableBytes {
                        GGMLQuantizer.iq4Block(
                            xp.baseAddress!, 32, importance: importance ? wp.baseAddress! : nil, $0.baseAddress!)
                    }
                }
            }
            let want = IQ4Scalar.nlBlock(x, importance: importance ? qw : nil)
            #expect(got == want, "kind \(kind)")
        }
    }
}

/// ggml's IQ4_NL search one value at a time, line for line as its C (`best_index_int8`,
/// `quantize_row_iq4_nl_impl` with 7 trial scales each side, one block of 32): the oracle
/// IQ4LanesTests holds Compute's lane-parallel search to.
enum IQ4Scalar {
    static let grid = GGMLQuantizer.iq4Grid

    static func bestIndex(_ x: Float) -> Int {
        let g = grid
        if x <= g[0] { return 0 }
        if x >= g[15] { return 15 }
        var lo = 0, hi = 15
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if x < g[mid] { hi = mid } else { lo = mid }
        }
        return x - g[hi - 1] < g[hi] - x ? hi - 1 : hi
    }

    /// One IQ4_NL block: the fp16 scale, then the codes two to a byte.
    static func nlBlock(_ x: [Float], importance qw: [Float]?) -> [UInt8] {
        var weight = [Float](repeating: 0, count: 32)
        var sigma2: Float = 0
        for j in 0..<32 { sigma2 += x[j] * x[j] }
        sigma2 *= 2 / 32
        for j in 0..<32 { weight[j] = qw.map { $0[j] * (sigma2 + x[j] * x[j]).squareRoot() } ?? x[j] * x[j] }
        var amax: Float = 0, mx: Float = 0
        for j in 0..<32 where abs(x[j]) > amax {
            amax = abs(x[j])
            mx = x[j]
        }
        var d: Float = 0
        if amax >= KQuantSearch.groupMaxEps {
            func sums(_ id: Float) -> (Float, Float) {
                var sumqx: Float = 0, sumq2: Float = 0
                for j in 0..<32 {
                    let q = grid[bestIndex(id * x[j])]
                    sumqx += weight[j] * q * x[j]
                    sumq2 += weight[j] * q * q
                }
                return (sumqx, sumq2)
            }
            var (qx, q2) = sums(1 / (-mx / grid[0]))
            d = qx / q2
            var best = d * qx
            for itry in -7...7 {
                (qx, q2) = sums(Float(itry - 127) / mx)
                if q2 > 0 && qx * qx > best * q2 {
                    d = qx / q2
                    best = d * qx
                }
            }
        }
        let id: Float = d != 0 ? 1 / d : 0
        let codes = (0..<32).map { UInt8(bestIndex(id * x[$0])) }
        let h = GGMLQuantizer.half(d)
        return [UInt8(h & 0xFF), UInt8(h >> 8)] + (0..<16).map { codes[$0] | codes[16 + $0] << 4 }
    }
}
