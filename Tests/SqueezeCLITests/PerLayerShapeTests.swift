import Foundation
import Testing
import TestSupport

/// Structurally pruned decoders: each block with its own FFN width and head counts, and o_proj /
/// down_proj biases, as a Hugging Face directory (Squeeze's config.json keys) or llama.cpp's `deci`
/// GGUF. Squeeze's forward equals the numpy reference on both, calibrated stages run on it, and
/// its GGUF export is a `deci` file the real llama.cpp runs with the same logits and tokens.
@Suite struct PerLayerShapeTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    /// Three blocks of different widths (FFN 96 / 64 / 128, heads 4:2, 2:1, 4:2) with output biases.
    func makeModel(_ env: SqueezeEnv) throws -> String {
        let dir = env.scratch + "/shaped"
        let made = try env.madeLlama(
            dir, ["--untied", "--blocks", "3", "--shapes", "96:4:2,64:2:1,128:4:2", "--output-bias", "--seed", "3"])
        #expect(made.status == 0, "\(made.stderr)")
        return dir
    }

    func logits(_ env: SqueezeEnv, _ model: String, _ bin: String) throws -> String {
        let r = try env.squeeze(["logits", "--model", model, "--dataset", pydoc, "--samples", "3", "--seq-len", "48",
                                 "--part", "evaluation", "--out", bin])
        #expect(r.status == 0, "\(r.stderr)")
        return try env.write("ids-\(UUID().uuidString.prefix(6)).json", r.stdout)
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func perLayerWidthsMatchNumpyFromBothFormatsAndLlamaCppRunsTheDeciFile() throws {
        let env = try SqueezeEnv.create()
        let dir = try makeModel(env)
        for model in [dir + "/hf", dir + "/model.gguf"] {
            let bin = env.scratch + "/l.bin"
            let ids = try logits(env, model, bin)
            let c = try env.python("llama_reference.py", ["logits", dir + "/hf", pydoc, "3", "48", "evaluation", ids, bin])
            #expect(c.status == 0, "\(model): \(c.stdout) \(c.stderr.suffix(500))")
            if model.hasSuffix(".gguf") {
                let l = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", model, ids, bin, "1e-4"])
                #expect(l.status == 0, "\(l.stdout) \(l.stderr.suffix(800))")
            }
        }
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func calibratedStagesKeepTheShapesAndExportADeciGGUF() throws {
        let env = try SqueezeEnv.create()
        let dir = try makeModel(env)
        let r = try env.write("r.yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 32}
              - quantize: {method: gptq, bits: 4, granularity: group, group_size: 32, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - distill: {iterations: 2, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
              - export: {format: gguf, type: f32}
            """)
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", dir + "/hf", "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as! [String: Any]
        #expect(cfg["layer_intermediate_sizes"] as? [Int] == [96, 64, 128], "\(cfg)")
        #expect(cfg["layer_num_attention_heads"] as? [Int] == [4, 2, 4], "\(cfg)")
        #expect(cfg["layer_num_key_value_heads"] as? [Int] == [2, 1, 2], "\(cfg)")
        #expect(cfg["output_bias"] as? Bool == true, "\(cfg)")
        // The safetensors export through numpy, the GGUF export through llama.cpp: both equal Squeeze.
        let gguf = out + "/model-f32.gguf"
        let bin = env.scratch + "/l.bin"
        let ids = try logits(env, gguf, bin)
        let c = try env.python("llama_reference.py", ["logits", out, pydoc, "3", "48", "evaluation", ids, bin])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(500))")
        let l = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", gguf, ids, bin, "1e-4"])
        #expect(l.status == 0, "\(l.stdout) \(l.stderr.suffix(800))")
        let g = try env.squeeze(["generate", "--model", gguf, "The history of", "--tokens", "8", "--ids"])
        #expect(g.status == 0, "\(g.stderr)")
        let gc = try env.pythonLlamaCpp("llama_cpp_check.py", ["generate", gguf, try env.write("g.json", g.stdout)])
        #expect(gc.status == 0, "\(gc.stdout) \(gc.stderr.suffix(800))")
        let head = String(decoding: (FileManager.default.contents(atPath: gguf) ?? Data()).prefix(4096), as: UTF8.self)
        #expect(head.contains("deci.feed_forward_length") && !head.contains("llama.feed_forward_length"))
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aLayerWhoseHeadsAreNotAMultipleOfItsKVHeadsIsRefusedNamingIt() throws {
        let env = try SqueezeEnv.create()
        let dir = env.scratch + "/bad"
        let made = try env.madeLlama(dir, ["--blocks", "2", "--shapes", "96:4:2,64:3:2"])
        #expect(made.status == 0, "\(made.stderr)")
        let recipe = try env.write("r.yaml", "stages:\n  - export: {format: gguf, type: f32}\n")
        for model in [dir + "/hf", dir + "/model.gguf"] {
            let r = try env.squeeze(["submit", "--model", model, "--recipe", recipe])
            #expect(r.status != 0)
            #expect(r.stderr.contains("layer 1 has 64 FFN channels, 3 heads and 2 KV heads"), "\(r.stderr)")
            #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        }
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }
}
