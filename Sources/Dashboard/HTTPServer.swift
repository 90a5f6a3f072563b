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

/// A small blocking HTTP/1.1 server: one thread per connection (at most `maxConnections` at once),
/// one request per connection, GET and HEAD only, heads capped at 16 KiB, 10 s socket timeouts.
/// Off Swift's cooperative pool: its blocking calls (and the handler's database queries) run on
/// their own threads.
final class HTTPServer: @unchecked Sendable {
    let socketFD: Int32
    /// The bound port (the requested one, or the kernel's choice for port 0).
    let port: UInt16
    let maxConnections: Int

    init(_ address: ListenAddress, maxConnections: Int = 16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else {
            throw ListenError(description: "cannot open a socket: \(String(cString: strerror(errno)))")
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = address.port.bigEndian
        inet_pton(AF_INET, address.host, &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw ListenError(description: "cannot listen on \(address): \(why)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        socketFD = fd
        port = UInt16(bigEndian: addr.sin_port)
        self.maxConnections = maxConnections
    }

    /// Accepts connections forever, answering each request with `handler` on a thread of its own.
    func serve(_ handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) -> Never {
        let slots = DispatchSemaphore(value: maxConnections)
        while true {
            let client = accept(socketFD, nil, nil)
            guard client >= 0 else {
                usleep(10_000)  // out of descriptors, or interrupted: do not spin
                continue
            }
            slots.wait()
            let thread = Thread {
                defer {
                    close(client)
                    slots.signal()
                }
                Self.answer(client, handler)
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Starts `serve` on a background thread (for the worker's metrics endpoint).
    func serveInBackground(_ handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) {
        let t = Thread { self.serve(handler) }
        t.stackSize = 1 << 20
        t.start()
    }

    static func answer(_ fd: Int32, _ handler: (HTTPRequest) -> HTTPResponse) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](), chunk = [UInt8](repeating: 0, count: 4096)
        let limit = 16 * 1024
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while buffer.count <= limit {
            if let r = buffer.firstRange(of: end) {
                let head = String(decoding: buffer[..<r.lowerBound], as: UTF8.self)
                guard let request = HTTPRequest.parse(head: head) else {
                    return send(fd, .text(400, "bad request"), headOnly: false)
                }
                guard request.method == "GET" || request.method == "HEAD" else {
                    return send(fd, .text(405, "only GET and HEAD are served"), headOnly: false)
                }
                return send(fd, handler(request), headOnly: request.method == "HEAD")
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            buffer.append(contentsOf: chunk[..<n])
        }
        send(fd, .text(431, "request head over 16 KiB"), headOnly: false)
    }

    static func send(_ fd: Int32, _ response: HTTPResponse, headOnly: Bool) {
        let bytes = response.serialized(headOnly: headOnly)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            sent += n
        }
    }
}
