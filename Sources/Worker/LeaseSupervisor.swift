import Foundation
import Queue

/// The supervisor's two threads. The lease thread heartbeats the worker row, renews leases every
/// lease/3 and reads cancel flags back; the housekeeping thread runs reconciler passes and disk
/// sweeps. The lease thread's store has a PostgreSQL connection of its own, so a slow reconciler
/// pass or sweep never delays a renewal; the housekeeping store uses the one the worker's other
/// threads share. It is given the running jobs, where hints go and the worker's state to report.
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
    /// Heartbeats and renewals.
    private let leaseStore: SupervisorStore
    /// Reconciler passes and the disk sweeper's job states.
    private let store: SupervisorStore
    private let hints: HintSink
    private let publisher: ArtifactPublisher
    private let log: Log
    private let metrics: WorkerMetrics
    /// The state the heartbeat reports (running, draining, disconnected).
    private let state: () -> WorkerState
    private let done = NSCondition()
    private var stopped = false
    private var running = 0

    init(
        settings: Settings, active: ActiveJobs, stores: (leases: SupervisorStore, housekeeping: SupervisorStore),
        hints: HintSink, publisher: ArtifactPublisher, log: Log, metrics: WorkerMetrics,
        state: @escaping () -> WorkerState
    ) {
        self.settings = settings
        self.active = active
        self.leaseStore = stores.leases
        self.store = stores.housekeeping
        self.hints = hints
        self.publisher = publisher
        self.log = log
        self.metrics = metrics
        self.state = state
    }

    /// Starts the lease thread and the housekeeping thread.
    func start() {
        done.withLock { running = 2 }
        let leases = Thread { [self] in
            runLeases()
            finished()
        }
        leases.name = "squeeze-leases"
        leases.start()
        let housekeeping = Thread { [self] in
            runHousekeeping()
            finished()
        }
        housekeeping.name = "squeeze-supervisor"
        housekeeping.start()
    }

    func stop() {
        done.lock()
        stopped = true
        done.broadcast()
        // bounded: a stuck renewal must not block exit
        let until = Date().addingTimeInterval(5)
        while running > 0, done.wait(until: until) {}
        done.unlock()
    }

    private func sleep(_ s: Double) -> Bool {
        done.lock()
        defer { done.unlock() }
        if stopped { return false }
        _ = done.wait(until: Date().addingTimeInterval(s))
        return !stopped
    }

    private func finished() {
        done.lock()
        running -= 1
        done.broadcast()
        done.unlock()
    }

    /// Renews every lease/3, timed from the start of the last successful renewal (so a slow
    /// round trip does not stretch the period); after a failure, retries within a second.
    func runLeases() {
        let period = settings.leaseSeconds / 3
        repeat {
            let started = Date()
            let wait = renew() ? period - Date().timeIntervalSince(started) : min(period, 1.0)
            if wait <= 0 { continue }
            if !sleep(wait) { break }
        } while !isStopped
        leaseStore.reset()
    }

    /// Reconciler passes every `reconcileSeconds` (a full sweep every fifth) and disk sweeps
    /// every `sweepSeconds`, both at once on start.
    func runHousekeeping() {
        let cfg = settings
        var lastReconcile = Date.distantPast
        var lastSweep = Date.distantPast
        var passes = 0
        repeat {
            let now = Date()
            if now.timeIntervalSince(lastReconcile) >= cfg.reconcileSeconds {
                lastReconcile = now
                passes += 1
                reconcile(fullSweep: passes % 5 == 1)
            }
            if now.timeIntervalSince(lastSweep) >= cfg.sweepSeconds {
                lastSweep = now
                sweepDisk()
            }
        } while sleep(min(cfg.reconcileSeconds, 1.0))
        // Its connection is the worker's shared one, which the worker goes on using: not closed here.
    }

    private var isStopped: Bool { done.withLock { stopped } }

    /// Heartbeats the worker row and renews the leases of running jobs; a job whose lease is
    /// gone is marked lost, unless it is writing its completion (which may just have made it
    /// not running; that write is fenced and reports a lost lease itself). False when the
    /// database could not be reached.
    func renew() -> Bool {
        let cfg = settings
        let jobs = active.all
        do {
            let at = Date()
            try leaseStore.heartbeat(worker: cfg.workerID, state: state())
            let held = try leaseStore.renew(jobs.map { ($0.job.id, $0.job.attempt) }, leaseSeconds: cfg.leaseSeconds)
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
            leaseStore.reset()
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
