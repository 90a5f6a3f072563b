import Foundation
import Testing
import TestSupport

/// `learned_rounding` through the CLI on the small random Llama: a calibrated GGUF export keeps the
/// plain export's types and every block's scale (read by gguf-py), only codes move, manifest.json
/// records a lower output error, the bytes are the same for any thread count and llama.cpp runs the
/// file; on a `quantize` stage it lowers the recorded error of GPTQ's codes; without `calibrate` it is
/// refused at submit naming the stage.
@Suite struct LearnedRoundingTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    func run(_ env: SqueezeEnv, _ stages: String, out: String, threads: String = "2") throws -> [String: Any] {
        let r = try env.write("r-\(UUID().uuidString.prefix(6)).yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
            \(stages)
            """)
        let run = try env.squeeze([
            "run", "--model", Self.llama! + "/tiny/hf", "--recipe", r, "--out", out, "--threads", threads
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aGGUFExportKeepsItsScalesAndLowersTheOutputError() throws {
        let env = try SqueezeEnv.create()
        let plain = "  - export: {format: gguf, type: q4_0, imatrix: true, gptq: true}"
        let learned = "  - export: {format: gguf, type: q4_0, imatrix: true, gptq: true, learned_rounding: {steps: 40}}"
        let p = try run(env, plain, out: env.scratch + "/plain")
        #expect(p["learned_rounding"] == nil)
        for t in ["1", "2"] {
            let m = try run(env, learned, out: env.scratch + "/t\(t)", threads: t)
            let lr = try #require(m["learned_rounding"] as? [String: Any], "\(m.keys)")
            let before = lr["start_error"] as? Double ?? .nan, after = lr["error"] as? Double ?? .nan
            #expect(after < before, "\(lr)")
            // Two blocks of seven linear layers.
            #expect(lr["matrices"] as? Int == 14 && (lr["changed_codes"] as? Int ?? 0) > 0, "\(lr)")
        }
        let same = try env.python("gguf_tensor_bytes.py", [
            env.scratch + "/t1/model-q4_0.gguf", env.scratch + "/t2/model-q4_0.gguf", "--all"
        ])
        #expect(same.status == 0, "\(same.stdout) \(same.stderr)")
        let blocks = try env.python("gguf_block_scales.py", [
            env.scratch + "/plain/model-q4_0.gguf", env.scratch + "/t1/model-q4_0.gguf"
        ])
        #expect(blocks.status == 0 && blocks.stdout.contains("Q4_0: codes differ"), "\(blocks.stdout) \(blocks.stderr)")
        let c = try env.llamaCppAgrees(env.scratch + "/t1/model-q4_0.gguf", dataset: pydoc, bound: "0.35", top1: "0.85")
        #expect(c.ok, "\(c.text)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aQuantizeStageRefinesGPTQsCodes() throws {
        let env = try SqueezeEnv.create()
        let stage = """
              - quantize: {method: gptq, bits: 3, scheme: asymmetric, group_size: 32, \
            targets: ["model.layers.*"], ignore: ["*norm*"], learned_rounding: {steps: 40}}
              - export: {format: compressed-tensors}
            """
        let m = try run(env, stage, out: env.scratch + "/q")
        let lr = try #require(m["learned_rounding"] as? [String: Any], "\(m.keys)")
        let before = lr["start_error"] as? Double ?? .nan, after = lr["error"] as? Double ?? .nan
        #expect(after < before && lr["matrices"] as? Int == 14, "\(lr)")
        let layers = m["layers"] as? [[String: Any]] ?? []
        #expect(layers.filter { $0["learned_rounding"] != nil }.count == 14)
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("  - quantize: {bits: 4, group_size: 32, learned_rounding: {}}\n  - export: {format: safetensors}",
         "stages[0].quantize.learned_rounding: needs an earlier calibrate stage"),
        ("  - export: {format: gguf, type: q4_0, learned_rounding: {steps: 10}}",
         "stages[0].export.learned_rounding: needs an earlier calibrate stage"),
    ])
    func learnedRoundingWithoutCalibrateIsRefusedNamingTheStage(_ stages: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let r = try env.write("nocal.yaml", "stages:\n\(stages)\n")
        let s = try env.squeeze(["submit", "--model", Self.llama! + "/tiny/hf", "--recipe", r])
        #expect(s.status != 0 && s.stderr.contains(expected), "\(s.stderr)")
        #expect(s.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(s.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }
}
