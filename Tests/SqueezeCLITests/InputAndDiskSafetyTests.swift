import Foundation
import Queue
import Testing
import TestSupport

/// Inputs only from allowed roots; a changed model is refused; a full disk publishes nothing.
@Suite struct InputAndDiskSafetyTests {
    func count(_ env: SqueezeEnv, _ sql: String, _ params: [PostgresEncodable?] = []) throws -> Int {
        Int(try env.scalar(sql, params) ?? "-1") ?? -1
    }

    @Test func modelsOutsideTheInputRootsAreRefused() throws {
        let env = try SqueezeEnv.create(checked: true)
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let outside = "/tmp/squeeze-outside-\(UUID().uuidString.prefix(8)).safetensors"
        #expect(try env.python("make_model.py", [outside]).status == 0)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let r = try env.squeeze(["submit", "--model", outside, "--recipe", recipe])
        #expect(r.status != 0)
        #expect(r.stderr.contains("outside the allowed input roots"), "\(r.stderr)")
        // A symlink inside an allowed root that points outside is refused too.
        let link = env.artifactRoot + "/models/escape.safetensors"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        let r2 = try env.squeeze(["submit", "--model", link, "--recipe", recipe])
        #expect(r2.status != 0 && r2.stderr.contains("resolves to"), "\(r2.stderr)")
        #expect(try count(env, "SELECT count(*) FROM jobs") == 0)
        // The same file under <artifact root>/models is accepted by default; --input-root adds a root.
        try FileManager.default.copyItem(atPath: outside, toPath: env.artifactRoot + "/models/ok.safetensors")
        #expect(try env.squeeze(["submit", "--model", env.artifactRoot + "/models/ok.safetensors", "--recipe", recipe]).status == 0)
        #expect(try env.squeeze(["submit", "--model", outside, "--recipe", recipe, "--input-root", "/tmp"]).status == 0)
    }

    @Test func aWorkerEnforcesItsOwnInputRoots() throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe])
        // This worker allows only <artifact root>/models: the job is refused, permanently.
        let w = try ProcessRunner.run(TestConfiguration.checkedBinary, ["worker", "--exit-when-idle"],
                                      env: env.environment.merging(["SQUEEZE_INPUT_ROOTS": ""]) { $1 })
        #expect(w.status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "failed")
        #expect(try env.scalar("SELECT error_code FROM jobs WHERE id = $1::uuid", [id]) == "path_not_allowed")
    }

    @Test func aModelReplacedAfterSubmitIsRefused() throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe])
        #expect(try env.python("make_model.py", [model, "--seed", "2"]).status == 0)  // same layout, other weights
        try env.drain()
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "failed")
        #expect(try env.scalar("SELECT error_code FROM jobs WHERE id = $1::uuid", [id]) == "checksum_mismatch")
        #expect(try env.scalar("SELECT error FROM jobs WHERE id = $1::uuid", [id])?.contains("model changed since submit") == true)
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/artifacts/\(id)"))
    }

    static var canMountTmpfs: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount") }

    @Test(.enabled(if: canMountTmpfs, "needs root to mount a small tmpfs as a full disk"))
    func aFullDiskFailsTheJobAndPublishesNothing() throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let root = env.scratch + "/tiny-root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let m = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", root])
        try #require(m.status == 0, "mount failed: \(m.stderr)")
        defer { _ = try? ProcessRunner.run("/bin/umount", [root]) }
        let id = try env.submit(["--model", model, "--recipe", recipe, "--max-attempts", "2"])
        let w = try ProcessRunner.run(TestConfiguration.checkedBinary, ["worker", "--exit-when-idle", "--retry-base-seconds", "0.1"],
                                      env: env.environment.merging(["SQUEEZE_ARTIFACT_ROOT": root]) { $1 })
        #expect(w.status == 0, "\(w.stderr.suffix(800))")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "dead")
        let err = try env.scalar("SELECT error FROM jobs WHERE id = $1::uuid", [id]) ?? ""
        #expect(err.contains("No space left on device"), "\(err)")
        #expect(!err.contains("\n"))
        #expect(try count(env, "SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid AND error LIKE '%No space%'", [id]) == 2)
        #expect(!FileManager.default.fileExists(atPath: root + "/artifacts/\(id)"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: root + "/staging")) ?? []).isEmpty)
        #expect(try count(env, "SELECT count(*) FROM artifacts") == 0)
    }
}
