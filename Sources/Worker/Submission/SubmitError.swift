/// Why a submission was refused: one line naming the file, entry or field. Nothing was inserted.
public struct SubmitError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ s: String) { description = s }
}
