import Foundation
import Testing
import TestSupport

/// `slice` (SliceGPT, uniform and per block): the residual stream rotated by its principal components
/// and sliced, checked against numpy (the same rotations; ratio 0 leaves the logits unchanged), the
/// uniform model a plain Llama GGUF whose logits llama.cpp reproduces, the per-block model run by
/// Squeeze's forward with numpy's logits, a killed job resuming byte-identically, and impossible
/// recipes refused at submit.
@Suite struct SliceTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static let minilm = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    /// A random Llama with three blocks, hidden 128, a tied head.
    func model(_ env: SqueezeEnv) throws -> String {
        let made = try env.madeLlama(env.scratch + "/m", ["--hidden", "128", "--blocks", "3", "--seed", "4"])
        #expect(made.status == 0, "\(made.stderr)")
        return env.scratch + "/m/hf"
    }

    func recipe(_ env: SqueezeEnv, _ slice: String, _ rest: String = "  - export: {format: safetensors}\n") throws -> String {
        try env.write("r-\(UUID().uuidString.prefix(6)).yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
              - slice: {\(slice)}

            """ + rest)
    }

    /// A slice job (with GPTQ and a GGUF export after it) whose worker is killed with SIGKILL three times
    /// mid-way resumes from its checkpoints and publishes the files `squeeze run` writes, byte for byte.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aSliceJobKilledThreeTimesResumesByteIdentically() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try recipe(env, "ratio: 0.25", """
              - quantize: {method: gptq, bits: 4, granularity: group, group_size: 32, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: gguf, type: q8_0}
            """)
        let id = try env.submit(["--model", hf, "--recipe", r, "--max-attempts", "10"])
        try env.finishAfterKills(id)
        #expect(Int(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [id]) ?? "0") ?? 0 >= 4)
        let out = try env.scalar("SELECT output_path FROM jobs WHERE id = $1::uuid", [id]) ?? "?"
        let local = env.scratch + "/local"
        #expect(try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", local]).status == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: local).filter { $0 != "manifest.json" }
        #expect(files.contains("model-q8_0.gguf") && files.contains("config.json"), "\(files)")
        for f in files {
            let a = FileManager.default.contents(atPath: env.artifactRoot + "/\(out)/\(f)")
            #expect(a != nil && a == FileManager.default.contents(atPath: local + "/" + f), "\(f) differs")
        }
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/\(out)/.staged-input"))
    }

    /// Ratio 0 is a pure rotation (computational invariance: logits within 1e-4 of the largest);
    /// 0.25 keeps 96 of 128 dimensions, the rotations numpy computes, with and without the readers'
    /// refit: one for the whole stream (`uniform`), or per block (`perblock`: every place's rotation
    /// from the sliced model's own stream, with the shortcut matrices between places).
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("0", 128, "true", "uniform"), ("0.25", 96, "true", "uniform"), ("0.25", 96, "false", "uniform"),
        ("0", 128, "true", "perblock"), ("0.25", 96, "true", "perblock"), ("0.25", 96, "false", "perblock"),
    ])
    func sliceRotatesAsTheNumpyReferenceDoes(ratio: String, kept: Int, refit: String, variant: String) throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let out = env.scratch + "/out"
        let r = try recipe(env, "ratio: \(ratio), refit: \(refit), uniform: \(variant == "uniform")")
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let c = try env.python("check_slice.py", [hf, pydoc, "8", "64", "\(kept)", out, refit, variant])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(500))")
    }

    /// Squeeze's own forward runs the shortcut matrices of a per-block slice's export (as `--model`):
    /// its logits equal numpy's, `evaluate` and `generate` run on it without a dense copy, and a GGUF
    /// export of it is refused at submit with the reason.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aPerBlockSliceRunsInSqueezeWithTheLogitsNumpyComputes() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let out = env.scratch + "/out"
        let r = try recipe(env, "ratio: 0.25, uniform: false", """
              - evaluate: {samples: 4, seq_len: 64}
              - export: {format: safetensors}
            """)
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("perplexity"), "\(run.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as! [String: Any]
        #expect((m["slice"] as? [String: Any])?["kept"] as? Int == 96, "\(String(describing: m["slice"]))")
        let bin = env.scratch + "/l.bin"
        let l = try env.squeeze(["logits", "--model", out, "--dataset", pydoc, "--samples", "3", "--seq-len", "48", "--part", "evaluation", "--out", bin])
        #expect(l.status == 0, "\(l.stderr)")
        let c = try env.python("llama_reference.py", ["logits", out, pydoc, "3", "48", "evaluation", try env.write("ids.json", l.stdout), bin])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(500))")
        let g = try env.squeeze(["generate", "--model", out, "--tokens", "8", "def main"])
        #expect(g.status == 0, "\(g.stderr)")
        let again = try env.write("again.yaml", """
            stages:
              - evaluate: {dataset: \(pydoc), samples: 2, seq_len: 64}
              - export: {format: safetensors}
            """)
        let e = try env.squeeze(["run", "--model", out, "--recipe", again, "--out", env.scratch + "/again"])
        #expect(e.status == 0, "\(e.stderr)")
        let gguf = try env.write("gguf.yaml", "stages:\n  - export: {format: gguf, type: f32}\n")
        let refused = try env.squeeze(["submit", "--model", out, "--recipe", gguf])
        #expect(refused.status != 0 && refused.stderr.contains("llama.cpp cannot run"), "\(refused.stderr)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aSlicedModelIsAPlainLlamaGGUFThatLlamaCppRuns() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try recipe(env, "ratio: 0.25", """
              - evaluate: {samples: 4, seq_len: 64}
              - export: {format: gguf, type: f32}
            """)
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as! [String: Any]
        let s = m["slice"] as? [String: Any]
        #expect(s?["kept"] as? Int == 96 && s?["hidden"] as? Int == 128, "\(String(describing: s))")
        let gguf = out + "/model-f32.gguf"
        let info = try env.squeeze(["inspect", gguf])
        #expect(info.stdout.contains("llama.embedding_length") && !info.stdout.contains("deci."), "\(info.stdout.prefix(2000))")
        let bin = env.scratch + "/l.bin"
        let l = try env.squeeze(["logits", "--model", gguf, "--dataset", pydoc, "--samples", "3", "--seq-len", "48", "--part", "evaluation", "--out", bin])
        #expect(l.status == 0, "\(l.stderr)")
        let c = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", gguf, try env.write("ids.json", l.stdout), bin, "1e-4"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("ratio: 0.2, uniform: false", "  - export: {format: gguf, type: q8_0}\n", "llama.cpp cannot run a GGUF export"),
        ("ratio: 0.2, uniform: false", "  - quantize: {method: rtn, bits: 4, targets: [\"*proj.weight\"]}\n  - export: {format: safetensors}\n", "a stage that changes weights is not built"),
        ("ratio: 1", "", "is not in [0, 1)"),
        ("ratio: 0.2, depth: 3", "", "unknown key"),
    ])
    func impossibleSliceRecipesAreRefusedAtSubmit(_ slice: String, _ after: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let rest = after.isEmpty ? "  - export: {format: safetensors}\n" : after
        let r = try env.squeeze(["submit", "--model", hf, "--recipe", try recipe(env, slice, rest)])
        #expect(r.status != 0)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }

    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"))
    func sliceOnAPostNormEncoderIsRefusedWithTheReason() throws {
        let env = try SqueezeEnv.create()
        let r = try env.squeeze(["submit", "--model", Self.minilm!, "--recipe", try recipe(env, "ratio: 0.2")])
        #expect(r.status != 0)
        #expect(r.stderr.contains("post-norm"), "\(r.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }
}
