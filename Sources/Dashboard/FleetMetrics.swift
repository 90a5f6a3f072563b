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
        let store = JobStore()
        let fleet = try store.fleetCounts(db)
        for s in Self.states {
            gauge("squeeze_jobs", "Jobs in each state.", [("state", s)]).set(Double(fleet.byState[s] ?? 0))
        }

        var current: [String: Double] = [:]
        for b in fleet.backlog { current[String(b.priority)] = Double(b.jobs) }
        seenPriorities.formUnion(current.keys)
        for p in seenPriorities {
            gauge("squeeze_queue_backlog", "Queued jobs by priority (the autoscaling signal).", [("priority", p)]).set(
                current[p] ?? 0)
        }
        gauge("squeeze_queue_oldest_seconds", "Age of the oldest queued job, 0 when none.").set(
            fleet.backlog.map(\.oldestAge).max() ?? 0)

        for (status, n) in [("alive", fleet.workersAlive), ("stale", fleet.workersStale)] {
            gauge(
                "squeeze_workers", "Registered workers: alive (heartbeat within 60 s) or stale.", [("status", status)]
            )
            .set(Double(n))
        }

        try countFinished(db, store, totals: fleet.finishedByState)
        let counter = registry.makeCounter(
            descriptor: Self.name("squeeze_artifact_bytes_total", "Bytes of published artifacts."))
        counter.increment(by: max(0, fleet.artifactBytes - (artifactBytes ?? 0)))
        artifactBytes = fleet.artifactBytes
        return registry.emitToString()
    }

    /// Finished-job counters by state and the duration/wait histograms, from jobs finished since the last scrape.
    private func countFinished(_ db: PostgresConnection, _ store: JobStore, totals now: [String: Int64]) throws {
        for s in Self.finishedStates {
            let c = registry.makeCounter(
                descriptor: Self.name("squeeze_jobs_finished_total", "Jobs that reached a final state."),
                labels: [("state", s)])
            c.increment(by: max(0, (now[s] ?? 0) - (finishedTotals[s] ?? 0)))
        }
        finishedTotals = now
        for kind in ["compress", "noop"] { _ = durationHistogram(kind) }
        _ = waitHistogram()
        let page = 20000
        while true {
            let jobs = try store.finishedJobs(db, after: mark, limit: page)
            for j in jobs {
                if let run = j.runSeconds { durationHistogram(j.kind).record(run) }
                if let wait = j.waitSeconds { waitHistogram().record(wait) }
            }
            guard let last = jobs.last else { break }
            mark = (last.finishedAt, last.id)
            if jobs.count < page { break }
        }
    }
}
