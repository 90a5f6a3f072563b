import ArgumentParser
import Compute
import Foundation
import Queue
import Worker

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate and enqueue compression jobs (or diagnostic no-op jobs).",
        discussion:
            "The recipe is checked against the model's headers before anything is inserted; nothing is enqueued on "
            + "error."
    )

    @OptionGroup var conn: ConnectionOptions

    @Option(name: .long, help: "Model: a .safetensors file, a sharded index, or a model directory.")
    var model: String?

    @Option(name: .long, help: "Recipe file (YAML or JSON).")
    var recipe: String?

    @Option(name: .long, help: "A BitStack model's size to load: 60MB, 1.5G, bytes, or bits per weight (3bpw).")
    var size: String?

    @Option(name: .long, help: "A batch manifest (YAML/JSON list of {model, recipe, priority, key}).")
    var manifest: String?

    @Option(name: .long, help: "Batch name (default: the manifest's file name).")
    var batchName: String?

    @Option(name: .long, help: "Priority, -1000...1000; higher runs first.")
    var priority: Int = 0

    @Option(name: .customLong("key"), help: "Idempotency key: submitting the same key again returns the same job.")
    var idempotencyKey: String?

    @Option(name: .long, help: "Delay before the job becomes runnable (e.g. 30s, 5m).")
    var after: Duration?

    @Option(
        name: .customLong("after-job"),
        help: ArgumentHelp(
            "Run only after this job (id or unique prefix) succeeds; cancelled (dependency_failed) if it fails. "
                + "Repeatable."))
    var afterJobs: [String] = []

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

    @OptionGroup var inputRoots: InputRootOptions

    @OptionGroup var artifacts: ArtifactRootOption

    @Flag(name: .long, help: "Skip hashing the model at submit (no check that it is unchanged when the job runs).")
    var noChecksum = false

    @Flag(
        name: .long,
        help: "Validate everything (models, recipes, manifest) and print what would be submitted; insert nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    static let maxAttemptsLimit = ManifestEntries.maxAttemptsLimit

    func validate() throws {
        guard (-1000...1000).contains(priority) else { throw ValidationError("--priority must be in -1000...1000") }
        guard (1...Self.maxAttemptsLimit).contains(maxAttempts) else {
            throw ValidationError("--max-attempts must be in 1...\(Self.maxAttemptsLimit)")
        }
        for (flag, v) in [("--key", idempotencyKey), ("--batch-name", batchName)] {
            if let v, v.isEmpty || v.utf8.count > ManifestEntries.maxNameBytes {
                throw ValidationError("\(flag) must be 1 to \(ManifestEntries.maxNameBytes) bytes")
            }
        }
        guard count >= 1 && count <= 1_000_000 else { throw ValidationError("--count must be in 1...1000000") }
        if noop {
            guard model == nil, recipe == nil, manifest == nil else {
                throw ValidationError("--noop takes no --model, --recipe or --manifest")
            }
        } else if manifest == nil {
            guard model != nil else { throw ValidationError("--model is required (or --manifest, or --noop)") }
            guard recipe != nil else { throw ValidationError("--recipe is required") }
        }
        if idempotencyKey != nil && count > 1 { throw ValidationError("--key cannot be combined with --count") }
        if size != nil && (noop || manifest != nil) {
            throw ValidationError("--size goes with --model (a manifest entry takes its own size)")
        }
    }

    var policy: PathPolicy {
        PathPolicy(roots: inputRoots.roots(artifactRoot: artifacts.configured))
    }

    func run() throws {
        try oneLine {
            let delay = after?.seconds ?? 0
            var jobs = [NewJob]()
            var batch: String? = batchName
            if noop {
                let spec = NoopSpec(sleepMS: sleepMs, failTimes: failTimes).json
                for _ in 0..<count {
                    var j = NewJob(kind: JobKind.noop.rawValue, recipeJSON: spec, inputPath: "-")
                    j.priority = priority
                    j.maxAttempts = maxAttempts
                    j.delaySeconds = delay
                    j.idempotencyKey = idempotencyKey
                    jobs.append(j)
                }
            } else if let manifest {
                var defaults = ManifestEntries.Defaults()
                defaults.priority = priority
                defaults.maxAttempts = maxAttempts
                defaults.checksum = !noChecksum
                jobs = try ManifestEntries.load(manifest, defaults: defaults, delay: delay, policy: policy)
                batch = batch ?? (manifest as NSString).lastPathComponent
            } else {
                var j = try CompressJobBuilder.build(
                    model: model!, recipeFile: recipe!, checksum: !noChecksum, policy: policy, size: size)
                j.priority = priority
                j.maxAttempts = maxAttempts
                j.delaySeconds = delay
                j.idempotencyKey = idempotencyKey
                jobs = Array(repeating: j, count: count)
            }
            if dryRun { return printDryRun(jobs, batch: batch) }
            let queue = try conn.queue()
            if !afterJobs.isEmpty {
                let ids = try afterJobs.map { ref in
                    guard let id = try JobStore().resolve(queue.db, jobRef: ref) else {
                        throw CLIError("--after-job \(ref): no such job (or the prefix is not unique)")
                    }
                    return id
                }
                for i in jobs.indices { jobs[i].needsIDs += ids }
            }
            let outcome: JobQueue.Outcome<(batch: UUID?, jobs: [SubmittedJob])>
            do { outcome = try queue.submit(jobs, batchName: batch) } catch let e as DependencyError {
                throw CLIError("not submitted: \(e)")
            }
            let (batchID, results) = outcome.value
            warn(outcome.hintWarning)
            if json {
                var out: [String: Any] = [
                    "jobs": results.map { ["id": $0.id.uuidString.lowercased(), "existed": $0.existed] }
                ]
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
            var r: [String: Any] = [
                "kind": j.kind, "input": j.inputPath, "priority": j.priority, "max_attempts": j.maxAttempts
            ]
            if let m = j.memoryEstimate { r["memory_estimate"] = m }
            if let u = j.unitsTotal { r["units"] = u }
            if let k = j.idempotencyKey { r["key"] = k }
            if let s = j.inputSize { r["size"] = s }
            return r
        }
        if json {
            var out: [String: Any] = ["dry_run": true, "jobs": rows]
            if let batch { out["batch"] = batch }
            printJSON(out)
            return
        }
        print(
            "dry run: \(jobs.count) job(s) valid\(batch.map { " for batch " + TextRules.display($0) } ?? ""); nothing "
                + "inserted"
        )
        for j in jobs.prefix(20) {
            let mem = j.memoryEstimate.map { String(format: " memory~%.0f MiB", Double($0) / 1_048_576) } ?? ""
            let size = j.inputSize.map { " size=" + TextRules.display($0) } ?? ""
            print("  \(j.kind) \(TextRules.display(j.inputPath))\(size) priority=\(j.priority)\(mem)")
        }
    }
}
