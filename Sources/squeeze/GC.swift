import ArgumentParser
import Foundation
import Queue
import Worker

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Retention: forget finished jobs past a horizon and reclaim disk; safe while workers run.",
        discussion: """
            Deletes finished jobs (succeeded, cancelled) finished more than --older-than ago, failed and dead \
            ones past --keep-failed, with their events, attempts, metrics and artifact rows, and their published \
            outputs; published attempt directories no job row references (superseded attempts); staging \
            directories of attempts that are not running; checkpoint files and rows of finished jobs. Never an \
            artifact a job row references, nor anything a \
            queued or running job needs. Prints what it freed.
            """)

    @OptionGroup var conn: ConnectionOptions
    @OptionGroup var artifacts: ArtifactRootOption

    @Option(
        name: .long, help: "Forget succeeded and cancelled jobs finished longer ago than this (e.g. 30d, 12h, 90m).")
    var olderThan: String

    @Option(
        name: .long,
        help: "Keep failed and dead jobs this long (default 90d, and never less than --older-than).")
    var keepFailed: String?

    @Flag(name: .long, help: "Print what would be freed; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    /// Failed and dead jobs are kept 90 days unless --keep-failed says otherwise.
    static let defaultKeepFailed: Double = 90 * 86_400

    /// `30d`, `12h`, `90m`, `45s` → seconds. The unit is required: a bare `30` is refused rather
    /// than read as seconds (which would forget nearly everything).
    static func seconds(_ text: String) -> Double? {
        guard text.last?.isLetter == true else { return nil }
        return Duration(argument: text)?.seconds
    }

    func validate() throws {
        guard Self.seconds(olderThan) != nil else {
            throw ValidationError("--older-than must be like 30d, 12h, 90m or 45s, got \(olderThan)")
        }
        if let k = keepFailed, Self.seconds(k) == nil {
            throw ValidationError("--keep-failed must be like 90d, 12h, 90m or 45s, got \(k)")
        }
    }

    func run() throws {
        try oneLine {
            let older = Self.seconds(olderThan)!
            let failed = keepFailed.flatMap(Self.seconds) ?? max(Self.defaultKeepFailed, older)
            let db = try conn.connect()
            let r = try GarbageCollector(artifactRoot: try artifacts.root()).run(
                db, olderThan: older, keepFailed: failed, dryRun: dryRun)
            if json {
                printJSON([
                    "dry_run": dryRun, "jobs": r.rows.jobs, "events": r.rows.events, "attempts": r.rows.attempts,
                    "checkpoint_rows": r.rows.checkpoints, "batches": r.rows.batches, "output_dirs": r.outputDirs,
                    "superseded_dirs": r.supersededDirs, "staging_dirs": r.stagingDirs, "checkpoint_dirs": r.workDirs,
                    "bytes": r.bytes
                ])
                return
            }
            let verb = dryRun ? "would free" : "freed"
            print(
                "\(verb): rows: \(r.rows.jobs) jobs, \(r.rows.events) events, \(r.rows.attempts) attempts, "
                    + "\(r.rows.checkpoints) checkpoint rows, \(r.rows.batches) batches"
            )
            print(
                "\(verb): files: \(r.outputDirs) output dirs of forgotten jobs, \(r.supersededDirs) superseded attempt "
                    + "dirs, \(r.stagingDirs) staging dirs, \(r.workDirs) checkpoint dirs"
            )
            print("\(verb): \(r.bytes) bytes (\(String(format: "%.1f", Double(r.bytes) / 1e6)) MB)")
        }
    }
}
