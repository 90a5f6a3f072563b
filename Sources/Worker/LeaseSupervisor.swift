import Foundation
import Queue

/// The supervisor thread: renews leases every lease/3, reads cancel flags back, heartbeats the
/// worker row, runs reconciler passes and disk sweeps. It owns its store (its own PostgreSQL
/// connection) and is given the running jobs, where hints go and the worker's state to report.
final class LeaseSupervisor: @unchecked Sendable {
    /// The intervals it keeps and the worker row it heartbeats.
    struct Settings {
        var workerID: String
        var leaseSeconds: Double
        var reconcileSeconds: Double
        var sweepSeconds: Double

        init(_ c: Worker.Configuration) {
            (workerID, leaseSeconds, reconcileSeconds, sweepSeconds) =
                (c.id, c.leaseSeconds, c.reconcileSeconds, c.sweepSeconds)
        }
    }

    private let settings: Settings
    private let active: ActiveJobs
    private let store: SupervisorStore
    private let hints: HintSink
    private let publisher: ArtifactPublisher
    private let log: Log
    private let metrics: WorkerMetrics
    /// The state the heartbeat reports (running, draining, disconnected).
    private let state: () -> WorkerState
    private let done = NSCondition()
    private var stopped = false
    private var finished = false

    init(
        settings: Settings, active: ActiveJobs, store: SupervisorStore, hints: HintSink, publisher: ArtifactPublisher,
        log: Log, metrics: WorkerMetrics, state: @escaping () -> WorkerState
    ) {
        self.settings = settings
        self.active = active
        self.store = store
        self.hints = hints
        self.publisher = publisher
        self.log = log
        self.metrics = metrics
        self.state = state
    }

    func stop() {
        done.lock()
        stopped = true
        done.broadcast()
        // bounded: a stuck renewal must not block exit
        if !finished { _ = done.wait(until: Date().addingTimeInterval(5)) }
        done.unlock()
    }

    private func sleep(_ s: Double) -> Bool {
        done.lock()
        defer { done.unlock() }
        if stopped { return false }
        _ = done.wait(until: Date().addingTimeInterval(s))
        return !stopped
    }

    func run() {
        let cfg = settings
        var lastRenew = Date.distantPast, lastReconcile = Date.distantPast, lastSweep = Date.distantPast
        var passes = 0
        let tick = min(cfg.leaseSeconds / 3, cfg.reconcileSeconds, 1.0)
        repeat {
            let now = Date()
            if now.timeIntervalSince(lastRenew) >= cfg.leaseSeconds / 3, renew() { lastRenew = now }
            if now.timeIntervalSince(lastReconcile) >= cfg.reconcileSeconds {
                lastReconcile = now
                passes += 1
                reconcile(fullSweep: passes % 5 == 1)
            }
            if now.timeIntervalSince(lastSweep) >= cfg.sweepSeconds {
                lastSweep = now
                sweepDisk()
            }
        } while sleep(tick)
        store.reset()
        done.lock()
        finished = true
        done.broadcast()
        done.unlock()
    }

    /// Heartbeats the worker row and renews the leases of running jobs; a job whose lease is
    /// gone is marked lost, unless it is writing its completion (which may just have made it
    /// not running; that write is fenced and reports a lost lease itself). False when the
    /// database could not be reached.
    func renew() -> Bool {
        let cfg = settings
        let jobs = active.all
        do {
            let at = Date()
            try store.heartbeat(worker: cfg.workerID, state: state())
            let held = try store.renew(jobs.map { ($0.job.id, $0.job.attempt) }, leaseSeconds: cfg.leaseSeconds)
            for j in jobs {
                if let cancel = held[j.job.id] {
                    j.renewed(leaseSeconds: cfg.leaseSeconds, at: at, cancel: cancel)
                } else if !j.completing {
                    log.warning(
                        "lease lost", ("job_id", j.job.id.uuidString.lowercased()), ("attempt", String(j.job.attempt)))
                    j.markLost()
                }
            }
            return true
        } catch {
            store.reset()
            metrics.leaseRenewFailures.increment()
            log.warning("lease renewal failed", ("error", String(describing: error)))
            return false
        }
    }

    /// One reconciler pass: reaps expired leases and re-pushes queued jobs Redis lost.
    func reconcile(fullSweep: Bool) {
        do {
            let r = try store.reconcile(fullSweep: fullSweep)
            if !r.requeued.isEmpty || !r.dead.isEmpty {
                log.info(
                    "reconciler reaped expired leases", ("requeued", String(r.requeued.count)),
                    ("dead", String(r.dead.count)))
            }
            try hints.push(r.toPush)
        } catch {
            store.reset()
            log.warning("reconciler pass failed", ("error", String(describing: error)))
        }
    }

    /// Removes abandoned staging and finished jobs' checkpoints (see `DiskSweeper`).
    func sweepDisk() {
        do {
            let r = try DiskSweeper(publisher: publisher, host: ArtifactPublisher.hostTag).sweep {
                try store.states($0)
            }
            if r.staging + r.work > 0 {
                log.info(
                    "swept abandoned files", ("staging_dirs", String(r.staging)), ("work_dirs", String(r.work)),
                    ("bytes", String(r.bytes)))
            }
        } catch {
            store.reset()
            log.warning("disk sweep failed", ("error", String(describing: error)))
        }
    }
}
