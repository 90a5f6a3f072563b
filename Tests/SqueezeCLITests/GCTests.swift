import Foundation
import Queue
import Testing
import TestSupport

/// `squeeze gc`: forgets finished jobs past the horizon (failed and dead ones past their own),
/// removes their outputs, superseded attempt directories, stale staging and finished jobs'
/// checkpoints, while two workers run a batch with checkpoints: nothing a queued or running job
/// needs disappears, every new job succeeds exactly once with its artifacts intact.
@Suite struct GCTests {
    func gc(_ env: SqueezeEnv, _ args: [String]) throws -> [String: Any] {
        let r = try env.squeeze(["gc", "--json"] + args)
        #expect(r.status == 0, "\(r.stderr)")
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    func plant(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 4096)))
    }

    @Test func forgetsOldJobsAndReclaimsDiskWhileWorkersRun() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("r.yaml", foundationRecipe)
        // History: 3 compression jobs and 20 no-ops that succeeded, 4 that died; then made 40 days old.
        #expect(try env.squeeze(["submit", "--model", model, "--recipe", recipe, "--count", "3"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "20"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "4", "--fail-times", "9", "--max-attempts", "1"]).status == 0)
        try env.drain()
        let db = try env.db.connect()
        let old = try db.query("SELECT id::text AS id, kind FROM jobs WHERE state = 'succeeded'").map { ($0["id"]!, $0["kind"]!) }
        #expect(old.count == 23)
        _ = try db.query("UPDATE jobs SET finished_at = now() - interval '40 days' WHERE state IN ('succeeded', 'dead')")
        let oldOutputs = old.filter { $0.1 == "compress" }.map { env.artifactRoot + "/artifacts/" + $0.0 }
        #expect(oldOutputs.allSatisfy { FileManager.default.fileExists(atPath: $0) })

        // The dry run counts and touches nothing.
        let dry = try gc(env, ["--older-than", "30d", "--keep-failed", "90d", "--dry-run"])
        #expect(dry["jobs"] as? Int == 23 && dry["output_dirs"] as? Int == 3, "\(dry)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "27" && oldOutputs.allSatisfy { FileManager.default.fileExists(atPath: $0) })

        // Load: two workers on 150 no-ops and 2 compression jobs slowed to a unit per 150 ms (checkpoints on disk).
        // Each worker sweeps the disk once as it starts, then not again within the test: the garbage
        // planted below is only planted once both start sweeps are done (each worker removes a staging
        // directory of an unknown job before the next step), so what reclaims it is `squeeze gc`.
        var workers = [RunningProcess]()
        defer { for w in workers { w.signal(SIGKILL); _ = w.finish() } }
        for _ in 0..<2 {
            let sentinel = env.artifactRoot + "/staging/\(UUID().uuidString.lowercased())-attempt-1-otherhost-4242"
            try plant(sentinel + "/model.safetensors")
            workers.append(try env.startSqueeze(["worker", "--unit-delay-ms", "150", "--lease-seconds", "5", "--sweep-seconds", "3600"]))
            let deadline = Date().addingTimeInterval(60)
            while FileManager.default.fileExists(atPath: sentinel) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            try #require(!FileManager.default.fileExists(atPath: sentinel), "the worker did not sweep the disk as it started")
        }
        #expect(try env.squeeze(["submit", "--model", model, "--recipe", recipe, "--count", "2", "--priority", "10"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "150", "--sleep-ms", "10"]).status == 0)
        let fresh = try db.query("SELECT id::text AS id, kind FROM jobs WHERE finished_at IS NULL AND state <> 'dead'").map { ($0["id"]!, $0["kind"]!) }
        #expect(fresh.count == 152)
        // Garbage a crash could leave: a superseded attempt of a running job, staging of an attempt that is not
        // running (another host), a finished job's checkpoints.
        let running = try #require(fresh.first { $0.1 == "compress" }?.0)
        try plant(env.artifactRoot + "/artifacts/\(running)/attempt-9/model.safetensors")
        try plant(env.artifactRoot + "/staging/\(old[0].0)-attempt-1-otherhost-4242/model.safetensors")
        let deadJob = try #require(try env.scalar("SELECT id FROM jobs WHERE state = 'dead' LIMIT 1"))
        try plant(env.artifactRoot + "/work/\(deadJob)/u0.a1.bin")

        var totals: [String: Int] = [:]
        var passes = 0
        while try env.scalar("SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND state <> 'succeeded'", [fresh.map(\.0)]) != "0" {
            for (k, v) in try gc(env, ["--older-than", "30d", "--keep-failed", "90d"]) { if let n = v as? Int { totals[k, default: 0] += n } }
            passes += 1
            #expect(passes < 400, "the batch did not finish")
            if passes >= 400 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(passes > 3, "gc ran \(passes) times during the batch")
        for (k, v) in try gc(env, ["--older-than", "30d", "--keep-failed", "90d"]) { if let n = v as? Int { totals[k, default: 0] += n } }

        // Forgotten: the old succeeded jobs, their events and outputs; the dead ones stay (kept 90 days).
        #expect(totals["jobs"] == 23 && totals["output_dirs"] == 3, "\(totals)")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[])", [old.map(\.0)]) == "0")
        #expect(try env.scalar("SELECT count(*) FROM job_events WHERE job_id = ANY($1::uuid[])", [old.map(\.0)]) == "0")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'dead'") == "4")
        #expect(oldOutputs.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        #expect(totals["superseded_dirs"] == 1 && !FileManager.default.fileExists(atPath: env.artifactRoot + "/artifacts/\(running)/attempt-9"))
        #expect((totals["staging_dirs"] ?? 0) >= 1 && (totals["checkpoint_dirs"] ?? 0) >= 1)
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/staging/\(old[0].0)-attempt-1-otherhost-4242"))
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/work/\(deadJob)"))
        #expect(try env.scalar("SELECT count(*) FROM job_checkpoints") == "0")

        // Nothing the batch needed went: every new job succeeded once, every artifact is on disk with its hash.
        #expect(try env.scalar("""
            SELECT count(*) FROM (SELECT job_id FROM job_attempts WHERE job_id = ANY($1::uuid[]) AND outcome = 'succeeded'
                                  GROUP BY job_id HAVING count(*) = 1) s
            """, [fresh.map(\.0)]) == "152")
        let artifacts = try db.query("SELECT path, sha256 FROM artifacts WHERE job_id = ANY($1::uuid[])", [fresh.map(\.0)])
        #expect(artifacts.count >= 2)
        for a in artifacts {
            let path = env.artifactRoot + "/" + a["path"]!
            let sum = try ProcessRunner.run("/usr/bin/sha256sum", [path]).stdout.split(separator: " ").first.map(String.init)
            #expect(sum == a["sha256"]!, "\(path)")
        }
    }

    /// `--keep-failed` defaults to 90 days (never less than --older-than), as the README says: a
    /// dead job survives `gc --older-than 0s`, a succeeded one of the same age does not.
    @Test func failedJobsAreKeptNinetyDaysByDefault() throws {
        let env = try SqueezeEnv.create()
        let dead = try env.submit(["--noop", "--fail-times", "1", "--max-attempts", "1"])
        let done = try env.submit(["--noop"])
        let w = try env.squeeze(["worker", "--exit-when-idle", "--lease-seconds", "5"], timeout: 120)
        #expect(w.status == 0, "\(w.stderr.suffix(500))")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [dead]) == "dead")
        _ = try gc(env, ["--older-than", "0s"])
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE id = $1::uuid", [dead]) == "1", "the dead job was forgotten")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE id = $1::uuid", [done]) == "0")
        _ = try gc(env, ["--older-than", "0s", "--keep-failed", "0s"])
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE id = $1::uuid", [dead]) == "0")
    }

    @Test func refusesABadHorizon() throws {
        let env = try SqueezeEnv.create()
        let r = try env.squeeze(["gc", "--older-than", "30 days"])
        #expect(r.status != 0 && r.stderr.contains("--older-than must be like 30d"))
    }
}
