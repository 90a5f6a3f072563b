import CoreMetrics
import Foundation

/// What a worker reports through swift-metrics; `squeeze worker --metrics-listen` exports it in
/// Prometheus format (otherwise swift-metrics' no-op backend drops it). Made after the backend is
/// bootstrapped: handlers are bound when a metric is created.
struct WorkerMetrics {
    let jobsRunning = Gauge(label: "squeeze_worker_jobs_running")
    let unitsDone = Counter(label: "squeeze_worker_units_done_total")
    let claimLatency = CoreMetrics.Timer(label: "squeeze_worker_claim_latency_seconds")
    let claims = Counter(label: "squeeze_worker_claims_total")
    let leaseRenewFailures = Counter(label: "squeeze_worker_lease_renew_failures_total")

    /// Jobs this worker ended, by outcome (succeeded, failed, retry, dead, cancelled, released, lost).
    func finished(_ outcome: String) {
        Counter(label: "squeeze_worker_jobs_finished_total", dimensions: [("outcome", outcome)]).increment()
    }
}
