import Compute
import Foundation
import Queue

/// Runs one claimed job to its end state. Every write is fenced by the claim's attempt.
struct JobExecutor {
    let worker: Worker
    let active: ActiveJob
    var job: ClaimedJob { active.job }
    var cfg: Worker.Configuration { worker.config }

    var log: Log {
        worker.log.with((LogKey.jobID, job.id.uuidString.lowercased()), (LogKey.attempt, String(job.attempt)))
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
            worker.metrics.finished("succeeded")
        } catch JobStop.cancelled {
            log.info("job cancelled")
            worker.metrics.finished("cancelled")
            _ = try? worker.withRetry("mark cancelled", deadline: writeDeadline) {
                try worker.attempts.markCancelled(job: job.id, attempt: job.attempt)
            }
        } catch JobStop.draining {
            log.info("job released for another worker (draining)")
            worker.release(job, reason: "worker draining")
            worker.metrics.finished("released")
        } catch JobStop.leaseLost {
            log.warning("job abandoned: lease lost; nothing published")
            worker.metrics.finished("lost")
        } catch {
            let c = ErrorClassifier.classify(error)
            let retryNumber = job.attempt - job.releases
            let backoff = Backoff(base: cfg.retryBaseSeconds).delay(retryNumber)
            do {
                let outcome = try worker.withRetry("record failure", deadline: writeDeadline) {
                    try worker.attempts.fail(
                        job: job.id, attempt: job.attempt, code: c.code, message: c.message,
                        permanent: c.permanent, backoffSeconds: backoff)
                }
                log.warning("job failed", ("error", c.message), ("outcome", outcome?.rawValue ?? "fenced"))
                worker.metrics.finished(outcome.map { "\($0)" } ?? "lost")
            } catch {
                log.error("could not record failure; the lease will expire", ("error", String(describing: error)))
            }
        }
    }

    /// Throws if the job must stop now: lease lost, cancel requested, or the worker is draining.
    func checkContinue() throws {
        if active.leaseLost { throw JobStop.leaseLost }
        if active.cancelRequested { throw JobStop.cancelled }
        if worker.stop.isSet { throw JobStop.draining }
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
        let ok = try worker.withRetry(what, deadline: writeDeadline) { try body(worker.attempts) }
        if !ok {
            active.markLost()
            throw JobStop.leaseLost
        }
    }

    func finish(outputPath: String?, artifacts: [ArtifactRecord]) throws {
        active.markCompleting()
        var sent = false
        let ok = try worker.withRetry("complete", deadline: writeDeadline) { () -> Bool in
            if sent {
                // A retry after a lost reply: the first COMMIT may have landed.
                if let now = try worker.attempts.stateAndAttempt(job: job.id), now.state == JobState.succeeded.rawValue,
                    now.attempt == job.attempt
                {
                    return true
                }
            }
            sent = true
            return try worker.attempts.complete(
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
