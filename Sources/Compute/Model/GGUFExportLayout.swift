/// How a model family's tensors and hyper-parameters appear in a GGUF export that llama.cpp can
/// load: the architecture's metadata keys (`llama.*`, `tokenizer.ggml.*`), tensor names, and the
/// rows llama.cpp's converter permutes.
public struct GGUFExportLayout: Sendable {
    /// `general.architecture`.
    public let architecture: String
    /// The architecture's and tokenizer's keys, in writing order.
    public let metadata: [(String, GGUFValue)]
    /// The GGUF name of a tensor (nil: the tensor has none and cannot be exported).
    public let name: @Sendable (String) -> String?
    /// The head count whose rows are permuted on writing (nil: written as is).
    public let permutedHeads: @Sendable (String) -> Int?
    /// Tensors the architecture has no place for and llama.cpp's converter leaves out (BERT's
    /// pooler and position ids): not written to the GGUF (the other exports keep them).
    public var dropped: @Sendable (String) -> Bool = { _ in false }
}
