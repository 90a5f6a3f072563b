import Foundation
import Testing
import TestSupport

/// A GGUF exported from the real all-MiniLM-L6-v2 directory is the `bert` file llama.cpp's
/// converter writes: the real llama.cpp loads it and, in embedding mode with the file's mean
/// pooling, embeds the same token windows as Squeeze's own BERT forward pass (cosine ≥ 0.999 for
/// F32/F16; quantized types within their error); its WordPiece vocabulary tokenizes as the
/// `tokenizers` package does; and a Q4_K_M file equals llama_model_quantize's from Squeeze's F32 file.
@Suite struct BertGGUFTests {
    static let minilm = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    @Test(.enabled(if: minilm != nil && llama != nil, "needs SQUEEZE_MINILM_DIR and SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func llamaCppRunsMiniLM() throws {
        let env = try SqueezeEnv.create()
        let dir = Self.minilm!
        let text = (0..<40).map { i in "Sentence \(i): the quick brown fox, naïve café — déjà vu; x**2 = \(i * i). " }.joined()
        let dataset = try env.write("text.txt", text)
        let embed = try env.squeeze(["embed", "--model", dir, "--dataset", dataset, "--samples", "6", "--seq-len", "64"])
        #expect(embed.status == 0, "\(embed.stderr)")
        let reference = try env.write("embed.json", embed.stdout)
        let sentences = ["Hello, world! It's 2026.", "Naïve café — déjà vu, 東京 😀 tabs\tand  spaces", "def f(x): return x**2  # squares"]
        var files = [String: String]()
        for (type, minCosine) in [("f32", 0.999), ("f16", 0.999), ("q8_0", 0.995), ("q4_k_m", 0.95)] {
            let recipe = try env.write("\(type).yaml", "stages:\n  - export: {format: gguf, type: \(type)}\n")
            let out = env.scratch + "/bert-\(type)"
            let r = try env.squeeze(["run", "--model", dir, "--recipe", recipe, "--out", out])
            #expect(r.status == 0, "\(r.stderr)")
            files[type] = out + "/model-\(type).gguf"
            let c = try env.pythonLlamaCpp("check_bert_gguf.py", [files[type]!, reference, String(minCosine), dir + "/tokenizer.json"] + sentences)
            print("bert-gguf: \(type) \(c.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
            #expect(c.status == 0, "\(type): \(c.stdout) \(c.stderr.suffix(800))")
        }
        let q = try env.pythonLlamaCpp("check_kquants.py", ["file", files["f32"]!, files["q4_k_m"]!, "15"])
        #expect(q.status == 0, "\(q.stdout) \(q.stderr.suffix(600))")
    }

    /// Low-rank factors have no place in llama.cpp's BERT graph: such a GGUF keeps the generic
    /// layout (input names), as before; without factors it has llama.cpp's names.
    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR")) func factorsKeepTheGenericLayout() throws {
        let env = try SqueezeEnv.create()
        for (stage, name) in [("  - lowrank: {rank: 8, output: factors, targets: ['*intermediate.dense.weight']}\n", "encoder.layer.0.intermediate.dense.weight"),
                              ("  - lowrank: {rank: 8, output: dense, targets: ['*intermediate.dense.weight']}\n", "blk.0.ffn_up.weight")] {
            let recipe = try env.write("f.yaml", "stages:\n" + stage + "  - export: {format: gguf, type: q8_0}\n")
            let out = env.scratch + "/f-\(UUID().uuidString.prefix(6))"
            #expect(try env.squeeze(["run", "--model", Self.minilm!, "--recipe", recipe, "--out", out]).status == 0)
            let insp = try env.squeeze(["inspect", out + "/model-q8_0.gguf"])
            #expect(insp.stdout.contains(name), "\(name) missing: \(insp.stdout.prefix(400))")
        }
    }
}
