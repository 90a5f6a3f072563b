import Foundation
import Testing
import TestSupport

/// Importance-weighted GGUF quantization against the real llama.cpp: `llama_model_quantize` given
/// the same importance matrix (read from the file as llama-quantize reads it, handed over as the
/// std::unordered_map it takes) writes every tensor with the same type and bytes as Squeeze.
/// Imatrix files come from Squeeze's calibration (`imatrix: true`) and from outside Squeeze
/// (Tests/reference/make_imatrix.py, both of llama.cpp's formats); files for another model are
/// refused at submit. (SmolLM2's calibrated Q4_K_M with its Q5_0 fallbacks: DecoderRecipeTests,
/// on the shipped recipe decoder/gguf-q4_k_m-imatrix.yaml.)
@Suite struct ImportanceMatrixReferenceTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    static let dataset = TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt"

    func sameAsLlamaCpp(_ env: SqueezeEnv, _ f32: String, _ gguf: String, ftype: Int, imatrix: String, pure: Bool = false) throws {
        let c = try env.pythonLlamaCpp("check_kquants.py", ["imatrix", f32, gguf, String(ftype), imatrix] + (pure ? ["--pure"] : []))
        #expect(c.status == 0, "\(gguf): \(c.stdout) \(c.stderr.suffix(600))")
    }

    /// A calibrated run collects the importance matrix, writes it beside the model in both of
    /// llama.cpp's formats, and quantizes with it exactly as llama.cpp does with that file; the
    /// GGUF records llama-quantize's `quantize.imatrix.*` keys. The written .dat used as a file
    /// gives llama.cpp's bytes for that file too.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func calibratedImatrixMatchesLlamaQuantize() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny-256/model.gguf"
        let recipe = try env.write("cal.yaml", """
            stages:
              - calibrate: {dataset: \(Self.dataset), samples: 8, seq_len: 64}
              - export: {format: safetensors}
              - export: {format: gguf, type: q4_k_m, imatrix: true}
            """)
        let out = env.scratch + "/cal"
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        try sameAsLlamaCpp(env, model, out + "/model-q4_k_m.gguf", ftype: 15, imatrix: out + "/imatrix.gguf")
        let insp = try env.squeeze(["inspect", out + "/model-q4_k_m.gguf"]).stdout
        for key in ["quantize.imatrix.file = \"imatrix.gguf\"", "quantize.imatrix.dataset = \"\(Self.dataset)\"",
                    "quantize.imatrix.entries_count = 56", "quantize.imatrix.chunks_count = 8"] {
            #expect(insp.contains(key), "\(key) missing from:\n\(insp.prefix(3000))")
        }
        let manifest = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
        #expect(manifest.contains("\"imatrix.gguf\"") && manifest.contains("\"imatrix.dat\""))
        let fromDat = try env.write("dat.yaml", "stages:\n  - export: {format: gguf, type: q5_k_s, imatrix: \(out)/imatrix.dat}\n")
        #expect(try env.squeeze(["run", "--model", model, "--recipe", fromDat, "--out", env.scratch + "/dat"]).status == 0)
        try sameAsLlamaCpp(env, model, env.scratch + "/dat/model-q5_k_s.gguf", ftype: 16, imatrix: out + "/imatrix.dat")
        // With error feedback (`gptq: true`): the same tensor types, other blocks.
        let fed = try env.write("fed.yaml", try String(contentsOfFile: recipe, encoding: .utf8).replacingOccurrences(of: "imatrix: true}", with: "imatrix: true, gptq: true}"))
        let f = try env.squeeze(["run", "--model", model, "--recipe", fed, "--out", env.scratch + "/fed"])
        #expect(f.status == 0, "\(f.stderr)")
        let a = try env.squeeze(["inspect", out + "/model-q4_k_m.gguf"]).stdout, b = try env.squeeze(["inspect", env.scratch + "/fed/model-q4_k_m.gguf"]).stdout
        let types = { (s: String) in s.split(separator: "\n").filter { $0.contains("blk.") }.map { $0.split(separator: " ").filter { $0.hasPrefix("Q") || $0.hasPrefix("F") } } }
        #expect(types(a) == types(b) && !types(a).isEmpty)
        let plainBytes = FileManager.default.contents(atPath: out + "/model-q4_k_m.gguf"), fedBytes = FileManager.default.contents(atPath: env.scratch + "/fed/model-q4_k_m.gguf")
        #expect(plainBytes != nil && fedBytes != nil && plainBytes != fedBytes)
    }

    /// (model, imatrix format, type, LLAMA_FTYPE_MOSTLY_*, pure): every type that uses an importance
    /// matrix, k-quants and IQ4_XS on the hidden-256 model (with its adversarial super-blocks), legacy
    /// types, IQ4_NL and the Q5_1/Q8_0 fallbacks on the hidden-64 one (Q5_0: SmolLM2's fallbacks in DecoderRecipeTests).
    static let cases: [(String, String, String, Int, Bool)] = [
        ("tiny-256", "dat", "q2_k", 10, true), ("tiny-256", "gguf", "q3_k_m", 12, false), ("tiny-256", "gguf", "q6_k", 18, false),
        ("tiny", "gguf", "q4_0", 2, true), ("tiny", "dat", "q4_1", 3, true), ("tiny", "dat", "q5_k_m", 17, false),
        ("tiny-256", "gguf", "iq4_xs", 30, false), ("tiny", "dat", "iq4_nl", 25, false),
    ]

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: cases.map(\.2))
    func anImatrixFromOutsideMatchesLlamaQuantize(type: String) throws {
        let env = try SqueezeEnv.create()
        let (dir, format, _, ftype, pure) = Self.cases.first { $0.2 == type }!
        let model = Self.llama! + "/\(dir)/model.gguf"
        let imatrix = env.scratch + "/outside.\(format)"
        #expect(try env.python("make_imatrix.py", [model, imatrix, "--seed", String(ftype)]).status == 0)
        let recipe = try env.write("r.yaml", "stages:\n  - export: {format: gguf, type: \(type), imatrix: \(imatrix)}\n")
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", env.scratch + "/o"])
        #expect(r.status == 0, "\(r.stderr)")
        try sameAsLlamaCpp(env, model, env.scratch + "/o/model-\(type).gguf", ftype: ftype, imatrix: imatrix, pure: pure)
    }

    /// An imatrix for another model (other names or column counts), a corrupt or missing file, and
    /// `imatrix: true` without calibration are refused at submit with the key named; no job is inserted.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func imatrixForAnotherModelIsRefusedAtSubmit() throws {
        let env = try SqueezeEnv.create()
        let tiny = Self.llama! + "/tiny/model.gguf", tiny256 = Self.llama! + "/tiny-256/model.gguf"
        let wide = env.scratch + "/wide.gguf", unknown = env.scratch + "/unknown.dat", columns = env.scratch + "/columns.gguf"
        #expect(try env.python("make_imatrix.py", [tiny256, wide]).status == 0)
        #expect(try env.python("make_imatrix.py", [tiny, unknown, "--unknown-name"]).status == 0)
        #expect(try env.python("make_imatrix.py", [tiny, columns, "--other-columns"]).status == 0)
        let corrupt = try env.write("corrupt.dat", "not an imatrix")
        for (file, expected) in [(wide, "has 256 columns, the model's blk.0.attn_k.weight has 64"), (unknown, "blk.99.attn_q.weight"), (columns, "has 65 columns, the model's"),
                                 (corrupt, "neither a GGUF imatrix nor a legacy .dat")] {
            let recipe = try env.write("bad.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, imatrix: \(file)}\n")
            let s = try env.squeeze(["submit", "--model", tiny, "--recipe", recipe])
            #expect(s.status != 0 && s.stderr.contains("stages[0].export.imatrix") && s.stderr.contains(expected), "\(file): \(s.stderr)")
            #expect(s.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(s.stderr)")
        }
        // A missing file fails the input-path check that runs before the recipe is read against the model.
        let absent = try env.write("absent.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, imatrix: \(env.scratch)/absent.dat}\n")
        let a = try env.squeeze(["submit", "--model", tiny, "--recipe", absent])
        #expect(a.status != 0 && a.stderr.contains("absent.dat: no such file"), "\(a.stderr)")
        let noCal = try env.write("nocal.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, imatrix: true}\n")
        let s = try env.squeeze(["submit", "--model", tiny, "--recipe", noCal])
        #expect(s.status != 0 && s.stderr.contains("stages[0].export.imatrix: true needs an earlier calibrate stage"), "\(s.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }

    /// An importance matrix with NaN, infinite, huge or negative values is refused at submit naming
    /// the entry (it would write NaN or zero blocks); an entry of zeros quantizes its matrix
    /// unweighted, as llama.cpp does, instead of zeroing it.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func poisonedImatrixEntriesAreRefusedOrIgnored() throws {
        let env = try SqueezeEnv.create()
        let tiny = Self.llama! + "/tiny-256/model.gguf"
        for (kind, expected) in [("nan", "column 0 is nan, not finite"), ("inf", "column 0 is inf, not finite"),
                                 ("huge", "column 0 is 1.953125e+35, over 1e30"),
                                 ("negative", "column 0 is -0.001953125, negative")] {
            for ext in ["gguf", "dat"] {
                let file = env.scratch + "/\(kind).\(ext)"
                #expect(try env.python("make_imatrix.py", [tiny, file, "--poison", kind]).status == 0)
                let recipe = try env.write("bad.yaml", "stages:\n  - export: {format: gguf, type: q4_k_m, imatrix: \(file)}\n")
                let s = try env.squeeze(["submit", "--model", tiny, "--recipe", recipe])
                #expect(s.status != 0, "\(kind).\(ext) accepted")
                #expect(s.stderr.contains("entry blk.0.attn_q.weight: \(expected)"), "\(kind).\(ext): \(s.stderr)")
            }
        }
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
        // Zeros: the same bytes as without any importance for that matrix, never a zeroed matrix.
        let zero = env.scratch + "/zero.gguf"
        #expect(try env.python("make_imatrix.py", [tiny, zero, "--poison", "zero"]).status == 0)
        var outputs = [String]()
        for (name, extra) in [("weighted", ", imatrix: \(zero)"), ("plain", "")] {
            let recipe = try env.write(name + ".yaml", "stages:\n  - export: {format: gguf, type: q4_k\(extra)}\n")
            let out = env.scratch + "/" + name
            let r = try env.squeeze(["run", "--model", tiny, "--recipe", recipe, "--out", out])
            #expect(r.status == 0, "\(r.stderr)")
            outputs.append(out + "/model-q4_k.gguf")
        }
        let c = try env.python("gguf_tensor_bytes.py", [outputs[0], outputs[1], "blk.0.attn_q.weight"])
        #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
    }
}
