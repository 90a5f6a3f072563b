import ArgumentParser
import Compute
import Foundation
import Queue

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A job's state, attempts, events, per-tensor metrics and artifacts.")

    @OptionGroup var conn: ConnectionOptions

    @Argument(help: "Job id (or a unique prefix).")
    var job: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try oneLine {
            let db = try conn.connect()
            guard let id = try JobStore().resolve(db, jobRef: job) else { throw CLIError("no job matches \(job)") }
            let j = try db.query("""
                SELECT id, kind, state, attempt, max_attempts, priority, input_path, output_path, error, error_code,
                       units_done, units_total, worker_id, cancel_requested, batch_id, idempotency_key,
                       created_at, started_at, finished_at, run_after, recipe::text AS recipe
                FROM jobs WHERE id = $1
                """, [id])[0]
            let attempts = try db.query("SELECT attempt, worker_id, started_at, ended_at, outcome, error FROM job_attempts WHERE job_id = $1 ORDER BY attempt", [id])
            let events = try db.query("SELECT at, attempt, kind, detail::text AS detail FROM job_events WHERE job_id = $1 ORDER BY id", [id])
            let metrics = try db.query("SELECT tensor, dtype, numel, sparsity, bits, relative_error, output_error, rank, elapsed_ms, bytes_in, bytes_out FROM layer_metrics WHERE job_id = $1 ORDER BY unit_index", [id])
            let artifacts = try db.query("SELECT path, bytes, sha256, format FROM artifacts WHERE job_id = $1 ORDER BY path", [id])
            if json {
                func obj(_ r: PostgresRow) -> [String: Any] {
                    var o = [String: Any]()
                    for (k, v) in zip(r.columns, r.values) { o[k] = v.map { $0 as Any } ?? NSNull() }
                    return o
                }
                var top = obj(j)
                top["recipe"] = (try? JSONSerialization.jsonObject(with: Data((j["recipe"] ?? "{}").utf8))) ?? NSNull()
                for k in ["attempt", "max_attempts", "priority", "units_done", "units_total"] { if let v = j[k] { top[k] = Int(v) } }
                top["attempts"] = attempts.map(obj)
                top["events"] = events.map { e -> [String: Any] in
                    var o = obj(e)
                    o["detail"] = (try? JSONSerialization.jsonObject(with: Data((e["detail"] ?? "{}").utf8))) ?? NSNull()
                    return o
                }
                top["metrics"] = metrics.map { m -> [String: Any] in
                    var o = obj(m)
                    for k in ["numel", "bytes_in", "bytes_out", "rank"] { if let v = m[k] { o[k] = Int(v) } }
                    for k in ["sparsity", "bits", "relative_error", "output_error", "elapsed_ms"] { if let v = m[k] { o[k] = Double(v) } }
                    return o
                }
                top["artifacts"] = artifacts.map { a -> [String: Any] in
                    var o = obj(a)
                    o["bytes"] = Int(a["bytes"]!)
                    return o
                }
                printJSON(top)
                return
            }
            print("job       \(j["id"]!)  (\(j["kind"]!))")
            print("state     \(j["state"]!)  attempt \(j["attempt"]!)/\(j["max_attempts"]!)  priority \(j["priority"]!)")
            print("input     \(TextRules.display(j["input_path"]!))")
            if let o = j["output_path"] { print("output    \(o)") }
            if let t = j["units_total"] { print("progress  \(j["units_done"]!)/\(t) units") }
            if let e = j["error"] { print("error     [\(j["error_code"] ?? "?")] \(TextRules.display(e))") }
            if j["cancel_requested"] == "t" { print("cancel    requested") }
            print("ATTEMPTS")
            for a in attempts {
                print("  #\(a["attempt"]!) \(a["worker_id"]!) \(a["outcome"] ?? "running")\(a["error"].map { ": " + $0 } ?? "")")
            }
            print("EVENTS")
            for e in events { print("  \(e["at"]!)  #\(e["attempt"]!) \(e["kind"]!) \(e["detail"]! == "{}" ? "" : e["detail"]!)") }
            if !metrics.isEmpty {
                print("METRICS (\(metrics.count) tensors)")
                for m in metrics.prefix(40) {
                    let sp = Double(m["sparsity"]!) ?? 0
                    let re = m["relative_error"].flatMap(Double.init).map { String(format: "%.4f", $0) } ?? "-"
                    let extra = (m["output_error"].flatMap(Double.init).map { String(format: " out_err=%.4f", $0) } ?? "")
                        + (m["rank"].map { " rank=\($0)" } ?? "")
                    print("  \(TextRules.display(m["tensor"]!))  \(m["dtype"]!)  sparsity=\(String(format: "%.4f", sp)) rel_err=\(re)\(extra)")
                }
                if metrics.count > 40 { print("  ... \(metrics.count - 40) more (use --json)") }
            }
            if !artifacts.isEmpty {
                print("ARTIFACTS")
                for a in artifacts { print("  \(a["path"]!)  \(a["bytes"]!) bytes  sha256=\(a["sha256"]!)") }
            }
        }
    }
}
