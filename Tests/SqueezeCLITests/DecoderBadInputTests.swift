import Foundation
import Testing
import TestSupport

/// Decoder inputs that cannot run are refused at submit with the file and key named, in one
/// line, and nothing is inserted.
@Suite struct DecoderBadInputTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    /// A copy of the tiny HF model with `edit` applied to the files of the copy.
    func tinyCopy(_ env: SqueezeEnv, name: String = "model", _ edit: (String) throws -> Void) throws -> String {
        let dir = env.scratch + "/" + name
        try FileManager.default.copyItem(atPath: Self.llama! + "/tiny/hf", toPath: dir)
        try edit(dir)
        return dir
    }

    func editConfig(_ dir: String, _ change: (inout [String: Any]) -> Void) throws {
        var o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        change(&o)
        try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: dir + "/config.json"))
    }

    func expectRefused(_ env: SqueezeEnv, model: String, recipe: String, _ expected: [String]) throws {
        let r = try env.squeeze(["submit", "--model", model, "--recipe", recipe])
        #expect(r.status != 0)
        for e in expected { #expect(r.stderr.contains(e), "wanted \(e) in: \(r.stderr)") }
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }

    func calibratedRecipe(_ env: SqueezeEnv, samples: Int = 2) throws -> String {
        try env.write("r.yaml", """
            stages:
              - calibrate: {dataset: \(TestConfiguration.repoRoot)/.run/datasets/pydoc.txt, samples: \(samples), seq_len: 32}
              - prune: {method: sparsegpt, sparsity: 0.5, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
            """)
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("architecture", ["config.json architectures GPT2LMHeadModel is not supported"]),
        ("no tokenizer", ["has no tokenizer.json"]),
        ("bad tokenizer", ["tokenizer.json"]),
        ("shapes", ["config.json implies", "model.layers.0.mlp.gate_proj.weight"]),
        ("rope scaling", ["rope_scaling type yarn is not supported"]),
        ("bos id", ["bos_token_id -1 is not a token id below vocab_size"]),
        ("context", ["stages[0].calibrate.seq_len: 32 tokens is longer than the model's context (max_position_embeddings 1)"]),
        ("added id", ["tokenizer.json: holds token id 100000", "beyond the model's vocab_size"]),
        ("rope theta", ["rope_theta is the string \"1e5\", not a number"]),
    ])
    func hfDirectoryProblems(_ problem: String, _ expected: [String]) throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try tinyCopy(env) { dir in
            switch problem {
            case "architecture": try editConfig(dir) { $0["architectures"] = ["GPT2LMHeadModel"] }
            case "no tokenizer": try FileManager.default.removeItem(atPath: dir + "/tokenizer.json")
            case "bad tokenizer": try Data("{\"model\": {\"type\": \"BPE\", \"vocab\": ".utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
            case "shapes": try editConfig(dir) { $0["intermediate_size"] = 96 }
            case "bos id": try editConfig(dir) { $0["bos_token_id"] = -1 }
            case "context": try editConfig(dir) { $0["max_position_embeddings"] = 1 }
            case "rope theta": try editConfig(dir) { $0["rope_theta"] = "1e5" }
            case "added id":
                let url = URL(fileURLWithPath: dir + "/tokenizer.json")
                var t = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                var added = t["added_tokens"] as? [[String: Any]] ?? []
                added.append(["id": 100_000, "content": "<|far|>", "special": true])
                t["added_tokens"] = added
                try JSONSerialization.data(withJSONObject: t).write(to: url)
            default: try editConfig(dir) { $0["rope_scaling"] = ["type": "yarn", "factor": 4] }
            }
        }
        try expectRefused(env, model: model, recipe: try calibratedRecipe(env), expected)
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        (["--override", "llama.feed_forward_length=96"], ["blk.0.ffn_gate.weight", "llama.* keys"]),
        (["--override", "llama.embedding_length=32"], ["llama.embedding_length"]),
        (["--int8", "blk.0.ffn_up.weight"], ["blk.0.ffn_up.weight", "I8"]),
    ])
    func ggufProblems(_ args: [String], _ expected: [String]) throws {
        let env = try SqueezeEnv.create(checked: true)
        let r = try env.python("make_llama.py", ["tiny", env.scratch + "/bad"] + args)
        #expect(r.status == 0, "\(r.stderr)")
        try expectRefused(env, model: env.scratch + "/bad/model.gguf", recipe: try calibratedRecipe(env), expected + ["model.gguf"])
    }

    /// tiny-256's blk.1.ffn_up holds 600,000s: Q4_0's fp16 scale overflows (llama.cpp writes such a
    /// file too), and the evaluation of that file fails the run with one line instead of a JSON error.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func anEvaluationThatIsNotFiniteFailsWithOneLine() throws {
        let env = try SqueezeEnv.create(checked: true)
        let recipe = try env.write("r.yaml", """
            stages:
              - evaluate: {dataset: \(TestConfiguration.repoRoot)/.run/datasets/pydoc.txt, samples: 2, seq_len: 64}
              - export: {format: gguf, type: q4_0}
            """)
        let r = try env.squeeze(["run", "--model", Self.llama! + "/tiny-256/hf", "--recipe", recipe, "--out", env.scratch + "/o"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("evaluate: the compressed model's perplexity is not finite"), "\(r.stderr)")
        #expect(!r.stderr.contains("EncodingError"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: env.scratch + "/o"))
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aDatasetTooShortForTheWindows() throws {
        let env = try SqueezeEnv.create(checked: true)
        let text = try env.write("short.txt", "Only a few words of text here, far too few for the windows asked.")
        let recipe = try env.write("r.yaml", """
            stages:
              - calibrate: {dataset: \(text), samples: 4, seq_len: 64}
              - prune: {method: wanda, sparsity: 0.5, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
            """)
        try expectRefused(env, model: Self.llama! + "/tiny/hf", recipe: recipe, ["stages[0].calibrate.dataset", "fewer than one sequence"])
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func generateRefusesAnEncoder() throws {
        let env = try SqueezeEnv.create(checked: true)
        let minilm = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"] ?? env.scratch
        let r = try env.squeeze(["generate", "--model", minilm, "Hello"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("is not a decoder model"), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }
}

/// Config values that once crashed or exhausted every worker that claimed the job: refused at
/// submit, and when swapped in after submit they fail that job while the worker lives on.
@Suite struct DecoderConfigCrashTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    let bad = DecoderBadInputTests()

    func mistral(_ env: SqueezeEnv, window: Any) throws -> String {
        try bad.tinyCopy(env) { dir in
            try bad.editConfig(dir) { $0["architectures"] = ["MistralForCausalLM"]; $0["sliding_window"] = window }
        }
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        (-5 as Any, "sliding_window is -5"), (0 as Any, "sliding_window is 0"), (-1_000_000 as Any, "sliding_window is -1000000"),
        ("8" as Any, "sliding_window is the string \"8\", not an integer"),
    ])
    func aSlidingWindowBelowOneIsRefusedAtSubmitAndByGenerate(_ window: Any, _ expected: String) throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try mistral(env, window: window)
        try bad.expectRefused(env, model: model, recipe: try bad.calibratedRecipe(env), [expected, "config.json"])
        let g = try env.squeeze(["generate", "--model", model, "Hello", "--tokens", "2"], timeout: 60)
        #expect(g.status == 1, "generate exited \(g.status): \(g.stderr)")
        #expect(g.stderr.contains(expected), "\(g.stderr)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aSlidingWindowSwappedAfterSubmitFailsTheJobNotTheWorker() throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try mistral(env, window: 16)
        let id = try env.submit(["--model", model, "--recipe", try bad.calibratedRecipe(env), "--no-checksum"])
        let noop = try env.submit(["--noop", "--sleep-ms", "1500"])
        try bad.editConfig(model) { $0["sliding_window"] = -5 }
        let w = try env.squeeze(["worker", "--exit-when-idle", "--concurrency", "2", "--lease-seconds", "5"], timeout: 120)
        #expect(w.status == 0, "worker died: \(w.status) \(w.stderr.suffix(600))")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "failed")
        #expect(try env.scalar("SELECT error FROM jobs WHERE id = $1::uuid", [id])?.contains("sliding_window is -5") == true)
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [id]) == "1")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [noop]) == "succeeded")
        #expect(try env.scalar("SELECT attempt FROM jobs WHERE id = $1::uuid", [noop]) == "1")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aBlockCountBeyondTheTensorsIsRefusedBeforeAnythingIsBuilt() throws {
        let env = try SqueezeEnv.create(checked: true)
        let recipe = try bad.calibratedRecipe(env)
        let hf = try bad.tinyCopy(env) { try bad.editConfig($0) { $0["num_hidden_layers"] = 16_777_216 } }
        var t0 = Date()
        let r = try env.squeeze(["submit", "--model", hf, "--recipe", recipe, "--dry-run"], timeout: 60)
        #expect(r.status != 0)
        #expect(r.stderr.contains("num_hidden_layers 16777216 is more blocks than the model's 20 tensors hold"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(t0) < 10)
        let g = try env.python("make_llama.py", ["tiny", env.scratch + "/deep", "--override", "llama.block_count=16777216"])
        #expect(g.status == 0, "\(g.stderr)")
        t0 = Date()
        try bad.expectRefused(env, model: env.scratch + "/deep/model.gguf", recipe: recipe,
                              ["llama.block_count 16777216 is more blocks", "model.gguf"])
        #expect(Date().timeIntervalSince(t0) < 10)
        // Swapped in after submit: the worker's own check fails the job within seconds.
        let swapped = try bad.tinyCopy(env, name: "swapped") { _ in }
        let id = try env.submit(["--model", swapped, "--recipe", recipe, "--no-checksum"])
        try bad.editConfig(swapped) { $0["num_hidden_layers"] = 16_777_216 }
        t0 = Date()
        let w = try env.squeeze(["worker", "--exit-when-idle", "--lease-seconds", "5", "--max-memory", "2G"], timeout: 120)
        #expect(w.status == 0, "worker died: \(w.status) \(w.stderr.suffix(600))")
        #expect(Date().timeIntervalSince(t0) < 30)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "failed")
        #expect(try env.scalar("SELECT error FROM jobs WHERE id = $1::uuid", [id])?.contains("num_hidden_layers 16777216") == true)
    }
}

/// Text that made tokenization quadratic (one pre-token of tens of kilobytes) is tokenized in
/// linearithmic time: submit, calibration and `generate` finish instead of holding a worker.
@Suite struct HostileTextTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("crlf", String(repeating: "\r\n", count: 100_000)), ("x", String(repeating: "x", count: 200_000)),
        ("spaces", String(repeating: " ", count: 200_000) + "end"),
    ])
    func oneLongPreTokenIsTokenizedQuickly(_ name: String, _ text: String) throws {
        let env = try SqueezeEnv.create(checked: true)
        let data = try env.write(name + ".txt", text)
        let t0 = Date()
        let r = try env.squeeze(["logits", "--model", Self.llama! + "/tiny/hf", "--dataset", data, "--all-tokens"],
                                timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Date().timeIntervalSince(t0) < 30, "\(name): \(Date().timeIntervalSince(t0)) s")
        let g = try env.squeeze(["generate", "--model", Self.llama! + "/tiny/hf", String(text.prefix(40_000)),
                                 "--tokens", "1"], timeout: 60)
        #expect(Date().timeIntervalSince(t0) < 60, "\(name): generate took too long")
        #expect(g.status == 0 || (g.status == 1 && g.stderr.contains("more than the model's context")), "\(g.stderr)")
    }
}

/// Tokenizing a dataset costs memory in proportion to its size: the job's memory estimate counts
/// it, so `--max-memory` can refuse a job whose dataset would not fit.
@Suite struct DatasetMemoryTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    func estimate(_ env: SqueezeEnv, dataset: String) throws -> Int64 {
        let recipe = try env.write("r-\(UInt32.random(in: 0...UInt32.max)).yaml", """
            stages:
              - calibrate: {dataset: \(dataset), samples: 2, seq_len: 32}
              - prune: {method: wanda, sparsity: 0.5, targets: ["blk.*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
            """)
        let r = try env.squeeze(["submit", "--model", Self.llama! + "/tiny/hf", "--recipe", recipe, "--dry-run", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let job = (o?["jobs"] as? [[String: Any]])?.first
        return (job?["memory_estimate"] as? NSNumber)?.int64Value ?? 0
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func theEstimateCountsTokenizingTheDataset() throws {
        let env = try SqueezeEnv.create(checked: true)
        let prose = try String(contentsOfFile: TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt", encoding: .utf8)
        let small = try env.write("small.txt", prose)
        let big = try env.write("big.txt", String(repeating: prose, count: 12))
        let grown = try estimate(env, dataset: big) - (try estimate(env, dataset: small))
        let added = Int64(prose.utf8.count) * 11
        #expect(grown >= added * 5, "the estimate grew by \(grown) bytes for \(added) more bytes of text")
    }
}
