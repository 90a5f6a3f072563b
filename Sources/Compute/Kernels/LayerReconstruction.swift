import CBLAS

/// Layer-wise reconstruction with a fixed sparsity pattern: fits Ŵ [out × in] so that the
/// student's output on its own inputs matches the teacher's output on the teacher's inputs,
///   min ‖X_s Ŵᵀ − X_t Wᵀ‖²  subject to Ŵ_ij = 0 where the start point is 0,
/// by Nesterov-accelerated projected gradient with step 1/λ_max(X_sᵀX_s). The best iterate
/// seen (by the exact objective) is kept, so the result is never worse than the start.
public enum LayerReconstruction {
    /// The normal-equation terms of one linear layer: A = X_sᵀX_s, C = (X_t Wᵀ)ᵀ X_s, ‖X_t Wᵀ‖².
    public struct Problem {
        public let a: [Float]
        public let c: [Float]
        public let targetNorm2: Double
        public let out: Int
        public let inDim: Int
    }

    /// Builds the problem from student inputs, teacher inputs and the teacher's weight.
    public static func problem(
        student xs: Activations, teacher xt: Activations, weight w: [Float], out: Int, gram: [Float]? = nil,
        threads: Int
    ) -> Problem {
        let n = xs.width
        let a = gram ?? BLAS.gram(xs.data, rows: xs.rows, n: n, threads: threads)
        let yt = BLAS.gemmRows(
            m: xt.rows, n: out, k: n, a: xt.data, b: w, bTransposed: true, threads: threads, chunk: BLAS.forwardRows)
        let c = BLAS.crossProduct(yt, xs.data, rows: xs.rows, p: out, q: n, threads: threads)
        let norm2 = yt.reduce(0.0) { $0 + Double($1) * Double($1) }
        return Problem(a: a, c: c, targetNorm2: norm2, out: out, inDim: n)
    }

    /// ‖X_s Ŵᵀ − X_t Wᵀ‖² / ‖X_t Wᵀ‖² from the problem terms and ŴA.
    static func relativeError(_ w: [Float], _ wa: [Float], _ p: Problem) -> Double {
        var quad = 0.0, lin = 0.0
        for i in w.indices {
            quad += Double(wa[i]) * Double(w[i])
            lin += Double(p.c[i]) * Double(w[i])
        }
        let f = quad - 2 * lin + p.targetNorm2
        return p.targetNorm2 > 0 ? max(0, f) / p.targetNorm2 : 0
    }

    /// Fits `w` in place; returns the relative output error before and after.
    @discardableResult
    public static func fit(_ w: inout [Float], _ p: Problem, iterations: Int, threads: Int) -> (
        before: Double, after: Double
    ) {
        let n = p.inDim
        precondition(w.count == p.out * n)
        let mask = w.map { $0 != 0 }
        let step = 1 / max(largestEigenvalue(p.a, n: n), 1e-30)
        var best = w
        var bestErr = Double.infinity
        var before = 0.0
        var prev = w, cur = w
        for k in 0...iterations {
            // y = cur + momentum (cur − prev); the objective and gradient are taken at y.
            let beta = k == 0 ? 0 : Float(k - 1) / Float(k + 2)
            var y = cur
            if beta != 0 { for i in y.indices { y[i] += beta * (cur[i] - prev[i]) } }
            let ya = BLAS.gemmRows(m: p.out, n: n, k: n, a: y, b: p.a, bTransposed: false, threads: threads)
            let err = relativeError(y, ya, p)
            if k == 0 { before = err }
            if err < bestErr {
                bestErr = err
                best = y
            }
            if k == iterations { break }
            prev = cur
            for i in cur.indices { cur[i] = mask[i] ? y[i] - Float(step) * (ya[i] - p.c[i]) : 0 }
        }
        w = best
        return (before, bestErr)
    }

    /// λ_max of the symmetric PSD n × n matrix `a` by power iteration (Double, fixed start).
    static func largestEigenvalue(_ a: [Float], n: Int) -> Double {
        var v = [Double](repeating: 1 / Double(n).squareRoot(), count: n)
        var lambda = 0.0
        let ad = a.map(Double.init)
        BLAS.configure()
        for _ in 0..<50 {
            var w = [Double](repeating: 0, count: n)
            cblas_dgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(n), 1, ad, Int32(n), v, 1, 0, &w, 1)
            let norm = w.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { return 0 }
            lambda = norm
            v = w.map { $0 / norm }
        }
        return lambda * 1.01
    }
}
