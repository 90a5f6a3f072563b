import CKernels

/// How calibration computes XᵀX (the SparseGPT/GPTQ Hessian, distill's normal matrix): `f32`
/// from the inputs as they are (OpenBLAS), `bf16` from the inputs rounded to BF16 with F32 sums
/// (what GPU calibration of a BF16 model computes; about 1.5× faster on AVX512-BF16 CPUs).
public enum GramPrecision: String, Sendable, Equatable, CaseIterable {
    case f32, bf16
}

/// XᵀX for X [rows × n] from X rounded to BF16, summed in F32 one pair of rows at a time in row
/// order (`squeeze_bf16_gram_tile`: AVX512-BF16, or an exact emulation of it elsewhere). Rows are
/// packed 512 at a time into the running path's panel (over the threads), then fixed 96 × 96 tiles of the
/// upper triangle are spread over the threads. Every entry is one sequential sum over the rows,
/// so the bytes do not depend on the thread count, on the CPU, or on how the rows were chunked
/// (given chunks of even size).
final class BF16GramSum {
    static let tile = Int(SQUEEZE_BF16_TILE)
    static let packRows = 2 * Int(SQUEEZE_BF16_PANEL_PAIRS)
    let n: Int
    let threads: Int
    /// n rounded up to whole tiles: the sum's and the packed rows' stride.
    private let padded: Int
    private var sum: [Float]
    private var packed: [UInt32]
    /// The tile product's path (`SQUEEZE_BF16_NATIVE`, …): the fastest the CPU runs unless a test asks for another.
    let path: Int32
    private let tiles: [(i: Int, j: Int)]

    init(n: Int, threads: Int, path: Int32 = squeeze_bf16_fastest_path()) {
        precondition(squeeze_bf16_path_runs(path) == 1, "BF16 Gram path \(path) does not run on this CPU")
        self.path = path
        self.n = n
        self.threads = max(1, threads)
        padded = (n + Self.tile - 1) / Self.tile * Self.tile
        sum = [Float](repeating: 0, count: padded * padded)
        packed = [UInt32](repeating: 0, count: squeeze_bf16_panel_words(path, padded))
        let starts = Array(stride(from: 0, to: padded, by: Self.tile))
        tiles = starts.indices.flatMap { a in starts[a...].map { (i: starts[a], j: $0) } }
    }

    /// Adds `rows` rows of X (row stride n).
    func add(_ x: UnsafePointer<Float>, rows: Int) {
        let (n, ld, tile, threads, tiles, path) = (n, padded, Self.tile, threads, tiles, path)
        packed.withUnsafeMutableBufferPointer { pp in
            sum.withUnsafeMutableBufferPointer { sp in
                let (p, c) = (pp.baseAddress!, sp.baseAddress!)
                for r0 in stride(from: 0, to: rows, by: Self.packRows) {
                    let count = min(Self.packRows, rows - r0)
                    let pairs = (count + 1) / 2
                    let pieces = Parallel.chunks(pairs, chunk: 32)
                    Parallel.forEach(pieces.count, threads: threads) { k in
                        let r = pieces[k]
                        squeeze_bf16_pack_panel(
                            path, x + (r0 + 2 * r.lowerBound) * n, n, min(2 * r.count, count - 2 * r.lowerBound), n,
                            p, ld, r.lowerBound)
                    }
                    Parallel.forEach(tiles.count, threads: threads) { t in
                        squeeze_bf16_gram_tile(path, p, pairs, ld, tiles[t].i, tile, tiles[t].j, tile, c, ld)
                    }
                }
            }
        }
    }

    /// The full symmetric n × n sum, mirrored from its upper triangle.
    func result() -> [Float] {
        var out = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                let v = sum[i * padded + j]
                out[i * n + j] = v
                out[j * n + i] = v
            }
        }
        return out
    }
}
