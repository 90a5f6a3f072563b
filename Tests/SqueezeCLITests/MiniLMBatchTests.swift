import Foundation
import Queue
import Testing
import TestSupport

/// Every shipped recipe on the real MiniLM model, as one batch through two workers.
@Suite struct MiniLMBatchTests {
    static let minilm = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]

    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"))
    func everyRecipeOnMiniLMThroughTwoWorkers() throws {
        let env = try SqueezeEnv.create()
        let recipes = try FileManager.default.contentsOfDirectory(atPath: TestConfiguration.repoRoot + "/recipes")
            .filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(recipes.count >= 6)
        let manifest = try env.write("batch.yaml", recipes.enumerated().map { i, r in
            "- {model: \(Self.minilm!), recipe: \(TestConfiguration.repoRoot)/recipes/\(r), key: minilm-\(i)}"
        }.joined(separator: "\n") + "\n")
        let sub = try env.squeeze(["submit", "--manifest", manifest, "--json"])
        #expect(sub.status == 0, "\(sub.stderr)")
        let batch = (try JSONSerialization.jsonObject(with: Data(sub.stdout.utf8)) as! [String: Any])["batch_id"] as! String
        let workers = try (0..<2).map { _ in try env.startSqueeze(["worker", "--exit-when-idle", "--threads", "1"]) }
        let wait = try env.squeeze(["wait", "--batch", batch], timeout: 600)
        for w in workers { #expect(w.wait(timeout: 120)); #expect(w.finish().status == 0) }
        #expect(wait.status == 0, "\(wait.stdout.suffix(400))")
        let db = try env.db.connect()
        let jobs = try db.query("SELECT id::text AS id, output_path, units_total, units_done, (SELECT count(DISTINCT worker_id) FROM job_attempts) AS workers FROM jobs WHERE batch_id = $1::uuid", [batch])
        #expect(jobs.count == recipes.count)
        #expect(jobs.first?["workers"] == "2", "both workers took jobs")
        var dirs = [String]()
        var recorded = [[String: String]]()
        for j in jobs {
            let id = j["id"]!
            #expect(j["units_total"] == "104" && j["units_done"] == "104")
            #expect(try db.query("SELECT count(*) AS n FROM layer_metrics WHERE job_id = $1::uuid", [id])[0]["n"] == "104")
            for a in try db.query("SELECT path, sha256, bytes FROM artifacts WHERE job_id = $1::uuid", [id]) {
                recorded.append(["path": env.artifactRoot + "/" + a["path"]!, "sha256": a["sha256"]!, "bytes": a["bytes"]!])
            }
            dirs.append(env.artifactRoot + "/" + j["output_path"]!)
        }
        #expect(recorded.count >= 2 * jobs.count)
        // Checksums and sizes recorded in SQL match the files on disk (hashlib, with the manifests' checks).
        let table = env.scratch + "/recorded.json"
        try JSONSerialization.data(withJSONObject: recorded).write(to: URL(fileURLWithPath: table))
        let check = try env.python("check_artifacts.py", ["--recorded", table] + dirs)
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        #expect(check.stdout.contains("\"recorded\": \(recorded.count)"), "\(check.stdout)")
        let ggufRecipes = try recipes.filter { try String(contentsOfFile: TestConfiguration.repoRoot + "/recipes/" + $0, encoding: .utf8).contains("format: gguf") }
        #expect(ggufRecipes.count >= 2)
        #expect(check.stdout.contains("\"gguf\": \(ggufRecipes.count)"), "\(check.stdout)")
    }
}
