import Foundation
import Queue
import Testing
import TestSupport

/// Calibrate, wanda, distill and evaluate on the real MiniLM — the BERT forward pass
/// against `tokenizers` + numpy, Wanda against numpy, quality ordering through the worker,
/// determinism, resume after kill -9, and refusals at submit.
@Suite struct CalibrationTests {
    static let minilm = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]

    func dataset(_ env: SqueezeEnv) throws -> String {
        let path = env.scratch + "/pydoc.txt"
        let r = try ProcessRunner.run(TestConfiguration.python, ["-c", """
            import sys
            from pydoc_data.topics import topics
            open(sys.argv[1], 'w', encoding='utf-8').write('\\n\\n'.join(topics[k] for k in sorted(topics)))
            """, path])
        #expect(r.status == 0, "\(r.stderr)")
        return path
    }

    func recipe(_ env: SqueezeEnv, _ name: String, _ stages: String) throws -> String {
        try env.write(name, "stages:\n" + stages + (stages.hasSuffix("\n") ? "" : "\n") + "  - export: {format: safetensors}\n")
    }

    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"), arguments: ["calibration", "evaluation"])
    func bertForwardMatchesTokenizersAndNumpy(part: String) throws {
        let env = try SqueezeEnv.create()
        let text = try dataset(env)
        let r = try env.squeeze(["embed", "--model", Self.minilm!, "--dataset", text, "--samples", "6", "--seq-len", "96", "--part", part])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try env.write("emb.json", r.stdout)
        let c = try env.python("bert_reference.py", [Self.minilm!, text, "6", "96", part, out])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
    }

    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"))
    func wandaMatchesNumpyAndIsDeterministic() throws {
        let env = try SqueezeEnv.create()
        let text = try dataset(env)
        let r = try recipe(env, "w.yaml", """
              - calibrate: {dataset: \(text), samples: 6, seq_len: 48}
              - prune: {method: wanda, sparsity: 0.5, targets: ["encoder.layer.[01].*.weight"], ignore: ["*LayerNorm*"]}
              - distill: {iterations: 4, targets: ["encoder.layer.1.*.weight"], ignore: ["*LayerNorm*"]}
            """)
        var files = [Data?]()
        for t in ["2", "1"] {
            let out = env.scratch + "/out\(t)"
            let run = try env.squeeze(["run", "--model", Self.minilm!, "--recipe", r, "--out", out, "--threads", t])
            #expect(run.status == 0, "\(run.stderr)")
            files.append(FileManager.default.contents(atPath: out + "/model.safetensors"))
        }
        #expect(files[0] != nil && files[0] == files[1], "1 and 2 threads differ")
        let c = try env.python("check_wanda.py", [Self.minilm!, text, "6", "48", "0.5", env.scratch + "/out2/model.safetensors"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
        // Forward-order units: the dense output lists tensors in the order the model uses them.
        let art = try env.python("check_artifacts.py", [env.scratch + "/out2"])
        #expect(art.status == 0, "\(art.stdout)")
    }

    /// Three 50% recipes through two workers; evaluate's cosine (in SQL) ranks them as the field
    /// does: magnitude < wanda < wanda + distill, and calibrated jobs record output errors.
    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"))
    func qualityOrderingThroughTheWorker() throws {
        let env = try SqueezeEnv.create()
        let text = try dataset(env)
        let sel = #"targets: ["encoder.*.weight"], ignore: ["*LayerNorm*"]"#
        let recipes = [
            ("magnitude", "  - prune: {sparsity: 0.5, \(sel)}\n  - evaluate: {dataset: \(text), samples: 8, seq_len: 64}\n"),
            ("wanda", "  - calibrate: {dataset: \(text), samples: 8, seq_len: 64}\n  - prune: {method: wanda, sparsity: 0.5, \(sel)}\n  - evaluate: {samples: 8, seq_len: 64}\n"),
            ("distill", "  - calibrate: {dataset: \(text), samples: 8, seq_len: 64}\n  - prune: {method: wanda, sparsity: 0.5, \(sel)}\n  - distill: {iterations: 8, \(sel)}\n  - evaluate: {samples: 8, seq_len: 64}\n"),
        ]
        var ids = [String: String]()
        for (name, stages) in recipes {
            ids[name] = try env.submit(["--model", Self.minilm!, "--recipe", try recipe(env, name + ".yaml", stages)])
        }
        let workers = try (0..<2).map { _ in try env.startSqueeze(["worker", "--exit-when-idle", "--threads", "1"]) }
        for w in workers { #expect(w.wait(timeout: 400)); #expect(w.finish().status == 0) }
        var cos = [String: Double]()
        for (name, id) in ids {
            #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
            cos[name] = Double(try env.scalar("SELECT mean_cosine FROM job_quality WHERE job_id = $1::uuid", [id]) ?? "")
        }
        let m = cos["magnitude"] ?? 1, w = cos["wanda"] ?? 0, d = cos["distill"] ?? 0
        #expect(m < w && w < d, "cosine magnitude \(m), wanda \(w), wanda+distill \(d)")
        for name in ["wanda", "distill"] {
            #expect(try env.scalar("SELECT count(*) FROM layer_metrics WHERE job_id = $1::uuid AND output_error IS NOT NULL", [ids[name]!]) == "36")
        }
        #expect(try env.scalar("SELECT count(*) FROM layer_metrics WHERE job_id = $1::uuid AND output_error IS NOT NULL", [ids["magnitude"]!]) == "0")
        let manifest = env.artifactRoot + "/artifacts/\(ids["distill"]!)/attempt-1/manifest.json"
        let obj = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: manifest) ?? Data()) as? [String: Any]
        let fromManifest = (obj?["evaluation"] as? [String: Any])?["mean_cosine"] as? Double ?? 0
        #expect(abs(fromManifest - d) < 1e-12, "manifest \(fromManifest), SQL \(d)")
    }

    /// int4 groups of 128 on MiniLM: GPTQ keeps the embeddings closer to the original than RTN on
    /// the same grid, and its compressed export decodes to the dense one.
    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"))
    func gptqBeatsRoundToNearest() throws {
        let env = try SqueezeEnv.create()
        let text = try dataset(env)
        var cosine = [String: Double]()
        for method in ["rtn", "gptq"] {
            let r = try env.write("\(method).yaml", """
                stages:
                  - calibrate: {dataset: \(text), samples: 8, seq_len: 64}
                  - quantize: {method: \(method), bits: 4, scheme: asymmetric, group_size: 128, targets: ["encoder.*.weight"], ignore: ["*LayerNorm*"]}
                  - evaluate: {samples: 8, seq_len: 64}
                  - export: {format: safetensors}
                  - export: {format: compressed}
                """)
            let out = env.scratch + "/" + method
            let run = try env.squeeze(["run", "--model", Self.minilm!, "--recipe", r, "--out", out])
            #expect(run.status == 0, "\(run.stderr)")
            let dec = try env.python("decode_compressed.py", [Self.minilm! + "/model.safetensors", out + "/model.compressed.safetensors",
                                                               "--dense", out + "/model.safetensors"])
            #expect(dec.status == 0 && dec.stdout.contains("\"checked\": 36"), "\(method): \(dec.stdout)")
            let obj = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: out + "/manifest.json") ?? Data()) as? [String: Any]
            cosine[method] = (obj?["evaluation"] as? [String: Any])?["mean_cosine"] as? Double
        }
        #expect((cosine["gptq"] ?? 0) > (cosine["rtn"] ?? 1), "\(cosine)")
    }

    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"))
    func calibratedJobKilledThreeTimesResumesByteIdentically() throws {
        let env = try SqueezeEnv.create()
        let text = try dataset(env)
        let r = try recipe(env, "r.yaml", """
              - calibrate: {dataset: \(text), samples: 4, seq_len: 32}
              - prune: {method: wanda, sparsity: 0.5, targets: ["encoder.*.weight"], ignore: ["*LayerNorm*"]}
              - distill: {iterations: 3, targets: ["encoder.layer.[02].*.weight"], ignore: ["*LayerNorm*"]}
              - export: {format: gguf, type: q8_0}
            """)
        let id = try env.submit(["--model", Self.minilm!, "--recipe", r, "--max-attempts", "6"])
        func checkpoints() -> Int { Int((try? env.scalar("SELECT count(*) FROM job_checkpoints WHERE job_id = $1::uuid", [id])) ?? "0") ?? 0 }
        for kill in 0..<3 {
            let w = try env.startSqueeze(["worker", "--lease-seconds", "2", "--unit-delay-ms", "60"])
            let target = checkpoints() + Int.random(in: 2...6)
            let reached = waitUntil(timeout: 120) { checkpoints() >= target }
            w.signal(SIGKILL)
            #expect(w.wait(timeout: 10))
            _ = w.finish()
            #expect(reached, "kill \(kill): no progress to \(target) checkpoints")
        }
        let restoredAtLeast = checkpoints()
        let last = try env.startSqueeze(["worker", "--lease-seconds", "2", "--exit-when-idle"])
        #expect(last.wait(timeout: 300))
        #expect(last.finish().status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
        let units = try env.scalar("SELECT detail::text FROM job_events WHERE job_id = $1::uuid AND kind = 'units'", [id]) ?? "{}"
        let d = try JSONSerialization.jsonObject(with: Data(units.utf8)) as? [String: Int] ?? [:]
        #expect((d["restored"] ?? 0) >= restoredAtLeast && d["total"] == 104, "\(units)")
        let local = env.scratch + "/local"
        #expect(try env.squeeze(["run", "--model", Self.minilm!, "--recipe", r, "--out", local]).status == 0)
        for f in ["model.safetensors", "model-q8_0.gguf"] {
            let a = FileManager.default.contents(atPath: env.artifactRoot + "/artifacts/\(id)/attempt-4/\(f)")
            #expect(a != nil && a == FileManager.default.contents(atPath: local + "/" + f), "\(f) differs")
        }
    }

    @Test func calibrationRecipesAreRefusedAtSubmit() throws {
        let env = try SqueezeEnv.create()
        let text = try dataset(env)
        let fixture = try env.makeModel()
        var cases: [(String, String, String)] = [
            (fixture, "  - calibrate: {dataset: \(text)}\n  - prune: {method: wanda, sparsity: 0.5}\n",
             "stages[0].calibrate: needs a BERT model directory"),
            (fixture, "  - prune: {method: wanda, sparsity: 0.5}\n", "stages[0].prune.method: wanda needs an earlier calibrate stage"),
            (fixture, "  - calibrate: {dataset: /etc/hostname}\n", "outside the allowed input roots"),
            (fixture, "  - calibrate: {dataset: \(text), seq_len: 4}\n", "stages[0].calibrate.seq_len: 4 is not in [8, 512]"),
            (fixture, "  - evaluate: {samples: 8}\n", "stages[0].evaluate.dataset: is required when the recipe has no calibrate stage"),
        ]
        if let m = Self.minilm {
            let short = try env.write("short.txt", "hello world\n")
            cases.append((m, "  - calibrate: {dataset: \(short), seq_len: 32}\n", "stages[0].calibrate.dataset: \(short): the calibration part holds 1 tokens"))
            cases.append((m, "  - calibrate: {dataset: \(text)}\n  - prune: {method: wanda, sparsity: 0.5, targets: ['*LayerNorm.weight']}\n",
                          "stages[1].prune.targets: matches embeddings.LayerNorm.weight, which is not a linear layer's weight"))
            cases.append((m, "  - calibrate: {dataset: \(text)}\n  - lowrank: {rank: 8, output: factors, targets: ['*.query.weight']}\n",
                          "stages[1].lowrank.output: factors cannot be used with calibrate"))
        }
        for (model, stages, want) in cases {
            let r = try env.squeeze(["submit", "--model", model, "--recipe", try recipe(env, "bad.yaml", stages)])
            #expect(r.status != 0 && r.stderr.contains(want), "\(want): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }
}
