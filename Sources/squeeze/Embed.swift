import ArgumentParser
import Compute
import Foundation

/// Sentence embeddings of dataset windows with Squeeze's own BERT forward pass (used by the
/// reference tests, and handy to compare a compressed model with its original by hand).
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Embed calibration or evaluation windows of a text file with a BERT model (JSON: token ids and "
            + "embeddings).",
        shouldDisplay: false)

    @OptionGroup var w: WindowOptions

    func run() throws {
        try oneLine {
            let p = try w.windowPart()
            let source = try ModelSource(path: w.model)
            let bert = try BertModelFiles(model: source)
            let ids = try CalibrationText.batches(
                file: w.dataset, tokenizer: bert.tokenizer, samples: w.samples, seqLen: w.seqLen, part: p)
            let enc = BertEncoder(config: bert.config, samples: w.samples, seqLen: w.seqLen, threads: w.threads)
            let x = try enc.forward(ids, try ModelWeights(model: source))
            let emb = enc.sentenceEmbeddings(x)
            guard emb.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
                throw CLIError("the forward pass produced NaN or infinite values")
            }
            let idRows: [[Int]] = ids.map { row in row.map { Int($0) } }
            let embRows: [[Double]] = emb.map { row in row.map { Double($0) } }
            printJSON(["ids": idRows, "embeddings": embRows] as [String: Any])
        }
    }
}
