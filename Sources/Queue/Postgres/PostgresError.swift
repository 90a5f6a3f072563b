import Foundation

/// An error from PostgreSQL or libpq, carrying SQLSTATE, the server's message and the query.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case connectionFailed, connectionLost, server, decoding, protocolViolation
        /// A setting that cannot work however often it is retried: bad URL, authentication,
        /// unknown role or database, TLS mismatch.
        case configuration
        /// A parameter PostgreSQL cannot take (text with a NUL byte).
        case invalidParameter
    }
    public let code: Code
    public let sqlState: String?
    public let message: String
    public let detail: String?
    public let query: String?

    public init(code: Code, sqlState: String? = nil, message: String, detail: String? = nil, query: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.query = query
    }

    /// True when retrying on a fresh connection may succeed (lost connection, failover, serialization).
    public var isTransient: Bool {
        switch code {
        case .connectionFailed, .connectionLost: return true
        case .server:
            guard let s = sqlState else { return false }
            // 08: connection exception, 40001/40P01: serialization/deadlock, 57P01-03: admin shutdown/crash
            return s.hasPrefix("08") || s == "40001" || s == "40P01" || s.hasPrefix("57P")
        default: return false
        }
    }

    /// libpq's wording for connection failures that retrying cannot fix.
    static func isConfigurationProblem(_ message: String) -> Bool {
        let m = message.lowercased()
        return [
            "password authentication failed", "no password supplied", "role \"", "database \"", "does not exist",
            "server does not support ssl", "ssl is not enabled", "sslmode", "certificate", "pg_hba.conf",
            "permission denied",
            "invalid connection option", "invalid sslmode", "authentication method", "sasl", "invalid uri",
            "missing \"=\"", "unterminated quoted string", "invalid integer value"
        ].contains { m.contains($0) }
    }

    public var description: String {
        var s = "postgres: \(message.trimmingCharacters(in: .whitespacesAndNewlines))"
        if let st = sqlState { s += " (SQLSTATE \(st))" }
        if let d = detail, !d.isEmpty { s += " — \(d)" }
        return s
    }
}
