import Foundation
import Testing
import TestSupport

/// The whole path: CLI → PostgreSQL + Redis → worker → Compute → artifact root → metrics.
@Suite struct EndToEndTests {
    @Test func pruneJobProducesACheckedArtifact() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let sub = try env.squeeze(["submit", "--model", model, "--recipe", recipe, "--json"])
        #expect(sub.status == 0, "\(sub.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(sub.stdout.utf8)) as! [String: Any]
        let id = obj["id"] as! String
        try env.drain()

        let show = try env.squeeze(["show", id, "--json"])
        #expect(show.status == 0)
        let job = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as! [String: Any]
        #expect(job["state"] as? String == "succeeded")
        let out = env.artifactRoot + "/artifacts/\(id)/attempt-1/model.safetensors"
        #expect(FileManager.default.fileExists(atPath: out))
        #expect(FileManager.default.fileExists(atPath: env.artifactRoot + "/artifacts/\(id)/attempt-1/manifest.json"))

        // Independent check in Python: loads with safetensors, exact sparsity, untargeted byte-identical.
        let check = try env.python("check_prune.py", [model, out, "--sparsity", "0.5", "--targets", "*.weight",
                                                      "--ignore", "*embeddings*", "*LayerNorm*"])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        let checked = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as! [String: Any]
        let targeted = checked["targeted"] as! [String]
        #expect(targeted.count == 6)

        // A layer_metrics row for every targeted tensor, with the sparsity achieved.
        let db = try env.db.connect()
        let rows = try db.query("SELECT tensor, sparsity FROM layer_metrics WHERE job_id = $1::uuid AND sparsity > 0", [id])
        #expect(Set(rows.compactMap { $0["tensor"] }) == Set(targeted))
        for r in rows { #expect(abs(try r.decode("sparsity", as: Double.self) - 0.5) < 1e-9) }
        // Artifacts recorded with checksums that match the files.
        let arts = try db.query("SELECT path, sha256, bytes FROM artifacts WHERE job_id = $1::uuid ORDER BY path", [id])
        #expect(arts.map { $0["path"]! } == ["artifacts/\(id)/attempt-1/manifest.json", "artifacts/\(id)/attempt-1/model.safetensors"])
        for a in arts {
            let sum = try ProcessRunner.run("/usr/bin/sha256sum", [env.artifactRoot + "/" + a["path"]!])
            #expect(sum.stdout.hasPrefix(a["sha256"]!))
        }
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [id]) == "1")
        #expect(try env.scalar("SELECT tensors FROM compression_summary WHERE job_id = $1::uuid", [id]) == "13")

        let status = try env.squeeze(["status", "--json"])
        let st = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as! [String: Any]
        #expect((st["jobs"] as! [String: Int])["succeeded"] == 1)
    }

    @Test func localRunMatchesTheWorkerByteForByte() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe])
        try env.drain(["--threads", "1"])
        let local = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", env.scratch + "/local", "--threads", "2"])
        #expect(local.status == 0, "\(local.stderr)")
        let a = FileManager.default.contents(atPath: env.artifactRoot + "/artifacts/\(id)/attempt-1/model.safetensors")
        let b = FileManager.default.contents(atPath: env.scratch + "/local/model.safetensors")
        #expect(a != nil && a == b)
    }
}

/// Every recipe shipped in recipes/ parses, fits the fixture model, and runs.
@Suite struct ShippedRecipeTests {
    @Test func everyShippedRecipeRuns() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let dir = TestConfiguration.repoRoot + "/recipes"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 9)
        for f in files {
            let r = try env.squeeze(["run", "--model", model, "--recipe", dir + "/" + f, "--out", env.scratch + "/" + f])
            // Calibrated recipes need a BERT model directory: the fixture is refused up front (they run
            // on MiniLM in MiniLMBatchTests).
            let text = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            if text.contains("- calibrate:") || text.contains("- evaluate:") {
                #expect(r.status != 0 && r.stderr.contains("needs a BERT model directory"), "\(f): \(r.stderr)")
            } else {
                #expect(r.status == 0, "\(f): \(r.stderr)")
            }
        }
    }
}
