import ArgumentParser
import Compute
import Dashboard
import Foundation
import Worker

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: claim jobs, hold leases, run them, publish artifacts. SIGTERM drains.")

    @OptionGroup var conn: ConnectionOptions
    @OptionGroup var artifacts: ArtifactRootOption

    @Option(name: .long, help: "Jobs run at once.")
    var concurrency: Int = 1

    @Option(name: .long, help: "Compute threads per job (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "Exit once nothing is queued or due within a minute and nothing is running.")
    var exitWhenIdle = false

    @Option(name: .long, help: "Lease length in seconds; renewed every third of it.")
    var leaseSeconds: Double = 15

    @Option(name: .long, help: "Seconds between reconciler passes.")
    var reconcileSeconds: Double = 1

    @Option(name: .long, help: "Base of the exponential retry backoff, seconds.")
    var retryBaseSeconds: Double = 2

    @Option(name: .long, help: "Do not take jobs whose memory estimate exceeds this (e.g. 8G).")
    var maxMemory: ByteSize?

    @OptionGroup var inputRoots: InputRootOptions

    @Option(
        name: .long,
        help: "Seconds to keep retrying PostgreSQL/Redis when down at start (0 = forever); bad settings fail at once.")
    var connectTimeout: Double = 60

    @Option(
        name: .long, help: "Seconds between sweeps of abandoned staging and finished jobs' checkpoints (also at start)."
    )
    var sweepSeconds: Double = 300

    @Option(name: .long, help: "Worker id (default host-pid-random).")
    var id: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Fault drills: sleep this long before each unit of a compression job.", visibility: .hidden))
    var unitDelayMs: Int = 0

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Unit checkpoints: write-behind (a background thread), sync, or off (to measure their cost).",
            visibility: .hidden))
    var checkpoints: String = CheckpointMode.writeBehind.rawValue

    @Option(
        name: .long,
        help: "Serve this worker's Prometheus metrics at http://ADDR/metrics (HOST:PORT, e.g. 0.0.0.0:9101).")
    var metricsListen: String?

    @Option(name: .long, help: "Log level: debug, info, warning, error.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log line format: logfmt or json.")
    var logFormat: String = "logfmt"

    func validate() throws {
        guard concurrency >= 1 && concurrency <= 256 else { throw ValidationError("--concurrency must be in 1...256") }
        if let t = threads { guard t >= 1 && t <= 1024 else { throw ValidationError("--threads must be in 1...1024") } }
        guard leaseSeconds >= 1 else { throw ValidationError("--lease-seconds must be at least 1") }
        guard LineLogHandler.Format(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format must be logfmt or json")
        }
        guard connectTimeout >= 0 else {
            throw ValidationError("--connect-timeout must be 0 (forever) or more seconds")
        }
        guard CheckpointMode(rawValue: checkpoints) != nil else {
            throw ValidationError("--checkpoints must be write-behind, sync or off, got \(checkpoints)")
        }
        if let m = metricsListen, ListenAddress(m) == nil {
            throw ValidationError("--metrics-listen must be HOST:PORT with an IPv4 address or localhost, got \(m)")
        }
    }

    func run() throws {
        try oneLine {
            var cfg = Worker.Configuration(
                databaseURL: try conn.database(), redisURL: try conn.redis(), artifactRoot: try artifacts.root())
            cfg.redisPrefix = conn.prefix
            cfg.inputRoots = inputRoots.roots(artifactRoot: cfg.artifactRoot)
            cfg.concurrency = concurrency
            if let t = threads { cfg.threads = t }
            cfg.exitWhenIdle = exitWhenIdle
            cfg.leaseSeconds = leaseSeconds
            cfg.reconcileSeconds = reconcileSeconds
            cfg.retryBaseSeconds = retryBaseSeconds
            cfg.maxMemory = maxMemory?.bytes
            if let id { cfg.id = id }
            cfg.unitDelayMS = unitDelayMs
            cfg.checkpoints = CheckpointMode(rawValue: checkpoints) ?? .writeBehind
            cfg.connectTimeoutSeconds = connectTimeout
            cfg.sweepSeconds = max(1, sweepSeconds)
            let level: Log.Level =
                ["debug": .debug, "info": .info, "warning": .warning, "error": .error][logLevel] ?? .info
            let log = Log(level: level, format: LineLogHandler.Format(rawValue: logFormat) ?? .logfmt)
            let stop = StopFlag()
            stop.installSignalHandlers(log: log)
            if let m = metricsListen.flatMap(ListenAddress.init) {
                let port = try WorkerMetricsEndpoint.start(m)
                log.info("metrics listening", ("url", "http://\(m.host):\(port)/metrics"))
            }
            try Worker(config: cfg, log: log, stop: stop).run()
        }
    }
}
