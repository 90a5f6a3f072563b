import Foundation
import Testing
import TestSupport

/// The decoder path against independent implementations: token ids against the `tokenizers`
/// package and llama.cpp, logits against a float64 numpy forward and llama.cpp, for the real
/// SmolLM2-135M and tiny random Llamas, read from Hugging Face directories and from GGUF.
@Suite struct DecoderReferenceTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static let tricky = """
        def f(x):
            return x**2 + 3.14159   # pi-ish
        \ttab\tand  two  spaces   and    four
        Numbers: 1234567890, 3.0e-10, 0x1F, 2024-12-01, ½ ¾ ² ³ ٣ ۴ 五
        Ünïcödé: naïve café résumé — “quotes” ‘single’ … 你好，世界！ こんにちは 안녕하세요 Привет мир 🙂🚀👍🏽
        I'm we're they've you'll she'd it's He'S\u{20}\u{20}\u{20}
        <|im_start|>user
        Hello<|im_end|>


           trailing spaces\u{20}\u{20}\u{20}

        """

    /// (model to read, HF directory with the reference tokenizer.json and weights)
    static let models: [(String, String)] = [
        ("smollm2/smollm2-hf", "smollm2/smollm2-hf"), ("smollm2/smollm2-f32.gguf", "smollm2/smollm2-hf"),
        // The package's file as shipped: Q4_1 and Q8_0 blocks decoded by Squeeze, against gguf-py's decoding.
        ("smollm2/smollm2-q4_1.gguf", "smollm2/smollm2-hf"),
        ("tiny/hf", "tiny/hf"), ("tiny/model.gguf", "tiny/hf"), ("tiny-untied/model.gguf", "tiny-untied/hf"),
        ("tiny-qwen2/hf", "tiny-qwen2/hf"),
        // SentencePiece-style BPE (Llama 2's kind): tokenizer.json in the legacy and the Metaspace form, and the
        // GGUF with scores llama.cpp's converter writes.
        ("tiny-spm/hf", "tiny-spm/hf"), ("tiny-spm/hf-metaspace", "tiny-spm/hf-metaspace"),
        ("tiny-spm/model.gguf", "tiny-spm/hf"),
    ]

    /// The models the 1.4 MB text is also tokenized with.
    static let chunked: Set<String> = ["smollm2/smollm2-hf", "tiny/model.gguf", "tiny-spm/hf"]

    func pydoc(_ env: SqueezeEnv) -> String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: models.map(\.0))
    func tokenIdsMatchTheTokenizersPackage(model: String) throws {
        let env = try SqueezeEnv.create()
        let hf = Self.llama! + "/" + Self.models.first { $0.0 == model }!.1
        // A chat transcript: 12,000 special tokens in 255 KB of text.
        let chat = String(repeating: "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n", count: 3000)
        var texts = [try env.write("tricky.txt", Self.tricky), pydoc(env), try env.write("chat.txt", chat)]
        // Over 1 MiB: tokenized in chunks cut at newlines after a letter or digit (the same code for every
        // tokenizer, so one of each kind: byte-level BPE from tokenizer.json and from a GGUF, SentencePiece).
        if Self.chunked.contains(model) {
            let long = try String(contentsOfFile: pydoc(env), encoding: .utf8)
            texts.append(try env.write("long.txt", String(repeating: long, count: 3)))
        }
        for text in texts {
            let r = try env.squeeze(["logits", "--model", Self.llama! + "/" + model, "--dataset", text, "--all-tokens"])
            #expect(r.status == 0, "\(r.stderr)")
            let c = try env.python("llama_reference.py", ["tokens", hf, text, try env.write("ids.json", r.stdout)])
            #expect(c.status == 0, "\(model) \(text): \(c.stdout) \(c.stderr.suffix(500))")
        }
    }

    /// tokenizer.json as transformers writes it for SmolLM2: an empty normalizer Sequence (or one of
    /// NFC) and byte_fallback true on a byte-level vocabulary; ids equal the tokenizers package's,
    /// decomposed accents included.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: ["empty", "nfc"])
    func tokenizersAsTransformersWritesThem(_ normalizer: String) throws {
        let env = try SqueezeEnv.create()
        let dir = env.scratch + "/hf"
        try FileManager.default.copyItem(atPath: Self.llama! + "/tiny/hf", toPath: dir)
        let url = URL(fileURLWithPath: dir + "/tokenizer.json")
        var t = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var model = t["model"] as! [String: Any]
        model["byte_fallback"] = true
        t["model"] = model
        t["normalizer"] = ["type": "Sequence", "normalizers": normalizer == "nfc" ? [["type": "NFC"]] : []]
        try JSONSerialization.data(withJSONObject: t).write(to: url)
        let text = try env.write("accents.txt", Self.tricky + " cafe\u{301} re\u{301}sume\u{301} Å A\u{30A} ")
        let r = try env.squeeze(["logits", "--model", dir, "--dataset", text, "--all-tokens"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try env.python("llama_reference.py", ["tokens", dir, text, try env.write("ids.json", r.stdout)])
        #expect(c.status == 0, "\(normalizer): \(c.stdout) \(c.stderr.suffix(500))")
    }

    /// The other Metaspace settings `tokenizers` writes (prepend_scheme always / never, split true,
    /// the older add_prefix_space), and a Sequence with NFC before the legacy normalizers: ids equal
    /// the package's.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}"#,
        #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false}"#,
        #"{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true}"#,
        "nfc",
    ])
    func sentencePieceVariantsMatchTheTokenizersPackage(_ variant: String) throws {
        let env = try SqueezeEnv.create()
        let dir = env.scratch + "/hf"
        let source = Self.llama! + "/tiny-spm/" + (variant == "nfc" ? "hf" : "hf-metaspace")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.copyItem(atPath: (f == "tokenizer.json" ? source : Self.llama! + "/tiny-spm/hf") + "/" + f,
                                             toPath: dir + "/" + f)
        }
        let url = URL(fileURLWithPath: dir + "/tokenizer.json")
        var t = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        if variant == "nfc" {
            var n = t["normalizer"] as! [String: Any]
            n["normalizers"] = [["type": "NFC"]] + (n["normalizers"] as! [Any])
            t["normalizer"] = n
        } else {
            t["pre_tokenizer"] = try JSONSerialization.jsonObject(with: Data(variant.utf8))
        }
        try JSONSerialization.data(withJSONObject: t).write(to: url)
        let text = try env.write("text.txt", Self.tricky + "<s> after a special\u{2581}x  cafe\u{301} A\u{30A}")
        let r = try env.squeeze(["logits", "--model", dir, "--dataset", text, "--all-tokens"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try env.python("llama_reference.py", ["tokens", dir, text, try env.write("ids.json", r.stdout)])
        #expect(c.status == 0, "\(variant): \(c.stdout) \(c.stderr.suffix(500))")
    }

    /// Llama 2's tokenizer kind, with its special tokens, literal "▁" and byte tokens in the text:
    /// llama.cpp tokenizes the fixture's GGUF as Squeeze does; a GGUF export of the tokenizer.json
    /// model tokenizes in llama.cpp as the `tokenizers` package does and runs with the same logits;
    /// and a safetensors export of the GGUF carries a tokenizer.json `tokenizers` agrees with.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func sentencePieceTokenizersRoundTripThroughLlamaCpp() throws {
        let env = try SqueezeEnv.create()
        let dir = Self.llama! + "/tiny-spm"
        let text = try env.write("spm.txt", Self.tricky + "<s>user\nHi</s><unk> \u{2581} \u{2581}\u{2581}x <0x41> end")
        for input in [dir + "/model.gguf", dir + "/hf"] {
            let ids = try env.squeeze(["logits", "--model", input, "--dataset", text, "--all-tokens"])
            #expect(ids.status == 0, "\(ids.stderr)")
            let gguf: String
            if input.hasSuffix(".gguf") {
                gguf = input
            } else {
                let recipe = try env.write("f32.yaml", "stages:\n  - export: {format: gguf, type: f32}\n")
                let out = env.scratch + "/gguf"
                let r = try env.squeeze(["run", "--model", input, "--recipe", recipe, "--out", out])
                #expect(r.status == 0, "\(r.stderr)")
                gguf = out + "/model-f32.gguf"
                let bin = env.scratch + "/logits.bin"
                let l = try env.squeeze(["logits", "--model", gguf, "--dataset", pydoc(env), "--samples", "2", "--seq-len", "64",
                                         "--part", "evaluation", "--out", bin])
                #expect(l.status == 0, "\(l.stderr)")
                let lc = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", gguf, try env.write("l.json", l.stdout), bin, "1e-4"])
                #expect(lc.status == 0, "\(lc.stdout) \(lc.stderr.suffix(800))")
            }
            let c = try env.pythonLlamaCpp("llama_cpp_check.py", ["tokens", gguf, text, try env.write("ids.json", ids.stdout)])
            #expect(c.status == 0, "\(input): \(c.stdout) \(c.stderr.suffix(800))")
        }
        let recipe = try env.write("st.yaml", "stages:\n  - export: {format: safetensors}\n")
        let hf = env.scratch + "/hf-out"
        #expect(try env.squeeze(["run", "--model", dir + "/model.gguf", "--recipe", recipe, "--out", hf]).status == 0)
        let ids = try env.squeeze(["logits", "--model", dir + "/model.gguf", "--dataset", text, "--all-tokens"])
        let t = try env.python("llama_reference.py", ["tokens", hf, text, try env.write("ids2.json", ids.stdout)])
        #expect(t.status == 0, "\(t.stdout) \(t.stderr.suffix(500))")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: models.map(\.0))
    func logitsMatchNumpy(model: String) throws {
        let env = try SqueezeEnv.create()
        let hf = Self.llama! + "/" + Self.models.first { $0.0 == model }!.1
        let (samples, seq) = model.hasPrefix("smollm2") ? ("2", "32") : ("3", "48")
        let bin = env.scratch + "/logits.bin"
        let r = try env.squeeze(["logits", "--model", Self.llama! + "/" + model, "--dataset", pydoc(env), "--samples", samples,
                                 "--seq-len", seq, "--part", "evaluation", "--out", bin])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try env.python("llama_reference.py", ["logits", hf, pydoc(env), samples, seq, "evaluation", try env.write("ids.json", r.stdout), bin])
        #expect(c.status == 0, "\(model): \(c.stdout) \(c.stderr.suffix(500))")
    }

    /// An F32 GGUF export of the real model: llama.cpp loads it, tokenizes as Squeeze does, its
    /// logits match Squeeze's forward pass, and greedy generation gives the same tokens; gguf-py
    /// reads back every key and tensor.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func llamaCppRunsTheGGUFExport() throws {
        let env = try SqueezeEnv.create()
        let recipe = try env.write("f32.yaml", "stages:\n  - export: {format: gguf, type: f32}\n")
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", Self.llama! + "/smollm2/smollm2-hf", "--recipe", recipe, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let gguf = out + "/model-f32.gguf"
        let keys = try env.python("check_llama_gguf.py", [gguf, Self.llama! + "/smollm2/smollm2-f32.gguf"])
        #expect(keys.status == 0, "\(keys.stdout) \(keys.stderr.suffix(500))")
        let bin = env.scratch + "/logits.bin"
        let l = try env.squeeze(["logits", "--model", gguf, "--dataset", pydoc(env), "--samples", "2", "--seq-len", "64", "--part", "evaluation", "--out", bin])
        #expect(l.status == 0, "\(l.stderr)")
        let c = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", gguf, try env.write("ids.json", l.stdout), bin, "1e-4"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
        let tricky = try env.write("tricky.txt", Self.tricky)
        let t = try env.squeeze(["logits", "--model", gguf, "--dataset", tricky, "--all-tokens"])
        let tc = try env.pythonLlamaCpp("llama_cpp_check.py", ["tokens", gguf, tricky, try env.write("t.json", t.stdout)])
        #expect(tc.status == 0, "\(tc.stdout) \(tc.stderr.suffix(800))")
        let g = try env.squeeze(["generate", "--model", gguf, "The capital of France is", "--tokens", "8", "--ids"])
        #expect(g.status == 0, "\(g.stderr)")
        let gc = try env.pythonLlamaCpp("llama_cpp_check.py", ["generate", gguf, try env.write("g.json", g.stdout)])
        #expect(gc.status == 0, "\(gc.stdout) \(gc.stderr.suffix(800))")
    }

    /// A GGUF input exported as safetensors is a Hugging Face directory: its generated config.json
    /// and tokenizer.json give the `tokenizers` package and the numpy forward the same ids and logits.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func ggufInputExportsAHuggingFaceDirectory() throws {
        let env = try SqueezeEnv.create()
        let recipe = try env.write("st.yaml", "stages:\n  - export: {format: safetensors}\n")
        let out = env.scratch + "/hf"
        let run = try env.squeeze(["run", "--model", Self.llama! + "/tiny-untied/model.gguf", "--recipe", recipe, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        for f in ["config.json", "tokenizer.json", "model.safetensors"] { #expect(FileManager.default.fileExists(atPath: out + "/" + f), "\(f)") }
        let text = try env.write("tricky.txt", Self.tricky)
        let t = try env.squeeze(["logits", "--model", out, "--dataset", text, "--all-tokens"])
        let tc = try env.python("llama_reference.py", ["tokens", out, text, try env.write("t.json", t.stdout)])
        #expect(tc.status == 0, "\(tc.stdout) \(tc.stderr.suffix(500))")
        let bin = env.scratch + "/logits.bin"
        let l = try env.squeeze(["logits", "--model", Self.llama! + "/tiny-untied/model.gguf", "--dataset", pydoc(env), "--samples", "2",
                                 "--seq-len", "40", "--out", bin])
        let c = try env.python("llama_reference.py", ["logits", out, pydoc(env), "2", "40", "calibration", try env.write("ids.json", l.stdout), bin])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(500))")
    }

    /// The package's Q4_1 GGUF as input: the manifest says which tensors were stored quantized,
    /// and its Q8_0 re-export (tokenizer keys carried over) loads and agrees in llama.cpp.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aQuantizedGGUFInputIsRecordedAndReexported() throws {
        let env = try SqueezeEnv.create()
        let recipe = try env.write("q8.yaml", "stages:\n  - export: {format: gguf, type: q8_0}\n")
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", Self.llama! + "/smollm2/smollm2-q4_1.gguf", "--recipe", recipe, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as! [String: Any]
        let q = (m["input"] as? [String: Any])?["quantized_tensors"] as? [String] ?? []
        #expect(q.count == 211 && q.contains("token_embd.weight: Q8_0") && q.contains("blk.0.attn_q.weight: Q4_1"), "\(q.prefix(3))")
        let gguf = out + "/model-q8_0.gguf"
        let bin = env.scratch + "/logits.bin"
        let l = try env.squeeze(["logits", "--model", gguf, "--dataset", pydoc(env), "--samples", "2", "--seq-len", "32", "--part", "evaluation", "--out", bin])
        #expect(l.status == 0, "\(l.stderr)")
        let c = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", gguf, try env.write("ids.json", l.stdout), bin, "0.15", "0.85"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
    }
}
