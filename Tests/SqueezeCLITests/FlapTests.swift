import Foundation
import Testing
import TestSupport

/// `prune: {method: flap}`: FFN channels leave the tensors (the files shrink), chosen as FLAP does
/// (checked against numpy), the result runs in llama.cpp as a `deci` GGUF, resumes byte-identically
/// after kill -9, and impossible recipes are refused at submit.
@Suite struct FlapTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    /// A random Llama with three blocks of 256 FFN channels (hidden 128).
    func model(_ env: SqueezeEnv) throws -> String {
        let made = try env.madeLlama(env.scratch + "/m", ["--hidden", "128", "--blocks", "3", "--untied", "--seed", "4"])
        #expect(made.status == 0, "\(made.stderr)")
        return env.scratch + "/m/hf"
    }

    func recipe(_ env: SqueezeEnv, _ flap: String, _ rest: String = "  - export: {format: safetensors}\n") throws -> String {
        try env.write("r-\(UUID().uuidString.prefix(6)).yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
              - prune: {method: flap, \(flap)}

            """ + rest)
    }

    /// FLAP's score and the two baselines (Wanda-sp, the data-free weight norm), and FLAP on attention
    /// heads in both units, each against numpy.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("adaptive", "true", "fluctuation", "none"), ("uniform", "false", "fluctuation", "none"),
        ("uniform", "false", "wanda", "none"), ("adaptive", "false", "weight-norm", "none"),
        ("uniform", "true", "fluctuation", "query"), ("uniform", "false", "fluctuation", "group"),
    ])
    func flapChoosesTheChannelsAndBiasesOfTheNumpyReference(
        structure: String, refit: String, score: String, heads: String
    ) throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try recipe(
            env, "ratio: 0.2, multiple: 8, structure: \(structure), refit: \(refit), score: \(score), heads: \(heads)")
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let c = try env.python(
            "check_flap.py", [hf, pydoc, "8", "64", "0.2", structure, "8", refit, out, score, heads])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(500))")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func flapShrinksTheFilesAndLlamaCppRunsItsDeciGGUF() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try recipe(env, "ratio: 0.2, multiple: 8", """
              - evaluate: {samples: 4, seq_len: 64}
              - export: {format: safetensors}
              - export: {format: gguf, type: f32}
            """)
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let size = { (p: String) in (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0 }
        #expect(size(out + "/model.safetensors") < size(hf + "/model.safetensors") * 9 / 10)
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as! [String: Any]
        let st = m["structure"] as? [String: Any]
        #expect((st?["ffn_widths"] as? [Int])?.count == 3, "\(String(describing: st))")
        #expect(((st?["removed_fraction"] as? Double) ?? 0) > 0.15, "\(String(describing: st))")
        // evaluate compares with the submitted model: its original perplexity is the dense model's.
        let dense = try env.write("dense.yaml", "stages:\n  - evaluate: {dataset: \(pydoc), samples: 4, seq_len: 64}\n  - export: {format: safetensors}\n")
        let d = try env.squeeze(["run", "--model", hf, "--recipe", dense, "--out", env.scratch + "/dense"])
        #expect(d.status == 0, "\(d.stderr)")
        let dm = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: env.scratch + "/dense/manifest.json"))) as! [String: Any]
        let original = (m["evaluation"] as? [String: Any])?["original_perplexity"] as? Double
        #expect(original != nil && original == (dm["evaluation"] as? [String: Any])?["perplexity"] as? Double)
        let gguf = out + "/model-f32.gguf"
        let bin = env.scratch + "/l.bin"
        let l = try env.squeeze(["logits", "--model", gguf, "--dataset", pydoc, "--samples", "3", "--seq-len", "48", "--part", "evaluation", "--out", bin])
        #expect(l.status == 0, "\(l.stderr)")
        let c = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", gguf, try env.write("ids.json", l.stdout), bin, "1e-4"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aFlapJobKilledThreeTimesResumesByteIdentically() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        // No safetensors export: the GPTQ pass reads each unit's values from the unwritten dense slot,
        // which checkpoints hold too.
        let r = try recipe(env, "ratio: 0.2, multiple: 8", """
              - quantize: {method: gptq, bits: 4, granularity: group, group_size: 32, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: gguf, type: q8_0}
            """)
        let id = try env.submit(["--model", hf, "--recipe", r, "--max-attempts", "10"])
        try env.finishAfterKills(id)
        #expect(try env.scalar("SELECT units_total FROM jobs WHERE id = $1::uuid", [id]) == "36", "30 tensors and 2 biases per block")
        let out = try env.scalar("SELECT output_path FROM jobs WHERE id = $1::uuid", [id]) ?? "?"
        let local = env.scratch + "/local"
        #expect(try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", local]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/\(out)/model.safetensors"))
        for f in ["model-q8_0.gguf", "config.json"] {
            let a = FileManager.default.contents(atPath: env.artifactRoot + "/\(out)/\(f)")
            #expect(a != nil && a == FileManager.default.contents(atPath: local + "/" + f), "\(f) differs")
        }
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/\(out)/.staged-input"))
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("ratio: 0.2}\n  - prune: {method: flap, ratio: 0.1", "a recipe has one flap stage"),
        ("ratio: 0.95, structure: uniform", "would leave layer 0 no FFN channel"),
        ("ratio: 0.9, structure: adaptive", "more than the"),
        ("ratio: 0.2, multiple: 512", "512 is more than layer 0's 256 FFN channels"),
        ("ratio: 0.2, targets: [\"blk.0.*\"]", "does not apply to method flap"),
        ("ratio: 0", "is not in (0, 1)"),
        ("ratio: 0.2, compensate: false", "compensate: false needs refit: false too"),
        ("ratio: 0.7, heads: query", "would remove every head of layer 0"),
        ("ratio: 0.2, heads: group, structure: adaptive", "group needs structure: uniform"),
        ("ratio: 0.2, heads: all", "heads"),
    ])
    func impossibleFlapRecipesAreRefusedAtSubmit(_ flap: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try env.squeeze(["submit", "--model", hf, "--recipe", try recipe(env, flap)])
        #expect(r.status != 0)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func flapAfterAnotherCompressionStageIsRefused() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try env.write("late.yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
              - prune: {method: sparsegpt, sparsity: 0.5, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - prune: {method: flap, ratio: 0.2}
              - export: {format: safetensors}
            """)
        let s = try env.squeeze(["submit", "--model", hf, "--recipe", r])
        #expect(s.status != 0)
        #expect(s.stderr.contains("stages[2].prune: flap must come before stages[1]"), "\(s.stderr)")
    }
}
