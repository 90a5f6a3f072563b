import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs Tests/reference scripts in forks of one Python that has already imported numpy,
/// safetensors, gguf and ml_dtypes (Tests/reference/fork_server.py): a script then starts in
/// milliseconds instead of the 0.2-1.7 CPU seconds its imports cost, across about 330 scripts a run.
/// Each script still runs as its own process with its own status, output files and CPU time.
final class PythonForkServer: @unchecked Sendable {
    /// One per test process, started on first use; nil where it could not start (scripts then run
    /// as plain processes).
    static let shared: PythonForkServer? = try? PythonForkServer(llama: false)

    /// The same with llama.cpp's CPU library loaded (its libstdc++ shim preloaded), for the scripts
    /// that run llama.cpp: each saved about 0.4 CPU seconds of imports.
    static let llama: PythonForkServer? = try? PythonForkServer(llama: true)

    private let socketPath: String
    private let server: RunningProcess

    private init(llama: Bool) throws {
        socketPath = TestConfiguration.scratch + "/python-\(llama ? "llama-" : "")\(getpid()).sock"
        // sockaddr_un holds 108 bytes.
        guard socketPath.utf8.count < 100 else { throw ForkServerError.unavailable("socket path too long") }
        try FileManager.default.createDirectory(atPath: TestConfiguration.scratch, withIntermediateDirectories: true)
        unlink(socketPath)
        let script = TestConfiguration.repoRoot + "/Tests/reference/fork_server.py"
        server = try ProcessRunner.start(
            TestConfiguration.python, [script, socketPath] + (llama ? ["--llama"] : []),
            env: llama ? PythonForkServer.llamaEnvironment : [:])
        let ready = waitUntil(timeout: 60) {
            guard server.isRunning, let fd = connectUnix(socketPath) else { return !server.isRunning }
            close(fd)
            return true
        }
        guard ready, server.isRunning else {
            throw ForkServerError.unavailable("fork_server.py did not start: \(server.stderrSoFar)")
        }
    }

    /// What llama.cpp's scripts run with: Debian 12's libstdc++ lacks `__cxa_call_terminate`, which
    /// the shim defines (ops/lib.sh builds it); the CPU backend only.
    static var llamaEnvironment: [String: String] {
        ["LD_PRELOAD": ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_CPP_SHIM"] ?? "", "LLAMA_CPP_BACKEND": "cpu"]
    }

    /// Runs `script` with `args` (environment `env` added) and returns its status and output.
    func run(_ script: String, _ args: [String], env: [String: String], timeout: Double) throws -> ProcessResult {
        guard let fd = connectUnix(socketPath) else { throw ForkServerError.unavailable("cannot connect") }
        defer { close(fd) }
        let (outPath, errPath) = try ProcessRunner.outputFiles()
        let request: [String: Any] = [
            "script": script, "args": args, "cwd": FileManager.default.currentDirectoryPath,
            "env": ProcessRunner.childEnvironment(env),
            "stdout": outPath, "stderr": errPath
        ]
        var line = try JSONSerialization.data(withJSONObject: request)
        line.append(0x0A)
        try writeAll(fd, line)
        let started = Date()
        let label = CPUTimeLog.Label(
            test: Test.current.map { "\($0.id)" } ?? "-",
            executable: (script as NSString).lastPathComponent + " (forked python)")
        let reader = LineReader(fd: fd)
        guard try reader.next(until: started.addingTimeInterval(60))?["pid"] != nil else {
            throw ForkServerError.unavailable("no pid for \(script)")
        }
        var reply = try reader.next(until: started.addingTimeInterval(timeout))
        if reply == nil {
            try writeAll(fd, Data("signal \(SIGTERM)\n".utf8))
            reply = try reader.next(until: Date().addingTimeInterval(10))
        }
        if reply == nil {
            try writeAll(fd, Data("signal \(SIGKILL)\n".utf8))
            reply = try reader.next(until: Date().addingTimeInterval(60))
        }
        guard let reply, let status = reply["status"] as? Int else {
            throw ForkServerError.unavailable("no status for \(script)")
        }
        CPUTimeLog.record(label, cpu: reply["cpu"] as? Double ?? 0, wall: Date().timeIntervalSince(started))
        return ProcessResult.collect(status: Int32(status), out: outPath, err: errPath)
    }
}

enum ForkServerError: Error {
    case unavailable(String)
}

/// A Unix-socket connection to `path`: its descriptor, or nil when nothing accepts there.
private func connectUnix(_ path: String) -> Int32? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
    }
    return connected(fd, to: &addr)
}

private func writeAll(_ fd: Int32, _ data: Data) throws {
    try data.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = send(fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ForkServerError.unavailable("write failed: \(String(cString: strerror(errno)))") }
            done += n
        }
    }
}

/// Reads newline-terminated JSON objects from a socket, each before a deadline.
private final class LineReader {
    let fd: Int32
    var buffer = [UInt8]()

    init(fd: Int32) { self.fd = fd }

    /// The next object, or nil when the deadline passes first.
    func next(until deadline: Date) throws -> [String: Any]? {
        while true {
            if let end = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[..<end])
                buffer.removeSubrange(...end)
                return try JSONSerialization.jsonObject(with: line) as? [String: Any]
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(left, 3600) * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ForkServerError.unavailable("fork server closed the connection") }
            buffer += chunk[..<n]
        }
    }
}
