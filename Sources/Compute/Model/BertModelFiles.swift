import Foundation

/// The config and tokenizer of a BERT model directory, with the name prefix its tensors use.
public struct BertModelFiles: Sendable {
    public let config: BertConfig
    public let tokenizer: BertTokenizer
    /// The directory holding config.json (and sentence-transformers' 1_Pooling/).
    public let directory: String

    /// Reads config.json and vocab.txt beside the model's weights; errors say what is missing.
    public init(model: ModelSource, tensorNames: [String]? = nil) throws {
        guard let cfg = model.extraFiles.first(where: { $0.hasSuffix("/config.json") }) else {
            throw ComputeError(
                .notFound,
                "has no config.json beside its weights; calibration and evaluation need a BERT model directory",
                file: model.path)
        }
        guard let vocab = model.extraFiles.first(where: { $0.hasSuffix("/vocab.txt") }) else {
            throw ComputeError(
                .notFound, "has no vocab.txt beside its weights (the BERT tokenizer's vocabulary)", file: model.path)
        }
        var c = try BertConfig(file: cfg)
        let names = try tensorNames ?? model.readTensors().map(\.name)
        if !names.contains(c.embedding("word_embeddings.weight"))
            && names.contains("bert." + c.embedding("word_embeddings.weight"))
        {
            c.prefix = "bert."
        }
        config = c
        tokenizer = try BertTokenizer(vocabFile: vocab)
        directory = (cfg as NSString).deletingLastPathComponent
    }
}
