import Foundation

/// The ready set in Redis: a sorted set of job ids, higher priority first, FIFO within a priority.
///
/// Redis carries hints only; PostgreSQL decides who runs what. Pushing twice is harmless.
public final class RedisTransport {
    public let key: String
    private let redis: RedisConnection

    /// `prefix` namespaces the keys (tests use one per test).
    public init(redis: RedisConnection, prefix: String = "squeeze") {
        self.redis = redis
        self.key = prefix + ":ready"
    }

    /// Score that orders by priority (higher first) then submission sequence.
    public static func score(priority: Int, seq: Int64) -> Double {
        Double(-priority) * 1e12 + Double(seq)
    }

    /// Adds ready jobs (pipelined, chunks of 1000); existing members keep their score.
    public func push(_ items: [(id: UUID, score: Double)]) throws {
        var i = 0
        while i < items.count {
            let chunk = items[i..<min(i + 1000, items.count)]
            var cmd = ["ZADD", key, "NX"]
            for it in chunk {
                cmd.append(String(it.score))
                cmd.append(it.id.uuidString.lowercased())
            }
            try redis.command(cmd)
            i += 1000
        }
    }

    /// Blocks up to `timeout` seconds for the best ready job id.
    public func pop(timeout: Double) throws -> UUID? {
        let r = try redis.command([Array("BZPOPMIN".utf8), Array(key.utf8), Array(String(timeout).utf8)], timeout: timeout + 5)
        guard let a = r.array, a.count == 3, let s = a[1].string else { return nil }
        return UUID(uuidString: s)
    }

    /// Removes ids (cancelled jobs) from the ready set.
    public func remove(_ ids: [UUID]) throws {
        if ids.isEmpty { return }
        try redis.command(["ZREM", key] + ids.map { $0.uuidString.lowercased() })
    }

    /// Number of ids in the ready set.
    public func count() throws -> Int {
        Int(try redis.command(["ZCARD", key]).integer ?? 0)
    }
}
