import Foundation
import Queue
import Testing
import TestSupport

/// Inputs that used to crash, hang or exhaust the CLI or a worker: a model rewritten mid-job,
/// FIFOs, hostile YAML, unbounded shapes, NUL bytes, out-of-range manifest fields.
@Suite struct HostileInputTests {
    /// The hostile corpus (Tests/reference/hostile_inputs.py), written once per test run.
    /// Made once per run by whichever test process gets there first (`MadeOnce`: the fuzz stage and
    /// this suite may run in different processes).
    static let corpus: String = {
        let d = TestConfiguration.scratch + "/hostile-corpus"
        _ = MadeOnce.directory(d) { building in
            let r = try? ProcessRunner.run(TestConfiguration.python, [TestConfiguration.repoRoot + "/Tests/reference/hostile_inputs.py", building])
            return r?.status == 0
        }
        return d
    }()

    func jobs(_ env: SqueezeEnv) throws -> String? { try env.scalar("SELECT count(*) FROM jobs") }

    /// Runs the CLI and checks it refused with one line containing `fragment`, quickly, without a signal.
    func expectRefused(_ env: SqueezeEnv, _ args: [String], _ fragment: String, extraEnv: [String: String] = [:],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let t0 = Date()
        let r = try ProcessRunner.run(TestConfiguration.checkedBinary, args, env: env.environment.merging(extraEnv) { $1 }, timeout: 20)
        let line = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.status == 1, "exit \(r.status) for \(args): \(line)", sourceLocation: sourceLocation)
        #expect(line.contains(fragment), "\(args): \(line)", sourceLocation: sourceLocation)
        #expect(!line.contains("\n"), "\(line)", sourceLocation: sourceLocation)
        #expect(!line.contains("NSCocoaErrorDomain"), "\(line)", sourceLocation: sourceLocation)
        #expect(Date().timeIntervalSince(t0) < 10, "\(args) took \(Date().timeIntervalSince(t0)) s", sourceLocation: sourceLocation)
    }

    @Test func aModelTruncatedMidJobFailsThatJobAndTheWorkerTakesTheNext() throws {
        let env = try SqueezeEnv.create(checked: true)
        let a = try env.makeModel("a.safetensors"), b = try env.makeModel("b.safetensors")
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let first = try env.submit(["--model", a, "--recipe", recipe, "--priority", "10"])
        let second = try env.submit(["--model", b, "--recipe", recipe])
        let w = try env.startSqueeze(["worker", "--exit-when-idle", "--lease-seconds", "5", "--unit-delay-ms", "250"])
        let started = try waitUntil(timeout: 60) { (Int(try env.scalar("SELECT units_done FROM jobs WHERE id = $1::uuid", [first]) ?? "0") ?? 0) >= 2 }
        #expect(started)
        // What `cp new.safetensors a.safetensors` does first: the file shrinks under the reader.
        let size = (try FileManager.default.attributesOfItem(atPath: a)[.size] as? NSNumber)?.intValue ?? 0
        #expect(truncate(a, off_t(size * 4 / 10)) == 0)
        #expect(w.wait(timeout: 120))
        let r = w.finish()
        #expect(r.status == 0, "worker died: \(r.status) \(r.stderr.suffix(600))")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [first]) == "failed")
        #expect(try env.scalar("SELECT error_code FROM jobs WHERE id = $1::uuid", [first]) == "input_changed")
        #expect(try env.scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1::uuid", [first]) == "1")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [second]) == "succeeded")
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/artifacts/\(first)"))
    }

    @Test func fifosAreRefusedEverywhereWithoutBlocking() throws {
        let env = try SqueezeEnv.create(checked: true)
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        let fifo = env.scratch + "/fifo.safetensors"
        #expect(mkfifo(fifo, 0o644) == 0)
        try expectRefused(env, ["inspect", fifo], "FIFO")
        try expectRefused(env, ["run", "--model", fifo, "--recipe", recipe, "--out", env.scratch + "/out"], "FIFO")
        try expectRefused(env, ["submit", "--model", fifo, "--recipe", recipe], "FIFO")
        let model = try env.makeModel()
        let fifoRecipe = env.scratch + "/fifo.yaml"
        #expect(mkfifo(fifoRecipe, 0o644) == 0)
        try expectRefused(env, ["submit", "--model", model, "--recipe", fifoRecipe], "FIFO")
        try expectRefused(env, ["submit", "--manifest", fifoRecipe], "FIFO")
        // A FIFO among a model directory's files is named, not retried as a transient I/O error.
        let dir = env.scratch + "/dir-model"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: model, toPath: dir + "/model.safetensors")
        #expect(mkfifo(dir + "/config.json", 0o644) == 0)
        try expectRefused(env, ["submit", "--model", dir, "--recipe", recipe], "config.json: model file is a FIFO")
        #expect(try jobs(env) == "0")
        // Swapped in after submit: the job fails for good, the worker is not blocked.
        let swapped = try env.makeModel("swapped.safetensors")
        let id = try env.submit(["--model", swapped, "--recipe", recipe, "--no-checksum"])
        try FileManager.default.removeItem(atPath: swapped)
        #expect(mkfifo(swapped, 0o644) == 0)
        let w = try env.squeeze(["worker", "--exit-when-idle", "--lease-seconds", "5"], timeout: 60)
        #expect(w.status == 0, "\(w.stderr.suffix(500))")
        #expect(try env.scalar("SELECT error_code FROM jobs WHERE id = $1::uuid", [id]) == "not_regular_file")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "failed")
    }

    @Test(arguments: [
        ("laughs.yaml", "a0: unknown key (allowed: stages, version)"),
        ("laughs-in-stage.yaml", "document expands to more than 1393 values"),
        ("complex-key.yaml", "unknown key (allowed: stages, version)"),
        ("complex-key-in-stage.yaml", "stages[0].prune: a mapping key must be a plain string"),
        ("deep-flow.yaml", "nesting deeper than 32 levels"),
        ("recipe-2mb.yaml", "over the 1048576-byte limit"),
    ])
    func hostileRecipesAreRefusedQuickly(_ file: String, _ fragment: String) throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try env.makeModel()
        try expectRefused(env, ["submit", "--model", model, "--recipe", Self.corpus + "/" + file], fragment)
        try expectRefused(env, ["run", "--model", model, "--recipe", Self.corpus + "/" + file, "--out", env.scratch + "/o"], fragment)
        #expect(try jobs(env) == "0")
    }

    @Test func hostileManifestsAreRefusedQuickly() throws {
        let env = try SqueezeEnv.create(checked: true)
        try expectRefused(env, ["submit", "--manifest", Self.corpus + "/manifest-laughs.yaml"], "document expands to more than")
        try expectRefused(env, ["submit", "--manifest", Self.corpus + "/manifest-complex-key.yaml"], "mapping key must be a plain string")
        let big = env.scratch + "/big-manifest.yaml"
        FileManager.default.createFile(atPath: big, contents: nil)
        #expect(truncate(big, 65 << 20) == 0)
        try expectRefused(env, ["submit", "--manifest", big], "over the 67108864-byte limit")
        #expect(try jobs(env) == "0")
    }

    @Test func shapesBeyondTheFormatsAreRefusedAtSubmit() throws {
        let env = try SqueezeEnv.create(checked: true)
        let gguf = try env.write("gguf.yaml", "stages:\n  - export: {format: gguf, type: q8_0}\n")
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        let roots = ["SQUEEZE_INPUT_ROOTS": Self.corpus]
        try expectRefused(env, ["submit", "--model", Self.corpus + "/dims-2m.safetensors", "--recipe", dense], "more than 8 dimensions", extraEnv: roots)
        try expectRefused(env, ["submit", "--model", Self.corpus + "/dims-9.safetensors", "--recipe", dense], "more than 8 dimensions", extraEnv: roots)
        try expectRefused(env, ["submit", "--model", Self.corpus + "/dims-5.safetensors", "--recipe", gguf],
                          "tensor t.weight has 5 dimensions [2, 2, 2, 2, 32]; GGUF holds at most 4", extraEnv: roots)
        #expect(try jobs(env) == "0")
        let ok = try ProcessRunner.run(TestConfiguration.checkedBinary, ["submit", "--dry-run", "--model", Self.corpus + "/dims-5.safetensors", "--recipe", dense],
                                       env: env.environment.merging(roots) { $1 })
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func namesWithNULAndOutOfRangeFieldsGetPreciseErrors() throws {
        let env = try SqueezeEnv.create(checked: true)
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        try expectRefused(env, ["submit", "--model", Self.corpus + "/nul-name.safetensors", "--recipe", recipe],
                          #"tensor name "x.weight\u{0}evil" contains a NUL byte"#, extraEnv: ["SQUEEZE_INPUT_ROOTS": Self.corpus])
        let nulPattern = try env.write("nul.yaml", "stages:\n  - prune: {sparsity: 0.5, targets: [\"x\\0y\"]}\n  - export: {format: safetensors}\n")
        try expectRefused(env, ["submit", "--model", model, "--recipe", nulPattern], "stages[0].prune.targets[0]: \"x\\u{0}y\" contains a NUL byte")
        func manifest(_ name: String, _ fields: String) throws -> String {
            try env.write(name, "- {model: model.safetensors, recipe: recipe.yaml, \(fields)}\n")
        }
        try expectRefused(env, ["submit", "--manifest", try manifest("m1.yaml", "key: \"a\\0b\"")], "key \"a\\u{0}b\" contains a NUL byte")
        try expectRefused(env, ["submit", "--manifest", try manifest("m2.yaml", "priority: \"5\"")], "priority must be an integer in -1000...1000, not the string \"5\"")
        try expectRefused(env, ["submit", "--manifest", try manifest("m3.yaml", "priority: 1e20")], "priority must be an integer")
        try expectRefused(env, ["submit", "--manifest", try manifest("m4.yaml", "key: [1, 2]")], "key must be a string, not a list")
        try expectRefused(env, ["submit", "--manifest", try manifest("m5.yaml", "max_attempts: 9999999999")], "max_attempts 9999999999 is out of 1...1000")
        let flag = try env.squeeze(["submit", "--model", model, "--recipe", recipe, "--max-attempts", "9999999999"])
        #expect(flag.status != 0 && flag.stderr.contains("--max-attempts must be in 1...1000"), "\(flag.stderr)")
        // A directory where a weights file should be, and a pseudo-file: errors name the file.
        let dir = env.scratch + "/dir-as-file"
        try FileManager.default.createDirectory(atPath: dir + "/model.safetensors", withIntermediateDirectories: true)
        try expectRefused(env, ["submit", "--model", dir, "--recipe", recipe], "model.safetensors: model file is a directory")
        try expectRefused(env, ["inspect", "/proc/self/mem"], "/proc/self/mem")
        try expectRefused(env, ["inspect", Self.corpus + "/dtype-not-string.safetensors"], "tensor t: dtype must be a string")
        #expect(try jobs(env) == "0")
        // Batch names are printed escaped: a newline in a name cannot forge a line of `status`.
        let ok = try manifest("ok.yaml", "key: k1")
        #expect(try env.squeeze(["submit", "--manifest", ok, "--batch-name", "evil\nFORGED"]).status == 0)
        let st = try env.squeeze(["status"])
        #expect(st.stdout.contains("evil\\nFORGED"), "\(st.stdout)")
        #expect(!st.stdout.split(separator: "\n").contains { $0.hasPrefix("FORGED") })
    }
}
