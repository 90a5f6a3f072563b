import Compute
import Foundation
import Queue

/// Connects a run to the job's rows: records each unit (with its checkpoint) by a fenced
/// statement, and hands back verified checkpoints of earlier attempts.
final class UnitRecorder {
    let executor: JobExecutor
    let saved: [String: (file: String, sha256: String, bytes: Int64, attempt: Int)]
    let work: String
    private var pending: (file: String, sha256: String, bytes: Int64)?
    private var restored = Set<Int>()

    init(
        executor: JobExecutor, saved: [String: (file: String, sha256: String, bytes: Int64, attempt: Int)], work: String
    ) {
        self.executor = executor
        self.saved = saved
        self.work = work
    }

    func observer() -> RecipeRunner.Observer {
        let e = executor, cfg = executor.cfg
        return RecipeRunner.Observer(
            checkContinue: {
                try e.checkContinue()
                if cfg.unitDelayMS > 0 { try e.pause(ms: cfg.unitDelayMS) }
            }, unitFinished: { [self] u in try finished(u) }, restore: { [self] index, t in restore(index, t) },
            checkpoint: { [self] u, parts in try checkpoint(u, parts) })
    }

    private func finished(_ u: UnitMetrics) throws {
        let job = executor.job
        if let d = u.dampUsed {
            executor.log.warning("calibration Hessian needed more dampening", ("tensor", u.tensor), ("damp", String(d)))
        }
        if restored.contains(u.index) && pending == nil {
            try executor.fenced("restore unit") { try $0.unitRestored(job: job.id, attempt: job.attempt) }
        } else {
            let cp = pending
            pending = nil
            try executor.fenced("record unit") {
                try $0.recordUnit(job: job.id, attempt: job.attempt, metric: LayerMetricRecord(u), checkpoint: cp)
            }
            executor.worker.metrics.unitsDone.increment()
        }
    }

    /// An earlier attempt's checkpoint of this unit, if its file is intact.
    private func restore(_ index: Int, _ t: TensorInfo) -> [UInt8]? {
        guard let cp = saved[t.name] else { return nil }
        let path = executor.worker.publisher.root + "/" + cp.file
        guard let f = try? InputFile(path: path, what: "checkpoint"), Int64(f.size) == cp.bytes,
            let data = try? f.read(at: 0, count: f.size)
        else {
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
