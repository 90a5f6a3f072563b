import ArgumentParser
import Foundation
import Queue

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel jobs: queued ones at once, running ones at their next unit boundary.")

    @OptionGroup var conn: ConnectionOptions
    @OptionGroup var selection: JobSelection

    func run() throws {
        try oneLine {
            let queue = try conn.queue()
            let (ids, batchID) = try selection.resolve(queue.db)
            let outcome = try queue.cancel(ids, batch: batchID)
            let (cancelled, flagged) = outcome.value
            warn(outcome.hintWarning)
            print("cancelled \(cancelled.count) queued job(s); \(flagged.count) running job(s) will stop at their next unit")
        }
    }
}

struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Put failed, dead or cancelled jobs back in the queue.")

    @OptionGroup var conn: ConnectionOptions

    @Argument(help: "Job ids (or unique prefixes).")
    var jobs: [String] = []

    @Flag(name: .long, help: "Retry every dead job.")
    var dead = false

    func validate() throws {
        if jobs.isEmpty && !dead { throw ValidationError("give job ids or --dead") }
    }

    func run() throws {
        try oneLine {
            let queue = try conn.queue()
            let ids = try jobs.map { ref -> UUID in
                guard let id = try JobStore().resolve(queue.db, jobRef: ref) else { throw CLIError("no job matches \(ref)") }
                return id
            }
            let outcome = try queue.retry(ids, allDead: dead)
            warn(outcome.hintWarning)
            print("requeued \(outcome.value.count) job(s)")
        }
    }
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A job's event log.")

    @OptionGroup var conn: ConnectionOptions

    @Argument(help: "Job id (or a unique prefix).")
    var job: String

    func run() throws {
        try oneLine {
            let db = try conn.connect()
            guard let id = try JobStore().resolve(db, jobRef: job) else { throw CLIError("no job matches \(job)") }
            for e in try db.query("SELECT at, attempt, kind, detail::text AS detail FROM job_events WHERE job_id = $1 ORDER BY id", [id]) {
                print("\(e["at"]!)  attempt=\(e["attempt"]!)  \(e["kind"]!)  \(e["detail"]!)")
            }
        }
    }
}

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Wait for jobs or a batch to finish; exit non-zero if any did not succeed.")

    @OptionGroup var conn: ConnectionOptions
    @OptionGroup var selection: JobSelection

    @Option(name: .long, help: "Give up after this long (e.g. 10m); exit code 2.")
    var timeout: String?

    func run() throws {
        let deadline = try timeout.map { Date().addingTimeInterval(try parseDuration($0)) }
        let outcome: (failed: Int, total: Int) = try oneLine {
            let db = try conn.connect()
            let (ids, batchID) = try selection.resolve(db)
            let tty = isatty(STDOUT_FILENO) == 1
            var last = ""
            while true {
                let r = try db.query("""
                    SELECT count(*) AS total,
                           count(*) FILTER (WHERE state = 'succeeded') AS ok,
                           count(*) FILTER (WHERE state IN ('failed', 'dead', 'cancelled')) AS bad,
                           count(*) FILTER (WHERE state = 'running') AS running,
                           coalesce(sum(units_done) FILTER (WHERE state = 'running'), 0) AS units_done,
                           coalesce(sum(units_total) FILTER (WHERE state = 'running'), 0) AS units_total
                    FROM jobs WHERE id = ANY($1::uuid[]) OR batch_id = $2::uuid
                    """, [ids, batchID])[0]
                let total = Int(r["total"]!)!, ok = Int(r["ok"]!)!, bad = Int(r["bad"]!)!
                guard total > 0 else { throw CLIError("no such jobs") }
                let line = "\(ok + bad)/\(total) done: \(ok) succeeded, \(bad) failed/cancelled, \(r["running"]!) running (units \(r["units_done"]!)/\(r["units_total"]!))"
                if line != last {
                    if tty { print("\r\u{1B}[K" + line, terminator: "") ; fflush(stdout) } else { print(line) }
                    last = line
                }
                if ok + bad == total {
                    if tty { print("") }
                    return (bad, total)
                }
                if let d = deadline, Date() > d {
                    if tty { print("") }
                    throw ExitCode(2)
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
        if outcome.failed > 0 { throw ExitCode(1) }
    }
}
