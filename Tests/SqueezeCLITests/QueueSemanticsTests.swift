import Foundation
import Queue
import Testing
import TestSupport

/// Queue semantics: cancel, priorities, idempotency, dead jobs, delays, batches.
@Suite struct QueueSemanticsTests {
    func count(_ env: SqueezeEnv, _ sql: String, _ params: [PostgresEncodable?] = []) throws -> Int {
        Int(try env.scalar(sql, params) ?? "-1") ?? -1
    }

    @Test func cancelQueuedAndRunning() throws {
        let env = try SqueezeEnv.create()
        let queued = try env.submit(["--noop"])
        #expect(try env.squeeze(["cancel", queued]).status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [queued]) == "cancelled")

        let running = try env.submit(["--noop", "--sleep-ms", "30000"])
        let w = try env.startSqueeze(["worker", "--lease-seconds", "3"])
        defer { w.signal(SIGKILL); _ = w.finish() }
        #expect(try waitUntil(timeout: 30) { (try? env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [running])) == "running" })
        let t0 = Date()
        let c = try env.squeeze(["cancel", running])
        #expect(c.stdout.contains("1 running job"))
        #expect(try waitUntil(timeout: 10) { (try? env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [running])) == "cancelled" })
        #expect(Date().timeIntervalSince(t0) < 3, "cancel took more than one heartbeat")
        #expect(try env.scalar("SELECT outcome FROM job_attempts WHERE job_id = $1::uuid", [running]) == "cancelled")
        // The worker lives on and takes the next job.
        let next = try env.submit(["--noop"])
        #expect(try waitUntil(timeout: 20) { (try? env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [next])) == "succeeded" })
    }

    @Test func prioritiesThenFIFO() throws {
        let env = try SqueezeEnv.create()
        var order = [String]()
        for p in [0, 0, 5, -5, 5, 0] { order.append(try env.submit(["--noop", "--priority=\(p)"]) + ":\(p)") }
        #expect(try env.drain(["--concurrency", "1"]).status == 0)
        let ran = try env.query("SELECT job_id::text AS id FROM job_attempts ORDER BY started_at").compactMap { $0["id"] }
        let byID = Dictionary(uniqueKeysWithValues: order.map { ($0.split(separator: ":")[0].description, $0) })
        let expected = [2, 4, 0, 1, 5, 3].map { order[$0] }
        #expect(ran.map { byID[$0]! } == expected)
    }

    @Test func idempotentSubmit() throws {
        let env = try SqueezeEnv.create()
        let a = try env.squeeze(["submit", "--noop", "--key", "nightly-42", "--json"])
        let b = try env.squeeze(["submit", "--noop", "--key", "nightly-42", "--json"])
        let ja = try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as! [String: Any]
        let jb = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        #expect(ja["id"] as! String == jb["id"] as! String)
        #expect(ja["existed"] as? Bool == false && jb["existed"] as? Bool == true)
        #expect(try count(env, "SELECT count(*) FROM jobs") == 1)
    }

    @Test func alwaysFailingJobEndsDeadWithEveryError() throws {
        let env = try SqueezeEnv.create()
        let id = try env.submit(["--noop", "--fail-times", "100", "--max-attempts", "3"])
        #expect(try env.drain(["--retry-base-seconds", "0.1"]).status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "dead")
        let attempts = try env.query("SELECT attempt, outcome, error FROM job_attempts WHERE job_id = $1::uuid ORDER BY attempt", [id])
        #expect(attempts.map { $0["outcome"] } == ["retry", "retry", "dead"])
        for (i, a) in attempts.enumerated() { #expect(a["error"]?.contains("planned failure on attempt \(i + 1)") == true) }
        #expect(try count(env, "SELECT count(*) FROM failing_jobs WHERE job_id = $1::uuid", [id]) == 1)
        #expect(try count(env, "SELECT count(*) FROM job_events WHERE job_id = $1::uuid AND kind = 'retry_scheduled'", [id]) == 2)
        // retry --dead puts it back with a new attempt budget.
        let r = try env.squeeze(["retry", "--dead"])
        #expect(r.stdout.contains("requeued 1"))
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "queued")
    }

    /// Cancel requested while the job runs, then its worker dies: once the lease expires the
    /// reconciler ends it cancelled (requeued, nothing would ever claim it: it stayed queued forever).
    @Test func cancelRequestedJobOfADeadWorkerEndsCancelled() throws {
        let env = try SqueezeEnv.create()
        let id = try env.submit(["--noop", "--sleep-ms", "60000"])
        let victim = try env.startSqueeze(["worker", "--lease-seconds", "2"])
        #expect(try waitUntil(timeout: 30) { try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "running" })
        victim.signal(SIGKILL)
        _ = victim.finish()
        #expect(try env.squeeze(["cancel", id]).stdout.contains("1"))
        #expect(try env.squeeze(["worker", "--exit-when-idle", "--lease-seconds", "2"], timeout: 60).status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "cancelled")
        #expect(try env.scalar("SELECT outcome FROM job_attempts WHERE job_id = $1::uuid", [id]) == "lease_expired")
        #expect(try env.scalar("SELECT finished_at IS NOT NULL FROM jobs WHERE id = $1::uuid", [id]) == "t")
    }

    @Test func transientFailureRetriesThenSucceeds() throws {
        let env = try SqueezeEnv.create()
        let id = try env.submit(["--noop", "--fail-times", "2", "--max-attempts", "3"])
        #expect(try env.drain(["--retry-base-seconds", "0.1"]).status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
        #expect(try env.scalar("SELECT attempt FROM jobs WHERE id = $1::uuid", [id]) == "3")
    }

    @Test func delayedJobWaitsItsTurn() throws {
        let env = try SqueezeEnv.create()
        let id = try env.submit(["--noop", "--after", "2s"])
        let t0 = Date()
        #expect(try env.drain().status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
        let delay = Double(try env.scalar("SELECT extract(epoch FROM started_at - created_at) FROM jobs WHERE id = $1::uuid", [id]) ?? "0")!
        #expect(delay >= 1.9)
        _ = t0
    }

    @Test func manifestBatchInOneTransaction() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        _ = try env.write("prune.yaml", foundationRecipe)
        var lines = [String]()
        for i in 0..<30 { lines.append("- {model: \(model), recipe: prune.yaml, priority: \(i % 3), key: job-\(i)}") }
        let manifest = try env.write("batch.yaml", lines.joined(separator: "\n") + "\n")
        let r = try env.squeeze(["submit", "--manifest", manifest, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let batch = j["batch_id"] as! String
        #expect((j["jobs"] as! [Any]).count == 30)
        #expect(try count(env, "SELECT jobs FROM batch_progress WHERE batch_id = $1::uuid", [batch]) == 30)
        // Resubmitting the same manifest creates nothing new.
        #expect(try env.squeeze(["submit", "--manifest", manifest]).status == 0)
        #expect(try count(env, "SELECT count(*) FROM jobs") == 30)
        // A bad entry refuses the whole manifest.
        lines.append("- {model: \(env.scratch)/missing.safetensors, recipe: prune.yaml}")
        let bad = try env.write("bad.yaml", lines.joined(separator: "\n") + "\n")
        let rb = try env.squeeze(["submit", "--manifest", bad])
        #expect(rb.status != 0 && rb.stderr.contains("entry 30"))
        #expect(try count(env, "SELECT count(*) FROM jobs") == 30)
        let w = try env.startSqueeze(["worker", "--exit-when-idle", "--concurrency", "2", "--threads", "1"])
        let wait = try env.squeeze(["wait", "--batch", batch], timeout: 300)
        #expect(wait.status == 0, "\(wait.stdout.suffix(500))")
        #expect(wait.stdout.contains("30/30 done: 30 succeeded"))
        _ = w.finish()
    }

    @Test func waitExitsNonZeroWhenAJobFails() throws {
        let env = try SqueezeEnv.create()
        let id = try env.submit(["--noop", "--fail-times", "5", "--max-attempts", "1"])
        try env.drain()
        let r = try env.squeeze(["wait", id])
        #expect(r.status == 1)
    }
}

/// `--max-memory`: a small worker never claims a job whose estimate exceeds it; a bigger one does.
@Suite struct MaxMemoryTests {
    @Test func smallWorkersLeaveBigJobsForBigOnes() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe])
        let estimate = Int(try env.scalar("SELECT memory_estimate FROM jobs WHERE id = $1::uuid", [id]) ?? "0")!
        #expect(estimate > 1 << 20)
        let small = try env.startSqueeze(["worker", "--max-memory", "1M", "--id", "small"])
        defer { small.signal(SIGKILL); _ = small.finish() }
        Thread.sleep(forTimeInterval: 3)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "queued")
        #expect(try env.scalar("SELECT count(*) FROM job_attempts") == "0")
        let big = try env.squeeze(["worker", "--exit-when-idle", "--max-memory", "8G", "--id", "big"])
        #expect(big.status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
        #expect(try env.scalar("SELECT string_agg(worker_id, ',') FROM job_attempts WHERE job_id = $1::uuid", [id]) == "big")
    }
}
