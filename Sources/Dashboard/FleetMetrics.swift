import Foundation
import Prometheus
import Queue

/// The fleet's Prometheus metrics, read from the monitoring views at each scrape.
///
/// Gauges are set from the current counts. Counters and histograms follow the jobs table: each
/// scrape adds the jobs finished (and bytes published) since the last one, read in (finished_at,
/// job_id) order up to 5 s ago, so every finished job is counted once per dashboard process. A
/// process starts its counters from the whole table (a counter reset, as Prometheus expects).
final class FleetMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private let lock = NSLock()
    private var seenPriorities: Set<String> = []
    private var finishedTotals: [String: Int64] = [:]
    private var artifactBytes: Int64?
    private var mark: (at: String, id: String)?

    static let states = JobState.allCases.map(\.rawValue)
    static let finishedStates = ["succeeded", "failed", "dead", "cancelled"]
    static let durationBuckets: [Double] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200]
    static let waitBuckets: [Double] = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]

    /// A metric name with its help text (no unit suffix: the names carry it).
    static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: Self.name(name, help), labels: labels)
    }

    private func durationHistogram(_ kind: String) -> ValueHistogram {
        registry.makeValueHistogram(
            descriptor: Self.name(
                "squeeze_job_duration_seconds", "Time from first claim to the final state, by job kind."),
            labels: [("kind", kind)], buckets: Self.durationBuckets)
    }

    private func waitHistogram() -> ValueHistogram {
        registry.makeValueHistogram(
            descriptor: Self.name("squeeze_job_wait_seconds", "Time from submit to first claim."),
            labels: [], buckets: Self.waitBuckets)
    }

    /// Reads the views and returns the exposition text.
    func scrape(_ db: PostgresConnection) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let counts = Dictionary(
            uniqueKeysWithValues: try db.query("SELECT state, jobs FROM queue_overview").map {
                ($0.text("state") ?? "", $0.double("jobs") ?? 0)
            })
        for s in Self.states { gauge("squeeze_jobs", "Jobs in each state.", [("state", s)]).set(counts[s] ?? 0) }

        let backlog = try db.query("SELECT priority, jobs, oldest_age_s FROM queue_backlog")
        var current: [String: Double] = [:]
        for r in backlog { current[r.text("priority") ?? ""] = r.double("jobs") ?? 0 }
        seenPriorities.formUnion(current.keys)
        for p in seenPriorities {
            gauge("squeeze_queue_backlog", "Queued jobs by priority (the autoscaling signal).", [("priority", p)]).set(
                current[p] ?? 0)
        }
        gauge("squeeze_queue_oldest_seconds", "Age of the oldest queued job, 0 when none.").set(
            backlog.compactMap { $0.double("oldest_age_s") }.max() ?? 0)

        let w = try db.query(
            """
            SELECT count(*) FILTER (WHERE alive) AS alive, count(*) FILTER (WHERE NOT alive AND state <> 'stopped') AS
                stale FROM worker_health
            """)[0]
        for s in ["alive", "stale"] {
            gauge("squeeze_workers", "Registered workers: alive (heartbeat within 60 s) or stale.", [("status", s)])
                .set(w.double(s) ?? 0)
        }

        try countFinished(db)
        let bytes = try db.query("SELECT coalesce(sum(bytes), 0) AS b FROM job_artifact_files")[0].int64("b") ?? 0
        let counter = registry.makeCounter(
            descriptor: Self.name("squeeze_artifact_bytes_total", "Bytes of published artifacts."))
        counter.increment(by: max(0, bytes - (artifactBytes ?? 0)))
        artifactBytes = bytes
        return registry.emitToString()
    }

    /// Finished-job counters by state and the duration/wait histograms, from jobs finished since the last scrape.
    private func countFinished(_ db: PostgresConnection) throws {
        let totals = try db.query(
            "SELECT state, count(*) AS n FROM job_summary WHERE finished_at IS NOT NULL GROUP BY state")
        var now: [String: Int64] = [:]
        for r in totals { now[r.text("state") ?? ""] = r.int64("n") ?? 0 }
        for s in Self.finishedStates {
            let c = registry.makeCounter(
                descriptor: Self.name("squeeze_jobs_finished_total", "Jobs that reached a final state."),
                labels: [("state", s)])
            c.increment(by: max(0, (now[s] ?? 0) - (finishedTotals[s] ?? 0)))
        }
        finishedTotals = now
        for kind in ["compress", "noop"] { _ = durationHistogram(kind) }
        _ = waitHistogram()
        while true {
            let rows = try db.query(
                """
                SELECT job_id, kind, finished_at::text AS at, run_s, wait_s FROM job_summary
                WHERE finished_at IS NOT NULL AND finished_at < now() - interval '5 seconds'
                  AND ($1::timestamptz IS NULL OR (finished_at, job_id) > ($1::timestamptz, $2::uuid))
                ORDER BY finished_at, job_id LIMIT 20000
                """, [mark?.at, mark?.id])
            for r in rows {
                let kind = r.text("kind") ?? "?"
                if let run = r.double("run_s") { durationHistogram(kind).record(run) }
                if let wait = r.double("wait_s") { waitHistogram().record(wait) }
            }
            guard let last = rows.last else { break }
            mark = (last.text("at") ?? "", last.text("job_id") ?? "")
            if rows.count < 20000 { break }
        }
    }
}
