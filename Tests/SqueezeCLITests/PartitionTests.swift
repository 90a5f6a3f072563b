import Foundation
import Queue
import Testing
import TestSupport

/// Network partitions, for real: worker A runs in a network namespace of the test's own and
/// reaches PostgreSQL and Redis over two veth links; mid-job the test cuts one or both for longer
/// than A's lease while worker B, on this host, is free to take over; then the links come back.
/// Whatever is cut, the job succeeds exactly once, a worker that lost its lease writes nothing
/// more (its attempt is fenced) and no staging is left. Skipped where namespaces cannot be made.
@Suite(.serialized) struct PartitionTests {
    func count(_ env: SqueezeEnv, _ sql: String, _ params: [PostgresEncodable?] = []) throws -> Int {
        Int(try env.scalar(sql, params) ?? "0") ?? 0
    }

    @Test(.enabled(if: TestNetwork.available, "needs root and ip netns (iproute2)"),
          arguments: ["postgres and redis", "postgres", "redis"])
    func aWorkerCutOffPastItsLeaseIsFencedOut(_ cut: String) throws {
        let net = try TestNetwork(services: ["postgres", "redis"])
        let pgLink = try #require(net.links["postgres"]), redisLink = try #require(net.links["redis"])
        let pg = try PrivatePostgres(extraListen: [pgLink.hostAddress])
        let redis = try PrivateRedis(extraBind: [redisLink.hostAddress])
        let env = try SqueezeEnv.create(postgres: pg, redisURL: redis.url)
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe])

        // A, in the namespace, sees the servers only through the links.
        var remote = try env.environment
        remote["SQUEEZE_DATABASE_URL"] = try env.db.url.replacingOccurrences(of: "127.0.0.1", with: pgLink.hostAddress)
        remote["SQUEEZE_REDIS_URL"] = "redis://\(redisLink.hostAddress):\(redis.port)/0"
        let cmd = net.command([TestConfiguration.binary, "worker", "--lease-seconds", "3", "--unit-delay-ms", "400",
                               "--id", "A", "--connect-timeout", "120"])
        let a = try ProcessRunner.start(cmd.executable, cmd.arguments, env: remote)
        defer { a.signal(SIGKILL) }
        #expect(try waitUntil(timeout: 60) {
            (try? count(env, "SELECT units_done FROM jobs WHERE id = $1::uuid AND worker_id = 'A'", [id])) ?? 0 >= 2
        }, "A never got going: \(a.stderrSoFar.suffix(800))")

        let services = cut == "postgres and redis" ? ["postgres", "redis"] : [cut]
        for s in services { try net.set(s, up: false) }
        let b = try env.startSqueeze(["worker", "--lease-seconds", "3", "--id", "B"])
        defer { b.signal(SIGKILL) }
        #expect(try waitUntil(timeout: 90) { try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded" })
        // Past A's lease for certain before the links come back.
        Thread.sleep(forTimeInterval: 4)
        let eventsBefore = try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid", [id])
        for s in services { try net.set(s, up: true) }
        Thread.sleep(forTimeInterval: 5)  // A finds out, and writes nothing that lands
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(a.wait(timeout: 60) && b.wait(timeout: 30))
        let aOut = a.finish()
        _ = b.finish()
        #expect(aOut.status == 0 || aOut.status == 143, "A died: \(aOut.status) \(aOut.stderr.suffix(1200))")

        #expect(try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid AND kind = 'succeeded'", [id]) == 1)
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid", [id]) == eventsBefore,
                "a write landed after the links came back")
        let attempt = try count(env, "SELECT attempt FROM jobs WHERE id = $1::uuid", [id])
        if cut == "redis" {
            // Redis only carries hints: A kept its lease through PostgreSQL and finished the job itself.
            #expect(attempt == 1, "B took over a job whose lease A still held")
        } else {
            #expect(attempt == 2 && (aOut.stderr.contains("lease lost") || aOut.stderr.contains("abandoned")),
                    "attempt \(attempt): \(aOut.stderr.suffix(1200))")
            #expect(try count(env, "SELECT count(*) FROM layer_metrics WHERE job_id = $1::uuid AND attempt <> 2", [id]) == 0)
        }
        #expect(try count(env, "SELECT count(DISTINCT attempt) FROM artifacts WHERE job_id = $1::uuid", [id]) == 1)
        let dirs = try FileManager.default.contentsOfDirectory(atPath: env.artifactRoot + "/artifacts/\(id)")
        #expect(dirs == ["attempt-\(attempt)"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: env.artifactRoot + "/staging").isEmpty,
                "staging left behind")
    }
}
