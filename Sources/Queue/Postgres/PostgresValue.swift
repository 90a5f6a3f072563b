import Foundation

/// A query parameter as sent to libpq: text or binary format, or NULL.
public enum PostgresParam: Sendable {
    case null
    case text(String)
    case binary([UInt8])
}

/// A Swift value that can be bound as a query parameter.
public protocol PostgresEncodable {
    var postgresParam: PostgresParam { get }
}

extension String: PostgresEncodable { public var postgresParam: PostgresParam { .text(self) } }
extension Substring: PostgresEncodable { public var postgresParam: PostgresParam { .text(String(self)) } }
extension Int: PostgresEncodable { public var postgresParam: PostgresParam { .text(String(self)) } }
extension Int64: PostgresEncodable { public var postgresParam: PostgresParam { .text(String(self)) } }
extension Int32: PostgresEncodable { public var postgresParam: PostgresParam { .text(String(self)) } }
extension Int16: PostgresEncodable { public var postgresParam: PostgresParam { .text(String(self)) } }
extension UInt32: PostgresEncodable { public var postgresParam: PostgresParam { .text(String(self)) } }
extension Bool: PostgresEncodable { public var postgresParam: PostgresParam { .text(self ? "t" : "f") } }
extension UUID: PostgresEncodable { public var postgresParam: PostgresParam { .text(uuidString.lowercased()) } }
extension Double: PostgresEncodable {
    public var postgresParam: PostgresParam {
        if isNaN { return .text("NaN") }
        if isInfinite { return .text(self > 0 ? "Infinity" : "-Infinity") }
        return .text("\(self)")
    }
}
extension Float: PostgresEncodable { public var postgresParam: PostgresParam { Double(self).postgresParam } }
extension Data: PostgresEncodable { public var postgresParam: PostgresParam { .binary([UInt8](self)) } }
extension Date: PostgresEncodable {
    public var postgresParam: PostgresParam { .text(PostgresTimestamp.format(self)) }
}
extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresParam: PostgresParam {
        switch self {
        case .none: return .null
        case .some(let v): return v.postgresParam
        }
    }
}
extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// Encoded as a PostgreSQL array literal; cast it in SQL (`$1::uuid[]`).
    public var postgresParam: PostgresParam {
        .text("{" + map { $0.arrayLiteralElement }.joined(separator: ",") + "}")
    }
}

/// A value that can be an element of an array parameter.
public protocol PostgresArrayElement { var arrayLiteralElement: String { get } }
extension String: PostgresArrayElement {
    public var arrayLiteralElement: String {
        "\"" + replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
extension Int: PostgresArrayElement { public var arrayLiteralElement: String { String(self) } }
extension Int64: PostgresArrayElement { public var arrayLiteralElement: String { String(self) } }
extension Double: PostgresArrayElement {
    public var arrayLiteralElement: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return "\(self)"
    }
}
extension UUID: PostgresArrayElement { public var arrayLiteralElement: String { uuidString.lowercased() } }
extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public var arrayLiteralElement: String { self.map { $0.arrayLiteralElement } ?? "NULL" }
}

/// Text-format timestamptz encoding and decoding (always UTC on the wire).
enum PostgresTimestamp {
    static func format(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var secs = Int64(t.rounded(.down))
        var micros = Int64(((t - Double(secs)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            secs += 1
            micros -= 1_000_000
        }
        var tt = time_t(secs)
        var tmv = tm()
        gmtime_r(&tt, &tmv)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
            Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), Int(micros))
    }

    /// Parses `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]` as PostgreSQL prints timestamptz.
    static func parse(_ s: String) -> Date? {
        let u = Array(s.utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= u.count else { return nil }
            var v = 0
            for i in from..<(from + len) {
                let c = u[i]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let se = num(17, 2)
        else { return nil }
        var i = 19
        var frac = 0.0
        if i < u.count && u[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                frac += Double(u[i] - 48) * scale
                scale /= 10
                i += 1
            }
        }
        var offset = 0
        if i < u.count && (u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-")) {
            let sign = u[i] == UInt8(ascii: "+") ? 1 : -1
            let oh = num(i + 1, 2) ?? 0
            var om = 0
            if i + 3 < u.count && u[i + 3] == UInt8(ascii: ":") { om = num(i + 4, 2) ?? 0 }
            offset = sign * (oh * 3600 + om * 60)
        }
        var tmv = tm()
        tmv.tm_year = Int32(y - 1900)
        tmv.tm_mon = Int32(mo - 1)
        tmv.tm_mday = Int32(d)
        tmv.tm_hour = Int32(h)
        tmv.tm_min = Int32(mi)
        tmv.tm_sec = Int32(se)
        let epoch = timegm(&tmv)
        return Date(timeIntervalSince1970: Double(epoch) - Double(offset) + frac)
    }
}
