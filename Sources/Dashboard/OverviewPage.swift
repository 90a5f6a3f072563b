import Foundation
import Queue

/// `/`: jobs by state and priority, oldest queued age, throughput charts, workers, running jobs,
/// active batches with ETA, recent failures. Reads monitoring views only, through JobViews.
enum OverviewPage {
    static func render(_ db: PostgresConnection, refresh: Int) throws -> String {
        let store = JobStore()
        var b = "<h2>Jobs by state</h2><div class=\"cards\" id=\"states\">"
        for s in try store.stateCounts(db) {
            let extra = s.delayed > 0 ? " <span class=\"muted\">(\(s.delayed) delayed)</span>" : ""
            let state = HTML.escape(s.state)
            b +=
                "<div class=\"card\"><b class=\"state-\(state)\" data-state=\"\(state)\">\(s.jobs)</b>"
                + "\(state)\(extra)</div>"
        }
        b += "</div>"

        let backlog = try store.backlog(db)
        let oldest = backlog.map(\.oldestAge).max()
        b += "<h2>Queue by priority</h2><p>Oldest queued job: <b id=\"oldest\">\(HTML.seconds(oldest))</b></p>"
        b += HTML.table(
            ["priority", "queued", "delayed", "oldest"],
            backlog.map { ["n:\($0.priority)", "n:\($0.jobs)", "n:\($0.delayed)", "n:" + HTML.seconds($0.oldestAge)] },
            id: "backlog")

        b += try throughput(db, store)
        b += try workers(db, store)
        b += try running(db, store)
        b += try batches(db, store)

        b +=
            "<h2>Recent failures</h2>"
            + HTML.table(
                ["job", "kind", "state", "attempt", "code", "error", "input", "at"],
                try store.recentFailures(db).map { f in
                    [
                        HTML.jobLink(f.id.uuidString.lowercased()), HTML.escape(f.kind), HTML.state(f.state),
                        "n:\(f.attempt)/\(f.maxAttempts)", HTML.text(f.errorCode),
                        "<span class=\"err\">\(HTML.text(f.error))</span>", HTML.escape(f.inputPath),
                        HTML.escape(f.updatedAt)
                    ]
                }, id: "failures")
        return HTML.page(title: "fleet", refresh: refresh, body: b)
    }

    static func throughput(_ db: PostgresConnection, _ store: JobStore) throws -> String {
        let t = try store.throughput(db)
        var b =
            "<h2>Throughput</h2><p id=\"throughput\">finished: last minute <b>\(t.lastMinute)</b>, last hour "
            + "<b>\(t.lastHour)</b> (\(t.succeededLastHour) succeeded, \(t.failedLastHour) failed), last day "
            + "<b>\(t.lastDay)</b></p>"
        let now = Date().timeIntervalSince1970
        for (window, step, count, label) in [
            ("1 hour", "minute", 60, "last hour, jobs per minute"), ("1 day", "hour", 24, "last day, jobs per hour")
        ] {
            // Finished jobs per minute (hour), zero-filled, split into succeeded and failed.
            let buckets = try store.finishedSeries(db, step: step, window: window)
            let ok = buckets.map { (x: $0.start, y: Double($0.succeeded)) }
            let bad = buckets.map { (x: $0.start, y: Double($0.failed)) }
            let start = ok.first?.x ?? now - Double(count) * 60
            let end = ok.last?.x ?? now
            let fmt = DateFormatter()
            fmt.dateFormat = step == "minute" ? "HH:mm" : "dd HH:00"
            b += SVGChart.lines(
                [
                    .init(name: "succeeded", color: "#17803d", points: ok),
                    .init(name: "failed", color: "#b42318", points: bad)
                ],
                title: label, x: start...end, xTick: { fmt.string(from: Date(timeIntervalSince1970: $0)) },
                yLabel: "jobs")
            b += " "
        }
        return b
    }

    static func workers(_ db: PostgresConnection, _ store: JobStore) throws -> String {
        let workers = try store.fleetWorkers(db)
        return "<h2>Workers (\(workers.filter(\.alive).count) alive)</h2>"
            + HTML.table(
                ["worker", "host", "pid", "state", "heartbeat age", "jobs done", "current jobs"],
                workers.map { w in
                    [
                        HTML.escape(w.id), HTML.escape(w.host), "n:\(w.pid)",
                        w.alive ? HTML.escape(w.state) : "<span class=\"err\">stale (\(HTML.escape(w.state)))</span>",
                        "n:" + HTML.seconds(w.heartbeatAge), "n:\(w.jobsDone)",
                        w.currentJobs.map(HTML.jobLink).joined(separator: " ")
                    ]
                }, id: "workers")
    }

    static func running(_ db: PostgresConnection, _ store: JobStore) throws -> String {
        "<h2>Running jobs</h2>"
            + HTML.table(
                ["job", "kind", "progress", "running for", "attempt", "worker", "input"],
                try store.runningJobs(db, limit: 50).map { r in
                    let total = r.unitsTotal.map(String.init) ?? "?"
                    return [
                        HTML.jobLink(r.id.uuidString.lowercased()), HTML.escape(r.kind),
                        HTML.progress(
                            Double(r.unitsDone), Double(r.unitsTotal ?? 0), label: "\(r.unitsDone)/\(total) units"),
                        "n:" + HTML.seconds(r.runSeconds)
                            + (r.leaseExpired ? " <span class=\"err\">lease expired</span>" : ""),
                        "n:\(r.attempt)/\(r.maxAttempts)", HTML.text(r.workerID), HTML.escape(r.inputPath)
                    ]
                }, id: "running")
    }

    static func batches(_ db: PostgresConnection, _ store: JobStore) throws -> String {
        // Active batches, their progress, and an ETA from the rate of the last 10 minutes (or since the batch began).
        "<h2>Active batches</h2>"
            + HTML.table(
                ["batch", "name", "progress", "queued", "running", "succeeded", "failed", "ETA"],
                try store.activeBatches(db).map { a in
                    let p = a.batch
                    let left = Double(p.queued + p.running + a.waiting)
                    let rate = Double(a.finishedRecently) / max(a.windowSeconds, 1)
                    let eta = a.finishedRecently > 0 ? HTML.seconds(left / rate) : "–"
                    return [
                        BatchPage.link(p.id), HTML.escape(p.name),
                        HTML.progress(Double(p.jobs) - left, Double(p.jobs), label: "\(p.pctDone)%"),
                        "n:\(p.queued)", "n:\(p.running)", "n:\(p.succeeded)", "n:\(p.failed)", "n:" + eta
                    ]
                }, id: "batches") + "<p><a href=\"/batches\">all batches</a></p>"
    }
}
