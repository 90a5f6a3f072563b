import Foundation
import Queue

/// The supervisor thread: renews leases every lease/3, reads cancel flags back, heartbeats the
/// worker row, and runs reconciler passes. It owns its own PostgreSQL connection.
final class LeaseSupervisor: @unchecked Sendable {
    private unowned let worker: Worker
    private let done = NSCondition()
    private var stopped = false
    private var finished = false

    init(worker: Worker) { self.worker = worker }

    func stop() {
        done.lock()
        stopped = true
        done.broadcast()
        if !finished { _ = done.wait(until: Date().addingTimeInterval(5)) }  // bounded: a stuck renewal must not block exit
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
        let db = SharedPostgres(url: cfg.databaseURL)
        var lastRenew = Date.distantPast, lastReconcile = Date.distantPast, lastSweep = Date.distantPast
        var passes = 0
        let tick = min(cfg.leaseSeconds / 3, cfg.reconcileSeconds, 1.0)
        repeat {
            let now = Date()
            if now.timeIntervalSince(lastRenew) >= cfg.leaseSeconds / 3, renew(db) { lastRenew = now }
            if now.timeIntervalSince(lastReconcile) >= cfg.reconcileSeconds {
                lastReconcile = now
                passes += 1
                reconcile(db, fullSweep: passes % 5 == 1)
            }
            if now.timeIntervalSince(lastSweep) >= cfg.sweepSeconds {
                lastSweep = now
                sweepDisk(db)
            }
        } while sleep(tick)
        db.close()
        done.lock()
        finished = true
        done.broadcast()
        done.unlock()
    }

    /// Heartbeats the worker row and renews the leases of running jobs; a job whose lease is
    /// gone is marked lost. False when the database could not be reached.
    private func renew(_ db: SharedPostgres) -> Bool {
        let cfg = worker.config
        let jobs = worker.active.all
        do {
            let at = Date()
            let held = try db.with { c -> [UUID: Bool] in
                try WorkerRegistry().heartbeat(c, id: cfg.id, state: worker.stop.isSet ? .draining : worker.canClaim ? .running : .disconnected)
                return try JobStore().renew(c, leases: jobs.map { ($0.job.id, $0.job.attempt) }, leaseSeconds: cfg.leaseSeconds)
            }
            for j in jobs {
                if let cancel = held[j.job.id] {
                    j.renewed(leaseSeconds: cfg.leaseSeconds, at: at, cancel: cancel)
                } else {
                    worker.log.warning("lease lost", ("job_id", j.job.id.uuidString.lowercased()), ("attempt", String(j.job.attempt)))
                    j.markLost()
                }
            }
            return true
        } catch {
            db.close()
            worker.log.warning("lease renewal failed", ("error", String(describing: error)))
            return false
        }
    }

    /// One reconciler pass: reaps expired leases and re-pushes queued jobs Redis lost.
    private func reconcile(_ db: SharedPostgres, fullSweep: Bool) {
        do {
            let r = try db.with { try JobStore().reconcile($0, fullSweep: fullSweep) }
            if !r.requeued.isEmpty || !r.dead.isEmpty {
                worker.log.info("reconciler reaped expired leases", ("requeued", String(r.requeued.count)), ("dead", String(r.dead.count)))
            }
            try worker.pushRedis.push(r.toPush)
        } catch {
            db.close()
            worker.log.warning("reconciler pass failed", ("error", String(describing: error)))
        }
    }

    /// Removes abandoned staging and finished jobs' checkpoints (see `DiskSweeper`).
    private func sweepDisk(_ db: SharedPostgres) {
        do {
            let r = try DiskSweeper(publisher: worker.publisher, host: ArtifactPublisher.hostTag).sweep { ids in
                try db.with { try JobStore().states($0, jobs: ids) }
            }
            if r.staging + r.work > 0 {
                worker.log.info("swept abandoned files", ("staging_dirs", String(r.staging)), ("work_dirs", String(r.work)), ("bytes", String(r.bytes)))
            }
        } catch {
            db.close()
            worker.log.warning("disk sweep failed", ("error", String(describing: error)))
        }
    }
}
