import ArgumentParser
import Compute
import Foundation

/// `--size`: the size a BitStack model is loaded at (run, generate, logits).
struct StackSizeOption: ParsableArguments {
    @Option(name: .long, help: "A BitStack model's size to load: 60MB, 1.5G, bytes, or bits per weight (3bpw).")
    var size: String?

    /// `model` at this size; a BitStack model's load line ("bitstack: N of M blocks, …") goes to stderr.
    func source(_ model: String) throws -> ModelSource {
        var source = try ModelSource(path: model)
        source.stackSize = try StackSize.option(size)
        if let line = try source.stackLoadLine() { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        return source
    }
}
