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

    func scalar(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> String? {
        try db.connect().query(sql, params).first?.values.first ?? nil
    }
}
