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
