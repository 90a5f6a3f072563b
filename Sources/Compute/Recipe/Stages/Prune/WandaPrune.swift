import Foundation

/// `prune: {method: wanda}`: per output row, the smallest |W_ij|·‖X_j‖₂ on calibration inputs.
public struct WandaPrune: PruneMethod {
    public static let name = "wanda"
    public static let keys = ["sparsity"]
    public static let calibrationReason: String? = "it weighs |W| by input norms"

    public var sparsity: Double

    public init(sparsity: Double) { self.sparsity = sparsity }

    public init(from decoder: Decoder) throws {
        let r = try Self.reader(decoder)
        sparsity = try Self.sparsity(r)
    }

    public func addNeeds(to needs: inout CalibrationNeeds) { needs.norms = true }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("sparsity", sparsity)
    }
}
