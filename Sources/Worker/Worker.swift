import Compute
import Foundation
import Queue

/// A worker process: claims jobs hinted by Redis, holds their leases, runs them, publishes artifacts.
///
/// Threads, not the Swift cooperative pool: the claim loop (main thread, Redis connection 1),
/// the supervisor's lease thread (heartbeat, renewals; PostgreSQL connection 1) and housekeeping
/// thread (reconciler, disk sweeps), and one thread per running job; all but the lease thread
/// share PostgreSQL connection 2 and Redis connection 2 under locks.
public final class Worker: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var databaseURL: String
        public var redisURL: String
        public var redisPrefix = "squeeze"
        public var artifactRoot: String
        public var concurrency = 1
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public var leaseSeconds = 15.0
        public var reconcileSeconds = 1.0
        public var retryBaseSeconds = 2.0
        public var exitWhenIdle = false
        /// How far ahead a delayed or retrying job keeps an `--exit-when-idle` worker waiting.
        public var idleHorizonSeconds = 60.0
        public var maxMemory: Int64?
        /// Seconds a draining worker waits for running jobs to reach a unit boundary.
        public var drainTimeoutSeconds = 30.0
        /// Directories models may be read from (symlinks resolved); submit checks too.
        public var inputRoots: [String] = []
        /// Seconds to keep retrying PostgreSQL or Redis when either is down at start (0 = forever).
        /// Permanent problems (bad URL, authentication, unknown database, TLS) fail at once.
        public var connectTimeoutSeconds = 60.0
        /// Seconds between sweeps of abandoned staging and finished jobs' checkpoint directories.
        public var sweepSeconds = 300.0
        /// Fault drills only: sleep before each unit so a test can interrupt a job mid-way.
        public var unitDelayMS = 0
        /// How unit checkpoints reach the disk (write-behind by default; `off` only to measure their cost).
        public var checkpoints = CheckpointMode.writeBehind
        /// Seconds one of the worker's transactions may wait on the worker before PostgreSQL ends its session:
        /// a stopped or cut-off worker releases the row and reconciler locks it held (the lease, at least 5 s).
        public var transactionIdleSeconds: Double { max(leaseSeconds, 5) }

        /// A connection to the job database whose transactions keep `transactionIdleSeconds`.
        func jobDatabase() -> SharedPostgres {
            SharedPostgres(url: databaseURL, idleInTransactionTimeout: transactionIdleSeconds)
        }
        public var id = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"

        public init(databaseURL: String, redisURL: String, artifactRoot: String) {
            self.databaseURL = databaseURL
            self.redisURL = redisURL
            self.artifactRoot = artifactRoot
        }
    }

    public let config: Configuration
    let log: Log
    let stop: StopFlag
    let active = ActiveJobs()
    let jobDB: SharedPostgres
    /// The running attempts' fenced writes (over `jobDB`; a fake in tests).
    let attempts: AttemptStore
    let pushRedis: SharedRedis
    let store = JobStore()
    let metrics = WorkerMetrics()
    let publisher: ArtifactPublisher
    var retry: Retrier { Retrier(log: log, stop: stop) }
    /// False while the claim loop cannot reach Redis: the heartbeat then says `disconnected`, and
    /// `worker_health` does not count the worker as alive.
    private let reachLock = NSLock()
    private var reachable = true
    var canClaim: Bool {
        get { reachLock.withLock { reachable } }
        set { reachLock.withLock { reachable = newValue } }
    }

    public convenience init(config: Configuration, log: Log, stop: StopFlag) throws {
        let db = config.jobDatabase()
        try self.init(
            config: config, log: log, stop: stop, jobDB: db, attempts: PostgresAttemptStore(db: db, workerID: config.id)
        )
    }

    init(config: Configuration, log: Log, stop: StopFlag, jobDB: SharedPostgres, attempts: AttemptStore) throws {
        self.config = config
        self.log = log.with(("worker", config.id))
        self.stop = stop
        self.jobDB = jobDB
        self.attempts = attempts
        pushRedis = SharedRedis(url: config.redisURL, prefix: config.redisPrefix)
        publisher = try ArtifactPublisher(root: config.artifactRoot)
    }

    /// Runs until stopped (signal) or, with `exitWhenIdle`, until there is nothing left to do.
    public func run() throws {
        try StartupCheck(worker: self).run()
        try retry("register worker") {
            try jobDB.with { db in
                try WorkerRegistry().register(
                    db, id: config.id, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                    version: Manifest.toolVersion, concurrency: config.concurrency, threads: config.threads,
                    maxMemory: config.maxMemory)
            }
        }
        log.info(
            "worker started", ("concurrency", String(config.concurrency)), ("threads", String(config.threads)),
            ("lease_s", String(config.leaseSeconds)))
        let supervisor = LeaseSupervisor(
            settings: .init(config), active: active,
            stores: (PostgresSupervisorStore(db: config.jobDatabase()), PostgresSupervisorStore(db: jobDB)),
            hints: pushRedis, publisher: publisher, log: log, metrics: metrics
        ) { [unowned self] in Self.heartbeatState(stopping: stop.isSet, canClaim: canClaim) }
        supervisor.start()
        defer { supervisor.stop() }

        let executor = JobExecutor.Collaborators(
            config: config, attempts: attempts, publisher: publisher, hints: pushRedis, metrics: metrics, stop: stop,
            log: log)
        let fatal = ClaimLoop(
            config: config, log: log, stop: stop, active: active, jobDB: jobDB, store: store, metrics: metrics,
            hints: pushRedis, reachable: { [unowned self] in canClaim = $0 },
            run: { JobExecutor(executor, active: $0).execute() }
        ).run()
        if stop.isSet { log.info("draining", ("running", String(active.count))) }
        try? jobDB.with { try WorkerRegistry().heartbeat($0, id: config.id, state: .draining) }
        if !active.waitEmpty(timeout: config.drainTimeoutSeconds) {
            log.warning("drain timed out; leases will expire", ("running", String(active.count)))
        }
        supervisor.stop()
        try? jobDB.with { try WorkerRegistry().heartbeat($0, id: config.id, state: .stopped) }
        log.info("worker stopped")
        if let fatal { throw fatal }
    }

    /// What the heartbeat reports: draining once stopping, else disconnected while Redis does not answer.
    static func heartbeatState(stopping: Bool, canClaim: Bool) -> WorkerState {
        stopping ? .draining : canClaim ? .running : .disconnected
    }
}
