import Foundation

/// A connection shared by several threads, one statement batch at a time (mutex-serialized).
///
/// Callers are plain threads, never the Swift cooperative pool, so blocking here is safe.
public final class SharedPostgres: @unchecked Sendable {
    private let lock = NSLock()
    private let url: String
    private let idleInTransactionTimeout: Double?
    private var connection: PostgresConnection?

    /// `idleInTransactionTimeout`: see `PostgresConnection.idleInTransactionTimeout`.
    public init(url: String, idleInTransactionTimeout: Double? = nil) {
        self.url = url
        self.idleInTransactionTimeout = idleInTransactionTimeout
    }

    /// Runs `body` with exclusive use of the connection, connecting lazily.
    public func with<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if connection == nil {
            connection = try PostgresConnection(url: url)
            connection?.idleInTransactionTimeout = idleInTransactionTimeout
        }
        return try body(connection!)
    }

    /// Drops the underlying connection.
    public func close() {
        lock.lock()
        connection?.close()
        connection = nil
        lock.unlock()
    }
}
