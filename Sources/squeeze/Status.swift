import ArgumentParser
import Compute
import Foundation
import Queue

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Job counts by state, batches, and live workers (from the monitoring views).")

    @OptionGroup var conn: ConnectionOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try oneLine {
            let db = try conn.connect()
            let states = try db.query("SELECT state, jobs, delayed, lease_expired FROM queue_overview ORDER BY array_position(ARRAY['queued','running','succeeded','failed','dead','cancelled'], state)")
            let workers = try db.query("SELECT id, host, pid, state, running_jobs, jobs_done, round(heartbeat_age_s::numeric, 1) AS age FROM worker_health WHERE alive ORDER BY started_at")
            let batches = try db.query("SELECT batch_id, name, jobs, succeeded, failed, running, queued, pct_done FROM batch_progress ORDER BY created_at DESC LIMIT 10")
            if json {
                var counts = [String: Int]()
                for r in states { counts[r["state"]!] = Int(r["jobs"]!) ?? 0 }
                printJSON([
                    "jobs": counts,
                    "delayed": states.reduce(0) { $0 + (Int($1["delayed"] ?? "0") ?? 0) },
                    "lease_expired": states.reduce(0) { $0 + (Int($1["lease_expired"] ?? "0") ?? 0) },
                    "workers": workers.map { ["id": $0["id"]!, "host": $0["host"]!, "pid": Int($0["pid"]!)!, "state": $0["state"]!,
                                              "running_jobs": Int($0["running_jobs"]!)!, "jobs_done": Int($0["jobs_done"]!)!] },
                    "batches": batches.map { ["id": $0["batch_id"]!, "name": $0["name"]!, "jobs": Int($0["jobs"]!)!,
                                              "succeeded": Int($0["succeeded"]!)!, "failed": Int($0["failed"]!)!] },
                ])
                return
            }
            print("JOBS")
            for r in states {
                var line = "  \(r["state"]!.padding(toLength: 10, withPad: " ", startingAt: 0)) \(r["jobs"]!)"
                if r["state"] == "queued", let d = r["delayed"], d != "0" { line += "  (\(d) delayed)" }
                if r["state"] == "running", let d = r["lease_expired"], d != "0" { line += "  (\(d) with expired lease)" }
                print(line)
            }
            print("WORKERS (\(workers.count) alive)")
            for w in workers {
                print("  \(TextRules.display(w["id"]!))  \(w["state"]!)  running=\(w["running_jobs"]!) done=\(w["jobs_done"]!) heartbeat=\(w["age"]!)s ago")
            }
            if !batches.isEmpty {
                print("BATCHES")
                for b in batches {
                    print("  \(b["batch_id"]!.prefix(8))  \(TextRules.display(b["name"]!))  \(b["succeeded"]!)/\(b["jobs"]!) succeeded, \(b["failed"]!) failed, \(b["running"]!) running, \(b["queued"]!) queued (\(b["pct_done"]!)% done)")
                }
            }
        }
    }
}
