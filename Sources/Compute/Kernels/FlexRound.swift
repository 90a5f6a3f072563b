import Foundation

/// Learned rounding (FlexRound, Lee et al. 2023) on a grid whose scales are already chosen: each
/// value is rounded as x = v / exp(ℓ + ρ_row + γ_col) to the grid's nearest level, and the
/// element-wise division ℓ and the row and column factors ρ, γ (all 0 at first, so the first codes
/// are the starting solution's) are learned with Adam through a straight-through estimator, to
/// minimise the layer's output error on the calibration inputs, tr(ΔW H ΔWᵀ) with H = XᵀX / n.
/// Each row keeps the codes of its own lowest error seen (the error is a sum over rows), so the
/// result is never worse than the start.
/// Rows run in fixed chunks of 64 (single-threaded BLAS each) and the column factors' gradient
/// adds the chunks in order, so the codes are the same for any thread count.
public enum FlexRound {
    /// `learned_rounding: {steps, learning_rate}`.
    public struct Options: Equatable, Sendable {
        /// Adam steps per matrix (0: the starting solution).
        public var steps = 100
        /// Adam's step size on the log-domain divisions.
        public var learningRate = 0.001
        public init() {}
    }

    /// A grid with fixed scales: value = a[g] · levels[k] + b[g] for the values i of group
    /// g = i / groupLength (row-major), k the value's code; `levels` ascending.
    struct Grid {
        var levels: [Float]
        var groupLength: Int
        var a: [Float]
        var b: [Float]
    }

    /// The output error before and after, how many codes changed and the seconds it took.
    public struct Outcome: Sendable, Codable, Equatable {
        public var startError: Double
        public var error: Double
        public var changed: Int
        public var seconds: Double

        /// Two matrices' (or a matrix's pieces') outcomes together.
        static func + (a: Outcome, b: Outcome) -> Outcome {
            Outcome(
                startError: a.startError + b.startError, error: a.error + b.error, changed: a.changed + b.changed,
                seconds: a.seconds + b.seconds)
        }

        /// The outcomes given, added; nil when none is.
        static func sum(_ outcomes: [Outcome?]) -> Outcome? {
            outcomes.compactMap { $0 }.reduce(nil) { total, o in total.map { $0 + o } ?? o }
        }
    }

    static let chunk = 64
    /// Every this many steps G = ΔW·H is computed whole again; in between, from the values that changed.
    static let refresh = 16

    /// Refines the row-major rows × cols `codes` (the start's, on `grid`) of weight `w`; `start`
    /// holds the values the start rounded (the weight itself for round-to-nearest, the updated
    /// weights for error feedback).
    static func refine(
        weight w: UnsafeBufferPointer<Float>, start v: UnsafeBufferPointer<Float>,
        codes: UnsafeMutableBufferPointer<UInt8>, grid: Grid, rows: Int, cols: Int, gram: [Float], tokens: Int,
        options: Options, threads: Int
    ) -> Outcome {
        precondition(w.count == rows * cols && v.count == w.count && codes.count == w.count)
        precondition(gram.count == cols * cols && grid.groupLength > 0)
        let t0 = DispatchTime.now()
        let state = State(rows: rows, cols: cols, gram: gram, tokens: tokens, start: codes, levels: grid.levels)
        let startError = state.evaluate(w, v, grid, keep: true, exact: true, threads: threads)
        var best = Array(UnsafeBufferPointer(start: state.rowError, count: rows))
        for step in stride(from: 1, through: options.steps, by: 1) {
            // Cosine decay to 0 over the steps: the codes settle instead of oscillating at the end.
            let decay = 0.5 * (1 + cos(Double.pi * Double(step - 1) / Double(options.steps)))
            state.adam(step: step, rate: Float(options.learningRate * decay), threads: threads)
            _ = state.evaluate(w, v, grid, keep: false, exact: step % refresh == 0, threads: threads)
            for r in 0..<rows where state.rowError[r] < best[r] {
                best[r] = state.rowError[r]
                for j in (r * cols)..<((r + 1) * cols) { codes[j] = state.codes[j] }
            }
        }
        let changed = zip(codes, state.start).filter { $0 != $1 }.count
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
        return Outcome(startError: startError, error: best.reduce(0, +), changed: changed, seconds: seconds)
    }

    /// The learned parameters, Adam's moments and each step's buffers (allocated once per matrix).
    private final class State {
        let rows: Int, cols: Int
        let chunks: [Range<Int>]
        let h: Buffer
        let start: [UInt8]
        var codes: [UInt8]
        let projection: Projection
        /// ℓ, ρ, γ with Adam's first and second moments: three values per parameter.
        let ell: Adam, rho: Adam, gamma: Adam
        /// ∂error/∂ℓ of the last evaluation, its row sums and its per-chunk column sums.
        let grad: Buffer, rowGrad: Buffer, chunkColumnGrad: Buffer
        /// ΔW = Ŵ − W and G = ΔW·H at the last evaluation.
        let delta: Buffer, product: Buffer
        /// Each row's error Δw H Δwᵀ at the last evaluation.
        let rowError: UnsafeMutablePointer<Double>

        init(
            rows: Int, cols: Int, gram: [Float], tokens: Int, start: UnsafeMutableBufferPointer<UInt8>, levels: [Float]
        ) {
            projection = Projection(levels)
            self.rows = rows
            self.cols = cols
            chunks = Parallel.chunks(rows, chunk: FlexRound.chunk)
            h = Buffer(gram.count)
            let n = Float(max(tokens, 1))
            for i in gram.indices { h.p[i] = gram[i] / n }
            self.start = Array(start)
            codes = self.start
            (ell, rho, gamma) = (Adam(rows * cols), Adam(rows), Adam(cols))
            (grad, rowGrad, chunkColumnGrad) = (Buffer(rows * cols), Buffer(rows), Buffer(chunks.count * cols))
            (delta, product) = (Buffer(rows * cols), Buffer(rows * cols))
            rowError = .allocate(capacity: max(rows, 1))
            rowError.initialize(repeating: 0, count: max(rows, 1))
        }

        deinit { rowError.deallocate() }

        /// Rounds every value at the current parameters into `codes` (`keep`: the start's codes
        /// instead), returns tr(ΔW H ΔWᵀ) and leaves the parameters' gradient. G = ΔW·H is updated
        /// from the values that changed unless `exact` (or more than a twentieth of a chunk's did).
        func evaluate(
            _ w: UnsafeBufferPointer<Float>, _ v: UnsafeBufferPointer<Float>, _ grid: Grid, keep: Bool, exact: Bool,
            threads: Int
        ) -> Double {
            var chunkError = [Double](repeating: 0, count: chunks.count)
            codes.withUnsafeMutableBufferPointer { out in
                start.withUnsafeBufferPointer { first in
                    chunkError.withUnsafeMutableBufferPointer { errors in
                        Parallel.forEach(chunks.count, threads: threads) { ci in
                            errors[ci] = evaluate(chunk: ci, w, v, grid, keep ? first : nil, out, exact: exact)
                        }
                    }
                }
            }
            return chunkError.reduce(0, +)
        }

        /// One chunk of rows: codes, Δ = Ŵ − W, G = Δ·H, the error Σ Δ⊙G and ∂/∂ℓ = −2 G x.
        private func evaluate(
            chunk ci: Int, _ w: UnsafeBufferPointer<Float>, _ v: UnsafeBufferPointer<Float>, _ grid: Grid,
            _ first: UnsafeBufferPointer<UInt8>?, _ out: UnsafeMutableBufferPointer<UInt8>, exact: Bool
        ) -> Double {
            let r = chunks[ci]
            let m = r.count
            let project = projection
            let x = Buffer(m * cols), fresh = Buffer(m * cols)
            let gl = grid.groupLength
            for k in 0..<m {
                let row = r.lowerBound + k
                let i0 = row * cols
                let xr = x.p + k * cols
                for j in 0..<cols { xr[j] = -(ell.value[i0 + j] + rho.value[row] + gamma.value[j]) }
                VectorExp.expInPlace(xr, count: cols)
                // One group (one scale and min) at a time.
                var j0 = 0
                while j0 < cols {
                    let g = (i0 + j0) / gl
                    let n = min(cols - j0, gl - (i0 + j0) % gl)
                    let a = grid.a[g], b = grid.b[g]
                    let usable = a != 0 && a.isFinite && b.isFinite
                    let inverse = 1 / a
                    for j in j0..<(j0 + n) {
                        let i = i0 + j
                        let xv = v[i] * xr[j]
                        let t = (xv - b) * inverse
                        let inside = usable && t > project.low && t < project.high
                        let c = first?[i] ?? (usable && t.isFinite ? project.nearest(t) : start[i])
                        out[i] = c
                        let d = a * project.levels[Int(c)] + b - w[i]
                        fresh.p[k * cols + j] = d.isFinite ? d : 0
                        // The straight-through estimator passes the gradient only inside the grid's range.
                        xr[j] = inside ? xv : 0
                    }
                    j0 += n
                }
            }
            let last = delta.p + r.lowerBound * cols, g = product.p + r.lowerBound * cols
            var moved = 0
            for o in 0..<(m * cols) where fresh.p[o] != last[o] { moved += 1 }
            if exact || moved * 20 > m * cols {
                BLAS.gemm(
                    m: m, n: cols, k: cols, a: fresh.p, lda: cols, b: h.p, ldb: cols, bTransposed: false, c: g,
                    ldc: cols)
            } else {
                // G's row k += (new − old value at column j) · H's row j, for each value that moved.
                for k in 0..<m {
                    let gk = g + k * cols
                    for j in 0..<cols where fresh.p[k * cols + j] != last[k * cols + j] {
                        let change = fresh.p[k * cols + j] - last[k * cols + j]
                        let hj = h.p + j * cols
                        for c in 0..<cols { gk[c] += change * hj[c] }
                    }
                }
            }
            last.update(from: fresh.p, count: m * cols)
            let gRows = grad.p + r.lowerBound * cols
            var e = 0.0
            let colG = chunkColumnGrad.p + ci * cols
            colG.update(repeating: 0, count: cols)
            for k in 0..<m {
                var rowE: Float = 0
                var rowG: Float = 0
                for j in 0..<cols {
                    let o = k * cols + j
                    rowE += last[o] * g[o]
                    let gl = -2 * g[o] * x.p[o]
                    gRows[o] = gl
                    rowG += gl
                    colG[j] += gl
                }
                e += Double(rowE)
                rowError[r.lowerBound + k] = Double(rowE)
                rowGrad.p[r.lowerBound + k] = rowG
            }
            return e
        }

        /// One Adam step (β = 0.9, 0.999) on ℓ, ρ and γ from the last evaluation's gradient.
        func adam(step: Int, rate: Float, threads: Int) {
            let correction = (1 - pow(0.999, Double(step))).squareRoot() / (1 - pow(0.9, Double(step)))
            let lr = rate * Float(correction)
            let columnGrad = Buffer(cols)
            for ci in chunks.indices {
                for j in 0..<cols { columnGrad.p[j] += chunkColumnGrad.p[ci * cols + j] }
            }
            gamma.step(columnGrad.p, 0..<cols, lr: lr)
            rho.step(rowGrad.p, 0..<rows, lr: lr)
            let parts = Parallel.chunks(rows * cols, chunk: FlexRound.chunk * cols)
            Parallel.forEach(parts.count, threads: threads) { k in ell.step(grad.p, parts[k], lr: lr) }
        }
    }

    /// Floats allocated zeroed and freed with their owner.
    private final class Buffer: @unchecked Sendable {
        let p: UnsafeMutablePointer<Float>
        init(_ n: Int) {
            p = .allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
        }
        deinit { p.deallocate() }
    }

    /// Parameters with Adam's moments.
    private final class Adam: @unchecked Sendable {
        let value: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
        private let storage: Buffer
        init(_ n: Int) {
            storage = Buffer(3 * n)
            (value, m, v) = (storage.p, storage.p + n, storage.p + 2 * n)
        }

        func step(_ g: UnsafeMutablePointer<Float>, _ range: Range<Int>, lr: Float) {
            for i in range {
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                value[i] -= lr * m[i] / (v[i].squareRoot() + 1e-12)
            }
        }
    }

    /// The nearest level of a sorted set: by rounding when the levels are consecutive integers,
    /// else through bins of half the smallest gap (at most one midpoint each) and one comparison.
    struct Projection {
        let levels: [Float]
        let low: Float, high: Float
        let consecutive: Bool
        let midpoints: [Float]
        /// For bin k, starting at low + k / binScale: how many midpoints lie below its start.
        let bins: [UInt8]
        let binScale: Float

        init(_ levels: [Float]) {
            self.levels = levels
            low = levels.first ?? 0
            high = levels.last ?? 0
            let gaps = zip(levels, levels.dropFirst()).map { $1 - $0 }
            consecutive = gaps.allSatisfy { $0 == 1 }
            midpoints = zip(levels, levels.dropFirst()).map { ($0 + $1) / 2 }
            let width = (gaps.min() ?? 1) / 2
            binScale = 1 / width
            let count = Int(((high - low) / width).rounded(.up)) + 2
            let mids = midpoints
            let lo = low
            bins = (0..<(consecutive ? 0 : count)).map { k in
                let s = lo + Float(k) * width
                return UInt8(mids.filter { $0 < s }.count)
            }
        }

        /// The code (level index) nearest to t (ties to the lower level).
        @inline(__always)
        func nearest(_ t: Float) -> UInt8 {
            if consecutive {
                let k = (t - low).rounded(.toNearestOrEven)
                return UInt8(Swift.max(0, Swift.min(Float(midpoints.count), k)))
            }
            let k = Int(Swift.max(0, Swift.min(Float(bins.count - 1), (t - low) * binScale)))
            var idx = Int(bins[k])
            if idx < midpoints.count && t > midpoints[idx] { idx += 1 }
            return UInt8(idx)
        }
    }
}
