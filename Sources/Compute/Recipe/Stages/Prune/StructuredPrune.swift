import Foundation

/// `prune: {method: structured}`: zero whole rows or columns with the smallest L1/L2 norms.
public struct StructuredPrune: PruneMethod {
    public static let name = "structured"
    public static let keys = ["sparsity", "dim", "norm"]

    public var sparsity: Double
    public var dim: StructuredPruning.Dimension
    public var norm: StructuredPruning.Norm

    public init(sparsity: Double, dim: StructuredPruning.Dimension = .rows, norm: StructuredPruning.Norm = .l2) {
        self.sparsity = sparsity
        self.dim = dim
        self.norm = norm
    }

    public init(from decoder: Decoder) throws {
        let r = try Self.reader(decoder)
        sparsity = try Self.sparsity(r)
        dim = try r.choice("dim", StructuredPruning.Dimension.self) ?? .rows
        norm = try r.choice("norm", StructuredPruning.Norm.self, folding: true) ?? .l2
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("sparsity", sparsity)
        try w.put("dim", dim.rawValue)
        try w.put("norm", norm.rawValue)
    }
}
