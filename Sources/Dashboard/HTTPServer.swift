import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// How much one client, or all of them, may hold of an `HTTPServer`.
struct HTTPServerLimits: Sendable {
    /// Threads that run the handler (its blocking database work stays off the event loop).
    var handlerThreads = 16
    /// Complete requests waiting for a handler thread; past this a request gets 503 at once.
    var maxQueued = 256
    /// Seconds from the connection to the end of its request head, however slowly the bytes come.
    var headDeadline: Int64 = 10
    /// Seconds from the end of the request to the last byte of the answer (handler and send).
    var answerDeadline: Int64 = 60
    /// Connections whose request is still arriving; past this the oldest is dropped.
    var maxPending = 512
    /// Of those, per client address: past this that client's oldest is dropped.
    var perClient = 128
    /// Bytes of request head (request line and headers together).
    var headBytes = 16 * 1024
    /// Header fields in one request.
    var headerFields = 100
    /// Bytes of request body read before the request is refused (GET and HEAD carry none).
    var bodyBytes = 64 * 1024
}

/// An HTTP/1.1 server on swift-nio: one event-loop thread parses requests (llhttp, with the head
/// limits above) and a thread pool answers them with `handler`; one request per connection.
/// Slow clients hold a socket, never a thread: a head must arrive within `headDeadline`, the answer
/// within `answerDeadline`, and past `maxPending` waiting heads (or `perClient` from one address)
/// the oldest is dropped, so slow or idle clients cannot lock a new request out.
final class HTTPServer: Sendable {
    /// The bound port (the requested one, or the kernel's choice for port 0).
    let port: UInt16
    private let channel: Channel
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool

    /// Binds `address` and starts answering requests with `handler` on background threads.
    init(
        _ address: ListenAddress, limits: HTTPServerLimits = HTTPServerLimits(),
        handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse
    ) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: limits.handlerThreads)
        pool.start()
        let gate = PendingHeads(maxPending: limits.maxPending, perClient: limits.perClient)
        let queue = AnswerQueue(pool: pool, limit: limits.maxQueued, handler: handler)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderListSize = limits.headBytes
        decoderLimits.maxHeaderFieldSize = limits.headBytes
        decoderLimits.maxHeaderFieldCount = limits.headerFields
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: false,
                        withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
                        withDecoderLimitConfiguration: decoderLimits)
                    try sync.addHandler(HTTPRequestHandler(limits: limits, gate: gate, answers: queue))
                }
            }
        do {
            channel = try bootstrap.bind(host: address.host, port: Int(address.port)).wait()
        } catch {
            try? group.syncShutdownGracefully()
            try? pool.syncShutdownGracefully()
            throw ListenError(description: "cannot listen on \(address): \(error)")
        }
        port = UInt16(channel.localAddress?.port ?? 0)
        self.group = group
        self.pool = pool
    }

    /// Blocks until the listening socket closes (in practice: until the process ends).
    func waitUntilClosed() {
        try? channel.closeFuture.wait()
    }
}

/// Connections whose request head is still arriving, oldest first; over the limits the oldest is closed.
final class PendingHeads: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: [(id: ObjectIdentifier, client: String, channel: Channel)] = []
    private let maxPending: Int
    private let perClient: Int

    init(maxPending: Int, perClient: Int) {
        self.maxPending = maxPending
        self.perClient = perClient
    }

    /// Registers a new connection; closes the connections it displaces.
    func admit(_ channel: Channel) {
        let client = channel.remoteAddress?.ipAddress ?? "?"
        var dropped: [Channel] = []
        lock.withLock {
            if waiting.filter({ $0.client == client }).count >= perClient,
                let oldest = waiting.firstIndex(where: { $0.client == client })
            {
                dropped.append(waiting.remove(at: oldest).channel)
            }
            if waiting.count >= maxPending {
                dropped.append(waiting.removeFirst().channel)
            }
            waiting.append((ObjectIdentifier(channel), client, channel))
        }
        for c in dropped { c.close(promise: nil) }
    }

    /// The connection's head arrived, or it closed.
    func release(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        lock.withLock { waiting.removeAll { $0.id == id } }
    }
}

/// Runs the handler on the thread pool, at most `limit` requests waiting or running at once.
final class AnswerQueue: @unchecked Sendable {
    private let pool: NIOThreadPool
    private let limit: Int
    private let handler: @Sendable (HTTPRequest) -> HTTPResponse
    private let lock = NSLock()
    private var active = 0

    init(pool: NIOThreadPool, limit: Int, handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) {
        self.pool = pool
        self.limit = limit
        self.handler = handler
    }

    /// The handler's answer, completed on `eventLoop`; 503 at once when `limit` are already taken.
    func answer(_ request: HTTPRequest, on eventLoop: EventLoop) -> EventLoopFuture<HTTPResponse> {
        let admitted = lock.withLock {
            guard active < limit else { return false }
            active += 1
            return true
        }
        guard admitted else { return eventLoop.makeSucceededFuture(.text(503, "too many requests waiting")) }
        let handler = self.handler
        return pool.runIfActive(eventLoop: eventLoop) { handler(request) }
            .always { _ in self.lock.withLock { self.active -= 1 } }
    }
}
