import Foundation

extension JobStore {
    /// Requests cancellation: queued and waiting jobs end `cancelled` at once, running ones at their next heartbeat.
    /// Returns (cancelled now, flagged while running).
    public func cancel(_ db: PostgresConnection, jobs: [UUID]? = nil, batch: UUID? = nil) throws -> (
        cancelled: [UUID], flagged: [UUID]
    ) {
        let rows = try db.query(
            """
            WITH u AS (
                UPDATE jobs SET cancel_requested = true, updated_at = now(),
                       state = CASE WHEN state IN ('queued', 'waiting') THEN 'cancelled' ELSE state END,
                       finished_at = CASE WHEN state IN ('queued', 'waiting') THEN now() ELSE finished_at END
                WHERE state IN ('queued', 'waiting', 'running') AND (id = ANY($1::uuid[]) OR batch_id = $2::uuid)
                RETURNING id, attempt, state
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind)
                SELECT id, attempt, CASE state WHEN 'cancelled' THEN 'cancelled' ELSE 'cancel_requested' END FROM u
            )
            SELECT id, state FROM u
            """, [jobs ?? [], batch])
        var c = [UUID](), f = [UUID]()
        for r in rows {
            if r["state"] == "cancelled" { c.append(try r.decode("id")) } else { f.append(try r.decode("id")) }
        }
        return (c, f)
    }

    /// Puts failed, dead or cancelled jobs back in the queue with a fresh attempt budget (waiting
    /// again, not due, while a dependency has not succeeded).
    public func retry(_ db: PostgresConnection, jobs: [UUID]? = nil, allDead: Bool = false) throws -> [SubmittedJob] {
        let rows = try db.query(
            """
            WITH u AS (
                UPDATE jobs j SET run_after = now(), cancel_requested = false, finished_at = NULL,
                       state = CASE WHEN EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs n ON n.id = d.needs
                                                 WHERE d.job_id = j.id AND n.state <> 'succeeded')
                                    THEN 'waiting' ELSE 'queued' END,
                       max_attempts = (attempt - releases) + max_attempts, updated_at = now()
                WHERE (id = ANY($1::uuid[]) AND state IN ('failed', 'dead', 'cancelled')) OR ($2 AND state = 'dead')
                RETURNING id, attempt, priority, seq, state
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind) SELECT id, attempt, 'retried' FROM u
            )
            SELECT id, priority, seq, state = 'queued' AS due FROM u
            """, [jobs ?? [], allDead])
        return try rows.map {
            SubmittedJob(
                id: try $0.decode("id"), existed: true,
                score: RedisTransport.score(priority: try $0.decode("priority"), seq: try $0.decode("seq")),
                due: try $0.decode("due"))
        }
    }

    /// The path (relative to the artifact root) of the file `name` that the succeeded job with
    /// idempotency key `key` published, or nil.
    public func publishedFile(_ db: PostgresConnection, jobKey key: String, name: String) throws -> String? {
        let rows = try db.query(
            """
            SELECT a.path FROM jobs j JOIN artifacts a ON a.job_id = j.id AND a.attempt = j.attempt
            WHERE j.idempotency_key = $1 AND j.state = 'succeeded' AND a.path = j.output_path || '/' || $2
            """, [key, name])
        return rows.first?["path"]
    }

    /// Resolves a full id or a unique prefix of one.
    public func resolve(_ db: PostgresConnection, jobRef: String) throws -> UUID? {
        if let u = UUID(uuidString: jobRef) { return u }
        let clean = jobRef.lowercased().filter { $0.isHexDigit || $0 == "-" }
        guard clean.count >= 4, clean.count == jobRef.count else { return nil }
        let rows = try db.query("SELECT id FROM jobs WHERE id::text LIKE $1 || '%' LIMIT 2", [clean])
        return rows.count == 1 ? try rows[0].decode("id") : nil
    }
}
