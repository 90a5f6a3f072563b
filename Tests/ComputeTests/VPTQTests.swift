@testable import Compute
import Foundation
import Testing

@Suite struct VPTQTests {
    static func options(centroids: Int = 16, residual: Int = 16, actOrder: Bool = true) -> VPTQ.Options {
        var o = VPTQ.Options()
        (o.centroids, o.residual, o.actOrder) = (centroids, residual, actOrder)
        return o
    }

    static func run(_ w: [Float], _ x: Activations, _ o: VPTQ.Options, threads: Int) throws -> ([Float], VPTQ.Result) {
        var q = w
        let gram = BLAS.gram(x.data, rows: x.rows, n: x.width, threads: 1)
        let r = try q.withUnsafeMutableBufferPointer {
            try VPTQ.quantize(
                $0, rows: w.count / x.width, cols: x.width, gram: gram, tokens: x.rows, options: o, factors: nil,
                threads: threads, tensor: "w")
        }
        return (q, r)
    }

    /// Codebooks, indices, scales and decoded weights are the same bytes for 1, 2 and 3 threads.
    @Test(arguments: [true, false])
    func sameBytesForAnyThreadCount(actOrder: Bool) throws {
        let (x, w) = correlatedProblem(seed: 11, tokens: 256, n: 160, out: 72)
        let o = Self.options(actOrder: actOrder)
        let (a, ra) = try Self.run(w, x, o, threads: 1)
        for threads in [2, 3] {
            let (b, rb) = try Self.run(w, x, o, threads: threads)
            #expect(a == b, "\(threads) threads changed the weights")
            #expect(ra.indices == rb.indices && ra.codebooks == rb.codebooks && ra.scales == rb.scales)
        }
    }

    /// The weights left in the work buffer are exactly what the stored indices, codebooks and scales
    /// decode to, and codebooks and scales are F16 values.
    @Test func decodedIndicesGiveTheWeights() throws {
        let (x, w) = correlatedProblem(seed: 12, tokens: 256, n: 160, out: 40)
        for o in [Self.options(), Self.options(centroids: 32, residual: 0)] {
            let (q, r) = try Self.run(w, x, o, threads: 2)
            #expect(VPTQ.decode(r, rows: 40, cols: 160, vector: 8) == q)
            #expect(r.codebooks.count == (o.residual > 0 ? 2 : 1))
            for book in r.codebooks + [r.scales] { #expect(book.allSatisfy { Float(Float16($0)) == $0 }) }
            #expect(r.indices[0].allSatisfy { $0 >= 0 && Int($0) < o.centroids })
        }
    }

    /// Error feedback through the Hessian beats taking each vector's nearest entries with the same
    /// codebooks, and a residual codebook beats none, on inputs with correlated channels.
    @Test func errorFeedbackBeatsNearestEntries() throws {
        let (x, w) = correlatedProblem(seed: 13, tokens: 512, n: 160, out: 64)
        let (q, r) = try Self.run(w, x, Self.options(), threads: 2)
        // The same codebooks and scales, each vector's nearest entry (then the residual's) with no feedback.
        let groups = 160 / 8
        var plain = r
        for row in 0..<64 {
            for g in 0..<groups {
                var left = (0..<8).map { d in r.scales[row] > 0 ? w[row * 160 + g * 8 + d] / r.scales[row] : 0 }
                for (b, book) in r.codebooks.enumerated() {
                    func distance(_ e: Int) -> Float {
                        var sum: Float = 0
                        for d in 0..<8 { sum += (left[d] - book[e * 8 + d]) * (left[d] - book[e * 8 + d]) }
                        return sum
                    }
                    let best = (0..<(book.count / 8)).min { distance($0) < distance($1) }!
                    plain.indices[b][row * groups + g] = Int32(best)
                    for d in 0..<8 { left[d] -= book[best * 8 + d] }
                }
            }
        }
        let nearest = VPTQ.decode(plain, rows: 64, cols: 160, vector: 8)
        let e = linearOutputError(x, w, q)
        let en = linearOutputError(x, w, nearest)
        #expect(e < 0.8 * en, "vptq \(e) against nearest entries \(en)")
        let (single, _) = try Self.run(w, x, Self.options(residual: 0), threads: 2)
        #expect(e < linearOutputError(x, w, single), "a residual codebook did not help")
    }

    /// Outlier columns: the groups of the largest Hessian diagonal kept at F16, the indices covering the rest;
    /// the work buffer is what the result decodes to, and the output error is below the same codebook sizes'
    /// without outliers.
    @Test func outlierColumnsAreTheHeaviestGroupsKeptAtF16() throws {
        let (x, w) = correlatedProblem(seed: 14, tokens: 512, n: 160, out: 48)
        var o = Self.options()
        o.outliers = 24
        let (q, r) = try Self.run(w, x, o, threads: 2)
        #expect(VPTQ.decode(r, rows: 48, cols: 160, vector: 8) == q)
        let gram = BLAS.gram(x.data, rows: x.rows, n: x.width, threads: 1)
        var energy = [Float](repeating: 0, count: 20)
        for c in 0..<160 { energy[c / 8] += gram[c * 160 + c] }
        let order: [Int] = (0..<20).sorted { a, b in energy[a] != energy[b] ? energy[a] > energy[b] : a < b }
        let heaviest: [Int] = order.prefix(3).sorted()
        let columns: [Int32] = heaviest.flatMap { g in (0..<8).map { d in Int32(g * 8 + d) } }
        #expect(r.outlierColumns == columns)
        #expect(r.outliers.count == 48 * 24 && r.outliers.allSatisfy { Float(Float16($0)) == $0 })
        #expect(r.indices.allSatisfy { $0.count == 48 * 17 })
        let (plain, _) = try Self.run(w, x, Self.options(), threads: 2)
        #expect(linearOutputError(x, w, q) < linearOutputError(x, w, plain), "outliers did not help")
    }

    /// Packed indices unpack to the same values for every index width.
    @Test(arguments: [4, 7, 8, 12, 16])
    func packedIndicesRoundTrip(bits: Int) {
        var rng = SplitMix(seed: UInt64(bits))
        let (rows, groups) = (5, 13)
        let indices = (0..<(rows * groups)).map { _ in Int32(rng.next() % (1 << UInt64(bits))) }
        let packed = VPTQ.pack(indices, rows: rows, groups: groups, bits: bits)
        #expect(packed.count == rows * ((groups * bits + 7) / 8))
        #expect(packed.withUnsafeBytes { VPTQ.unpack($0, rows: rows, groups: groups, bits: bits) } == indices)
    }

    /// Weighted k-means: the same codebook for any thread count, and a lower weighted distortion than
    /// its starting sample.
    @Test func kMeansIsDeterministicAndConverges() {
        var rng = SplitMix(seed: 5)
        let x = (0..<(3000 * 4)).map { _ in rng.gaussian() }
        let w: [Float] = (0..<(3000 * 4)).map { (i: Int) -> Float in Float(1 + i % 4) }
        func distortion(_ book: [Float]) -> Float {
            VectorKMeans.nearest(x, weights: w, dim: 4, codebook: book, threads: 1).distance.reduce(0, +)
        }
        let start = VectorKMeans.train(x, weights: w, dim: 4, centroids: 32, iterations: 0, seed: 1, threads: 1)
        let a = VectorKMeans.train(x, weights: w, dim: 4, centroids: 32, iterations: 20, seed: 1, threads: 1)
        let b = VectorKMeans.train(x, weights: w, dim: 4, centroids: 32, iterations: 20, seed: 1, threads: 3)
        #expect(a == b)
        #expect(distortion(a) < 0.8 * distortion(start), "\(distortion(a)) against \(distortion(start))")
    }
}
