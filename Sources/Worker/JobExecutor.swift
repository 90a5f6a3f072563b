import Compute
import Foundation
import Queue

/// Runs one claimed job to its end state. Every write is fenced by the claim's attempt.
struct JobExecutor {
    /// What every job of a worker uses: its options, the fenced attempt writes, the artifact root,
    /// where hints go, the metrics, the worker's stop flag and its log.
    struct Collaborators {
        let config: Worker.Configuration
        let attempts: AttemptStore
        let publisher: ArtifactPublisher
        let hints: HintSink
        let metrics: WorkerMetrics
        let stop: StopFlag
        let log: Log
    }

    let with: Collaborators
    let active: ActiveJob
    var job: ClaimedJob { active.job }
    var cfg: Worker.Configuration { with.config }
    var attempts: AttemptStore { with.attempts }
    var publisher: ArtifactPublisher { with.publisher }
    var metrics: WorkerMetrics { with.metrics }
    var retry: Retrier { Retrier(log: with.log, stop: with.stop) }

    init(_ with: Collaborators, active: ActiveJob) {
        self.with = with
        self.active = active
    }

    var log: Log {
        with.log.with((LogKey.jobID, job.id.uuidString.lowercased()), (LogKey.attempt, String(job.attempt)))
    }

    /// Deadline for retrying fenced writes: past the lease, another worker may own the job.
    var writeDeadline: Date { Date().addingTimeInterval(cfg.leaseSeconds * 0.8) }

    func execute() {
        log.info("job started", ("kind", job.kind))
        do {
            switch JobKind(rawValue: job.kind) {
            case .noop: try runNoop()
            case .compress: try runCompress()
            case nil: throw ComputeError(.invalidRecipe, "unknown job kind \(job.kind)")
            }
            metrics.finished("succeeded")
        } catch JobStop.cancelled {
            log.info("job cancelled")
            metrics.finished("cancelled")
            _ = try? retry("mark cancelled", deadline: writeDeadline) {
                try attempts.markCancelled(job: job.id, attempt: job.attempt)
            }
        } catch JobStop.draining {
            log.info("job released for another worker (draining)")
            release(reason: "worker draining")
            metrics.finished("released")
        } catch JobStop.leaseLost {
            log.warning("job abandoned: lease lost; nothing published")
            metrics.finished("lost")
        } catch {
            let c = ErrorClassifier.classify(error)
            let retryNumber = job.attempt - job.releases
            let backoff = Backoff(base: cfg.retryBaseSeconds).delay(retryNumber)
            do {
                let outcome = try retry("record failure", deadline: writeDeadline) {
                    try attempts.fail(
                        job: job.id, attempt: job.attempt, code: c.code, message: c.message,
                        permanent: c.permanent, backoffSeconds: backoff)
                }
                log.warning("job failed", ("error", c.message), ("outcome", outcome?.rawValue ?? "fenced"))
                metrics.finished(outcome.map { "\($0)" } ?? "lost")
            } catch {
                log.error("could not record failure; the lease will expire", ("error", String(describing: error)))
            }
        }
    }

    /// Throws if the job must stop now: lease lost, cancel requested, or the worker is draining.
    func checkContinue() throws {
        if active.leaseLost { throw JobStop.leaseLost }
        if active.cancelRequested { throw JobStop.cancelled }
        if with.stop.isSet { throw JobStop.draining }
    }

    /// Sleeps in 50 ms slices, stopping early when the job must stop.
    func pause(ms: Int) throws {
        var slept = 0
        while slept < ms {
            try checkContinue()
            let step = min(50, ms - slept)
            Thread.sleep(forTimeInterval: Double(step) / 1000)
            slept += step
        }
        try checkContinue()
    }

    private func runNoop() throws {
        let spec =
            (try? JSONDecoder().decode(NoopSpec.self, from: Data(job.recipeJSON.utf8)))
            ?? NoopSpec(sleepMS: 0, failTimes: 0)
        let (sleepMS, failTimes) = (spec.sleepMS, spec.failTimes)
        try pause(ms: sleepMS)
        if job.attempt - job.releases <= failTimes {
            throw NoopFailure(attempt: job.attempt - job.releases, of: failTimes)
        }
        try finish(outputPath: nil, artifacts: [])
    }

    /// A fenced write: retried on transient errors until the lease could have passed; a false
    /// result (zero rows) means another attempt owns the job now.
    func fenced(_ what: String, _ body: (AttemptStore) throws -> Bool) throws {
        let ok = try retry(what, deadline: writeDeadline) { try body(attempts) }
        if !ok {
            active.markLost()
            throw JobStop.leaseLost
        }
    }

    /// Gives the job back to the queue at once and pushes its hint.
    func release(reason: String) {
        do {
            let r = try retry("release", deadline: Date().addingTimeInterval(cfg.leaseSeconds)) {
                try attempts.release(job: job.id, attempt: job.attempt, reason: reason)
            }
            if let r { try? with.hints.push([(r.id, r.score)]) }
        } catch {
            log.warning("release failed; the lease will expire", ("error", String(describing: error)))
        }
    }

    func finish(outputPath: String?, artifacts: [ArtifactRecord]) throws {
        active.markCompleting()
        var sent = false
        let ok = try retry("complete", deadline: writeDeadline) { () -> Bool in
            if sent {
                // A retry after a lost reply: the first COMMIT may have landed.
                if let now = try attempts.stateAndAttempt(job: job.id), now.state == JobState.succeeded.rawValue,
                    now.attempt == job.attempt
                {
                    return true
                }
            }
            sent = true
            return try attempts.complete(
                job: job.id, attempt: job.attempt, outputPath: outputPath, artifacts: artifacts)
        }
        if !ok {
            active.markLost()
            throw JobStop.leaseLost
        }
    }
}

extension LayerMetricRecord {
    /// The `layer_metrics` row of a unit's metrics.
    init(_ u: UnitMetrics) {
        self.init(
            tensor: u.tensor, unitIndex: u.index, dtype: u.dtype, numel: Int64(u.numel), sparsity: u.sparsity,
            bits: u.bits,
            relativeError: u.relativeError, elapsedMS: u.elapsedMS, bytesIn: Int64(u.bytesIn),
            bytesOut: Int64(u.bytesOut),
            rank: u.rank, outputError: u.outputError)
    }
}
