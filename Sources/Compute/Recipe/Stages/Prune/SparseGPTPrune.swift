import Foundation

/// `prune: {method: sparsegpt}`: OBS-style pruning with weight updates through the calibration
/// Hessian, unstructured (`sparsity`) or N:M (`n`, `m`); `damp` is the fraction of the Hessian's
/// mean diagonal added to it.
public struct SparseGPTPrune: PruneMethod {
    public static let name = "sparsegpt"
    public static let keys = ["sparsity", "n", "m", "damp"]
    public static let calibrationReason: String? = "it uses the inputs' Hessian"

    public var pattern: SparseGPT.Pattern
    public var damp: Double

    public init(_ pattern: SparseGPT.Pattern, damp: Double = 0.01) {
        self.pattern = pattern
        self.damp = damp
    }

    public init(from decoder: Decoder) throws {
        let r = try Self.reader(decoder)
        damp = try r.number("damp") ?? 0.01
        guard damp > 0 && damp <= 1 else {
            throw RecipeError(r.at("damp"), "\(RecipeParser.fmt(damp)) is not in (0, 1]")
        }
        if r.has("n") || r.has("m") {
            if r.has("sparsity") {
                throw RecipeError(r.at("sparsity"), "is implied by n and m (give either sparsity or n and m)")
            }
            let (n, m) = try NMPrune.pattern(r)
            pattern = .nm(n: n, m: m)
            return
        }
        pattern = .unstructured(sparsity: try Self.sparsity(r))
    }

    public func addNeeds(to needs: inout CalibrationNeeds) { needs.gram = true }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("damp", damp)
        switch pattern {
        case .unstructured(let s): try w.put("sparsity", s)
        case .nm(let n, let m):
            try w.put("n", n)
            try w.put("m", m)
        }
    }
}
