import Foundation

/// The parts of a BERT `config.json` the forward pass needs, and the model's tensor names.
public struct BertConfig: Equatable, Sendable {
    public let hidden: Int
    public let heads: Int
    public let layers: Int
    public let intermediate: Int
    public let eps: Float
    public let maxPositions: Int
    public let vocabSize: Int
    public let typeVocabSize: Int
    /// Tensor name prefix: "" (sentence-transformers exports) or "bert." (BertModel checkpoints).
    public var prefix: String

    public init(
        hidden: Int, heads: Int, layers: Int, intermediate: Int, eps: Float, maxPositions: Int, vocabSize: Int,
        typeVocabSize: Int = 2, prefix: String = ""
    ) {
        self.vocabSize = vocabSize
        self.typeVocabSize = typeVocabSize
        self.hidden = hidden
        self.heads = heads
        self.layers = layers
        self.intermediate = intermediate
        self.eps = eps
        self.maxPositions = maxPositions
        self.prefix = prefix
    }

    /// Reads `config.json`; only `model_type: bert` with `hidden_act: gelu` is supported.
    public init(file: String) throws {
        let data = Data(try InputFile.contents(of: file, what: "config.json", limit: InputFile.configLimit))
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ComputeError(.corruptData, "config.json is not a JSON object", file: file)
        }
        guard (o["model_type"] as? String) == "bert" else {
            throw ComputeError(
                .unsupportedModel,
                "model_type \(o["model_type"] ?? "missing") is not supported for calibration (bert is)", file: file)
        }
        let act = o["hidden_act"] as? String ?? "gelu"
        guard act == "gelu" else {
            throw ComputeError(.unsupportedModel, "hidden_act \(act) is not supported (gelu is)", file: file)
        }
        func int(_ k: String) throws -> Int {
            guard let v = o[k] as? Int, v > 0, v < 1 << 20 else {
                throw ComputeError(.corruptData, "\(k) is missing or out of range", file: file)
            }
            return v
        }
        self.init(
            hidden: try int("hidden_size"), heads: try int("num_attention_heads"), layers: try int("num_hidden_layers"),
            intermediate: try int("intermediate_size"), eps: Float(o["layer_norm_eps"] as? Double ?? 1e-12),
            maxPositions: try int("max_position_embeddings"), vocabSize: try int("vocab_size"),
            typeVocabSize: o["type_vocab_size"] as? Int ?? 2)
        guard hidden % heads == 0 else {
            throw ComputeError(
                .corruptData, "hidden_size \(hidden) is not a multiple of the \(heads) heads", file: file)
        }
    }

    public func embedding(_ part: String) -> String { prefix + "embeddings." + part }
    public func layer(_ i: Int, _ part: String) -> String { prefix + "encoder.layer.\(i)." + part }

    /// The linear layers of one encoder layer in forward order, with the weight shapes [out, in].
    public func linears(_ i: Int) -> [(name: String, out: Int, in: Int)] {
        [
            (layer(i, "attention.self.query"), hidden, hidden), (layer(i, "attention.self.key"), hidden, hidden),
            (layer(i, "attention.self.value"), hidden, hidden), (layer(i, "attention.output.dense"), hidden, hidden),
            (layer(i, "intermediate.dense"), intermediate, hidden), (layer(i, "output.dense"), hidden, intermediate)
        ]
    }
}
