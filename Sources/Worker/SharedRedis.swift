import Compute
import Foundation
import Queue

/// A Redis connection for pushes, shared under a lock, reconnecting after errors.
final class SharedRedis: @unchecked Sendable {
    private let lock = NSLock()
    private let url: String
    private let prefix: String
    private var conn: RedisConnection?

    init(url: String, prefix: String) {
        self.url = url
        self.prefix = prefix
    }

    func push(_ items: [(id: UUID, score: Double)]) throws {
        if items.isEmpty { return }
        try lock.withLock {
            do {
                if conn == nil { conn = try RedisConnection(url: url) }
                try RedisTransport(redis: conn!, prefix: prefix).push(items)
            } catch {
                conn = nil
                throw error
            }
        }
    }
}
