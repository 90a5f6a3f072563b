import Foundation

extension JobStore {
    /// Requests cancellation: queued jobs end `cancelled` at once, running ones at their next heartbeat.
    /// Returns (cancelled now, flagged while running).
    public func cancel(_ db: PostgresConnection, jobs: [UUID]? = nil, batch: UUID? = nil) throws -> (
        cancelled: [UUID], flagged: [UUID]
    ) {
        let rows = try db.query(
            """
            WITH u AS (
                UPDATE jobs SET cancel_requested = true, updated_at = now(),
                       state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
                       finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END
                WHERE state IN ('queued', 'running') AND (id = ANY($1::uuid[]) OR batch_id = $2::uuid)
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

    /// Puts failed, dead or cancelled jobs back in the queue with a fresh attempt budget.
    public func retry(_ db: PostgresConnection, jobs: [UUID]? = nil, allDead: Bool = false) throws -> [SubmittedJob] {
        let rows = try db.query(
            """
            WITH u AS (
                UPDATE jobs SET state = 'queued', run_after = now(), cancel_requested = false, finished_at = NULL,
                       max_attempts = (attempt - releases) + max_attempts, updated_at = now()
                WHERE (id = ANY($1::uuid[]) AND state IN ('failed', 'dead', 'cancelled')) OR ($2 AND state = 'dead')
                RETURNING id, attempt, priority, seq
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind) SELECT id, attempt, 'retried' FROM u
            )
            SELECT id, priority, seq, true AS due FROM u
            """, [jobs ?? [], allDead])
        return try rows.map {
            SubmittedJob(
                id: try $0.decode("id"), existed: true,
                score: RedisTransport.score(priority: try $0.decode("priority"), seq: try $0.decode("seq")), due: true)
        }
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
