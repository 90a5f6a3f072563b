import Foundation
import Queue
import Testing
import TestSupport

/// Behind PgBouncer in transaction pooling, as a fleet runs it: the CLI and 4 workers (8 client
/// connections) over a pool of 4 server connections run 1,000 no-ops with failures, one real
/// compression job, a cancel and a worker killed mid-job; exactly-once success, leases, cancel
/// and the reconciler hold, and SHOW POOLS never shows more server connections than the pool.
@Suite struct PgBouncerTests {
    static let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let poolSize = 4

    /// A pgbouncer in front of `env`'s database; returns its directory, port and the database URL through it.
    static func start(_ env: SqueezeEnv) throws -> (dir: String, port: Int, url: String) {
        let dir = "/tmp/squeeze-pgb-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o777)
        let db = try env.db
        let server = URLComponents(string: db.url)!
        let port = Int.random(in: 20000...29999)
        try """
            [databases]
            \(db.name) = host=\(server.host ?? "127.0.0.1") port=\(server.port ?? 5432) dbname=\(db.name) user=\(server.user ?? "postgres")
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(dir)/users.txt
            admin_users = \(server.user ?? "postgres")
            pool_mode = transaction
            default_pool_size = \(poolSize)
            reserve_pool_size = 0
            max_client_conn = 500
            server_reset_query =
            logfile = \(dir)/pgbouncer.log
            pidfile = \(dir)/pgbouncer.pid
            """.write(toFile: dir + "/pgbouncer.ini", atomically: true, encoding: .utf8)
        try "\"\(server.user ?? "postgres")\" \"\"\n".write(toFile: dir + "/users.txt", atomically: true, encoding: .utf8)
        for f in ["pgbouncer.ini", "users.txt"] { chmod(dir + "/" + f, 0o644) }
        // pgbouncer refuses root: -u drops to the postgres user; -d daemonizes.
        let r = try ProcessRunner.runDaemonizing(binary!, ["-d", "-u", "postgres", dir + "/pgbouncer.ini"], timeout: 20)
        #expect(r.status == 0, "pgbouncer: \(r.stderr) \((try? String(contentsOfFile: dir + "/pgbouncer.log", encoding: .utf8)) ?? "")")
        var c = server
        c.port = port
        return (dir, port, c.string!)
    }

    static func stop(_ dir: String) {
        if let pid = (try? String(contentsOfFile: dir + "/pgbouncer.pid", encoding: .utf8)).flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
            // SIGTERM lets pgbouncer wait for its clients to leave; a pooler left behind would
            // outlive the test run, so it gets a moment and then SIGKILL.
            kill(pid, SIGTERM)
            for _ in 0..<10 where kill(pid, 0) == 0 { usleep(50_000) }
            kill(pid, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Server connections the pool holds now for `db` (active, idle, used, tested, logging in), from SHOW POOLS.
    static func serverConnections(port: Int, db: String) -> Int? {
        guard let r = try? ProcessRunner.run("/usr/bin/psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "pgbouncer",
                                                              "-AtF", ",", "-c", "SHOW POOLS"], timeout: 10), r.status == 0 else { return nil }
        // Columns: database, user, cl_active, cl_waiting, cl_active_cancel_req, cl_waiting_cancel_req, sv_active, sv_active_cancel, sv_being_canceled, sv_idle, sv_used, sv_tested, sv_login, ...
        let header = ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active",
                      "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login"]
        var total = 0
        for line in r.stdout.split(separator: "\n") where line.hasPrefix(db + ",") {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            for name in ["sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login"] {
                if let i = header.firstIndex(of: name), i < f.count { total += Int(f[i]) ?? 0 }
            }
        }
        return total
    }

    @Test(.enabled(if: binary != nil, "needs pgbouncer (ops/test installs it)"))
    func fleetRunsBehindTransactionPooling() throws {
        let env = try SqueezeEnv.create()
        let (dir, port, url) = try Self.start(env)
        defer { Self.stop(dir) }
        func cli(_ args: [String], timeout: Double = 120) throws -> ProcessResult {
            try ProcessRunner.run(TestConfiguration.binary, args, env: env.environment.merging(["SQUEEZE_DATABASE_URL": url]) { $1 }, timeout: timeout)
        }
        func worker(_ args: [String]) throws -> RunningProcess {
            try ProcessRunner.start(TestConfiguration.binary, ["worker", "--lease-seconds", "3", "--retry-base-seconds", "0.1"] + args,
                                    env: env.environment.merging(["SQUEEZE_DATABASE_URL": url]) { $1 })
        }
        #expect(try cli(["status"]).status == 0, "the CLI through pgbouncer")

        // Watch the pool the whole time.
        let dbName = try env.db.name
        let watching = NSLock()
        var maxServers = 0, samples = 0, done = false
        let watcher = Thread {
            while !watching.withLock({ done }) {
                if let n = Self.serverConnections(port: port, db: dbName) { watching.withLock { maxServers = max(maxServers, n); samples += 1 } }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        watcher.start()
        defer { watching.withLock { done = true } }

        let model = try env.makeModel()
        let recipe = try env.write("r.yaml", foundationRecipe)
        let compress = try #require(try cli(["submit", "--model", model, "--recipe", recipe]).stdout.split(separator: "\n").first.map(String.init))
        #expect(try cli(["submit", "--noop", "--count", "900"]).status == 0)
        #expect(try cli(["submit", "--noop", "--count", "80", "--fail-times", "1", "--max-attempts", "3"]).status == 0)
        #expect(try cli(["submit", "--noop", "--count", "20", "--fail-times", "9", "--max-attempts", "2"]).status == 0)
        let toCancel = try #require(try cli(["submit", "--noop", "--sleep-ms", "60000", "--priority", "100"]).stdout.split(separator: "\n").first.map(String.init))
        let orphan = try #require(try cli(["submit", "--noop", "--sleep-ms", "4000", "--priority", "99"]).stdout.split(separator: "\n").first.map(String.init))

        // A worker that takes the high-priority jobs first, then dies with the 4 s job on its hands.
        let victim = try worker(["--concurrency", "2", "--id", "victim"])
        #expect(try waitUntil(timeout: 30) { try env.scalar("SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND state = 'running'", [[toCancel, orphan]]) == "2" })
        victim.signal(SIGKILL)
        _ = victim.finish()
        #expect(try cli(["cancel", toCancel]).status == 0)

        let fleet = try (0..<4).map { i in try worker(["--concurrency", "2", "--id", "fleet-\(i)"]) }
        defer { for w in fleet { w.signal(SIGKILL); _ = w.finish() } }
        let finished = try waitUntil(timeout: 240) { try env.scalar("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == "0" }
        let states = try env.scalar("SELECT string_agg(state || ' ' || n, ', ') FROM (SELECT state, count(*) AS n FROM jobs GROUP BY state) s") ?? ""
        #expect(finished, "jobs left: \(states)")
        watching.withLock { done = true }

        // Exactly once: 981 successes (900 + 80 retried + the orphan) plus the compression job, one succeeded attempt each.
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "982")
        #expect(try env.scalar("SELECT count(*) FROM (SELECT job_id FROM job_attempts WHERE outcome = 'succeeded' GROUP BY job_id HAVING count(*) > 1) s") == "0")
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE outcome = 'succeeded'") == "982")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'dead'") == "20")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [toCancel]) == "cancelled")
        // The reconciler took the dead worker's job back after its lease and another worker finished it.
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [orphan]) == "succeeded")
        #expect(try env.scalar("SELECT outcome FROM job_attempts WHERE job_id = $1::uuid AND attempt = 1", [orphan]) == "lease_expired")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [compress]) == "succeeded")
        #expect(Int(try env.scalar("SELECT count(*) FROM artifacts WHERE job_id = $1::uuid", [compress]) ?? "0") ?? 0 > 0)

        let (peak, seen) = watching.withLock { (maxServers, samples) }
        #expect(seen > 10, "SHOW POOLS was read \(seen) times")
        #expect(peak >= 1 && peak <= Self.poolSize, "server connections peaked at \(peak), pool \(Self.poolSize)")
    }
}
