import Foundation
import Testing
import TestSupport

/// The compressed-tensors export: unpacked by an independent numpy script to exactly the dense
/// export's weights, and read back by Squeeze as the dense model; where ops/bench's peer venv exists, loaded by transformers (logits against
/// Squeeze's own forward pass) and compared tensor by tensor with what llm-compressor writes.
@Suite struct CompressedTensorsTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static let schemes = [
        "bits: 4, scheme: asymmetric, group_size: 32",
        "bits: 8, scheme: symmetric, granularity: channel",
        "bits: 3, scheme: asymmetric, group_size: 64",
        "bits: 2, scheme: symmetric, granularity: channel",
    ]

    /// Runs `recipe` on `model` into `out`; returns the run's stderr on failure.
    static func run(_ env: SqueezeEnv, model: String, recipe: String, out: String, threads: Int = 2) throws {
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out, "--threads", "\(threads)"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: schemes)
    func exportUnpacksToTheDenseExportExactly(_ scheme: String) throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny-untied/hf"
        let recipe = try env.write("ct.yaml", """
            stages:
              - quantize: {\(scheme), targets: ["*_proj.weight", "lm_head.weight"]}
              - export: {format: safetensors}
              - export: {format: compressed-tensors}
            """)
        let out = env.scratch + "/out"
        try Self.run(env, model: model, recipe: recipe, out: out)
        let c = try env.python("check_compressed_tensors.py", [out + "/compressed-tensors", out + "/model.safetensors"])
        #expect(c.status == 0 && c.stdout.contains("\"quantized\": 15,"), "\(scheme): \(c.stdout) \(c.stderr)")
        // Squeeze reads it back as the same dense model.
        let back = env.scratch + "/back"
        try Self.run(env, model: out + "/compressed-tensors", recipe: try env.write("back.yaml", "stages:\n  - export: {format: safetensors}\n"), out: back)
        let same = try env.python("same_safetensors.py", [back + "/model.safetensors", out + "/model.safetensors"])
        #expect(same.status == 0, "\(scheme): \(same.stdout) \(same.stderr)")
        let out1 = env.scratch + "/out1"
        try Self.run(env, model: model, recipe: recipe, out: out1, threads: 1)
        #expect(FileManager.default.contents(atPath: out + "/compressed-tensors/model.safetensors")
            == FileManager.default.contents(atPath: out1 + "/compressed-tensors/model.safetensors"))
    }

    /// GPTQ with act order on a Qwen2-style model (q/k/v biases), calibrated, without a dense copy in
    /// the same job: the one with a dense export writes the same compressed-tensors bytes.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func gptqWithActOrderNeedsNoDenseCopy() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny-qwen2/hf"
        let data = try env.write("cal.txt", String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 200))
        let stages = """
            stages:
              - calibrate: {dataset: \(data), samples: 4, seq_len: 32}
              - quantize: {method: gptq, bits: 4, scheme: asymmetric, group_size: 32, act_order: true, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: compressed-tensors}
            """
        let only = env.scratch + "/only"
        try Self.run(env, model: model, recipe: try env.write("a.yaml", stages), out: only)
        let files = try FileManager.default.contentsOfDirectory(atPath: only)
        #expect(!files.contains("model.safetensors"), "\(files)")
        let both = env.scratch + "/both"
        try Self.run(env, model: model, recipe: try env.write("b.yaml", stages + "\n  - export: {format: safetensors}\n"), out: both)
        let c = try env.python("check_compressed_tensors.py", [both + "/compressed-tensors", both + "/model.safetensors"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
        #expect(FileManager.default.contents(atPath: only + "/compressed-tensors/model.safetensors")
            == FileManager.default.contents(atPath: both + "/compressed-tensors/model.safetensors"))
        let config = try String(contentsOfFile: only + "/compressed-tensors/config.json", encoding: .utf8)
        #expect(config.contains("\"actorder\" : \"weight\"") && config.contains("\"quant_method\" : \"compressed-tensors\""))
    }

    /// A compressed-tensors directory reads as the dense model it stands for: a job that writes only
    /// it evaluates it (the dense job's figures), and `run --model` of it gives the dense export's
    /// tensors. A format other than pack-quantized is refused with the reason.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aCompressedTensorsDirectoryReadsAsItsDenseModel() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny/hf"
        let data = try env.write("cal.txt", String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 200))
        let stages = """
            stages:
              - calibrate: {dataset: \(data), samples: 4, seq_len: 32}
              - quantize: {method: gptq, bits: 4, scheme: asymmetric, group_size: 32, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - evaluate: {samples: 3, seq_len: 32}
            """
        let ct = env.scratch + "/ct", dense = env.scratch + "/dense"
        try Self.run(env, model: model, recipe: try env.write("a.yaml", stages + "\n  - export: {format: compressed-tensors}\n"), out: ct)
        try Self.run(env, model: model, recipe: try env.write("b.yaml", stages + "\n  - export: {format: safetensors}\n"), out: dense)
        func evaluation(_ dir: String) throws -> [String: Any] {
            let m = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: dir + "/manifest.json") ?? Data()) as? [String: Any]
            var e = m?["evaluation"] as? [String: Any] ?? [:]
            (e["seconds"], e["model_bytes"]) = (nil, nil)
            return e
        }
        let (a, b) = (try evaluation(ct), try evaluation(dense))
        #expect(a["perplexity"] != nil && NSDictionary(dictionary: a).isEqual(to: b), "\(a) against \(b)")
        let back = env.scratch + "/back"
        try Self.run(env, model: ct + "/compressed-tensors", recipe: try env.write("c.yaml", "stages:\n  - export: {format: safetensors}\n"), out: back)
        let same = try env.python("same_safetensors.py", [back + "/model.safetensors", dense + "/model.safetensors"])
        #expect(same.status == 0, "\(same.stdout) \(same.stderr)")
        let config = ct + "/compressed-tensors/config.json"
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "\"pack-quantized\"", with: "\"int-quantized\"")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try env.squeeze(["run", "--model", ct + "/compressed-tensors", "--recipe", env.scratch + "/c.yaml", "--out", env.scratch + "/bad"])
        #expect(r.status != 0 && r.stderr.contains("compressed-tensors format int-quantized cannot be read"), "\(r.stderr)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func refusesWhatThePackedFormatCannotHold() throws {
        let env = try SqueezeEnv.create()
        let hf = Self.llama! + "/tiny/hf"
        for (model, text, want) in [
            (hf, "stages:\n  - export: {format: compressed-tensors}\n",
             "a compressed-tensors export needs a quantize stage"),
            (hf, "stages:\n  - quantize: {bits: 4, granularity: tensor}\n  - export: {format: compressed-tensors}\n",
             "stages[0].quantize.granularity: tensor: compressed-tensors' pack-quantized format stores channel or group"),
            (hf, "stages:\n  - quantize: {bits: 8, granularity: channel, ignore: [\"*norm*\"]}\n  - export: {format: compressed-tensors}\n",
             "stages[0].quantize: model.embed_tokens.weight is not a linear layer's weight"),
            (Self.llama! + "/tiny/model.gguf",
             "stages:\n  - quantize: {bits: 8, granularity: channel, targets: [\"*_proj*\"]}\n  - export: {format: compressed-tensors}\n",
             "compressed-tensors writes a Hugging Face directory"),
        ] {
            let recipe = try env.write("bad.yaml", text)
            let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", env.scratch + "/bad"])
            #expect(r.status != 0 && r.stderr.contains(want), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }

    @Test(.enabled(if: llama != nil && TestConfiguration.peerPython != nil, "needs ops/bench's peer venv"))
    func transformersLoadsItAndLLMCompressorWritesTheSameLayout() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny/hf"
        let recipe = try env.write("ct.yaml", """
            stages:
              - quantize: {bits: 4, scheme: asymmetric, group_size: 32, targets: ["*_proj.weight"]}
              - export: {format: safetensors}
              - export: {format: compressed-tensors}
            """)
        let out = env.scratch + "/out"
        try Self.run(env, model: model, recipe: recipe, out: out)
        let data = try env.write("text.txt", String(repeating: "Compressed weights, loaded elsewhere. ", count: 100))
        let logits = env.scratch + "/logits.bin"
        let ids = try env.squeeze(["logits", "--model", out, "--dataset", data, "--samples", "2", "--seq-len", "16", "--out", logits])
        #expect(ids.status == 0, "\(ids.stderr)")
        let idsFile = try env.write("ids.json", ids.stdout)
        let t = try env.peerPython("Tests/reference/transformers_logits.py", [out + "/compressed-tensors", idsFile, logits])
        let line = try #require(t.stdout.split(separator: "\n").last, "\(t.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let diff = try #require(obj["max_abs_diff"] as? Double)
        #expect(diff <= 1e-3 && "\(obj["quant_method"] ?? "")".contains("COMPRESSED_TENSORS"), "\(line)")
        let theirs = env.scratch + "/llmcompressor"
        let lc = try env.peerPython("ops/bench.d/llmcompressor_layout.py", [model, theirs, "4", "asymmetric", "32"])
        #expect(lc.status == 0, "\(lc.stderr)")
        let cmp = try env.python("compare_ct_layout.py", [out + "/compressed-tensors", theirs])
        #expect(cmp.status == 0, "\(cmp.stdout)")
        // Asymmetric min-max round-to-nearest: both tools compute the same codes, scales and zero points.
        #expect(cmp.stdout.contains("\"packed_words_equal\": 9216, \"packed_words\": 9216"), "\(cmp.stdout)")
        #expect(cmp.stdout.contains("\"max_scale_rel_diff\": 0.0"), "\(cmp.stdout)")
    }
}
