import Foundation
import Testing
@testable import Compute

/// SVD-LLM's whitened truncation, ASVD's column scaling and the global rank allocation, against
/// what they promise: the discarded whitened σ² are the layer's output error on the calibration
/// inputs, which no other rank-r matrix beats (so plain SVD's is at least as large); equal column
/// scales change nothing; the allocation removes the asked fraction of parameters.
@Suite struct ActivationLowRankTests {
    /// Inputs with unequal, correlated columns (a few large ones, as in decoders), and a weight.
    static func problem(rows: Int, cols: Int, tokens: Int, seed: UInt64) -> (w: [Float], x: [Float], gram: [Float]) {
        var r = SplitMix(seed: seed)
        let w = (0..<(rows * cols)).map { _ in r.gaussian() }
        let mix = (0..<(cols * cols)).map { _ in r.gaussian() * 0.3 }
        var x = [Float](repeating: 0, count: tokens * cols)
        for t in 0..<tokens {
            let z = (0..<cols).map { j in r.gaussian() * (j % 5 == 0 ? 8 : 1) }
            for j in 0..<cols { x[t * cols + j] = z[j] + (0..<cols).reduce(0) { $0 + z[$1] * mix[$1 * cols + j] } }
        }
        var gram = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols {
            for j in 0..<cols {
                gram[i * cols + j] = Float((0..<tokens).reduce(0.0) { $0 + Double(x[$1 * cols + i]) * Double(x[$1 * cols + j]) })
            }
        }
        return (w, x, gram)
    }

    /// ‖X(W − Ŵ)ᵀ‖²_F of the factors.
    static func outputError(_ f: LowRank.Factors, _ w: [Float], _ x: [Float], rows: Int, cols: Int) -> Double {
        var approx = [Float](repeating: 0, count: rows * cols)
        approx.withUnsafeMutableBufferPointer { LowRank.multiply(f.u, f.v, rows: rows, rank: f.rank, cols: cols, into: $0) }
        let tokens = x.count / cols
        var e = 0.0
        for t in 0..<tokens {
            for i in 0..<rows {
                var d = 0.0
                for j in 0..<cols { d += Double(x[t * cols + j]) * Double(w[i * cols + j] - approx[i * cols + j]) }
                e += d * d
            }
        }
        return e
    }

    @Test func svdLLMDiscardsExactlyTheOutputErrorAndBeatsPlainSVD() throws {
        let (rows, cols, tokens) = (24, 16, 200)
        let (w, x, gram) = Self.problem(rows: rows, cols: cols, tokens: tokens, seed: 7)
        for r in [2, 5, 9] {
            let scaling = try LowRank.InputScaling.whitening(gram: gram, n: cols, tensor: "w")
            let white = try w.withUnsafeBufferPointer {
                try LowRank.factorize($0, rows: rows, cols: cols, rank: .fixed(r), scaling: scaling, tensor: "w")
            }
            let plain = try w.withUnsafeBufferPointer { try LowRank.factorize($0, rows: rows, cols: cols, rank: .fixed(r), tensor: "w") }
            let full = try w.withUnsafeBufferPointer {
                try LowRank.factorize($0, rows: rows, cols: cols, rank: .fixed(cols), scaling: scaling, tensor: "w")
            }
            let total = Self.outputError(LowRank.Factors(u: [Float](repeating: 0, count: rows), v: [Float](repeating: 0, count: cols), rank: 1, retainedEnergy: 0), w, x, rows: rows, cols: cols)
            let ew = Self.outputError(white, w, x, rows: rows, cols: cols)
            // The discarded share of the whitened energy is the output error's share (dampening 1e-6 aside).
            #expect(abs(ew / total - (1 - white.retainedEnergy)) < 1e-3, "rank \(r): \(ew / total) against \(1 - white.retainedEnergy)")
            #expect(ew < Self.outputError(plain, w, x, rows: rows, cols: cols), "rank \(r)")
            #expect(Self.outputError(full, w, x, rows: rows, cols: cols) / total < 1e-6)
        }
    }

    @Test func asvdWithEqualScalesIsPlainSVD() throws {
        let (rows, cols) = (12, 10)
        let (w, _, _) = Self.problem(rows: rows, cols: cols, tokens: 4, seed: 3)
        let a = try w.withUnsafeBufferPointer {
            try LowRank.factorize($0, rows: rows, cols: cols, rank: .fixed(4), scaling: .columns([Double](repeating: 2.5, count: cols)), tensor: "w")
        }
        let b = try w.withUnsafeBufferPointer { try LowRank.factorize($0, rows: rows, cols: cols, rank: .fixed(4), tensor: "w") }
        var pa = [Float](repeating: 0, count: rows * cols), pb = pa
        pa.withUnsafeMutableBufferPointer { LowRank.multiply(a.u, a.v, rows: rows, rank: 4, cols: cols, into: $0) }
        pb.withUnsafeMutableBufferPointer { LowRank.multiply(b.u, b.v, rows: rows, rank: 4, cols: cols, into: $0) }
        #expect(zip(pa, pb).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func globalAllocationRemovesTheRatioAndFavoursFlatSpectra() {
        let steep = (0..<16).map { pow(0.5, Double($0)) }, flat = [Double](repeating: 1, count: 16)
        let ms = [
            LowRankAllocation.Matrix(name: "a", rows: 32, cols: 16, energy: steep),
            LowRankAllocation.Matrix(name: "b", rows: 32, cols: 16, energy: flat),
        ]
        let ranks = LowRankAllocation.ranks(ms, ratio: 0.4)
        let params = ranks.values.reduce(0) { $0 + $1 * 48 }
        #expect(Double(params) <= 0.6 * 2 * 512, "\(ranks)")
        #expect(ranks["a"]! >= 1 && ranks["b"]! > ranks["a"]!, "\(ranks)")
        // Without a budget to meet, each matrix stays at its break-even rank.
        #expect(LowRankAllocation.ranks(ms, ratio: 0.0) == ["a": 10, "b": 10])
    }
}
