import CPostgres
import Foundation

/// A libpq connection. Not thread-safe: one owner thread at a time (see `SharedPostgres`).
///
/// Every statement goes through `PQexecParams` with out-of-line parameters; no SQL is ever
/// built from values. A connection found broken is re-established before the next statement.
public final class PostgresConnection {
    public let conninfo: String
    private var conn: OpaquePointer?
    /// Statement timeout applied per statement via libpq option at connect (milliseconds, 0 = none).
    public let connectTimeoutSeconds: Int
    /// Seconds a transaction may wait on this client before the server ends the session (nil: no limit).
    /// A stopped or cut-off client then releases its row and advisory locks instead of holding them.
    public var idleInTransactionTimeout: Double?

    /// Connects to a `postgres://` URL or a libpq conninfo string.
    public init(url: String, connectTimeoutSeconds: Int = 5) throws {
        self.conninfo = url
        self.connectTimeoutSeconds = connectTimeoutSeconds
        try connect()
    }

    deinit { close() }

    /// Closes the connection; the next statement reconnects.
    public func close() {
        if let c = conn { PQfinish(c) }
        conn = nil
    }

    /// True when the connection is currently usable.
    public var isOpen: Bool { conn != nil && PQstatus(conn) == CONNECTION_OK }

    /// The server-side process id of this session (for tests and diagnostics).
    public var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    private func connect() throws {
        close()
        try Self.checkURL(conninfo)
        let keys = ["dbname", "connect_timeout", "application_name", "client_encoding"]
        let vals = [conninfo, String(connectTimeoutSeconds), "squeeze", "UTF8"]
        // expand_dbname=1: the first dbname value may be a full URL or conninfo string.
        let c: OpaquePointer? = withCStringArray(keys) { k in
            withCStringArray(vals) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let c, PQstatus(c) == CONNECTION_OK else {
            let msg = c.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let c { PQfinish(c) }
            let text = msg.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                .joined(separator: "; ")
            throw PostgresError(
                code: PostgresError.isConfigurationProblem(msg) ? .configuration : .connectionFailed, message: text)
        }
        conn = c
        PQsetNoticeProcessor(c, { _, _ in }, nil)
    }

    /// Refuses a URL or conninfo string libpq cannot parse, or a URL of another scheme (a `mysql://`
    /// URL would otherwise be taken as a database name).
    static func checkURL(_ s: String) throws {
        if let scheme = s.range(of: "://").map({ String(s[..<$0.lowerBound]) }),
            !["postgres", "postgresql"].contains(scheme)
        {
            throw PostgresError(code: .configuration, message: "not a postgres:// URL (scheme \(scheme)://)")
        }
        var err: UnsafeMutablePointer<CChar>?
        guard let opts = PQconninfoParse(s, &err) else {
            let msg = err.map { String(cString: $0) } ?? "cannot parse the connection string"
            if let err { PQfreemem(err) }
            throw PostgresError(
                code: .configuration,
                message: "bad connection URL: \(msg.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        PQconninfoFree(opts)
    }

    /// Runs one parameterized statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> [PostgresRow] {
        if !isOpen { try connect() }
        let encoded = params.map { $0?.postgresParam ?? .null }
        // Text goes to libpq as C strings: a NUL would silently cut the value short.
        for (i, p) in encoded.enumerated() {
            if case .text(let s) = p, s.utf8.contains(0) {
                throw PostgresError(
                    code: .invalidParameter,
                    message: "parameter $\(i + 1) contains a NUL byte, which PostgreSQL text cannot hold",
                    query: sql)
            }
        }
        let n = Int32(encoded.count)
        var lengths = [Int32](repeating: 0, count: encoded.count)
        var formats = [Int32](repeating: 0, count: encoded.count)
        // Keep parameter bytes alive for the duration of the call.
        var buffers: [UnsafeMutablePointer<CChar>?] = []
        buffers.reserveCapacity(encoded.count)
        defer { for b in buffers { b?.deallocate() } }
        for (i, p) in encoded.enumerated() {
            switch p {
            case .null:
                buffers.append(nil)
            case .text(let s):
                let u = Array(s.utf8CString)
                let b = UnsafeMutablePointer<CChar>.allocate(capacity: u.count)
                b.initialize(from: u, count: u.count)
                buffers.append(b)
            case .binary(let bytes):
                let b = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
                bytes.withUnsafeBytes { raw in
                    if !bytes.isEmpty {
                        UnsafeMutableRawPointer(b).copyMemory(from: raw.baseAddress!, byteCount: bytes.count)
                    }
                }
                buffers.append(b)
                lengths[i] = Int32(bytes.count)
                formats[i] = 1
            }
        }
        let result: OpaquePointer? = buffers.withUnsafeBufferPointer { bp in
            let values = UnsafeRawPointer(bp.baseAddress!).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
            return PQexecParams(conn, sql, n, nil, encoded.isEmpty ? nil : values, lengths, formats, 0)
        }
        defer { PQclear(result) }
        return try readResult(result, sql: sql)
    }

    private func readResult(_ result: OpaquePointer?, sql: String) throws -> [PostgresRow] {
        guard let result else {
            let msg = conn.map { String(cString: PQerrorMessage($0)) } ?? "no connection"
            let lost = PQstatus(conn) != CONNECTION_OK
            if lost { close() }
            throw PostgresError(code: lost ? .connectionLost : .protocolViolation, message: firstLine(msg), query: sql)
        }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return []
        case PGRES_TUPLES_OK:
            let nf = PQnfields(result), nt = PQntuples(result)
            var cols = [String]()
            cols.reserveCapacity(Int(nf))
            for f in 0..<nf { cols.append(String(cString: PQfname(result, f))) }
            var rows = [PostgresRow]()
            rows.reserveCapacity(Int(nt))
            for t in 0..<nt {
                var vals = [String?]()
                vals.reserveCapacity(Int(nf))
                for f in 0..<nf {
                    if PQgetisnull(result, t, f) == 1 {
                        vals.append(nil)
                    } else {
                        vals.append(String(cString: PQgetvalue(result, t, f)))
                    }
                }
                rows.append(PostgresRow(columns: cols, values: vals))
            }
            return rows
        default:
            func field(_ code: Int32) -> String? {
                guard let p = PQresultErrorField(result, code) else { return nil }
                return String(cString: p)
            }
            let state = field(Int32(UInt8(ascii: "C")))  // PG_DIAG_SQLSTATE
            let primary = field(Int32(UInt8(ascii: "M"))) ?? String(cString: PQresultErrorMessage(result))
            let detail = field(Int32(UInt8(ascii: "D")))
            let lost = PQstatus(conn) != CONNECTION_OK
            if lost { close() }
            let code: PostgresError.Code = lost ? .connectionLost : .server
            throw PostgresError(code: code, sqlState: state, message: firstLine(primary), detail: detail, query: sql)
        }
    }

    /// Runs a multi-statement SQL script (simple query protocol). Only for the trusted migration
    /// files shipped with Squeeze: it takes no values, so nothing user-supplied ever reaches it.
    public func executeScript(_ sql: String) throws {
        if !isOpen { try connect() }
        let result = PQexec(conn, sql)
        defer { PQclear(result) }
        _ = try readResult(result, sql: String(sql.prefix(200)))
    }

    /// Runs `body` inside BEGIN/COMMIT; rolls back when it throws.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try query("BEGIN")
        do {
            if let t = idleInTransactionTimeout {
                // Local to this transaction, so it holds behind a transaction-pooling PgBouncer too.
                let ms = String(max(1, Int((t * 1000).rounded())))
                try query("SELECT set_config('idle_in_transaction_session_timeout', $1, true)", [ms])
            }
            let v = try body(self)
            try query("COMMIT")
            return v
        } catch {
            if isOpen { _ = try? query("ROLLBACK") }
            throw error
        }
    }
}

func firstLine(_ s: String) -> String {
    let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
    return t.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? t
}

func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return ptrs.withUnsafeBufferPointer { bp in
        body(UnsafeRawPointer(bp.baseAddress!).assumingMemoryBound(to: UnsafePointer<CChar>?.self))
    }
}
