import Compute
import Foundation
import Queue

extension JobExecutor {
    /// A compression job: checks inputs against this worker's roots, runs the recipe into a
    /// staging directory (resuming from checkpoints), then publishes and records the artifacts.
    func runCompress() throws {
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
            let result = try compute(recipe, model: model, staging: staging, work: work)
            let manifest = try Manifest.write(dir: staging, recipe: recipe, inputPath: job.inputPath, result: result, threads: cfg.threads,
                                              extra: ["job_id": job.id.uuidString.lowercased(), "attempt": String(job.attempt),
                                                      "worker": cfg.id])
            recordEvents(result)
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

    /// Validates the recipe against the model (once), runs it, and checks the input is the one submitted.
    private func compute(_ recipe: Recipe, model: ModelSource, staging: String, work: String) throws -> RecipeRunner.Result {
        let tensors = try model.readHeaders().flatMap(\.header.tensors)
        let family = try RecipeValidator.validateAll(recipe, model: model, tensors: tensors)
        try fenced("set units") { try worker.store.setUnitsTotal($0, job: job.id, attempt: job.attempt, total: tensors.count, done: 0) }
        let saved = try worker.withRetry("read checkpoints", deadline: writeDeadline) {
            try worker.jobDB.with { try worker.store.checkpoints($0, job: job.id) }
        }
        let runner = RecipeRunner(model: model, recipe: recipe, threads: cfg.threads, family: family)
        let result = try runner.run(outputDir: staging, observer: UnitRecorder(executor: self, saved: saved, work: work).observer())
        if let expected = job.inputSHA256, case let got = ModelSource.combinedChecksum(result.inputSHA256), got != expected {
            throw ComputeError(.checksumMismatch, "model changed since submit: sha256 \(got) != \(expected) recorded at submit",
                               file: job.inputPath)
        }
        return result
    }

    /// Best-effort events: how many units ran or were restored, and the evaluation.
    private func recordEvents(_ result: RecipeRunner.Result) {
        try? worker.jobDB.with {
            try worker.store.event($0, job: job.id, attempt: job.attempt, kind: "units",
                                   detailJSON: "{\"computed\": \(result.computedUnits), \"restored\": \(result.restoredUnits), \"total\": \(result.units.count)}")
            if let e = result.evaluation, let json = try? JSONEncoder().encode(e) {
                try worker.store.event($0, job: job.id, attempt: job.attempt, kind: "evaluated", detailJSON: String(decoding: json, as: UTF8.self))
            }
        }
    }
}

/// Connects a run to the job's rows: records each unit (with its checkpoint) by a fenced
/// statement, and hands back verified checkpoints of earlier attempts.
final class UnitRecorder {
    let executor: JobExecutor
    let saved: [String: (file: String, sha256: String, bytes: Int64, attempt: Int)]
    let work: String
    private var pending: (file: String, sha256: String, bytes: Int64)?
    private var restored = Set<Int>()

    init(executor: JobExecutor, saved: [String: (file: String, sha256: String, bytes: Int64, attempt: Int)], work: String) {
        self.executor = executor
        self.saved = saved
        self.work = work
    }

    func observer() -> RecipeRunner.Observer {
        let e = executor, cfg = executor.cfg
        return RecipeRunner.Observer(checkContinue: {
            try e.checkContinue()
            if cfg.unitDelayMS > 0 { try e.pause(ms: cfg.unitDelayMS) }
        }, unitFinished: { [self] u in try finished(u) }, restore: { [self] index, t in restore(index, t) },
        checkpoint: { [self] u, parts in try checkpoint(u, parts) })
    }

    private func finished(_ u: UnitMetrics) throws {
        let (job, store) = (executor.job, executor.worker.store)
        if restored.contains(u.index) && pending == nil {
            try executor.fenced("restore unit") { try store.unitRestored($0, job: job.id, attempt: job.attempt) }
        } else {
            let cp = pending
            pending = nil
            try executor.fenced("record unit") {
                try store.recordUnit($0, job: job.id, attempt: job.attempt, metric: LayerMetricRecord(u), checkpoint: cp)
            }
        }
    }

    /// An earlier attempt's checkpoint of this unit, if its file is intact.
    private func restore(_ index: Int, _ t: TensorInfo) -> [UInt8]? {
        guard let cp = saved[t.name] else { return nil }
        let path = executor.worker.publisher.root + "/" + cp.file
        guard let f = try? InputFile(path: path, what: "checkpoint"), Int64(f.size) == cp.bytes,
              let data = try? f.read(at: 0, count: f.size) else {
            executor.log.warning("checkpoint missing or truncated; recomputing", ("tensor", t.name), ("file", cp.file))
            return nil
        }
        var h = SHA256()
        data.withUnsafeBytes { h.update($0) }
        guard h.finalizeHex() == cp.sha256 else {
            executor.log.warning("checkpoint checksum mismatch; recomputing", ("tensor", t.name), ("file", cp.file))
            return nil
        }
        restored.insert(index)
        return data
    }

    private func checkpoint(_ u: UnitMetrics, _ parts: [UnsafeRawBufferPointer]) throws {
        let job = executor.job
        let name = "u\(u.index).a\(job.attempt).bin"
        let (sha, bytes) = try UnitCheckpoint.write(to: work + "/" + name, metrics: u, parts: parts)
        pending = (executor.worker.publisher.relativeWorkDir(job: job.id) + "/" + name, sha, bytes)
    }
}
