/// What one unit (tensor) of a run produced and cost.
public struct UnitMetrics: Sendable, Codable, Equatable {
    public let index: Int
    public let tensor: String
    public let dtype: String
    public let shape: [Int]
    public let numel: Int
    /// Whether any stage selected this tensor.
    public let targeted: Bool
    /// Fraction of exact zeros in the output.
    public let sparsity: Double
    /// Bits per parameter in the output.
    public let bits: Double
    /// ‖W − Ŵ‖ / ‖W‖ (nil when not finite, e.g. NaN in the weights).
    public let relativeError: Double?
    public let elapsedMS: Double
    public let bytesIn: Int
    public let bytesOut: Int
    /// The rank kept by a `lowrank` stage (nil when none selected this tensor).
    public var rank: Int? = nil
    /// ‖X_s Ŵᵀ − X_t Wᵀ‖² / ‖X_t Wᵀ‖² on calibration inputs (calibrated runs, linear weights only).
    public var outputError: Double? = nil
    /// The Hessian dampening SparseGPT needed when the recipe's did not make it positive definite.
    public var dampUsed: Double? = nil
    /// What learned rounding did to this tensor (its quantize stage and GGUF exports together).
    public var learnedRounding: FlexRound.Outcome? = nil
}

/// One file a run wrote, relative to its output directory.
public struct OutputRecord: Sendable, Codable, Equatable {
    public let path: String
    public let bytes: Int64
    public let sha256: String
    public let format: String
}
