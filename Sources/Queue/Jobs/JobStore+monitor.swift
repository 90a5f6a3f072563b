import Foundation

/// The dashboard's reads (JobViews+Monitor.swift), each one parameterized statement over the
/// monitoring views.
extension JobStore {
    /// Finished jobs per `step` ("minute" or "hour") over the last `window` (an interval), zero-filled.
    public func finishedSeries(_ db: PostgresConnection, step: String, window: String) throws
        -> [JobViews.FinishedBucket]
    {
        try db.query(
            """
            SELECT extract(epoch FROM g.t) AS t,
                   count(s.job_id) FILTER (WHERE s.state = 'succeeded') AS ok,
                   count(s.job_id) FILTER (WHERE s.state IN ('failed', 'dead')) AS bad
            FROM generate_series(date_trunc($1, now()) - $2::interval, date_trunc($1, now()), ('1 ' ||
                $1)::interval) AS g(t)
            LEFT JOIN job_summary s ON s.finished_at >= g.t AND s.finished_at < g.t + ('1 ' || $1)::interval
            GROUP BY g.t ORDER BY g.t
            """, [step, window]
        ).map {
            JobViews.FinishedBucket(
                start: try $0.decode("t"), succeeded: try $0.decode("ok"), failed: try $0.decode("bad"))
        }
    }

    /// Workers not stopped, or stopped within the hour: alive first, then by start.
    public func fleetWorkers(_ db: PostgresConnection, limit: Int = 200) throws -> [JobViews.FleetWorker] {
        try db.query(
            """
            SELECT w.id, w.host, w.pid, w.state, w.alive, w.heartbeat_age_s, w.jobs_done,
                   (SELECT coalesce(string_agg(r.job_id::text, ' ' ORDER BY r.job_id), '') FROM running_jobs r
                    WHERE r.worker_id = w.id) AS current
            FROM worker_health w WHERE w.state <> 'stopped' OR w.last_heartbeat > now() - interval '1 hour'
            ORDER BY w.alive DESC, w.started_at LIMIT $1
            """, [limit]
        ).map {
            JobViews.FleetWorker(
                id: try $0.decode("id"), host: try $0.decode("host"), pid: try $0.decode("pid"),
                state: try $0.decode("state"), alive: try $0.decode("alive"),
                heartbeatAge: try $0.decode("heartbeat_age_s", as: Double?.self), jobsDone: try $0.decode("jobs_done"),
                currentJobs: (try $0.decode("current", as: String.self)).split(separator: " ").map(String.init))
        }
    }

    static let batchColumns =
        "p.batch_id, p.name, p.created_at, p.jobs, p.queued, p.running, p.succeeded, p.failed, p.cancelled, p.pct_done"

    static func batchSummary(_ r: PostgresRow) throws -> JobViews.BatchSummary {
        JobViews.BatchSummary(
            id: try r.decode("batch_id"), name: try r.decode("name"), createdAt: try r.decode("created_at"),
            jobs: try r.decode("jobs"), queued: try r.decode("queued"), running: try r.decode("running"),
            succeeded: try r.decode("succeeded"), failed: try r.decode("failed"), cancelled: try r.decode("cancelled"),
            pctDone: try r.decode("pct_done"))
    }

    /// Batches with queued, running or waiting jobs, newest first, with the jobs finished in the last
    /// 10 minutes (or since the batch began, if later) for an ETA.
    public func activeBatches(_ db: PostgresConnection, limit: Int = 50) throws -> [JobViews.ActiveBatch] {
        try db.query(
            """
            SELECT \(Self.batchColumns), p.waiting,
                   (SELECT count(*) FROM job_summary s WHERE s.batch_id = p.batch_id AND s.finished_at > now() -
                       interval '10 minutes') AS recent,
                   extract(epoch FROM least(interval '10 minutes', now() - p.created_at)) AS window_s
            FROM batch_progress p WHERE p.queued + p.running + p.waiting > 0 ORDER BY p.created_at DESC LIMIT $1
            """, [limit]
        ).map {
            JobViews.ActiveBatch(
                batch: try Self.batchSummary($0), waiting: try $0.decode("waiting"),
                finishedRecently: try $0.decode("recent"), windowSeconds: try $0.decode("window_s"))
        }
    }

    /// Every batch, newest first, a page at a time.
    public func batchSummaries(_ db: PostgresConnection, limit: Int, offset: Int) throws -> [JobViews.BatchSummary] {
        try db.query(
            "SELECT \(Self.batchColumns) FROM batch_progress p ORDER BY p.created_at DESC, p.batch_id "
                + "LIMIT $1 OFFSET $2",
            [limit, offset]
        ).map(Self.batchSummary)
    }

    /// One batch's counts; nil when there is no such batch.
    public func batchSummary(_ db: PostgresConnection, id: UUID) throws -> JobViews.BatchSummary? {
        try db.query("SELECT \(Self.batchColumns) FROM batch_progress p WHERE p.batch_id = $1", [id]).first
            .map(Self.batchSummary)
    }

    /// The latest failed, dead or retrying jobs.
    public func recentFailures(_ db: PostgresConnection, limit: Int = 20) throws -> [JobViews.Failure] {
        try db.query(
            """
            SELECT job_id, kind, state, attempt, max_attempts, error_code, error, input_path, updated_at
            FROM failing_jobs ORDER BY updated_at DESC LIMIT $1
            """, [limit]
        ).map {
            JobViews.Failure(
                id: try $0.decode("job_id"), kind: try $0.decode("kind"), state: try $0.decode("state"),
                attempt: try $0.decode("attempt"), maxAttempts: try $0.decode("max_attempts"),
                errorCode: try $0.decode("error_code", as: String?.self),
                error: try $0.decode("error", as: String?.self),
                inputPath: try $0.decode("input_path"), updatedAt: try $0.decode("updated_at"))
        }
    }

    static let summaryColumns = """
        s.job_id, s.batch_id, s.kind, s.state, s.priority, s.attempt, s.max_attempts, s.input_path, s.output_path,
        s.worker_id, s.units_done, s.units_total, s.error_code, s.error, s.cancel_requested, s.recipe::text AS recipe,
        s.created_at, s.started_at, s.finished_at, s.wait_s, s.run_s, s.artifact_bytes
        """

    static func jobSummary(_ r: PostgresRow) throws -> JobViews.JobSummary {
        JobViews.JobSummary(
            id: try r.decode("job_id"), batchID: try r.decode("batch_id", as: UUID?.self), kind: try r.decode("kind"),
            state: try r.decode("state"), priority: try r.decode("priority"), attempt: try r.decode("attempt"),
            maxAttempts: try r.decode("max_attempts"), inputPath: try r.decode("input_path"),
            outputPath: try r.decode("output_path", as: String?.self),
            workerID: try r.decode("worker_id", as: String?.self), unitsDone: try r.decode("units_done", as: Int?.self),
            unitsTotal: try r.decode("units_total", as: Int?.self),
            errorCode: try r.decode("error_code", as: String?.self), error: try r.decode("error", as: String?.self),
            cancelRequested: try r.decode("cancel_requested"), recipeJSON: try r.decode("recipe"),
            createdAt: try r.decode("created_at"), startedAt: try r.decode("started_at", as: String?.self),
            finishedAt: try r.decode("finished_at", as: String?.self),
            waitSeconds: try r.decode("wait_s", as: Double?.self), runSeconds: try r.decode("run_s", as: Double?.self),
            artifactBytes: try r.decode("artifact_bytes"))
    }

    /// One job as `job_summary` has it; nil when there is no such job.
    public func jobSummary(_ db: PostgresConnection, id: UUID) throws -> JobViews.JobSummary? {
        try db.query("SELECT \(Self.summaryColumns) FROM job_summary s WHERE s.job_id = $1", [id]).first
            .map(Self.jobSummary)
    }

    /// A batch's jobs in submission order, a page at a time, with their evaluations.
    public func batchJobs(_ db: PostgresConnection, batch: UUID, limit: Int, offset: Int) throws -> [JobViews.BatchJob]
    {
        try db.query(
            """
            SELECT \(Self.summaryColumns), q.perplexity_ratio, q.mean_kl, q.mean_cosine
            FROM job_summary s LEFT JOIN job_quality q ON q.job_id = s.job_id
            WHERE s.batch_id = $1 ORDER BY s.created_at, s.job_id LIMIT $2 OFFSET $3
            """, [batch, limit, offset]
        ).map {
            JobViews.BatchJob(
                job: try Self.jobSummary($0), perplexityRatio: try $0.decode("perplexity_ratio", as: Double?.self),
                meanKL: try $0.decode("mean_kl", as: Double?.self),
                meanCosine: try $0.decode("mean_cosine", as: Double?.self))
        }
    }

    /// A batch's succeeded, evaluated jobs by size: the evaluated file's bytes, else all the job's outputs.
    public func batchSizeQuality(_ db: PostgresConnection, batch: UUID, limit: Int = 5000) throws
        -> [JobViews.SizeQuality]
    {
        try db.query(
            """
            SELECT s.job_id, s.recipe::text AS recipe, coalesce(q.model_bytes, s.artifact_bytes) AS size,
                q.perplexity_ratio, q.mean_kl, q.mean_cosine
            FROM job_summary s JOIN job_quality q ON q.job_id = s.job_id
            WHERE s.batch_id = $1 AND s.state = 'succeeded' AND coalesce(q.model_bytes, s.artifact_bytes) > 0
            ORDER BY size, s.job_id LIMIT $2
            """, [batch, limit]
        ).map {
            JobViews.SizeQuality(
                id: try $0.decode("job_id"), recipeJSON: try $0.decode("recipe"), size: try $0.decode("size"),
                perplexityRatio: try $0.decode("perplexity_ratio", as: Double?.self),
                meanKL: try $0.decode("mean_kl", as: Double?.self),
                meanCosine: try $0.decode("mean_cosine", as: Double?.self))
        }
    }

    /// What the job's last evaluation measured; nil when it has none.
    public func evaluation(_ db: PostgresConnection, job: UUID) throws -> JobViews.Evaluation? {
        try db.query(
            """
            SELECT perplexity, original_perplexity, perplexity_ratio, mean_kl, top1_agreement, scored_tokens,
                mean_cosine, min_cosine, samples, seq_len, dataset
            FROM job_quality WHERE job_id = $1
            """, [job]
        ).first.map {
            JobViews.Evaluation(
                perplexity: try $0.decode("perplexity", as: Double?.self),
                originalPerplexity: try $0.decode("original_perplexity", as: Double?.self),
                perplexityRatio: try $0.decode("perplexity_ratio", as: Double?.self),
                meanKL: try $0.decode("mean_kl", as: Double?.self),
                top1: try $0.decode("top1_agreement", as: Double?.self),
                scoredTokens: try $0.decode("scored_tokens", as: Int?.self),
                meanCosine: try $0.decode("mean_cosine", as: Double?.self),
                minCosine: try $0.decode("min_cosine", as: Double?.self),
                samples: try $0.decode("samples", as: Int?.self),
                seqLen: try $0.decode("seq_len", as: Int?.self), dataset: try $0.decode("dataset", as: String?.self))
        }
    }

    /// The job's attempts in order, with their spans.
    public func attemptLog(_ db: PostgresConnection, job: UUID) throws -> [JobViews.AttemptSpan] {
        try db.query(
            """
            SELECT attempt, worker_id, started_at, ended_at, outcome, error, started_epoch, ended_epoch
            FROM job_attempt_log WHERE job_id = $1 ORDER BY attempt
            """, [job]
        ).map {
            JobViews.AttemptSpan(
                attempt: JobViews.Attempt(
                    attempt: try $0.decode("attempt"), workerID: try $0.decode("worker_id"),
                    startedAt: try $0.decode("started_at"), endedAt: try $0.decode("ended_at", as: String?.self),
                    outcome: try $0.decode("outcome", as: String?.self), error: try $0.decode("error", as: String?.self)
                ),
                startEpoch: try $0.decode("started_epoch"), endEpoch: try $0.decode("ended_epoch"))
        }
    }

    /// The job's per-tensor metrics in the model's order.
    public func layerMetrics(_ db: PostgresConnection, job: UUID, limit: Int = 5000) throws -> [JobViews.Metric] {
        try db.query(
            """
            SELECT tensor, dtype, numel, sparsity, bits, relative_error, output_error, rank, elapsed_ms, bytes_in,
                bytes_out
            FROM job_layer_metrics WHERE job_id = $1 ORDER BY unit_index LIMIT $2
            """, [job, limit]
        ).map(Self.metric)
    }

    /// The job's published files.
    public func artifactFiles(_ db: PostgresConnection, job: UUID) throws -> [JobViews.ArtifactFile] {
        try db.query(
            "SELECT path, bytes, sha256, format, attempt FROM job_artifact_files WHERE job_id = $1 ORDER BY path", [job]
        ).map {
            JobViews.ArtifactFile(
                path: try $0.decode("path"), format: try $0.decode("format"), bytes: try $0.decode("bytes"),
                sha256: try $0.decode("sha256"), attempt: try $0.decode("attempt"))
        }
    }

    /// The job's latest events, newest first, each detail cut to 400 characters.
    public func latestEvents(_ db: PostgresConnection, job: UUID, limit: Int = 200) throws -> [JobViews.Event] {
        try db.query(
            """
            SELECT at, attempt, kind, left(detail::text, 400) AS detail FROM job_event_log WHERE job_id = $1
            ORDER BY id DESC LIMIT $2
            """, [job, limit]
        ).map {
            JobViews.Event(
                at: try $0.decode("at"), attempt: try $0.decode("attempt"), kind: try $0.decode("kind"),
                detailJSON: try $0.decode("detail"))
        }
    }

    /// The gauges and finished-job totals `/metrics` exports.
    public func fleetCounts(_ db: PostgresConnection) throws -> JobViews.FleetCounts {
        let workers = try db.query(
            """
            SELECT count(*) FILTER (WHERE alive) AS alive,
                   count(*) FILTER (WHERE NOT alive AND state <> 'stopped') AS stale
            FROM worker_health
            """)[0]
        let bytes = try db.query("SELECT coalesce(sum(bytes), 0) AS b FROM job_artifact_files")[0]
        let finished = try db.query(
            "SELECT state, count(*) AS n FROM job_summary WHERE finished_at IS NOT NULL GROUP BY state")
        return JobViews.FleetCounts(
            byState: Dictionary(uniqueKeysWithValues: try stateCounts(db).map { ($0.state, $0.jobs) }),
            backlog: try backlog(db), workersAlive: try workers.decode("alive"),
            workersStale: try workers.decode("stale"), artifactBytes: try bytes.decode("b"),
            finishedByState: Dictionary(
                uniqueKeysWithValues: try finished.map { (try $0.decode("state"), try $0.decode("n")) }))
    }

    /// Jobs finished more than 5 s ago (late commits settle) after `after` (finished_at text, job id), in order.
    public func finishedJobs(_ db: PostgresConnection, after: (at: String, id: String)?, limit: Int) throws
        -> [JobViews.FinishedJob]
    {
        try db.query(
            """
            SELECT job_id, kind, finished_at::text AS at, run_s, wait_s FROM job_summary
            WHERE finished_at IS NOT NULL AND finished_at < now() - interval '5 seconds'
              AND ($1::timestamptz IS NULL OR (finished_at, job_id) > ($1::timestamptz, $2::uuid))
            ORDER BY finished_at, job_id LIMIT $3
            """, [after?.at, after?.id, limit]
        ).map {
            JobViews.FinishedJob(
                id: try $0.decode("job_id"), kind: try $0.decode("kind"), finishedAt: try $0.decode("at"),
                runSeconds: try $0.decode("run_s", as: Double?.self),
                waitSeconds: try $0.decode("wait_s", as: Double?.self))
        }
    }
}
