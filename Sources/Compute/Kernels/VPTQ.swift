import Foundation

/// VPTQ (Liu et al., vector post-training quantization): each row of a linear weight is scaled to
/// unit RMS (one F16 scale per row) and cut into vectors of `vector` consecutive input columns; each
/// vector becomes the sum of an entry of a codebook of `centroids` vectors and, optionally, of a
/// residual codebook, both learned per matrix by k-means weighted by the calibration Hessian's
/// diagonal (`VectorKMeans`). Vectors are visited column group by column group (with `actOrder`, by
/// decreasing Hessian diagonal), each assigned to the entries nearest under the metric its error
/// costs, and the error pushed into the later columns through the inverse Hessian's Cholesky factor,
/// as GPTQ does for one column. Codebooks are stored in F16, so the decoded weight is exactly
/// scale · (entry + residual entry) in F32.
public enum VPTQ {
    /// A recipe's `quantize: {method: vptq}` settings.
    public struct Options: Equatable, Sendable {
        /// Values per vector, along the input dimension.
        public var vector = 8
        /// Entries of the first codebook (a power of two, 16 to 65536).
        public var centroids = 256
        /// Entries of the residual codebook; 0 for none.
        public var residual = 256
        /// Lloyd iterations of each k-means.
        public var iterations = 32
        /// Visit column groups by decreasing Hessian diagonal.
        public var actOrder = true
        /// Fraction of the Hessian's mean diagonal added to its diagonal.
        public var damp = 0.01
        /// Input columns kept at F16 instead of codebook entries (a multiple of `vector`: the groups of the
        /// largest Hessian diagonal, visited first); 0 for none.
        public var outliers = 0

        public init() {}

        /// Codebook sizes, first codebook first.
        var books: [Int] { residual > 0 ? [centroids, residual] : [centroids] }

        /// Vectors per row that take codebook indices: those of the columns that are not outliers.
        func codedGroups(cols: Int) -> Int { (cols - outliers) / vector }
    }

    /// One quantized matrix: per codebook its entries (F16 values) and each vector's index, rows × the groups
    /// that are not outliers, in stored order; one scale per row (F16 values); the outlier columns
    /// (ascending) and their values at unit RMS, rows × outlier columns (F16 values).
    public struct Result: Sendable {
        public var codebooks: [[Float]]
        public var indices: [[Int32]]
        public var scales: [Float]
        public var outlierColumns: [Int32] = []
        public var outliers: [Float] = []
    }

    /// k-means seed: fixed, so a matrix's codebooks depend only on its weights and inputs.
    static let seed: UInt64 = 0x5351_5545_455A_4531
    /// Vectors k-means trains on, at most, per codebook entry (evenly strided over the matrix).
    static let trainingVectorsPerEntry = 256

    /// Bits of one index into a codebook of `entries` entries.
    public static func indexBits(_ entries: Int) -> Int { max(1, Int.bitWidth - (entries - 1).leadingZeroBitCount) }

    /// Quantizes the rows × cols weight `w` in place to its decoded values, with the Hessian of `tokens`
    /// calibration inputs given as their XᵀX.
    static func quantize(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, gram g: [Float], tokens: Int, options o: Options,
        factors: HessianFactorCache?, threads: Int, tensor: String
    ) throws -> Result {
        let v = o.vector
        guard cols % v == 0 else {
            throw ComputeError(.shapeMismatch, "\(cols) columns are not a multiple of vector \(v)", tensor: tensor)
        }
        let groups = cols / v
        guard o.outliers % v == 0, o.outliers < cols else {
            throw ComputeError(
                .shapeMismatch, "outliers \(o.outliers) must be a multiple of vector \(v) below \(cols) columns",
                tensor: tensor)
        }
        // Row scales (F16) and the unit-RMS rows; a row whose scale is 0 or not finite decodes to zeros.
        var scales = [Float](repeating: 0, count: rows)
        var unit = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            var sum = 0.0
            for c in 0..<cols { sum += Double(w[r * cols + c]) * Double(w[r * cols + c]) }
            let s = Float(Float16(Float((sum / Double(cols)).squareRoot())))
            guard s > 0 && s.isFinite else { continue }
            scales[r] = s
            for c in 0..<cols { unit[r * cols + c] = w[r * cols + c] / s }
        }
        let diag = (0..<cols).map { g[$0 * cols + $0] }
        // Groups by decreasing Hessian diagonal: the first `outliers / vector` are kept at F16.
        let energy = (0..<groups).map { gi in (0..<v).reduce(Float(0)) { $0 + diag[gi * v + $1] } }
        let byEnergy = (0..<groups).sorted { a, b in energy[a] != energy[b] ? energy[a] > energy[b] : a < b }
        let exact = o.outliers / v
        var isOutlier = [Bool](repeating: false, count: groups)
        for gi in byEnergy.prefix(exact) { isOutlier[gi] = true }
        let codebooks = learnCodebooks(
            unit, scales: scales, diag: diag, rows: rows, cols: cols, options: o, skip: isOutlier, threads: threads)
        // Group order, and the columns it visits: outliers first, then the rest (by energy with act order).
        let order =
            Array(byEnergy.prefix(exact)) + (o.actOrder ? byEnergy : Array(0..<groups)).filter { !isOutlier[$0] }
        let permuted = o.actOrder || exact > 0
        let perm = order.flatMap { ($0 * v)..<($0 * v + v) }
        var gp = g
        var wp = unit
        if permuted {
            gp = perm.flatMap { i in perm.map { j in g[i * cols + j] } }
            wp = (0..<rows).flatMap { r in perm.map { unit[r * cols + $0] } }
        }
        let u = try wp.withUnsafeMutableBufferPointer {
            try CalibrationHessian.inverseFactor(
                gram: gp, tokens: tokens, cols: cols, damp: o.damp, weight: $0, rows: rows, threads: threads,
                shared: permuted ? nil : factors, ordered: false, tensor: tensor
            ).u
        }
        let sweep = VectorSweep(u: u, cols: cols, vector: v, codebooks: codebooks, exact: exact)
        // Each kept group's slot among the stored (non-outlier) groups.
        let kept = o.codedGroups(cols: cols)
        var slot = [Int](repeating: -1, count: groups)
        for (i, gi) in (0..<groups).filter({ !isOutlier[$0] }).enumerated() { slot[gi] = i }
        var indices = [[Int32]](repeating: [Int32](repeating: 0, count: rows * kept), count: codebooks.count)
        let chunks = Parallel.chunks(rows, chunk: 32)
        let perChunk = UnsafeMutableBufferPointer<[[Int32]]>.allocate(capacity: chunks.count)
        perChunk.initialize(repeating: [])
        defer { perChunk.deallocate() }
        wp.withUnsafeMutableBufferPointer { wpp in
            Parallel.forEach(chunks.count, threads: threads) { ci in
                perChunk[ci] = sweep.run(chunks[ci], w: wpp)
            }
        }
        for (ci, range) in chunks.enumerated() {
            for b in 0..<codebooks.count {
                for (k, r) in range.enumerated() {
                    for (position, gi) in order.enumerated() where !isOutlier[gi] {
                        indices[b][r * kept + slot[gi]] = perChunk[ci][b][k * groups + position]
                    }
                }
            }
        }
        // The decoded weights, in stored column order: scale · (entry + residual entry), or scale · the F16 value.
        for r in 0..<rows {
            for (position, c) in perm.enumerated() { w[r * cols + c] = scales[r] * wp[r * cols + position] }
        }
        var result = Result(codebooks: codebooks, indices: indices, scales: scales)
        // Outlier columns ascending, with their values at unit RMS (the first positions visited).
        var position = [Int](repeating: 0, count: cols)
        for (p, c) in perm.enumerated() { position[c] = p }
        let columns = (0..<cols).filter { isOutlier[$0 / v] }
        result.outlierColumns = columns.map { Int32($0) }
        result.outliers = (0..<rows).flatMap { r in columns.map { wp[r * cols + position[$0]] } }
        return result
    }

    /// The codebooks (F16 values): k-means on the unit-RMS vectors, then on what the first codebook leaves.
    /// Each vector value weighs its row's squared scale times its column's Hessian diagonal; the groups in
    /// `skip` (the outliers, kept at F16) do not train.
    private static func learnCodebooks(
        _ unit: [Float], scales: [Float], diag: [Float], rows: Int, cols: Int, options o: Options, skip: [Bool],
        threads: Int
    ) -> [[Float]] {
        let v = o.vector
        let n = rows * cols / v
        let groups = cols / v
        var weights = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols { weights[r * cols + c] = scales[r] * scales[r] * diag[c] }
        }
        var target = unit
        var books = [[Float]]()
        for (b, entries) in o.books.enumerated() {
            // An evenly strided sample of the vectors trains the codebook.
            let stride = max(1, n / (entries * trainingVectorsPerEntry))
            let picks = Swift.stride(from: 0, to: n, by: stride).filter { !skip[$0 % groups] }
            let xs = picks.flatMap { target[($0 * v)..<($0 * v + v)] }
            let ws = picks.flatMap { weights[($0 * v)..<($0 * v + v)] }
            var book = VectorKMeans.train(
                xs, weights: ws, dim: v, centroids: entries, iterations: o.iterations, seed: seed &+ UInt64(b),
                threads: threads)
            book = book.map { Float(Float16($0)) }
            books.append(book)
            if b + 1 < o.books.count {
                let nearest = VectorKMeans.nearest(target, weights: weights, dim: v, codebook: book, threads: threads)
                for i in 0..<n {
                    let e = Int(nearest.assignment[i])
                    for d in 0..<v { target[i * v + d] -= book[e * v + d] }
                }
            }
        }
        return books
    }

    /// The rows × cols values a result decodes to: scale · (entry + residual entry) per value, scale · the
    /// stored value in an outlier column.
    public static func decode(_ r: Result, rows: Int, cols: Int, vector v: Int) -> [Float] {
        let groups = cols / v
        var isOutlier = [Bool](repeating: false, count: groups)
        for c in r.outlierColumns { isOutlier[Int(c) / v] = true }
        let kept = groups - r.outlierColumns.count / v
        let k = r.outlierColumns.count
        var out = [Float](repeating: 0, count: rows * cols)
        for row in 0..<rows {
            var slot = 0
            for gi in 0..<groups where !isOutlier[gi] {
                for d in 0..<v {
                    var sum: Float = 0
                    for (b, book) in r.codebooks.enumerated() {
                        sum += book[Int(r.indices[b][row * kept + slot]) * v + d]
                    }
                    out[row * cols + gi * v + d] = r.scales[row] * sum
                }
                slot += 1
            }
            for (j, c) in r.outlierColumns.enumerated() {
                out[row * cols + Int(c)] = r.scales[row] * r.outliers[row * k + j]
            }
        }
        return out
    }

    /// Indices packed at `bits` each along every row of `groups` indices, the first in the lowest bits,
    /// each row padded to whole bytes.
    public static func pack(_ indices: [Int32], rows: Int, groups: Int, bits: Int) -> [UInt8] {
        let rowBytes = (groups * bits + 7) / 8
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        for r in 0..<rows {
            for gi in 0..<groups {
                let value = UInt32(indices[r * groups + gi])
                for b in 0..<bits where value >> UInt32(b) & 1 == 1 {
                    let bit = gi * bits + b
                    out[r * rowBytes + bit / 8] |= UInt8(1) << UInt8(bit % 8)
                }
            }
        }
        return out
    }

    /// The indices `pack` wrote.
    public static func unpack(_ bytes: UnsafeRawBufferPointer, rows: Int, groups: Int, bits: Int) -> [Int32] {
        let rowBytes = (groups * bits + 7) / 8
        var out = [Int32](repeating: 0, count: rows * groups)
        for r in 0..<rows {
            for gi in 0..<groups {
                var value: Int32 = 0
                for b in 0..<bits {
                    let bit = gi * bits + b
                    if bytes[r * rowBytes + bit / 8] >> UInt8(bit % 8) & 1 == 1 { value |= 1 << Int32(b) }
                }
                out[r * groups + gi] = value
            }
        }
        return out
    }
}
