import ArgumentParser
import Compute
import Foundation
import Queue

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A job's state, attempts, events, per-tensor metrics and artifacts.")

    @OptionGroup var conn: ConnectionOptions

    @Argument(help: "Job id (or a unique prefix).")
    var job: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    /// Everything `show` prints about one job.
    struct Report {
        let job: JobViews.Job
        let attempts: [JobViews.Attempt]
        let events: [JobViews.Event]
        let metrics: [JobViews.Metric]
        let artifacts: [JobViews.Artifact]
        let needs: [JobViews.Dependency]
    }

    func run() throws {
        try oneLine {
            let db = try conn.connect()
            let store = JobStore()
            guard let id = try store.resolve(db, jobRef: job), let j = try store.job(db, id: id) else {
                throw CLIError("no job matches \(job)")
            }
            let r = Report(
                job: j, attempts: try store.attempts(db, job: id), events: try store.events(db, job: id),
                metrics: try store.metrics(db, job: id), artifacts: try store.artifacts(db, job: id),
                needs: try store.dependencies(db, job: id))
            if json { printJSON(Self.json(r)) } else { Self.printText(r) }
        }
    }

    static func parsedJSON(_ text: String) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) ?? NSNull()
    }

    static func json(_ r: Report) -> [String: Any] {
        let j = r.job
        func opt(_ v: Any?) -> Any { v ?? NSNull() }
        return [
            "id": j.id.uuidString.lowercased(), "kind": j.kind, "state": j.state, "attempt": j.attempt,
            "max_attempts": j.maxAttempts,
            "priority": j.priority, "input_path": j.inputPath, "input_size": opt(j.inputSize),
            "output_path": opt(j.outputPath), "error": opt(j.error),
            "error_code": opt(j.errorCode), "units_done": opt(j.unitsDone), "units_total": opt(j.unitsTotal),
            "worker_id": opt(j.workerID),
            "cancel_requested": j.cancelRequested, "batch_id": opt(j.batchID), "idempotency_key": opt(j.idempotencyKey),
            "created_at": j.createdAt, "started_at": opt(j.startedAt), "finished_at": opt(j.finishedAt),
            "run_after": j.runAfter,
            "recipe": parsedJSON(j.recipeJSON),
            "needs": r.needs.map {
                ["id": $0.id.uuidString.lowercased(), "key": opt($0.key), "state": $0.state] as [String: Any]
            },
            "attempts": r.attempts.map {
                [
                    "attempt": $0.attempt, "worker_id": $0.workerID, "started_at": $0.startedAt,
                    "ended_at": opt($0.endedAt), "outcome": opt($0.outcome), "error": opt($0.error)
                ] as [String: Any]
            },
            "events": r.events.map {
                ["at": $0.at, "attempt": $0.attempt, "kind": $0.kind, "detail": parsedJSON($0.detailJSON)]
                    as [String: Any]
            },
            "metrics": r.metrics.map { m in
                [
                    "tensor": m.tensor, "dtype": m.dtype, "numel": m.numel, "sparsity": opt(m.sparsity),
                    "bits": opt(m.bits),
                    "relative_error": opt(m.relativeError), "output_error": opt(m.outputError), "rank": opt(m.rank),
                    "elapsed_ms": opt(m.elapsedMS), "bytes_in": opt(m.bytesIn), "bytes_out": opt(m.bytesOut)
                ] as [String: Any]
            },
            "artifacts": r.artifacts.map {
                ["path": $0.path, "bytes": $0.bytes, "sha256": $0.sha256, "format": $0.format] as [String: Any]
            }
        ]
    }

    static func printText(_ r: Report) {
        let j = r.job
        print("job       \(j.id.uuidString.lowercased())  (\(j.kind))")
        print("state     \(j.state)  attempt \(j.attempt)/\(j.maxAttempts)  priority \(j.priority)")
        print("input     \(TextRules.display(j.inputPath))")
        if let size = j.inputSize { print("size      \(TextRules.display(size))") }
        if let o = j.outputPath { print("output    \(o)") }
        if let t = j.unitsTotal { print("progress  \(j.unitsDone ?? 0)/\(t) units") }
        if let e = j.error { print("error     [\(j.errorCode ?? "?")] \(TextRules.display(e))") }
        if j.cancelRequested { print("cancel    requested") }
        for d in r.needs {
            let key = d.key.map { " (key \(TextRules.display($0)))" } ?? ""
            print("needs     \(d.id.uuidString.lowercased())\(key): \(d.state)")
        }
        print("ATTEMPTS")
        for a in r.attempts {
            print(
                "  #\(a.attempt) \(a.workerID) "
                    + "\(a.outcome ?? "running")\(a.error.map { ": " + TextRules.display($0) } ?? "")"
            )
        }
        print("EVENTS")
        for e in r.events { print("  \(e.at)  #\(e.attempt) \(e.kind) \(e.detailJSON == "{}" ? "" : e.detailJSON)") }
        if !r.metrics.isEmpty {
            print("METRICS (\(r.metrics.count) tensors)")
            for m in r.metrics.prefix(40) {
                let re = m.relativeError.map { String(format: "%.4f", $0) } ?? "-"
                let extra =
                    (m.outputError.map { String(format: " out_err=%.4f", $0) } ?? "")
                    + (m.rank.map { " rank=\($0)" } ?? "")
                print(
                    "  \(TextRules.display(m.tensor))  \(m.dtype)  sparsity=\(String(format: "%.4f", m.sparsity ?? 0)) "
                        + "rel_err=\(re)\(extra)"
                )
            }
            if r.metrics.count > 40 { print("  ... \(r.metrics.count - 40) more (use --json)") }
        }
        if !r.artifacts.isEmpty {
            print("ARTIFACTS")
            for a in r.artifacts { print("  \(a.path)  \(a.bytes) bytes  sha256=\(a.sha256)") }
        }
    }
}
