import Foundation
import Testing
import TestSupport

/// GGUF exports checked by gguf-py: its reader loads the file and its own numpy quantizers
/// produce the same bytes from the same F32 values.
@Suite struct GGUFReferenceTests {
    func runAndCheck(_ env: SqueezeEnv, model: String, type: String, threads: Int = 2, source: String? = nil) throws -> String {
        let recipe = try env.write("gguf-\(type).yaml", "stages:\n  - export: {format: gguf, type: \(type)}\n")
        let out = env.scratch + "/out-\(type)-\(threads)-\(UUID().uuidString.prefix(6))"
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out, "--threads", String(threads)])
        #expect(r.status == 0, "\(r.stderr)")
        let file = out + "/model-\(type).gguf"
        let c = try env.python("check_gguf.py", [source ?? model, file, "--type", type])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
        return file
    }

    @Test(arguments: ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1"])
    func fixtureAndAdversarialBlocksMatchGGUFPy(type: String) throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        _ = try runAndCheck(env, model: model, type: type)
        let adv = env.scratch + "/adversarial.safetensors"
        #expect(try env.python("make_adversarial.py", [adv]).status == 0)
        let a = try runAndCheck(env, model: adv, type: type, threads: 1)
        let b = try runAndCheck(env, model: adv, type: type, threads: 2)
        #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b))
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"] != nil), arguments: ["q8_0", "q4_0", "q4_1", "q5_0"])
    func realMiniLMMatchesGGUFPy(type: String) throws {
        let env = try SqueezeEnv.create()
        let dir = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]!
        _ = try runAndCheck(env, model: dir, type: type, source: dir + "/model.safetensors")
    }

    @Test func prunedThenQuantizedMatchesGGUFPyOnThePrunedValues() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("both.yaml", pruneDenseGGUFRecipe)
        let out = env.scratch + "/both"
        #expect(try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out]).status == 0)
        let c = try env.python("check_gguf.py", [out + "/model.safetensors", out + "/model-q8_0.gguf", "--type", "q8_0"])
        #expect(c.status == 0, "\(c.stdout)")
        let insp = try env.squeeze(["inspect", out + "/model-q8_0.gguf"])
        #expect(insp.status == 0, "\(insp.stderr)")
        #expect(insp.stdout.contains("Q8_0") && insp.stdout.contains("general.file_type"))
    }
}

/// A sharded input keeps its shard layout; the rewritten index's total_size is the dense shards' data size.
@Suite struct ShardedModelTests {
    @Test func shardsAndIndexWithAGGUFExportBeside() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let dir = env.scratch + "/sharded"
        let s = try env.python("make_sharded.py", [model, dir])
        #expect(s.status == 0, "\(s.stderr)")
        let recipe = try env.write("both.yaml", pruneDenseGGUFRecipe)
        let out = env.scratch + "/out"
        let r = try env.squeeze(["run", "--model", dir, "--recipe", recipe, "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors.index.json"))) as! [String: Any]
        let inIndex = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))) as! [String: Any]
        #expect(index["weight_map"] as! [String: String] == inIndex["weight_map"] as! [String: String])
        let total = (index["metadata"] as! [String: Any])["total_size"] as! Int
        #expect(total == (inIndex["metadata"] as! [String: Any])["total_size"] as! Int)
        for shard in Set((index["weight_map"] as! [String: String]).values) {
            #expect(FileManager.default.fileExists(atPath: out + "/" + shard))
        }
        let c = try env.python("check_prune.py", [out + "/model-00001-of-00002.safetensors", out + "/model-00001-of-00002.safetensors",
                                                  "--sparsity", "0", "--targets", "nothing"])
        #expect(c.status == 0, "\(c.stdout)")
        #expect(FileManager.default.fileExists(atPath: out + "/model-q8_0.gguf"))
    }
}
