/// A recipe problem located by its path in the document, e.g. `stages[1].prune.sparsity: 1.5 is not in [0, 1)`.
public struct RecipeError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}
