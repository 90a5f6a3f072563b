import Foundation

/// `lowrank`: truncated SVD of each selected matrix (viewed as [numel / last, last]), kept as the
/// dense product (same tensor, same shape) or written as two factors `T.lowrank_u` [rows, r] and
/// `T.lowrank_v` [r, last] with T ≈ lowrank_u · lowrank_v. `svd-llm` and `asvd` factorize the
/// matrix scaled by its calibration inputs (LowRank+Activations).
public struct LowRankStage: Equatable, Sendable {
    public enum Output: String, Sendable, CaseIterable { case dense, factors }
    /// What the truncation minimises: the weights' error (`svd`), or the layer's output error on
    /// the calibration inputs, exactly (`svd-llm`: whitened by the Cholesky factor of XᵀX) or by
    /// per-column activation scales (`asvd`).
    public enum Method: String, Sendable, CaseIterable {
        case svd
        case svdLLM = "svd-llm"
        case asvd
    }
    public var method: Method = .svd
    public var rank: LowRank.Rank
    public var output: Output
    public var selector: TensorSelector
    /// asvd: the exponent of the column scales (RMS of each input column)^alpha.
    public var alpha = 0.5
    /// ratio: how the parameters to remove are shared among the selected matrices (uniform: the
    /// better of the two on SmolLM2 for every method, docs/QUALITY.md).
    public var allocation = Allocation.uniform

    /// `uniform`: every matrix loses the same fraction; `global`: one budget over all selected
    /// matrices, ranks chosen by each singular value's share of its matrix's (scaled) energy per
    /// parameter (LowRankAllocation).
    public enum Allocation: String, Sendable, CaseIterable { case uniform, global }

    public init(rank: LowRank.Rank, output: Output, selector: TensorSelector) {
        self.rank = rank
        self.output = output
        self.selector = selector
    }

    /// Whether the method needs calibration inputs.
    public var isCalibrated: Bool { method != .svd }

    /// The statistics of its layers' inputs the method reads: XᵀX (svd-llm) or column norms (asvd).
    func addNeeds(to n: inout CalibrationNeeds) {
        if method == .svdLLM { n.gram = true }
        if method == .asvd { n.norms = true }
    }

    /// The factor tensors' names for tensor `name`.
    public static func factorNames(_ name: String) -> (u: String, v: String) {
        (name + ".lowrank_u", name + ".lowrank_v")
    }
}

extension LowRankStage: StageOptions {
    public static let keys = [
        "method", "rank", "energy", "ratio", "allocation", "alpha", "output", "targets", "ignore"
    ]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        let given = [
            ("rank", try r.integer("rank").map(Double.init)), ("energy", try r.number("energy")),
            ("ratio", try r.number("ratio"))
        ].filter { $0.1 != nil }
        guard given.count == 1, let (key, value) = given.first.map({ ($0.0, $0.1!) }) else {
            throw RecipeError(
                given.count > 1 ? r.at(given[1].0) : r.path,
                given.isEmpty
                    ? "needs rank (an integer), energy (a fraction of Σσ² to keep) or ratio (a fraction of the "
                        + "parameters to remove)"
                    : "give one of rank, energy and ratio")
        }
        switch key {
        case "rank":
            guard value >= 1 else { throw RecipeError(r.at("rank"), "\(Int(value)) must be at least 1") }
            rank = .fixed(Int(value))
        case "energy": rank = .energy(try OptionCheck.fraction(value, at: r.at("energy"), open: true, closed: true))
        default: rank = .ratio(try OptionCheck.fraction(value, at: r.at("ratio"), open: true))
        }
        method = try r.choice("method", Method.self) ?? .svd
        if let a = try r.number("alpha") {
            guard method == .asvd else { throw RecipeError(r.at("alpha"), "only applies to method asvd") }
            guard a > 0, a <= 1 else { throw RecipeError(r.at("alpha"), "\(RecipeParser.fmt(a)) is not in (0, 1]") }
            alpha = a
        }
        if let a = try r.choice("allocation", Allocation.self) {
            guard case .ratio = rank else { throw RecipeError(r.at("allocation"), "only applies with ratio") }
            allocation = a
        }
        output = try r.choice("output", Output.self) ?? .dense
        if case .ratio = rank, allocation == .global, output == .factors {
            throw RecipeError(
                r.at("output"), "factors need each rank before the run: use allocation: uniform, or output: dense")
        }
        selector = try TensorSelector(r)
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        // Written only when not plain SVD, so earlier recipes keep their canonical JSON.
        if method != .svd { try w.put("method", method.rawValue) }
        if method == .asvd { try w.put("alpha", alpha) }
        switch rank {
        case .fixed(let k): try w.put("rank", k)
        case .energy(let e): try w.put("energy", e)
        case .ratio(let p):
            try w.put("ratio", p)
            try w.put("allocation", allocation.rawValue)
        }
        try w.put("output", output.rawValue)
        try selector.write(&w)
    }
}
