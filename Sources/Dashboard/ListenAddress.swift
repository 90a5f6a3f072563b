import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Why the server could not start listening.
public struct ListenError: Error, CustomStringConvertible {
    public let description: String
}

/// Where to listen: `HOST:PORT` with an IPv4 address or `localhost`.
public struct ListenAddress: Sendable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    /// Parses `127.0.0.1:8080`, `0.0.0.0:9100` or `localhost:8080`; nil when it is not one.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        let host = text[..<colon] == "localhost" ? "127.0.0.1" : String(text[..<colon])
        var a = in_addr()
        guard inet_pton(AF_INET, host, &a) == 1 else { return nil }
        self.host = host
        self.port = port
    }

    /// Whether only this machine can connect (127.0.0.0/8).
    public var isLoopback: Bool { host.hasPrefix("127.") }

    public var description: String { "\(host):\(port)" }
}
