import Foundation
import Testing
import TestSupport

/// GGUF k-quants and llama-quantize's mixes against the real llama.cpp: `llama_model_quantize` on
/// the same F32 GGUF must give every tensor the same type and the same bytes. The random Llama
/// with hidden 256 (one matrix of adversarial super-blocks) exercises every k-quant on every
/// matrix; the real SmolLM2 (hidden 576) exercises the legacy fallbacks.
@Suite struct KQuantReferenceTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    /// (recipe type, LLAMA_FTYPE_MOSTLY_*, pure): a plain k-quant is llama-quantize's file type with --pure.
    static let tiny: [(String, Int, Bool)] = [
        ("q2_k", 10, true), ("q3_k", 11, true), ("q4_k", 14, true), ("q5_k", 16, true), ("q6_k", 18, true),
        ("q3_k_m", 12, false), ("q4_k_s", 14, false), ("q4_k_m", 15, false), ("q5_k_s", 16, false), ("q5_k_m", 17, false),
        ("iq4_nl", 25, false), ("iq4_xs", 30, false), ("iq4_nl+pure", 25, true), ("iq4_xs+pure", 30, true),
    ]

    /// Exports `type` ("iq4_nl+pure": the IQ4_NL mix with `pure: true`) and returns the GGUF's path.
    func export(_ env: SqueezeEnv, _ model: String, _ type: String, threads: Int = 2) throws -> String {
        let name = String(type.prefix { $0 != "+" }), pure = type.hasSuffix("+pure") ? ", pure: true" : ""
        let recipe = try env.write("\(name).yaml", "stages:\n  - export: {format: gguf, type: \(name)\(pure)}\n")
        let out = env.scratch + "/\(type)-\(threads)"
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out, "--threads", String(threads)])
        #expect(r.status == 0, "\(r.stderr)")
        return out + "/model-\(name).gguf"
    }

    func sameAsLlamaCpp(_ env: SqueezeEnv, _ f32: String, _ gguf: String, ftype: Int, pure: Bool) throws {
        let c = try env.pythonLlamaCpp("check_kquants.py", ["file", f32, gguf, String(ftype)] + (pure ? ["--pure"] : []))
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(600))")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: tiny.map(\.0))
    func everyTypeAndMixMatchesLlamaQuantize(type: String) throws {
        let env = try SqueezeEnv.create()
        let (_, ftype, pure) = Self.tiny.first { $0.0 == type }!
        let model = Self.llama! + "/tiny-256/model.gguf"
        let one = try export(env, model, type, threads: 1)
        try sameAsLlamaCpp(env, model, one, ftype: ftype, pure: pure)
        // Each type's quantizer splits its rows over the threads; the mixes and pure IQ4 files reuse those
        // quantizers, so the plain types are the ones exported again with two threads.
        if pure && !type.hasPrefix("iq4_nl") {
            #expect(FileManager.default.contents(atPath: one) == FileManager.default.contents(atPath: try export(env, model, type, threads: 2)))
        }
    }

    /// SmolLM2's 576-wide rows take llama.cpp's fallbacks (Q5_0, Q5_1, Q8_0, and IQ4_NL for Q3_K and
    /// IQ4_XS) in every mix; these four mixes take each fallback (Q4_K_S and Q6_K add none; tiny-256 runs
    /// them); its first 4 blocks (ops/lib.sh's smollm2-4: the real shapes and weights, the layer rules on
    /// 4 layers) keep each llama-quantize run to a third of the whole model's cost.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"),
          arguments: [("q4_k_m", 15), ("q5_k_m", 17), ("q3_k_m", 12), ("iq4_xs", 30)])
    func smolLM2MixesMatchLlamaQuantize(type: String, ftype: Int) throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/smollm2-4/smollm2-f32.gguf"
        try sameAsLlamaCpp(env, model, try export(env, model, type), ftype: ftype, pure: false)
    }

    /// With `allow_fallback: false`, a Q3_K_M row that would fall back to IQ4_NL is refused at submit,
    /// naming it (the tied embedding's Q6_K → Q8_0 fallback is overridden by `output_type`).
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func aRefusedFallbackNamesIQ4_NL() throws {
        let env = try SqueezeEnv.create()
        let recipe = try env.write("q3km.yaml", "stages:\n  - export: {format: gguf, type: q3_k_m, allow_fallback: false, output_type: q8_0}\n")
        let r = try env.squeeze(["submit", "--model", Self.llama! + "/smollm2/smollm2-f32.gguf", "--recipe", recipe, "--dry-run"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("would write IQ4_NL") && r.stderr.contains("stages[0].export"), "\(r.stderr)")
    }

    /// Squeeze's k-quant and IQ4 decoders (the manifest's relative error) agree with gguf-py's on the
    /// adversarial super-blocks, and the fallback types appear where rows are 576 or 40 wide.
    @Test(arguments: ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs"])
    func decoderAgreesWithGGUFPy(type: String) throws {
        let env = try SqueezeEnv.create()
        let model = env.scratch + "/kblocks.safetensors"
        #expect(try env.python("kquant_blocks.py", [model]).status == 0)
        let gguf = try export(env, model, type)
        let c = try env.python("check_kquants.py", ["errors", model, gguf, (gguf as NSString).deletingLastPathComponent + "/manifest.json"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(600))")
    }

    /// `output_type`, `embedding_type` and `pure` are llama-quantize's --output-tensor-type,
    /// --token-embedding-type and --pure: the same file as llama.cpp's with those parameters.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func outputAndEmbeddingTypesMatchLlamaQuantize() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny-256/model.gguf"
        let recipe = try env.write("o.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, output_type: q5_k, embedding_type: q8_0}\n")
        let out = env.scratch + "/o"
        #expect(try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out]).status == 0)
        let c = try env.pythonLlamaCpp("check_kquants.py", ["file", model, out + "/model-q4_k_m.gguf", "15", "--output-type", "13", "--embedding-type", "8"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr.suffix(600))")
    }

    /// `tensor_types` globs (GGUF or input names) override the mix where the rows fit; a pattern
    /// that matches nothing, patterns that disagree, or a type the rows cannot hold are refused at submit.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func tensorTypeOverrides() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny-256/model.gguf"
        let recipe = try env.write("t.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, tensor_types: {'*attn_v*': q8_0, 'model.layers.0.mlp.down_proj.weight': q2_k}}\n")
        let out = env.scratch + "/t"
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let insp = try env.squeeze(["inspect", out + "/model-q4_k_m.gguf"])
        let lines = insp.stdout.split(separator: "\n")
        #expect(lines.filter { $0.contains("attn_v.weight") }.allSatisfy { $0.contains("Q8_0") } && lines.contains { $0.contains("attn_v.weight") })
        #expect(lines.contains { $0.contains("blk.0.ffn_down.weight") && $0.contains("Q2_K") })
        #expect(lines.contains { $0.contains("blk.1.ffn_down.weight") && $0.contains("Q4_K") })
        let smol = Self.llama! + "/smollm2/smollm2-f32.gguf"
        for (overrides, expected) in [("{'*nothing*': q8_0}", "matches no quantizable tensor"),
                                      ("{'*attn_v*': q8_0, 'blk.0.*': q5_0}", "ask different types"),
                                      ("{'*attn_q*': q4_k}", "do not fill its 256-value blocks")] {
            let bad = try env.write("bad.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, tensor_types: \(overrides)}\n")
            let s = try env.squeeze(["submit", "--model", smol, "--recipe", bad, "--dry-run"])
            #expect(s.status != 0 && s.stderr.contains(expected) && s.stderr.contains("stages[0].export"), "\(overrides): \(s.stderr)")
        }
        // allow_fallback: false refuses SmolLM2 (rows of 576) at submit; the hidden-256 model passes.
        let strict = try env.write("strict.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, allow_fallback: false}\n")
        let s = try env.squeeze(["submit", "--model", smol, "--recipe", strict, "--dry-run"])
        #expect(s.status != 0 && s.stderr.contains("allow_fallback is false") && s.stderr.contains("rows of 576 values"), "\(s.stderr)")
        #expect(try env.squeeze(["submit", "--model", model, "--recipe", strict, "--dry-run"]).status == 0)
    }
}
