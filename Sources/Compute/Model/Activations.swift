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

/// Supplies a model's F32 weights by tensor name. `linear` hands out the weight of a linear
/// layer together with the activations that feed it, so a calibrating supplier can compress
/// the weight on those inputs first (layer by layer, in forward order).
public protocol WeightSupplier: AnyObject {
    /// The values of tensor `name`, which must hold `count` values.
    func tensor(_ name: String, count: Int) throws -> [Float]
    /// The [out, in] weight of linear layer `base` (tensor `base.weight`), given its input.
    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float]
}
