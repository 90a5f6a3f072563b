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

/// A small HTTP/1.1 server: one request per connection, GET and HEAD only, heads capped at 16 KiB.
/// One reader thread polls every connection whose request head is still arriving (no thread or
/// slot is held meanwhile); a head must be complete within `headDeadline` seconds of the
/// connection, however slowly its bytes come. At most `maxPending` heads wait at once and
/// `perClient` per client address: past either, the oldest waiting connection is dropped, so
/// slow clients cannot lock a new request out. Complete requests go to `maxConnections` handler
/// threads (their database queries and sends stay off Swift's cooperative pool).
final class HTTPServer: @unchecked Sendable {
    let socketFD: Int32
    /// The bound port (the requested one, or the kernel's choice for port 0).
    let port: UInt16
    let maxConnections: Int
    let headDeadline: Double
    let maxPending: Int
    let perClient: Int

    init(
        _ address: ListenAddress, maxConnections: Int = 16, headDeadline: Double = 10, maxPending: Int = 512,
        perClient: Int = 128
    ) throws {
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
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        socketFD = fd
        port = UInt16(bigEndian: addr.sin_port)
        self.maxConnections = maxConnections
        self.headDeadline = headDeadline
        self.maxPending = maxPending
        self.perClient = perClient
    }

    /// A connection whose head is still arriving.
    private struct Pending {
        let fd: Int32
        let client: UInt32
        let deadline: Double
        var buffer: [UInt8] = []
    }

    static let headLimit = 16 * 1024

    /// Reads heads forever on this thread, answering each complete request with `handler` on one
    /// of the handler threads.
    func serve(_ handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) -> Never {
        let work = RequestQueue(limit: maxPending)
        for _ in 0..<maxConnections {
            let t = Thread {
                while true {
                    let (fd, request) = work.take()
                    Self.answer(fd, request, handler)
                    close(fd)
                }
            }
            t.stackSize = 1 << 20
            t.start()
        }
        var pending = [Pending]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let now = Self.now()
            pending.removeAll { p in
                guard now >= p.deadline else { return false }
                close(p.fd)  // the head took too long: a slow client, or none
                return true
            }
            var fds = [pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0)]
            fds += pending.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let wait = pending.map { $0.deadline - now }.min().map { max(1, Int32($0 * 1000) + 1) } ?? 1000
            guard poll(&fds, nfds_t(fds.count), min(wait, 1000)) >= 0 else { continue }
            var done = Set<Int32>()
            for (i, f) in fds.enumerated().dropFirst() where f.revents != 0 {
                let n = chunk.withUnsafeMutableBytes { recv(f.fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
                let k = i - 1
                guard n > 0 else {
                    close(f.fd)
                    done.insert(f.fd)
                    continue
                }
                pending[k].buffer.append(contentsOf: chunk[..<n])
                if let r = pending[k].buffer.firstRange(of: Self.headEnd) {
                    done.insert(f.fd)
                    let head = String(decoding: pending[k].buffer[..<r.lowerBound], as: UTF8.self)
                    Self.blocking(f.fd)
                    guard let request = HTTPRequest.parse(head: head) else {
                        Self.send(f.fd, .text(400, "bad request"), headOnly: false)
                        close(f.fd)
                        continue
                    }
                    if !work.offer(f.fd, request) {
                        Self.send(f.fd, .text(503, "too many requests waiting"), headOnly: false)
                        close(f.fd)
                    }
                } else if pending[k].buffer.count > Self.headLimit {
                    done.insert(f.fd)
                    Self.blocking(f.fd)
                    Self.send(f.fd, .text(431, "request head over 16 KiB"), headOnly: false)
                    close(f.fd)
                }
            }
            if !done.isEmpty { pending.removeAll { done.contains($0.fd) } }
            if fds[0].revents != 0 { accept(into: &pending, now: Self.now()) }
        }
    }

    /// Accepts every waiting connection, dropping the oldest waiting heads past the limits.
    private func accept(into pending: inout [Pending], now: Double) {
        while true {
            var addr = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(socketFD, $0, &len) }
            }
            guard fd >= 0 else { return }  // EAGAIN: none left (or out of descriptors: retried next poll)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let client = addr.sin_addr.s_addr
            if pending.filter({ $0.client == client }).count >= perClient,
                let oldest = pending.firstIndex(where: { $0.client == client })
            {
                close(pending[oldest].fd)
                pending.remove(at: oldest)
            }
            if pending.count >= maxPending {
                close(pending[0].fd)
                pending.removeFirst()
            }
            pending.append(Pending(fd: fd, client: client, deadline: now + headDeadline))
        }
    }

    /// Starts `serve` on a background thread (for the worker's metrics endpoint).
    func serveInBackground(_ handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) {
        let t = Thread { self.serve(handler) }
        t.stackSize = 1 << 20
        t.start()
    }

    static let headEnd: [UInt8] = Array("\r\n\r\n".utf8)

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Back to blocking mode with 10 s send and receive timeouts, for the handler's answer.
    static func blocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func answer(_ fd: Int32, _ request: HTTPRequest, _ handler: (HTTPRequest) -> HTTPResponse) {
        guard request.method == "GET" || request.method == "HEAD" else {
            return send(fd, .text(405, "only GET and HEAD are served"), headOnly: false)
        }
        send(fd, handler(request), headOnly: request.method == "HEAD")
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

/// Complete requests waiting for a handler thread (at most `limit`).
final class RequestQueue: @unchecked Sendable {
    private let lock = NSCondition()
    private var items = [(Int32, HTTPRequest)]()
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Queues a request; false when `limit` are already waiting.
    func offer(_ fd: Int32, _ request: HTTPRequest) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard items.count < limit else { return false }
        items.append((fd, request))
        lock.signal()
        return true
    }

    func take() -> (Int32, HTTPRequest) {
        lock.lock()
        defer { lock.unlock() }
        while items.isEmpty { lock.wait() }
        return items.removeFirst()
    }
}
