import Foundation
import Queue
import Testing
import TestSupport

/// `squeeze dashboard`: a batch of real compression jobs (tiny Llama, each evaluated) and no-ops
/// with failures, a live worker on a running job; every page loaded in a real headless Chromium
/// (DOM numbers checked against SQL, non-empty screenshots, nothing requested from another host),
/// `/metrics` parsed by prometheus_client and checked against SQL, the token off loopback, and the
/// page weight with 10,000 jobs. The dashboard runs as a squeeze_monitor login: views only.
@Suite(.serialized) struct DashboardPageTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static let ready = Browser.path != nil && llama != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")

    /// Starts `squeeze dashboard extra...` and returns it with its base URL.
    static func start(_ env: SqueezeEnv, databaseURL: String, _ extra: [String]) throws -> (RunningProcess, String) {
        let p = try ProcessRunner.start(TestConfiguration.binary, ["dashboard", "--refresh", "0"] + extra,
                                        env: env.environment.merging(["SQUEEZE_DATABASE_URL": databaseURL]) { $1 })
        var base = ""
        _ = waitUntil(timeout: 20) {
            if let line = p.stdoutSoFar.split(separator: "\n").first(where: { $0.hasPrefix("squeeze dashboard: http://") }) {
                base = String(line.split(separator: " ")[2]).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            }
            return !base.isEmpty || !p.isRunning
        }
        return (p, base)
    }

    static func int(_ dom: String, _ pattern: String) -> Int? {
        guard let r = dom.range(of: pattern + #"(\d+)<"#, options: .regularExpression) else { return nil }
        return Int(dom[r].dropFirst(pattern.count).filter(\.isNumber))
    }

    @Test(.enabled(if: ready, "needs chromium, curl and SQUEEZE_LLAMA_DIR (ops/test installs them)"))
    func pagesInARealBrowserMatchSQL() throws {
        let env = try SqueezeEnv.create()
        let pydoc = TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt"
        var manifest = ""
        for (i, (stage, export)) in [("- prune: {method: magnitude, sparsity: 0.3, targets: [\"blk.*.weight\"], ignore: [\"*norm*\"]}", "gguf, type: q8_0"),
                                      ("- prune: {method: magnitude, sparsity: 0.6, targets: [\"blk.*.weight\"], ignore: [\"*norm*\"]}", "gguf, type: q8_0"),
                                      ("", "gguf, type: q4_0")].enumerated() {
            let r = try env.write("r\(i).yaml", """
                stages:
                  - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 48}
                  \(stage)
                  - evaluate: {samples: 4, seq_len: 48}
                  - export: {format: safetensors}
                  - export: {format: \(export)}
                """)
            manifest += "- {model: \(Self.llama!)/tiny/model.gguf, recipe: \(r)}\n"
        }
        let m = try env.write("batch.yaml", manifest)
        #expect(try env.squeeze(["submit", "--manifest", m, "--batch-name", "dash-batch"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "6"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "2", "--fail-times", "9", "--max-attempts", "2"]).status == 0)
        try env.drain(["--retry-base-seconds", "0.1"])
        let batch = try #require(try env.scalar("SELECT id FROM batches WHERE name = 'dash-batch'"))
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE batch_id = $1::uuid AND state = 'succeeded'", [batch]) == "3")
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'dead'") == "2")

        // A live worker on a long job, and a queued backlog at two priorities.
        let long = try env.submit(["--noop", "--sleep-ms", "120000", "--priority", "50"])
        let worker = try env.startSqueeze(["worker", "--id", "dash-worker", "--concurrency", "1"])
        defer { worker.signal(SIGKILL); _ = worker.finish() }
        #expect(try waitUntil(timeout: 30) { try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [long]) == "running" })
        #expect(try env.squeeze(["submit", "--noop", "--count", "4", "--after", "1h", "--priority", "7"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "3", "--after", "1h"]).status == 0)

        // The dashboard as a monitor login: it needs nothing but the monitoring views.
        let tag = UUID().uuidString.prefix(8).lowercased(), monitor = "sq_dash_\(tag)"
        let admin = try env.db.connect()
        _ = try admin.query("CREATE ROLE \(monitor) LOGIN IN ROLE squeeze_monitor")
        defer { _ = try? admin.query("DROP ROLE IF EXISTS \(monitor)") }
        let (dash, base) = try Self.start(env, databaseURL: RolesTests.url(env, as: monitor), ["--listen", "127.0.0.1:0"])
        defer { dash.signal(SIGTERM); _ = dash.finish() }
        try #require(!base.isEmpty, "dashboard did not start: \(dash.stderrSoFar)")

        let trap = try OffHostTrap()
        let browser = Browser(trap: trap)
        let shots = env.scratch + "/shots"
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)

        // Overview: counts by state, backlog, worker, running job, failures, batch.
        let home = try browser.dom(base + "/")
        let counts = Dictionary(uniqueKeysWithValues: try admin.query("SELECT state, jobs FROM queue_overview").map { ($0["state"]!, Int($0["jobs"]!)!) })
        for state in ["queued", "running", "succeeded", "dead"] {
            #expect(Self.int(home, "data-state=\"\(state)\">") == counts[state], "\(state): SQL \(counts[state] ?? -1)")
        }
        #expect(counts["queued"] == 7 && counts["running"] == 1 && counts["succeeded"] == 9)
        for expected in ["dash-worker", String(long.prefix(8)), "planned failure", "href=\"/batches\"", "id=\"backlog\"", "<svg", "last hour, jobs per minute"] {
            #expect(home.contains(expected), "overview lacks \(expected)")
        }
        #expect(home.contains("<td class=\"n\">7</td><td class=\"n\">4</td>"), "priority 7: 4 queued, 4 delayed")

        #expect(try browser.dom(base + "/batches").contains("href=\"/batches/\(batch)\">"), "the batch list links the batch")
        // Batch: every job, quality, the scatter with its Pareto front linking to jobs.
        let batchDOM = try browser.dom(base + "/batches/" + batch)
        #expect(Self.int(batchDOM, "data-count=\"succeeded\">") == 3)
        let jobs = try admin.query("""
            SELECT j.id::text AS id, q.perplexity_ratio FROM jobs j JOIN job_quality q ON q.job_id = j.id WHERE j.batch_id = $1::uuid
            """, [batch])
        #expect(jobs.count == 3)
        for j in jobs {
            #expect(batchDOM.contains("href=\"/jobs/\(j["id"]!)\""), "batch page lacks a link to \(j["id"]!)")
            #expect(batchDOM.contains(String(format: "%.4f", Double(j["perplexity_ratio"]!)!)), "ppl ratio of \(j["id"]!)")
        }
        #expect(batchDOM.components(separatedBy: "<circle").count - 1 == 3, "one scatter point per evaluated job")
        #expect(batchDOM.contains("class=\"pareto\"") && batchDOM.contains("id=\"pareto\""))

        // Job: artifacts with SHA-256, per-layer charts, attempts, the recipe, quality.
        let job = jobs[0]["id"]!
        let jobDOM = try browser.dom(base + "/jobs/" + job)
        for a in try admin.query("SELECT sha256, path FROM artifacts WHERE job_id = $1::uuid", [job]) {
            #expect(jobDOM.contains(a["sha256"]!), "sha256 of \(a["path"] ?? "")")
        }
        let layers = Int(try env.scalar("SELECT count(*) FROM layer_metrics WHERE job_id = $1::uuid", [job]) ?? "0") ?? 0
        #expect(layers > 0 && jobDOM.contains("(\(layers) tensors)") && jobDOM.contains("id=\"layer-charts\""))
        for expected in ["calibrate", "perplexity_ratio", "id=\"attempts\"", "succeeded", "<rect"] { #expect(jobDOM.contains(expected), "job page lacks \(expected)") }
        let deadJob = try #require(try env.scalar("SELECT id FROM jobs WHERE state = 'dead' LIMIT 1"))
        #expect(try browser.dom(base + "/jobs/" + deadJob).contains("planned failure on attempt 2"))

        // Screenshots of the three pages: real PNGs with content.
        for (name, path) in [("overview", "/"), ("batch", "/batches/" + batch), ("job", "/jobs/" + job)] {
            let png = try browser.screenshot(base + path, to: "\(shots)/\(name).png")
            #expect(png.count > 20_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(name).png is \(png.count) bytes")
        }
        // No page refers to anything off this machine, and nothing left it; the trap does see a page that does (so the check can fail).
        for dom in [home, batchDOM, jobDOM] {
            let external = dom.range(of: #"(src|href|action)\s*=\s*["']?(https?:)?//(?!127\.0\.0\.1)"#, options: .regularExpression)
            #expect(external == nil, "a page links off the machine: \(external.map { String(dom[$0]) } ?? "")")
        }
        #expect(trap.requests.isEmpty, "requests to other hosts: \(trap.requests)")
        _ = try? browser.dom("http://squeeze-offhost.example/")
        #expect(trap.requests.contains { $0.contains("squeeze-offhost.example") }, "the off-host trap saw nothing: the check above proves nothing")

        // Unknown pages and ids.
        #expect(try httpGet(base + "/jobs/" + UUID().uuidString).status == 404)
        #expect(try httpGet(base + "/nope").status == 404)

        // /metrics, parsed by prometheus_client, against SQL (after the 5 s the counters wait for late commits).
        Thread.sleep(forTimeInterval: 6)
        let parsed = try env.python("read_metrics.py", [base + "/metrics"])
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let metrics = try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any] ?? [:]
        func value(_ key: String) -> Double? { metrics[key] as? Double }
        for (state, n) in counts { #expect(value("squeeze_jobs{state=\(state)}") == Double(n), "squeeze_jobs \(state)") }
        #expect(value("squeeze_queue_backlog{priority=7}") == 4 && value("squeeze_queue_backlog{priority=0}") == 3)
        #expect(value("squeeze_workers{status=alive}") == 1)
        #expect((value("squeeze_queue_oldest_seconds{}") ?? 0) > 0)
        #expect(value("squeeze_jobs_finished_total{state=succeeded}") == 9 && value("squeeze_jobs_finished_total{state=dead}") == 2)
        #expect(metrics["#type squeeze_job_duration_seconds"] as? String == "histogram")
        #expect(value("squeeze_job_duration_seconds_count{kind=compress}") == 3)
        #expect(value("squeeze_job_duration_seconds_count{kind=noop}") == 8)
        #expect(value("squeeze_job_wait_seconds_count{}") == 11)
        let bytes = Double(try env.scalar("SELECT sum(bytes) FROM artifacts") ?? "0") ?? 0
        #expect(bytes > 0 && value("squeeze_artifact_bytes_total{}") == bytes)
        // A second scrape counts nothing twice.
        let again = try JSONSerialization.jsonObject(with: Data(try env.python("read_metrics.py", [base + "/metrics"]).stdout.utf8)) as? [String: Any] ?? [:]
        #expect(again["squeeze_job_duration_seconds_count{kind=noop}"] as? Double == 8 && again["squeeze_artifact_bytes_total{}"] as? Double == bytes)

        if let keep = ProcessInfo.processInfo.environment["SQUEEZE_DASHBOARD_SHOTS"] {
            for name in ["overview", "batch", "job"] { try? FileManager.default.copyItem(atPath: "\(shots)/\(name).png", toPath: "\(keep)/dashboard-\(name).png") }
        }
    }

    @Test(.enabled(if: ready, "needs chromium and curl (ops/test installs them)"))
    func offLoopbackEveryRequestNeedsTheToken() throws {
        let env = try SqueezeEnv.create()
        let refused = try env.squeeze(["dashboard", "--listen", "0.0.0.0:0"])
        #expect(refused.status != 0 && refused.stderr.contains("--token-file"), "\(refused.stderr)")
        let weak = try env.write("weak", "short\n")
        let w = try env.squeeze(["dashboard", "--listen", "0.0.0.0:0", "--token-file", weak])
        #expect(w.status != 0 && w.stderr.contains("16 or more characters"), "\(w.stderr)")

        let token = "tok-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let file = try env.write("token", token + "\n")
        let (dash, base) = try Self.start(env, databaseURL: env.db.url, ["--listen", "0.0.0.0:0", "--token-file", file])
        defer { dash.signal(SIGTERM); _ = dash.finish() }
        try #require(!base.isEmpty, "dashboard did not start: \(dash.stderrSoFar)")
        let url = base.replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
        for path in ["/", "/metrics", "/batches", "/jobs/" + UUID().uuidString] {
            #expect(try httpGet(url + path).status == 401, "\(path) served without the token")
            #expect(try httpGet(url + path, headers: ["Authorization: Bearer wrong-token-xxxxxxxx"]).status == 401)
        }
        #expect(try httpGet(url + "/", headers: ["Authorization: Bearer \(token)"]).status == 200)
        #expect(try httpGet(url + "/metrics", headers: ["Authorization: Bearer \(token)"]).body.contains("squeeze_jobs{"))
        // ?token= once: a redirect that sets the cookie, which then opens every page.
        let first = try httpGet(url + "/batches?token=\(token)")
        #expect(first.status == 303 && first.headers["location"] == "/batches" && first.headers["set-cookie"]?.contains("HttpOnly") == true)
        #expect(try httpGet(url + "/", headers: ["Cookie: squeeze_token=\(token)"]).status == 200)
        #expect(try httpGet(url + "/?token=wrong").status == 401)
        // The redirect goes to a local path only, and the cookie is Secure behind a TLS proxy.
        for evil in ["//evil.example/x", "/\\evil.example/x", "///evil.example/x"] {
            let r = try httpGet(url + evil + "?token=\(token)")
            #expect(r.status == 303 && r.headers["location"] == "/evil.example/x", "\(evil): \(r.headers)")
            #expect(r.headers["set-cookie"]?.contains("Secure") == false)
        }
        let proxied = try httpGet(url + "/batches?token=\(token)", headers: ["X-Forwarded-Proto: https"])
        #expect(proxied.headers["set-cookie"]?.hasSuffix("; Secure") == true, "\(proxied.headers)")
        // In the browser: refused without it, the page with it.
        let browser = Browser(trap: try OffHostTrap())
        #expect(!(try browser.dom(url + "/")).contains("Jobs by state"))
        #expect(try browser.dom(url + "/?token=\(token)").contains("Jobs by state"))
    }

    /// 10,000 jobs in one batch: every page stays under 200 KB (pagination, a sampled scatter).
    @Test(.enabled(if: ready, "needs curl (ops/test installs it)"))
    func pagesStaySmallWithTenThousandJobs() throws {
        let env = try SqueezeEnv.create()
        #expect(try env.squeeze(["migrate"]).status == 0)
        let db = try env.db.connect()
        let batch = try db.query("INSERT INTO batches (name, job_count) VALUES ('big', 10000) RETURNING id::text AS id")[0]["id"]!
        _ = try db.query("""
            INSERT INTO jobs (kind, recipe, input_path, batch_id, state, attempt, error, error_code, started_at, finished_at, created_at)
            SELECT 'noop', '{"noop": {}}'::jsonb, '/models/m' || g, $1::uuid,
                   (ARRAY['succeeded','failed','queued','dead'])[1 + g % 4], 1,
                   CASE WHEN g % 4 IN (1, 3) THEN repeat('a long error message ', 10) END,
                   CASE WHEN g % 4 IN (1, 3) THEN 'internal' END,
                   now() - interval '1 minute', CASE WHEN g % 4 <> 2 THEN now() - (g || ' seconds')::interval END, now() - interval '2 minutes'
            FROM generate_series(1, 10000) g
            """, [batch])
        let (dash, base) = try Self.start(env, databaseURL: env.db.url, ["--listen", "127.0.0.1:0"])
        defer { dash.signal(SIGTERM); _ = dash.finish() }
        try #require(!base.isEmpty, "dashboard did not start: \(dash.stderrSoFar)")
        for path in ["/", "/batches", "/batches/" + batch, "/batches/" + batch + "?page=49", "/metrics"] {
            let r = try httpGet(base + path)
            #expect(r.status == 200 && r.body.utf8.count < 200_000, "\(path): status \(r.status), \(r.body.utf8.count) bytes")
        }
        let last = try httpGet(base + "/batches/" + batch + "?page=49").body
        #expect(last.contains("page 50") && !last.contains("next →"), "the 50th page of 200 is the last")
    }

    /// A view whose column the page reads was renamed (an out-of-step migration): the page answers
    /// 500 naming the column, instead of rendering blanks, and the other pages still work.
    @Test(.enabled(if: ready, "needs curl (ops/test installs it)"))
    func aRenamedViewColumnIsAnErrorNotABlankCell() throws {
        let env = try SqueezeEnv.create()
        #expect(try env.squeeze(["submit", "--noop", "--count", "1"]).status == 0)
        let db = try env.db.connect()
        let job = try #require(try db.query("SELECT id::text AS id FROM jobs")[0]["id"])
        _ = try db.query("ALTER VIEW job_summary RENAME COLUMN artifact_bytes TO bytes_published")
        let (dash, base) = try Self.start(env, databaseURL: env.db.url, ["--listen", "127.0.0.1:0"])
        defer { dash.signal(SIGTERM); _ = dash.finish() }
        try #require(!base.isEmpty, "dashboard did not start: \(dash.stderrSoFar)")
        let r = try httpGet(base + "/jobs/" + job)
        #expect(r.status == 500 && r.body.contains("artifact_bytes"), "status \(r.status): \(r.body)")
        #expect(try httpGet(base + "/").status == 200)
    }

    /// `squeeze worker --metrics-listen`: its own metrics (swift-metrics through swift-prometheus),
    /// parsed by prometheus_client, agree with what the worker did according to SQL.
    @Test(.enabled(if: ready, "needs SQUEEZE_LLAMA_DIR"))
    func workerServesItsOwnMetrics() throws {
        let env = try SqueezeEnv.create()
        let pydoc = TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt"
        let r = try env.write("r.yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 48}
              - prune: {method: wanda, sparsity: 0.5, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
            """)
        let job = try env.submit(["--model", Self.llama! + "/tiny/model.gguf", "--recipe", r])
        #expect(try env.squeeze(["submit", "--noop", "--count", "3"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--fail-times", "1", "--max-attempts", "2"]).status == 0)
        let worker = try env.startSqueeze(["worker", "--metrics-listen", "127.0.0.1:0", "--retry-base-seconds", "0.1"])
        defer { worker.signal(SIGKILL); _ = worker.finish() }
        var url = ""
        #expect(waitUntil(timeout: 20) {
            if let m = worker.stderrSoFar.range(of: #"http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression) { url = String(worker.stderrSoFar[m]) }
            return !url.isEmpty
        }, "no metrics URL in: \(worker.stderrSoFar)")
        #expect(try waitUntil(timeout: 120) { try env.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "5" })
        let parsed = try env.python("read_metrics.py", [url])
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any] ?? [:]
        func value(_ key: String) -> Double? { m[key] as? Double }
        let units = Double(try env.scalar("SELECT count(*) FROM layer_metrics WHERE job_id = $1::uuid", [job]) ?? "0") ?? 0
        #expect(units > 0 && value("squeeze_worker_units_done_total{}") == units, "units: SQL \(units)")
        #expect(value("squeeze_worker_claims_total{}") == 6, "5 jobs, one of them twice")
        #expect(value("squeeze_worker_claim_latency_seconds_count{}") ?? 0 >= 6)
        #expect(value("squeeze_worker_jobs_finished_total{outcome=succeeded}") == 5 && value("squeeze_worker_jobs_finished_total{outcome=retry}") == 1)
        #expect(value("squeeze_worker_jobs_running{}") == 0 && value("squeeze_worker_lease_renew_failures_total{}") == 0)
        #expect((value("squeeze_worker_rss_bytes{}") ?? 0) > 10_000_000)
    }
}
