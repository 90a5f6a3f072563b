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
        let store = JobStore()
        let log = worker.log
        var lastRenew = Date.distantPast
        var lastReconcile = Date.distantPast
        var lastSweep = Date.distantPast
        let sweeper = DiskSweeper(publisher: worker.publisher, host: ArtifactPublisher.hostTag)
        var passes = 0
        let tick = min(cfg.leaseSeconds / 3, cfg.reconcileSeconds, 1.0)
        repeat {
            let now = Date()
            if now.timeIntervalSince(lastRenew) >= cfg.leaseSeconds / 3 {
                let jobs = worker.active.all
                do {
                    let at = Date()
                    let held = try db.with { c -> [UUID: Bool] in
                        try WorkerRegistry().heartbeat(c, id: cfg.id, state: worker.stop.isSet ? "draining" : worker.canClaim ? "running" : "disconnected")
                        return try store.renew(c, leases: jobs.map { ($0.job.id, $0.job.attempt) }, leaseSeconds: cfg.leaseSeconds)
                    }
                    for j in jobs {
                        if let cancel = held[j.job.id] {
                            j.renewed(leaseSeconds: cfg.leaseSeconds, at: at, cancel: cancel)
                        } else {
                            log.warning("lease lost", ("job_id", j.job.id.uuidString.lowercased()), ("attempt", String(j.job.attempt)))
                            j.markLost()
                        }
                    }
                    lastRenew = now
                } catch {
                    db.close()
                    log.warning("lease renewal failed", ("error", String(describing: error)))
                }
            }
            if now.timeIntervalSince(lastReconcile) >= cfg.reconcileSeconds {
                lastReconcile = now
                passes += 1
                do {
                    let r = try db.with { try store.reconcile($0, fullSweep: passes % 5 == 1) }
                    if !r.requeued.isEmpty || !r.dead.isEmpty {
                        log.info("reconciler reaped expired leases", ("requeued", String(r.requeued.count)), ("dead", String(r.dead.count)))
                    }
                    try worker.pushRedis.push(r.toPush)
                } catch {
                    db.close()
                    log.warning("reconciler pass failed", ("error", String(describing: error)))
                }
            }
            if now.timeIntervalSince(lastSweep) >= cfg.sweepSeconds {
                lastSweep = now
                do {
                    let r = try sweeper.sweep { ids in try db.with { try store.states($0, jobs: ids) } }
                    if r.staging + r.work > 0 {
                        log.info("swept abandoned files", ("staging_dirs", String(r.staging)), ("work_dirs", String(r.work)),
                                 ("bytes", String(r.bytes)))
                    }
                } catch {
                    db.close()
                    log.warning("disk sweep failed", ("error", String(describing: error)))
                }
            }
        } while sleep(tick)
        db.close()
        done.lock()
        finished = true
        done.broadcast()
        done.unlock()
    }
}
