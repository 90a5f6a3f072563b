import Foundation
import Queue
import Testing
import TestSupport

/// Fault drills: real processes, real servers, killed and stopped for real.
@Suite struct FaultTests {
    func state(_ env: SqueezeEnv, _ id: String) -> String? {
        try? env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id])
    }

    func count(_ env: SqueezeEnv, _ sql: String, _ params: [PostgresEncodable?] = []) throws -> Int {
        Int(try env.scalar(sql, params) ?? "-1") ?? -1
    }

    /// 1. kill -9 in the middle of a job: another worker completes it, once, within lease + 2 s.
    @Test func killedWorkersJobIsRecoveredWithinTheLease() throws {
        let env = try SqueezeEnv.create()
        let lease = 4.0
        let id = try env.submit(["--noop", "--sleep-ms", "6000"])
        let a = try env.startSqueeze(["worker", "--lease-seconds", "\(lease)", "--id", "A"])
        #expect(try waitUntil(timeout: 30) { state(env, id) == "running" })
        Thread.sleep(forTimeInterval: 0.5)
        a.signal(SIGKILL)
        let killedAt = Date().timeIntervalSince1970
        #expect(a.wait(timeout: 10))
        let b = try env.startSqueeze(["worker", "--lease-seconds", "\(lease)", "--id", "B"])
        defer { b.signal(SIGKILL); _ = b.finish() }
        #expect(try waitUntil(timeout: 40) { state(env, id) == "succeeded" })
        let reclaim = Double(try env.scalar("SELECT extract(epoch FROM started_at) FROM job_attempts WHERE job_id = $1::uuid AND attempt = 2", [id]) ?? "0")!
        let recovery = reclaim - killedAt
        print("fault-test: kill -9 recovery \(String(format: "%.2f", recovery)) s with lease \(lease) s")
        #expect(recovery <= lease + 2, "recovery took \(recovery) s")
        #expect(try count(env, "SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [id]) == 2)
        #expect(try env.scalar("SELECT string_agg(outcome, ',' ORDER BY attempt) FROM job_attempts WHERE job_id = $1::uuid", [id]) == "lease_expired,succeeded")
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid AND kind = 'succeeded'", [id]) == 1)
    }

    /// 2. SIGSTOP past the lease, another worker takes over, SIGCONT: none of the first worker's writes land.
    @Test func stoppedWorkerIsFencedOut() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe])
        let a = try env.startSqueeze(["worker", "--lease-seconds", "2", "--unit-delay-ms", "400", "--id", "A"])
        #expect(try waitUntil(timeout: 30) {
            let n = Result { try count(env, "SELECT units_done FROM jobs WHERE id = $1::uuid", [id]) }
            return ((try? n.get()) ?? 0) >= 2
        })
        a.signal(SIGSTOP)
        let b = try env.startSqueeze(["worker", "--lease-seconds", "2", "--id", "B"])
        #expect(try waitUntil(timeout: 40) { state(env, id) == "succeeded" })
        let eventsBefore = try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid", [id])
        a.signal(SIGCONT)
        Thread.sleep(forTimeInterval: 3)  // A wakes up, finds its lease gone, abandons
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(a.wait(timeout: 20) && b.wait(timeout: 20))
        let aOut = a.finish()
        _ = b.finish()
        #expect(aOut.stderr.contains("lease lost") || aOut.stderr.contains("abandoned"), "\(aOut.stderr.suffix(1500))")
        #expect(try env.scalar("SELECT attempt FROM jobs WHERE id = $1::uuid", [id]) == "2")
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid", [id]) == eventsBefore)
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid AND kind = 'succeeded'", [id]) == 1)
        #expect(try count(env, "SELECT count(*) FROM layer_metrics WHERE job_id = $1::uuid AND attempt <> 2", [id]) == 0)
        #expect(try count(env, "SELECT count(DISTINCT attempt) FROM artifacts WHERE job_id = $1::uuid", [id]) == 1)
        #expect(try env.scalar("SELECT min(attempt) FROM artifacts WHERE job_id = $1::uuid", [id]) == "2")
        let dirs = try FileManager.default.contentsOfDirectory(atPath: env.artifactRoot + "/artifacts/\(id)")
        #expect(dirs == ["attempt-2"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: env.artifactRoot + "/staging").isEmpty)
    }

    /// 3. Redis restarted without persistence while 200 jobs are queued (and again mid-run): all complete once.
    @Test func redisLosingEverythingLosesNoJob() throws {
        let redis = try PrivateRedis()
        let env = try SqueezeEnv.create(redisURL: redis.url)
        let sub = try env.squeeze(["submit", "--noop", "--sleep-ms", "10", "--count", "200"])
        #expect(sub.status == 0)
        try redis.restart()  // every hint is gone
        let w = try (0..<2).map { _ in try env.startSqueeze(["worker", "--exit-when-idle", "--lease-seconds", "5"]) }
        #expect(try waitUntil(timeout: 60) { (try? count(env, "SELECT count(*) FROM jobs WHERE state = 'succeeded'")) ?? 0 >= 50 })
        try redis.restart()  // and again while workers are popping
        for p in w { #expect(p.wait(timeout: 120)) }
        for p in w { #expect(p.finish().status == 0) }
        #expect(try count(env, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 200)
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE kind = 'succeeded'") == 200)
        #expect(try count(env, "SELECT count(*) FROM job_attempts") == 200)
    }

    /// 4. PostgreSQL restarted in the middle of a batch: workers reconnect, every job completes once, no worker dies.
    @Test func postgresRestartMidBatch() throws {
        let pg = try PrivatePostgres()
        let env = try SqueezeEnv.create(postgres: pg)
        #expect(try env.squeeze(["submit", "--noop", "--sleep-ms", "20", "--count", "150"]).status == 0)
        let w = try (0..<2).map { _ in try env.startSqueeze(["worker", "--exit-when-idle", "--lease-seconds", "6"]) }
        #expect(try waitUntil(timeout: 60) { (try? count(env, "SELECT count(*) FROM jobs WHERE state = 'succeeded'")) ?? 0 >= 30 })
        try pg.restart()
        for p in w { #expect(p.wait(timeout: 120)) }
        for p in w {
            let r = p.finish()
            #expect(r.status == 0, "worker died: \(r.stderr.suffix(1500))")
        }
        #expect(try count(env, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 150)
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE kind = 'succeeded'") == 150)
        #expect(try count(env, "SELECT count(*) FROM (SELECT job_id FROM job_events WHERE kind = 'succeeded' GROUP BY 1 HAVING count(*) > 1) d") == 0)
    }

    /// 5. 1,000 no-op jobs over 4 worker processes: each succeeds exactly once, none claimed twice.
    @Test func thousandJobsFourWorkersExactlyOnce() throws {
        let env = try SqueezeEnv.create()
        #expect(try env.squeeze(["submit", "--noop", "--count", "1000"]).status == 0)
        let start = Date()
        let w = try (0..<4).map { _ in try env.startSqueeze(["worker", "--exit-when-idle", "--threads", "1"]) }
        for p in w { #expect(p.wait(timeout: 300)) }
        for p in w { #expect(p.finish().status == 0) }
        print("fault-test: 1000 no-op jobs, 4 workers (debug build): \(String(format: "%.1f", Date().timeIntervalSince(start))) s wall")
        #expect(try count(env, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 1000)
        #expect(try count(env, "SELECT count(*) FROM job_attempts") == 1000)
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE kind = 'claimed'") == 1000)
        #expect(try count(env, "SELECT count(DISTINCT worker_id) FROM job_attempts") >= 2)
    }

    /// 6. Batched claims and grouped completions (`--concurrency 16`: hints for every free slot claimed
    /// in one statement, completions that finish together committed together) with a worker
    /// killed -9 while it holds 16 claims: every job succeeds exactly once, and the batching really
    /// happened. The victim runs alone on 16 slow jobs until it has claimed them all, so the kill
    /// always lands on held claims (with the fast jobs already queued, a loaded machine could let
    /// the other workers drain the queue before the kill).
    @Test func batchedClaimsAndCompletionsSurviveAKill() throws {
        let env = try SqueezeEnv.create()
        #expect(try env.squeeze(["submit", "--noop", "--count", "16", "--sleep-ms", "8000"]).status == 0)
        let args = ["worker", "--threads", "1", "--concurrency", "16", "--lease-seconds", "3", "--retry-base-seconds", "0.1"]
        let victim = try env.startSqueeze(args + ["--id", "victim"])
        #expect(try waitUntil(timeout: 60) { try count(env, "SELECT count(*) FROM job_attempts WHERE worker_id = 'victim'") >= 16 })
        victim.signal(SIGKILL)
        _ = victim.finish()
        #expect(try count(env, "SELECT count(*) FROM job_attempts WHERE worker_id = 'victim' AND outcome IS NULL") == 16)
        #expect(try env.squeeze(["submit", "--noop", "--count", "1500", "--sleep-ms", "5"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "100", "--sleep-ms", "5", "--fail-times", "1"]).status == 0)
        let w = try (0..<3).map { _ in try env.startSqueeze(args + ["--exit-when-idle"]) }
        for p in w { #expect(p.wait(timeout: 300)) }
        for p in w { #expect(p.finish().status == 0) }
        #expect(try count(env, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 1616)
        #expect(try count(env, "SELECT count(*) FROM job_attempts WHERE outcome = 'succeeded'") == 1616)
        #expect(try count(env, "SELECT count(*) FROM (SELECT job_id FROM job_events WHERE kind = 'succeeded' GROUP BY 1 HAVING count(*) > 1) d") == 0)
        #expect(try count(env, "SELECT coalesce(sum(jobs_done), 0) FROM workers") == 1616)
        // The killed worker's claims came back through the reconciler once their leases expired.
        #expect(try count(env, "SELECT count(*) FROM job_attempts WHERE worker_id = 'victim' AND outcome = 'lease_expired'") == 16)
        // One statement claimed several jobs (same started_at), one commit completed several (same finished_at).
        #expect(try count(env, "SELECT max(n) FROM (SELECT count(*) AS n FROM job_attempts GROUP BY worker_id, started_at) s") > 1)
        #expect(try count(env, "SELECT max(n) FROM (SELECT count(*) AS n FROM jobs GROUP BY worker_id, finished_at) s") > 1)
    }

    /// 7. SIGTERM during a job: it is requeued at once (not after the lease) and finished by another worker.
    @Test func sigtermDrainsAndRequeuesAtOnce() throws {
        let env = try SqueezeEnv.create()
        let id = try env.submit(["--noop", "--sleep-ms", "4000"])
        let a = try env.startSqueeze(["worker", "--lease-seconds", "30", "--id", "A"])
        #expect(try waitUntil(timeout: 30) { state(env, id) == "running" })
        Thread.sleep(forTimeInterval: 0.3)
        let termAt = Date()
        a.signal(SIGTERM)
        #expect(a.wait(timeout: 10))
        let ra = a.finish()
        #expect(ra.status == 0, "\(ra.stderr.suffix(1000))")
        #expect(Date().timeIntervalSince(termAt) < 5)
        #expect(state(env, id) == "queued")
        #expect(try env.scalar("SELECT releases FROM jobs WHERE id = $1::uuid", [id]) == "1")
        let b = try env.startSqueeze(["worker", "--exit-when-idle", "--id", "B"])
        #expect(b.wait(timeout: 60))
        #expect(b.finish().status == 0)
        #expect(state(env, id) == "succeeded")
        #expect(try env.scalar("SELECT string_agg(outcome, ',' ORDER BY attempt) FROM job_attempts WHERE job_id = $1::uuid", [id]) == "released,succeeded")
        let gap = Double(try env.scalar("SELECT extract(epoch FROM max(started_at) - min(ended_at)) FROM job_attempts WHERE job_id = $1::uuid", [id]) ?? "99")!
        #expect(gap < 10, "requeue waited \(gap) s (the lease was 30 s)")
        #expect(try env.scalar("SELECT state FROM workers WHERE id = 'A'") == "stopped")
    }
}
