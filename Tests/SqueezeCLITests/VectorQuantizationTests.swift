import Foundation
import Testing
import TestSupport

/// `quantize: {method: vptq}` on a tiny random Llama: the compressed export decoded by an independent
/// numpy reader equals the dense export, the same bytes for 1 and 2 threads, the export read back as
/// a model input, a worker killed mid-job resuming to the same bytes, hostile compressed files and
/// impossible recipes refused with one line.
@Suite struct VectorQuantizationTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    /// A random Llama with two blocks, hidden 128.
    func model(_ env: SqueezeEnv) throws -> String {
        let made = try env.madeLlama(env.scratch + "/m", ["--hidden", "128", "--blocks", "2", "--seed", "6"])
        #expect(made.status == 0, "\(made.stderr)")
        return env.scratch + "/m/hf"
    }

    func recipe(_ env: SqueezeEnv, _ vptq: String, exports: String) throws -> String {
        try env.write("r-\(UUID().uuidString.prefix(6)).yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
              - quantize: {method: vptq, \(vptq)targets: ["model.layers.*.weight"], ignore: ["*norm*"]}
            \(exports)
            """)
    }

    func manifest(_ dir: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as! [String: Any]
    }

    /// Two codebooks and one, with and without act order, with outlier columns: numpy decodes the indices,
    /// codebooks, scales and outliers to exactly the dense export, one and two threads write the same file, and
    /// the bits per weight the manifest reports count the codebooks, scales and outliers.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        "", "centroids: 64, residual: 0, act_order: false, ", "vector: 4, centroids: 32, residual: 16, ",
        "outliers: 16, centroids: 32, residual: 16, act_order: false, ",
    ])
    func compressedVectorsDecodeAsNumpyDoes(_ vptq: String) throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try recipe(env, vptq, exports: "  - export: {format: compressed}\n  - export: {format: safetensors}")
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out, "--threads", "2"])
        #expect(run.status == 0, "\(run.stderr)")
        let c = try env.python("decode_compressed.py", [hf + "/model.safetensors", out + "/model.compressed.safetensors", "--dense", out + "/model.safetensors"])
        #expect(c.status == 0 && c.stdout.contains("\"checked\": 14"), "\(c.stdout) \(c.stderr.suffix(500))")
        let out1 = env.scratch + "/out1"
        #expect(try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out1, "--threads", "1"]).status == 0)
        #expect(FileManager.default.contents(atPath: out + "/model.compressed.safetensors")
            == FileManager.default.contents(atPath: out1 + "/model.compressed.safetensors"), "thread count changed the file")
        // q_proj is 128 × 128: indices, codebooks (F16) and one F16 scale per row, in bits per weight.
        let units = try manifest(out)["layers"] as? [[String: Any]] ?? []
        let q = units.first { ($0["tensor"] as? String) == "model.layers.0.self_attn.q_proj.weight" }
        let books = vptq.isEmpty ? [(256, 8), (256, 8)] : vptq.hasPrefix("centroids") ? [(64, 8)]
            : vptq.hasPrefix("outliers") ? [(32, 8), (16, 8)] : [(32, 4), (16, 4)]
        let v = books[0].1
        let outliers = vptq.hasPrefix("outliers") ? 16 : 0
        var bytes = 128 * 2 + outliers * 4 + 128 * outliers * 2
        for (entries, _) in books {
            let bits = Int.bitWidth - (entries - 1).leadingZeroBitCount
            bytes += 128 * (((128 - outliers) / v * bits + 7) / 8) + entries * v * 2
        }
        #expect(abs((q?["bits"] as? Double ?? 0) - Double(bytes * 8) / Double(128 * 128)) < 1e-9, "\(String(describing: q))")
    }

    /// The compressed export is a model input: `run --model` of it writes the dense weights the job wrote, and
    /// an evaluate stage in a job whose only output is the compressed export measures the decoded model.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func theCompressedExportIsAModelInput() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let out = env.scratch + "/out"
        let r = try recipe(env, "centroids: 32, residual: 16, ", exports: """
              - evaluate: {samples: 4, seq_len: 64}
              - export: {format: compressed}
            """)
        let run = try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out + "/model.safetensors"), "a dense copy was written")
        let dense = env.scratch + "/dense"
        let again = try env.write("again.yaml", """
            stages:
              - evaluate: {dataset: \(pydoc), samples: 4, seq_len: 64}
              - export: {format: safetensors}
            """)
        let back = try env.squeeze(["run", "--model", out, "--recipe", again, "--out", dense])
        #expect(back.status == 0, "\(back.stderr)")
        // The same decoded weights as a job writing both exports.
        let both = env.scratch + "/both"
        let rb = try recipe(env, "centroids: 32, residual: 16, ", exports: "  - export: {format: compressed}\n  - export: {format: safetensors}")
        #expect(try env.squeeze(["run", "--model", hf, "--recipe", rb, "--out", both]).status == 0)
        let same = try env.python("same_safetensors.py", [both + "/model.safetensors", dense + "/model.safetensors"])
        #expect(same.status == 0, "\(same.stdout) \(same.stderr.suffix(300))")
        // The job's evaluation of its compressed export is the decoded model's: the perplexity `run --model` of
        // the export and of the dense weights measure, on the same windows.
        let ppl = { (dir: String) -> Double? in
            ((try? self.manifest(dir))?["evaluation"] as? [String: Any])?["perplexity"] as? Double
        }
        let e2 = try env.squeeze(["run", "--model", both, "--recipe", again, "--out", env.scratch + "/e2"])
        #expect(e2.status == 0, "\(e2.stderr)")
        #expect(ppl(out) != nil && ppl(out) == ppl(dense) && ppl(out) == ppl(env.scratch + "/e2"),
                "\(String(describing: ppl(out))) \(String(describing: ppl(dense))) \(String(describing: ppl(env.scratch + "/e2")))")
    }

    /// kill -9 of the worker three times once it has recorded units: the job resumes from its checkpoints
    /// and publishes the compressed export an uninterrupted `squeeze run` writes.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aKilledVPTQJobResumesByteIdentically() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try recipe(env, "centroids: 64, residual: 16, ", exports: "  - export: {format: compressed}")
        let id = try env.submit(["--model", hf, "--recipe", r, "--max-attempts", "10"])
        func checkpoints() -> Int {
            Int((try? env.scalar("SELECT count(*) FROM job_checkpoints WHERE job_id = $1::uuid", [id])) ?? "0") ?? 0
        }
        func state() -> String? { try? env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) }
        for kill in 0..<3 where state() != "succeeded" {
            let before = checkpoints()
            let w = try env.startSqueeze(["worker", "--lease-seconds", "1", "--unit-delay-ms", "150"])
            let progressed = waitUntil(timeout: 60) { checkpoints() > before || state() == "succeeded" }
            w.signal(SIGKILL)
            #expect(w.wait(timeout: 10))
            _ = w.finish()
            #expect(progressed, "kill \(kill): no unit recorded after \(before)")
        }
        #expect(state() != "succeeded", "the job finished before the third kill")
        let last = try env.startSqueeze(["worker", "--lease-seconds", "1", "--exit-when-idle"])
        #expect(last.wait(timeout: 300))
        #expect(last.finish().status == 0)
        #expect(state() == "succeeded")
        let out = try env.scalar("SELECT output_path FROM jobs WHERE id = $1::uuid", [id]) ?? "?"
        let local = env.scratch + "/local"
        #expect(try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", local]).status == 0)
        let published = FileManager.default.contents(atPath: env.artifactRoot + "/\(out)/model.compressed.safetensors")
        #expect(published != nil && published == FileManager.default.contents(atPath: local + "/model.compressed.safetensors"))
    }

    /// An index beyond its codebook, a part of the wrong shape, a missing codebook, outlier columns out of order
    /// and a truncated file are each refused in one line naming the file or tensor, with a non-zero exit.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("beyond", "is beyond the codebook's 200 entries"), ("shape", ".vq_scales is F16"), ("missing", ".vq_codebook is missing"),
        ("truncate", "model.compressed.safetensors"), ("outliers", "vq_outlier_columns: column 63 at 0 is not an ascending whole vector of the 256 columns"),
    ])
    func hostileCompressedFilesAreRefused(_ mode: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let out = env.scratch + "/out"
        let r = try recipe(env, "centroids: 256, residual: 0, outliers: 16, ", exports: "  - export: {format: compressed}")
        #expect(try env.squeeze(["run", "--model", hf, "--recipe", r, "--out", out]).status == 0)
        let bad = env.scratch + "/bad/model.compressed.safetensors"
        try FileManager.default.createDirectory(atPath: env.scratch + "/bad", withIntermediateDirectories: true)
        let made = try env.python("corrupt_compressed.py", [out + "/model.compressed.safetensors", bad, mode])
        #expect(made.status == 0, "\(made.stderr)")
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        let run = try env.squeeze(["run", "--model", bad, "--recipe", dense, "--out", env.scratch + "/o"], timeout: 60)
        #expect(run.status != 0)
        #expect(run.stderr.contains(expected), "\(run.stderr)")
        #expect(run.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(run.stderr)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("bits: 2, ", "belongs to methods gptq, rtn"), ("vector: 5, ", "5 is not one of 2, 4, 6, 8, 12, 16"),
        ("centroids: 100, ", "100 is not a power of two from 16 to 65536"), ("residual: 7, ", "(or 0)"),
        ("vector: 12, ", "values, not a multiple of 12"), ("outliers: 12, ", "12 is not a multiple of vector 8"),
        ("outliers: 128, ", "128 outlier columns leave tensor model.layers.0"),
    ])
    func impossibleVPTQRecipesAreRefusedAtSubmit(_ vptq: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        let r = try env.squeeze(["submit", "--model", hf, "--recipe", try recipe(env, vptq, exports: "  - export: {format: compressed}")])
        #expect(r.status != 0)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func vptqNeedsCalibrationAndACodebookFormat() throws {
        let env = try SqueezeEnv.create()
        let hf = try model(env)
        for (text, expected) in [
            ("stages:\n  - quantize: {method: vptq}\n  - export: {format: compressed}\n", "vptq needs an earlier calibrate stage"),
            ("stages:\n  - calibrate: {dataset: \(pydoc)}\n  - quantize: {method: vptq, targets: [\"model.layers.*.weight\"], ignore: [\"*norm*\"]}\n  - export: {format: compressed-tensors}\n",
             "compressed-tensors has no vector codebooks"),
        ] {
            let r = try env.squeeze(["submit", "--model", hf, "--recipe", try env.write("v.yaml", text)])
            #expect(r.status != 0 && r.stderr.contains(expected), "\(r.stderr)")
        }
    }
}
