import Foundation
import Testing
import TestSupport

/// Global magnitude pruning with a per-tensor minimum density, checked against a numpy reference.
@Suite struct GlobalPruningTests {
    @Test(arguments: [(0.5, 0.0), (0.5, 0.3), (0.9, 0.2), (0.3, 0.8)])
    func matchesNumpy(sparsity: Double, minKeep: Double) throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("g.yaml", """
            stages:
              - prune: {method: magnitude, scope: global, sparsity: \(sparsity), min_keep: \(minKeep), targets: ["*.weight"], ignore: ["*LayerNorm*"]}
              - export: {format: safetensors}
            """)
        for threads in ["1", "2"] {
            let out = env.scratch + "/out\(threads)"
            let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out, "--threads", threads])
            #expect(r.status == 0, "\(r.stderr)")
            let c = try env.python("check_global.py", [model, out + "/model.safetensors", "--sparsity", "\(sparsity)", "--min-keep", "\(minKeep)",
                                                       "--targets", "*.weight", "--ignore", "*LayerNorm*"])
            #expect(c.status == 0, "\(c.stdout)")
        }
        #expect(FileManager.default.contents(atPath: env.scratch + "/out1/model.safetensors")
            == FileManager.default.contents(atPath: env.scratch + "/out2/model.safetensors"))
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"] != nil))
    func realMiniLM() throws {
        let env = try SqueezeEnv.create()
        let dir = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]!
        let recipe = TestConfiguration.repoRoot + "/recipes/global-50.yaml"
        let r = try env.squeeze(["run", "--model", dir, "--recipe", recipe, "--out", env.scratch + "/g"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try env.python("check_global.py", [dir + "/model.safetensors", env.scratch + "/g/model.safetensors", "--sparsity", "0.5",
                                                   "--min-keep", "0.2", "--targets", "encoder.*.weight", "--ignore", "*LayerNorm*"])
        #expect(c.status == 0, "\(c.stdout)")
    }

    @Test func globalMustComeFirst() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("bad.yaml", "stages:\n  - prune: {method: nm, n: 2, m: 4}\n  - prune: {sparsity: 0.5, scope: global}\n  - export: {}\n")
        let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", env.scratch + "/x"])
        #expect(r.status != 0 && r.stderr.contains("stages[1].prune.scope"), "\(r.stderr)")
    }
}
