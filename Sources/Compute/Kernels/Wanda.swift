/// Wanda pruning (Sun et al.): in each output row of W [out × in], zero the `k` weights with the
/// smallest score |W_ij| · ‖X_j‖₂, where ‖X_j‖₂ is the norm of input feature j over the
/// calibration tokens. No weight update. Ties go to the lower index; a NaN score counts as largest.
public enum Wanda {
    /// ‖X_j‖₂ of each column of the rows × width activations, summed in Double in row order.
    public static func inputNorms(_ x: Activations, threads: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.width)
        x.data.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer {
                addColumnSquares(xp, rows: x.rows, width: x.width, into: $0, threads: threads)
            }
        }
        return out.map { $0.squareRoot() }
    }

    /// Adds Σᵢ x[i, j]² of the rows × width matrix `x` to `o[j]`, rows in order, columns in parallel.
    static func addColumnSquares(
        _ x: UnsafeBufferPointer<Float>, rows: Int, width: Int, into o: UnsafeMutableBufferPointer<Double>,
        threads: Int
    ) {
        let ranges = Parallel.chunks(width, chunk: 64)
        Parallel.forEach(ranges.count, threads: threads) { r in
            for i in 0..<rows {
                let row = x.baseAddress! + i * width
                for j in ranges[r] {
                    let v = Double(row[j])
                    o[j] += v * v
                }
            }
        }
    }

    /// Prunes `k` weights per row of the rows × cols matrix `w` by score.
    public static func prune(
        _ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, norms: [Double], k: Int, threads: Int
    ) {
        precondition(norms.count == cols && rows * cols == w.count)
        guard k > 0 else { return }
        let base = w.baseAddress!
        Parallel.forEach(rows, threads: threads) { i in
            let row = base + i * cols
            let score = (0..<cols).map { Double(abs(row[$0])) * norms[$0] }
            for j in StructuredPruning.select(score, k: k) { row[j] = 0 }
        }
    }
}
