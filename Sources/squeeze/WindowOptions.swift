import ArgumentParser
import Compute
import Foundation

/// The model and the dataset windows that `embed` and `logits` run (the reference tests' commands).
struct WindowOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Model: a BERT directory for embed; a decoder (Hugging Face directory or Llama GGUF) for logits.")
    var model: String

    @Option(name: .long, help: "UTF-8 text file.")
    var dataset: String

    @Option(name: .long, help: "Number of windows.")
    var samples: Int = 4

    @Option(name: .customLong("seq-len"), help: "Tokens per window (framing tokens included).")
    var seqLen: Int = 32

    @Option(name: .long, help: "calibration (first 80% of the tokens) or evaluation (last 20%).")
    var part: String = "calibration"

    @Option(name: .long, help: "Threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// The `--part` value, checked.
    func windowPart() throws -> CalibrationText.Part {
        guard let p = CalibrationText.Part(rawValue: part) else {
            throw CLIError("--part \(part) is not one of calibration, evaluation")
        }
        return p
    }
}
