import CBLAS

/// GPTQ (Frantar et al.): quantizes a linear layer's weight column by column, folding each
/// column's rounding error into the columns not yet quantized, weighted by the inverse Hessian
/// of the layer's calibration inputs, H = 2/n · XᵀX (+ 1% of its mean diagonal, dead inputs
/// zeroed). Codes, scales and zero points use the round-to-nearest grid of `RTNQuantizer`, so the
/// compressed export stores them the same way; group scales are taken when the group's first
/// column is reached, from the weights as updated so far. Rows are independent: they run in fixed
/// chunks of 32 over `threads`, with lazy block updates of 128 columns through OpenBLAS.
public enum GPTQ {
    static let block = 128

    /// Quantizes the rows × cols weight `w` in place to its dequantized values. With `actOrder`,
    /// columns are visited by decreasing Hessian diagonal (the inputs with the most energy first)
    /// and group scales are fixed up front from the weights as they came in ("static groups"), so the
    /// stored codes, scales and zero points keep the plain layout.
    public static func quantize(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, input x: Activations, gram: [Float]? = nil,
        bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity, damp: Double = 0.01,
        actOrder: Bool = false, observer: RTNQuantizer.Observer = .minmax, threads: Int, tensor: String
    ) throws -> RTNQuantizer.Result {
        precondition(x.width == cols)
        return try quantize(
            w, rows: rows, cols: cols, gram: gram ?? BLAS.gram(x.data, rows: x.rows, n: cols, threads: threads),
            tokens: x.rows,
            bits: bits, symmetric: symmetric, granularity: granularity, damp: damp, actOrder: actOrder,
            observer: observer,
            threads: threads, tensor: tensor)
    }

    /// Quantizes with the Hessian of `tokens` calibration inputs given as their XᵀX.
    public static func quantize(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, gram g: [Float], tokens: Int,
        bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity, damp: Double = 0.01,
        actOrder: Bool = false, observer: RTNQuantizer.Observer = .minmax, threads: Int, tensor: String
    ) throws -> RTNQuantizer.Result {
        try quantize(
            w, rows: rows, cols: cols, gram: g, tokens: tokens, bits: bits, symmetric: symmetric,
            granularity: granularity, damp: damp,
            actOrder: actOrder, observer: observer, factors: nil, threads: threads, tensor: tensor)
    }

    /// Quantizes with a Hessian factor shared with the other layers that read the same input.
    static func quantize(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, gram g: [Float], tokens: Int,
        bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity, damp: Double,
        actOrder: Bool, observer: RTNQuantizer.Observer, factors: HessianFactorCache?,
        start: UnsafeMutablePointer<Float>? = nil, threads: Int, tensor: String
    ) throws -> RTNQuantizer.Result {
        precondition(w.count == rows * cols && g.count == cols * cols)
        guard actOrder else {
            return try quantize(
                w, rows: rows, cols: cols, gram: g, tokens: tokens, bits: bits, symmetric: symmetric,
                granularity: granularity,
                damp: damp, observer: observer, staticGroups: nil, factors: factors, ordered: false, start: start,
                threads: threads, tensor: tensor)
        }
        // Decreasing diagonal, ties to the lower column.
        let perm = (0..<cols).sorted { a, b in
            g[a * cols + a] != g[b * cols + b] ? g[a * cols + a] > g[b * cols + b] : a < b
        }
        let gp = permuted(g, rows: cols, cols: cols, rowOrder: perm, columnOrder: perm, threads: threads)
        var wp = permuted(Array(w), rows: rows, cols: cols, rowOrder: nil, columnOrder: perm, threads: threads)
        var fixed: RTNQuantizer.Result?
        if case .group = granularity {
            // The plain RTN grid of the incoming weights: its scales and zero points are the static groups.
            var copy = Array(w)
            fixed = copy.withUnsafeMutableBufferPointer {
                RTNQuantizer.quantize(
                    $0, shape: [rows, cols], bits: bits, symmetric: symmetric, granularity: granularity,
                    observer: observer,
                    threads: threads)
            }
        }
        var permutedStart = [Float](repeating: 0, count: start == nil ? 0 : rows * cols)
        var res = try wp.withUnsafeMutableBufferPointer { wpp in
            try permutedStart.withUnsafeMutableBufferPointer { sp in
                try quantize(
                    wpp, rows: rows, cols: cols, gram: gp, tokens: tokens, bits: bits, symmetric: symmetric,
                    granularity: granularity, damp: damp,
                    observer: observer,
                    staticGroups: fixed.map { (perm, $0) }, factors: factors, ordered: true,
                    start: start == nil ? nil : sp.baseAddress, threads: threads, tensor: tensor)
            }
        }
        // Back to the stored column order: column perm[c] takes column c.
        var inverse = [Int](repeating: 0, count: cols)
        for (c, original) in perm.enumerated() { inverse[original] = c }
        _ = w.update(
            fromContentsOf: permuted(wp, rows: rows, cols: cols, rowOrder: nil, columnOrder: inverse, threads: threads))
        res.codes = permuted(res.codes, rows: rows, cols: cols, rowOrder: nil, columnOrder: inverse, threads: threads)
        if let start {
            let back = permuted(
                permutedStart, rows: rows, cols: cols, rowOrder: nil, columnOrder: inverse, threads: threads)
            start.update(from: back, count: rows * cols)
        }
        if let f = fixed { (res.scales, res.zeros) = (f.scales, f.zeros) }
        return res
    }

    /// m[rowOrder[i], columnOrder[j]] at (i, j) (rows in place when `rowOrder` is nil), rows in fixed chunks over
    /// `threads`.
    private static func permuted<T: BitwiseCopyable>(
        _ m: [T], rows: Int, cols: Int, rowOrder: [Int]?, columnOrder: [Int], threads: Int
    ) -> [T] {
        // every element is written below
        var out = [T](unsafeUninitializedCapacity: rows * cols) { _, n in n = rows * cols }
        let chunks = Parallel.chunks(rows, chunk: 64)
        m.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                columnOrder.withUnsafeBufferPointer { cp in
                    Parallel.forEach(chunks.count, threads: threads) { k in
                        for i in chunks[k] {
                            let from = src.baseAddress! + (rowOrder?[i] ?? i) * cols, to = dst.baseAddress! + i * cols
                            for j in 0..<cols { to[j] = from[cp[j]] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The sweep over columns in stored order; `staticGroups` (the column order and fixed group
    /// parameters in the original layout) replaces group parameters taken as each group starts;
    /// `ordered` says `gram` is in act order (the key of a shared factor).
    private static func quantize(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, gram: [Float], tokens: Int,
        bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity, damp: Double,
        observer: RTNQuantizer.Observer,
        staticGroups: ([Int], RTNQuantizer.Result)?, factors: HessianFactorCache?, ordered: Bool,
        start: UnsafeMutablePointer<Float>?, threads: Int, tensor: String
    ) throws -> RTNQuantizer.Result {
        let u = try CalibrationHessian.inverseFactor(
            gram: gram, tokens: tokens, cols: cols, damp: damp, weight: w, rows: rows, threads: threads,
            shared: factors, ordered: ordered, tensor: tensor
        ).u
        let gl = RTNQuantizer.groupLength(granularity, shape: [rows, cols])
        let groups = rows * cols / gl
        var res = RTNQuantizer.Result(
            codes: [UInt8](repeating: 0, count: rows * cols), scales: [Float](repeating: 0, count: groups),
            zeros: [UInt8](repeating: 0, count: groups))
        if case .tensor = granularity {
            let (s, z) = RTNQuantizer.groupParameters(
                UnsafeBufferPointer(w), bits: bits, symmetric: symmetric, observer: observer)
            res.scales[0] = s
            res.zeros[0] = UInt8(z)
        }
        let chunks = Parallel.chunks(rows, chunk: 32)
        res.codes.withUnsafeMutableBufferPointer { codes in
            res.scales.withUnsafeMutableBufferPointer { scales in
                res.zeros.withUnsafeMutableBufferPointer { zeros in
                    u.withUnsafeBufferPointer { up in
                        Parallel.forEach(chunks.count, threads: threads) { ci in
                            quantizeRows(
                                chunks[ci], w: w, cols: cols, u: up, bits: bits, symmetric: symmetric,
                                granularity: granularity,
                                observer: observer, groupLength: gl, staticGroups: staticGroups, codes: codes,
                                scales: scales, zeros: zeros, start: start)
                        }
                    }
                }
            }
        }
        return res
    }

    /// One chunk of rows, all columns, in blocks of 128 with the lazy update after each block.
    private static func quantizeRows(
        _ rowRange: Range<Int>, w: UnsafeMutableBufferPointer<Float>, cols: Int, u: UnsafeBufferPointer<Float>,
        bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity, observer: RTNQuantizer.Observer,
        groupLength gl: Int,
        staticGroups: ([Int], RTNQuantizer.Result)?,
        codes: UnsafeMutableBufferPointer<UInt8>, scales: UnsafeMutableBufferPointer<Float>,
        zeros: UnsafeMutableBufferPointer<UInt8>, start: UnsafeMutablePointer<Float>?
    ) {
        let n = rowRange.count
        let base = w.baseAddress! + rowRange.lowerBound * cols
        var err = [Float](repeating: 0, count: n * block)
        var s = [Float](repeating: 0, count: n), z = [Float](repeating: 0, count: n)
        for (k, r) in rowRange.enumerated() {
            switch granularity {
            case .tensor: (s[k], z[k]) = (scales[0], Float(zeros[0]))
            case .channel:
                (s[k], z[k]) = RTNQuantizer.groupParameters(
                    UnsafeBufferPointer(start: base + k * cols, count: cols), bits: bits, symmetric: symmetric,
                    observer: observer)
                scales[r] = s[k]
                zeros[r] = UInt8(z[k])
            case .group: break
            }
        }
        var i1 = 0
        while i1 < cols {
            let i2 = min(i1 + block, cols)
            for col in i1..<i2 {
                if let (perm, fixed) = staticGroups {
                    // Act order: this column's group (in the original layout) has fixed parameters.
                    for (k, r) in rowRange.enumerated() {
                        let gi = (r * cols + perm[col]) / gl
                        (s[k], z[k]) = (fixed.scales[gi], Float(fixed.zeros[gi]))
                    }
                } else if case .group(let g) = granularity, col % g == 0 {
                    for (k, r) in rowRange.enumerated() {
                        (s[k], z[k]) = RTNQuantizer.groupParameters(
                            UnsafeBufferPointer(start: base + k * cols + col, count: g), bits: bits,
                            symmetric: symmetric, observer: observer)
                        let gi = (r * cols + col) / gl
                        scales[gi] = s[k]
                        zeros[gi] = UInt8(z[k])
                    }
                }
                let d = u[col * cols + col]
                let urow = u.baseAddress! + col * cols
                // Row k's code c, value q and scaled error e at this column (v: the value rounded);
                // the error goes into the row's later columns of the block.
                func finish(_ k: Int, _ c: Float, _ q: Float, _ e: Float, _ v: Float) {
                    let row = base + k * cols
                    codes[(rowRange.lowerBound + k) * cols + col] = UInt8(c)
                    start?[(rowRange.lowerBound + k) * cols + col] = v
                    row[col] = q
                    err[k * block + (col - i1)] = e
                    if e != 0 && e.isFinite { for j in (col + 1)..<i2 { row[j] -= e * urow[j] } }
                }
                // Eight rows at a time, so their divisions overlap instead of each row's chain
                // (divide, round, divide) waiting on the last; the rest one row at a time.
                var k = 0
                while k + 8 <= n {
                    var v = SIMD8<Float>(), s8 = SIMD8<Float>(), z8 = SIMD8<Float>()
                    for l in 0..<8 { (v[l], s8[l], z8[l]) = (base[(k + l) * cols + col], s[k + l], z[k + l]) }
                    let c = RTNQuantizer.code(v, scale: s8, zero: z8, bits: bits)
                    let q = RTNQuantizer.value(c, scale: s8, zero: z8)
                    let e = (v - q) / SIMD8(repeating: d)
                    for l in 0..<8 { finish(k + l, c[l], q[l], e[l], v[l]) }
                    k += 8
                }
                for k in k..<n {
                    let v = base[k * cols + col]
                    let c = RTNQuantizer.code(v, scale: s[k], zero: z[k], bits: bits)
                    let q = RTNQuantizer.value(c, scale: s[k], zero: z[k])
                    finish(k, c, q, (v - q) / d, v)
                }
            }
            if i2 < cols {
                // W[:, i2:] −= Err · U[i1:i2, i2:]
                err.withUnsafeBufferPointer { ep in
                    BLAS.gemm(
                        m: n, n: cols - i2, k: i2 - i1, a: ep.baseAddress!, lda: block,
                        b: u.baseAddress! + i1 * cols + i2, ldb: cols,
                        bTransposed: false, c: base + i2, ldc: cols, alpha: -1, beta: 1)
                }
            }
            for i in err.indices { err[i] = 0 }
            i1 = i2
        }
    }
}
