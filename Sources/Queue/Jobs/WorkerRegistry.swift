import Foundation

/// Rows in `workers`: registration, heartbeat and state.
public struct WorkerRegistry {
    public init() {}

    /// Inserts or refreshes this worker's row.
    public func register(
        _ db: PostgresConnection, id: String, host: String, pid: Int32, version: String,
        concurrency: Int, threads: Int, maxMemory: Int64?
    ) throws {
        try db.query(
            """
            INSERT INTO workers (id, host, pid, version, concurrency, threads, max_memory)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, version = excluded.version,
                concurrency = excluded.concurrency, threads = excluded.threads, max_memory = excluded.max_memory,
                state = 'running', started_at = now(), last_heartbeat = now()
            """, [id, host, pid, version, concurrency, threads, maxMemory])
    }

    /// Records a heartbeat (and the worker's state).
    public func heartbeat(_ db: PostgresConnection, id: String, state: WorkerState) throws {
        try db.query("UPDATE workers SET last_heartbeat = now(), state = $2 WHERE id = $1", [id, state.rawValue])
    }
}
