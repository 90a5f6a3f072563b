import Foundation

extension SqueezeEnv {
    /// `make_llama.py tiny dir args...` (a random Llama): made once per run for each argument list
    /// and version of the script, under the scratch directory, and copied into `dir` (which must not
    /// exist), since many tests make the same small model. A failure is the script's own result.
    public func madeLlama(_ dir: String, _ args: [String]) throws -> ProcessResult {
        let script = TestConfiguration.repoRoot + "/Tests/reference/make_llama.py"
        let key = fnv1a(
            args.joined(separator: "\0").utf8, from: fnv1a(try Data(contentsOf: URL(fileURLWithPath: script))))
        let made = TestConfiguration.scratch + "/made-llama/" + String(key, radix: 16)
        try FileManager.default.createDirectory(
            atPath: TestConfiguration.scratch + "/made-llama", withIntermediateDirectories: true)
        var failed: ProcessResult?
        _ = try MadeOnce.directory(made) { building in
            let r = try python("make_llama.py", ["tiny", building] + args)
            failed = r.status == 0 ? nil : r
            return r.status == 0
        }
        if let failed { return failed }
        try FileManager.default.copyItem(atPath: made, toPath: dir)
        return ProcessResult(status: 0, stdout: "", stderr: "")
    }
}
