/// An error talking to Redis: connection, I/O or a server error reply.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable { case connectionFailed, io, timeout, server, badURL, unexpectedReply }
    public let code: Code
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// True when a fresh connection may succeed.
    public var isTransient: Bool { code == .connectionFailed || code == .io || code == .timeout }

    public var description: String { "redis: \(message)" }
}
