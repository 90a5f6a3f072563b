import Foundation
import Queue
import Testing
import TestSupport

let foundationRecipe = """
    stages:
      - prune: {method: magnitude, sparsity: 0.5, targets: ["*.weight"], ignore: ["*embeddings*", "*LayerNorm*"]}
      - export: {format: safetensors}
    """

/// Pruning, then a dense and a GGUF export of the pruned weights.
let pruneDenseGGUFRecipe = """
    stages:
      - prune: {method: magnitude, sparsity: 0.5, targets: ["*.weight"], ignore: ["*embeddings*", "*LayerNorm*"]}
      - export: {format: safetensors}
      - export: {format: gguf, type: q8_0}
    """

extension SqueezeEnv {
    /// Makes the Python fixture model and returns its path.
    func makeModel(_ name: String = "model.safetensors", extra: [String] = []) throws -> String {
        let p = scratch + "/" + name
        let r = try python("make_model.py", [p] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return p
    }

    /// Submits and returns the job id (expects success).
    func submit(_ args: [String]) throws -> String {
        let r = try squeeze(["submit"] + args)
        #expect(r.status == 0, "submit failed: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs one worker until idle.
    @discardableResult
    func drain(_ extra: [String] = []) throws -> ProcessResult {
        let r = try squeeze(["worker", "--exit-when-idle", "--lease-seconds", "5"] + extra, timeout: 300)
        #expect(r.status == 0, "worker exited \(r.status): \(r.stderr.suffix(2000))")
        return r
    }

    /// Kills a worker running job `id` with SIGKILL three times, each once 1 to 3 more units are checkpointed,
    /// then finishes the job with one more worker; expects it succeeded.
    func finishAfterKills(_ id: String) throws {
        func checkpoints() -> Int {
            Int((try? scalar("SELECT count(*) FROM job_checkpoints WHERE job_id = $1::uuid", [id])) ?? "0") ?? 0
        }
        for kill in 0..<3 {
            let w = try startSqueeze(["worker", "--lease-seconds", "1", "--unit-delay-ms", "40"])
            let target = checkpoints() + Int.random(in: 1...3)
            let reached = waitUntil(timeout: 120) { checkpoints() >= target }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.1))
            w.signal(SIGKILL)
            #expect(w.wait(timeout: 10))
            _ = w.finish()
            #expect(reached, "kill \(kill): no progress to \(target) checkpoints")
        }
        let last = try startSqueeze(["worker", "--lease-seconds", "1", "--exit-when-idle"])
        #expect(last.wait(timeout: 300))
        #expect(last.finish().status == 0)
        #expect(try scalar("SELECT state FROM jobs WHERE id = $1::uuid", [id]) == "succeeded")
    }

    func scalar(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> String? {
        try query(sql, params).first?.values.first ?? nil
    }
}
