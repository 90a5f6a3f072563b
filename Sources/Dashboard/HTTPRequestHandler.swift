import NIOCore
import NIOHTTP1

/// One connection's request: enforces the deadlines and body limit, answers GET and HEAD through
/// the `AnswerQueue`, refuses everything else, and closes the connection after the answer.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let limits: HTTPServerLimits
    private let gate: PendingHeads
    private let answers: AnswerQueue
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var answered = false
    private var deadline: Scheduled<Void>?

    init(limits: HTTPServerLimits, gate: PendingHeads, answers: AnswerQueue) {
        self.limits = limits
        self.gate = gate
        self.answers = answers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        gate.admit(context.channel)
        closeAfter(limits.headDeadline, context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        gate.release(context.channel)
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(let chunk):
            bodyBytes += chunk.readableBytes
            if bodyBytes > limits.bodyBytes { respond(context, .text(413, "request body too large"), headOnly: false) }
        case .end:
            gate.release(context.channel)
            guard let head else { return respond(context, .text(400, "bad request"), headOnly: false) }
            guard head.method == .GET || head.method == .HEAD else {
                return respond(context, .text(405, "only GET and HEAD are served"), headOnly: false)
            }
            guard let request = HTTPRequest(method: head.method.rawValue, target: head.uri, headers: head.headers)
            else { return respond(context, .text(400, "bad request target"), headOnly: false) }
            closeAfter(limits.answerDeadline, context)
            answered = true
            let headOnly = head.method == .HEAD
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            answers.answer(request, on: context.eventLoop).whenComplete { result in
                let response = (try? result.get()) ?? .text(503, "the server is shutting down")
                self.write(bound.value, response, headOnly: headOnly)
            }
        }
    }

    /// A malformed request (llhttp's verdict) or a head over the limits: answered, then closed.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !answered, let parse = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        let tooBig = parse == .headerOverflow
        let response: HTTPResponse =
            tooBig ? .text(431, "request head over \(limits.headBytes / 1024) KiB") : .text(400, "bad request")
        respond(context, response, headOnly: false)
    }

    private func respond(_ context: ChannelHandlerContext, _ response: HTTPResponse, headOnly: Bool) {
        answered = true
        write(context, response, headOnly: headOnly)
    }

    private func write(_ context: ChannelHandlerContext, _ response: HTTPResponse, headOnly: Bool) {
        guard context.channel.isActive else { return }
        var head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status))
        for (name, value) in response.headerFields { head.headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !headOnly && !response.body.isEmpty {
            let body = context.channel.allocator.buffer(bytes: response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    /// Closes the connection `seconds` from now unless it closes first (replaces the earlier deadline).
    private func closeAfter(_ seconds: Int64, _ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: .seconds(seconds)) { channel.close(promise: nil) }
    }
}
