import ArgumentParser
import Compute
import Foundation

/// Sentence embeddings of dataset windows with Squeeze's own BERT forward pass (used by the
/// reference tests, and handy to compare a compressed model with its original by hand).
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed calibration or evaluation windows of a text file with a BERT model (JSON: token ids and embeddings).",
        shouldDisplay: false)

    @Option(name: .long, help: "Model directory (config.json, vocab.txt, safetensors).")
    var model: String

    @Option(name: .long, help: "UTF-8 text file.")
    var dataset: String

    @Option(name: .long, help: "Number of sequences.")
    var samples: Int = 4

    @Option(name: .customLong("seq-len"), help: "Tokens per sequence, [CLS] and [SEP] included.")
    var seqLen: Int = 32

    @Option(name: .long, help: "calibration (first 80% of the tokens) or evaluation (last 20%).")
    var part: String = "calibration"

    @Option(name: .long, help: "Threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        try oneLine {
            guard let p = CalibrationText.Part(rawValue: part) else { throw CLIError("--part \(part) is not one of calibration, evaluation") }
            let source = try ModelSource(path: model)
            let bert = try BertModelFiles(model: source)
            let ids = try CalibrationText.batches(file: dataset, tokenizer: bert.tokenizer, samples: samples, seqLen: seqLen, part: p)
            let enc = BertEncoder(config: bert.config, samples: samples, seqLen: seqLen, threads: threads)
            let x = try enc.forward(ids, try ModelWeights(model: source))
            let emb = enc.sentenceEmbeddings(x)
            guard emb.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { throw CLIError("the forward pass produced NaN or infinite values") }
            let idRows: [[Int]] = ids.map { row in row.map { Int($0) } }
            let embRows: [[Double]] = emb.map { row in row.map { Double($0) } }
            printJSON(["ids": idRows, "embeddings": embRows] as [String: Any])
        }
    }
}
