import Foundation
import Testing
@testable import Compute

/// `observer: mse` picks each group's grid by searching shrunk ranges: never worse than the plain
/// range in squared error, and clearly better on heavy-tailed (Laplace) weights at 4 bits.
@Suite struct ObserverTests {
    @Test(arguments: [false, true]) func mseGridsNeverLoseToMinMax(symmetric: Bool) {
        var seed: UInt64 = 3
        let x = (0..<64 * 200).map { _ -> Float in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let u = (Float(seed >> 40) + 0.5) / Float(1 << 24)
            return u < 0.5 ? Foundation.log(2 * u) * 0.02 : -Foundation.log(2 - 2 * u) * 0.02
        }
        for bits in [4, 8] {
            var total = (minmax: Float(0), mse: Float(0))
            for g in 0..<200 {
                x.withUnsafeBufferPointer { p in
                    let grp = UnsafeBufferPointer(rebasing: p[(g * 64)..<((g + 1) * 64)])
                    let a = RTNQuantizer.squaredError(grp, RTNQuantizer.groupParameters(grp, bits: bits, symmetric: symmetric), bits: bits)
                    let b = RTNQuantizer.squaredError(grp, RTNQuantizer.groupParameters(grp, bits: bits, symmetric: symmetric, observer: .mse), bits: bits)
                    #expect(b <= a, "group \(g), \(bits) bits")
                    total.minmax += a
                    total.mse += b
                }
            }
            #expect(total.mse <= total.minmax)
            if bits == 4 { #expect(total.mse < total.minmax * 0.95, "\(total)") }
        }
        // The quantizer uses the observer's grids: its dequantized values carry the smaller error.
        var a = x, b = x
        _ = a.withUnsafeMutableBufferPointer { RTNQuantizer.quantize($0, shape: [200, 64], bits: 4, symmetric: symmetric, granularity: .channel, threads: 2) }
        _ = b.withUnsafeMutableBufferPointer {
            RTNQuantizer.quantize($0, shape: [200, 64], bits: 4, symmetric: symmetric, granularity: .channel, observer: .mse, threads: 2)
        }
        let err = { (y: [Float]) in zip(y, x).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } }
        #expect(err(b) < err(a))
    }

    /// The MSE search runs eight shrunk grids as vector lanes; it picks the grid a loop over the
    /// shrink factors in order picks (the first of the least error, each error summed value by value
    /// with the scalar `code`), bit for bit, on group lengths that are and are not multiples of 8,
    /// with ties (constant groups, a lone outlier) among them.
    @Test(arguments: [false, true]) func theLaneSearchPicksWhatTheOrderedSearchPicks(symmetric: Bool) {
        var seed: UInt64 = symmetric ? 17 : 19
        func uniform() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return (Float(seed >> 40) + 0.5) / Float(1 << 24) * 2 - 1
        }
        func ordered(_ x: UnsafeBufferPointer<Float>, bits: Int) -> (scale: Float, zero: Float) {
            let (lo, hi) = RTNQuantizer.range(x)
            var best = (scale: Float(0), zero: Float(0)), bestErr = Float.infinity
            for i in 0..<80 {
                let p = RTNQuantizer.parameters(lo: lo, hi: hi, shrink: 1 - Float(i) / 100, bits: bits, symmetric: symmetric)
                guard i == 0 || (p.scale > 0 && p.scale.isFinite) else { continue }
                var e: Float = 0
                for v in x {
                    let d = (RTNQuantizer.code(v, scale: p.scale, zero: p.zero, bits: bits) - p.zero) * p.scale - v
                    e += d * d
                }
                if i == 0 || e < bestErr { (best, bestErr) = (p, e) }
            }
            return best
        }
        for (n, kind) in [(64, 0), (576, 0), (7, 0), (1, 0), (64, 1), (64, 2), (33, 2), (64, 3)] {
            let x: [Float] = (0..<n).map { i in
                switch kind {
                case 1: 0.5
                case 2: i == 5 ? 30 : uniform() * 0.01
                case 3: Float(i % 4) * 0.25 - 0.5
                default: uniform()
                }
            }
            for bits in [2, 3, 4, 8] {
                x.withUnsafeBufferPointer { p in
                    let got = RTNQuantizer.groupParameters(p, bits: bits, symmetric: symmetric, observer: .mse)
                    let want = ordered(p, bits: bits)
                    #expect(got.scale.bitPattern == want.scale.bitPattern && got.zero == want.zero, "n \(n) kind \(kind) bits \(bits)")
                }
            }
        }
    }

    @Test func recipeKey() throws {
        let r = try RecipeParser.parse("stages: [{calibrate: {dataset: d.txt, samples: 4, seq_len: 32}}, {quantize: {method: gptq, bits: 4, scheme: asymmetric, group_size: 64, observer: mse}}, {export: {format: safetensors}}]")
        guard case .quantize(let q) = r.stages[1] else { Issue.record("not a quantize stage"); return }
        #expect(q.observer == .mse && r.canonicalJSON.contains("\"observer\":\"mse\""))
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
        #expect(try RecipeParser.parse("stages: [{quantize: {bits: 4}}, {export: {format: safetensors}}]").canonicalJSON
            .contains(#""observer":"minmax""#), "RTN keeps the min-max observer by default")
        #expect(throws: RecipeError.self) { try RecipeParser.parse("stages: [{quantize: {bits: 4, observer: absmax}}, {export: {format: safetensors}}]") }
    }
}
