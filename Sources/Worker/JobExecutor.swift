import Compute
import Foundation
import Queue

/// Runs one claimed job to its end state. Every write is fenced by the claim's attempt.
struct JobExecutor {
    let worker: Worker
    let active: ActiveJob
    var job: ClaimedJob { active.job }
    var cfg: Worker.Configuration { worker.config }

    private var log: Log {
        worker.log.with(("job_id", job.id.uuidString.lowercased()), ("attempt", String(job.attempt)))
    }

    /// Deadline for retrying fenced writes: past the lease, another worker may own the job.
    private var writeDeadline: Date { Date().addingTimeInterval(cfg.leaseSeconds * 0.8) }

    func execute() {
        log.info("job started", ("kind", job.kind))
        do {
            switch job.kind {
            case "noop": try runNoop()
            case "compress": try runCompress()
            default: throw ComputeError(.invalidRecipe, "unknown job kind \(job.kind)")
            }
        } catch JobStop.cancelled {
            log.info("job cancelled")
            _ = try? worker.withRetry("mark cancelled", deadline: writeDeadline) {
                try worker.jobDB.with { try worker.store.markCancelled($0, job: job.id, attempt: job.attempt) }
            }
        } catch JobStop.draining {
            log.info("job released for another worker (draining)")
            worker.release(job, reason: "worker draining")
        } catch JobStop.leaseLost {
            log.warning("job abandoned: lease lost; nothing published")
        } catch {
            let c = ErrorClassifier.classify(error)
            let retryNumber = job.attempt - job.releases
            let backoff = Backoff(base: cfg.retryBaseSeconds).delay(retryNumber)
            do {
                let outcome = try worker.withRetry("record failure", deadline: writeDeadline) {
                    try worker.jobDB.with {
                        try worker.store.fail($0, job: job.id, attempt: job.attempt, code: c.code, message: c.message,
                                              permanent: c.permanent, backoffSeconds: backoff)
                    }
                }
                log.warning("job failed", ("error", c.message), ("outcome", outcome?.rawValue ?? "fenced"))
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
    private func pause(ms: Int) throws {
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
        let spec = (try? JSONSerialization.jsonObject(with: Data(job.recipeJSON.utf8))) as? [String: Any] ?? [:]
        let sleepMS = spec["sleep_ms"] as? Int ?? 0
        let failTimes = spec["fail_times"] as? Int ?? 0
        try pause(ms: sleepMS)
        if job.attempt - job.releases <= failTimes { throw NoopFailure(attempt: job.attempt - job.releases, of: failTimes) }
        try finish(outputPath: nil, artifacts: [])
    }

    private func runCompress() throws {
        // Give the large per-job buffers back to the OS when the job ends, so a long-lived worker's
        // resident size follows its current job rather than the sum of its allocators' caches.
        defer { releaseFreeMemory() }
        let recipe = try RecipeParser.parse(job.recipeJSON)
        let model = try ModelSource(path: job.inputPath)
        try PathPolicy(roots: cfg.inputRoots).check(model: model)
        for d in recipe.datasets { try PathPolicy(roots: cfg.inputRoots).check(d) }
        let staging = try worker.publisher.prepareStaging(job: job.id, attempt: job.attempt)
        let work = try worker.publisher.prepareWorkDir(job: job.id)
        var published: String?
        do {
            let total = try model.readHeaders().reduce(0) { $0 + $1.header.tensors.count }
            try fenced("set units") { try worker.store.setUnitsTotal($0, job: job.id, attempt: job.attempt, total: total, done: 0) }
            let saved = try worker.withRetry("read checkpoints", deadline: writeDeadline) {
                try worker.jobDB.with { try worker.store.checkpoints($0, job: job.id) }
            }
            var pending: (file: String, sha256: String, bytes: Int64)?
            var restored = Set<Int>()
            let runner = RecipeRunner(model: model, recipe: recipe, threads: cfg.threads)
            let observer = RecipeRunner.Observer(checkContinue: {
                try checkContinue()
                if cfg.unitDelayMS > 0 { try pause(ms: cfg.unitDelayMS) }
            }, unitFinished: { u in
                if restored.contains(u.index) && pending == nil {
                    try fenced("restore unit") { try worker.store.unitRestored($0, job: job.id, attempt: job.attempt) }
                } else {
                    let cp = pending
                    pending = nil
                    try fenced("record unit") {
                        try worker.store.recordUnit($0, job: job.id, attempt: job.attempt, metric: LayerMetricRecord(u), checkpoint: cp)
                    }
                }
            }, restore: { index, t in
                guard let cp = saved[t.name] else { return nil }
                let path = worker.publisher.root + "/" + cp.file
                guard let f = try? InputFile(path: path, what: "checkpoint"), Int64(f.size) == cp.bytes,
                      let data = try? f.read(at: 0, count: f.size) else {
                    log.warning("checkpoint missing or truncated; recomputing", ("tensor", t.name), ("file", cp.file))
                    return nil
                }
                var h = SHA256()
                data.withUnsafeBytes { h.update($0) }
                guard h.finalizeHex() == cp.sha256 else {
                    log.warning("checkpoint checksum mismatch; recomputing", ("tensor", t.name), ("file", cp.file))
                    return nil
                }
                restored.insert(index)
                return data
            }, checkpoint: { u, parts in
                let name = "u\(u.index).a\(job.attempt).bin"
                let (sha, bytes) = try UnitCheckpoint.write(to: work + "/" + name, metrics: u, parts: parts)
                pending = (worker.publisher.relativeWorkDir(job: job.id) + "/" + name, sha, bytes)
            })
            let result = try runner.run(outputDir: staging, observer: observer)
            if let expected = job.inputSHA256, case let got = ModelSource.combinedChecksum(result.inputSHA256), got != expected {
                throw ComputeError(.checksumMismatch, "model changed since submit: sha256 \(got) != \(expected) recorded at submit",
                                   file: job.inputPath)
            }
            let manifest = try Manifest.write(dir: staging, recipe: recipe, inputPath: job.inputPath, result: result, threads: cfg.threads,
                                              extra: ["job_id": job.id.uuidString.lowercased(), "attempt": String(job.attempt),
                                                      "worker": cfg.id])
            try? worker.jobDB.with {
                try worker.store.event($0, job: job.id, attempt: job.attempt, kind: "units",
                                       detailJSON: "{\"computed\": \(result.computedUnits), \"restored\": \(result.restoredUnits), \"total\": \(result.units.count)}")
                if let e = result.evaluation, let json = try? JSONEncoder().encode(e) {
                    try worker.store.event($0, job: job.id, attempt: job.attempt, kind: "evaluated", detailJSON: String(decoding: json, as: UTF8.self))
                }
            }
            try checkContinue()
            published = try worker.publisher.publish(staging: staging, job: job.id, attempt: job.attempt)
            let rel = worker.publisher.relativeAttemptDir(job: job.id, attempt: job.attempt)
            let records = (result.outputs + [manifest]).map {
                ArtifactRecord(path: "\(rel)/\($0.path)", bytes: $0.bytes, sha256: $0.sha256, format: $0.format)
            }
            try finish(outputPath: rel, artifacts: records)
            worker.publisher.discard(work)
            log.info("job succeeded", ("units", String(result.units.count)), ("computed", String(result.computedUnits)),
                     ("restored", String(result.restoredUnits)), ("seconds", String(format: "%.2f", result.elapsedSeconds)))
        } catch {
            worker.publisher.discard(staging)
            if let p = published { worker.publisher.discard(p) }
            // Checkpoints stay for a later attempt unless the job ended for good.
            if case JobStop.cancelled = error { worker.publisher.discard(work) }
            if !(error is JobStop), ErrorClassifier.classify(error).permanent { worker.publisher.discard(work) }
            throw error
        }
    }

    /// A fenced write: retried on transient errors until the lease could have passed; a false
    /// result (zero rows) means another attempt owns the job now.
    private func fenced(_ what: String, _ body: (PostgresConnection) throws -> Bool) throws {
        let ok = try worker.withRetry(what, deadline: writeDeadline) { try worker.jobDB.with(body) }
        if !ok {
            active.markLost()
            throw JobStop.leaseLost
        }
    }

    private func finish(outputPath: String?, artifacts: [ArtifactRecord]) throws {
        var sent = false
        let ok = try worker.withRetry("complete", deadline: writeDeadline) { () -> Bool in
            if sent {
                // A retry after a lost reply: the first COMMIT may have landed.
                let rows = try worker.jobDB.with {
                    try $0.query("SELECT state, attempt FROM jobs WHERE id = $1", [job.id])
                }
                if rows.first?["state"] == "succeeded", rows.first?["attempt"] == String(job.attempt) { return true }
            }
            sent = true
            return try worker.jobDB.with {
                try worker.store.complete($0, job: job.id, attempt: job.attempt, workerID: cfg.id, outputPath: outputPath,
                                          artifacts: artifacts)
            }
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
        self.init(tensor: u.tensor, unitIndex: u.index, dtype: u.dtype, numel: Int64(u.numel), sparsity: u.sparsity, bits: u.bits,
                  relativeError: u.relativeError, elapsedMS: u.elapsedMS, bytesIn: Int64(u.bytesIn), bytesOut: Int64(u.bytesOut),
                  rank: u.rank, outputError: u.outputError)
    }
}
