import Foundation

/// Runs a program to completion and captures its output.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum ProcessRunner {
    private static let launchLock = NSLock()

    /// Runs `executable` with `args`; `env` is added to this process's environment.
    @discardableResult
    public static func run(_ executable: String, _ args: [String], env: [String: String] = [:], timeout: Double = 300) throws -> ProcessResult {
        let p = try start(executable, args, env: env)
        let deadline = Date().addingTimeInterval(timeout)
        while p.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.process.isRunning {
            p.process.terminate()
            _ = p.wait(timeout: 10)
        }
        return p.finish()
    }

    /// Runs a command that daemonizes (redis-server --daemonize, pg_ctl start). Foundation's Process
    /// on Linux is never told the launcher exited when a daemon inherits its monitoring socket, so
    /// the launch goes through Python's subprocess, which closes inherited descriptors.
    @discardableResult
    public static func runDaemonizing(_ executable: String, _ args: [String], timeout: Double = 120) throws -> ProcessResult {
        try run(TestConfiguration.python, ["-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))", executable] + args,
                timeout: timeout)
    }

    /// Starts a program in the background; call `finish()` after it exits.
    public static func start(_ executable: String, _ args: [String], env: [String: String] = [:]) throws -> RunningProcess {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let dir = TestConfiguration.scratch + "/proc"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let id = UUID().uuidString
        let outPath = "\(dir)/\(id).out", errPath = "\(dir)/\(id).err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardInput = FileHandle.nullDevice
        // Foundation's Process.run on Linux is not safe to call from two threads at once (it walks
        // the descriptor table while another launch opens and closes descriptors; it crashed the
        // suite once in memcpy): launches are serialized, the processes still run in parallel.
        try launchLock.withLock { try p.run() }
        return RunningProcess(process: p, outPath: outPath, errPath: errPath)
    }
}

/// A background process whose output goes to files.
public final class RunningProcess: @unchecked Sendable {
    public let process: Process
    let outPath: String
    let errPath: String

    init(process: Process, outPath: String, errPath: String) {
        self.process = process
        self.outPath = outPath
        self.errPath = errPath
    }

    public var pid: Int32 { process.processIdentifier }

    /// Sends a signal.
    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Standard output so far.
    public var stdoutSoFar: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }

    /// Output so far.
    public var stderrSoFar: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// Waits up to `timeout` seconds for exit; returns false on timeout.
    public func wait(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        return !process.isRunning
    }

    /// Waits for exit and returns the captured output.
    public func finish() -> ProcessResult {
        // Poll rather than waitUntilExit(): the latter can hang on Linux after a child daemonizes.
        while process.isRunning { Thread.sleep(forTimeInterval: 0.01) }
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
        return ProcessResult(status: process.terminationStatus, stdout: out, stderr: err)
    }
}
