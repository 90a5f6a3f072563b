import Foundation
import Queue

/// The supervisor thread: renews leases every lease/3, reads cancel flags back, heartbeats the
/// worker row, runs reconciler passes and disk sweeps. It owns its store (its own PostgreSQL
/// connection).
final class LeaseSupervisor: @unchecked Sendable {
    private unowned let worker: Worker
    private let store: SupervisorStore
    private let done = NSCondition()
    private var stopped = false
    private var finished = false

    init(worker: Worker, store: SupervisorStore? = nil) {
        self.worker = worker
        self.store = store ?? PostgresSupervisorStore(url: worker.config.databaseURL)
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
        let cfg = worker.config
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
        let cfg = worker.config
        let jobs = worker.active.all
        do {
            let at = Date()
            try store.heartbeat(
                worker: cfg.id, state: worker.stop.isSet ? .draining : worker.canClaim ? .running : .disconnected)
            let held = try store.renew(jobs.map { ($0.job.id, $0.job.attempt) }, leaseSeconds: cfg.leaseSeconds)
            for j in jobs {
                if let cancel = held[j.job.id] {
                    j.renewed(leaseSeconds: cfg.leaseSeconds, at: at, cancel: cancel)
                } else if !j.completing {
                    worker.log.warning(
                        "lease lost", ("job_id", j.job.id.uuidString.lowercased()), ("attempt", String(j.job.attempt)))
                    j.markLost()
                }
            }
            return true
        } catch {
            store.reset()
            worker.metrics.leaseRenewFailures.increment()
            worker.log.warning("lease renewal failed", ("error", String(describing: error)))
            return false
        }
    }

    /// One reconciler pass: reaps expired leases and re-pushes queued jobs Redis lost.
    func reconcile(fullSweep: Bool) {
        do {
            let r = try store.reconcile(fullSweep: fullSweep)
            if !r.requeued.isEmpty || !r.dead.isEmpty {
                worker.log.info(
                    "reconciler reaped expired leases", ("requeued", String(r.requeued.count)),
                    ("dead", String(r.dead.count)))
            }
            try worker.pushRedis.push(r.toPush)
        } catch {
            store.reset()
            worker.log.warning("reconciler pass failed", ("error", String(describing: error)))
        }
    }

    /// Removes abandoned staging and finished jobs' checkpoints (see `DiskSweeper`).
    func sweepDisk() {
        do {
            let r = try DiskSweeper(publisher: worker.publisher, host: ArtifactPublisher.hostTag).sweep {
                try store.states($0)
            }
            if r.staging + r.work > 0 {
                worker.log.info(
                    "swept abandoned files", ("staging_dirs", String(r.staging)), ("work_dirs", String(r.work)),
                    ("bytes", String(r.bytes)))
            }
        } catch {
            store.reset()
            worker.log.warning("disk sweep failed", ("error", String(describing: error)))
        }
    }
}
