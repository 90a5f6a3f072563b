import Foundation
import Queue
import Testing
import TestSupport

/// A worker with settings that cannot work exits at once with the server's message; a server that
/// is down at start is retried only until `--connect-timeout`; a worker is alive only while it can claim.
@Suite struct WorkerConfigurationTests {
    /// Starts a worker with `overrides` and checks it exits non-zero within `within` seconds, saying `fragment`.
    func expectWorkerRefuses(_ env: SqueezeEnv, _ overrides: [String: String], _ fragment: String, within: Double = 10,
                             extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let t0 = Date()
        let r = try ProcessRunner.run(TestConfiguration.binary, ["worker", "--exit-when-idle"] + extra,
                                      env: env.environment.merging(overrides) { $1 }, timeout: 60)
        let took = Date().timeIntervalSince(t0)
        #expect(r.status == 1, "exit \(r.status): \(r.stderr.suffix(500))", sourceLocation: sourceLocation)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("Error: ") && last.contains(fragment), "\(overrides): \(last)", sourceLocation: sourceLocation)
        #expect(took < within, "took \(took) s", sourceLocation: sourceLocation)
    }

    @Test func permanentPostgresErrorsExitAtOnce() throws {
        let env = try SqueezeEnv.create()
        let url = try env.db.url
        let base = url[..<url.range(of: "/", options: .backwards)!.lowerBound]
        try expectWorkerRefuses(env, ["SQUEEZE_DATABASE_URL": base + "/squeeze_no_such_db"], "database \"squeeze_no_such_db\" does not exist")
        try expectWorkerRefuses(env, ["SQUEEZE_DATABASE_URL": url.replacingOccurrences(of: "postgres@", with: "nosuchrole@")],
                                "role \"nosuchrole\" does not exist")
        try expectWorkerRefuses(env, ["SQUEEZE_DATABASE_URL": url + (url.contains("?") ? "&" : "?") + "sslmode=require"],
                                "server does not support SSL")
        try expectWorkerRefuses(env, ["SQUEEZE_DATABASE_URL": "mysql://root@127.0.0.1/x"], "not a postgres:// URL")
        try expectWorkerRefuses(env, ["SQUEEZE_DATABASE_URL": "garbage%%"], "bad connection URL")
    }

    @Test func aWrongPostgresPasswordExitsAtOnce() throws {
        let pg = try PrivatePostgres(password: "right-password")
        let env = try SqueezeEnv.create(postgres: pg)
        let wrong = try env.db.url.replacingOccurrences(of: ":right-password@", with: ":wrong-password@")
        try expectWorkerRefuses(env, ["SQUEEZE_DATABASE_URL": wrong], "password authentication failed")
        // The right one works.
        #expect(try env.squeeze(["status"]).status == 0)
    }

    @Test func permanentRedisErrorsExitAtOnceAndNeverShowAlive() throws {
        let env = try SqueezeEnv.create()
        let hostPort = env.redisURL.replacingOccurrences(of: "redis://", with: "").split(separator: "/").first.map(String.init) ?? ""
        try expectWorkerRefuses(env, ["SQUEEZE_REDIS_URL": "redis://:wrong@\(hostPort)"], "AUTH")
        try expectWorkerRefuses(env, ["SQUEEZE_REDIS_URL": "redis://\(hostPort)/99"], "DB index is out of range")
        try expectWorkerRefuses(env, ["SQUEEZE_REDIS_URL": "redis://\(hostPort)/abc"], "must be a non-negative number")
        try expectWorkerRefuses(env, ["SQUEEZE_REDIS_URL": "http://\(hostPort)"], "not a redis:// URL")
        #expect(try env.scalar("SELECT count(*) FROM workers") == "0")
        #expect(try env.scalar("SELECT count(*) FROM worker_health WHERE alive") == "0")
    }

    @Test func aServerDownAtStartIsRetriedUntilTheConnectTimeout() throws {
        let env = try SqueezeEnv.create()
        let closed = "redis://127.0.0.1:\(freePort())"
        let t0 = Date()
        try expectWorkerRefuses(env, ["SQUEEZE_REDIS_URL": closed], "Redis still unreachable after the connect timeout", within: 15,
                                extra: ["--connect-timeout", "3"])
        #expect(Date().timeIntervalSince(t0) >= 2.5)
        let pgClosed = "postgres://postgres@127.0.0.1:\(freePort())/x"
        try expectWorkerRefuses(env, ["SQUEEZE_DATABASE_URL": pgClosed], "PostgreSQL still unreachable", within: 15,
                                extra: ["--connect-timeout", "2"])
    }

    @Test func aWorkerThatLosesRedisIsNotCountedAlive() throws {
        let redis = try PrivateRedis()
        let env = try SqueezeEnv.create(redisURL: "redis://127.0.0.1:\(redis.port)")
        let w = try env.startSqueeze(["worker", "--lease-seconds", "3"])
        defer { w.signal(SIGKILL); _ = w.wait(timeout: 10) }
        #expect(try waitUntil(timeout: 20) { try env.scalar("SELECT count(*) FROM worker_health WHERE alive") == "1" })
        redis.stop()
        #expect(try waitUntil(timeout: 20) { try env.scalar("SELECT state FROM workers") == "disconnected" })
        #expect(try env.scalar("SELECT count(*) FROM worker_health WHERE alive") == "0")
        try redis.start()
        #expect(try waitUntil(timeout: 20) { try env.scalar("SELECT count(*) FROM worker_health WHERE alive") == "1" })
    }
}
