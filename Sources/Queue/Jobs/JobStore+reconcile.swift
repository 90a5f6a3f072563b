import Foundation

extension JobStore {
    /// Result of one reconciler pass.
    public struct ReconcileResult: Sendable {
        public var ranPass = false
        public var requeued: [UUID] = []
        public var dead: [UUID] = []
        public var toPush: [(id: UUID, score: Double)] = []
        public init() {}
    }

    /// One reconciler pass, done by at most one process at a time (transaction-level advisory lock):
    /// reaps expired leases (requeue at once, dead after max_attempts, cancelled when cancel was
    /// requested) and lists due queued jobs to push.
    /// `fullSweep` lists every due queued job; otherwise only those that became due in the last `window` seconds.
    public func reconcile(_ db: PostgresConnection, fullSweep: Bool, window: Double = 15, limit: Int = 50_000) throws
        -> ReconcileResult
    {
        try db.transaction { tx in
            var res = ReconcileResult()
            let locked = try tx.query("SELECT pg_try_advisory_xact_lock($1) AS ok", [0x5351_5245_434F])  // "SQRECO"
            guard try locked[0].decode("ok", as: Bool.self) else { return res }
            res.ranPass = true
            let reaped = try tx.query(
                """
                WITH x AS (
                    SELECT id, attempt, worker_id FROM jobs
                    WHERE state = 'running' AND lease_until < now()
                    ORDER BY lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED
                ), u AS (
                    UPDATE jobs j SET
                        -- A job whose cancel was requested ends cancelled: requeued, nothing would ever claim it.
                        state = CASE WHEN j.cancel_requested THEN 'cancelled'
                                     WHEN j.attempt - j.releases >= j.max_attempts THEN 'dead' ELSE 'queued' END,
                        finished_at = CASE WHEN j.cancel_requested OR j.attempt - j.releases >= j.max_attempts THEN
                            now() END,
                        run_after = now(), lease_until = NULL, worker_id = NULL, updated_at = now(),
                        error = 'lease expired: worker ' || coalesce(x.worker_id, '?') || ' stopped renewing',
                        error_code = 'lease_expired'  -- JobErrorCode.leaseExpired
                    FROM x WHERE j.id = x.id
                    RETURNING j.id, j.attempt, j.state, j.priority, j.seq, x.worker_id
                ), a AS (
                    UPDATE job_attempts ja SET ended_at = now(), outcome = 'lease_expired', error = 'lease expired'
                    FROM u WHERE ja.job_id = u.id AND ja.attempt = u.attempt
                ), e AS (
                    INSERT INTO job_events (job_id, attempt, kind, detail)
                    SELECT id, attempt, 'lease_expired', jsonb_build_object('worker', worker_id, 'now', state) FROM u
                )
                SELECT id, state, priority, seq FROM u
                """)
            for r in reaped {
                let id: UUID = try r.decode("id")
                if r["state"] == "cancelled" { continue }
                if r["state"] == "dead" {
                    res.dead.append(id)
                } else {
                    res.requeued.append(id)
                    res.toPush.append(
                        (id, RedisTransport.score(priority: try r.decode("priority"), seq: try r.decode("seq"))))
                }
            }
            let due = try tx.query(
                """
                SELECT id, priority, seq FROM jobs
                WHERE state = 'queued' AND NOT cancel_requested AND run_after <= now()
                  AND ($1 OR run_after > now() - make_interval(secs => $2))
                ORDER BY priority DESC, seq LIMIT $3
                """, [fullSweep, window, limit])
            for r in due {
                res.toPush.append(
                    (
                        try r.decode("id"),
                        RedisTransport.score(priority: try r.decode("priority"), seq: try r.decode("seq"))
                    ))
            }
            return res
        }
    }

    /// True when no queued job is due within `horizon` seconds, no running job has an expired lease,
    /// and no waiting job can still be released (one whose dependencies have not failed).
    public func isIdle(_ db: PostgresConnection, horizon: Double) throws -> Bool {
        let r = try db.query(
            """
            SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND run_after <= now() + make_interval(secs
                => $1))
               AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND lease_until < now())
               AND NOT EXISTS (SELECT 1 FROM jobs w WHERE w.state = 'waiting'
                   AND NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs n ON n.id = d.needs
                                   WHERE d.job_id = w.id AND n.state IN ('failed', 'dead', 'cancelled'))) AS idle
            """, [horizon])
        return try r[0].decode("idle")
    }
}
