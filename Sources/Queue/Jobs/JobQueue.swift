import Foundation

/// The queue's writes as users make them: each changes PostgreSQL in one committed transaction,
/// then updates the Redis hints. A failed Redis step loses nothing (the reconciler re-pushes
/// due jobs and drops hints of jobs that are not queued); it is reported as `hintWarning`.
public struct JobQueue {
    public let db: PostgresConnection
    public let redisURL: String
    public let prefix: String
    let store = JobStore()

    public init(db: PostgresConnection, redisURL: String, prefix: String) {
        self.db = db
        self.redisURL = redisURL
        self.prefix = prefix
    }

    /// What a write did, and why its Redis step failed (nil when it did not).
    public struct Outcome<T> {
        public let value: T
        public let hintWarning: String?
    }

    /// Inserts jobs (and their batch) in one transaction, then pushes the due ones.
    public func submit(_ jobs: [NewJob], batchName: String?) throws -> Outcome<(batch: UUID?, jobs: [SubmittedJob])> {
        let r = try store.submit(db, jobs: jobs, batchName: batchName)
        return Outcome(value: r, hintWarning: hint { try $0.push(r.jobs.filter(\.due).map { ($0.id, $0.score) }) })
    }

    /// Puts failed, dead or cancelled jobs back in the queue, then pushes them.
    public func retry(_ ids: [UUID], allDead: Bool) throws -> Outcome<[SubmittedJob]> {
        let r = try store.retry(db, jobs: ids, allDead: allDead)
        return Outcome(value: r, hintWarning: hint { try $0.push(r.filter(\.due).map { ($0.id, $0.score) }) })
    }

    /// Cancels queued jobs at once (and drops their hints) and flags running ones.
    public func cancel(_ ids: [UUID], batch: UUID?) throws -> Outcome<(cancelled: [UUID], flagged: [UUID])> {
        let r = try store.cancel(db, jobs: ids, batch: batch)
        return Outcome(value: r, hintWarning: hint { try $0.remove(r.cancelled) })
    }

    private func hint(_ body: (RedisTransport) throws -> Void) -> String? {
        do {
            try body(RedisTransport(redis: try RedisConnection(url: redisURL), prefix: prefix))
            return nil
        } catch {
            return
                "the change is committed in PostgreSQL but the Redis update failed (\(error)); a worker's reconciler "
                + "will repair it"
        }
    }
}
