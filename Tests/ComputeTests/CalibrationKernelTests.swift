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
