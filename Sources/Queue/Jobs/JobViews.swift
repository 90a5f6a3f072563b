import Foundation

/// Rows the CLI and operators read, typed. Timestamps stay as PostgreSQL prints them.
public enum JobViews {
    /// A `queue_overview` row.
    public struct StateCount: Sendable { public let state: String, jobs: Int, delayed: Int, leaseExpired: Int }
    /// A live `worker_health` row.
    public struct WorkerRow: Sendable {
        public let id: String, host: String, pid: Int, state: String, runningJobs: Int, jobsDone: Int,
            heartbeatAge: Double
    }
    /// A `batch_progress` row.
    public struct BatchRow: Sendable {
        public let id: UUID, name: String, jobs: Int, succeeded: Int, failed: Int, running: Int, queued: Int,
            pctDone: Double, waiting: Int
    }
    /// One job, as `squeeze show` prints it.
    public struct Job: Sendable {
        public let id: UUID, kind: String, state: String, attempt: Int, maxAttempts: Int, priority: Int
        public let inputPath: String, outputPath: String?, error: String?, errorCode: String?
        public let unitsDone: Int?, unitsTotal: Int?, workerID: String?, cancelRequested: Bool
        public let batchID: String?, idempotencyKey: String?, createdAt: String, startedAt: String?,
            finishedAt: String?, runAfter: String
        public let recipeJSON: String
        /// The size a BitStack input is loaded at (`--size`); nil for other inputs.
        public let inputSize: String?
    }
    public struct Attempt: Sendable {
        public let attempt: Int, workerID: String, startedAt: String, endedAt: String?, outcome: String?, error: String?
    }
    public struct Event: Sendable { public let at: String, attempt: Int, kind: String, detailJSON: String }
    public struct Metric: Sendable {
        public let tensor: String, dtype: String, numel: Int, sparsity: Double?, bits: Double?, relativeError: Double?,
            outputError: Double?
        public let rank: Int?, elapsedMS: Double?, bytesIn: Int?, bytesOut: Int?
    }
    public struct Artifact: Sendable { public let path: String, bytes: Int64, sha256: String, format: String }
    /// A batch job's size and quality (`job_quality`): the evaluated file's bytes, perplexities, KL, top-1.
    public struct Quality: Sendable {
        public let id: UUID, key: String?, state: String, modelBytes: Int64?, perplexity: Double?,
            originalPerplexity: Double?, meanKL: Double?, top1: Double?
    }
    /// A job this one needs (`job_waits`): its id, key and state.
    public struct Dependency: Sendable { public let id: UUID, key: String?, state: String }
    /// The `job_throughput` row: jobs finished over the last minute, hour and day.
    public struct Throughput: Sendable {
        public let lastMinute: Int, lastHour: Int, lastDay: Int, succeededLastHour: Int, failedLastHour: Int
    }
    /// A `queue_backlog` row: queued jobs of one priority.
    public struct Backlog: Sendable { public let priority: Int, jobs: Int, delayed: Int, oldestAge: Double }
    /// A `running_jobs` row.
    public struct Running: Sendable {
        public let id: UUID, kind: String, attempt: Int, maxAttempts: Int, workerID: String?, inputPath: String
        public let unitsDone: Int, unitsTotal: Int?, runSeconds: Double, leaseExpired: Bool
    }
    /// Where a set of jobs stands (for `squeeze wait`).
    public struct Progress: Sendable {
        public let total: Int, succeeded: Int, failed: Int, running: Int, unitsDone: Int, unitsTotal: Int
    }
}

extension JobStore {
    public func stateCounts(_ db: PostgresConnection) throws -> [JobViews.StateCount] {
        try db.query(
            """
            SELECT state, jobs, delayed, lease_expired FROM queue_overview
            ORDER BY array_position(ARRAY['waiting','queued','running','succeeded','failed','dead','cancelled'], state)
            """
        ).map {
            JobViews.StateCount(
                state: try $0.decode("state"), jobs: try $0.decode("jobs"), delayed: try $0.decode("delayed"),
                leaseExpired: try $0.decode("lease_expired"))
        }
    }

    public func liveWorkers(_ db: PostgresConnection) throws -> [JobViews.WorkerRow] {
        try db.query(
            "SELECT id, host, pid, state, running_jobs, jobs_done, round(heartbeat_age_s::numeric, 1) AS age FROM "
                + "worker_health WHERE alive ORDER BY started_at"
        )
        .map {
            JobViews.WorkerRow(
                id: try $0.decode("id"), host: try $0.decode("host"), pid: try $0.decode("pid"),
                state: try $0.decode("state"),
                runningJobs: try $0.decode("running_jobs"), jobsDone: try $0.decode("jobs_done"),
                heartbeatAge: try $0.decode("age"))
        }
    }

    public func recentBatches(_ db: PostgresConnection, limit: Int = 10) throws -> [JobViews.BatchRow] {
        try db.query(
            "SELECT batch_id, name, jobs, succeeded, failed, running, queued, pct_done, waiting FROM batch_progress "
                + "ORDER BY created_at DESC LIMIT $1",
            [limit]
        )
        .map {
            JobViews.BatchRow(
                id: try $0.decode("batch_id"), name: try $0.decode("name"), jobs: try $0.decode("jobs"),
                succeeded: try $0.decode("succeeded"), failed: try $0.decode("failed"),
                running: try $0.decode("running"),
                queued: try $0.decode("queued"), pctDone: try $0.decode("pct_done"), waiting: try $0.decode("waiting"))
        }
    }

    public func throughput(_ db: PostgresConnection) throws -> JobViews.Throughput {
        let r = try db.query(
            "SELECT last_minute, last_hour, last_day, succeeded_last_hour, failed_last_hour FROM job_throughput")[0]
        return JobViews.Throughput(
            lastMinute: try r.decode("last_minute"), lastHour: try r.decode("last_hour"),
            lastDay: try r.decode("last_day"),
            succeededLastHour: try r.decode("succeeded_last_hour"), failedLastHour: try r.decode("failed_last_hour"))
    }

    public func backlog(_ db: PostgresConnection) throws -> [JobViews.Backlog] {
        try db.query(
            "SELECT priority, jobs, delayed, oldest_age_s AS age FROM queue_backlog ORDER BY priority DESC"
        )
        .map {
            JobViews.Backlog(
                priority: try $0.decode("priority"), jobs: try $0.decode("jobs"), delayed: try $0.decode("delayed"),
                oldestAge: try $0.decode("age"))
        }
    }

    public func runningJobs(_ db: PostgresConnection, limit: Int = 20) throws -> [JobViews.Running] {
        try db.query(
            """
            SELECT job_id, kind, attempt, max_attempts, worker_id, input_path, units_done, units_total,
                   round(coalesce(run_s, 0)::numeric, 1) AS run_s, coalesce(lease_expired, false) AS lease_expired
            FROM running_jobs ORDER BY run_s DESC LIMIT $1
            """, [limit]
        ).map {
            JobViews.Running(
                id: try $0.decode("job_id"), kind: try $0.decode("kind"), attempt: try $0.decode("attempt"),
                maxAttempts: try $0.decode("max_attempts"),
                workerID: try $0.decode("worker_id", as: String?.self), inputPath: try $0.decode("input_path"),
                unitsDone: try $0.decode("units_done"),
                unitsTotal: try $0.decode("units_total", as: Int?.self), runSeconds: try $0.decode("run_s"),
                leaseExpired: try $0.decode("lease_expired"))
        }
    }

    public func job(_ db: PostgresConnection, id: UUID) throws -> JobViews.Job? {
        try db.query(
            """
            SELECT id, kind, state, attempt, max_attempts, priority, input_path, output_path, error, error_code,
                   units_done, units_total, worker_id, cancel_requested, batch_id, idempotency_key,
                   created_at, started_at, finished_at, run_after, recipe::text AS recipe, input_size
            FROM jobs WHERE id = $1
            """, [id]
        ).first.map { r in
            JobViews.Job(
                id: try r.decode("id"), kind: try r.decode("kind"), state: try r.decode("state"),
                attempt: try r.decode("attempt"),
                maxAttempts: try r.decode("max_attempts"), priority: try r.decode("priority"),
                inputPath: try r.decode("input_path"),
                outputPath: try r.decode("output_path", as: String?.self),
                error: try r.decode("error", as: String?.self),
                errorCode: try r.decode("error_code", as: String?.self),
                unitsDone: try r.decode("units_done", as: Int?.self),
                unitsTotal: try r.decode("units_total", as: Int?.self),
                workerID: try r.decode("worker_id", as: String?.self),
                cancelRequested: try r.decode("cancel_requested"), batchID: try r.decode("batch_id", as: String?.self),
                idempotencyKey: try r.decode("idempotency_key", as: String?.self),
                createdAt: try r.decode("created_at"),
                startedAt: try r.decode("started_at", as: String?.self),
                finishedAt: try r.decode("finished_at", as: String?.self),
                runAfter: try r.decode("run_after"), recipeJSON: try r.decode("recipe"),
                inputSize: try r.decode("input_size", as: String?.self))
        }
    }

    public func attempts(_ db: PostgresConnection, job: UUID) throws -> [JobViews.Attempt] {
        try db.query(
            "SELECT attempt, worker_id, started_at, ended_at, outcome, error FROM job_attempts WHERE job_id = $1 ORDER "
                + "BY attempt",
            [job]
        )
        .map {
            JobViews.Attempt(
                attempt: try $0.decode("attempt"), workerID: try $0.decode("worker_id"),
                startedAt: try $0.decode("started_at"),
                endedAt: try $0.decode("ended_at", as: String?.self),
                outcome: try $0.decode("outcome", as: String?.self),
                error: try $0.decode("error", as: String?.self))
        }
    }

    public func events(_ db: PostgresConnection, job: UUID) throws -> [JobViews.Event] {
        try db.query(
            "SELECT at, attempt, kind, detail::text AS detail FROM job_events WHERE job_id = $1 ORDER BY id", [job]
        )
        .map {
            JobViews.Event(
                at: try $0.decode("at"), attempt: try $0.decode("attempt"), kind: try $0.decode("kind"),
                detailJSON: try $0.decode("detail"))
        }
    }

    public func metrics(_ db: PostgresConnection, job: UUID) throws -> [JobViews.Metric] {
        try db.query(
            """
            SELECT tensor, dtype, numel, sparsity, bits, relative_error, output_error, rank, elapsed_ms, bytes_in,
                bytes_out
            FROM layer_metrics WHERE job_id = $1 ORDER BY unit_index
            """, [job]
        ).map(Self.metric)
    }

    static func metric(_ r: PostgresRow) throws -> JobViews.Metric {
        JobViews.Metric(
            tensor: try r.decode("tensor"), dtype: try r.decode("dtype"), numel: try r.decode("numel"),
            sparsity: try r.decode("sparsity", as: Double?.self), bits: try r.decode("bits", as: Double?.self),
            relativeError: try r.decode("relative_error", as: Double?.self),
            outputError: try r.decode("output_error", as: Double?.self),
            rank: try r.decode("rank", as: Int?.self), elapsedMS: try r.decode("elapsed_ms", as: Double?.self),
            bytesIn: try r.decode("bytes_in", as: Int?.self), bytesOut: try r.decode("bytes_out", as: Int?.self))
    }

    /// Every job of a batch with what its evaluation measured (nil where it has none yet).
    public func batchQuality(_ db: PostgresConnection, batch: UUID) throws -> [JobViews.Quality] {
        try db.query(
            """
            SELECT j.id, j.idempotency_key, j.state, q.model_bytes, q.perplexity, q.original_perplexity, q.mean_kl,
                   q.top1_agreement
            FROM jobs j LEFT JOIN job_quality q ON q.job_id = j.id
            WHERE j.batch_id = $1 ORDER BY q.model_bytes DESC NULLS LAST, j.seq
            """, [batch]
        ).map {
            JobViews.Quality(
                id: try $0.decode("id"), key: $0["idempotency_key"], state: try $0.decode("state"),
                modelBytes: $0["model_bytes"].flatMap { Int64($0) },
                perplexity: $0["perplexity"].flatMap { Double($0) },
                originalPerplexity: $0["original_perplexity"].flatMap { Double($0) },
                meanKL: $0["mean_kl"].flatMap { Double($0) }, top1: $0["top1_agreement"].flatMap { Double($0) })
        }
    }

    /// The jobs `job` needs, from the `job_waits` view.
    public func dependencies(_ db: PostgresConnection, job: UUID) throws -> [JobViews.Dependency] {
        try db.query("SELECT needs, needs_key, needs_state FROM job_waits WHERE job_id = $1 ORDER BY needs", [job])
            .map {
                JobViews.Dependency(
                    id: try $0.decode("needs"), key: $0["needs_key"], state: try $0.decode("needs_state"))
            }
    }

    public func artifacts(_ db: PostgresConnection, job: UUID) throws -> [JobViews.Artifact] {
        try db.query("SELECT path, bytes, sha256, format FROM artifacts WHERE job_id = $1 ORDER BY path", [job])
            .map {
                JobViews.Artifact(
                    path: try $0.decode("path"), bytes: try $0.decode("bytes"), sha256: try $0.decode("sha256"),
                    format: try $0.decode("format"))
            }
    }

    public func progress(_ db: PostgresConnection, jobs ids: [UUID], batch: UUID?) throws -> JobViews.Progress {
        let r = try db.query(
            """
            SELECT count(*) AS total,
                   count(*) FILTER (WHERE state = 'succeeded') AS ok,
                   count(*) FILTER (WHERE state IN ('failed', 'dead', 'cancelled')) AS bad,
                   count(*) FILTER (WHERE state = 'running') AS running,
                   coalesce(sum(units_done) FILTER (WHERE state = 'running'), 0) AS units_done,
                   coalesce(sum(units_total) FILTER (WHERE state = 'running'), 0) AS units_total
            FROM jobs WHERE id = ANY($1::uuid[]) OR batch_id = $2::uuid
            """, [ids, batch])[0]
        return JobViews.Progress(
            total: try r.decode("total"), succeeded: try r.decode("ok"), failed: try r.decode("bad"),
            running: try r.decode("running"), unitsDone: try r.decode("units_done"),
            unitsTotal: try r.decode("units_total"))
    }
}
