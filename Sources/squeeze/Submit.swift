import ArgumentParser
import Compute
import Foundation
import Queue

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate and enqueue compression jobs (or diagnostic no-op jobs).",
        discussion: "The recipe is checked against the model's headers before anything is inserted; nothing is enqueued on error.")

    @OptionGroup var conn: ConnectionOptions

    @Option(name: .long, help: "Model: a .safetensors file, a sharded index, or a model directory.")
    var model: String?

    @Option(name: .long, help: "Recipe file (YAML or JSON).")
    var recipe: String?

    @Option(name: .long, help: "A batch manifest (YAML/JSON list of {model, recipe, priority, key}).")
    var manifest: String?

    @Option(name: .long, help: "Batch name (default: the manifest's file name).")
    var batchName: String?

    @Option(name: .long, help: "Priority, -1000...1000; higher runs first.")
    var priority: Int = 0

    @Option(name: .customLong("key"), help: "Idempotency key: submitting the same key again returns the same job.")
    var idempotencyKey: String?

    @Option(name: .long, help: "Delay before the job becomes runnable (e.g. 30s, 5m).")
    var after: String?

    @Option(name: .long, help: "Attempts before a job that keeps failing is marked dead.")
    var maxAttempts: Int = 3

    @Flag(name: .long, help: "Submit diagnostic no-op jobs instead of a compression job.")
    var noop = false

    @Option(name: .long, help: "No-op: sleep this long per job (milliseconds).")
    var sleepMs: Int = 0

    @Option(name: .long, help: "No-op: fail the first K attempts with a transient error.")
    var failTimes: Int = 0

    @Option(name: .long, help: "Number of jobs to submit (no-op jobs, or copies of one compression job).")
    var count: Int = 1

    @Option(name: .long, help: "A directory models may be read from (repeatable; also SQUEEZE_INPUT_ROOTS, and always <artifact root>/models).")
    var inputRoot: [String] = []

    @Option(name: .long, help: "Shared artifact root (env SQUEEZE_ARTIFACT_ROOT); its models/ is an allowed input root.")
    var artifactRoot: String?

    @Flag(name: .long, help: "Skip hashing the model at submit (no check that it is unchanged when the job runs).")
    var noChecksum = false

    @Flag(name: .long, help: "Validate everything (models, recipes, manifest) and print what would be submitted; insert nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    /// Highest `max_attempts` accepted (the column is a 32-bit integer; more attempts than this is a mistake).
    static let maxAttemptsLimit = 1000

    func validate() throws {
        guard (-1000...1000).contains(priority) else { throw ValidationError("--priority must be in -1000...1000") }
        guard (1...Self.maxAttemptsLimit).contains(maxAttempts) else { throw ValidationError("--max-attempts must be in 1...\(Self.maxAttemptsLimit)") }
        for (flag, v) in [("--key", idempotencyKey), ("--batch-name", batchName)] {
            if let v, v.isEmpty || v.utf8.count > 1000 { throw ValidationError("\(flag) must be 1 to 1000 bytes") }
        }
        guard count >= 1 && count <= 1_000_000 else { throw ValidationError("--count must be in 1...1000000") }
        if noop {
            guard model == nil, recipe == nil, manifest == nil else { throw ValidationError("--noop takes no --model, --recipe or --manifest") }
        } else if manifest == nil {
            guard model != nil else { throw ValidationError("--model is required (or --manifest, or --noop)") }
            guard recipe != nil else { throw ValidationError("--recipe is required") }
        }
        if idempotencyKey != nil && count > 1 { throw ValidationError("--key cannot be combined with --count") }
    }

    var policy: PathPolicy {
        PathPolicy(roots: PathPolicy.roots(flags: inputRoot,
                                           artifactRoot: artifactRoot ?? ProcessInfo.processInfo.environment["SQUEEZE_ARTIFACT_ROOT"]))
    }

    func run() throws {
        try oneLine {
            let delay = try after.map(parseDuration) ?? 0
            var jobs = [NewJob]()
            var batch: String? = batchName
            if noop {
                let spec = "{\"sleep_ms\":\(sleepMs),\"fail_times\":\(failTimes)}"
                for _ in 0..<count {
                    var j = NewJob(kind: "noop", recipeJSON: spec, inputPath: "-")
                    j.priority = priority
                    j.maxAttempts = maxAttempts
                    j.delaySeconds = delay
                    j.idempotencyKey = idempotencyKey
                    jobs.append(j)
                }
            } else if let manifest {
                jobs = try ManifestEntries.load(manifest, defaults: self, delay: delay, policy: policy)
                batch = batch ?? (manifest as NSString).lastPathComponent
            } else {
                var j = try CompressJobBuilder.build(model: model!, recipeFile: recipe!, checksum: !noChecksum, policy: policy)
                j.priority = priority
                j.maxAttempts = maxAttempts
                j.delaySeconds = delay
                j.idempotencyKey = idempotencyKey
                jobs = Array(repeating: j, count: count)
            }
            if dryRun { return printDryRun(jobs, batch: batch) }
            let outcome = try conn.queue().submit(jobs, batchName: batch)
            let (batchID, results) = outcome.value
            warn(outcome.hintWarning)
            if json {
                var out: [String: Any] = ["jobs": results.map { ["id": $0.id.uuidString.lowercased(), "existed": $0.existed] }]
                if results.count == 1 {
                    out["id"] = results[0].id.uuidString.lowercased()
                    out["existed"] = results[0].existed
                }
                if let b = batchID { out["batch_id"] = b.uuidString.lowercased() }
                printJSON(out)
            } else {
                if let b = batchID { print("batch \(b.uuidString.lowercased()): \(results.count) jobs") }
                if results.count <= 20 || batchID == nil {
                    for r in results { print(r.id.uuidString.lowercased()) }
                }
            }
        }
    }
}

extension Submit {
    /// What `--dry-run` prints: each job as it would be inserted.
    func printDryRun(_ jobs: [NewJob], batch: String?) {
        let rows: [[String: Any]] = jobs.map { j in
            var r: [String: Any] = ["kind": j.kind, "input": j.inputPath, "priority": j.priority, "max_attempts": j.maxAttempts]
            if let m = j.memoryEstimate { r["memory_estimate"] = m }
            if let u = j.unitsTotal { r["units"] = u }
            if let k = j.idempotencyKey { r["key"] = k }
            return r
        }
        if json {
            var out: [String: Any] = ["dry_run": true, "jobs": rows]
            if let batch { out["batch"] = batch }
            printJSON(out)
            return
        }
        print("dry run: \(jobs.count) job(s) valid\(batch.map { " for batch " + TextRules.display($0) } ?? ""); nothing inserted")
        for j in jobs.prefix(20) {
            let mem = j.memoryEstimate.map { String(format: " memory~%.0f MiB", Double($0) / 1_048_576) } ?? ""
            print("  \(j.kind) \(TextRules.display(j.inputPath)) priority=\(j.priority)\(mem)")
        }
    }
}

/// Validates a compression job at submit: model headers, recipe, targets, memory estimate, checksum.
enum CompressJobBuilder {
    static func build(model path: String, recipeFile: String, checksum: Bool, policy: PathPolicy, recipeBase: String? = nil) throws -> NewJob {
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("model not found: \(path)") }
        let recipePath = recipeBase.map { recipeFile.hasPrefix("/") ? recipeFile : $0 + "/" + recipeFile } ?? recipeFile
        guard FileManager.default.fileExists(atPath: recipePath) else { throw CLIError("recipe not found: \(recipePath)") }
        var recipe: Recipe
        do { recipe = try RecipeParser.parse(file: recipePath) } catch let e as RecipeError {
            throw CLIError("invalid recipe \(recipePath): \(e)")
        }
        recipe = recipe.resolvingDatasets(against: FileManager.default.currentDirectoryPath)
        let source = try ModelSource(path: path)
        try policy.check(model: source)
        for d in recipe.datasets { try policy.check(d) }
        let headers = try source.readHeaders()
        let tensors = headers.flatMap(\.header.tensors)
        let family: ModelFamily?
        do { family = try RecipeValidator.validateAll(recipe, model: source, tensors: tensors) } catch let e as RecipeError {
            throw CLIError("recipe \(recipePath) does not fit model \(path): \(e)")
        }
        var j = NewJob(kind: "compress", recipeJSON: recipe.canonicalJSON, inputPath: source.path)
        j.memoryEstimate = RecipeValidator.memoryEstimate(tensors: tensors, recipe: recipe, activationWidth: family?.activationWidth)
        j.unitsTotal = tensors.count
        j.inputBytes = Int64(headers.reduce(0) { $0 + $1.header.dataStart + $1.header.dataLength })
        if checksum { j.inputSHA256 = ModelSource.combinedChecksum(try source.shardChecksums()) }
        return j
    }
}

/// Entries of a batch manifest file.
enum ManifestEntries {
    static func load(_ file: String, defaults: Submit, delay: Double, policy: PathPolicy) throws -> [NewJob] {
        let doc: Any?
        do {
            let text = try InputFile.text(of: file, what: "manifest", limit: InputFile.manifestLimit)
            doc = try SafeYAML.load(text, limits: SafeYAML.manifest, rootKeys: ["jobs"])
        } catch let e as SafeYAML.Failure {
            throw CLIError("manifest \(file): \(e)")
        }
        let list: [Any]
        if let l = doc as? [Any] { list = l } else if let m = doc as? [String: Any], let l = m["jobs"] as? [Any] { list = l } else {
            throw CLIError("manifest \(file) must be a list of entries (or {jobs: [...]})")
        }
        let base = (file as NSString).deletingLastPathComponent
        var recipeCache = [String: NewJob]()
        var jobs = [NewJob]()
        for (i, raw) in list.enumerated() {
            guard let e = raw as? [String: Any] else { throw CLIError("manifest \(file): entry \(i) is not a mapping") }
            for k in e.keys where !["model", "recipe", "priority", "key", "max_attempts"].contains(k) {
                throw CLIError("manifest \(file): entry \(i): unknown key \(k)")
            }
            guard let model = e["model"] as? String, let recipe = e["recipe"] as? String else {
                throw CLIError("manifest \(file): entry \(i) needs model and recipe (strings)")
            }
            for (field, v) in [("model", model), ("recipe", recipe)] where v.utf8.contains(0) {
                throw CLIError("manifest \(file): entry \(i): \(field) \(TextRules.printable(v)) contains a NUL byte")
            }
            let modelPath = model.hasPrefix("/") ? model : (base.isEmpty ? model : base + "/" + model)
            let cacheKey = modelPath + "\u{0}" + recipe
            var j: NewJob
            do {
                if let c = recipeCache[cacheKey] { j = c } else {
                    j = try CompressJobBuilder.build(model: modelPath, recipeFile: recipe, checksum: !defaults.noChecksum,
                                                     policy: policy, recipeBase: base.isEmpty ? "." : base)
                    recipeCache[cacheKey] = j
                }
            } catch { throw CLIError("manifest \(file): entry \(i): \(error)") }
            let at = "manifest \(file): entry \(i)"
            j.priority = try Self.integer(e["priority"], "priority", in: -1000...1000, at: at) ?? defaults.priority
            j.maxAttempts = try Self.integer(e["max_attempts"], "max_attempts", in: 1...Submit.maxAttemptsLimit, at: at) ?? defaults.maxAttempts
            j.idempotencyKey = try Self.key(e["key"], at: at)
            j.delaySeconds = delay
            jobs.append(j)
        }
        guard !jobs.isEmpty else { throw CLIError("manifest \(file) has no entries") }
        return jobs
    }

    /// An integer field: a YAML integer (not a string, float or bool) within `range`.
    static func integer(_ v: Any?, _ field: String, in range: ClosedRange<Int>, at: String) throws -> Int? {
        guard let v, !(v is NSNull) else { return nil }
        guard !(v is Bool), let n = v as? Int else {
            throw CLIError("\(at): \(field) must be an integer in \(range.lowerBound)...\(range.upperBound), not \(describe(v))")
        }
        guard range.contains(n) else { throw CLIError("\(at): \(field) \(n) is out of \(range.lowerBound)...\(range.upperBound)") }
        return n
    }

    /// The idempotency key: a string or an integer (written as its decimal text), at most 1,000 bytes, no NUL.
    static func key(_ v: Any?, at: String) throws -> String? {
        guard let v, !(v is NSNull) else { return nil }
        let s: String
        if let str = v as? String { s = str } else if !(v is Bool), let n = v as? Int { s = String(n) } else {
            throw CLIError("\(at): key must be a string, not \(describe(v))")
        }
        guard !s.isEmpty, s.utf8.count <= 1000 else { throw CLIError("\(at): key must be 1 to 1000 bytes") }
        guard !s.utf8.contains(0) else { throw CLIError("\(at): key \(TextRules.printable(s)) contains a NUL byte") }
        return s
    }

    private static func describe(_ v: Any) -> String {
        switch v {
        case let s as String: return "the string \(TextRules.printable(s))"
        case is Bool: return "a boolean"
        case let d as Double: return "\(d)"
        case is [Any]: return "a list"
        case is [String: Any]: return "a mapping"
        default: return "\(v)"
        }
    }
}
