import Foundation
import Testing
import TestSupport

/// Structured pruning, gradual (scheduled) magnitude pruning and low-rank factors through
/// `squeeze run` and the worker, checked by an independent numpy script, on the fixture model
/// and on the real MiniLM weights.
@Suite struct StructuredLowRankReferenceTests {
    static let minilm = ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"]

    struct Case: CustomStringConvertible, Sendable {
        let recipe: String
        let check: [String]
        var description: String { recipe }
    }

    static let cases = [
        Case(recipe: "- prune: {method: structured, dim: rows, norm: l2, sparsity: 0.25, targets: ['*.intermediate.dense.weight']}",
             check: ["structured", "--sparsity", "0.25", "--dim", "rows", "--norm", "l2", "--targets", "*.intermediate.dense.weight"]),
        Case(recipe: "- prune: {method: structured, dim: columns, norm: l1, sparsity: 0.4, targets: ['*.output.dense.weight']}",
             check: ["structured", "--sparsity", "0.4", "--dim", "columns", "--norm", "l1", "--targets", "*.output.dense.weight"]),
        Case(recipe: "- prune: {sparsity: 0.8, schedule: {steps: 4}, targets: ['encoder.*.weight'], ignore: ['*LayerNorm*']}",
             check: ["magnitude", "--sparsity", "0.8", "--targets", "encoder.*.weight", "--ignore", "*LayerNorm*"]),
        Case(recipe: "- lowrank: {energy: 0.9, output: factors, targets: ['*.intermediate.dense.weight']}",
             check: ["lowrank", "--energy", "0.9", "--form", "factors", "--targets", "*.intermediate.dense.weight"]),
        Case(recipe: "- lowrank: {rank: 48, output: dense, targets: ['*.query.weight', '*.output.dense.weight']}",
             check: ["lowrank", "--rank", "48", "--form", "dense", "--targets", "*.query.weight", "*.output.dense.weight"]),
    ]

    func runAndCheck(_ c: Case, model: String, env: SqueezeEnv) throws {
        let recipe = try env.write("r.yaml", "stages:\n  \(c.recipe)\n  - export: {format: safetensors}\n")
        var outs = [String]()
        for t in ["2", "1"] {
            let out = env.scratch + "/out-t\(t)"
            let r = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", out, "--threads", t])
            #expect(r.status == 0, "\(c): \(r.stderr)")
            outs.append(out + "/model.safetensors")
        }
        let input = model.hasSuffix(".safetensors") ? model : model + "/model.safetensors"
        let check = try env.python("check_structured_lowrank.py", [input, outs[0]] + c.check)
        #expect(check.status == 0, "\(c): \(check.stdout.prefix(1500)) \(check.stderr.suffix(500))")
        #expect(FileManager.default.contents(atPath: outs[0]) == FileManager.default.contents(atPath: outs[1]), "1 and 2 threads differ: \(c)")
    }

    @Test(arguments: cases)
    func fixtureModelMatchesNumpy(_ c: Case) throws {
        let env = try SqueezeEnv.create()
        try runAndCheck(c, model: try env.makeModel(), env: env)
    }

    @Test(.enabled(if: minilm != nil, "needs SQUEEZE_MINILM_DIR (set by ops/test)"), arguments: cases)
    func miniLMMatchesNumpy(_ c: Case) throws {
        let env = try SqueezeEnv.create()
        try runAndCheck(c, model: Self.minilm!, env: env)
    }

    /// The worker writes the same factors as `squeeze run`, records each unit's rank in SQL, and
    /// refuses at submit a recipe that would quantize factors.
    @Test func workerRecordsRanksAndRefusesQuantizedFactors() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("lr.yaml", """
            stages:
              - lowrank: {rank: 16, output: factors, targets: ['*.intermediate.dense.weight']}
              - export: {format: safetensors}
              - export: {format: gguf, type: q8_0}
            """)
        let id = try env.submit(["--model", model, "--recipe", recipe])
        let w = try env.squeeze(["worker", "--exit-when-idle"], timeout: 120)
        #expect(w.status == 0, "\(w.stderr)")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = '\(id)'") == "succeeded")
        #expect(try env.scalar("SELECT string_agg(DISTINCT rank::text, ',') FROM layer_metrics WHERE job_id = '\(id)' AND rank IS NOT NULL") == "16")
        #expect(try env.scalar("SELECT count(*) FROM layer_metrics WHERE job_id = '\(id)' AND rank IS NOT NULL") == "2")
        let local = try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", env.scratch + "/local"])
        #expect(local.status == 0, "\(local.stderr)")
        for f in ["model.safetensors", "model-q8_0.gguf"] {
            #expect(FileManager.default.contents(atPath: env.artifactRoot + "/artifacts/\(id)/attempt-1/\(f)")
                == FileManager.default.contents(atPath: env.scratch + "/local/\(f)"), "\(f)")
        }
        let art = try env.python("check_artifacts.py", [env.artifactRoot + "/artifacts/\(id)/attempt-1"])
        #expect(art.status == 0, "\(art.stdout)")
        let bad = try env.write("bad.yaml", """
            stages:
              - lowrank: {rank: 16, output: factors, targets: ['*.intermediate.dense.weight']}
              - quantize: {bits: 8, targets: ['encoder.*.weight'], ignore: ['*LayerNorm*']}
              - export: {format: compressed}
            """)
        let refused = try env.squeeze(["submit", "--model", model, "--recipe", bad])
        #expect(refused.status != 0 && refused.stderr.contains("stages[1].quantize.targets: matches encoder.layer.0.intermediate.dense.weight"),
                "\(refused.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "1")
    }

    @Test func scheduleCommandPrintsTheCubicSteps() throws {
        let env = try SqueezeEnv.create()
        let r = try env.squeeze(["schedule", "--sparsity", "0.8", "--steps", "4", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let steps = obj?["steps"] as? [Double] ?? []
        #expect(steps.count == 4 && zip(steps, [0.4625, 0.7, 0.7875, 0.8]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(r.stdout)")
        let bad = try env.squeeze(["schedule", "--sparsity", "0.5", "--steps", "3", "--initial", "0.6"])
        #expect(bad.status != 0 && bad.stderr.contains("--initial 0.6 is not in [0, --sparsity]"), "\(bad.stderr)")
    }
}
