import Foundation
import Queue

/// A worker's configuration that cannot work (bad URL, authentication, unknown database, TLS
/// mismatch), or a server still unreachable when `--connect-timeout` ran out.
public struct WorkerStartupError: Error, CustomStringConvertible {
    public let service: String
    public let underlying: Error
    public var timedOut = false

    public var description: String {
        let why = String(describing: underlying)
        return timedOut
            ? "\(service) still unreachable after the connect timeout: \(why)"
            : "\(service) refused the worker's settings: \(why)"
    }
}

/// Before a worker registers: PostgreSQL answers a query and Redis answers PING (after AUTH and
/// SELECT). A server that is down is retried with backoff until the connect timeout; a
/// permanent error ends the worker at once, so a misconfigured worker never shows as alive.
struct StartupCheck {
    let worker: Worker

    func run() throws {
        let cfg = worker.config
        let deadline =
            cfg.connectTimeoutSeconds > 0 ? Date().addingTimeInterval(cfg.connectTimeoutSeconds) : .distantFuture
        try retry("PostgreSQL", until: deadline) {
            try worker.jobDB.with { _ = try $0.query("SELECT 1") }
        }
        try retry("Redis", until: deadline) {
            let r = try RedisConnection(url: cfg.redisURL, timeout: 5)
            _ = try r.command(["PING"])
        }
    }

    private func retry(_ service: String, until deadline: Date, _ body: () throws -> Void) throws {
        var n = 0
        while true {
            do { return try body() } catch {
                guard Retrier.isTransient(error) else { throw WorkerStartupError(service: service, underlying: error) }
                n += 1
                let remaining = deadline.timeIntervalSinceNow
                guard !worker.stop.isSet, remaining > 0 else {
                    throw WorkerStartupError(service: service, underlying: error, timedOut: true)
                }
                let wait = min(5.0, 0.25 * pow(2, Double(min(n, 5))), remaining)
                worker.log.warning(
                    "\(service) unavailable at start; retrying", ("error", String(describing: error)),
                    ("try", String(n)),
                    ("wait_s", String(format: "%.2f", wait)))
                Thread.sleep(forTimeInterval: wait)
            }
        }
    }
}
