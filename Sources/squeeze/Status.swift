import ArgumentParser
import Compute
import Foundation
import Queue

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Job counts by state, batches, and live workers (from the monitoring views).")

    @OptionGroup var conn: ConnectionOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try oneLine {
            let db = try conn.connect()
            let store = JobStore()
            let states = try store.stateCounts(db), workers = try store.liveWorkers(db),
                batches = try store.recentBatches(db)
            if json {
                printJSON([
                    "jobs": Dictionary(states.map { ($0.state, $0.jobs) }, uniquingKeysWith: +),
                    "delayed": states.reduce(0) { $0 + $1.delayed },
                    "lease_expired": states.reduce(0) { $0 + $1.leaseExpired },
                    "workers": workers.map {
                        [
                            "id": $0.id, "host": $0.host, "pid": $0.pid, "state": $0.state,
                            "running_jobs": $0.runningJobs, "jobs_done": $0.jobsDone
                        ] as [String: Any]
                    },
                    "batches": batches.map {
                        [
                            "id": $0.id.uuidString.lowercased(), "name": $0.name, "jobs": $0.jobs,
                            "succeeded": $0.succeeded, "failed": $0.failed
                        ] as [String: Any]
                    }
                ])
                return
            }
            print("JOBS")
            for r in states {
                var line = "  \(r.state.padding(toLength: 10, withPad: " ", startingAt: 0)) \(r.jobs)"
                if r.state == "queued", r.delayed > 0 { line += "  (\(r.delayed) delayed)" }
                if r.state == "running", r.leaseExpired > 0 { line += "  (\(r.leaseExpired) with expired lease)" }
                print(line)
            }
            print("WORKERS (\(workers.count) alive)")
            for w in workers {
                print(
                    "  \(TextRules.display(w.id))  \(w.state)  running=\(w.runningJobs) done=\(w.jobsDone) "
                        + "heartbeat=\(w.heartbeatAge)s ago"
                )
            }
            if !batches.isEmpty {
                print("BATCHES")
                for b in batches {
                    print(
                        "  \(b.id.uuidString.lowercased().prefix(8))  \(TextRules.display(b.name))  "
                            + "\(b.succeeded)/\(b.jobs) succeeded, \(b.failed) failed, \(b.running) running, "
                            + "\(b.queued) queued, \(b.waiting) waiting (\(String(format: "%.1f", b.pctDone))% done)"
                    )
                }
            }
        }
    }
}
