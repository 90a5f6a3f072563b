import Foundation
import Testing
@testable import Compute

/// AWQ's searches (AWQSearch) and the folding of its scales (BlockWeights): the error they score
/// is the output error, scaling never does worse than no scaling, clipping never raises a group's
/// error, results do not depend on the thread count, and folded scales leave the model's function.
@Suite struct AWQTests {
    /// Deterministic values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2_000_000) / 1_000_000 - 1
        }
    }

    /// Tokens × cols inputs with a few channels 30× larger (AWQ's salient channels), their statistics.
    static func inputs(tokens: Int, cols: Int) -> (x: [Float], stats: AWQSearch.Inputs) {
        var x = values(tokens * cols, seed: 3)
        for t in 0..<tokens { for j in [1, 5, 9] { x[t * cols + j] *= 30 } }
        var g = [Float](repeating: 0, count: cols * cols)
        for t in 0..<tokens {
            for i in 0..<cols { for j in 0..<cols { g[i * cols + j] += x[t * cols + i] * x[t * cols + j] } }
        }
        let mean = (0..<cols).map { j in (0..<tokens).reduce(0.0) { $0 + Double(abs(x[$1 * cols + j])) } / Double(tokens) }
        return (x, AWQSearch.Inputs(gram: g, meanAbs: mean, tokens: tokens))
    }

    /// Symmetric 3-bit round to nearest in groups of 8: a coarse grid where scaling matters.
    static func linear(rows: Int, cols: Int, seed: UInt64) -> AWQSearch.Linear {
        AWQSearch.Linear(
            weight: values(rows * cols, seed: seed), rows: rows,
            quantize: { w, rows, _ in
                _ = RTNQuantizer.quantize(
                    w, shape: [rows, cols], bits: 3, symmetric: true, granularity: .group(8), threads: 1)
            },
            usesImportance: false, group: 8, symmetric: true)
    }

    @Test func outputErrorIsTheSquaredOutputDifference() {
        let (tokens, rows, cols) = (40, 6, 16)
        let (x, stats) = Self.inputs(tokens: tokens, cols: cols)
        let d = Self.values(rows * cols, seed: 7)
        var direct = 0.0
        for t in 0..<tokens {
            for r in 0..<rows {
                let y = (0..<cols).reduce(0.0) { $0 + Double(x[t * cols + $1]) * Double(d[r * cols + $1]) }
                direct += y * y
            }
        }
        let viaGram = AWQSearch.outputError(delta: d, rows: rows, gram: stats.gram, cols: cols, threads: 2)
        #expect(abs(viaGram - direct) <= 1e-4 * direct, "\(viaGram) against \(direct)")
    }

    @Test func scaleSearchBeatsNoScalingAndIsTheSameForAnyThreadCount() {
        let (_, stats) = Self.inputs(tokens: 64, cols: 32)
        let group = [Self.linear(rows: 12, cols: 32, seed: 11), Self.linear(rows: 8, cols: 32, seed: 12)]
        for duo in [false, true] {
            let one = AWQSearch.scales(group, inputs: stats, grid: 20, duo: duo, threads: 1)
            let two = AWQSearch.scales(group, inputs: stats, grid: 20, duo: duo, threads: 2)
            #expect(one.scales == two.scales && one.error == two.error, "duo \(duo)")
            #expect(one.error < 0.9 * one.baseline, "duo \(duo): \(one.error) against \(one.baseline) unscaled")
            // The salient channels get the largest scales.
            let top = one.scales.indices.sorted { one.scales[$0] > one.scales[$1] }.prefix(3)
            #expect(Set(top) == [1, 5, 9], "duo \(duo): largest scales on \(Array(top))")
        }
        // On inputs of equal size there is nothing to gain: no scaling.
        let flat = AWQSearch.Inputs(
            gram: (0..<(32 * 32)).map { $0 % 33 == 0 ? 1 : 0 }, meanAbs: [Double](repeating: 0.5, count: 32),
            tokens: 1)
        let none = AWQSearch.scales(group, inputs: flat, grid: 20, duo: false, threads: 2)
        #expect(none.scales == [Float](repeating: 1, count: 32) && none.error == none.baseline && none.alpha == nil)
    }

    @Test func clipNeverRaisesTheOutputErrorAndIsTheSameForAnyThreadCount() {
        let (_, stats) = Self.inputs(tokens: 64, cols: 32)
        var a = Self.linear(rows: 10, cols: 32, seed: 21)
        var b = a
        let original = a.weight
        let ra = AWQSearch.clip(&a, inputs: stats, threads: 1)
        let rb = AWQSearch.clip(&b, inputs: stats, threads: 2)
        #expect(a.weight == b.weight && ra.error == rb.error)
        #expect(ra.error <= ra.baseline)
        #expect(a.weight != original, "some group is clipped on a 3-bit grid")
        // Clipping only shrinks magnitudes.
        #expect(zip(a.weight, original).allSatisfy { abs($0) <= abs($1) })
    }

    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    /// Block 0's weights with the scales folded in, the other tensors as they are.
    final class Folded: WeightSupplier {
        let base: ModelWeights
        let block: BlockWeights
        let shapes: [String: TensorInfo]

        init(_ base: ModelWeights, _ block: BlockWeights, _ shapes: [String: TensorInfo]) {
            (self.base, self.block, self.shapes) = (base, block, shapes)
        }

        func tensor(_ name: String, count: Int) throws -> [Float] {
            guard name.hasPrefix("model.layers.0."), let t = shapes[name] else { return try base.tensor(name, count: count) }
            return try block.values(t)
        }

        func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
            try tensor(base + ".weight", count: out * `in`)
        }
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: ["tiny/hf", "tiny-qwen2/hf"])
    func foldedScalesKeepTheModelsFunction(_ model: String) throws {
        let source = try ModelSource(path: Self.llama! + "/" + model)
        let files = try DecoderModelFiles(model: source)
        let c = files.config
        let weights = try ModelWeights(model: source)
        let shapes = Dictionary(try source.open().flatMap(\.tensors).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var block = BlockWeights(0, config: c, weights: weights)
        let scale = { (n: Int, seed: UInt64) in Self.values(n, seed: seed).map { Float(exp(2 * Double($0))) } }
        try block.apply(
            scale(c.hidden, 1), to: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
            fold: .norm("input_layernorm"))
        try block.apply(scale(c.hidden, 2), to: ["mlp.gate_proj", "mlp.up_proj"], fold: .norm("post_attention_layernorm"))
        try block.apply(scale(c.intermediate(0), 3), to: ["mlp.down_proj"], fold: .rows("mlp.up_proj"))
        let changed = try block.values(shapes[LlamaNames.block(0, "mlp.up_proj.weight")]!)
        #expect(try changed != weights.tensor(LlamaNames.block(0, "mlp.up_proj.weight"), count: changed.count))
        let ids = Array(files.tokenizer.encode(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 4))
            .prefix(32))
        let dec = LlamaDecoder(config: c, samples: 1, seqLen: ids.count, threads: 2)
        let before = try dec.hidden([ids], weights).data
        let after = try dec.hidden([ids], Folded(weights, block, shapes)).data
        let scaleOf = before.map { abs($0) }.max()!
        let worst = zip(before, after).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4 * scaleOf, "\(model): hidden states differ by \(worst) (largest \(scaleOf))")
    }
}
