import Foundation
import Testing
import TestSupport

/// The `awq` stage through the CLI: its choices match a numpy AWQ, a scaled-then-quantized decoder is
/// written byte-identically for any thread count, its searches are recorded, its staging is removed,
/// llama.cpp runs the GGUF, and impossible recipes are refused at submit with one line.
@Suite struct AWQTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    func recipe(_ env: SqueezeEnv, _ stages: String) throws -> String {
        try env.write("r-\(UUID().uuidString.prefix(6)).yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
            \(stages)
            """)
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func awqWritesTheSameFilesForAnyThreadCountAndRecordsItsSearches() throws {
        let env = try SqueezeEnv.create()
        let hf = Self.llama! + "/tiny/hf"
        let r = try recipe(env, """
              - awq: {grid: 10}
              - evaluate: {samples: 2, seq_len: 64}
              - export: {format: gguf, type: q4_k_m, imatrix: true}
            """)
        for t in ["1", "2"] {
            let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", env.scratch + "/t\(t)", "--threads", t])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: env.scratch + "/t\(t)/.staged-input"))
        }
        let same = try env.python("gguf_tensor_bytes.py", [
            env.scratch + "/t1/model-q4_k_m.gguf", env.scratch + "/t2/model-q4_k_m.gguf", "--all"
        ])
        #expect(same.status == 0, "\(same.stdout) \(same.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: env.scratch + "/t1/manifest.json")))
            as? [String: Any]
        let groups = (m?["awq"] as? [String: Any])?["groups"] as? [[String: Any]] ?? []
        // Two blocks of grouped-query attention: three scale searches (no v → o) and five clipping searches each.
        #expect(groups.count == 2 * 8, "\(groups)")
        for g in groups {
            let e = g["error"] as? Double ?? .nan, b = g["baseline"] as? Double ?? .nan
            #expect(e <= b, "\(g)")
        }
        #expect(m?["evaluation"] != nil)
        // llama.cpp runs the file and gives about Squeeze's logits for it (it rounds activations to
        // 8 bits for quantized products, hence the bounds DecoderRecipeTests uses for quantized files).
        let c = try env.llamaCppAgrees(env.scratch + "/t1/model-q4_k_m.gguf", dataset: pydoc, bound: "0.25", top1: "0.85")
        #expect(c.ok, "\(c.text)")
    }

    /// The scales, norms and clipping against check_awq.py, a float64 numpy AWQ that scores each
    /// candidate on the calibration tokens' outputs themselves (Squeeze scores through the Gram): the
    /// grouped-query fixtures, and one whose heads each have their own v (v → o scaling, with
    /// Qwen2's v bias).
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: ["tiny", "tiny-qwen2", "mha"])
    func awqChoosesTheScalesAndClippingOfTheNumpyReference(_ model: String) throws {
        let env = try SqueezeEnv.create()
        var hf = Self.llama! + "/\(model)/hf"
        if model == "mha" {
            let made = try env.madeLlama(env.scratch + "/mha", ["--shapes", "128:4:4,128:4:4", "--bias", "--seed", "5"])
            #expect(made.status == 0, "\(made.stderr)")
            hf = env.scratch + "/mha/hf"
        }
        let r = try recipe(env, """
              - awq: {grid: 10}
              - quantize: {bits: 4, group_size: 32, targets: ["model.layers.*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
            """)
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let m = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
        #expect(m.contains("\"output\"") == (model == "mha"), "v → o is searched exactly where heads have their own v")
        let c = try env.python("check_awq.py", [hf, pydoc, "8", "64", "4", "32", "10", out])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(500))")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("  - awq: {}\n  - export: {format: safetensors}", "awq alone changes nothing"),
        ("  - quantize: {bits: 4, group_size: 32}\n  - awq: {}\n  - export: {format: safetensors}", "awq must come before stages[1]"),
        ("  - awq: {}\n  - awq: {}\n  - export: {format: gguf, type: q4_0}", "a recipe has one awq stage"),
        ("  - awq: {}\n  - prune: {method: flap, ratio: 0.2}\n  - export: {format: gguf, type: q4_0}", "does not combine with flap"),
        ("  - awq: {}\n  - export: {format: gguf, type: q4_0, imatrix: {job: other}}", "use imatrix: true"),
        ("  - awq: {grid: 0}\n  - export: {format: gguf, type: q4_0}", "grid"),
        ("  - awq: {alpha: 0.5}\n  - export: {format: gguf, type: q4_0}", "unknown key (allowed: clip, duo_scaling, grid)"),
        ("  - awq: {}\n  - evaluate: {save_reference: true}\n  - export: {format: gguf, type: q4_0}", "do not combine with awq"),
    ])
    func impossibleAWQRecipesAreRefusedAtSubmit(_ stages: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let r = try env.squeeze(["submit", "--model", Self.llama! + "/tiny/hf", "--recipe", try recipe(env, stages)])
        #expect(r.status != 0)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func awqWithoutCalibrateIsRefusedNamingTheStage() throws {
        let env = try SqueezeEnv.create()
        let r = try env.write("nocal.yaml", """
            stages:
              - awq: {}
              - export: {format: gguf, type: q4_0}
            """)
        let s = try env.squeeze(["submit", "--model", Self.llama! + "/tiny/hf", "--recipe", r])
        #expect(s.status != 0)
        #expect(s.stderr.contains("stages[0].awq: needs an earlier calibrate stage"), "\(s.stderr)")
    }

    /// tiny-256's blk.1.ffn_up holds 600,000s, beyond Q4_0's fp16 scale: the search fails the run with
    /// one line naming the block instead of writing NaN into the manifest.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aWeightBeyondItsTypeFailsTheSearchWithOneLine() throws {
        let env = try SqueezeEnv.create()
        let r = try recipe(env, """
              - awq: {grid: 2, clip: false}
              - export: {format: gguf, type: q4_0}
            """)
        let run = try env.squeeze(["run", "--model", Self.llama! + "/tiny-256/hf", "--recipe", r, "--out", env.scratch + "/o"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("awq: block 1's mlp output error is not finite"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: env.scratch + "/o"))
    }
}
