import Foundation

extension SqueezeEnv {
    /// `make_llama.py tiny dir args...` (a random Llama): made once per run for each argument list
    /// and version of the script, under the scratch directory, and copied into `dir` (which must not
    /// exist), since many tests make the same small model. A failure is the script's own result.
    public func madeLlama(_ dir: String, _ args: [String]) throws -> ProcessResult {
        let script = TestConfiguration.repoRoot + "/Tests/reference/make_llama.py"
        var key: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in Array(try Data(contentsOf: URL(fileURLWithPath: script))) + Array(args.joined(separator: "\0").utf8) {
            key = (key ^ UInt64(b)) &* 0x100_0000_01b3
        }
        let made = TestConfiguration.scratch + "/made-llama/" + String(key, radix: 16)
        let fm = FileManager.default
        if !fm.fileExists(atPath: made) {
            try fm.createDirectory(atPath: TestConfiguration.scratch + "/made-llama", withIntermediateDirectories: true)
            let building = made + ".building-\(getpid())-\(UUID().uuidString.prefix(8))"
            let r = try python("make_llama.py", ["tiny", building] + args)
            guard r.status == 0 else {
                try? fm.removeItem(atPath: building)
                return r
            }
            // Another test may have made it first: keep theirs.
            if rename(building, made) != 0 { try? fm.removeItem(atPath: building) }
        }
        try fm.copyItem(atPath: made, toPath: dir)
        return ProcessResult(status: 0, stdout: "", stderr: "")
    }
}
