import Foundation

/// Weighted k-means on vectors of `dim` values, as VPTQ learns its codebooks: vector i's distance
/// to centroid c is Σ_d w[i·dim + d] · (x[i·dim + d] − c[d])². Lloyd's iterations from `k` vectors
/// drawn with a seeded generator; a centroid left without vectors takes the vector farthest from its
/// own. Distances run in fixed chunks of vectors over `threads` and centroids are summed in vector
/// order, so the codebook is the same for any thread count.
enum VectorKMeans {
    /// Vectors per distance product (one BLAS call each).
    static let chunk = 512

    /// The k × dim codebook learned from the n = x.count / dim vectors.
    static func train(
        _ x: [Float], weights w: [Float], dim: Int, centroids k: Int, iterations: Int, seed: UInt64, threads: Int
    ) -> [Float] {
        let n = x.count / dim
        precondition(n > 0 && w.count == x.count && k > 0)
        var rng = SeededGenerator(seed: seed)
        // k distinct vectors when there are enough (a partial Fisher–Yates shuffle of the indices).
        var order = Array(0..<n)
        var codebook = [Float](repeating: 0, count: k * dim)
        for c in 0..<k {
            let j = c < n ? c + Int(rng.next() % UInt64(n - c)) : Int(rng.next() % UInt64(n))
            if c < n { order.swapAt(c, j) }
            let pick = c < n ? order[c] : order[j]
            for d in 0..<dim { codebook[c * dim + d] = x[pick * dim + d] }
        }
        for _ in 0..<iterations {
            let (assignment, distance) = nearest(x, weights: w, dim: dim, codebook: codebook, threads: threads)
            var num = [Double](repeating: 0, count: k * dim)
            var den = [Double](repeating: 0, count: k * dim)
            var members = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let c = Int(assignment[i])
                members[c] += 1
                for d in 0..<dim {
                    num[c * dim + d] += Double(w[i * dim + d]) * Double(x[i * dim + d])
                    den[c * dim + d] += Double(w[i * dim + d])
                }
            }
            var moved = false
            for c in 0..<k where members[c] > 0 {
                for d in 0..<dim where den[c * dim + d] > 0 {
                    let v = Float(num[c * dim + d] / den[c * dim + d])
                    if v != codebook[c * dim + d] { moved = true }
                    codebook[c * dim + d] = v
                }
            }
            // Empty centroids take the farthest vectors, farthest first (ties: the lower index).
            let empty = (0..<k).filter { members[$0] == 0 }
            if !empty.isEmpty && n > k {
                let far = (0..<n).sorted { a, b in distance[a] != distance[b] ? distance[a] > distance[b] : a < b }
                for (c, i) in zip(empty, far) {
                    for d in 0..<dim { codebook[c * dim + d] = x[i * dim + d] }
                    moved = true
                }
            }
            if !moved { break }
        }
        return codebook
    }

    /// Each vector's nearest centroid under its weights, and that weighted distance.
    static func nearest(_ x: [Float], weights w: [Float], dim: Int, codebook: [Float], threads: Int)
        -> (assignment: [Int32], distance: [Float])
    {
        let n = x.count / dim
        let k = codebook.count / dim
        // distance = Σ w·x² − 2 Σ (w·x)·c + Σ w·c²: the last two terms are [w·x | w] · [−2c | c²]ᵀ.
        var right = [Float](repeating: 0, count: k * 2 * dim)
        for c in 0..<k {
            for d in 0..<dim {
                let v = codebook[c * dim + d]
                right[c * 2 * dim + d] = -2 * v
                right[c * 2 * dim + dim + d] = v * v
            }
        }
        var assignment = [Int32](repeating: 0, count: n)
        var distance = [Float](repeating: 0, count: n)
        let chunks = Parallel.chunks(n, chunk: chunk)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                right.withUnsafeBufferPointer { rp in
                    assignment.withUnsafeMutableBufferPointer { ap in
                        distance.withUnsafeMutableBufferPointer { dp in
                            Parallel.forEach(chunks.count, threads: threads) { ci in
                                let range = chunks[ci]
                                var left = [Float](repeating: 0, count: range.count * 2 * dim)
                                var base = [Float](repeating: 0, count: range.count)
                                for (r, i) in range.enumerated() {
                                    for d in 0..<dim {
                                        let (xv, wv) = (xp[i * dim + d], wp[i * dim + d])
                                        left[r * 2 * dim + d] = wv * xv
                                        left[r * 2 * dim + dim + d] = wv
                                        base[r] += wv * xv * xv
                                    }
                                }
                                // Added into zeros: the same bytes without OpenBLAS's pass that zeroes C.
                                var scores = [Float](repeating: 0, count: range.count * k)
                                left.withUnsafeBufferPointer { lp in
                                    scores.withUnsafeMutableBufferPointer { sp in
                                        BLAS.gemm(
                                            m: range.count, n: k, k: 2 * dim, a: lp.baseAddress!, lda: 2 * dim,
                                            b: rp.baseAddress!, ldb: 2 * dim, bTransposed: true, c: sp.baseAddress!,
                                            ldc: k, beta: 1)
                                    }
                                }
                                for (r, i) in range.enumerated() {
                                    let (best, score) = scores.withUnsafeBufferPointer {
                                        argmin($0.baseAddress! + r * k, count: k)
                                    }
                                    ap[i] = Int32(best)
                                    dp[i] = max(base[r] + score, 0)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (assignment, distance)
    }

    /// The index (from 0) and value of the smallest of `count` scores starting at `start` (ties: the lower
    /// index), eight lanes at a time.
    @inline(__always)
    static func argmin(_ s: UnsafePointer<Float>, count: Int) -> (Int, Float) {
        var best = SIMD8<Float>(repeating: .infinity)
        var at = SIMD8<Int32>(repeating: 0)
        let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        var j = 0
        while j + 8 <= count {
            let v = UnsafeRawPointer(s + j).loadUnaligned(as: SIMD8<Float>.self)
            let smaller = v .< best
            best.replace(with: v, where: smaller)
            at.replace(with: lanes &+ Int32(j), where: smaller)
            j += 8
        }
        var index = 0
        var value = Float.infinity
        for l in 0..<8 where best[l] < value || (best[l] == value && Int(at[l]) < index) {
            value = best[l]
            index = Int(at[l])
        }
        while j < count {
            if s[j] < value {
                value = s[j]
                index = j
            }
            j += 1
        }
        return (index, value)
    }
}

/// SplitMix64: a small seeded generator whose sequence is fixed by its seed.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
