import ArgumentParser
import Compute
import Foundation

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a recipe to a model locally, with no servers (the worker's code path).")

    @Option(name: .long, help: "Model: a .safetensors file, a sharded index, or a model directory.")
    var model: String

    @OptionGroup var stack: StackSizeOption

    @Option(name: .long, help: "Recipe file (YAML or JSON).")
    var recipe: String

    @Option(name: .long, help: "Output directory (must not exist; written atomically).")
    var out: String

    @Option(name: .long, help: "Compute threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        try oneLine {
            guard !FileManager.default.fileExists(atPath: out) else { throw CLIError("output \(out) already exists") }
            var r: Recipe
            do { r = try RecipeParser.parse(file: recipe) } catch let e as RecipeError {
                throw CLIError("invalid recipe \(recipe): \(e)")
            }
            r = r.resolvingDatasets(against: FileManager.default.currentDirectoryPath)
            let source = try stack.source(model)
            let tensors = try source.readTensors()
            let family: ModelFamily?
            do { family = try RecipeValidator.validateAll(r, model: source, tensors: tensors) } catch let e
                as RecipeError
            {
                throw CLIError("recipe \(recipe) does not fit model \(model): \(e)")
            }
            let parent = (URL(fileURLWithPath: out).standardizedFileURL.path as NSString).deletingLastPathComponent
            let staging = parent + "/.\((out as NSString).lastPathComponent).tmp-\(getpid())"
            try FileOps.makeDirectory(staging)
            let tty = isatty(STDERR_FILENO) == 1
            let total = RecipeRunner.unitCount(recipe: r, tensors: tensors, family: family)
            do {
                let runner = RecipeRunner(model: source, recipe: r, threads: threads, family: family)
                let result = try runner.run(
                    outputDir: staging,
                    observer: .init(unitFinished: { u in
                        let line =
                            "[\(u.index + 1)/\(total)] \(u.tensor) sparsity=\(String(format: "%.4f", u.sparsity))"
                        if tty {
                            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                        } else {
                            FileHandle.standardError.write(Data((line + "\n").utf8))
                        }
                    }))
                if tty { FileHandle.standardError.write(Data("\n".utf8)) }
                if let e = result.evaluation {
                    FileHandle.standardError.write(Data((e.summary + "\n").utf8))
                }
                _ = try Manifest.write(
                    dir: staging, recipe: r, inputPath: source.path, result: result, threads: threads,
                    inputSize: stack.size)
                try FileOps.fsyncDirectory(staging)
                guard rename(staging, out) == 0 else {
                    throw CLIError("cannot rename output into \(out): \(String(cString: strerror(errno)))")
                }
                for o in result.outputs where o.format == "safetensors" { print("\(o.sha256)  \(out)/\(o.path)") }
            } catch {
                try? FileManager.default.removeItem(atPath: staging)
                throw error
            }
        }
    }
}
