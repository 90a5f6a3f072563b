import Foundation

/// A job to insert at submit time.
public struct NewJob: Sendable {
    public var kind: String
    public var recipeJSON: String
    public var inputPath: String
    public var inputSHA256: String?
    public var inputBytes: Int64?
    /// The size a BitStack input is loaded at (`--size`), as submitted; nil for other inputs.
    public var inputSize: String?
    public var priority: Int = 0
    public var maxAttempts: Int = 3
    public var delaySeconds: Double = 0
    public var idempotencyKey: String?
    public var memoryEstimate: Int64?
    public var unitsTotal: Int?
    /// Jobs that must succeed first, by idempotency key (of this submit's jobs or earlier ones).
    public var needsKeys: [String] = []
    /// Jobs that must succeed first, by id.
    public var needsIDs: [UUID] = []

    public init(kind: String, recipeJSON: String, inputPath: String) {
        self.kind = kind
        self.recipeJSON = recipeJSON
        self.inputPath = inputPath
    }
}

/// What submit did with one job: inserted, or found already present by idempotency key.
public struct SubmittedJob: Sendable {
    public let id: UUID
    public let existed: Bool
    public let score: Double
    public let due: Bool
}

/// A job this worker holds: the claim's fencing token is `attempt`.
public struct ClaimedJob: Sendable {
    public let id: UUID
    public let attempt: Int
    public let kind: String
    public let recipeJSON: String
    public let inputPath: String
    public let inputSHA256: String?
    public let maxAttempts: Int
    public let releases: Int
    public let memoryEstimate: Int64?
    /// The size a BitStack input is loaded at, as submitted; nil for other inputs.
    public let inputSize: String?

    public init(
        id: UUID, attempt: Int, kind: String, recipeJSON: String, inputPath: String, inputSHA256: String?,
        maxAttempts: Int,
        releases: Int, memoryEstimate: Int64?, inputSize: String? = nil
    ) {
        (self.id, self.attempt, self.kind, self.recipeJSON, self.inputPath) = (id, attempt, kind, recipeJSON, inputPath)
        (self.inputSHA256, self.maxAttempts, self.releases, self.memoryEstimate) = (
            inputSHA256, maxAttempts, releases, memoryEstimate
        )
        self.inputSize = inputSize
    }
}

/// One file of a published artifact.
public struct ArtifactRecord: Sendable, Codable {
    public let path: String
    public let bytes: Int64
    public let sha256: String
    public let format: String

    public init(path: String, bytes: Int64, sha256: String, format: String) {
        self.path = path
        self.bytes = bytes
        self.sha256 = sha256
        self.format = format
    }
}

/// Per-tensor metrics as stored in `layer_metrics`.
public struct LayerMetricRecord: Sendable, Codable {
    public let tensor: String
    public let unitIndex: Int
    public let dtype: String
    public let numel: Int64
    public let sparsity: Double
    public let bits: Double
    public let relativeError: Double?
    public let elapsedMS: Double
    public let bytesIn: Int64
    public let bytesOut: Int64
    /// Rank kept by a low-rank stage; ‖WX − ŴX‖²/‖WX‖² on calibration inputs when measured.
    public var rank: Int?
    public var outputError: Double?

    public init(
        tensor: String, unitIndex: Int, dtype: String, numel: Int64, sparsity: Double, bits: Double,
        relativeError: Double?, elapsedMS: Double, bytesIn: Int64, bytesOut: Int64, rank: Int? = nil,
        outputError: Double? = nil
    ) {
        self.rank = rank
        self.outputError = outputError
        self.tensor = tensor
        self.unitIndex = unitIndex
        self.dtype = dtype
        self.numel = numel
        self.sparsity = sparsity
        self.bits = bits
        self.relativeError = relativeError
        self.elapsedMS = elapsedMS
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }
}

/// How a failed attempt ended.
public enum FailureOutcome: String, Sendable {
    case retry = "queued", failed, dead
}

/// A dependency that cannot be recorded (an unknown key or job); nothing is submitted.
public struct DependencyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
