import Foundation
import Testing
import TestSupport

/// Every shipped decoder recipe on the real SmolLM2-135M's first 4 blocks (with smaller calibration
/// and evaluation sizes, so the suite stays fast): it runs, measures perplexity/KL/top-1 agreement, and each GGUF
/// it writes is loaded by llama.cpp, whose logits agree with Squeeze's reading of the same file.
/// Not serialized: a serialized suite queues each test behind every other waiting test, so its ten
/// ran last, alone (the run's final 76 s); a recipe's outputs on 4 blocks are under 200 MB, and a test
/// process runs two tests at a time.
@Suite struct DecoderRecipeTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static var recipes: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: TestConfiguration.repoRoot + "/recipes/decoder")) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }

    /// SmolLM2's first 4 blocks (ops/lib.sh makes it): real weights and shapes at 42M parameters, so
    /// the seven recipes take under a minute of CPU instead of three; ops/demo and ops/bench run the whole model.
    static let blocks = 4
    static let smol = (llama ?? "") + "/smollm2-\(blocks)"

    /// A recipe's text for the short model: its stages for blocks the model lacks (wanda-50's per-block
    /// sparsities) left out.
    static func forShortModel(_ text: String) -> String {
        let missing = try! Regex("blk\\.([0-9]+)\\.")
        return text.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            guard let m = line.firstMatch(of: missing), let n = Int(m.output[1].substring ?? "") else { return true }
            return n < blocks
        }.joined(separator: "\n")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: recipes)
    func shippedDecoderRecipeRunsOnSmolLM2(recipe: String) throws {
        let env = try SqueezeEnv.create()
        let text = Self.forShortModel(try String(contentsOfFile: TestConfiguration.repoRoot + "/recipes/decoder/" + recipe, encoding: .utf8))
            .replacingOccurrences(of: "samples: 128, seq_len: 256", with: "samples: 4, seq_len: 32")
            .replacingOccurrences(of: "samples: 16, seq_len: 256", with: "samples: 2, seq_len: 64")
            .replacingOccurrences(of: "iterations: 40", with: "iterations: 2")
            .replacingOccurrences(of: "method: vptq,", with: "method: vptq, iterations: 4,")
            .replacingOccurrences(of: "blocks: 16, rank: 8", with: "blocks: 4, rank: 8")
            .replacingOccurrences(of: ".run/datasets/", with: TestConfiguration.repoRoot + "/.run/datasets/")
        let r = try env.write(recipe, text)
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", Self.smol + "/smollm2-hf", "--recipe", r, "--out", out], timeout: 600)
        #expect(run.status == 0, "\(run.stderr.suffix(1000))")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as! [String: Any]
        let ev = m["evaluation"] as? [String: Any] ?? [:]
        let ppl = ev["perplexity"] as? Double ?? .nan, orig = ev["original_perplexity"] as? Double ?? .nan
        #expect(ppl.isFinite && orig.isFinite && ppl / orig < 20, "\(ev)")
        // A calibrated run times its compression apart from opening the input and closing the outputs.
        let t = m["timings"] as? [String: Any] ?? [:]
        let total = t["total_s"] as? Double ?? .nan, cal = t["calibration_s"] as? Double
        if text.contains("calibrate:") {
            #expect(cal.map { $0 > 0 && $0 <= total } == true, "\(t)")
        } else {
            #expect(cal == nil, "\(t)")
        }
        let targeted = (m["layers"] as! [[String: Any]]).filter { $0["targeted"] as? Bool == true }.count
        if text.contains("method: flap") {
            // A structural stage reshapes the model before the units: every block's FFN narrowed.
            let widths = (m["structure"] as? [String: Any])?["ffn_widths"] as? [Int] ?? []
            #expect(widths.count == Self.blocks && widths.contains { $0 < 1536 } && widths.allSatisfy { $0 % 32 == 0 }, "\(widths)")
        } else if text.contains("slice:") {
            // SliceGPT narrows the residual stream itself: 576 → 448 at 20% (a multiple of 32).
            let s = m["slice"] as? [String: Any]
            #expect(s?["hidden"] as? Int == 576 && s?["kept"] as? Int == 448, "\(String(describing: s))")
        } else {
            #expect(targeted >= 7 * Self.blocks, "every block matrix of the model's \(Self.blocks) blocks: \(targeted)")
        }
        // (A GGUF weighted by an importance matrix is checked byte for byte against llama.cpp's own below instead.)
        let weighted = FileManager.default.fileExists(atPath: out + "/imatrix.gguf")
        for f in try FileManager.default.contentsOfDirectory(atPath: out) where !weighted && f.hasPrefix("model") && f.hasSuffix(".gguf") {
            let bin = env.scratch + "/logits.bin"
            let l = try env.squeeze(["logits", "--model", out + "/" + f, "--dataset", TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt",
                                     "--samples", "2", "--seq-len", "48", "--part", "evaluation", "--out", bin])
            #expect(l.status == 0, "\(l.stderr)")
            let c = try env.pythonLlamaCpp("llama_cpp_check.py", ["logits", out + "/" + f, try env.write("ids.json", l.stdout), bin, "0.15", "0.85"])
            #expect(c.status == 0, "\(f): \(c.stdout) \(c.stderr.suffix(800))")
        }
        // A recipe that collects an importance matrix: llama.cpp's llama_model_quantize, given that
        // matrix and the same weights as an F32 GGUF, writes the same tensors (the Q5_0 fallbacks,
        // Q4_K/Q6_K ffn_down and Q8_0 of the real model, each importance-weighted).
        if weighted {
            let gguf = try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasPrefix("model-q4_k_m") }
            #expect(gguf != nil)
            let c = try env.pythonLlamaCpp("check_kquants.py", ["imatrix", Self.smol + "/smollm2-f32.gguf", out + "/" + (gguf ?? ""), "15",
                                                               out + "/imatrix.gguf"])
            #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
        }
    }
}
