/// The one vocabulary of `jobs.error_code` (snake_case), whichever layer the error came from.
public enum JobErrorCode: String, Sendable, CaseIterable {
    // Inputs and recipes (permanent unless noted).
    case io  // transient: the filesystem said no (full disk, EIO)
    case notFound = "not_found"
    case corruptHeader = "corrupt_header"
    case corruptData = "corrupt_data"
    case unsupportedDType = "unsupported_dtype"
    case shapeMismatch = "shape_mismatch"
    case invalidRecipe = "invalid_recipe"
    case noMatchingTensors = "no_matching_tensors"
    case pathNotAllowed = "path_not_allowed"
    case checksumMismatch = "checksum_mismatch"
    case inputChanged = "input_changed"
    case notRegularFile = "not_regular_file"
    case inputTooLarge = "input_too_large"
    case invalidText = "invalid_text"
    case unsupportedModel = "unsupported_model"
    case numerical
    case cancelled
    /// A job this one needed failed, died or was cancelled (the job never ran).
    case dependencyFailed = "dependency_failed"
    // The service (transient).
    case database
    case redis
    case leaseExpired = "lease_expired"
    case plannedFailure = "planned_failure"
    case `internal`
}
