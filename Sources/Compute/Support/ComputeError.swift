/// A typed Compute error with a stable code and the file / tensor / recipe path it concerns.
public struct ComputeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Raw values are the job error codes (`jobs.error_code`, Queue's `JobErrorCode`).
    public enum Code: String, Sendable, CaseIterable {
        case io, cancelled, numerical
        case notFound = "not_found", corruptHeader = "corrupt_header", corruptData = "corrupt_data"
        case unsupportedDType = "unsupported_dtype", shapeMismatch = "shape_mismatch", invalidRecipe = "invalid_recipe"
        case noMatchingTensors = "no_matching_tensors", pathNotAllowed = "path_not_allowed", checksumMismatch =
            "checksum_mismatch"
        case internalError = "internal"
        /// The input file shrank, grew or was modified while a job read it.
        case inputChanged = "input_changed"
        /// A path that must be a regular file is a FIFO, socket, device or directory.
        case notRegularFile = "not_regular_file"
        /// A recipe, manifest or other small input is over its size limit.
        case inputTooLarge = "input_too_large"
        /// A name, key, pattern or path holds a character PostgreSQL or the formats cannot carry (NUL).
        case invalidText = "invalid_text"
        /// A model Squeeze cannot run as it is: its architecture, activation, RoPE scaling, biases,
        /// pre-tokenizer or expert layout (a tensor's dtype is `unsupported_dtype`).
        case unsupportedModel = "unsupported_model"
    }
    public let code: Code
    public let message: String
    public let file: String?
    public let tensor: String?

    public init(_ code: Code, _ message: String, file: String? = nil, tensor: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.tensor = tensor
    }

    /// Permanent errors are a property of the input and recur on retry; I/O errors may not.
    public var isPermanent: Bool { code != .io && code != .internalError }

    public var description: String {
        var parts = [String]()
        if let f = file { parts.append(f) }
        if let t = tensor { parts.append("tensor \(t)") }
        return (parts.isEmpty ? "" : parts.joined(separator: ": ") + ": ") + message
    }
}
