/// A typed Redis reply.
public enum RedisReply: Equatable, Sendable {
    case null
    case status(String)
    case integer(Int64)
    case string([UInt8])
    case array([RedisReply])

    /// The reply as text, for bulk strings and status replies.
    public var string: String? {
        switch self {
        case .string(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    /// The reply as an integer (also parses numeric bulk strings).
    public var integer: Int64? {
        switch self {
        case .integer(let i): return i
        case .string: return string.flatMap { Int64($0) }
        default: return nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisReply]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool { self == .null }
}
