import ArgumentParser
import Compute
import Foundation

/// Token ids and logits of dataset windows with Squeeze's own decoder forward pass (used by the
/// reference tests against numpy and llama.cpp).
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize a text file with a decoder model and write the logits of its windows (raw float32).",
        shouldDisplay: false)

    @OptionGroup var w: WindowOptions

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where to write the logits, samples × seq-len × vocabulary float32 values (omit to print only the "
                + "ids)."))
    var out: String?

    @Flag(
        name: .customLong("all-tokens"), help: "Print the token ids of the whole file instead of windows (no logits).")
    var allTokens = false

    @Flag(name: .long, help: "Run the forward pass and every logit but keep none: print tokens per second (JSON).")
    var speed = false

    @OptionGroup var stack: StackSizeOption

    func run() throws {
        try oneLine {
            let p = try w.windowPart()
            let (samples, seqLen, threads) = (w.samples, w.seqLen, w.threads)
            let source = try stack.source(w.model)
            let files = try DecoderModelFiles(model: source)
            if allTokens {
                let text = try InputFile.text(of: w.dataset, what: "dataset", limit: InputFile.datasetLimit)
                printTokenIDs(files.tokenizer.encode(text))
                return
            }
            let ids = try CalibrationText.batches(
                file: w.dataset, tokenizer: files.tokenizer, samples: samples, seqLen: seqLen, part: p)
            if speed {
                let dec = LlamaDecoder(config: files.config, samples: samples, seqLen: seqLen, threads: threads)
                let weights = CachedWeights(try ModelWeights(model: source))
                _ = try dec.head(weights)
                // decode the weights once
                _ = try dec.hidden([[Int32]](repeating: [Int32](repeating: 0, count: seqLen), count: samples), weights)
                let t0 = DispatchTime.now()
                let x = try dec.hidden(ids, weights)
                let head = try dec.head(weights)
                for s in 0..<samples { _ = dec.logits(x, sample: s, head: head) }
                let secs = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
                printJSON([
                    "tokens": samples * seqLen, "seconds": secs, "tokens_per_s": Double(samples * seqLen) / secs,
                    "threads": threads
                ])
                return
            }
            if let out {
                let dec = LlamaDecoder(config: files.config, samples: samples, seqLen: seqLen, threads: threads)
                let weights = CachedWeights(try ModelWeights(model: source))
                let x = try dec.hidden(ids, weights)
                let head = try dec.head(weights)
                var data = Data()
                for s in 0..<samples {
                    let l = dec.logits(x, sample: s, head: head)
                    guard l.allSatisfy(\.isFinite) else {
                        throw CLIError("the forward pass produced NaN or infinite logits")
                    }
                    l.withUnsafeBytes { data.append(contentsOf: $0) }
                }
                guard FileManager.default.createFile(atPath: out, contents: data) else {
                    throw CLIError("cannot write \(out)")
                }
            }
            printTokenIDs(rows: ids, vocab: files.config.vocabSize)
        }
    }
}
