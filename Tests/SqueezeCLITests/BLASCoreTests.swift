import Foundation
import Testing
import TestSupport

/// OpenBLAS 0.3.21 falls back to its SSE3 Prescott kernels on CPUs newer than itself: squeeze then
/// runs itself with the core the CPU's flags support, unless the machine chose one (OPENBLAS_CORETYPE).
@Suite struct BLASCoreTests {
    func blasCore(_ env: SqueezeEnv, extra: [String: String]) throws -> String? {
        let model = try env.makeModel()
        let recipe = try env.write("r.yaml", "stages:\n  - export: {format: safetensors}\n")
        let out = env.scratch + "/out-\(UUID().uuidString.prefix(6))"
        var e = try env.environment
        e.removeValue(forKey: "OPENBLAS_CORETYPE")
        for (k, v) in extra { e[k] = v }
        let r = try ProcessRunner.run(TestConfiguration.binary, ["run", "--model", model, "--recipe", recipe, "--out", out], env: e)
        #expect(r.status == 0, "\(r.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any]
        return m?["blas_core"] as? String
    }

    @Test func aGenericCoreIsReplacedUnlessTheMachineChoseOne() throws {
        let env = try SqueezeEnv.create()
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let chosen = try blasCore(env, extra: [:])
        if flags.contains("avx2") && flags.contains("fma") {
            #expect(!["Prescott", "Core2", "Nehalem", "Unknown", nil].contains(chosen), "\(String(describing: chosen))")
        }
        #expect(try blasCore(env, extra: ["OPENBLAS_CORETYPE": "Prescott"]) == "Prescott")
    }
}
