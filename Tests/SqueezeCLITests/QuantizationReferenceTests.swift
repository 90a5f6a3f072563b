import Foundation
import Testing
import TestSupport

/// RTN quantization and the compressed export, decoded and recomputed by an independent numpy script.
@Suite struct QuantizationReferenceTests {
    static let configs = [
        "bits: 8, scheme: symmetric, granularity: channel",
        "bits: 8, scheme: asymmetric, granularity: tensor",
        "bits: 4, scheme: symmetric, group_size: 32",
        "bits: 4, scheme: asymmetric, group_size: 128",
        "bits: 3, scheme: asymmetric, group_size: 64",
        "bits: 2, scheme: symmetric, granularity: channel",
    ]

    @Test(arguments: configs)
    func compressedExportMatchesNumpy(_ cfg: String) throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("q.yaml", """
            stages:
              - quantize: {\(cfg), targets: ["*.weight"], ignore: ["*embeddings*", "*LayerNorm*"]}
              - export: {format: compressed}
              - export: {format: safetensors}
            """)
        let out = env.scratch + "/out"
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out, "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try env.python("decode_compressed.py", [model, out + "/model.compressed.safetensors", "--dense", out + "/model.safetensors"])
        #expect(c.status == 0, "\(cfg): \(c.stdout) \(c.stderr)")
        #expect(c.stdout.contains("\"checked\": 6"), "\(c.stdout)")
        // Same bytes with one thread.
        let out1 = env.scratch + "/out1"
        #expect(try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out1, "--threads", "1"]).status == 0)
        #expect(FileManager.default.contents(atPath: out + "/model.compressed.safetensors")
            == FileManager.default.contents(atPath: out1 + "/model.compressed.safetensors"))
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"] != nil))
    func int4GroupsOnRealMiniLM() throws {
        let env = try SqueezeEnv.create()
        let dir = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]!
        let out = env.scratch + "/minilm"
        let r = try env.squeeze(["run", "--model", dir, "--recipe", TestConfiguration.repoRoot + "/recipes/int4-g128.yaml", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try env.python("decode_compressed.py", [dir + "/model.safetensors", out + "/model.compressed.safetensors"])
        #expect(c.status == 0, "\(c.stdout)")
    }

    @Test func validationNamesThePath() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        for (text, want) in [
            ("stages:\n  - prune: {sparsity: 0.5}\n  - quantize: {bits: 5}\n  - export: {}\n", "stages[1].quantize.bits: 5 is not one of 2, 3, 4, 8"),
            ("stages:\n  - quantize: {bits: 4, group_size: 48}\n  - export: {format: compressed}\n", "stages[0].quantize.group_size: 48 is not one of 32, 64, 128"),
            ("stages:\n  - export: {format: compressed}\n", "a compressed export needs a quantize stage"),
        ] {
            let recipe = try env.write("bad.yaml", text)
            let r = try env.squeeze(["submit", "--model", model, "--recipe", recipe])
            #expect(r.status != 0 && r.stderr.contains(want), "\(r.stderr)")
        }
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }
}
