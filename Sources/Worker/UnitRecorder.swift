import Compute
import Foundation
import Queue

/// How a worker stores a unit's checkpoint before recording the unit.
public enum CheckpointMode: String, Sendable, CaseIterable {
    /// A background thread writes and fsyncs each checkpoint, then records its unit, while the next unit computes.
    case writeBehind = "write-behind"
    /// The compute thread writes, fsyncs and records each unit before going on.
    case sync
    /// No checkpoint files: units are recorded, a retried attempt recomputes everything (for measurements).
    case off
}

/// Connects a run to the job's rows: records each unit (after its checkpoint is on disk) by a
/// fenced statement, in unit order, and hands back verified checkpoints of earlier attempts.
final class UnitRecorder {
    /// What checkpointing cost one attempt.
    struct Stats: Codable {
        var checkpoints = 0
        var bytes: Int64 = 0
        /// Seconds spent writing and fsyncing checkpoint files (on the writer thread unless `sync`).
        var writeSeconds = 0.0
        /// Seconds the compute thread waited for room in the write-behind queue.
        var stallSeconds = 0.0

        enum CodingKeys: String, CodingKey {
            case checkpoints, bytes
            case writeSeconds = "write_s"
            case stallSeconds = "stall_s"
        }
    }

    private struct Pending {
        let metrics: UnitMetrics
        /// The exports' bytes concatenated in slot order, as `UnitCheckpoint` stores them.
        let payload: [UInt8]
    }

    let executor: JobExecutor
    let saved: [String: (file: String, sha256: String, bytes: Int64, attempt: Int)]
    let work: String
    let mode: CheckpointMode
    private let queue: WriteBehindQueue?
    private var pending: Pending?
    private var restored = Set<Int>()
    private let statsLock = NSLock()
    private var written = Stats()

    init(
        executor: JobExecutor, saved: [String: (file: String, sha256: String, bytes: Int64, attempt: Int)],
        work: String, mode: CheckpointMode
    ) {
        self.executor = executor
        self.saved = saved
        self.work = work
        self.mode = mode
        // Two of SmolLM2's largest block units fit; a bigger unit waits for the queue to empty.
        queue = mode == .writeBehind ? WriteBehindQueue(limitBytes: 64 << 20, name: "checkpoint-writer") : nil
    }

    func observer() -> RecipeRunner.Observer {
        let e = executor
        let cfg = executor.cfg
        return RecipeRunner.Observer(
            checkContinue: {
                try e.checkContinue()
                if cfg.unitDelayMS > 0 { try e.pause(ms: cfg.unitDelayMS) }
            }, unitFinished: { [self] u in try finished(u) }, restore: { [self] index, t in restore(index, t) },
            checkpoint: mode == .off ? nil : { [self] u, parts in keep(u, parts) })
    }

    /// Waits until every unit handed over is on disk and recorded; then what checkpointing cost.
    func drain() throws -> Stats {
        try queue?.drain()
        statsLock.lock()
        defer { statsLock.unlock() }
        var s = written
        s.stallSeconds = queue?.stallSeconds ?? 0
        return s
    }

    /// Stops the writer thread (units not yet recorded are recomputed by a later attempt).
    func close() { queue?.close() }

    private func finished(_ u: UnitMetrics) throws {
        let job = executor.job
        let e = executor
        if let d = u.dampUsed {
            e.log.warning("calibration Hessian needed more dampening", ("tensor", u.tensor), ("damp", String(d)))
        }
        if restored.contains(u.index) && pending == nil {
            try submit(bytes: 0) {
                try e.fenced("restore unit") { try $0.unitRestored(job: job.id, attempt: job.attempt) }
            }
            return
        }
        let cp = pending
        pending = nil
        try submit(bytes: cp?.payload.count ?? 0) { [self] in
            let file = try cp.map(write)
            try e.fenced("record unit") {
                try $0.recordUnit(job: job.id, attempt: job.attempt, metric: LayerMetricRecord(u), checkpoint: file)
            }
            e.metrics.unitsDone.increment()
        }
    }

    private func submit(bytes: Int, _ body: @escaping () throws -> Void) throws {
        guard let queue else { return try body() }
        try queue.submit(bytes: bytes, body)
    }

    /// An earlier attempt's checkpoint of this unit, if its file is intact.
    private func restore(_ index: Int, _ t: TensorInfo) -> [UInt8]? {
        guard let cp = saved[t.name] else { return nil }
        let path = executor.publisher.root + "/" + cp.file
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

    /// Copies the unit's output bytes (the runner frees them after this call) for `finished` to write.
    private func keep(_ u: UnitMetrics, _ parts: [UnsafeRawBufferPointer]) {
        var payload = [UInt8]()
        payload.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for p in parts { payload.append(contentsOf: p) }
        pending = Pending(metrics: u, payload: payload)
    }

    /// Writes and fsyncs one checkpoint file; returns its row (path relative to the artifact root).
    private func write(_ p: Pending) throws -> (file: String, sha256: String, bytes: Int64) {
        let job = executor.job
        let name = "u\(p.metrics.index).a\(job.attempt).bin"
        let start = DispatchTime.now().uptimeNanoseconds
        let (sha, bytes) = try p.payload.withUnsafeBytes {
            try UnitCheckpoint.write(to: work + "/" + name, metrics: p.metrics, parts: [$0])
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        statsLock.lock()
        written.checkpoints += 1
        written.bytes += bytes
        written.writeSeconds += seconds
        statsLock.unlock()
        return (executor.publisher.relativeWorkDir(job: job.id) + "/" + name, sha, bytes)
    }
}
