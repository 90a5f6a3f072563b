import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Slow clients (one byte of a request head every few seconds, or idle connections) hold no slot:
/// with 50 of them connected to `squeeze dashboard --token-file` or a worker's `--metrics-listen`,
/// an authorised request is answered within a second, and a head that never completes is dropped.
@Suite struct SlowClientTests {
    /// `count` connections to 127.0.0.1:`port`, each sending one byte of a request head every
    /// `every` seconds until `stop` is set; returns how many were closed by the server.
    final class Loris: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private(set) var closedByServer = 0
        private var threads = [Thread]()

        init(port: UInt16, count: Int, every: Double) {
            for _ in 0..<count {
                let t = Thread { [self] in
                    guard let fd = connectLoopback(port: port) else { return }
                    defer { close(fd) }
                    let head = Array("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
                    var i = 0
                    while !lock.withLock({ stopped }) {
                        let b = head[i % head.count]
                        if Glibc.send(fd, [b], 1, Int32(MSG_NOSIGNAL)) <= 0 {
                            lock.withLock { closedByServer += 1 }
                            return
                        }
                        i += 1
                        Thread.sleep(forTimeInterval: every)
                    }
                }
                threads.append(t)
                t.start()
            }
        }

        func stop() { lock.withLock { stopped = true } }
        var closed: Int { lock.withLock { closedByServer } }
    }

    static func port(_ url: String) -> UInt16 {
        UInt16(url.split(separator: ":").last?.split(separator: "/").first ?? "") ?? 0
    }

    @Test func slowClientsDoNotLockOutTheDashboard() throws {
        let env = try SqueezeEnv.create()
        let token = "tok-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let file = try env.write("token", token + "\n")
        let (dash, base) = try DashboardPageTests.start(env, databaseURL: env.db.url, ["--token-file", file])
        defer { dash.signal(SIGKILL); _ = dash.finish() }
        #expect(!base.isEmpty, "dashboard did not start: \(dash.stderrSoFar)")
        let loris = Loris(port: Self.port(base), count: 50, every: 2)
        Thread.sleep(forTimeInterval: 3)
        for _ in 0..<5 {
            let t0 = Date()
            let r = try httpGet(base + "/", headers: ["Authorization: Bearer \(token)"])
            #expect(r.status == 200)
            #expect(Date().timeIntervalSince(t0) < 1, "answered after \(Date().timeIntervalSince(t0)) s")
        }
        // A head that has not arrived within 10 s is dropped, however steadily its bytes come.
        #expect(waitUntil(timeout: 20) { loris.closed >= 50 }, "\(loris.closed) of 50 slow heads dropped")
        loris.stop()
    }

    @Test func slowClientsDoNotLockOutTheWorkerMetrics() throws {
        let env = try SqueezeEnv.create()
        let worker = try env.startSqueeze(["worker", "--metrics-listen", "127.0.0.1:0"])
        defer { worker.signal(SIGKILL); _ = worker.finish() }
        var url = ""
        #expect(waitUntil(timeout: 20) {
            if let m = worker.stderrSoFar.range(of: #"http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression) {
                url = String(worker.stderrSoFar[m])
            }
            return !url.isEmpty
        })
        let loris = Loris(port: Self.port(url), count: 50, every: 2)
        defer { loris.stop() }
        Thread.sleep(forTimeInterval: 3)
        let t0 = Date()
        let r = try httpGet(url)
        #expect(r.status == 200 && r.body.contains("squeeze_worker_"))
        #expect(Date().timeIntervalSince(t0) < 1, "answered after \(Date().timeIntervalSince(t0)) s")
    }
}
