import Foundation

/// Applies `migrations/NNNN_name.sql` files in order, once each, recording them in `schema_migrations`.
///
/// Each file runs in its own transaction under a transaction-level advisory lock, so several
/// processes may migrate at once (and through PgBouncer's transaction pooling).
public struct Migrator {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public enum MigratorError: Error, CustomStringConvertible {
        case unreadable(String)
        case badFileName(String)
        case duplicateVersion(Int)
        case failed(file: String, underlying: Error)

        public var description: String {
            switch self {
            case .unreadable(let d): return "migrations directory \(d) is not a readable directory"
            case .badFileName(let f): return "migration file \(f) is not named NNNN_name.sql"
            case .duplicateVersion(let v): return "two migration files have version \(v)"
            case .failed(let f, let e): return "migration \(f) failed: \(e)"
            }
        }
    }

    static let lockKey = 0x5351_5545_455A  // "SQUEEZ"
    public let migrations: [Migration]

    /// The migrations shipped inside the binary (`Migrator+Embedded.swift`: migrations/, embedded by SwiftPM).
    public init() throws {
        try self.init(files: Self.embedded)
    }

    /// Loads every `*.sql` file in `directory`, sorted by version.
    public init(directory: URL) throws {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else {
            throw MigratorError.unreadable(directory.path)
        }
        try self.init(
            files: try names.filter { $0.hasSuffix(".sql") }.map { f in
                (f, try String(contentsOf: directory.appendingPathComponent(f), encoding: .utf8))
            })
    }

    private init(files: [(name: String, sql: String)]) throws {
        var list = [Migration]()
        for (f, sql) in files {
            guard let us = f.firstIndex(of: "_"), let v = Int(f[..<us]) else { throw MigratorError.badFileName(f) }
            list.append(Migration(version: v, name: f, sql: sql))
        }
        list.sort { $0.version < $1.version }
        for (a, b) in zip(list, list.dropFirst()) where a.version == b.version {
            throw MigratorError.duplicateVersion(a.version)
        }
        migrations = list
    }

    /// Applies pending migrations; returns the names applied (empty when up to date).
    @discardableResult
    public func migrate(_ db: PostgresConnection) throws -> [String] {
        try db.transaction { tx in
            try tx.query("SELECT pg_advisory_xact_lock($1)", [Migrator.lockKey])
            try tx.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
        }
        var applied = [String]()
        for m in migrations {
            do {
                let did: Bool = try db.transaction { tx in
                    try tx.query("SELECT pg_advisory_xact_lock($1)", [Migrator.lockKey])
                    let done = try tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [m.version])
                    if !done.isEmpty { return false }
                    try tx.executeScript(m.sql)
                    try tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name])
                    return true
                }
                if did { applied.append(m.name) }
            } catch {
                throw MigratorError.failed(file: m.name, underlying: error)
            }
        }
        return applied
    }
}
