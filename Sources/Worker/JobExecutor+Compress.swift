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
        let stored = try RecipeParser.parse(stored: job.recipeJSON)
        var model = try ModelSource(path: job.inputPath)
        // A BitStack stack submitted at a size loads that prefix (checked at submit).
        if job.inputSize != nil, let line = try model.load(size: job.inputSize) { log.info("input", ("stack", line)) }
        try PathPolicy(roots: cfg.inputRoots).check(model: model)
        for d in stored.datasets { try PathPolicy(roots: cfg.inputRoots).check(d) }
        // A dependency's published importance matrix or evaluation reference: our own output under the artifact root.
        let recipe = try stored.resolvingJobFiles { key, name in
            let rel = try retry("find \(name)", deadline: writeDeadline) {
                try attempts.publishedFile(jobKey: key, name: name)
            }
            guard let rel else {
                let writer =
                    name == ImportanceMatrix.ggufName
                    ? "imatrix: {job: \(key)}: no succeeded job with that key published \(name) (a GGUF export with "
                        + "imatrix: true writes it)"
                    : "reference: {job: \(key)}: no succeeded job with that key published \(name) (an evaluate "
                        + "stage with save_reference: true writes it)"
                throw ComputeError(.notFound, writer)
            }
            return publisher.root + "/" + rel
        }
        let staging = try publisher.prepareStaging(job: job.id, attempt: job.attempt)
        let work = try publisher.prepareWorkDir(job: job.id)
        var published: String?
        do {
            let result = try compute(recipe, model: model, staging: staging, work: work)
            let manifest = try Manifest.write(
                dir: staging, recipe: recipe, inputPath: job.inputPath, result: result, threads: cfg.threads,
                inputSize: job.inputSize,
                extra: [
                    "job_id": job.id.uuidString.lowercased(), "attempt": String(job.attempt),
                    "worker": cfg.id
                ])
            recordEvents(result)
            try checkContinue()
            published = try publisher.publish(staging: staging, job: job.id, attempt: job.attempt)
            let rel = publisher.relativeAttemptDir(job: job.id, attempt: job.attempt)
            let records = (result.outputs + [manifest]).map {
                ArtifactRecord(path: "\(rel)/\($0.path)", bytes: $0.bytes, sha256: $0.sha256, format: $0.format)
            }
            try finish(outputPath: rel, artifacts: records)
            publisher.discard(work)
            log.info(
                "job succeeded", ("units", String(result.units.count)), ("computed", String(result.computedUnits)),
                ("restored", String(result.restoredUnits)), ("seconds", String(format: "%.2f", result.elapsedSeconds)))
        } catch {
            publisher.discard(staging)
            if let p = published { publisher.discard(p) }
            // Checkpoints stay for a later attempt unless the job ended for good.
            if case JobStop.cancelled = error { publisher.discard(work) }
            if !(error is JobStop), ErrorClassifier.classify(error).permanent { publisher.discard(work) }
            throw error
        }
    }

    /// Validates the recipe against the model (once), runs it, and checks the input is the one submitted.
    private func compute(_ recipe: Recipe, model: ModelSource, staging: String, work: String) throws
        -> RecipeRunner.Result
    {
        let tensors = try model.readTensors()
        let family = try RecipeValidator.validateAll(recipe, model: model, tensors: tensors)
        let total = RecipeRunner.unitCount(recipe: recipe, tensors: tensors, family: family)
        try fenced("set units") { try $0.setUnitsTotal(job: job.id, attempt: job.attempt, total: total) }
        let saved = try retry("read checkpoints", deadline: writeDeadline) {
            try attempts.checkpoints(job: job.id)
        }
        let runner = RecipeRunner(model: model, recipe: recipe, threads: cfg.threads, family: family)
        let recorder = UnitRecorder(executor: self, saved: saved, work: work, mode: cfg.checkpoints)
        defer { recorder.close() }
        let result: RecipeRunner.Result
        do {
            result = try runner.run(outputDir: staging, observer: recorder.observer())
        } catch JobStop.draining {
            // A drained worker keeps what it computed: the units already handed over are recorded first.
            _ = try? recorder.drain()
            throw JobStop.draining
        }
        let cost = try recorder.drain()
        recordCheckpointCost(cost)
        if let expected = job.inputSHA256, case let got = ModelSource.combinedChecksum(result.inputSHA256),
            got != expected
        {
            throw ComputeError(
                .checksumMismatch, "model changed since submit: sha256 \(got) != \(expected) recorded at submit",
                file: job.inputPath)
        }
        return result
    }

    /// Best-effort: what checkpointing cost this attempt, logged and kept as a `checkpoints` event.
    private func recordCheckpointCost(_ cost: UnitRecorder.Stats) {
        log.info(
            "checkpoints written", ("files", String(cost.checkpoints)), ("bytes", String(cost.bytes)),
            ("write_s", String(format: "%.3f", cost.writeSeconds)),
            ("stall_s", String(format: "%.3f", cost.stallSeconds)),
            ("mode", cfg.checkpoints.rawValue))
        if let json = try? JSONEncoder().encode(cost) {
            try? attempts.event(
                job: job.id, attempt: job.attempt, kind: "checkpoints",
                detailJSON: String(decoding: json, as: UTF8.self))
        }
    }

    /// Best-effort events: how many units ran or were restored, and the evaluation.
    private func recordEvents(_ result: RecipeRunner.Result) {
        let units = ["computed": result.computedUnits, "restored": result.restoredUnits, "total": result.units.count]
        if let json = try? JSONEncoder().encode(units) {
            try? attempts.event(
                job: job.id, attempt: job.attempt, kind: "units", detailJSON: String(decoding: json, as: UTF8.self))
        }
        for u in result.units where u.dampUsed != nil {
            if let json = try? JSONEncoder().encode(["tensor": u.tensor, "damp": String(u.dampUsed!)]) {
                try? attempts.event(
                    job: job.id, attempt: job.attempt, kind: "hessian_damped",
                    detailJSON: String(decoding: json, as: UTF8.self))
            }
        }
        if let e = result.evaluation, let json = try? JSONEncoder().encode(e) {
            try? attempts.event(
                job: job.id, attempt: job.attempt, kind: "evaluated", detailJSON: String(decoding: json, as: UTF8.self))
        }
    }
}
