import Foundation
import Testing
import TestSupport

/// Calibrated methods on decoders through `squeeze run` and the worker: SparseGPT against the
/// authors' algorithm in numpy, determinism across thread counts and input formats, perplexity,
/// KL and top-1 agreement in manifest.json and the job_quality view, and resume after kill -9.
@Suite struct DecoderJobTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    func recipe(_ env: SqueezeEnv, _ name: String, _ stages: String) throws -> String {
        try env.write(name, "stages:\n" + stages + (stages.hasSuffix("\n") ? "" : "\n"))
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: ["0.5", "2:4"])
    func sparseGPTMatchesTheAuthorsAlgorithmInNumpy(pattern: String) throws {
        let env = try SqueezeEnv.create()
        // Hidden 256: two 128-column blocks, so the lazy update between blocks is exercised.
        let made = try env.madeLlama(env.scratch + "/wide", ["--hidden", "256", "--seed", "3"])
        #expect(made.status == 0, "\(made.stderr)")
        let how = pattern.contains(":") ? "n: 2, m: 4" : "sparsity: \(pattern)"
        let r = try recipe(env, "sg.yaml", """
              - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 64}
              - prune: {method: sparsegpt, \(how), targets: ["model.layers.0.self_attn.q_proj.weight"]}
              - export: {format: safetensors}
            """)
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", env.scratch + "/wide/hf", "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let c = try env.python("check_sparsegpt.py", [env.scratch + "/wide/hf", pydoc, "4", "64", pattern, out + "/model.safetensors"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(500))")
    }

    /// Every calibrated method on every block matrix, with distill: 1 and 2 threads and the HF and
    /// GGUF copies of the same model give the same bytes; every targeted matrix is exactly half zeros.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func calibratedRunsAreDeterministicAcrossThreadsAndFormats() throws {
        let env = try SqueezeEnv.create()
        let r = try recipe(env, "r.yaml", """
              - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 48}
              - prune: {method: sparsegpt, sparsity: 0.5, targets: ["blk.0.*.weight"], ignore: ["*norm*"]}
              - prune: {method: wanda, sparsity: 0.5, targets: ["blk.1.attn_*.weight"], ignore: ["*norm*"]}
              - quantize: {method: gptq, bits: 4, granularity: group, group_size: 32, targets: ["blk.1.ffn_*.weight"], ignore: ["*norm*"]}
              - distill: {iterations: 3, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - evaluate: {samples: 4, seq_len: 48}
              - export: {format: safetensors}
            """)
        var files = [Data?]()
        for (model, threads) in [("tiny/hf", "2"), ("tiny/hf", "1"), ("tiny/model.gguf", "2")] {
            let out = env.scratch + "/out-\(files.count)"
            let run = try env.squeeze(["run", "--model", Self.llama! + "/" + model, "--recipe", r, "--out", out, "--threads", threads])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.contains("perplexity"), "\(run.stderr)")
            files.append(FileManager.default.contents(atPath: out + "/model.safetensors"))
        }
        #expect(files[0] != nil && files[0] == files[1], "1 and 2 threads differ")
        #expect(files[0] == files[2], "HF and GGUF inputs differ")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: env.scratch + "/out-0/manifest.json"))) as! [String: Any]
        for l in m["layers"] as! [[String: Any]] where (l["tensor"] as! String).hasPrefix("model.layers.0.") && (l["tensor"] as! String).hasSuffix("proj.weight") {
            #expect(l["sparsity"] as? Double == 0.5, "\(l)")
        }
        let ev = m["evaluation"] as! [String: Any]
        for k in ["perplexity", "original_perplexity", "mean_kl", "top1_agreement"] { #expect(ev[k] is Double, "\(k) in \(ev)") }
        // The evaluation itself does not depend on the thread count either.
        let m1 = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: env.scratch + "/out-1/manifest.json"))) as! [String: Any]
        let ev1 = m1["evaluation"] as! [String: Any]
        for k in ["perplexity", "original_perplexity", "mean_kl", "top1_agreement"] { #expect(ev[k] as? Double == ev1[k] as? Double, "\(k)") }
    }

    /// A calibrated recipe that exports only a GGUF writes no safetensors copy, and its GGUF and
    /// evaluation are the ones the same recipe gives with a safetensors export beside it.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aCalibratedRecipeNeedsNoDenseExport() throws {
        let env = try SqueezeEnv.create()
        let stages = """
              - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 48}
              - quantize: {method: gptq, bits: 4, granularity: group, group_size: 32, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - evaluate: {samples: 4, seq_len: 48}
              - export: {format: gguf, type: q8_0, imatrix: true}
            """
        var ppl = [Double?]()
        for (name, extra) in [("only", ""), ("both", "\n  - export: {format: safetensors}")] {
            let r = try recipe(env, "\(name).yaml", stages + extra)
            let out = env.scratch + "/" + name
            let run = try env.squeeze(["run", "--model", Self.llama! + "/tiny/hf", "--recipe", r, "--out", out])
            #expect(run.status == 0, "\(run.stderr)")
            let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any]
            ppl.append((m?["evaluation"] as? [String: Any])?["perplexity"] as? Double)
            #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors") == (name == "both"))
        }
        // (The files differ only in squeeze.recipe, the recipe itself.)
        let c = try env.python("gguf_tensor_bytes.py", [env.scratch + "/only/model-q8_0.gguf", env.scratch + "/both/model-q8_0.gguf", "--all"])
        #expect(c.status == 0, "the GGUF depends on the safetensors export: \(c.stdout) \(c.stderr)")
        #expect(ppl[0] != nil && ppl[0] == ppl[1], "\(ppl)")
    }

    /// Through the worker: the job_quality view has the decoder columns (cosines NULL); a GGUF
    /// export is what evaluate measures when there is one.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func workerRecordsPerplexityAndKLInSQL() throws {
        let env = try SqueezeEnv.create()
        let r = try recipe(env, "r.yaml", """
              - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 48}
              - prune: {method: sparsegpt, n: 2, m: 4, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - evaluate: {samples: 4, seq_len: 48}
              - export: {format: safetensors}
              - export: {format: gguf, type: q8_0}
            """)
        let id = try env.submit(["--model", Self.llama! + "/tiny/model.gguf", "--recipe", r])
        try env.drain()
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
        let row = try env.query("""
            SELECT perplexity, original_perplexity, perplexity_ratio, mean_kl, top1_agreement, scored_tokens, mean_cosine
            FROM job_quality WHERE job_id = $1::uuid
            """, [id]).first
        let v = row?.values ?? []
        #expect(v.count == 7 && v[0] != nil && v[2] != nil && v[3] != nil && v[4] != nil && v[6] == nil, "\(v)")
        #expect(v[5] == "92", "4 windows × 23 scored positions: \(v)")
        #expect((v[2].flatMap { Double($0) } ?? 0) > 0 && (v[3].flatMap { Double($0) } ?? 0) > 0, "\(v)")
        // Size is the file evaluated (the GGUF a user downloads), not every output added up.
        let gguf = try env.scalar("SELECT bytes FROM artifacts WHERE job_id = $1::uuid AND path LIKE '%model-q8_0.gguf'", [id])
        let measured = try env.scalar("SELECT model_bytes FROM job_quality WHERE job_id = $1::uuid", [id])
        #expect(gguf != nil && measured == gguf, "\(String(describing: measured)) against \(String(describing: gguf))")
        let total = try env.scalar("SELECT sum(bytes) FROM artifacts WHERE job_id = $1::uuid", [id])
        #expect((Int(total ?? "0") ?? 0) > (Int(gguf ?? "0") ?? 0))
    }

    /// kill -9 at ten random points of a calibrated decoder job (mid-unit, mid-checkpoint write, between
    /// a write and its record): the job resumes from what was recorded and publishes the same bytes as
    /// an uninterrupted `squeeze run`.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func decoderJobKilledTenTimesAtRandomPointsResumesByteIdentically() throws {
        let env = try SqueezeEnv.create()
        let made = try env.madeLlama(env.scratch + "/deep", ["--untied", "--blocks", "6", "--seed", "11"])
        #expect(made.status == 0, "\(made.stderr)")
        let r = try recipe(env, "r.yaml", """
              - calibrate: {dataset: \(pydoc), samples: 4, seq_len: 32}
              - prune: {method: sparsegpt, sparsity: 0.5, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - distill: {iterations: 3, targets: ["blk.1.*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
              - export: {format: gguf, type: q8_0}
            """)
        let model = env.scratch + "/deep/hf"
        let id = try env.submit(["--model", model, "--recipe", r, "--max-attempts", "30"])
        func checkpoints() -> Int { Int((try? env.scalar("SELECT count(*) FROM job_checkpoints WHERE job_id = $1::uuid", [id])) ?? "0") ?? 0 }
        func state() -> String? { try? env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) }
        var kills = 0
        while kills < 10 && state() != "succeeded" {
            let before = checkpoints()
            let w = try env.startSqueeze(["worker", "--lease-seconds", "1", "--unit-delay-ms", "30"])
            // Once this attempt has recorded a unit, a random moment inside the units that follow.
            let progressed = waitUntil(timeout: 60) { checkpoints() > before || state() == "succeeded" }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.12))
            w.signal(SIGKILL)
            #expect(w.wait(timeout: 10))
            _ = w.finish()
            #expect(progressed, "kill \(kills): no unit recorded after \(before)")
            kills += 1
        }
        #expect(kills == 10 && state() != "succeeded", "the job finished after \(kills) kills: too few units to kill at")
        let last = try env.startSqueeze(["worker", "--lease-seconds", "1", "--exit-when-idle"])
        #expect(last.wait(timeout: 300))
        #expect(last.finish().status == 0)
        #expect(state() == "succeeded")
        let units = try env.scalar("SELECT detail::text FROM job_events WHERE job_id = $1::uuid AND kind = 'units'", [id]) ?? "{}"
        let d = try JSONSerialization.jsonObject(with: Data(units.utf8)) as! [String: Int]
        #expect((d["restored"] ?? 0) >= 10, "\(units)")
        let cost = try env.scalar("SELECT detail->>'bytes' FROM job_events WHERE job_id = $1::uuid AND kind = 'checkpoints'", [id])
        #expect((Int(cost ?? "0") ?? 0) > 0, "checkpoint bytes of the last attempt: \(String(describing: cost))")
        let out = try env.scalar("SELECT output_path FROM jobs WHERE id = $1::uuid", [id]) ?? "?"
        let local = env.scratch + "/local"
        #expect(try env.squeeze(["run", "--model", model, "--recipe", r, "--out", local]).status == 0)
        for f in ["model.safetensors", "model-q8_0.gguf"] {
            let a = FileManager.default.contents(atPath: env.artifactRoot + "/\(out)/\(f)")
            #expect(a != nil && a == FileManager.default.contents(atPath: local + "/" + f), "\(f) differs")
        }
    }
}
