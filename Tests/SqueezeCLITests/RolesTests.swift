import Foundation
import Queue
import Testing
import TestSupport

/// Least-privilege roles (migration 0008): login roles granted squeeze_submitter, squeeze_worker
/// or squeeze_monitor run the real CLI and are refused, by PostgreSQL, what they must not do.
@Suite struct RolesTests {
    /// The test database's URL as login role `user` (the test cluster trusts loopback logins).
    static func url(_ env: SqueezeEnv, as user: String) throws -> String {
        var c = URLComponents(string: try env.db.url)!
        c.user = user
        c.password = nil
        return c.string!
    }

    /// Runs `sql` as `user`; PostgreSQL's message when it refuses for want of privilege (a
    /// constraint or syntax error does not count), nil when it succeeds.
    static func refusal(_ env: SqueezeEnv, as user: String, _ sql: String) -> String? {
        do {
            _ = try PostgresConnection(url: url(env, as: user)).query(sql)
            return nil
        } catch {
            let m = String(describing: error)
            let privilege = ["permission denied", "must be owner", "may only cancel", "row-level security",
                             "only to its own batches"].contains { m.contains($0) }
            return privilege ? m : nil
        }
    }

    @Test func eachRoleIsRefusedWhatItMustNotDo() throws {
        let env = try SqueezeEnv.create()
        let tag = UUID().uuidString.prefix(8).lowercased()
        let (sub, other, work, mon) = ("sq_sub_\(tag)", "sq_sub2_\(tag)", "sq_work_\(tag)", "sq_mon_\(tag)")
        let admin = try env.db.connect()
        for (user, role) in [(sub, "squeeze_submitter"), (other, "squeeze_submitter"), (work, "squeeze_worker"), (mon, "squeeze_monitor")] {
            _ = try admin.query("CREATE ROLE \(user) LOGIN IN ROLE \(role)")
        }
        defer { for user in [sub, other, work, mon] { _ = try? admin.query("DROP ROLE IF EXISTS \(user)") } }
        func cli(_ user: String, _ args: [String]) throws -> ProcessResult {
            try ProcessRunner.run(TestConfiguration.binary, args, env: env.environment.merging(["SQUEEZE_DATABASE_URL": Self.url(env, as: user)]) { $1 }, timeout: 120)
        }

        // Submitter: submits and cancels its own jobs through the CLI, sees only its own.
        let s = try cli(sub, ["submit", "--noop", "--count", "3"])
        guard s.status == 0 else { Issue.record("submit as \(sub): \(s.stderr)"); return }
        let mine = s.stdout.split(separator: "\n").map(String.init)
        #expect(try cli(other, ["submit", "--noop"]).status == 0)
        #expect(try cli(sub, ["cancel", mine[2]]).status == 0)
        let subDB = try PostgresConnection(url: Self.url(env, as: sub))
        #expect(try subDB.query("SELECT count(*) AS n FROM jobs")[0].decode("n") as Int == 3, "a submitter reads only its own jobs")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [mine[2]]) == "cancelled")

        // Worker: runs the jobs through the CLI; owns nothing, so no DDL.
        let w = try cli(work, ["worker", "--exit-when-idle", "--lease-seconds", "5"])
        #expect(w.status == 0, "\(w.stderr.suffix(1500))")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "3")
        for sql in ["DROP TABLE jobs", "ALTER TABLE jobs ADD COLUMN x int", "TRUNCATE job_events", "CREATE TABLE evil (x int)"] {
            #expect(Self.refusal(env, as: work, sql) != nil, "worker was allowed: \(sql)")
        }

        // Submitter: cannot move a job a worker owns, write results, or touch another's job.
        let running = try env.submit(["--noop", "--sleep-ms", "1"])
        _ = try admin.query("UPDATE jobs SET state = 'running', submitted_by = $1 WHERE id = $2::uuid", [sub, running])
        for sql in ["UPDATE jobs SET state = 'succeeded' WHERE id = '\(running)'",
                    "UPDATE jobs SET state = 'queued' WHERE id = '\(mine[0])'",
                    "UPDATE jobs SET units_done = 5 WHERE id = '\(running)'",
                    "INSERT INTO artifacts (job_id, attempt, path, bytes, sha256, format) VALUES ('\(running)', 1, 'x', 1, 'y', 'gguf')",
                    "INSERT INTO layer_metrics (job_id, tensor, attempt, unit_index, dtype, numel, sparsity, bits, elapsed_ms, bytes_in, bytes_out) VALUES ('\(running)', 't', 1, 0, 'F32', 1, 0, 32, 1, 4, 4)",
                    "DELETE FROM jobs WHERE id = '\(running)'"] {
            #expect(Self.refusal(env, as: sub, sql) != nil, "submitter was allowed: \(sql)")
        }
        #expect(try PostgresConnection(url: Self.url(env, as: other)).query("UPDATE jobs SET cancel_requested = true WHERE id = $1::uuid RETURNING id", [running]).isEmpty,
                "another submitter's job is invisible")
        #expect(try cli(sub, ["cancel", running]).status == 0, "cancel of a running job is a request")
        #expect(try env.scalar("SELECT state || ' ' || cancel_requested FROM jobs WHERE id = $1::uuid", [running]) == "running true")

        // Submitter: may insert only what `squeeze submit` writes (migration 0010).
        let theirBatch = try PostgresConnection(url: Self.url(env, as: other))
            .query("INSERT INTO batches (name) VALUES ('theirs') RETURNING id")[0].decode("id", as: UUID.self)
        let forged = [
            "INSERT INTO jobs (id, kind, recipe, input_path, state) VALUES (gen_random_uuid(), 'noop', '{}', 'x', 'succeeded')",
            "INSERT INTO jobs (id, kind, recipe, input_path, state, worker_id, lease_until) VALUES (gen_random_uuid(), "
                + "'noop', '{}', 'x', 'running', 'forged-worker', now() + interval '100 years')",
            "INSERT INTO jobs (id, kind, recipe, input_path, state, error) VALUES (gen_random_uuid(), 'noop', '{}', 'x', "
                + "'dead', 'forged')",
            "INSERT INTO jobs (id, kind, recipe, input_path, attempt) VALUES (gen_random_uuid(), 'noop', '{}', 'x', 2)",
            "INSERT INTO jobs (id, kind, recipe, input_path, submitted_by) VALUES (gen_random_uuid(), 'noop', '{}', 'x', "
                + "'\(other)')",
            "INSERT INTO jobs (id, kind, recipe, input_path, batch_id) VALUES (gen_random_uuid(), 'noop', '{}', 'x', "
                + "'\(theirBatch)')",
            "INSERT INTO job_events (job_id, kind) SELECT id, 'cancelled' FROM jobs LIMIT 0",
            "INSERT INTO job_events (job_id, kind) VALUES ('\(running)', 'succeeded')",
            "INSERT INTO batches (name, submitted_by) VALUES ('b', '\(other)')",
        ]
        for sql in forged where !sql.contains("LIMIT 0") {
            #expect(Self.refusal(env, as: sub, sql) != nil, "submitter was allowed: \(sql)")
        }
        let theirs = try env.scalar("SELECT id FROM jobs WHERE submitted_by = $1 LIMIT 1", [other]) ?? ""
        #expect(Self.refusal(env, as: sub, "INSERT INTO job_events (job_id, kind) VALUES ('\(theirs)', 'cancelled')") != nil,
                "a submitter wrote an event into another submitter's job")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE worker_id = 'forged-worker' OR error = 'forged' OR "
                               + "batch_id = $1", [theirBatch]) == "0")

        // Worker: no deletes, append-only events, no rewriting who submitted a job.
        for sql in ["DELETE FROM jobs", "DELETE FROM job_events", "DELETE FROM batches", "DELETE FROM artifacts",
                    "UPDATE jobs SET submitted_by = 'x'", "UPDATE jobs SET recipe = '{}'", "UPDATE job_events SET kind = 'x'",
                    "UPDATE batches SET name = 'x'"] {
            #expect(Self.refusal(env, as: work, sql) != nil, "worker was allowed: \(sql)")
        }

        // Monitor: reads the views, writes nothing, reads no table directly.
        #expect(Self.refusal(env, as: mon, "SELECT * FROM queue_overview") == nil)
        let top = try cli(mon, ["top"])
        #expect(top.status == 0, "\(top.stderr)")
        for sql in ["INSERT INTO batches (name) VALUES ('x')", "UPDATE jobs SET priority = 1", "SELECT * FROM jobs", "DELETE FROM workers"] {
            #expect(Self.refusal(env, as: mon, sql) != nil, "monitor was allowed: \(sql)")
        }
    }
}
