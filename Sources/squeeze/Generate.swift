import ArgumentParser
import Compute
import Foundation

/// Greedy text generation with a decoder model (HF directory or GGUF), to try a compressed model by hand.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt greedily with a decoder model (Hugging Face directory or Llama GGUF).")

    @Option(
        name: .long,
        help: "Model: a Hugging Face directory (config.json, tokenizer.json, safetensors) or a Llama GGUF file.")
    var model: String

    @OptionGroup var stack: StackSizeOption

    @Argument(help: "The prompt.")
    var prompt: String

    @Option(name: .long, help: "New tokens to generate.")
    var tokens: Int = 32

    @Option(name: .long, help: "Threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .long, help: "Print the token ids (JSON) instead of the text.")
    var ids = false

    func run() throws {
        try oneLine {
            guard tokens >= 1 && tokens <= 4096 else { throw CLIError("--tokens must be between 1 and 4096") }
            let source = try stack.source(model)
            guard DecoderModelFiles.isDecoder(source) else {
                throw CLIError(
                    "\(model) is not a decoder model (a GGUF, or config.json with a …ForCausalLM architecture)")
            }
            let files = try DecoderModelFiles(model: source)
            try files.checkTensors(try source.readTensors(), format: source.format)
            let weights = CachedWeights(try ModelWeights(model: source))
            let prompt = files.tokenizer.framing.prefix + files.tokenizer.encode(prompt)
            var seen = [Int32]()
            var firstAt: DispatchTime?
            let out = try GreedyDecoding.generate(
                prompt: prompt, count: tokens, config: files.config, weights: weights, threads: threads,
                stop: files.tokenizer.eos
            ) { id in
                if firstAt == nil { firstAt = .now() }
                guard !ids else { return }
                seen.append(id)
                // Print what decodes cleanly so far (multi-byte characters may span tokens).
                let text = files.tokenizer.decode(seen)
                if !text.hasSuffix("\u{FFFD}") {
                    FileHandle.standardOutput.write(Data(text.utf8))
                    seen = []
                }
            }
            if ids {
                // Tokens after the first (which also pays for the prompt) per second: the decode speed.
                let secs = Double(DispatchTime.now().uptimeNanoseconds - (firstAt?.uptimeNanoseconds ?? 0)) / 1e9
                let rate = out.count > 1 && secs > 0 ? Double(out.count - 1) / secs : 0
                printJSON(["prompt": prompt.map { Int($0) }, "generated": out.map { Int($0) }, "tokens_per_s": rate])
            } else {
                if !seen.isEmpty { FileHandle.standardOutput.write(Data(files.tokenizer.decode(seen).utf8)) }
                print("")
            }
        }
    }
}
