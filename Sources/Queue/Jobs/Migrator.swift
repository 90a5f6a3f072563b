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
        case directoryNotFound([String])
        case badFileName(String)
        case duplicateVersion(Int)
        case failed(file: String, underlying: Error)

        public var description: String {
            switch self {
            case .directoryNotFound(let tried):
                return "migrations directory not found (tried \(tried.joined(separator: ", "))); pass --migrations DIR"
            case .badFileName(let f): return "migration file \(f) is not named NNNN_name.sql"
            case .duplicateVersion(let v): return "two migration files have version \(v)"
            case .failed(let f, let e): return "migration \(f) failed: \(e)"
            }
        }
    }

    static let lockKey = 0x5351_5545_455A  // "SQUEEZ"
    public let migrations: [Migration]

    /// The migrations shipped inside the binary (`Migrator+Embedded.swift`, from migrations/).
    public init() throws {
        try self.init(files: Self.embedded)
    }

    /// Loads every `*.sql` file in `directory`, sorted by version.
    public init(directory: URL) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }
        try self.init(
            files: try names.map { f in
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

    /// Finds the migrations directory: explicit path (flag), `configured` (the environment's
    /// `SQUEEZE_MIGRATIONS_DIR`), beside the executable, or `./migrations`.
    public static func locate(explicit: String?, configured: String? = nil) throws -> URL {
        var candidates = [String]()
        if let e = explicit { candidates.append(e) }
        if let c = configured { candidates.append(c) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(exe.appendingPathComponent("../../migrations").standardized.path)  // .build/<config>/squeeze
        // .build/<triple>/<config>
        candidates.append(exe.appendingPathComponent("../../../migrations").standardized.path)
        candidates.append(exe.appendingPathComponent("../share/squeeze/migrations").standardized.path)
        candidates.append(FileManager.default.currentDirectoryPath + "/migrations")
        for c in candidates {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: c, isDirectory: &isDir), isDir.boolValue {
                return URL(fileURLWithPath: c)
            }
            if c == explicit { break }
        }
        throw MigratorError.directoryNotFound(candidates)
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
