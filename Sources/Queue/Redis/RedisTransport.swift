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

    /// Adds ready jobs: one `ZADD NX` per 1,000, all sent in one pipelined round trip; existing
    /// members keep their score.
    public func push(_ items: [(id: UUID, score: Double)]) throws {
        let commands = stride(from: 0, to: items.count, by: 1000).map { i in
            items[i..<min(i + 1000, items.count)].reduce(into: ["ZADD", key, "NX"]) { cmd, it in
                cmd.append(String(it.score))
                cmd.append(it.id.uuidString.lowercased())
            }
        }
        for reply in try redis.pipeline(commands) {
            if case .status(let s) = reply, s.hasPrefix("ERR ") {
                throw RedisError(code: .server, message: "ZADD: " + s.dropFirst(4))
            }
        }
    }

    /// Blocks up to `timeout` seconds for the best ready job id.
    public func pop(timeout: Double) throws -> UUID? {
        let r = try redis.command(
            [Array("BZPOPMIN".utf8), Array(key.utf8), Array(String(timeout).utf8)], timeout: timeout + 5)
        guard let a = r.array, a.count == 3, let s = a[1].string else { return nil }
        return UUID(uuidString: s)
    }

    /// Up to `max` best ready job ids: those ready now (`ZPOPMIN`), else blocks up to `timeout`
    /// seconds for one (`BZPOPMIN`) and takes whatever else is ready with it.
    public func pop(max: Int, timeout: Double) throws -> [UUID] {
        guard max > 1 else { return try pop(timeout: timeout).map { [$0] } ?? [] }
        var ids = try popReady(max)
        if ids.isEmpty, let first = try pop(timeout: timeout) { ids = [first] + (try popReady(max - 1)) }
        return ids
    }

    /// `ZPOPMIN key n`: up to n ids ready now, best first.
    private func popReady(_ n: Int) throws -> [UUID] {
        guard n > 0 else { return [] }
        let r = try redis.command(["ZPOPMIN", key, String(n)])
        let flat = r.array ?? []
        return stride(from: 0, to: flat.count - 1, by: 2).compactMap { flat[$0].string.flatMap(UUID.init(uuidString:)) }
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
