import Foundation

/// An error from PostgreSQL or libpq, carrying SQLSTATE, the server's message and the query.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case connectionFailed, connectionLost, server, decoding, protocolViolation
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

    public var description: String {
        var s = "postgres: \(message.trimmingCharacters(in: .whitespacesAndNewlines))"
        if let st = sqlState { s += " (SQLSTATE \(st))" }
        if let d = detail, !d.isEmpty { s += " — \(d)" }
        return s
    }
}
