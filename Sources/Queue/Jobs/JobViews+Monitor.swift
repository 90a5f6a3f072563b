import Foundation

/// Rows the dashboard and its `/metrics` read, typed; from the monitoring views only (what the
/// `squeeze_monitor` role may read). Every column is decoded by name: a renamed or retyped column
/// is an error, never a blank cell.
extension JobViews {
    /// Finished jobs in one minute or hour of `job_summary`.
    public struct FinishedBucket: Sendable { public let start: Double, succeeded: Int, failed: Int }
    /// A `worker_health` row with the jobs it runs now.
    public struct FleetWorker: Sendable {
        public let id: String, host: String, pid: Int, state: String, alive: Bool, heartbeatAge: Double?
        public let jobsDone: Int, currentJobs: [String]
    }
    /// A batch with queued, running or waiting jobs, and how many finished in the last 10 minutes.
    public struct ActiveBatch: Sendable {
        public let batch: BatchSummary
        public let waiting: Int, finishedRecently: Int, windowSeconds: Double
    }
    /// A `batch_progress` row.
    public struct BatchSummary: Sendable {
        public let id: UUID, name: String, createdAt: String, jobs: Int, queued: Int, running: Int, succeeded: Int
        public let failed: Int, cancelled: Int, pctDone: Double
    }
    /// A `failing_jobs` row.
    public struct Failure: Sendable {
        public let id: UUID, kind: String, state: String, attempt: Int, maxAttempts: Int, errorCode: String?
        public let error: String?, inputPath: String, updatedAt: String
    }
    /// A `job_summary` row.
    public struct JobSummary: Sendable {
        public let id: UUID, batchID: UUID?, kind: String, state: String, priority: Int, attempt: Int
        public let maxAttempts: Int, inputPath: String, outputPath: String?, workerID: String?, unitsDone: Int?
        public let unitsTotal: Int?, errorCode: String?, error: String?, cancelRequested: Bool, recipeJSON: String
        public let createdAt: String, startedAt: String?, finishedAt: String?, waitSeconds: Double?
        public let runSeconds: Double?, artifactBytes: Int64
    }
    /// A batch's job with what its evaluation measured (`job_summary` and `job_quality`).
    public struct BatchJob: Sendable {
        public let job: JobSummary
        public let perplexityRatio: Double?, meanKL: Double?, meanCosine: Double?
    }
    /// A succeeded job's size (the evaluated file, else all its outputs) and quality.
    public struct SizeQuality: Sendable {
        public let id: UUID, recipeJSON: String, size: Int64, perplexityRatio: Double?, meanKL: Double?
        public let meanCosine: Double?
    }
    /// A `job_quality` row: what the job's last evaluation measured.
    public struct Evaluation: Sendable {
        public let perplexity: Double?, originalPerplexity: Double?, perplexityRatio: Double?, meanKL: Double?
        public let top1: Double?, scoredTokens: Int?, meanCosine: Double?, minCosine: Double?, samples: Int?
        public let seqLen: Int?, dataset: String?
    }
    /// A `job_attempt_log` row, with its span in seconds since the epoch (an open attempt ends now).
    public struct AttemptSpan: Sendable {
        public let attempt: Attempt
        public let startEpoch: Double, endEpoch: Double
    }
    /// A `job_artifact_files` row.
    public struct ArtifactFile: Sendable {
        public let path: String, format: String, bytes: Int64, sha256: String, attempt: Int
    }
    /// Jobs finished in each state, and the queue and fleet gauges, for `/metrics`.
    public struct FleetCounts: Sendable {
        public let byState: [String: Int], backlog: [Backlog], workersAlive: Int, workersStale: Int
        public let artifactBytes: Int64, finishedByState: [String: Int64]
    }
    /// A finished job's run and wait, for the `/metrics` histograms.
    public struct FinishedJob: Sendable {
        public let id: String, kind: String, finishedAt: String, runSeconds: Double?, waitSeconds: Double?
    }
}
