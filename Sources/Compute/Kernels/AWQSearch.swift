import Foundation

/// AWQ's two searches on linears that read one input, scored by the output error on the
/// calibration inputs through their Gram G = Σ x xᵀ: ‖X ΔWᵀ‖² = tr(ΔW G ΔWᵀ), summed over the
/// group's linears (the same loss AWQ computes from the outputs, without keeping the tokens).
/// Rows in fixed chunks, sums in Double in chunk order: the same result for any thread count.
enum AWQSearch {
    /// Quantizes a [rows, cols] matrix in place to the values the export will hold; `importance`
    /// (one per column) when the target weights its rounding by an importance matrix.
    typealias Quantizer = (_ values: UnsafeMutableBufferPointer<Float>, _ rows: Int, _ importance: [Float]?) -> Void

    /// One linear of a group: its [rows, cols] weight and its target grid.
    struct Linear {
        var weight: [Float]
        let rows: Int
        let quantize: Quantizer
        /// Whether `quantize` reads an importance matrix (the calibration's mean x², scaled with the inputs).
        let usesImportance: Bool
        /// Values of one clipping group along a row (the type's block or the quantize stage's group).
        let group: Int
        /// Whether the grid is symmetric about 0 (clip to ±c·max|w|) or has a minimum (clip [c·min, c·max]).
        let symmetric: Bool
    }

    /// The group's input statistics: the Gram (cols × cols, summed over tokens), mean |x| per column.
    struct Inputs {
        let gram: [Float]
        let meanAbs: [Double]
        let tokens: Int
        var cols: Int { meanAbs.count }
    }

    /// The chosen scale per input column, its α (nil: no scaling), and the group's output error with
    /// it and without scaling.
    struct Choice {
        let scales: [Float]
        let alpha: Double?
        let error: Double
        let baseline: Double
    }

    /// Tries s = mean|x|^α (or mean|x|^α / mean|ŵ|^(1−α) with `duo`, ŵ each group's |w| over its
    /// max), normalised so that max·min = 1, for α = i / grid: each linear's W·diag(s) quantized and
    /// divided by s again; keeps the α of least error, or s = 1 (no scaling) when nothing beats it.
    static func scales(_ linears: [Linear], inputs x: Inputs, grid: Int, duo: Bool, threads: Int) -> Choice {
        let n = x.cols
        let wMean = duo ? columnMeans(linears, cols: n) : []
        let ones = [Float](repeating: 1, count: n)
        let baseline = linears.reduce(0.0) { $0 + scaledError($1, scales: ones, inputs: x, threads: threads) }
        var best = Choice(scales: ones, alpha: nil, error: baseline, baseline: baseline)
        // Without duo scaling α = 0 is s = 1, the baseline itself.
        for i in (duo ? 0 : 1)..<grid {
            let alpha = Double(i) / Double(grid)
            var s = (0..<n).map { j -> Double in
                let v = Foundation.pow(x.meanAbs[j], alpha)
                return max(1e-4, duo ? v / (Foundation.pow(wMean[j], 1 - alpha) + 1e-4) : v)
            }
            let norm = (s.max()! * s.min()!).squareRoot()
            s = s.map { $0 / norm }
            let scales = s.map { Float($0) }
            let e = linears.reduce(0.0) { $0 + scaledError($1, scales: scales, inputs: x, threads: threads) }
            if e < best.error { best = Choice(scales: scales, alpha: alpha, error: e, baseline: baseline) }
        }
        return best
    }

    /// Output error of `l` quantized as W·diag(s) then divided by s (against W itself).
    static func scaledError(_ l: Linear, scales s: [Float], inputs x: Inputs, threads: Int) -> Double {
        let n = x.cols
        var q = l.weight
        q.withUnsafeMutableBufferPointer { w in
            for r in 0..<l.rows {
                for j in 0..<n { w[r * n + j] *= s[j] }
            }
            l.quantize(w, l.rows, l.usesImportance ? importance(x, scales: s) : nil)
            for r in 0..<l.rows {
                for j in 0..<n { w[r * n + j] = w[r * n + j] / s[j] - l.weight[r * n + j] }
            }
        }
        return outputError(delta: q, rows: l.rows, gram: x.gram, cols: n, threads: threads)
    }

    /// The importance matrix the export would collect on inputs x / s: mean (x_j / s_j)².
    static func importance(_ x: Inputs, scales s: [Float]) -> [Float] {
        let n = x.cols, t = Float(max(1, x.tokens))
        return (0..<n).map { x.gram[$0 * n + $0] / t / (s[$0] * s[$0]) }
    }

    /// tr(Δ G Δᵀ) for Δ [rows, cols].
    static func outputError(delta: [Float], rows: Int, gram: [Float], cols n: Int, threads: Int) -> Double {
        let ranges = Parallel.chunks(rows, chunk: 64)
        var sums = [Double](repeating: 0, count: ranges.count)
        delta.withUnsafeBufferPointer { d in
            gram.withUnsafeBufferPointer { g in
                sums.withUnsafeMutableBufferPointer { out in
                    Parallel.forEach(ranges.count, threads: threads) { k in
                        let r = ranges[k]
                        var e = [Float](repeating: 0, count: r.count * n)
                        e.withUnsafeMutableBufferPointer { ep in
                            BLAS.gemm(
                                m: r.count, n: n, k: n, a: d.baseAddress! + r.lowerBound * n, lda: n,
                                b: g.baseAddress!, ldb: n, bTransposed: false, c: ep.baseAddress!, ldc: n)
                        }
                        var s = 0.0
                        for i in 0..<(r.count * n) { s += Double(e[i]) * Double(d[r.lowerBound * n + i]) }
                        out[k] = s
                    }
                }
            }
        }
        return sums.reduce(0, +)
    }

    /// Per column, the mean over every row of every linear of |w| / max|w| of its clipping group.
    private static func columnMeans(_ linears: [Linear], cols n: Int) -> [Double] {
        var sum = [Double](repeating: 0, count: n)
        var rows = 0
        for l in linears {
            let g = min(l.group, n)
            for r in 0..<l.rows {
                for start in stride(from: 0, to: n, by: g) {
                    let end = min(n, start + g)
                    var m: Float = 0
                    for j in start..<end { m = max(m, abs(l.weight[r * n + j])) }
                    guard m > 0 else { continue }
                    for j in start..<end { sum[j] += Double(abs(l.weight[r * n + j]) / m) }
                }
            }
            rows += l.rows
        }
        return sum.map { $0 / Double(max(1, rows)) }
    }

    /// Clipping ratios AWQ tries: 1, 0.95, …, 0.55.
    static let clipRatios: [Float] = (0..<10).map { 1 - Float($0) / 20 }

    /// Clips each clipping group of each row of `l` to the ratio, of `clipRatios`, whose quantized
    /// group gives the least output error on its columns' inputs (G's diagonal block); returns the
    /// linear's output error after and before.
    static func clip(_ l: inout Linear, inputs x: Inputs, threads: Int) -> (error: Double, baseline: Double) {
        let n = x.cols, g = min(l.group, n), groups = n / g
        let imp = l.usesImportance ? importance(x, scales: [Float](repeating: 1, count: n)) : nil
        // Each ratio's per-(row, group) error, and the best ratio so far.
        var bestError = [Double](repeating: .infinity, count: l.rows * groups)
        var bestRatio = [Float](repeating: 1, count: l.rows * groups)
        var baseline = 0.0
        let ranges = groupRanges(l, cols: n, group: g)
        for (k, ratio) in clipRatios.enumerated() {
            var q = l.weight
            q.withUnsafeMutableBufferPointer { w in
                for (i, (lo, hi)) in ranges.enumerated() {
                    let base = i * g
                    for j in 0..<g { w[base + j] = min(max(w[base + j], ratio * lo), ratio * hi) }
                }
                l.quantize(w, l.rows, imp)
                for i in 0..<w.count { w[i] -= l.weight[i] }
            }
            let e = groupErrors(q, rows: l.rows, cols: n, group: g, gram: x.gram, threads: threads)
            for i in e.indices where e[i] < bestError[i] {
                bestError[i] = e[i]
                bestRatio[i] = ratio
            }
            if k == 0 { baseline = e.reduce(0, +) }
        }
        for (i, (lo, hi)) in ranges.enumerated() {
            let base = i * g, ratio = bestRatio[i]
            for j in 0..<g { l.weight[base + j] = min(max(l.weight[base + j], ratio * lo), ratio * hi) }
        }
        return (bestError.reduce(0, +), baseline)
    }

    /// Each clipping group's (min, max) bounds: ±max|w| on a symmetric grid, else (min(w, 0), max(w, 0)).
    private static func groupRanges(_ l: Linear, cols n: Int, group g: Int) -> [(Float, Float)] {
        (0..<(l.rows * n / g)).map { i in
            let v = l.weight[(i * g)..<(i * g + g)]
            let lo = min(0, v.min()!), hi = max(0, v.max()!)
            if l.symmetric {
                let m = max(-lo, hi)
                return (-m, m)
            }
            return (lo, hi)
        }
    }

    /// Δ_g G_gg Δ_gᵀ for every row and clipping group g of Δ [rows, cols].
    private static func groupErrors(_ d: [Float], rows: Int, cols n: Int, group g: Int, gram: [Float], threads: Int)
        -> [Double]
    {
        let groups = n / g
        var out = [Double](repeating: 0, count: rows * groups)
        d.withUnsafeBufferPointer { dp in
            gram.withUnsafeBufferPointer { gp in
                out.withUnsafeMutableBufferPointer { o in
                    Parallel.forEach(groups, threads: threads) { k in
                        var e = [Float](repeating: 0, count: rows * g)
                        e.withUnsafeMutableBufferPointer { ep in
                            BLAS.gemm(
                                m: rows, n: g, k: g, a: dp.baseAddress! + k * g, lda: n,
                                b: gp.baseAddress! + k * g * n + k * g, ldb: n, bTransposed: false,
                                c: ep.baseAddress!, ldc: g)
                        }
                        for r in 0..<rows {
                            var s = 0.0
                            for j in 0..<g { s += Double(e[r * g + j]) * Double(dp[r * n + k * g + j]) }
                            o[r * groups + k] = s
                        }
                    }
                }
            }
        }
        return out
    }
}
