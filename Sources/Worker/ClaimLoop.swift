import Compute
import Foundation
import Queue

/// The worker's main loop: waits for room under `--concurrency`, pops a hint from Redis, claims
/// the job in PostgreSQL and starts it on its own thread. Runs until stopped, idle (with
/// `exitWhenIdle`), or refused by Redis for good (returned as the worker's fatal error).
final class ClaimLoop {
    private let config: Worker.Configuration
    private let log: Log
    private let stop: StopFlag
    private let active: ActiveJobs
    private let jobDB: SharedPostgres
    private let store: JobStore
    private let metrics: WorkerMetrics
    private let hints: HintSink
    /// Told whether Redis answers (the heartbeat reports `disconnected` while it does not).
    private let reachable: (Bool) -> Void
    /// Runs a claimed job to its end (on the job's own thread).
    private let runJob: (ActiveJob) -> Void
    private var popRedis: RedisConnection?
    private var popFailures = 0
    private var idleSince: Date?
    /// Jobs too big for this worker's `--max-memory`, ignored here until the date.
    private var skipUntil = [UUID: Date]()

    init(
        config: Worker.Configuration, log: Log, stop: StopFlag, active: ActiveJobs, jobDB: SharedPostgres,
        store: JobStore, metrics: WorkerMetrics, hints: HintSink, reachable: @escaping (Bool) -> Void,
        run: @escaping (ActiveJob) -> Void
    ) {
        (self.config, self.log, self.stop, self.active, self.jobDB) = (config, log, stop, active, jobDB)
        (self.store, self.metrics, self.hints, self.reachable, runJob) = (store, metrics, hints, reachable, run)
    }

    /// What one pop gave.
    private enum Hint {
        case jobs([UUID]), nothing, retry, fatal(Error)
    }

    func run() -> Error? {
        while !stop.isSet {
            guard active.waitForRoom(limit: config.concurrency, timeout: 1) else { continue }
            if stop.isSet { break }
            // Hints for every free slot, claimed in one statement.
            switch pop(max(1, config.concurrency - active.count)) {
            case .fatal(let e):
                stop.set()
                return e
            case .retry: continue
            case .nothing:
                if idleAndDone() { return nil }
            case .jobs(let ids):
                idleSince = nil
                let now = Date()
                let wanted = ids.filter { skipUntil[$0].map { $0 <= now } ?? true }
                for job in claim(wanted) { start(job) }
            }
        }
        return nil
    }

    private func pop(_ max: Int) -> Hint {
        do {
            if popRedis == nil { popRedis = try RedisConnection(url: config.redisURL, timeout: 5) }
            let ids = try RedisTransport(redis: popRedis!, prefix: config.redisPrefix).pop(max: max, timeout: 1)
            popFailures = 0
            reachable(true)
            return ids.isEmpty ? .nothing : .jobs(ids)
        } catch {
            popRedis = nil
            if let e = error as? RedisError, !e.isTransient {
                // A password changed or a database removed under a running worker: no retry will help.
                log.error("redis refused the worker; stopping", ("error", String(describing: e)))
                return .fatal(WorkerStartupError(service: "Redis", underlying: e))
            }
            popFailures += 1
            reachable(false)
            log.warning("redis unavailable; retrying", ("error", String(describing: error)))
            Thread.sleep(forTimeInterval: min(5, 0.2 * pow(2, Double(min(popFailures, 5)))))
            return .retry
        }
    }

    /// With `exitWhenIdle`: true once nothing ran here for 1.5 s and nothing is due soon anywhere.
    private func idleAndDone() -> Bool {
        guard config.exitWhenIdle, active.count == 0 else { return false }
        let since = idleSince ?? Date()
        idleSince = since
        guard Date().timeIntervalSince(since) >= 1.5,
            (try? jobDB.with { try store.isIdle($0, horizon: config.idleHorizonSeconds) }) == true
        else { return false }
        log.info("idle: exiting")
        return true
    }

    /// Claims hinted jobs in one statement; leaves out those taken, cancelled, not due, or too big for this
    private func claim(_ ids: [UUID]) -> [ClaimedJob] {
        guard !ids.isEmpty else { return [] }
        let claimed: [ClaimedJob]
        let began = DispatchTime.now().uptimeNanoseconds
        defer { metrics.claimLatency.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - began)) }
        do {
            claimed = try jobDB.with {
                try store.claim(
                    $0, ids: ids, workerID: config.id, leaseSeconds: config.leaseSeconds, maxMemory: config.maxMemory,
                    blasCore: Manifest.blasCore)
            }
        } catch {
            // The hints are lost; the reconciler re-pushes queued jobs.
            log.warning(
                "claim failed", ("job_ids", ids.map { $0.uuidString.lowercased() }.joined(separator: ",")),
                ("error", String(describing: error)))
            jobDB.close()
            Thread.sleep(forTimeInterval: 0.5)
            return []
        }
        if let max = config.maxMemory {
            let got = Set(claimed.map(\.id))
            for id in ids where !got.contains(id) {
                guard let big = try? jobDB.with({ try store.tooBig($0, id: id, maxMemory: max) }) else {
                    continue
                }
                // Too big for this worker: put the hint back for a bigger one and ignore it here for a while.
                let now = Date()
                if skipUntil.count > 10_000 { skipUntil = skipUntil.filter { $0.value > now } }
                skipUntil[id] = now.addingTimeInterval(30)
                try? hints.push([(big.id, big.score)])
                log.debug("left a job for a bigger worker", ("job_id", id.uuidString.lowercased()))
            }
        }
        return claimed
    }

    /// Runs a claimed job on a thread of its own (8 MiB stack).
    private func start(_ job: ClaimedJob) {
        let aj = ActiveJob(job: job, leaseSeconds: config.leaseSeconds)
        active.add(aj)
        metrics.claims.increment()
        metrics.jobsRunning.record(active.count)
        let (run, active, metrics) = (runJob, self.active, self.metrics)
        let t = Thread {
            run(aj)
            active.remove(job.id)
            metrics.jobsRunning.record(active.count)
        }
        t.name = "squeeze-job"
        t.stackSize = 8 << 20
        t.start()
    }
}
