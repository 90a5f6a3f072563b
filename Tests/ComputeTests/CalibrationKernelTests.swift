import Compute
import Foundation
import Testing

/// The BERT tokenizer on hand-checked cases, Wanda's per-row selection, and layer-wise
/// reconstruction on a small least-squares problem with a known optimum.
@Suite struct CalibrationKernelTests {
    func tokenizer() throws -> BertTokenizer {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", ",", "world", "!", "un", "##aff", "##able", "cafe", "東", "a"]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID().uuidString).txt").path
        try vocab.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return try BertTokenizer(vocabFile: path)
    }

    @Test func wordPieceLowercasesStripsAccentsAndSplitsPunctuation() throws {
        let t = try tokenizer()
        #expect(t.encode("Hello, WORLD!") == [4, 5, 6, 7])
        #expect(t.encode("unaffable") == [8, 9, 10])
        #expect(t.encode("Café\tA") == [11, 13])
        #expect(t.encode("東京") == [12, 1])  // each CJK ideograph is its own word; 京 is unknown
        #expect(t.encode("unaffablex") == [1])  // an unmatched rest makes the whole word [UNK]
        #expect(t.encode(" \u{0007}hello\u{200B} ") == [4])  // control and format characters dropped
        #expect((t.cls, t.sep, t.pad, t.unk) == (2, 3, 0, 1))
    }

    @Test func wandaPrunesLowestScorePerRow() {
        // Column norms 1, 10, 1: the middle column's weights survive even when small.
        var w: [Float] = [3, 0.5, 2,
                          -1, 0.2, 4]
        w.withUnsafeMutableBufferPointer { Wanda.prune($0, rows: 2, cols: 3, norms: [1, 10, 1], k: 1, threads: 2) }
        #expect(w == [3, 0.5, 0, 0, 0.2, 4])
        let x = Activations(data: [3, 0, 4, 0], rows: 2, width: 2)
        #expect(Wanda.inputNorms(x, threads: 1) == [5, 0])
    }

    @Test func reconstructionReachesTheMaskedLeastSquaresOptimum() {
        var r = SplitMix(seed: 17)
        let rows = 64, n = 6, out = 3
        let x = Activations(data: (0..<(rows * n)).map { _ in r.gaussian() }, rows: rows, width: n)
        let w = (0..<(out * n)).map { _ in r.gaussian() }
        // Start: w with the last two inputs of every row pruned.
        var start = w
        for o in 0..<out { start[o * n + 4] = 0; start[o * n + 5] = 0 }
        let p = LayerReconstruction.problem(student: x, teacher: x, weight: w, out: out, threads: 2)
        var fitted = start
        let (before, after) = LayerReconstruction.fit(&fitted, p, iterations: 400, threads: 2)
        #expect(after < before)
        #expect((0..<out).allSatisfy { fitted[$0 * n + 4] == 0 && fitted[$0 * n + 5] == 0 })
        // The optimum on the kept inputs solves the normal equations A_SS ŵ = c_S; check the gradient vanishes there.
        for o in 0..<out {
            for j in 0..<4 {
                var g = -Double(p.c[o * n + j])
                for k in 0..<4 { g += Double(p.a[j * n + k]) * Double(fitted[o * n + k]) }
                #expect(abs(g) < 1e-2 * Double(p.a[j * n + j]), "row \(o) input \(j): gradient \(g)")
            }
        }
        // Never worse than the start, even with one iteration.
        var one = start
        let (b1, a1) = LayerReconstruction.fit(&one, p, iterations: 1, threads: 1)
        #expect(a1 <= b1)
    }
}

/// GPTQ against round-to-nearest on the same grid: lower Hessian-weighted error, codes and
/// values consistent, and the same bytes for any thread count.
@Suite struct GPTQTests {
    /// Act order (static groups): beats RTN on the same grid, the same bytes for 1 and 3 threads, and
    /// the returned codes, scales and zero points decode to exactly the values left in the weight.
    @Test(arguments: [RTNQuantizer.Granularity.group(32), .channel])
    func actOrderKeepsThePlainLayout(granularity: RTNQuantizer.Granularity) throws {
        let (x, w) = problem(seed: 41)
        let rows = w.count / x.width, cols = x.width
        var rtn = w
        _ = rtn.withUnsafeMutableBufferPointer { RTNQuantizer.quantize($0, shape: [rows, cols], bits: 4, symmetric: false, granularity: granularity, threads: 1) }
        var a = w, b = w
        let ra = try a.withUnsafeMutableBufferPointer {
            try GPTQ.quantize($0, rows: rows, cols: cols, input: x, bits: 4, symmetric: false, granularity: granularity, actOrder: true, threads: 1, tensor: "w")
        }
        _ = try b.withUnsafeMutableBufferPointer {
            try GPTQ.quantize($0, rows: rows, cols: cols, input: x, bits: 4, symmetric: false, granularity: granularity, actOrder: true, threads: 3, tensor: "w")
        }
        #expect(a == b)
        #expect(outputError(x, w, a) < outputError(x, w, rtn))
        let gl = RTNQuantizer.groupLength(granularity, shape: [rows, cols])
        for i in a.indices {
            let g = i / gl
            #expect(a[i] == (Float(ra.codes[i]) - Float(ra.zeros[g])) * ra.scales[g], "element \(i)")
        }
    }

    func problem(seed: UInt64) -> (Activations, [Float]) { correlatedProblem(seed: seed, tokens: 256, n: 64, out: 40) }
    func outputError(_ x: Activations, _ w: [Float], _ q: [Float]) -> Double { linearOutputError(x, w, q) }

    @Test(arguments: [(4, false, RTNQuantizer.Granularity.group(32)), (8, true, .channel), (3, true, .tensor)])
    func beatsRoundToNearestOnTheSameGrid(bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity) throws {
        let (x, w) = problem(seed: 31)
        let rows = w.count / x.width, cols = x.width
        var rtn = w
        _ = rtn.withUnsafeMutableBufferPointer {
            RTNQuantizer.quantize($0, shape: [rows, cols], bits: bits, symmetric: symmetric, granularity: granularity, threads: 1)
        }
        var g1 = w, g3 = w
        let r1 = try g1.withUnsafeMutableBufferPointer {
            try GPTQ.quantize($0, rows: rows, cols: cols, input: x, bits: bits, symmetric: symmetric, granularity: granularity, threads: 1, tensor: "w")
        }
        let r3 = try g3.withUnsafeMutableBufferPointer {
            try GPTQ.quantize($0, rows: rows, cols: cols, input: x, bits: bits, symmetric: symmetric, granularity: granularity, threads: 3, tensor: "w")
        }
        #expect(g1.map(\.bitPattern) == g3.map(\.bitPattern) && r1.codes == r3.codes && r1.scales == r3.scales)
        let eg = outputError(x, w, g1), er = outputError(x, w, rtn)
        #expect(eg < 0.9 * er, "GPTQ \(eg) vs RTN \(er)")
        // Every value is its code on its group's grid.
        let gl = RTNQuantizer.groupLength(granularity, shape: [rows, cols])
        for i in g1.indices {
            let gi = i / gl
            let z = symmetric ? Float(1 << (bits - 1)) : Float(r1.zeros[gi])
            #expect(g1[i] == (Float(r1.codes[i]) - z) * r1.scales[gi])
            #expect(Int(r1.codes[i]) < 1 << bits)
        }
    }
}

/// Correlated inputs (a shared component, as real activations have) and a random weight [out × n].
func correlatedProblem(seed: UInt64, tokens: Int, n: Int, out: Int) -> (Activations, [Float]) {
    var r = SplitMix(seed: seed)
    var x = [Float](repeating: 0, count: tokens * n)
    for t in 0..<tokens {
        let common = r.gaussian()
        for j in 0..<n { x[t * n + j] = r.gaussian() + 0.8 * common * Float(j % 5) }
    }
    return (Activations(data: x, rows: tokens, width: n), (0..<(out * n)).map { _ in r.gaussian() })
}

/// tr((W − Ŵ) XᵀX (W − Ŵ)ᵀ) = ‖X (W − Ŵ)ᵀ‖².
func linearOutputError(_ x: Activations, _ w: [Float], _ q: [Float]) -> Double {
    let out = w.count / x.width
    var total = 0.0
    for t in 0..<x.rows {
        for o in 0..<out {
            var s = 0.0
            for j in 0..<x.width { s += Double(x.data[t * x.width + j]) * Double(w[o * x.width + j] - q[o * x.width + j]) }
            total += s * s
        }
    }
    return total
}
