import Foundation
import Testing
import TestSupport

/// GGUF k-quants and llama-quantize's mixes against the real llama.cpp: `llama_model_quantize` on
/// the same F32 GGUF must give every tensor the same type and the same bytes. The random Llama
/// with hidden 512 (one matrix of adversarial super-blocks) exercises every k-quant on every
/// matrix; the real SmolLM2 (hidden 576) exercises the legacy fallbacks.
@Suite struct KQuantReferenceTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static let release = TestConfiguration.binary.contains("/release/")

    /// (recipe type, LLAMA_FTYPE_MOSTLY_*, pure): a plain k-quant is llama-quantize's file type with --pure.
    static let tiny: [(String, Int, Bool)] = [
        ("q2_k", 10, true), ("q3_k", 11, true), ("q4_k", 14, true), ("q5_k", 16, true), ("q6_k", 18, true),
        ("q3_k_m", 12, false), ("q4_k_s", 14, false), ("q4_k_m", 15, false), ("q5_k_s", 16, false), ("q5_k_m", 17, false),
    ]

    func export(_ env: SqueezeEnv, _ model: String, _ type: String, threads: Int = 2) throws -> String {
        let recipe = try env.write("\(type).yaml", "stages:\n  - export: {format: gguf, type: \(type)}\n")
        let out = env.scratch + "/\(type)-\(threads)"
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out, "--threads", String(threads)])
        #expect(r.status == 0, "\(r.stderr)")
        return out + "/model-\(type).gguf"
    }

    func sameAsLlamaCpp(_ env: SqueezeEnv, _ f32: String, _ gguf: String, ftype: Int, pure: Bool) throws {
        let c = try env.pythonLlamaCpp("check_kquants.py", ["file", f32, gguf, String(ftype)] + (pure ? ["--pure"] : []))
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(600))")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: tiny.map(\.0))
    func everyTypeAndMixMatchesLlamaQuantize(type: String) throws {
        let env = try SqueezeEnv.create()
        let (_, ftype, pure) = Self.tiny.first { $0.0 == type }!
        let model = Self.llama! + "/tiny-512/model.gguf"
        let one = try export(env, model, type, threads: 1)
        try sameAsLlamaCpp(env, model, one, ftype: ftype, pure: pure)
        #expect(FileManager.default.contents(atPath: one) == FileManager.default.contents(atPath: try export(env, model, type, threads: 2)))
    }

    /// SmolLM2's 576-wide rows take llama.cpp's fallbacks (Q5_0, Q5_1, Q8_0) in every mix; Q3_K_M
    /// would need IQ4_NL there and is refused at submit, naming the tensor.
    @Test(.enabled(if: llama != nil && release, "needs SQUEEZE_LLAMA_DIR and the release binary (ops/test's second phase)"),
          arguments: [("q4_k_m", 15), ("q5_k_m", 17), ("q4_k_s", 14), ("q6_k", 18)])
    func smolLM2MixesMatchLlamaQuantize(type: String, ftype: Int) throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/smollm2/smollm2-f32.gguf"
        try sameAsLlamaCpp(env, model, try export(env, model, type), ftype: ftype, pure: false)
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aMixThatNeedsIQ4_NLIsRefusedAtSubmit() throws {
        let env = try SqueezeEnv.create()
        let recipe = try env.write("q3km.yaml", "stages:\n  - export: {format: gguf, type: q3_k_m}\n")
        let r = try env.squeeze(["submit", "--model", Self.llama! + "/smollm2/smollm2-f32.gguf", "--recipe", recipe, "--dry-run"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("IQ4_NL") && r.stderr.contains("stages[0].export"), "\(r.stderr)")
    }

    /// Squeeze's k-quant decoder (the manifest's relative error) agrees with gguf-py's on the
    /// adversarial super-blocks, and the fallback types appear where rows are 576 or 40 wide.
    @Test(arguments: ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
    func decoderAgreesWithGGUFPy(type: String) throws {
        let env = try SqueezeEnv.create()
        let model = env.scratch + "/kblocks.safetensors"
        #expect(try env.python("kquant_blocks.py", [model]).status == 0)
        let gguf = try export(env, model, type)
        let c = try env.python("check_kquants.py", ["errors", model, gguf, (gguf as NSString).deletingLastPathComponent + "/manifest.json"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(600))")
    }
}
