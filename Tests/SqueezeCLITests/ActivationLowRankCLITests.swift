import Foundation
import Testing
import TestSupport

/// `lowrank` with `svd-llm` and `asvd` through the CLI on the tiny random Llama: the ranks `ratio`
/// asks for (uniform: the formula; global: one budget), the same bytes for any thread count, and
/// targets that are not linear layers refused at submit.
@Suite struct ActivationLowRankCLITests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    func ranks(_ out: String) throws -> [String: (rank: Int, shape: [Int])] {
        let m = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: out + "/manifest.json") ?? Data()) as? [String: Any]
        var r = [String: (rank: Int, shape: [Int])]()
        for l in m?["layers"] as? [[String: Any]] ?? [] {
            if let k = l["rank"] as? Int, let n = l["tensor"] as? String { r[n] = (k, l["shape"] as? [Int] ?? []) }
        }
        return r
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func ratiosGiveTheirRanksOnAnyThreadCount() throws {
        let env = try SqueezeEnv.create()
        let model = Self.llama! + "/tiny/hf"
        let data = try env.write("cal.txt", String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 200))
        func recipe(_ lowrank: String) throws -> String {
            try env.write("r.yaml", """
                stages:
                  - calibrate: {dataset: \(data), samples: 4, seq_len: 32}
                  - lowrank: {\(lowrank), targets: ["blk.*.weight"], ignore: ["*norm*"]}
                  - export: {format: safetensors}
                """)
        }
        var outputs = [String: Data]()
        for (name, lowrank) in [("uniform", "method: svd-llm, ratio: 0.3"), ("global", "method: svd-llm, ratio: 0.3, allocation: global"),
                                ("asvd", "method: asvd, ratio: 0.3, alpha: 0.5")] {
            let r = try recipe(lowrank)
            for threads in ["1", "2"] {
                let out = env.scratch + "/\(name)-\(threads)"
                let run = try env.squeeze(["run", "--model", model, "--recipe", r, "--out", out, "--threads", threads])
                #expect(run.status == 0, "\(name): \(run.stderr)")
                let bytes = FileManager.default.contents(atPath: out + "/model.safetensors")
                if let first = outputs[name] { #expect(bytes == first, "\(name): threads change the output") } else { outputs[name] = bytes }
            }
            let ranks = try ranks(env.scratch + "/\(name)-2")
            #expect(ranks.count == 14, "\(name): \(ranks.keys.sorted())")
            let params = ranks.values.reduce(0) { $0 + $1.rank * ($1.shape[0] + $1.shape[1]) }
            let dense = ranks.values.reduce(0) { $0 + $1.shape[0] * $1.shape[1] }
            #expect(Double(params) <= 0.7 * Double(dense), "\(name): \(params) of \(dense)")
            if name != "global" {
                for (t, v) in ranks {
                    let (m, n) = (v.shape[0], v.shape[1])
                    #expect(v.rank == Int((0.7 * Double(m * n) / Double(m + n)).rounded(.down)), "\(t): \(v)")
                }
            } else {
                #expect(Set(ranks.values.map(\.rank)).count > 2, "global ranks: \(ranks.mapValues(\.rank))")
            }
        }
        let wide = try env.write("wide.yaml", """
            stages:
              - calibrate: {dataset: \(data), samples: 4, seq_len: 32}
              - lowrank: {method: svd-llm, ratio: 0.3, targets: ["*.weight"], ignore: ["*norm*"]}
              - export: {format: safetensors}
            """)
        let s = try env.squeeze(["submit", "--model", model, "--recipe", wide, "--dry-run"])
        #expect(s.status != 0 && s.stderr.contains("stages[1].lowrank.targets") && s.stderr.contains("embed_tokens"), "\(s.stderr)")
    }
}
