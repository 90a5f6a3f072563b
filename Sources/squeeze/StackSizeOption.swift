import ArgumentParser
import Compute
import Foundation

/// `--size`: the size a BitStack model is loaded at (run, generate, logits).
struct StackSizeOption: ParsableArguments {
    @Option(name: .long, help: "A BitStack model's size to load: 60MB, 1.5G, bytes, or bits per weight (3bpw).")
    var size: String?

    /// `model` at this size; a BitStack model's load line ("bitstack: N of M blocks, …") goes to stderr, and a
    /// size for any other model is refused.
    func source(_ model: String) throws -> ModelSource {
        var source = try ModelSource(path: model)
        if let line = try source.load(size: size) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        return source
    }
}
