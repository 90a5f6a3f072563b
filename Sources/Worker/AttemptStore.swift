import Foundation
import Queue

/// The writes and reads a running attempt makes, each fenced by (job, attempt): false or nil
/// means another attempt owns the job now. `PostgresAttemptStore` is the real one (the worker's
/// shared connection); tests give a fake.
protocol AttemptStore: AnyObject {
    func setUnitsTotal(job: UUID, attempt: Int, total: Int) throws -> Bool
    func checkpoints(job: UUID) throws -> [String: (file: String, sha256: String, bytes: Int64, attempt: Int)]
    func recordUnit(
        job: UUID, attempt: Int, metric: LayerMetricRecord, checkpoint: (file: String, sha256: String, bytes: Int64)?
    ) throws -> Bool
    func unitRestored(job: UUID, attempt: Int) throws -> Bool
    func event(job: UUID, attempt: Int, kind: String, detailJSON: String) throws
    /// Completes the attempt (grouped with other completions of this worker that finish together).
    func complete(job: UUID, attempt: Int, outputPath: String?, artifacts: [ArtifactRecord]) throws -> Bool
    /// The job's state and attempt now (to tell whether a completion whose reply was lost landed).
    func stateAndAttempt(job: UUID) throws -> (state: String, attempt: Int)?
    func fail(job: UUID, attempt: Int, code: JobErrorCode, message: String, permanent: Bool, backoffSeconds: Double)
        throws -> FailureOutcome?
    func markCancelled(job: UUID, attempt: Int) throws -> Bool
    func release(job: UUID, attempt: Int, reason: String) throws -> SubmittedJob?
    /// The artifact-root-relative path of file `name` published by the succeeded job with key `key`.
    func publishedFile(jobKey key: String, name: String) throws -> String?
}

/// The attempt store over the worker's shared PostgreSQL connection.
final class PostgresAttemptStore: AttemptStore {
    let db: SharedPostgres
    let store = JobStore()
    private var completions: CompletionGroup!

    init(db: SharedPostgres, workerID: String) {
        self.db = db
        let store = store
        completions = CompletionGroup { [db] batch in try db.with { try store.complete($0, batch, workerID: workerID) }
        }
    }

    func setUnitsTotal(job: UUID, attempt: Int, total: Int) throws -> Bool {
        try db.with { try store.setUnitsTotal($0, job: job, attempt: attempt, total: total, done: 0) }
    }
    func checkpoints(job: UUID) throws -> [String: (file: String, sha256: String, bytes: Int64, attempt: Int)] {
        try db.with { try store.checkpoints($0, job: job) }
    }
    func recordUnit(
        job: UUID, attempt: Int, metric: LayerMetricRecord, checkpoint: (file: String, sha256: String, bytes: Int64)?
    ) throws -> Bool {
        try db.with { try store.recordUnit($0, job: job, attempt: attempt, metric: metric, checkpoint: checkpoint) }
    }
    func unitRestored(job: UUID, attempt: Int) throws -> Bool {
        try db.with { try store.unitRestored($0, job: job, attempt: attempt) }
    }
    func event(job: UUID, attempt: Int, kind: String, detailJSON: String) throws {
        try db.with { try store.event($0, job: job, attempt: attempt, kind: kind, detailJSON: detailJSON) }
    }
    func complete(job: UUID, attempt: Int, outputPath: String?, artifacts: [ArtifactRecord]) throws -> Bool {
        try completions.complete(
            JobStore.Completion(job: job, attempt: attempt, outputPath: outputPath, artifacts: artifacts))
    }
    func stateAndAttempt(job: UUID) throws -> (state: String, attempt: Int)? {
        try db.with { try store.job($0, id: job).map { ($0.state, $0.attempt) } }
    }
    func fail(job: UUID, attempt: Int, code: JobErrorCode, message: String, permanent: Bool, backoffSeconds: Double)
        throws -> FailureOutcome?
    {
        try db.with {
            try store.fail(
                $0, job: job, attempt: attempt, code: code, message: message, permanent: permanent,
                backoffSeconds: backoffSeconds)
        }
    }
    func markCancelled(job: UUID, attempt: Int) throws -> Bool {
        try db.with { try store.markCancelled($0, job: job, attempt: attempt) }
    }
    func release(job: UUID, attempt: Int, reason: String) throws -> SubmittedJob? {
        try db.with { try store.release($0, job: job, attempt: attempt, reason: reason) }
    }
    func publishedFile(jobKey key: String, name: String) throws -> String? {
        try db.with { try store.publishedFile($0, jobKey: key, name: name) }
    }
}
