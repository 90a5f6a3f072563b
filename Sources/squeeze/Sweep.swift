import ArgumentParser
import Compute
import Foundation
import Queue
import Worker

/// One calibration, many exports: a batch whose first job collects the importance matrix (and
/// writes the first type), and one job per other type that waits for it and reads its imatrix.gguf.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Submit one calibration and a GGUF export per type or size budget from it (and compressed-tensors GPTQ "
            + "jobs), as one batch; print size against quality.",
        discussion:
            "The first job calibrates (importance matrix) and writes the first type; every other type waits for it "
            + "(imatrix: {job: KEY}) and only quantizes and evaluates, reading the original model's logits that the "
            + "first job saved (reference: {job: KEY}). With --wait, prints each file's size, "
            + "perplexity ratio, KL and top-1 once the batch is done.")

    @OptionGroup var conn: ConnectionOptions

    @Option(name: .long, help: "Decoder model (Hugging Face directory or GGUF).")
    var model: String

    @Option(name: .long, help: "Text file: calibration from its first 80%, evaluation from the last 20%.")
    var dataset: String

    @Option(name: .long, help: "GGUF types and mixes, comma-separated (the first is written by the calibration job).")
    var types = "q8_0,q6_k,q5_k_m,q5_k_s,q4_k_m,q4_k_s,q4_0"

    @Option(
        name: .customLong("compressed-tensors"),
        help: ArgumentHelp(
            "GPTQ schemes written as compressed-tensors directories, comma-separated: int<bits>[-g<group>][-asym] "
                + "(e.g. int4-g64,int8); each job calibrates on its own and evaluates against the first job's "
                + "reference."))
    var compressedTensors = ""

    @Option(
        name: .long,
        help: ArgumentHelp(
            "GGUF exports to a size budget, comma-separated: a size (90MB, 1.5G, bytes) or bits per weight "
                + "(4.25bpw); each reads the first job's importance matrix and reference, like the types."))
    var budgets = ""

    @Option(name: .long, help: "Calibration windows.")
    var samples = 128

    @Option(name: .customLong("seq-len"), help: "Tokens per window (calibration and evaluation).")
    var seqLen = 256

    @Option(
        name: .customLong("eval-samples"), help: "Held-out evaluation windows per export (0: no evaluation, no table).")
    var evalSamples = 16

    @Option(name: .long, help: "Batch name, also the prefix of the jobs' keys (default: sweep-<model>-<time>).")
    var name: String?

    @Option(name: .long, help: "Priority, -1000...1000.")
    var priority = 0

    @OptionGroup var inputRoots: InputRootOptions
    @OptionGroup var artifacts: ArtifactRootOption

    @Flag(name: .long, help: "Wait for the batch and print its size-against-quality table.")
    var wait = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard (-1000...1000).contains(priority) else { throw ValidationError("--priority must be in -1000...1000") }
        guard samples >= 1, evalSamples >= 0, seqLen >= 2 else {
            throw ValidationError("--samples must be at least 1, --eval-samples at least 0, --seq-len at least 2")
        }
        if let name, name.isEmpty || name.utf8.count > ManifestEntries.maxNameBytes - 20 || name.utf8.contains(0) {
            throw ValidationError("--name must be 1 to \(ManifestEntries.maxNameBytes - 20) bytes, no NUL")
        }
    }

    /// The types asked for, checked against the GGUF export's own list.
    func typeList() throws -> [String] {
        let list = types.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let known = ExportStage.GGUFType.allCases.map(\.rawValue)
        guard !list.isEmpty, list.count == Set(list).count else {
            throw CLIError("--types must list each type once")
        }
        for t in list where !known.contains(t) {
            throw CLIError("--types: \(TextRules.display(t)) is not one of \(known.joined(separator: ", "))")
        }
        return list
    }

    /// The budgets asked for, each as the export stage's option (`budget: "90MB"` or `bpw: 4.25`) with its name.
    func budgetList() throws -> [(name: String, option: String)] {
        let names = budgets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard names.count == Set(names).count else { throw CLIError("--budgets must list each budget once") }
        return try names.map { b in
            guard !b.isEmpty, b.utf8.count <= 32, b.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." }) else {
                throw CLIError("--budgets: \(TextRules.display(b)) is not a size (90MB) or bits per weight (4.25bpw)")
            }
            if b.lowercased().hasSuffix("bpw") {
                guard let v = Double(b.dropLast(3)), v > 0 else {
                    throw CLIError("--budgets: \(TextRules.display(b)) is not a positive number of bits per weight")
                }
                return ("budget-\(b)", "bpw: \(v)")
            }
            return ("budget-\(b)", "budget: \(Self.quoted(b))")
        }
    }

    /// One `--compressed-tensors` entry: bits, group size (nil: per channel) and symmetry.
    struct CTScheme: Equatable {
        var bits: Int
        var group: Int?
        var symmetric: Bool

        /// Parses `int<bits>[-g<group>][-asym]`.
        init(_ s: String) throws {
            var parts = s.split(separator: "-").map(String.init)
            symmetric = parts.last != "asym"
            if !symmetric { parts.removeLast() }
            guard let first = parts.first, first.hasPrefix("int"), let b = Int(first.dropFirst(3)), (2...8).contains(b),
                parts.count <= 2
            else {
                throw CLIError(
                    "--compressed-tensors: \(TextRules.display(s)) is not int<bits>[-g<group>][-asym] (bits 2 to 8)")
            }
            bits = b
            if parts.count == 2 {
                guard parts[1].hasPrefix("g"), let g = Int(parts[1].dropFirst()), g > 0 else {
                    throw CLIError("--compressed-tensors: \(TextRules.display(s)): the group must be g<size>, e.g. g64")
                }
                group = g
            }
        }

        /// The quantize stage's options.
        var options: String {
            "method: gptq, bits: \(bits), scheme: \(symmetric ? "symmetric" : "asymmetric"), "
                + (group.map { "granularity: group, group_size: \($0)" } ?? "granularity: channel")
                + ", targets: [\"blk.*.weight\"], ignore: [\"*norm*\"]"
        }
    }

    /// The compressed-tensors schemes asked for, by their names.
    func schemeList() throws -> [(name: String, scheme: CTScheme)] {
        let names = compressedTensors.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            .map { $0.lowercased() }
        guard names.count == Set(names).count else { throw CLIError("--compressed-tensors must list each scheme once") }
        return try names.map { ($0, try CTScheme($0)) }
    }

    func run() throws {
        try oneLine {
            let list = try typeList()
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            let batch = name ?? "sweep-\((model as NSString).lastPathComponent)-\(stamp)"
            let policy = PathPolicy(roots: inputRoots.roots(artifactRoot: artifacts.configured))
            let data = dataset.hasPrefix("/") ? dataset : FileManager.default.currentDirectoryPath + "/" + dataset
            let calibrationKey = "\(batch):\(list[0]):imatrix"
            // The first job also saves the original model's logits; the others read them instead of
            // running the original again.
            func evaluate(_ extra: String) -> String {
                evalSamples == 0
                    ? ""
                    : "\n  - evaluate: {dataset: \(Self.quoted(data)), samples: \(evalSamples), seq_len: \(seqLen), "
                        + extra + "}"
            }
            // A GGUF export (`type: q4_0`, `budget: "90MB"`) that reads the first job's importance matrix and
            // reference.
            func fromCalibration(_ output: String) -> String {
                """
                stages:\(evaluate("reference: {job: \(Self.quoted(calibrationKey))}"))
                  - export: {format: gguf, \(output), imatrix: {job: \(Self.quoted(calibrationKey))}}
                """
            }
            var jobs = [NewJob]()
            for (i, t) in list.enumerated() {
                let text =
                    i == 0
                    ? """
                    stages:
                      - calibrate: {dataset: \(Self.quoted(data)), samples: \(samples), seq_len: \(seqLen)}\(
                        evaluate("save_reference: true"))
                      - export: {format: gguf, type: \(t), imatrix: true}
                    """
                    : fromCalibration("type: \(t)")
                jobs.append(try job(text, name: t, key: i == 0 ? calibrationKey : "\(batch):\(t)", policy: policy))
            }
            for (name, option) in try budgetList() {
                jobs.append(try job(fromCalibration(option), name: name, key: "\(batch):\(name)", policy: policy))
            }
            for (name, scheme) in try schemeList() {
                let text = """
                    stages:
                      - calibrate: {dataset: \(Self.quoted(data)), samples: \(samples), seq_len: \(seqLen)}
                      - quantize: {\(scheme.options)}\(evaluate("reference: {job: \(Self.quoted(calibrationKey))}"))
                      - export: {format: compressed-tensors}
                    """
                jobs.append(try job(text, name: "ct-\(name)", key: "\(batch):ct-\(name)", policy: policy))
            }
            let queue = try conn.queue()
            let outcome = try queue.submit(jobs, batchName: batch)
            warn(outcome.hintWarning)
            guard let batchID = outcome.value.batch else { throw CLIError("submit returned no batch") }
            let ids = outcome.value.jobs.map { $0.id.uuidString.lowercased() }
            if !wait {
                if json {
                    printJSON(["batch_id": batchID.uuidString.lowercased(), "name": batch, "jobs": ids])
                } else {
                    print(
                        "batch \(batchID.uuidString.lowercased()) (\(batch)): \(ids.count) jobs; the first calibrates")
                    print("follow it: squeeze wait --batch \(batchID.uuidString.lowercased())")
                }
                return
            }
            while true {
                let p = try JobStore().progress(queue.db, jobs: [], batch: batchID)
                if p.succeeded + p.failed == p.total { break }
                Thread.sleep(forTimeInterval: 1)
            }
            try printTable(try JobStore().batchQuality(queue.db, batch: batchID), batch: batchID, prefix: batch + ":")
        }
    }

    /// One job of the sweep: its recipe text checked and built against the model.
    func job(_ text: String, name: String, key: String, policy: PathPolicy) throws -> NewJob {
        let recipe: Recipe
        do { recipe = try RecipeParser.parse(text) } catch let e as RecipeError {
            throw CLIError("sweep recipe for \(name): \(e)")
        }
        var j = try CompressJobBuilder.build(
            model: model, recipe: recipe, named: "sweep \(name)", checksum: true, policy: policy)
        j.priority = priority
        j.idempotencyKey = key
        return j
    }

    /// The size-against-quality table of a finished sweep.
    func printTable(_ rows: [JobViews.Quality], batch: UUID, prefix: String) throws {
        func type(_ r: JobViews.Quality) -> String {
            let k = r.key.map { String($0.dropFirst(prefix.count)) } ?? "?"
            return k.hasSuffix(":imatrix") ? String(k.dropLast(":imatrix".count)) : k
        }
        if json {
            printJSON([
                "batch_id": batch.uuidString.lowercased(),
                "rows": rows.map { r in
                    [
                        "type": type(r), "state": r.state, "model_bytes": Self.value(r.modelBytes),
                        "perplexity": Self.value(r.perplexity), "original_perplexity": Self.value(r.originalPerplexity),
                        "mean_kl": Self.value(r.meanKL), "top1_agreement": Self.value(r.top1)
                    ] as [String: Any]
                }
            ])
        } else {
            let width = max(9, rows.map { type($0).count }.max() ?? 0)
            print(
                "type".padding(toLength: width, withPad: " ", startingAt: 0)
                    + " state      file MB   ppl × dense  mean KL  top-1")
            for r in rows {
                let ratio = r.perplexity.flatMap { p in r.originalPerplexity.map { p / $0 } }
                print(
                    type(r).padding(toLength: width, withPad: " ", startingAt: 0) + " "
                        + r.state.padding(toLength: 10, withPad: " ", startingAt: 0)
                        + String(format: "%8.1f", Double(r.modelBytes ?? 0) / 1e6)
                        + (ratio.map { String(format: "   %9.3f×", $0) } ?? "           –")
                        + (r.meanKL.map { String(format: "  %7.4f", $0) } ?? "        –")
                        + (r.top1.map { String(format: "  %5.3f", $0) } ?? "      –"))
            }
            print("chart: squeeze dashboard, then /batches/\(batch.uuidString.lowercased())")
        }
        if rows.contains(where: { $0.state != JobState.succeeded.rawValue }) { throw ExitCode(1) }
    }

    /// A YAML double-quoted scalar (a JSON string, which YAML reads the same way).
    static func quoted(_ s: String) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes]))
            ?? Data("[\"\"]".utf8)
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    /// A JSON value or null.
    static func value<T>(_ v: T?) -> Any { v.map { $0 as Any } ?? NSNull() }
}
