import Foundation

/// Server settings for tests, read in one place from the environment `ops/test` sets.
public enum TestConfiguration {
    static var env: [String: String] { ProcessInfo.processInfo.environment }

    /// The repository root (from this file's path).
    public static let repoRoot: String = {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        return u.path
    }()

    /// Admin URL of the test cluster (a database to run CREATE DATABASE from).
    public static var adminURL: String {
        env["SQUEEZE_TEST_PG_ADMIN_URL"] ?? env["SQUEEZE_PG_ADMIN_URL"]
            ?? "postgres://postgres@127.0.0.1:55432/postgres"
    }

    public static var redisURL: String {
        env["SQUEEZE_TEST_REDIS_URL"] ?? env["SQUEEZE_REDIS_URL"] ?? "redis://127.0.0.1:56379/0"
    }

    /// Python with numpy, safetensors, ml_dtypes and gguf (the venv ops/test creates).
    public static var python: String { env["SQUEEZE_TEST_PYTHON"] ?? repoRoot + "/.run/venv/bin/python" }

    /// Python with torch, transformers, compressed-tensors and llm-compressor (ops/bench's peer venv), when set.
    public static var peerPython: String? { env["SQUEEZE_TEST_PEER_PYTHON"] }

    /// A squeeze build with Swift's bounds and overflow checks (the debug build), for the suites that
    /// feed hostile and malformed inputs; `SQUEEZE_TEST_CHECKED_BINARY`, else the binary under test.
    public static var checkedBinary: String { env["SQUEEZE_TEST_CHECKED_BINARY"] ?? binary }

    /// The squeeze binary under test.
    public static var binary: String {
        if let b = env["SQUEEZE_TEST_BINARY"] { return b }
        for c in ["debug", "release"] {
            let p = repoRoot + "/.build/\(c)/squeeze"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return repoRoot + "/.build/debug/squeeze"
    }

    /// Directory for test scratch files.
    public static var scratch: String { env["SQUEEZE_TEST_SCRATCH"] ?? repoRoot + "/.run/test-scratch" }
}
