import Foundation
import Testing
import TestSupport

/// An evaluation's reference: `save_reference: true` writes the original model's logits on the
/// scored positions (eval-reference.bin), and `reference:` reads them instead of running the
/// original; the evaluation is the same, number for number. A reference for another model, other
/// windows or a BERT model is refused with the reason.
@Suite struct EvaluationReferenceTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static let minilm = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]

    func evaluation(_ out: String) throws -> [String: Any] {
        let data = FileManager.default.contents(atPath: out + "/manifest.json") ?? Data()
        let m = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        var e = m?["evaluation"] as? [String: Any] ?? [:]
        e["seconds"] = nil
        e["model_bytes"] = nil  // the GGUF's metadata holds the recipe, which names the reference
        return e
    }

    func recipe(_ env: SqueezeEnv, _ name: String, _ data: String, _ extra: String, samples: Int = 3) throws -> String {
        try env.write(name, """
            stages:
              - evaluate: {dataset: \(data), samples: \(samples), seq_len: 32\(extra)}
              - export: {format: gguf, type: q4_0}
            """)
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aSavedReferenceGivesTheSameEvaluation() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny/hf"
        let data = try env.write("text.txt", String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 300))
        let save = try recipe(env, "save.yaml", data, ", save_reference: true")
        let a = try env.squeeze(["run", "--model", model, "--recipe", save, "--out", env.scratch + "/a"])
        #expect(a.status == 0, "\(a.stderr)")
        let file = env.scratch + "/a/eval-reference.bin"
        let manifest = try String(contentsOfFile: env.scratch + "/a/manifest.json", encoding: .utf8)
        #expect(manifest.contains("\"eval-reference.bin\"") && manifest.contains("\"eval-reference\""))
        let read = try recipe(env, "read.yaml", data, ", reference: \(file)")
        let b = try env.squeeze(["run", "--model", model, "--recipe", read, "--out", env.scratch + "/b"])
        #expect(b.status == 0, "\(b.stderr)")
        let ea = try evaluation(env.scratch + "/a"), eb = try evaluation(env.scratch + "/b")
        #expect(!ea.isEmpty && NSDictionary(dictionary: ea).isEqual(to: eb), "\(ea) against \(eb)")
        #expect(!FileManager.default.fileExists(atPath: env.scratch + "/b/eval-reference.bin"))

        // Other windows are refused at submit; another model's file (the same weights as a GGUF) when it runs.
        let other = try recipe(env, "other.yaml", data, ", reference: \(file)", samples: 2)
        let s = try env.squeeze(["submit", "--model", model, "--recipe", other, "--dry-run"])
        #expect(s.status != 0 && s.stderr.contains("stages[0].evaluate.reference") && s.stderr.contains("3 × 32"),
                "\(s.stderr)")
        let g = try env.squeeze(["run", "--model", Self.llama! + "/tiny/model.gguf", "--recipe", read, "--out", env.scratch + "/c"])
        #expect(g.status != 0 && g.stderr.contains("was written for another model"), "\(g.stderr)")
        let junk = try env.write("junk.bin", String(repeating: "x", count: 64))
        let j = try env.squeeze(["submit", "--model", model, "--recipe", try recipe(env, "junk.yaml", data, ", reference: \(junk)"), "--dry-run"])
        #expect(j.status != 0 && j.stderr.contains("no SQZEVREF magic"), "\(j.stderr)")
        let both = try recipe(env, "both.yaml", data, ", reference: \(file), save_reference: true")
        let t = try env.squeeze(["submit", "--model", model, "--recipe", both, "--dry-run"])
        #expect(t.status != 0 && t.stderr.contains("save_reference"), "\(t.stderr)")
    }

    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"))
    func aBERTEvaluationHasNoReference() throws {
        let env = try SqueezeEnv.create()
        let data = try env.write("text.txt", String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 300))
        let r = try env.write("bert.yaml", """
            stages:
              - evaluate: {dataset: \(data), samples: 2, seq_len: 16, save_reference: true}
              - export: {format: safetensors}
            """)
        let s = try env.squeeze(["submit", "--model", Self.minilm!, "--recipe", r, "--dry-run"])
        #expect(s.status != 0 && s.stderr.contains("a BERT evaluation has none"), "\(s.stderr)")
    }
}
