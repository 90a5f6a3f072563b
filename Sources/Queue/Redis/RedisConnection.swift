import CRedis
import Foundation

/// A hiredis connection (blocking, with timeouts). Not thread-safe: one owner thread.
///
/// A connection that hit an I/O error is dropped and re-established before the next command.
public final class RedisConnection {
    public let url: RedisURL
    private var ctx: UnsafeMutablePointer<redisContext>?
    /// Socket timeout for ordinary commands, seconds.
    public let timeout: Double

    /// Connects to a `redis://` URL.
    public convenience init(url: String, timeout: Double = 5) throws {
        try self.init(url: RedisURL(url), timeout: timeout)
    }

    public init(url: RedisURL, timeout: Double = 5) throws {
        self.url = url
        self.timeout = timeout
        try connect()
    }

    deinit { close() }

    public func close() {
        if let c = ctx { redisFree(c) }
        ctx = nil
    }

    private func tv(_ seconds: Double) -> timeval {
        timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
    }

    private func connect() throws {
        close()
        guard let c = redisConnectWithTimeout(url.host, Int32(url.port), tv(timeout)) else {
            throw RedisError(
                code: .connectionFailed, message: "cannot allocate a connection to \(url.host):\(url.port)")
        }
        if c.pointee.err != 0 {
            let msg = errstr(c)
            redisFree(c)
            throw RedisError(code: .connectionFailed, message: "cannot connect to \(url.host):\(url.port): \(msg)")
        }
        redisSetTimeout(c, tv(timeout))
        ctx = c
        if let pw = url.password {
            let args = url.username.map { ["AUTH", $0, pw] } ?? ["AUTH", pw]
            _ = try command(args)
        }
        if url.database != 0 { _ = try command(["SELECT", String(url.database)]) }
    }

    private func errstr(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: c.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Sends one command (arguments as strings) and returns its reply.
    @discardableResult
    public func command(_ args: [String]) throws -> RedisReply {
        try command(args.map { Array($0.utf8) })
    }

    /// Sends one command with binary-safe arguments.
    public func command(_ args: [[UInt8]], timeout: Double? = nil) throws -> RedisReply {
        if ctx == nil { try connect() }
        guard let c = ctx else { throw RedisError(code: .connectionFailed, message: "not connected") }
        if let t = timeout { redisSetTimeout(c, tv(t)) }
        defer { if timeout != nil, let c = ctx { redisSetTimeout(c, tv(self.timeout)) } }
        let raw = withArgv(args) { argc, argv, lens in redisCommandArgv(c, argc, argv, lens) }
        return try take(raw, context: c, what: args.first.map { String(decoding: $0, as: UTF8.self) } ?? "")
    }

    /// Sends many commands in one round trip (pipelining) and returns their replies in order.
    public func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        if commands.isEmpty { return [] }
        if ctx == nil { try connect() }
        guard let c = ctx else { throw RedisError(code: .connectionFailed, message: "not connected") }
        for cmd in commands {
            let rc = withArgv(cmd.map { Array($0.utf8) }) { argc, argv, lens in
                redisAppendCommandArgv(c, argc, argv, lens)
            }
            if rc != REDIS_OK { return try fail(c, what: "pipeline") }
        }
        var replies = [RedisReply]()
        replies.reserveCapacity(commands.count)
        for cmd in commands {
            var out: UnsafeMutableRawPointer?
            if redisGetReply(c, &out) != REDIS_OK { return try fail(c, what: cmd.first ?? "") }
            replies.append(try take(out, context: c, what: cmd.first ?? "", throwServerErrors: false))
        }
        return replies
    }

    private func fail<T>(_ c: UnsafeMutablePointer<redisContext>, what: String) throws -> T {
        let msg = errstr(c)
        let timedOut = c.pointee.err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
        close()
        throw RedisError(code: timedOut ? .timeout : .io, message: "\(what): \(msg.isEmpty ? "connection lost" : msg)")
    }

    private func take(
        _ raw: UnsafeMutableRawPointer?, context c: UnsafeMutablePointer<redisContext>, what: String,
        throwServerErrors: Bool = true
    ) throws -> RedisReply {
        guard let raw else { return try fail(c, what: what) }
        defer { freeReplyObject(raw) }
        let r = raw.assumingMemoryBound(to: redisReply.self)
        if r.pointee.type == REDIS_REPLY_ERROR {
            let msg = String(
                decoding: UnsafeRawBufferPointer(start: r.pointee.str, count: Int(r.pointee.len)), as: UTF8.self)
            if throwServerErrors { throw RedisError(code: .server, message: "\(what): \(msg)") }
            return .status("ERR " + msg)
        }
        return convert(r)
    }

    private func convert(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        switch r.pointee.type {
        case REDIS_REPLY_STRING:
            return .string(Array(UnsafeRawBufferPointer(start: r.pointee.str, count: Int(r.pointee.len))))
        case REDIS_REPLY_STATUS, REDIS_REPLY_ERROR:
            return .status(
                String(decoding: UnsafeRawBufferPointer(start: r.pointee.str, count: Int(r.pointee.len)), as: UTF8.self)
            )
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.pointee.integer))
        case REDIS_REPLY_ARRAY:
            var items = [RedisReply]()
            for i in 0..<Int(r.pointee.elements) {
                if let e = r.pointee.element[i] { items.append(convert(e)) } else { items.append(.null) }
            }
            return .array(items)
        default:
            return .null
        }
    }
}

private func withArgv<R>(
    _ args: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
) -> R {
    var ptrs = [UnsafePointer<CChar>?]()
    var owned = [UnsafeMutablePointer<CChar>]()
    var lens = [Int]()
    for a in args {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(a.count, 1))
        a.withUnsafeBytes { raw in
            if !a.isEmpty { UnsafeMutableRawPointer(p).copyMemory(from: raw.baseAddress!, byteCount: a.count) }
        }
        owned.append(p)
        ptrs.append(UnsafePointer(p))
        lens.append(a.count)
    }
    defer { for p in owned { p.deallocate() } }
    return ptrs.withUnsafeMutableBufferPointer { pb in
        lens.withUnsafeBufferPointer { lb in body(Int32(args.count), pb.baseAddress!, lb.baseAddress!) }
    }
}
