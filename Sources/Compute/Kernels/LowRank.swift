import CBLAS

/// Low-rank factorization by truncated SVD (LAPACK `sgesdd`): W (m × n) ≈ U·V with
/// U = U_r·diag(σ_1…σ_r) (m × r) and V = V_rᵀ (r × n). The rank is fixed or the smallest one that
/// keeps a fraction of the energy Σσ². OpenBLAS runs single-threaded here so the factors are
/// the same bytes for any `threads` setting (on one machine and OpenBLAS build).
public enum LowRank {
    /// How the rank is chosen; a fixed rank above min(m, n) is capped there.
    public enum Rank: Equatable, Sendable {
        case fixed(Int)
        case energy(Double)
        /// Remove this fraction of the matrix's parameters: the largest r with
        /// r·(rows + cols) ≤ (1 − p)·rows·cols.
        case ratio(Double)
    }

    /// The two factors and what was kept.
    public struct Factors {
        public let u: [Float]
        public let v: [Float]
        public let rank: Int
        /// Σ_{i<rank} σ_i² / Σ σ_i² (1 for a zero matrix).
        public let retainedEnergy: Double
    }

    /// The rank `spec` selects given the singular values of a rows × cols matrix in descending order.
    public static func rank(_ spec: Rank, singularValues s: [Float], rows: Int, cols: Int) -> Int {
        switch spec {
        case .fixed(let r): return max(1, min(r, s.count))
        case .ratio(let p):
            let keep = Int(((1 - p) * Double(rows) * Double(cols) / Double(rows + cols)).rounded(.down))
            return max(1, min(keep, s.count))
        case .energy(let e):
            let total = s.reduce(0.0) { $0 + Double($1) * Double($1) }
            guard total > 0 else { return 1 }
            var cum = 0.0
            for (i, v) in s.enumerated() {
                cum += Double(v) * Double(v)
                if cum >= e * total { return i + 1 }
            }
            return s.count
        }
    }

    /// Singular values of the rows × cols matrix `x`, descending.
    public static func singularValues(_ x: UnsafeBufferPointer<Float>, rows: Int, cols: Int, tensor: String) throws
        -> [Float]
    {
        try svd(x, rows: rows, cols: cols, vectors: false, tensor: tensor).s
    }

    /// Truncated SVD factors of the rows × cols matrix `x`.
    public static func factorize(_ x: UnsafeBufferPointer<Float>, rows: Int, cols: Int, rank spec: Rank, tensor: String)
        throws -> Factors
    {
        let (s, u, vt) = try svd(x, rows: rows, cols: cols, vectors: true, tensor: tensor)
        let k = min(rows, cols)
        let r = rank(spec, singularValues: s, rows: rows, cols: cols)
        var uf = [Float](repeating: 0, count: rows * r)
        for i in 0..<rows { for j in 0..<r { uf[i * r + j] = u[i * k + j] * s[j] } }
        let vf = Array(vt[0..<(r * cols)])
        let total = s.reduce(0.0) { $0 + Double($1) * Double($1) }
        let kept = s.prefix(r).reduce(0.0) { $0 + Double($1) * Double($1) }
        return Factors(u: uf, v: vf, rank: r, retainedEnergy: total > 0 ? kept / total : 1)
    }

    /// dst (rows × cols) = u (rows × rank) · v (rank × cols).
    public static func multiply(
        _ u: [Float], _ v: [Float], rows: Int, rank: Int, cols: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        BLAS.configure()
        precondition(dst.count == rows * cols && u.count == rows * rank && v.count == rank * cols)
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(cols), Int32(rank), 1, u, Int32(rank), v,
            Int32(cols), 0, dst.baseAddress, Int32(cols))
    }

    static func svd(
        _ x: UnsafeBufferPointer<Float>, rows: Int, cols: Int, vectors: Bool,
        tensor: String
    ) throws -> (s: [Float], u: [Float], vt: [Float]) {
        BLAS.configure()
        precondition(rows * cols == x.count)
        guard rows > 0, cols > 0, rows < Int(Int32.max), cols < Int(Int32.max) else {
            throw ComputeError(.shapeMismatch, "cannot factorize a \(rows) × \(cols) matrix", tensor: tensor)
        }
        guard x.allSatisfy({ $0.isFinite }) else {
            throw ComputeError(
                .numerical, "holds NaN or infinity; a low-rank factorization needs finite values", tensor: tensor)
        }
        let k = min(rows, cols)
        var a = Array(x)
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: vectors ? rows * k : 1)
        var vt = [Float](repeating: 0, count: vectors ? k * cols : 1)
        let info = LAPACKE_sgesdd(
            LAPACK_ROW_MAJOR, vectors ? Int8(UInt8(ascii: "S")) : Int8(UInt8(ascii: "N")),
            Int32(rows), Int32(cols), &a, Int32(cols), &s, &u, Int32(vectors ? k : 1), &vt, Int32(cols))
        guard info == 0 else {
            throw ComputeError(.numerical, "SVD did not converge (LAPACK sgesdd info \(info))", tensor: tensor)
        }
        return (s, u, vt)
    }
}
