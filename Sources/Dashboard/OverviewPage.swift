import Foundation
import Queue

/// `/`: jobs by state and priority, oldest queued age, throughput charts, workers, running jobs,
/// active batches with ETA, recent failures. Reads monitoring views only.
enum OverviewPage {
    static func render(_ db: PostgresConnection, refresh: Int) throws -> String {
        var b = ""
        let states = try db.query(
            """
            SELECT state, jobs, delayed, lease_expired FROM queue_overview
            ORDER BY array_position(ARRAY['waiting','queued','running','succeeded','failed','dead','cancelled'], state)
            """)
        b += "<h2>Jobs by state</h2><div class=\"cards\" id=\"states\">"
        for r in states {
            let extra =
                (r.int64("delayed") ?? 0) > 0 ? " <span class=\"muted\">(\(r.html("delayed")) delayed)</span>" : ""
            b +=
                "<div class=\"card\"><b class=\"state-\(r.html("state"))\" "
                + "data-state=\"\(r.html("state"))\">\(r.html("jobs"))</b>\(r.html("state"))\(extra)</div>"
        }
        b += "</div>"

        let backlog = try db.query(
            "SELECT priority, jobs, delayed, oldest_age_s FROM queue_backlog ORDER BY priority DESC")
        let oldest = backlog.compactMap { $0.double("oldest_age_s") }.max()
        b += "<h2>Queue by priority</h2><p>Oldest queued job: <b id=\"oldest\">\(HTML.seconds(oldest))</b></p>"
        b += HTML.table(
            ["priority", "queued", "delayed", "oldest"],
            backlog.map {
                [
                    "n:" + $0.html("priority"), "n:" + $0.html("jobs"), "n:" + $0.html("delayed"),
                    "n:" + HTML.seconds($0.double("oldest_age_s"))
                ]
            }, id: "backlog")

        b += try throughput(db)
        b += try workers(db)
        b += try running(db)
        b += try batches(db)

        let failures = try db.query(
            """
            SELECT job_id, kind, state, attempt, max_attempts, error_code, error, input_path, updated_at
            FROM failing_jobs ORDER BY updated_at DESC LIMIT 20
            """)
        b +=
            "<h2>Recent failures</h2>"
            + HTML.table(
                ["job", "kind", "state", "attempt", "code", "error", "input", "at"],
                failures.map {
                    [
                        HTML.jobLink($0.text("job_id") ?? ""), $0.html("kind"), HTML.state($0.text("state") ?? ""),
                        "n:\($0.html("attempt"))/\($0.html("max_attempts"))",
                        $0.html("error_code"), "<span class=\"err\">\($0.html("error"))</span>", $0.html("input_path"),
                        $0.html("updated_at")
                    ]
                }, id: "failures")
        return HTML.page(title: "fleet", refresh: refresh, body: b)
    }

    static func throughput(_ db: PostgresConnection) throws -> String {
        let t = try db.query(
            "SELECT last_minute, last_hour, last_day, succeeded_last_hour, failed_last_hour FROM job_throughput")[0]
        var b =
            "<h2>Throughput</h2><p id=\"throughput\">finished: last minute <b>\(t.html("last_minute"))</b>, last hour "
            + "<b>\(t.html("last_hour"))</b> "
            + "(\(t.html("succeeded_last_hour")) succeeded, \(t.html("failed_last_hour")) failed), last day "
            + "<b>\(t.html("last_day"))</b></p>"
        let now = Date().timeIntervalSince1970
        for (window, step, count, label) in [
            ("1 hour", "minute", 60, "last hour, jobs per minute"), ("1 day", "hour", 24, "last day, jobs per hour")
        ] {
            // Finished jobs per minute (hour), zero-filled, split into succeeded and failed.
            let rows = try db.query(
                """
                SELECT extract(epoch FROM g.t) AS t,
                       count(s.job_id) FILTER (WHERE s.state = 'succeeded') AS ok,
                       count(s.job_id) FILTER (WHERE s.state IN ('failed', 'dead')) AS bad
                FROM generate_series(date_trunc($1, now()) - $2::interval, date_trunc($1, now()), ('1 ' ||
                    $1)::interval) AS g(t)
                LEFT JOIN job_summary s ON s.finished_at >= g.t AND s.finished_at < g.t + ('1 ' || $1)::interval
                GROUP BY g.t ORDER BY g.t
                """, [step, window])
            let ok = rows.map { (x: $0.double("t") ?? 0, y: $0.double("ok") ?? 0) },
                bad = rows.map { (x: $0.double("t") ?? 0, y: $0.double("bad") ?? 0) }
            let start = ok.first?.x ?? now - Double(count) * 60, end = ok.last?.x ?? now
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

    static func workers(_ db: PostgresConnection) throws -> String {
        let rows = try db.query(
            """
            SELECT w.id, w.host, w.pid, w.state, w.alive, w.heartbeat_age_s, w.jobs_done, w.running_jobs,
                   (SELECT string_agg(r.job_id::text, ' ' ORDER BY r.job_id) FROM running_jobs r WHERE r.worker_id =
                       w.id) AS current
            FROM worker_health w WHERE w.state <> 'stopped' OR w.last_heartbeat > now() - interval '1 hour'
            ORDER BY w.alive DESC, w.started_at LIMIT 200
            """)
        return "<h2>Workers (\(rows.filter { $0.text("alive") == "t" }.count) alive)</h2>"
            + HTML.table(
                ["worker", "host", "pid", "state", "heartbeat age", "jobs done", "current jobs"],
                rows.map { r in
                    let alive = r.text("alive") == "t"
                    return [
                        r.html("id"), r.html("host"), "n:" + r.html("pid"),
                        alive ? r.html("state") : "<span class=\"err\">stale (\(r.html("state")))</span>",
                        "n:" + HTML.seconds(r.double("heartbeat_age_s")), "n:" + r.html("jobs_done"),
                        (r.text("current") ?? "").split(separator: " ").map { HTML.jobLink(String($0)) }.joined(
                            separator: " ")
                    ]
                }, id: "workers")
    }

    static func running(_ db: PostgresConnection) throws -> String {
        let rows = try db.query(
            """
            SELECT job_id, kind, attempt, max_attempts, worker_id, input_path, units_done, units_total, run_s,
                lease_expired
            FROM running_jobs ORDER BY run_s DESC LIMIT 50
            """)
        return "<h2>Running jobs</h2>"
            + HTML.table(
                ["job", "kind", "progress", "running for", "attempt", "worker", "input"],
                rows.map { r in
                    let done = r.double("units_done") ?? 0, total = r.double("units_total") ?? 0
                    return [
                        HTML.jobLink(r.text("job_id") ?? ""), r.html("kind"),
                        HTML.progress(done, total, label: "\(Int(done))/\(total > 0 ? String(Int(total)) : "?") units"),
                        "n:" + HTML.seconds(r.double("run_s"))
                            + (r.text("lease_expired") == "t" ? " <span class=\"err\">lease expired</span>" : ""),
                        "n:\(r.html("attempt"))/\(r.html("max_attempts"))", r.html("worker_id"), r.html("input_path")
                    ]
                }, id: "running")
    }

    static func batches(_ db: PostgresConnection) throws -> String {
        // Active batches, their progress, and an ETA from the rate of the last 10 minutes (or since the batch began).
        let rows = try db.query(
            """
            SELECT p.batch_id, p.name, p.jobs, p.queued, p.running, p.succeeded, p.failed, p.cancelled, p.pct_done,
                   p.waiting,
                   (SELECT count(*) FROM job_summary s WHERE s.batch_id = p.batch_id AND s.finished_at > now() -
                       interval '10 minutes') AS recent,
                   extract(epoch FROM least(interval '10 minutes', now() - p.created_at)) AS window_s
            FROM batch_progress p WHERE p.queued + p.running + p.waiting > 0 ORDER BY p.created_at DESC LIMIT 50
            """)
        return "<h2>Active batches</h2>"
            + HTML.table(
                ["batch", "name", "progress", "queued", "running", "succeeded", "failed", "ETA"],
                rows.map { r in
                    let jobs = r.double("jobs") ?? 0, recent = r.double("recent") ?? 0
                    let left = (r.double("queued") ?? 0) + (r.double("running") ?? 0) + (r.double("waiting") ?? 0)
                    let eta = recent > 0 ? HTML.seconds(left / (recent / max(r.double("window_s") ?? 600, 1))) : "–"
                    let id = r.text("batch_id") ?? ""
                    return [
                        "<a href=\"/batches/\(HTML.escape(id))\">\(HTML.escape(String(id.prefix(8))))</a>",
                        r.html("name"),
                        HTML.progress(jobs - left, jobs, label: "\(r.html("pct_done"))%"), "n:" + r.html("queued"),
                        "n:" + r.html("running"),
                        "n:" + r.html("succeeded"), "n:" + r.html("failed"), "n:" + eta
                    ]
                }, id: "batches") + "<p><a href=\"/batches\">all batches</a></p>"
    }
}
