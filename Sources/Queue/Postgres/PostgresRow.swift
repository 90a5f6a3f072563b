import Foundation

/// One result row in text format, decoded by column name or index.
public struct PostgresRow: Sendable {
    public let columns: [String]
    public let values: [String?]

    /// The raw text value of a column, nil for SQL NULL.
    public subscript(_ name: String) -> String? {
        guard let i = columns.firstIndex(of: name) else { return nil }
        return values[i]
    }

    /// Decodes a non-NULL column as `T`.
    public func decode<T: PostgresDecodable>(_ name: String, as: T.Type = T.self) throws -> T {
        guard let i = columns.firstIndex(of: name) else {
            throw PostgresError(
                code: .decoding, message: "no column \"\(name)\" in result (have \(columns.joined(separator: ", ")))")
        }
        guard let raw = values[i] else {
            throw PostgresError(code: .decoding, message: "column \"\(name)\" is NULL, expected \(T.self)")
        }
        guard let v = T(postgresText: raw) else {
            throw PostgresError(
                code: .decoding,
                message: "column \"\(name)\": cannot decode \(raw.prefix(40).debugDescription) as \(T.self)")
        }
        return v
    }

    /// Decodes a column as `T?`, nil for SQL NULL.
    public func decode<T: PostgresDecodable>(_ name: String, as: T?.Type) throws -> T? {
        guard let i = columns.firstIndex(of: name) else {
            throw PostgresError(code: .decoding, message: "no column \"\(name)\" in result")
        }
        guard let raw = values[i] else { return nil }
        guard let v = T(postgresText: raw) else {
            throw PostgresError(
                code: .decoding,
                message: "column \"\(name)\": cannot decode \(raw.prefix(40).debugDescription) as \(T.self)")
        }
        return v
    }
}

/// A Swift type decodable from PostgreSQL's text output format.
public protocol PostgresDecodable { init?(postgresText: String) }

extension String: PostgresDecodable { public init?(postgresText: String) { self = postgresText } }
extension Int: PostgresDecodable { public init?(postgresText: String) { self.init(postgresText) } }
extension Int64: PostgresDecodable { public init?(postgresText: String) { self.init(postgresText) } }
extension Int32: PostgresDecodable { public init?(postgresText: String) { self.init(postgresText) } }
extension Double: PostgresDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(postgresText)
        }
    }
}
extension Bool: PostgresDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}
extension UUID: PostgresDecodable { public init?(postgresText: String) { self.init(uuidString: postgresText) } }
extension Date: PostgresDecodable {
    public init?(postgresText: String) {
        guard let d = PostgresTimestamp.parse(postgresText) else { return nil }
        self = d
    }
}
extension Data: PostgresDecodable {
    /// Decodes bytea in hex output format (`\x0102`).
    public init?(postgresText: String) {
        let u = Array(postgresText.utf8)
        guard u.count >= 2, u[0] == UInt8(ascii: "\\"), u[1] == UInt8(ascii: "x"), u.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity((u.count - 2) / 2)
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var i = 2
        while i < u.count {
            guard let h = hex(u[i]), let l = hex(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        self = Data(out)
    }
}
