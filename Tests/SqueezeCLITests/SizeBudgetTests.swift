import Foundation
import Testing
import TestSupport

/// GGUF exports to a size budget (`budget:` / `bpw:`) through the CLI, on the hidden-256 Llama (its
/// rows take every type, k-quants included) with an importance matrix from a calibrate run: each file
/// fits its budget, larger budgets buy more bytes and other types, the same bytes for any thread
/// count, budgets out of reach are refused at submit naming the reachable range; and llama.cpp runs
/// budgeted files of the small Llama.
@Suite struct SizeBudgetTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    /// Runs a budgeted export of `model` into `out`; returns the file's path and gguf-py's reading of it.
    func export(_ env: SqueezeEnv, _ model: String, _ budget: String, imatrix: String, out: String, threads: Int = 2)
        throws -> (path: String, types: [String: String], fileType: Int, bytes: Int)
    {
        let r = try env.write(
            "b-\(UUID().uuidString.prefix(6)).yaml",
            "stages:\n  - export: {format: gguf, \(budget), imatrix: \(imatrix)}\n")
        let run = try env.squeeze(["run", "--model", model, "--recipe", r, "--out", out, "--threads", "\(threads)"])
        #expect(run.status == 0, "\(run.stderr)")
        let file = try #require(
            try FileManager.default.contentsOfDirectory(atPath: out).first {
                $0.hasSuffix(".gguf") && $0 != "imatrix.gguf"
            })
        let read = try env.python("gguf_types.py", [out + "/" + file])
        try #require(read.status == 0, "\(read.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any])
        return (
            out + "/" + file, json["types"] as? [String: String] ?? [:], json["file_type"] as? Int ?? -1,
            json["bytes"] as? Int ?? -1
        )
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func budgetedFilesFitAndLlamaCppRunsThem() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny-256/hf"
        let cal = try env.write(
            "cal.yaml",
            """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
              - export: {format: gguf, type: q8_0, imatrix: true}
            """)
        let c = try env.squeeze(["run", "--model", model, "--recipe", cal, "--out", env.scratch + "/cal"])
        try #require(c.status == 0, "\(c.stderr)")
        let imatrix = env.scratch + "/cal/imatrix.gguf"

        // Out of reach: one line naming the range, from `run` and from `submit`.
        let low = try env.write("low.yaml", "stages:\n  - export: {format: gguf, budget: 1M, imatrix: \(imatrix)}\n")
        let refused = try env.squeeze(["run", "--model", model, "--recipe", low, "--out", env.scratch + "/low"])
        #expect(refused.status != 0 && refused.stderr.contains("stages[0].export.budget: 1048576 bytes is below"))
        let line = refused.stderr.split(separator: "\n").first { $0.contains("reachable:") } ?? ""
        let numbers =
            line.split(separator: "reachable: ").last?.split(separator: " ").first?.split(separator: "–")
            .compactMap { Int($0) } ?? []
        try #require(numbers.count == 2, "\(refused.stderr)")
        let (lowest, highest) = (numbers[0], numbers[1])
        let submitted = try env.squeeze(["submit", "--model", model, "--recipe", low])
        #expect(submitted.status != 0 && submitted.stderr.contains("reachable: \(lowest)–\(highest) bytes"))
        let high = try env.write("high.yaml", "stages:\n  - export: {format: gguf, bpw: 32.5}\n")
        #expect(try env.squeeze(["submit", "--model", model, "--recipe", high]).status != 0)

        var files = [(path: String, types: [String: String], fileType: Int, bytes: Int)]()
        let budgets = [lowest, lowest + (highest - lowest) / 6, lowest + (highest - lowest) / 2]
        for (i, b) in budgets.enumerated() {
            let f = try export(env, model, "budget: \(b)", imatrix: imatrix, out: env.scratch + "/b\(i)")
            #expect(f.bytes <= b && f.bytes > 0, "budget \(b): \(f.bytes) bytes")
            files.append(f)
        }
        #expect(files.map(\.bytes) == files.map(\.bytes).sorted(), "\(files.map(\.bytes))")
        // The manifest records the limit, the predicted loss (falling as the budget grows) and the types chosen.
        let recorded = try (0..<budgets.count).map { i -> [String: Any] in
            let data = try Data(contentsOf: URL(fileURLWithPath: env.scratch + "/b\(i)/manifest.json"))
            let m = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return try #require((m["gguf_budgets"] as? [[String: Any]])?.first)
        }
        #expect(recorded.map { $0["limit_bytes"] as? Int } == budgets.map { Optional($0) })
        let predicted = recorded.compactMap { $0["predicted_error"] as? Double }
        #expect(predicted.count == 3 && zip(predicted, predicted.dropFirst()).allSatisfy { $0 >= $1 }, "\(predicted)")
        #expect(recorded.allSatisfy { (($0["types"] as? [String: Int]) ?? [:]).values.reduce(0, +) == 8 * 7 + 2 })
        #expect(Set(files.map { $0.types["blk.3.ffn_down.weight"] ?? "" }).count == 3, "\(files.map(\.types))")
        #expect(files.last?.types.values.contains("F16") == true, "half the range buys some F16: \(files.last?.types ?? [:])")
        #expect(
            files[0].types.values.allSatisfy {
                ["Q2_K", "IQ4_NL", "Q4_0", "IQ4_XS", "F32"].contains($0) || $0.hasPrefix("Q3")
            })

        // The same bytes for one thread as for two; bpw counts every value of the file.
        let one = try export(
            env, model, "budget: \(budgets[2])", imatrix: imatrix, out: env.scratch + "/t1", threads: 1)
        let same = try env.python("gguf_tensor_bytes.py", [files[2].path, one.path, "--all"])
        #expect(same.status == 0, "\(same.stdout) \(same.stderr)")
        let bpw = try export(env, model, "bpw: 5.5", imatrix: imatrix, out: env.scratch + "/bpw")
        let values = 16_146_944
        #expect(bpw.bytes <= Int(5.5 * Double(values) / 8) && bpw.path.hasSuffix("model-bpw-5.5.gguf"), "\(bpw.bytes)")

        // llama.cpp runs budgeted files and gives about Squeeze's logits for them (on the small Llama:
        // the hidden-256 one's random activations overflow llama.cpp's F16 and 8-bit activation paths).
        // The smallest file is 4.5 bits everywhere, where llama.cpp's 8-bit rounding of activations moves
        // this random model's small logits by up to 0.29 of their largest: 0.35, with 85% of the argmaxes.
        let tiny = Self.llama! + "/tiny/hf"
        let probe = try env.write("probe.yaml", "stages:\n  - export: {format: gguf, budget: 1}\n")
        let range = try env.squeeze(["run", "--model", tiny, "--recipe", probe, "--out", env.scratch + "/probe"]).stderr
        let ends =
            range.split(separator: "reachable: ").last?.split(separator: " ").first?.split(separator: "–")
            .compactMap { Int($0) } ?? []
        try #require(ends.count == 2, "\(range)")
        for (i, b) in [ends[0], (ends[0] + ends[1]) / 2].enumerated() {
            let r = try env.write("tiny\(i).yaml", "stages:\n  - export: {format: gguf, budget: \(b)}\n")
            let out = env.scratch + "/tiny\(i)"
            let run = try env.squeeze(["run", "--model", tiny, "--recipe", r, "--out", out])
            #expect(run.status == 0, "\(run.stderr)")
            let check = try env.llamaCppAgrees(
                out + "/model-budget-\(b).gguf", dataset: pydoc, bound: "0.35", top1: "0.85", tag: "\(i)")
            #expect(check.ok, "budget \(b): \(check.text)")
        }
    }

    /// `squeeze sweep --budgets`: one budgeted export per size beside the types, each reading the first job's
    /// importance matrix and reference; every file fits its budget, and the dashboard's batch page plots size
    /// against quality with one point per evaluated export.
    @Test(.enabled(if: llama != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"),
                   "needs SQUEEZE_LLAMA_DIR and curl (set up by ops/test)"))
    func aSweepOverBudgetsChartsSizeAgainstQuality() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny-256/hf"
        func sweep(_ budgets: String) -> [String] {
            ["sweep", "--model", model, "--dataset", pydoc, "--types", "q8_0", "--budgets", budgets, "--samples", "8",
             "--seq-len", "64", "--eval-samples", "2", "--name", "budgets", "--json",
             "--input-root", TestConfiguration.repoRoot + "/.run"]
        }
        // Out of reach: refused at submit with the reachable range, nothing queued.
        let low = try env.squeeze(sweep("1M"))
        #expect(low.status != 0 && low.stderr.contains("is below the smallest GGUF"), "\(low.stderr)")
        let bad = try env.squeeze(sweep("90XB"))
        #expect(bad.status != 0 && bad.stderr.contains("90XB is not a size"), "\(bad.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
        let range = low.stderr.split(separator: "reachable: ").last?.split(separator: " ").first?
            .split(separator: "–").compactMap { Int($0) } ?? []
        try #require(range.count == 2, "\(low.stderr)")
        let sizes = [range[0] + (range[1] - range[0]) / 6, range[0] + (range[1] - range[0]) / 2]

        let run = try env.startSqueeze(sweep(sizes.map(String.init).joined(separator: ",") + ",5bpw") + ["--wait"])
        #expect(try waitUntil(timeout: 60) { try env.scalar("SELECT count(*) FROM jobs") == "4" })
        #expect(try env.scalar("SELECT count(*) FROM jobs WHERE state = 'waiting'") == "3")
        try env.drain()
        #expect(run.wait(timeout: 120))
        let out = run.finish()
        try #require(out.status == 0, "\(out.stderr) \(out.stdout)")
        let table = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        let rows = table["rows"] as? [[String: Any]] ?? []
        let bytes = Dictionary(uniqueKeysWithValues: rows.map { ($0["type"] as? String ?? "?", $0["model_bytes"] as? Int ?? -1) })
        #expect(Set(bytes.keys) == Set(["q8_0", "budget-5bpw"] + sizes.map { "budget-\($0)" }), "\(rows)")
        for s in sizes { #expect((1...s).contains(bytes["budget-\(s)"] ?? -1), "budget \(s): \(bytes)") }
        #expect(bytes["budget-\(sizes[0])"]! <= bytes["budget-\(sizes[1])"]!, "\(bytes)")
        #expect(rows.allSatisfy { ($0["perplexity"] as? Double)?.isFinite == true }, "\(rows)")

        // The batch page: one scatter point per evaluated export, each linking to its job.
        let batch = try #require(table["batch_id"] as? String)
        let (dash, base) = try DashboardPageTests.start(env, databaseURL: env.db.url, ["--listen", "127.0.0.1:0"])
        defer { dash.signal(SIGTERM); _ = dash.finish() }
        try #require(!base.isEmpty, "dashboard did not start: \(dash.stderrSoFar)")
        let page = try httpGet(base + "/batches/" + batch)
        #expect(page.status == 200 && page.body.contains("Size against quality"))
        #expect(page.body.components(separatedBy: "<circle").count - 1 == 4, "one point per evaluated export")
        for r in try env.query("SELECT id::text AS id FROM jobs WHERE idempotency_key LIKE 'budgets:budget-%'") {
            #expect(page.body.contains("href=\"/jobs/\(r["id"] ?? "?")\""), "the chart links job \(r["id"] ?? "?")")
        }
    }
}
