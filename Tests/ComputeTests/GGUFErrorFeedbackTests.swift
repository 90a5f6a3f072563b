import Foundation
import Testing
@testable import Compute

/// GPTQ-style error feedback on a GGUF type's grid lowers the layer's output error on the
/// calibration inputs, ‖X (Ŵ − W)ᵀ‖, against the type's plain quantizer, writes the type's own
/// blocks, and gives the same bytes for any thread count.
@Suite struct GGUFErrorFeedbackTests {
    static func problem(rows: Int, cols: Int, tokens: Int) -> (w: [Float], x: [Float]) {
        var rng = SystemRandomNumberGenerator()
        let w = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        let z = (0..<(tokens * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        var x = [Float](repeating: 0, count: tokens * cols)
        for t in 0..<tokens {  // correlated neighbouring inputs of uneven scale, as activations are
            for j in 0..<cols { x[t * cols + j] = (z[t * cols + j] + (j > 0 ? 0.8 * z[t * cols + j - 1] : 0)) * Float(1 + j % 7) }
        }
        return (w, x)
    }

    static func outputError(_ w: [Float], _ q: [Float], x: [Float], rows: Int, cols: Int, tokens: Int) -> Double {
        let d = zip(q, w).map { $0 - $1 }
        let y = BLAS.gemmRows(m: tokens, n: rows, k: cols, a: x, b: d, bTransposed: true, threads: 2)
        return y.reduce(0) { $0 + Double($1) * Double($1) }
    }

    @Test(arguments: [GGMLType.q4_K, .q5_0, .q6_K, .q4_0])
    func errorFeedbackLowersTheOutputError(type: GGMLType) throws {
        let rows = 24, cols = 512, tokens = 1024
        let (w, x) = Self.problem(rows: rows, cols: cols, tokens: tokens)
        let gram = BLAS.gram(x, rows: tokens, n: cols, threads: 2)
        let n = type.byteCount(numel: rows * cols, rowLength: cols)!
        func decoded(_ bytes: [UInt8]) -> [Float] {
            var out = [Float](repeating: 0, count: rows * cols)
            bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { GGUFPlanner.decode(b, type: type, into: $0) } }
            return out
        }
        var plain = [UInt8](repeating: 0, count: n)
        w.withUnsafeBufferPointer { wp in plain.withUnsafeMutableBytes { GGUFPlanner.encode(wp, type: type, into: $0, threads: 1) } }
        var fed = [[UInt8]]()
        for threads in [1, 2] {
            var out = [UInt8](repeating: 0, count: n)
            try w.withUnsafeBufferPointer { wp in
                try out.withUnsafeMutableBytes {
                    try GGUFErrorFeedback.encode(wp, rows: rows, cols: cols, type: type, gram: gram, tokens: tokens, damp: 0.01, importance: nil,
                                                 into: $0, threads: threads, tensor: "t")
                }
            }
            fed.append(out)
        }
        #expect(fed[0] == fed[1])
        let e0 = Self.outputError(w, decoded(plain), x: x, rows: rows, cols: cols, tokens: tokens)
        let e1 = Self.outputError(w, decoded(fed[0]), x: x, rows: rows, cols: cols, tokens: tokens)
        // 32-column groups feed 15 later groups here; a k-quant's 256-column group feeds one.
        let bound = type.block.count == 256 ? 0.98 : 0.9
        #expect(e1 < bound * e0, "\(type.name): output error \(e1) with feedback, \(e0) without")
    }
}
