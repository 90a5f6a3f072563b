import Foundation
import Testing
import TestSupport

/// Bad input gets a one-line error and loses nothing.
@Suite struct BadInputTests {
    @Test func submitRefusesAMissingModel() throws {
        let env = try SqueezeEnv.create(checked: true)
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let r = try env.squeeze(["submit", "--model", env.scratch + "/absent.safetensors", "--recipe", recipe])
        #expect(r.status != 0)
        #expect(r.stderr.contains("model not found"))
        #expect(r.stderr.contains("absent.safetensors"))
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }

    @Test(arguments: [
        ("stages:\n  - shrink: {sparsity: 0.5}\n  - export: {format: safetensors}\n", "stages[0].shrink: unknown stage"),
        ("stages:\n  - prune: {method: magnitude, sparsity: 1.5}\n  - export: {format: safetensors}\n", "stages[0].prune.sparsity: 1.5 is not in [0, 1)"),
        ("stages:\n  - prune: {sparsity: 0.5, targets: ['nothing.*']}\n  - export: {}\n", "stages[0].prune.targets"),
    ])
    func submitRefusesABadRecipe(_ text: String, _ expected: String) throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try env.makeModel()
        let recipe = try env.write("bad.yaml", text)
        let r = try env.squeeze(["submit", "--model", model, "--recipe", recipe])
        #expect(r.status != 0)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
        #expect(try env.scalar("SELECT count(*) FROM job_events") == "0")
    }

    @Test func aTruncatedModelFailsTheJobAndPublishesNothing() throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try env.makeModel("trunc.safetensors", extra: ["--truncate", "1000"])
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe])
        try env.drain()
        let show = try env.squeeze(["show", id])
        #expect(show.stdout.contains("state     failed"))
        #expect(show.stdout.contains("truncated"), "\(show.stdout)")
        #expect(try env.scalar("SELECT error_code FROM jobs WHERE id = $1::uuid", [id]) == "corrupt_data")
        // Permanent: one attempt, no retry.
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [id]) == "1")
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/artifacts/\(id)"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: env.artifactRoot + "/staging").isEmpty)
        #expect(try env.scalar("SELECT count(*) FROM artifacts") == "0")
    }

    @Test func deadServersGiveOneLineErrors() throws {
        let env = try SqueezeEnv.create(checked: true)
        let r = try ProcessRunner.run(TestConfiguration.checkedBinary, ["status"],
                                      env: ["SQUEEZE_DATABASE_URL": "postgres://postgres@127.0.0.1:1/x"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot connect to PostgreSQL"))
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        _ = env
    }
}
