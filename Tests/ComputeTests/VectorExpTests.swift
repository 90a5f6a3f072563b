import Foundation
import Testing
@testable import Compute

/// The decoder's lane-parallel eˣ against libm's: every float step over [−87, 88] within 4 ulp
/// (relative 5e-7), the edges (underflow to 0, the clamp, NaN, ±inf), a tail shorter than a
/// lane group, SwiGLU's product against its scalar formula, and attention's softmax against a
/// double-precision one for rows of every tail length.
@Suite struct VectorExpTests {
    @Test func matchesLibmAcrossTheRange() {
        var xs = [Float]()
        var x: Float = -87
        while x <= 88 { xs.append(x); x += 0.013 }
        xs += [0, -0.0, 1e-8, -1e-8, 0.5, -0.5, 1, -1, 20.5, -20.5]
        var ys = xs
        ys.withUnsafeMutableBufferPointer { VectorExp.expInPlace($0.baseAddress!, count: $0.count) }
        var worst: Float = 0
        for (x, y) in zip(xs, ys) {
            let want = Foundation.exp(x)
            worst = max(worst, abs(y - want) / want)
        }
        #expect(worst <= 5e-7, "worst relative error \(worst)")
    }

    @Test func edgesAndTail() {
        var xs: [Float] = [-88, -100, -.infinity, .nan, 88, 1000, .infinity, 0, 1, 2, 3]  // 11: one full group and a tail of 3
        xs.withUnsafeMutableBufferPointer { VectorExp.expInPlace($0.baseAddress!, count: $0.count) }
        #expect(xs[0] == 0 && xs[1] == 0 && xs[2] == 0)
        #expect(xs[3].isNaN)
        #expect(xs[4].isFinite && abs(xs[4] - Foundation.exp(Float(88))) / Foundation.exp(Float(88)) < 1e-6)
        #expect(xs[5] == xs[4] && xs[6] == xs[4])
        #expect(xs[7] == 1)
        for (i, v) in [Float(1), 2, 3].enumerated() { #expect(abs(xs[8 + i] - Foundation.exp(v)) / Foundation.exp(v) < 5e-7) }
    }

    @Test func swiGLUMatchesTheScalarFormula() {
        let g: [Float] = (0..<203).map { Float($0 - 101) * 0.37 } + [-200, 200, 0]
        let u: [Float] = g.indices.map { Float(($0 * 7919) % 13) * 0.25 - 1.5 }
        var out = g
        out.withUnsafeMutableBufferPointer { op in u.withUnsafeBufferPointer { VectorExp.swiGLU(op.baseAddress!, $0.baseAddress!, count: op.count) } }
        for i in g.indices {
            let want = Double(g[i]) / (1 + Foundation.exp(-Double(g[i]))) * Double(u[i])
            #expect(abs(Double(out[i]) - want) <= 1e-6 * max(1, abs(want)), "g \(g[i]) u \(u[i]): \(out[i]) vs \(want)")
        }
    }

    @Test func softmaxMatchesDoublePrecision() {
        for count in [1, 2, 7, 8, 9, 16, 63, 64, 65, 200, 256] {
            let xs: [Float] = (0..<count).map { Float(($0 * 7919) % 101) * 0.31 - 12 + ($0 == count / 2 ? 30 : 0) }
            var ys = xs
            ys.withUnsafeMutableBufferPointer { VectorExp.softmaxInPlace($0.baseAddress!, count: count) }
            let mx = Double(xs.max()!), e = xs.map { Foundation.exp(Double($0) - mx) }, total = e.reduce(0, +)
            for i in 0..<count {
                #expect(abs(Double(ys[i]) - e[i] / total) <= 2e-6 * max(1e-3, e[i] / total), "count \(count) value \(i): \(ys[i]) vs \(e[i] / total)")
            }
            #expect(abs(ys.reduce(0.0) { $0 + Double($1) } - 1) < 1e-5)
        }
        var flat: [Float] = [-1e30, 5, 5]
        flat.withUnsafeMutableBufferPointer { VectorExp.softmaxInPlace($0.baseAddress!, count: 3) }
        #expect(flat == [0, 0.5, 0.5])
    }
}
