import Foundation
import TestSupport
import Testing

@testable import Dashboard

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP server the dashboard and the worker's `/metrics` run on, over real sockets: what a
/// request reaches the handler as, the headers every answer carries, HEAD, refusals of other
/// methods, malformed and oversized heads, the head deadline, the bounded queue and the limit on
/// waiting heads per client.
@Suite struct HTTPServerTests {
    /// A connection to 127.0.0.1:`port` (blocking, 10 s receive timeout).
    final class Client {
        let fd: Int32

        init(_ port: UInt16) throws {
            fd = try #require(connectLoopback(port: port), "cannot connect to port \(port)")
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// Sends `text`; false when the server has closed the connection.
        @discardableResult
        func send(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            return Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count
        }

        /// Everything the server sends until it closes the connection (or 10 s pass).
        func readAll() -> String {
            var out = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                out += chunk[..<n]
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// A server on an ephemeral port whose handler echoes the request it was given.
    static func echo(_ limits: HTTPServerLimits = HTTPServerLimits()) throws -> HTTPServer {
        try HTTPServer(ListenAddress("127.0.0.1:0")!, limits: limits) { r in
            let query = r.query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
            return .html(
                "\(r.method) \(r.path) \(query) host=\(r.headers["host"] ?? "-") "
                    + "cookie=\(r.cookie("squeeze_token") ?? "-")")
        }
    }

    static func exchange(_ port: UInt16, _ request: String) throws -> String {
        let c = try Client(port)
        c.send(request)
        return c.readAll()
    }

    @Test func handlerSeesTheDecodedRequest() throws {
        let server = try Self.echo()
        let answer = try Self.exchange(
            server.port,
            "GET /batches/x%20y?page=2&token=a%2Bb+c HTTP/1.1\r\nHost: h\r\nCookie: a=1; squeeze_token=t0k\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer)")
        #expect(answer.hasSuffix("\r\n\r\nGET /batches/x y page=2&token=a+b c host=h cookie=t0k"), "\(answer)")
    }

    @Test func everyAnswerCarriesLengthCloseAndSecurityHeaders() throws {
        let server = try Self.echo()
        let answer = try Self.exchange(server.port, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").lowercased()
        let body = "get /  host=h cookie=-"
        for header in [
            "content-length: \(body.utf8.count)\r\n", "connection: close\r\n", "cache-control: no-store\r\n",
            "content-security-policy: default-src 'none'", "x-content-type-options: nosniff\r\n",
            "x-frame-options: deny\r\n", "referrer-policy: no-referrer\r\n", "content-type: text/html; charset=utf-8"
        ] {
            #expect(answer.contains(header), "missing \(header) in \(answer)")
        }
    }

    @Test func headGetsTheHeadersWithoutTheBody() throws {
        let server = try Self.echo()
        let answer = try Self.exchange(server.port, "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.hasSuffix("\r\n\r\n"), "\(answer)")
        #expect(answer.contains("Content-Length: \("HEAD /x  host=h cookie=-".utf8.count)\r\n"), "\(answer)")
    }

    @Test func otherMethodsAndMalformedHeadsAreRefused() throws {
        let server = try Self.echo()
        let post = try Self.exchange(server.port, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab")
        #expect(post.hasPrefix("HTTP/1.1 405 "), "\(post)")
        for bad in ["GET / SMTP\r\n\r\n", "GET / HTTP/1.1\r\nno colon here\r\n\r\n", "\u{1}\u{2}\r\n\r\n"] {
            let answer = try Self.exchange(server.port, bad)
            #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(bad.debugDescription) → \(answer)")
        }
        let absolute = try Self.exchange(server.port, "GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(absolute.hasPrefix("HTTP/1.1 400 "), "\(absolute)")
    }

    @Test func headsOverTheLimitGet431() throws {
        let server = try Self.echo()
        let big = String(repeating: "a", count: 20_000)
        let answer = try Self.exchange(server.port, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(big)\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 431 "), "\(answer.prefix(200))")
        let many = (0..<150).map { "X-\($0): v\r\n" }.joined()
        let fields = try Self.exchange(server.port, "GET / HTTP/1.1\r\nHost: h\r\n\(many)\r\n")
        #expect(fields.hasPrefix("HTTP/1.1 431 "), "\(fields.prefix(200))")
    }

    @Test func aHeadThatNeverEndsIsClosedAtTheDeadline() throws {
        var limits = HTTPServerLimits()
        limits.headDeadline = 1
        let server = try Self.echo(limits)
        let c = try Client(server.port)
        let t0 = Date()
        c.send("GET / HTTP/1.1\r\nHost: h\r\n")
        let answer = c.readAll()
        let waited = Date().timeIntervalSince(t0)
        #expect(
            answer.isEmpty && waited >= 0.9 && waited < 5, "closed after \(waited) s with \(answer.debugDescription)")
    }

    @Test func requestsPastTheQueueGet503() throws {
        let release = DispatchSemaphore(value: 0)
        var limits = HTTPServerLimits()
        limits.handlerThreads = 1
        limits.maxQueued = 1
        let server = try HTTPServer(ListenAddress("127.0.0.1:0")!, limits: limits) { _ in
            release.wait()
            return .text(200, "done")
        }
        let first = try Client(server.port)
        first.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.3)
        let second = try Self.exchange(server.port, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(second.hasPrefix("HTTP/1.1 503 "), "\(second)")
        release.signal()
        #expect(first.readAll().hasSuffix("\r\n\r\ndone\n"))
    }

    @Test func aClientsOldestWaitingHeadMakesRoomForItsNewest() throws {
        var limits = HTTPServerLimits()
        limits.perClient = 2
        let server = try Self.echo(limits)
        let slow = try (0..<2).map { _ in try Client(server.port) }
        for c in slow { c.send("GET / HTTP/1.1\r\n") }
        Thread.sleep(forTimeInterval: 0.2)
        let answer = try Self.exchange(server.port, "GET /new HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer)")
        let t0 = Date()
        #expect(slow[0].readAll().isEmpty && Date().timeIntervalSince(t0) < 5, "the oldest head was not dropped")
        #expect(slow[1].send("Host: h\r\n\r\n"))
        #expect(slow[1].readAll().hasPrefix("HTTP/1.1 200 OK"))
    }
}
