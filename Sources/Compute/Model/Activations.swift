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
    /// y = x Wᵀ (+ b) for the `weight` [out × width], one OpenBLAS product per window of `seqLen`
    /// rows, windows spread over `threads` (the bytes do not depend on the thread count).
    func linear(_ weight: [Float], bias: [Float]?, out: Int, seqLen l: Int, threads: Int) -> Activations {
        var y = [Float](repeating: 0, count: rows * out)
        let inW = width
        data.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    Parallel.forEach(rows / l, threads: threads) { s in
                        BLAS.gemm(m: l, n: out, k: inW, a: xp.baseAddress! + s * l * inW, lda: inW, b: wp.baseAddress!, ldb: inW,
                                  bTransposed: true, c: yp.baseAddress! + s * l * out, ldc: out)
                        if let bias { for r in 0..<l { for j in 0..<out { yp[(s * l + r) * out + j] += bias[j] } } }
                    }
                }
            }
        }
        return Activations(data: y, rows: rows, width: out)
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
}
