import Foundation

extension JobStore {
    /// Claims the queued, due jobs of `ids` for `workerID` (`queued → running`, attempt + 1) in one
    /// statement (one commit), each fenced as a single claim would be; returns the ones this worker
    /// now runs, in the order asked. Left out: jobs someone else has, and those whose memory estimate
    /// exceeds `maxMemory`. `blasCore` (the BLAS kernel the worker runs, which decides calibrated
    /// outputs' last bits) is recorded on each attempt.
    public func claim(
        _ db: PostgresConnection, ids: [UUID], workerID: String, leaseSeconds: Double, maxMemory: Int64? = nil,
        blasCore: String? = nil
    ) throws -> [ClaimedJob] {
        guard !ids.isEmpty else { return [] }
        let rows = try db.query(
            """
            WITH c AS (
                UPDATE jobs SET state = 'running', attempt = attempt + 1, worker_id = $2,
                       lease_until = now() + make_interval(secs => $3), started_at = coalesce(started_at, now()),
                       updated_at = now(), error = NULL, error_code = NULL
                WHERE id = ANY($1::uuid[]) AND state = 'queued' AND run_after <= now() AND NOT cancel_requested
                  AND ($4::bigint IS NULL OR memory_estimate IS NULL OR memory_estimate <= $4::bigint)
                RETURNING id, attempt, kind, recipe::text AS recipe, input_path, input_sha256, max_attempts, releases,
                          memory_estimate, input_size
            ), a AS (
                INSERT INTO job_attempts (job_id, attempt, worker_id, blas_core) SELECT id, attempt, $2, $5 FROM c
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind, detail)
                SELECT id, attempt, 'claimed', jsonb_build_object('worker', $2::text) FROM c
            )
            SELECT * FROM c
            """, [ids, workerID, leaseSeconds, maxMemory, blasCore])
        let claimed = try rows.map { r in
            ClaimedJob(
                id: try r.decode("id"), attempt: try r.decode("attempt"), kind: try r.decode("kind"),
                recipeJSON: try r.decode("recipe"), inputPath: try r.decode("input_path"),
                inputSHA256: try r.decode("input_sha256", as: String?.self), maxAttempts: try r.decode("max_attempts"),
                releases: try r.decode("releases"), memoryEstimate: try r.decode("memory_estimate", as: Int64?.self),
                inputSize: try r.decode("input_size", as: String?.self))
        }
        // In the order asked (the ready set's order: best first).
        let order = Dictionary(ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return claimed.sorted { (order[$0.id] ?? 0) < (order[$1.id] ?? 0) }
    }

    /// A queued job's ready-set entry if it needs more memory than `maxMemory` (so the hint goes back for a bigger
    /// worker).
    public func tooBig(_ db: PostgresConnection, id: UUID, maxMemory: Int64) throws -> SubmittedJob? {
        let rows = try db.query(
            """
            SELECT id, priority, seq FROM jobs WHERE id = $1 AND state = 'queued' AND memory_estimate > $2
            """, [id, maxMemory])
        guard let r = rows.first else { return nil }
        return SubmittedJob(
            id: try r.decode("id"), existed: true,
            score: RedisTransport.score(priority: try r.decode("priority"), seq: try r.decode("seq")), due: true)
    }

    /// Renews the leases this worker still holds; returns, per job it still holds, whether cancel was requested.
    /// A job missing from the result has been lost (reaped, cancelled or taken over): stop it.
    public func renew(_ db: PostgresConnection, leases: [(id: UUID, attempt: Int)], leaseSeconds: Double) throws
        -> [UUID: Bool]
    {
        if leases.isEmpty { return [:] }
        let rows = try db.query(
            """
            UPDATE jobs j SET lease_until = now() + make_interval(secs => $3), updated_at = now()
            FROM unnest($1::uuid[], $2::int[]) AS r(id, attempt)
            WHERE j.id = r.id AND j.attempt = r.attempt AND j.state = 'running'
            RETURNING j.id, j.cancel_requested
            """, [leases.map(\.id), leases.map(\.attempt), leaseSeconds])
        var out = [UUID: Bool]()
        for r in rows { out[try r.decode("id")] = try r.decode("cancel_requested") }
        return out
    }

    /// Records one finished unit (metrics and optional checkpoint), fenced; false if the lease is lost.
    public func recordUnit(
        _ db: PostgresConnection, job: UUID, attempt: Int, metric: LayerMetricRecord,
        checkpoint: (file: String, sha256: String, bytes: Int64)? = nil
    ) throws -> Bool {
        let rows = try db.query(
            """
            WITH f AS (
                UPDATE jobs SET units_done = units_done + 1, updated_at = now()
                WHERE id = $1 AND attempt = $2 AND state = 'running' RETURNING id
            ), m AS (
                INSERT INTO layer_metrics (job_id, tensor, attempt, unit_index, dtype, numel, sparsity, bits,
                    relative_error,
                                           elapsed_ms, bytes_in, bytes_out, rank, output_error)
                SELECT id, $3, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $16, $17 FROM f
                ON CONFLICT (job_id, tensor) DO UPDATE SET attempt = excluded.attempt, unit_index = excluded.unit_index,
                    dtype = excluded.dtype, numel = excluded.numel, sparsity = excluded.sparsity, bits = excluded.bits,
                    relative_error = excluded.relative_error, elapsed_ms = excluded.elapsed_ms,
                    bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out, rank = excluded.rank,
                    output_error = excluded.output_error, created_at = now()
            ), c AS (
                INSERT INTO job_checkpoints (job_id, unit, file, sha256, bytes, attempt)
                SELECT id, $3, $13, $14, $15, $2 FROM f WHERE $13::text IS NOT NULL
                ON CONFLICT (job_id, unit) DO UPDATE SET file = excluded.file, sha256 = excluded.sha256,
                    bytes = excluded.bytes, attempt = excluded.attempt, created_at = now()
            )
            SELECT id FROM f
            """,
            [
                job, attempt, metric.tensor, metric.unitIndex, metric.dtype, metric.numel, metric.sparsity, metric.bits,
                metric.relativeError, metric.elapsedMS, metric.bytesIn, metric.bytesOut,
                checkpoint?.file, checkpoint?.sha256, checkpoint?.bytes, metric.rank, metric.outputError
            ])
        return !rows.isEmpty
    }

    /// Checkpoints recorded for a job, by unit name: (file relative to the artifact root, sha256, bytes, attempt).
    public func checkpoints(_ db: PostgresConnection, job: UUID) throws -> [String: (
        file: String, sha256: String, bytes: Int64, attempt: Int
    )] {
        var out = [String: (file: String, sha256: String, bytes: Int64, attempt: Int)]()
        for r in try db.query("SELECT unit, file, sha256, bytes, attempt FROM job_checkpoints WHERE job_id = $1", [job])
        {
            out[try r.decode("unit")] = (
                try r.decode("file"), try r.decode("sha256"), try r.decode("bytes"), try r.decode("attempt")
            )
        }
        return out
    }

    /// Counts a unit restored from a checkpoint as done (fenced); its metrics row stays the computing attempt's.
    public func unitRestored(_ db: PostgresConnection, job: UUID, attempt: Int) throws -> Bool {
        !(try db.query(
            """
            UPDATE jobs SET units_done = units_done + 1, updated_at = now()
            WHERE id = $1 AND attempt = $2 AND state = 'running' RETURNING id
            """, [job, attempt])).isEmpty
    }

    /// Sets the number of units a running job has (fenced).
    public func setUnitsTotal(_ db: PostgresConnection, job: UUID, attempt: Int, total: Int, done: Int) throws -> Bool {
        !(try db.query(
            """
            UPDATE jobs SET units_total = $3, units_done = $4, updated_at = now()
            WHERE id = $1 AND attempt = $2 AND state = 'running' RETURNING id
            """, [job, attempt, total, done])).isEmpty
    }

    /// One finished attempt, for `complete(_:_:workerID:)`.
    public struct Completion: Sendable {
        public let job: UUID, attempt: Int, outputPath: String?, artifacts: [ArtifactRecord]
        public init(job: UUID, attempt: Int, outputPath: String?, artifacts: [ArtifactRecord]) {
            (self.job, self.attempt, self.outputPath, self.artifacts) = (job, attempt, outputPath, artifacts)
        }
    }

    /// Marks finished attempts of this worker succeeded and records their artifacts, attempt
    /// outcomes, events and the worker's count, all in one statement (one commit, atomic); each
    /// row is fenced by (job, attempt, running). Returns the jobs that completed.
    public func complete(_ db: PostgresConnection, _ done: [Completion], workerID: String) throws -> Set<UUID> {
        guard !done.isEmpty else { return [] }
        let files = done.flatMap { d in d.artifacts.map { (d.job, $0) } }
        let rows = try db.query(
            """
            WITH i AS (
                SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[]) AS t(id, attempt, output_path)
            ), u AS (
                UPDATE jobs j SET state = 'succeeded', finished_at = now(), updated_at = now(), lease_until = NULL,
                       output_path = i.output_path, error = NULL, error_code = NULL
                FROM i WHERE j.id = i.id AND j.attempt = i.attempt AND j.state = 'running' RETURNING j.id, j.attempt
            ), f AS (
                SELECT * FROM unnest($5::uuid[], $6::text[], $7::bigint[], $8::text[], $9::text[]) AS t(job_id, path,
                    bytes, sha256, format)
            ), ar AS (
                INSERT INTO artifacts (job_id, attempt, path, bytes, sha256, format)
                SELECT u.id, u.attempt, f.path, f.bytes, f.sha256, f.format FROM u JOIN f ON f.job_id = u.id
            ), a AS (
                UPDATE job_attempts ja SET ended_at = now(), outcome = 'succeeded'
                FROM u WHERE ja.job_id = u.id AND ja.attempt = u.attempt
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind, detail)
                SELECT id, attempt, 'succeeded',
                       jsonb_build_object('worker', $4::text, 'artifacts', (SELECT count(*) FROM f WHERE f.job_id =
                           u.id)) FROM u
            ), w AS (
                UPDATE workers SET jobs_done = jobs_done + (SELECT count(*) FROM u) WHERE id = $4 AND EXISTS (SELECT 1
                    FROM u)
            )
            SELECT id FROM u
            """,
            [
                done.map(\.job), done.map(\.attempt), done.map(\.outputPath), workerID, files.map(\.0),
                files.map(\.1.path),
                files.map(\.1.bytes), files.map(\.1.sha256), files.map(\.1.format)
            ])
        return Set(try rows.map { try $0.decode("id") as UUID })
    }

    /// Ends a failed attempt: permanent errors fail the job, transient ones retry after `backoffSeconds`
    /// or make it dead once attempts are spent. Nil if fenced out.
    public func fail(
        _ db: PostgresConnection, job: UUID, attempt: Int, code: JobErrorCode, message: String, permanent: Bool,
        backoffSeconds: Double
    ) throws -> FailureOutcome? {
        let rows = try db.query(
            """
            WITH u AS (
                UPDATE jobs SET
                    state = CASE WHEN $5 THEN 'failed' WHEN attempt - releases >= max_attempts THEN 'dead' ELSE
                        'queued' END,
                    run_after = CASE WHEN $5 OR attempt - releases >= max_attempts THEN run_after
                                     ELSE now() + make_interval(secs => $6) END,
                    finished_at = CASE WHEN $5 OR attempt - releases >= max_attempts THEN now() END,
                    lease_until = NULL, worker_id = NULL, error = $4, error_code = $3, updated_at = now()
                WHERE id = $1 AND attempt = $2 AND state = 'running'
                RETURNING id, attempt, state
            ), a AS (
                UPDATE job_attempts ja SET ended_at = now(), error = $4,
                       outcome = CASE u.state WHEN 'queued' THEN 'retry' ELSE u.state END
                FROM u WHERE ja.job_id = u.id AND ja.attempt = u.attempt
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind, detail)
                SELECT id, attempt, CASE state WHEN 'queued' THEN 'retry_scheduled' ELSE state END,
                       jsonb_build_object('code', $3::text, 'error', $4::text, 'backoff_s', $6::float8)
                FROM u
            )
            SELECT state FROM u
            """, [job, attempt, code.rawValue, message, permanent, backoffSeconds])
        guard let s = rows.first?["state"] else { return nil }
        return FailureOutcome(rawValue: s)
    }

    /// Gives a job back at once (graceful drain): `running → queued`, not counted against max_attempts.
    public func release(_ db: PostgresConnection, job: UUID, attempt: Int, reason: String) throws -> SubmittedJob? {
        let rows = try db.query(
            """
            WITH u AS (
                UPDATE jobs SET state = 'queued', releases = releases + 1, run_after = now(), lease_until = NULL,
                       worker_id = NULL, updated_at = now()
                WHERE id = $1 AND attempt = $2 AND state = 'running'
                RETURNING id, attempt, priority, seq
            ), a AS (
                UPDATE job_attempts ja SET ended_at = now(), outcome = 'released', error = $3
                FROM u WHERE ja.job_id = u.id AND ja.attempt = u.attempt
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind, detail)
                SELECT id, attempt, 'released', jsonb_build_object('reason', $3::text) FROM u
            )
            SELECT id, priority, seq, true AS due FROM u
            """, [job, attempt, reason])
        guard let r = rows.first else { return nil }
        return SubmittedJob(
            id: try r.decode("id"), existed: true,
            score: RedisTransport.score(priority: try r.decode("priority"), seq: try r.decode("seq")), due: true)
    }

    /// Ends a running job whose cancellation was requested (fenced).
    public func markCancelled(_ db: PostgresConnection, job: UUID, attempt: Int) throws -> Bool {
        !(try db.query(
            """
            WITH u AS (
                UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_until = NULL, updated_at = now()
                WHERE id = $1 AND attempt = $2 AND state = 'running' RETURNING id, attempt
            ), a AS (
                UPDATE job_attempts ja SET ended_at = now(), outcome = 'cancelled' FROM u
                WHERE ja.job_id = u.id AND ja.attempt = u.attempt
            ), e AS (
                INSERT INTO job_events (job_id, attempt, kind) SELECT id, attempt, 'cancelled' FROM u
            )
            SELECT id FROM u
            """, [job, attempt])).isEmpty
    }

    /// Appends a free-form event for a job (not fenced: events are an audit log).
    public func event(_ db: PostgresConnection, job: UUID, attempt: Int, kind: String, detailJSON: String = "{}") throws
    {
        try db.query(
            "INSERT INTO job_events (job_id, attempt, kind, detail) VALUES ($1, $2, $3, $4::jsonb)",
            [job, attempt, kind, detailJSON])
    }
}
