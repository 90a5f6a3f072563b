import Foundation

/// Activations of a batch: `rows` token rows (samples × sequence length) of `width` floats.
public struct Activations: Sendable {
    public var data: [Float]
    public let rows: Int
    public let width: Int

    public init(data: [Float], rows: Int, width: Int) {
        precondition(data.count == rows * width)
        self.data = data
        self.rows = rows
        self.width = width
    }
}

extension Activations {
    /// Windows per OpenBLAS product in `linear` (4 × 256 tokens: the weight is packed once per 1,024 rows).
    static let windowsPerProduct = 4

    /// rows × width values that the caller overwrites completely before reading (no zero fill).
    static func unfilled(rows: Int, width: Int) -> Activations {
        Activations(
            data: [Float](unsafeUninitializedCapacity: rows * width) { _, n in n = rows * width }, rows: rows,
            width: width)
    }

    /// y = x Wᵀ (+ b) for the `weight` [out × width], one OpenBLAS product per group of up to
    /// `windowsPerProduct` windows of `seqLen` rows (fewer packings of the weight than one product
    /// per window), groups spread over `threads`. The groups depend only on the row count, so the
    /// bytes do not depend on the thread count.
    func linear(_ weight: [Float], bias: [Float]?, out: Int, seqLen l: Int, threads: Int) -> Activations {
        data.withUnsafeBufferPointer {
            Self.linear(
                $0.baseAddress!, rows: rows, width: width, weight, bias: bias, out: out, seqLen: l, threads: threads)
        }
    }

    /// `linear` for the `rows` × `width` values at `x` (rows of a larger buffer, read in place).
    static func linear(
        _ x: UnsafePointer<Float>, rows: Int, width inW: Int, _ weight: [Float], bias: [Float]?, out: Int,
        seqLen l: Int,
        threads: Int
    ) -> Activations {
        var y = Activations.unfilled(rows: rows, width: out).data  // every group's product writes its rows
        let groups = Parallel.chunks(rows / l, chunk: Self.windowsPerProduct)
        if groups.count == 1 {
            return Activations(
                data: columnSplit(x, rows: rows, width: inW, weight, bias: bias, out: out, threads: threads),
                rows: rows, width: out)
        }
        weight.withUnsafeBufferPointer { wp in
            y.withUnsafeMutableBufferPointer { yp in
                Parallel.forEach(groups.count, threads: threads) { g in
                    let first = groups[g].lowerBound * l, count = groups[g].count * l
                    BLAS.gemm(
                        m: count, n: out, k: inW, a: x + first * inW, lda: inW, b: wp.baseAddress!, ldb: inW,
                        bTransposed: true, c: yp.baseAddress! + first * out, ldc: out)
                    if let bias { for r in first..<(first + count) { for j in 0..<out { yp[r * out + j] += bias[j] } } }
                }
            }
        }
        return Activations(data: y, rows: rows, width: out)
    }

    /// Output columns per product when one group of windows is all there is (generation, a short
    /// prompt): fixed slices, so the products are the same for any thread count.
    static let columnSlice = 128

    /// y = x Wᵀ (+ b) as one product per slice of `columnSlice` output columns, slices spread over
    /// `threads`: a single window's product (one token, when generating) still uses every core.
    static func columnSplit(
        _ x: UnsafePointer<Float>, rows: Int, width inW: Int, _ weight: [Float], bias: [Float]?, out: Int, threads: Int
    ) -> [Float] {
        var y = Activations.unfilled(rows: rows, width: out).data  // every slice's product writes its columns
        let slices = Parallel.chunks(out, chunk: columnSlice)
        weight.withUnsafeBufferPointer { wp in
            y.withUnsafeMutableBufferPointer { yp in
                Parallel.forEach(slices.count, threads: threads) { k in
                    let cols = slices[k]
                    BLAS.gemm(
                        m: rows, n: cols.count, k: inW, a: x, lda: inW, b: wp.baseAddress! + cols.lowerBound * inW,
                        ldb: inW, bTransposed: true, c: yp.baseAddress! + cols.lowerBound, ldc: out)
                    if let bias { for r in 0..<rows { for j in cols { yp[r * out + j] += bias[j] } } }
                }
            }
        }
        return y
    }
}

/// Supplies a model's F32 weights by tensor name. `linear` hands out the weight of a linear
/// layer together with the activations that feed it, so a calibrating supplier can compress
/// the weight on those inputs first (layer by layer, in forward order).
public protocol WeightSupplier: AnyObject {
    /// The values of tensor `name`, which must hold `count` values.
    func tensor(_ name: String, count: Int) throws -> [Float]
    /// The [out, in] weight of linear layer `base` (tensor `base.weight`), given its input.
    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float]
    /// Rows `ids` (each in bounds) of the [count / width, width] tensor `name`, packed in that order.
    func rows(_ name: String, width: Int, count: Int, ids: [Int]) throws -> [Float]
}

extension WeightSupplier {
    /// From the whole tensor.
    public func rows(_ name: String, width: Int, count: Int, ids: [Int]) throws -> [Float] {
        gatherRows(try tensor(name, count: count), width: width, ids: ids)
    }
}

/// The rows of a [vocab, width] embedding table that a batch of token ids uses, read once each.
struct UsedRows {
    let values: [Float]
    private let width: Int
    private let slot: [Int32: Int]

    /// Refuses an id outside the vocabulary before reading anything.
    init(_ ids: [[Int32]], of name: String, vocab: Int, width: Int, from w: WeightSupplier) throws {
        if let id = ids.joined().first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw ComputeError(.corruptData, "token id \(id) is outside the vocabulary of \(vocab)")
        }
        let used = Set(ids.joined()).sorted()
        slot = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($0.element, $0.offset) })
        values = try w.rows(name, width: width, count: vocab * width, ids: used.map { Int($0) })
        self.width = width
    }

    /// Where the row of `id` (one of the batch's) starts in `values`.
    func offset(of id: Int32) -> Int { slot[id]! * width }
}

/// Rows `ids` of a [*, width] table, packed in that order.
func gatherRows(_ table: [Float], width: Int, ids: [Int]) -> [Float] {
    var out = [Float]()
    out.reserveCapacity(ids.count * width)
    for id in ids { out.append(contentsOf: table[(id * width)..<((id + 1) * width)]) }
    return out
}
