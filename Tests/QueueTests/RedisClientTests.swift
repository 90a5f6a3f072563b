import Foundation
import Queue
import Testing
import TestSupport

@Suite struct RedisClientTests {
    let r: RedisConnection
    let key = "test:" + UUID().uuidString

    init() throws { r = try RedisConnection(url: TestConfiguration.redisURL) }

    @Test func typedReplies() throws {
        #expect(try r.command(["PING"]) == .status("PONG"))
        #expect(try r.command(["SET", key, "v"]) == .status("OK"))
        #expect(try r.command(["GET", key]).string == "v")
        #expect(try r.command(["GET", key + ":missing"]).isNull)
        #expect(try r.command(["INCR", key + ":n"]).integer == 1)
        try r.command(["RPUSH", key + ":l", "a", "b"])
        #expect(try r.command(["LRANGE", key + ":l", "0", "-1"]).array?.compactMap(\.string) == ["a", "b"])
        try r.command(["DEL", key, key + ":n", key + ":l"])
    }

    @Test func binarySafeArguments() throws {
        let bytes: [UInt8] = [0, 1, 255, 0, 13, 10]
        _ = try r.command([Array("SET".utf8), Array(key.utf8), bytes])
        #expect(try r.command(["GET", key]) == .string(bytes))
        try r.command(["DEL", key])
    }

    @Test func serverErrorsAreTyped() throws {
        do {
            try r.command(["NOSUCHCOMMAND"])
            Issue.record("no error")
        } catch let e as RedisError {
            #expect(e.code == .server)
            #expect(!e.isTransient)
        }
        #expect(try r.command(["PING"]) == .status("PONG"))
    }

    @Test func pipelineReturnsRepliesInOrder() throws {
        let replies = try r.pipeline((0..<500).map { ["RPUSH", key, String($0)] } + [["LLEN", key], ["BADCMD"]])
        #expect(replies.count == 502)
        #expect(replies[499].integer == 500)
        #expect(replies[500].integer == 500)
        #expect(replies[501].string?.hasPrefix("ERR") == true)
        try r.command(["DEL", key])
    }

    @Test func reconnectsAfterTheServerKillsTheClient() throws {
        let id = try r.command(["CLIENT", "ID"]).integer!
        let other = try RedisConnection(url: TestConfiguration.redisURL)
        try other.command(["CLIENT", "KILL", "ID", String(id)])
        do { try r.command(["PING"]) } catch let e as RedisError { #expect(e.isTransient) }
        #expect(try r.command(["PING"]) == .status("PONG"))
        #expect(try r.command(["CLIENT", "ID"]).integer != id)
    }

    @Test func blockingPopTimesOut() throws {
        let t = RedisTransport(redis: r, prefix: "test-" + UUID().uuidString)
        let start = Date()
        #expect(try t.pop(timeout: 0.3) == nil)
        #expect(Date().timeIntervalSince(start) >= 0.25)
        let a = UUID(), b = UUID(), c = UUID()
        try t.push([(a, RedisTransport.score(priority: 0, seq: 1)), (b, RedisTransport.score(priority: 5, seq: 2)),
                    (c, RedisTransport.score(priority: 0, seq: 3))])
        #expect(try t.pop(timeout: 1) == b)  // higher priority first
        #expect(try t.pop(timeout: 1) == a)  // then FIFO
        #expect(try t.pop(timeout: 1) == c)
    }

    @Test func parsesURLs() throws {
        let u = try RedisURL("redis://:s3cr%40t@10.0.0.5:6380/3")
        #expect(u.host == "10.0.0.5" && u.port == 6380 && u.password == "s3cr@t" && u.database == 3)
        let d = try RedisURL("redis://localhost")
        #expect(d.port == 6379 && d.database == 0 && d.password == nil)
        #expect(throws: RedisError.self) { try RedisURL("http://x") }
        #expect(throws: RedisError.self) { try RedisURL("redis://h/notanumber") }
    }

    @Test func selectsDatabaseAndAuthenticates() throws {
        var u = try RedisURL(TestConfiguration.redisURL)
        u.database = 5
        let c5 = try RedisConnection(url: u)
        try c5.command(["SET", key, "in5"])
        #expect(try r.command(["GET", key]).isNull)
        #expect(try c5.command(["GET", key]).string == "in5")
        try c5.command(["DEL", key])
        u.password = "wrong"
        #expect(throws: RedisError.self) { _ = try RedisConnection(url: u) }
    }

    @Test func connectionFailureIsClear() {
        #expect(throws: RedisError.self) { _ = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: 1), timeout: 1) }
    }
}
