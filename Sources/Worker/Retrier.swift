import Foundation
import Queue

/// Retries transient PostgreSQL and Redis errors with backoff, logging each retry; gives up on a
/// stopped worker after 50 tries when there is no deadline.
struct Retrier {
    let log: Log
    let stop: StopFlag

    /// True for database or Redis errors that a fresh connection may not repeat.
    static func isTransient(_ error: Error) -> Bool {
        (error as? PostgresError)?.isTransient ?? (error as? RedisError)?.isTransient ?? false
    }

    /// Runs `body`, retrying transient errors until `deadline`.
    @discardableResult
    func callAsFunction<T>(_ what: String, deadline: Date = .distantFuture, _ body: () throws -> T) throws -> T {
        var n = 0
        while true {
            do { return try body() } catch {
                let transient = Self.isTransient(error)
                n += 1
                let wait = min(2.0, 0.1 * pow(2, Double(n)))
                guard transient, Date().addingTimeInterval(wait) < deadline,
                    !(stop.isSet && deadline == .distantFuture && n > 50)
                else { throw error }
                log.warning(
                    "\(what): transient error, retrying", ("error", String(describing: error)), ("try", String(n)))
                Thread.sleep(forTimeInterval: wait)
            }
        }
    }
}
