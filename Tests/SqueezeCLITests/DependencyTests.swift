import Foundation
import Queue
import Testing
import TestSupport

/// Job dependencies through the CLI against real PostgreSQL and Redis: `--after-job` and manifest
/// `needs`, the `waiting` state, release in the completing transaction, `dependency_failed`
/// cascades, refusals at submit, faults while dependents wait, and `imatrix: {job: KEY}`.
@Suite struct DependencyTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    func state(_ env: SqueezeEnv, _ id: String) throws -> String? {
        try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id])
    }

    /// Seconds from `a`'s finish to `b`'s start (negative when b started first).
    func gap(_ env: SqueezeEnv, _ a: String, _ b: String) throws -> Double {
        let s = try env.scalar(
            "SELECT extract(epoch FROM (SELECT started_at FROM jobs WHERE id = $2::uuid) - finished_at) FROM jobs "
                + "WHERE id = $1::uuid", [a, b])
        return Double(s ?? "") ?? -1e9
    }

    @Test func aJobWaitsForItsDependencyThenRunsOnce() throws {
        let env = try SqueezeEnv.create()
        let a = try env.submit(["--noop", "--sleep-ms", "300"])
        let b = try env.submit(["--noop", "--after-job", String(a.prefix(8))])
        #expect(try state(env, b) == "waiting")
        let status = try env.squeeze(["status"])
        #expect(status.stdout.contains("waiting    1"), "\(status.stdout)")
        let show = try env.squeeze(["show", b])
        #expect(show.stdout.contains("needs     \(a): queued"), "\(show.stdout)")
        try env.drain()
        #expect(try state(env, a) == "succeeded" && state(env, b) == "succeeded")
        #expect(try gap(env, a, b) >= 0)
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [b]) == "1")
        #expect(try env.scalar("SELECT count(*) FROM job_events WHERE job_id = $1::uuid AND kind = 'dependencies_met'", [b]) == "1")
    }

    @Test func aDeadDependencyCancelsItsDependentsTransitively() throws {
        let env = try SqueezeEnv.create()
        let a = try env.submit(["--noop", "--fail-times", "5", "--max-attempts", "1"])
        let b = try env.submit(["--noop", "--after-job", a])
        let c = try env.submit(["--noop", "--after-job", b])
        let ok = try env.submit(["--noop"])
        try env.drain()  // returns: nothing waits for anything that can still succeed
        #expect(try state(env, a) == "dead" && state(env, ok) == "succeeded")
        for d in [b, c] {
            #expect(try state(env, d) == "cancelled")
            #expect(try env.scalar("SELECT error_code FROM jobs WHERE id = $1::uuid", [d]) == "dependency_failed")
            #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [d]) == "0")
        }
        #expect(try env.scalar("SELECT error FROM jobs WHERE id = $1::uuid", [b])?.contains("\(a) (key -) ended dead") == true)
        #expect(try env.scalar("SELECT error FROM jobs WHERE id = $1::uuid", [c])?.contains("\(b) (key -) ended cancelled") == true)
    }

    @Test func submitRefusesWhatCanNeverRun() throws {
        let env = try SqueezeEnv.create()
        let missing = try env.squeeze(["submit", "--noop", "--after-job", UUID().uuidString])
        #expect(missing.status != 0 && missing.stderr.contains("no such job"), "\(missing.stderr)")
        let dead = try env.submit(["--noop", "--fail-times", "5", "--max-attempts", "1"])
        try env.drain()
        let r = try env.squeeze(["submit", "--noop", "--after-job", dead])
        #expect(r.status != 0 && r.stderr.contains("not submitted: dependency \(dead) (key -) already ended dead"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "1")
        // Cancelling a waiting job ends it at once.
        let a = try env.submit(["--noop", "--after", "1h"])
        let b = try env.submit(["--noop", "--after-job", a])
        #expect(try env.squeeze(["cancel", b]).status == 0)
        #expect(try state(env, b) == "cancelled" && state(env, a) == "queued")
    }

    @Test func manifestNeedsOrderTheBatchAndCyclesAreRefused() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("r.yaml", "stages:\n  - export: {format: safetensors}\n")
        func manifest(_ name: String, _ entries: [(key: String, needs: [String])]) throws -> String {
            try env.write(name, entries.map { e in
                "- {model: \(model), recipe: \(recipe), key: \(e.key)"
                    + (e.needs.isEmpty ? "" : ", needs: [\(e.needs.joined(separator: ", "))]") + "}"
            }.joined(separator: "\n") + "\n")
        }
        for (entries, want) in [
            ([("a", ["b"]), ("b", ["c"]), ("c", ["a"])], #"needs form a cycle: "a" -> "b" -> "c" -> "a""#),
            ([("a", ["a"])], "entry 0 needs itself"),
            ([("a", ["nowhere"])], "needs nowhere: no job has that key"),
        ] {
            let r = try env.squeeze(["submit", "--manifest", try manifest("bad.yaml", entries)])
            #expect(r.status != 0 && r.stderr.contains(want), "\(r.stderr)")
        }
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
        let ok = try env.squeeze(["submit", "--manifest", try manifest("ok.yaml", [("c", ["a", "b"]), ("b", ["a"]), ("a", [])]), "--json"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'waiting'") == "2")
        #expect(try env.scalar("SELECT waiting FROM batch_progress") == "2")
        try env.drain(["--concurrency", "2"])
        let id = { (k: String) in try env.scalar("SELECT id FROM jobs WHERE idempotency_key = $1", [k])! }
        #expect(try gap(env, id("a"), id("b")) >= 0 && gap(env, id("b"), id("c")) >= 0)
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "3")
        // A later submit may name a job of this one by key.
        let later = try env.squeeze(["submit", "--manifest", try manifest("later.yaml", [("d", ["c"])])])
        #expect(later.status == 0, "\(later.stderr)")
        #expect(try env.scalar("SELECT state FROM jobs WHERE idempotency_key = 'd'") == "queued")
    }

    /// The worker running a dependency is killed: the dependency runs again (a second attempt after
    /// its lease expires) and the dependent runs exactly once, after it.
    @Test func killingTheWorkerOfADependencyLosesAndDuplicatesNothing() throws {
        let env = try SqueezeEnv.create()
        let a = try env.submit(["--noop", "--sleep-ms", "4000"])
        let b = try env.submit(["--noop", "--after-job", a])
        let victim = try env.startSqueeze(["worker", "--lease-seconds", "2"])
        #expect(try waitUntil(timeout: 30) { try state(env, a) == "running" })
        victim.signal(SIGKILL)
        _ = victim.finish()
        #expect(try state(env, b) == "waiting")
        try env.drain(["--lease-seconds", "2"])
        #expect(try state(env, a) == "succeeded" && state(env, b) == "succeeded")
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [a]) == "2")
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [b]) == "1")
        #expect(try gap(env, a, b) >= 0)
    }

    /// Redis loses everything while dependents wait: nothing is lost, nothing runs early or twice.
    @Test func redisLosingEverythingWhileDependentsWait() throws {
        let redis = try PrivateRedis()
        let env = try SqueezeEnv.create(redisURL: redis.url)
        let a = try env.submit(["--noop", "--sleep-ms", "200"])
        let waiting = try (0..<5).map { _ in try env.submit(["--noop", "--after-job", a]) }
        try redis.restart()
        try env.drain()
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "6")
        #expect(try env.scalar("SELECT count(*) FROM job_attempts") == "6")
        for w in waiting { #expect(try gap(env, a, w) >= 0) }
    }

    /// `squeeze sweep`: one calibration job and one export per other type waiting for it (and a
    /// compressed-tensors GPTQ job), as one batch; `--wait` prints the size-against-quality table once
    /// the batch is done.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func sweepSharesOneCalibration() throws {
        let env = try SqueezeEnv.create()
        let data = try env.write("cal.txt", String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 300))
        let args = ["sweep", "--model", Self.llama! + "/tiny/hf", "--dataset", data, "--types", "q8_0,q4_0,q5_1",
                    "--compressed-tensors", "int4-g32-asym", "--samples", "4", "--seq-len", "32", "--eval-samples", "2",
                    "--name", "s1"]
        let bad = try env.squeeze(args.map { $0 == "q8_0,q4_0,q5_1" ? "q8_0,q9_9" : $0 })
        #expect(bad.status != 0 && bad.stderr.contains("--types: q9_9 is not one of"), "\(bad.stderr)")
        let badCT = try env.squeeze(args.map { $0 == "int4-g32-asym" ? "int9" : $0 })
        #expect(badCT.status != 0 && badCT.stderr.contains("--compressed-tensors: int9 is not int<bits>"), "\(badCT.stderr)")
        let sweep = try env.startSqueeze(args + ["--wait"])
        #expect(try waitUntil(timeout: 60) { try env.scalar("SELECT count(*) FROM jobs") == "4" })
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'waiting'") == "3")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE recipe::text LIKE '%calibrate%'") == "2")
        try env.drain()
        #expect(sweep.wait(timeout: 60))
        let r = sweep.finish()
        #expect(r.status == 0, "\(r.stderr)")
        for t in ["q8_0", "q4_0", "q5_1", "ct-int4-g32-asym"] {
            #expect(r.stdout.contains("\(t) ") && r.stdout.contains("succeeded"), "\(r.stdout)")
        }
        #expect(try env.scalar("SELECT count(*) FROM job_quality") == "4")
        // The first job saved the original's logits; the others read them: the same original perplexity.
        #expect(try env.scalar("SELECT count(*) FROM artifacts WHERE path LIKE '%/eval-reference.bin'") == "1")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE recipe::text LIKE '%\"reference\"%'") == "3")
        #expect(try env.scalar("SELECT count(DISTINCT original_perplexity) FROM job_quality") == "1")
        #expect(try env.scalar("SELECT count(*) FROM artifacts WHERE path LIKE '%/compressed-tensors/model.safetensors'") == "1")
    }

    /// `imatrix: {job: KEY}` reads the importance matrix another job published: the export's tensors
    /// are byte-identical to those of a job that collects the matrix itself.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func anExportReadsItsDependencysImportanceMatrix() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny/hf"
        let data = try env.write("cal.txt", String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 200))
        let cal = try env.write("cal.yaml", """
            stages:
              - calibrate: {dataset: \(data), samples: 4, seq_len: 32}
              - export: {format: gguf, type: q4_0, imatrix: true}
            """)
        let both = try env.write("both.yaml", """
            stages:
              - calibrate: {dataset: \(data), samples: 4, seq_len: 32}
              - export: {format: gguf, type: q5_0, imatrix: true}
            """)
        let reuse = try env.write("reuse.yaml", "stages:\n  - export: {format: gguf, type: q5_0, imatrix: {job: cal}}\n")
        let m = try env.write("m.yaml", """
            - {model: \(model), recipe: \(reuse), key: reuse}
            - {model: \(model), recipe: \(cal), key: cal}
            - {model: \(model), recipe: \(both), key: alone}
            """)
        let r = try env.squeeze(["submit", "--manifest", m])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try env.scalar("SELECT state FROM jobs WHERE idempotency_key = 'reuse'") == "waiting")
        try env.drain()
        let dir = { (k: String) in
            env.scratch + "/artifacts/" + (try env.scalar("SELECT output_path FROM jobs WHERE idempotency_key = $1", [k]) ?? "?")
        }
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "3")
        let cmp = try env.python("gguf_tensor_bytes.py", [try dir("reuse") + "/model-q5_0.gguf", try dir("alone") + "/model-q5_0.gguf", "--all"])
        #expect(cmp.status == 0, "\(cmp.stdout) \(cmp.stderr)")
        let local = try env.squeeze(["run", "--model", model, "--recipe", reuse, "--out", env.scratch + "/local"])
        #expect(local.status != 0 && local.stderr.contains("{job: cal} reads a file another job publishes"),
                "\(local.stderr)")
    }
}
