import Foundation

/// Retention (`squeeze gc`): forgetting finished jobs past their horizon, and the facts the file
/// sweep needs to tell a live artifact from a superseded one.
extension JobStore {
    /// What one retention pass deleted (or, dry, would delete).
    public struct RetentionRows: Sendable, Equatable {
        public var jobs = 0, events = 0, attempts = 0, checkpoints = 0, batches = 0
        public var expired: [UUID] = []
        public init() {}
    }

    /// Deletes succeeded/cancelled jobs finished more than `olderThan` seconds ago and failed/dead
    /// ones past `keepFailed` (their events, attempts, metrics, artifact and checkpoint rows go with
    /// them), then batches left empty past the horizon; and checkpoint rows of every finished job.
    /// Works in chunks of `chunk` jobs, each its own transaction. Only terminal jobs are touched.
    public func expire(_ db: PostgresConnection, olderThan: Double, keepFailed: Double, dryRun: Bool, chunk: Int = 2000)
        throws -> RetentionRows
    {
        var out = RetentionRows()
        let doomed = """
            SELECT id FROM jobs
            WHERE (state IN ('succeeded', 'cancelled') AND finished_at < now() - make_interval(secs => $1))
               OR (state IN ('failed', 'dead') AND finished_at < now() - make_interval(secs => $2))
            """
        if dryRun {
            out.expired = try db.query(doomed, [olderThan, keepFailed]).map { try $0.decode("id") }
            out.jobs = out.expired.count
            let r = try db.query(
                """
                SELECT (SELECT count(*) FROM job_events WHERE job_id = ANY($1::uuid[])) AS events,
                       (SELECT count(*) FROM job_attempts WHERE job_id = ANY($1::uuid[])) AS attempts,
                       (SELECT count(*) FROM job_checkpoints c JOIN jobs j ON j.id = c.job_id
                         WHERE j.state IN ('succeeded', 'failed', 'dead', 'cancelled')) AS checkpoints
                """, [out.expired])[0]
            out.events = try r.decode("events")
            out.attempts = try r.decode("attempts")
            out.checkpoints = try r.decode("checkpoints")
            return out
        }
        out.checkpoints = try db.query(
            """
            WITH d AS (DELETE FROM job_checkpoints c USING jobs j
                       WHERE j.id = c.job_id AND j.state IN ('succeeded', 'failed', 'dead', 'cancelled') RETURNING 1)
            SELECT count(*) AS n FROM d
            """)[0].decode("n")
        while true {
            // Rows locked by a worker's fenced write are skipped this pass, never waited on.
            let r = try db.transaction { tx in
                try tx.query(
                    """
                    WITH d AS (\(doomed) ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED),
                         ev AS (SELECT count(*) AS n FROM job_events WHERE job_id IN (SELECT id FROM d)),
                         at AS (SELECT count(*) AS n FROM job_attempts WHERE job_id IN (SELECT id FROM d)),
                         gone AS (DELETE FROM jobs WHERE id IN (SELECT id FROM d) RETURNING id)
                    SELECT (SELECT n FROM ev) AS events, (SELECT n FROM at) AS attempts,
                           coalesce((SELECT string_agg(id::text, ' ') FROM gone), '') AS ids
                    """, [olderThan, keepFailed, chunk])[0]
            }
            let ids = (r["ids"] ?? "").split(separator: " ").compactMap { UUID(uuidString: String($0)) }
            if ids.isEmpty { break }
            out.jobs += ids.count
            out.events += try r.decode("events")
            out.attempts += try r.decode("attempts")
            out.expired += ids
            if ids.count < chunk { break }
        }
        out.batches = try db.query(
            """
            WITH d AS (DELETE FROM batches b WHERE b.created_at < now() - make_interval(secs => $1)
                       AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id) RETURNING 1)
            SELECT count(*) AS n FROM d
            """, [min(olderThan, keepFailed)])[0].decode("n")
        return out
    }

    /// For each job: its state, current attempt, and the attempts whose artifacts its rows reference.
    public func artifactOwners(_ db: PostgresConnection, jobs: [UUID]) throws -> [UUID: (
        state: String, attempt: Int, referenced: Set<Int>
    )] {
        guard !jobs.isEmpty else { return [:] }
        var out = [UUID: (state: String, attempt: Int, referenced: Set<Int>)]()
        for r in try db.query(
            """
            SELECT j.id, j.state, j.attempt,
                   coalesce((SELECT string_agg(DISTINCT a.attempt::text, ' ') FROM artifacts a WHERE a.job_id = j.id),
                       '') AS refs,
                   j.output_path
            FROM jobs j WHERE j.id = ANY($1::uuid[])
            """, [jobs])
        {
            var refs = Set((r["refs"] ?? "").split(separator: " ").compactMap { Int($0) })
            if let out = r["output_path"], let n = out.split(separator: "-").last.flatMap({ Int($0) }) {
                refs.insert(n)
            }
            out[try r.decode("id")] = (r["state"] ?? "", try r.decode("attempt"), refs)
        }
        return out
    }
}
