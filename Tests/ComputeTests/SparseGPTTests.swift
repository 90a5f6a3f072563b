@testable import Compute
import Foundation
import Testing

@Suite struct SparseGPTTests {
    func problem(seed: UInt64) -> (Activations, [Float]) { correlatedProblem(seed: seed, tokens: 256, n: 160, out: 48) }

    /// Unstructured and 2:4: the exact count of zeros (and the pattern), the same bytes for 1 and 3
    /// threads, and a smaller output error than magnitude pruning to the same pattern.
    @Test(arguments: [SparseGPT.Pattern.unstructured(sparsity: 0.5), .nm(n: 2, m: 4)])
    func beatsMagnitudeWithTheSamePattern(pattern: SparseGPT.Pattern) throws {
        let (x, w) = problem(seed: 7)
        let rows = w.count / x.width, cols = x.width
        var a = w, b = w
        _ = try a.withUnsafeMutableBufferPointer { try SparseGPT.prune($0, rows: rows, cols: cols, input: x, pattern: pattern, threads: 1, tensor: "w") }
        _ = try b.withUnsafeMutableBufferPointer { try SparseGPT.prune($0, rows: rows, cols: cols, input: x, pattern: pattern, threads: 3, tensor: "w") }
        #expect(a == b, "thread count changed the result")
        var mag = w
        mag.withUnsafeMutableBufferPointer { p in
            switch pattern {
            case .unstructured(let s): MagnitudePruning.prune(p, k: MagnitudePruning.pruneCount(sparsity: s, numel: p.count), threads: 1)
            case .nm(let n, let m): MagnitudePruning.pruneNM(p, n: n, m: m, threads: 1)
            }
        }
        #expect(a.filter { $0 == 0 }.count == w.count / 2)
        if case .nm = pattern {
            for g in stride(from: 0, to: a.count, by: 4) { #expect(a[g..<(g + 4)].filter { $0 == 0 }.count == 2) }
        }
        let e = linearOutputError(x, w, a), em = linearOutputError(x, w, mag)
        #expect(e < 0.7 * em, "SparseGPT \(e) vs magnitude \(em)")
    }

    /// The quickselect and bucket-select masks pick the same set as a full sort by (value, NaN last,
    /// index): ties, NaN, ±∞, −0 against +0, negatives and subnormals included.
    @Test func smallestMaskEqualsSelect() {
        var r = SplitMix(seed: 3)
        for n in [1, 2, 7, 100, 1000, 4096, StructuredPruning.bucketMinimum, 50_000] {
            let scores: [Double] = (0..<n).map { i in
                switch i % 13 {
                case 0: return .nan
                case 1, 5: return 0.5
                case 2: return i % 2 == 0 ? -0.0 : 0.0
                case 3: return i % 3 == 0 ? .infinity : -.infinity
                case 4: return -Double(r.gaussian().magnitude)
                case 6: return Double.leastNonzeroMagnitude * Double(i % 5)
                case 7: return 0.5.nextUp
                default: return Double(r.gaussian().magnitude)
                }
            }
            for k in [0, 1, n / 3, n / 2, n - 1, n] {
                let mask = StructuredPruning.smallestMask(scores, k: k)
                if k > 0 {
                    #expect(StructuredPruning.bucketSmallestMask(scores, k: k) == StructuredPruning.quickSmallestMask(scores, k: k), "n \(n) k \(k)")
                }
                let sorted = scores.indices.sorted { a, b in
                    let x = scores[a], y = scores[b]
                    if x.isNaN != y.isNaN { return !x.isNaN }
                    if !x.isNaN && x != y { return x < y }
                    return a < b
                }
                #expect(mask.indices.filter { mask[$0] } == sorted.prefix(k).sorted(), "n \(n) k \(k)")
                #expect(StructuredPruning.select(scores, k: k) == sorted.prefix(k).sorted(), "n \(n) k \(k)")
            }
        }
    }

    /// Layers that read one input (Q, K and V; gate and up) share its Hessian factors: SparseGPT and
    /// GPTQ (stored and act order) give the same bytes with a shared cache as without, a cache hit
    /// still zeroes the weights of dead inputs, and dampening and column order each key their own factor.
    @Test func sharedHessianFactorsGiveTheSameBytes() throws {
        let (x0, w1) = problem(seed: 11)
        let rows = w1.count / x0.width, cols = x0.width
        var data = x0.data
        for t in 0..<x0.rows { data[t * cols + 3] = 0 }  // input 3 never fires
        let x = Activations(data: data, rows: x0.rows, width: cols)
        let w2 = w1.reversed().map { $0 * 0.5 }
        let gram = BLAS.gram(x.data, rows: x.rows, n: cols, threads: 2)
        func sparse(_ w: [Float], _ f: HessianFactorCache?, damp: Double = 0.01) throws -> [Float] {
            var v = w
            _ = try v.withUnsafeMutableBufferPointer {
                try SparseGPT.prune($0, rows: rows, cols: cols, gram: gram, tokens: x.rows, pattern: .unstructured(sparsity: 0.5), damp: damp,
                                    factors: f, threads: 2, tensor: "w")
            }
            return v
        }
        func gptq(_ w: [Float], _ f: HessianFactorCache?, actOrder: Bool) throws -> [Float] {
            var v = w
            _ = try v.withUnsafeMutableBufferPointer {
                try GPTQ.quantize($0, rows: rows, cols: cols, gram: gram, tokens: x.rows, bits: 4, symmetric: false, granularity: .group(32),
                                  damp: 0.01, actOrder: actOrder, observer: .minmax, factors: f, threads: 2, tensor: "w")
            }
            return v
        }
        let shared = HessianFactorCache()
        let plain = HessianFactorCache.Key(damp: 0.01, ordered: false), ordered = HessianFactorCache.Key(damp: 0.01, ordered: true)
        for (k, w) in [w1, w2].enumerated() {
            // Booleans, not arrays, in the expectations: a failing array comparison would diff 7,680 floats.
            let alone = try sparse(w, nil), withCache = try sparse(w, shared)
            let sameSparse = withCache == alone
            #expect(sameSparse, "SparseGPT, weight \(k)")
            #expect((0..<rows).allSatisfy { withCache[$0 * cols + 3] == 0 }, "a dead input's weights survived a cache hit")
            let sameStored = try gptq(w, shared, actOrder: false) == gptq(w, nil, actOrder: false)
            let sameOrdered = try gptq(w, shared, actOrder: true) == gptq(w, nil, actOrder: true)
            #expect(sameStored && sameOrdered, "GPTQ, weight \(k): stored order \(sameStored), act order \(sameOrdered)")
        }
        let u = try #require(shared.factor(plain)?.u), uOrdered = try #require(shared.factor(ordered)?.u)
        let orderMatters = u != uOrdered
        #expect(orderMatters)
        #expect(shared.factor(plain)?.dead == [3])
        #expect(shared.factor(.init(damp: 0.1, ordered: false)) == nil)
        let sameDamped = try sparse(w1, shared, damp: 0.1) == sparse(w1, nil, damp: 0.1)
        #expect(sameDamped)
        let dampMatters = try #require(shared.factor(.init(damp: 0.1, ordered: false))).u != u
        #expect(dampMatters)
    }

    /// A Hessian made indefinite by a negative diagonal entry is dampened further (tenfold steps),
    /// reported, and gives finite weights; one that no dampening fixes is a numerical error.
    @Test func indefiniteHessiansGetMoreDampening() throws {
        let n = 8
        var gram = [Float](repeating: 0, count: n * n)
        for i in 0..<n { gram[i * n + i] = 1 }
        gram[0] = -0.5
        let x = Activations(data: [Float](repeating: 1, count: 4 * n), rows: 4, width: n)
        var w = [Float](repeating: 1, count: 2 * n)
        let (u, used) = try w.withUnsafeMutableBufferPointer {
            try CalibrationHessian.inverseFactor(gram: gram.map { $0 * 2 }, tokens: x.rows, cols: n, damp: 0.01, weight: $0, rows: 2, tensor: "w")
        }
        #expect(used > 0.01 && u.allSatisfy(\.isFinite), "damp \(used)")
        gram[0] = -1e6
        #expect(throws: ComputeError.self) {
            _ = try w.withUnsafeMutableBufferPointer {
                try CalibrationHessian.inverseFactor(gram: gram.map { $0 * 2 }, tokens: x.rows, cols: n, damp: 0.01, weight: $0, rows: 2, tensor: "w")
            }
        }
    }

    /// The tiled F64 factorization: UᵀU equals (H + damp)⁻¹ (checked against H in F64) across
    /// partial tiles and indefinite trailing blocks, with the same bytes for 1, 2 and 3 threads.
    @Test func tiledInverseFactorInvertsTheHessian() throws {
        for n in [5, 128, 300] {
            var r = SplitMix(seed: UInt64(n))
            let tokens = 2 * n
            let x = (0..<(tokens * n)).map { i in Float(r.gaussian()) * (i % n == 7 ? 30 : 1) }
            var gram = [Float](repeating: 0, count: n * n)
            x.withUnsafeBufferPointer { xp in gram.withUnsafeMutableBufferPointer { gp in
                BLAS.gemm(m: n, n: n, k: tokens, a: xp.baseAddress!, lda: n, aTransposed: true, b: xp.baseAddress!, ldb: n, bTransposed: false,
                          c: gp.baseAddress!, ldc: n)
            } }
            var w = [Float](repeating: 1, count: n)
            let factors = try [1, 2, 3].map { threads in
                try w.withUnsafeMutableBufferPointer {
                    try CalibrationHessian.inverseFactor(gram: gram, tokens: tokens, cols: n, damp: 0.01, weight: $0, rows: 1, threads: threads, tensor: "w")
                }
            }
            #expect(factors[0].u == factors[1].u && factors[0].u == factors[2].u, "n \(n)")
            #expect(factors[0].damp == 0.01)
            // (UᵀU) · H' = I with H' = 2/n · XᵀX + 0.01 · mean diagonal.
            let u = factors[0].u.map(Double.init)
            let h = gram.map { Double($0) * 2 / Double(tokens) }
            let mean = (0..<n).reduce(0.0) { $0 + h[$1 * n + $1] } / Double(n)
            var inv = [Double](repeating: 0, count: n * n)  // UᵀU
            for m in 0..<n { for i in m..<n where u[m * n + i] != 0 { for k in m..<n { inv[i * n + k] += u[m * n + i] * u[m * n + k] } } }
            var worst = 0.0
            for i in 0..<n {
                var row = [Double](repeating: 0, count: n)
                for k in 0..<n { for j in 0..<n { row[j] += inv[i * n + k] * (h[k * n + j] + (k == j ? 0.01 * mean : 0)) } }
                for j in 0..<n { worst = max(worst, abs(row[j] - (i == j ? 1 : 0))) }
            }
            #expect(worst < 1e-3, "n \(n): max |UᵀU·H − I| = \(worst)")
            for i in 0..<n { for j in 0..<i { #expect(factors[0].u[i * n + j] == 0) } }
        }
    }
}
