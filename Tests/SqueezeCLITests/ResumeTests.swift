import Foundation
import Queue
import Testing
import TestSupport

/// A job killed at random units, three times in a row, resumes from its checkpoints and
/// publishes files byte-identical to an uninterrupted `squeeze run`.
@Suite struct ResumeTests {
    func checkpoints(_ env: SqueezeEnv, _ id: String) throws -> [String: String] {
        var out = [String: String]()
        for r in try env.query("SELECT unit, attempt FROM job_checkpoints WHERE job_id = $1::uuid", [id]) {
            out[r["unit"]!] = r["attempt"]!
        }
        return out
    }

    @Test func killedThreeTimesResumesByteIdentically() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("both.yaml", pruneDenseGGUFRecipe)
        let id = try env.submit(["--model", model, "--recipe", recipe, "--max-attempts", "6"])
        var seen = [String: String]()
        for kill in 0..<3 {
            let w = try env.startSqueeze(["worker", "--lease-seconds", "2", "--unit-delay-ms", "150"])
            let before = try checkpoints(env, id).count
            let target = before + Int.random(in: 1...3)
            let reached = waitUntil(timeout: 60) { ((try? checkpoints(env, id).count) ?? 0) >= target }
            w.signal(SIGKILL)
            #expect(w.wait(timeout: 10))
            _ = w.finish()
            #expect(reached, "kill \(kill): no progress to \(target) checkpoints")
            for (u, a) in try checkpoints(env, id) { if seen[u] == nil { seen[u] = a } }
        }
        #expect(seen.count >= 3)
        let last = try env.startSqueeze(["worker", "--lease-seconds", "2", "--exit-when-idle"])
        #expect(last.wait(timeout: 90))
        #expect(last.finish().status == 0)
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
        #expect(try env.scalar("SELECT attempt FROM jobs WHERE id = $1::uuid", [id]) == "4")
        // Units checkpointed before a kill were never recomputed: same computing attempt at the end.
        let final = try checkpoints(env, id)
        for (u, a) in seen { #expect(final[u] == a, "unit \(u) recomputed: attempt \(a) -> \(final[u] ?? "none")") }
        let units = try env.scalar("SELECT detail::text FROM job_events WHERE job_id = $1::uuid AND kind = 'units'", [id]) ?? "{}"
        let d = try JSONSerialization.jsonObject(with: Data(units.utf8)) as! [String: Int]
        #expect(d["restored"] == seen.count, "\(units)")
        #expect(d["computed"]! + d["restored"]! == 12, "\(units)")
        // Byte-identical to an uninterrupted local run.
        let local = env.scratch + "/local"
        #expect(try env.squeeze(["run", "--model", model, "--recipe", recipe, "--out", local]).status == 0)
        for f in ["model.safetensors", "model-q8_0.gguf"] {
            let a = FileManager.default.contents(atPath: env.artifactRoot + "/artifacts/\(id)/attempt-4/\(f)")
            #expect(a != nil && a == FileManager.default.contents(atPath: local + "/" + f), "\(f) differs")
        }
        #expect(!FileManager.default.fileExists(atPath: env.artifactRoot + "/work/\(id)"))
        #expect(try env.scalar("SELECT count(*) FROM layer_metrics WHERE job_id = $1::uuid", [id]) == "13")
    }
}
