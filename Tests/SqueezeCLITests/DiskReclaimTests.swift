import Foundation
import Queue
import Testing
import TestSupport

/// Workers sweep staging directories of dead attempts and checkpoints of finished jobs, and
/// never touch what a live attempt or a queued job uses.
@Suite struct DiskReclaimTests {
    func put(_ path: String, bytes: Int = 1 << 20) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(count: bytes))
    }

    @Test func abandonedFilesAreSweptAndLiveOnesKeptUnderLoad() throws {
        let env = try SqueezeEnv.create()
        let model = try env.makeModel()
        let recipe = try env.write("recipe.yaml", foundationRecipe)
        // A finished job, and a job that stays queued (due in an hour).
        let done = try env.submit(["--model", model, "--recipe", recipe, "--key", "done"])
        try env.drain()
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [done]) == "succeeded")
        let later = try env.submit(["--model", model, "--recipe", recipe, "--key", "later", "--after", "1h"])
        let host = ProcessInfo.processInfo.hostName.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
        let root = env.artifactRoot
        let ghost = UUID().uuidString.lowercased()
        // What kill -9 leaves: a staging directory whose process is gone (this host, pid unused).
        try put("\(root)/staging/\(ghost)-attempt-1-\(String(host))-4194303/model.safetensors")
        // Staging of a finished job's attempt from another host, and the old naming without host.
        try put("\(root)/staging/\(done)-attempt-1-otherhost-1/model.safetensors")
        try put("\(root)/staging/\(done)-attempt-1-12345/x")
        // Checkpoints of a finished job (to go), of a queued job (to stay).
        try put("\(root)/work/\(done)/u0.a1.bin")
        try put("\(root)/work/\(later)/u0.a1.bin")
        // Under load: a slow job runs on one worker while a second worker starts (and sweeps) beside it.
        let slow = try env.submit(["--model", model, "--recipe", recipe, "--key", "slow"])
        let a = try env.startSqueeze(["worker", "--exit-when-idle", "--lease-seconds", "5", "--unit-delay-ms", "200", "--sweep-seconds", "1"])
        #expect(try waitUntil(timeout: 60) { (Int(try env.scalar("SELECT units_done FROM jobs WHERE id = $1::uuid", [slow]) ?? "0") ?? 0) >= 2 })
        let live = try FileManager.default.contentsOfDirectory(atPath: root + "/staging").filter { $0.hasPrefix(slow) }
        #expect(live.count == 1, "\(live)")
        let b = try env.squeeze(["worker", "--exit-when-idle", "--lease-seconds", "5", "--sweep-seconds", "1"], timeout: 120)
        #expect(b.status == 0)
        #expect(a.wait(timeout: 120))
        let ra = a.finish()
        #expect(ra.status == 0, "\(ra.stderr.suffix(500))")
        #expect(try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [slow]) == "succeeded")
        #expect(FileManager.default.fileExists(atPath: "\(root)/artifacts/\(slow)/attempt-1/model.safetensors"))
        let staging = try FileManager.default.contentsOfDirectory(atPath: root + "/staging")
        #expect(staging.isEmpty, "\(staging)")
        #expect(!FileManager.default.fileExists(atPath: "\(root)/work/\(done)"))
        #expect(FileManager.default.fileExists(atPath: "\(root)/work/\(later)/u0.a1.bin"))
        #expect(b.stderr.contains("swept abandoned files") || ra.stderr.contains("swept abandoned files"))
    }
}
