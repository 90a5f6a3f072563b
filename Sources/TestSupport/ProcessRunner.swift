import Foundation
import Testing

/// Runs a program to completion and captures its output.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum ProcessRunner {
    /// Runs `executable` with `args`; `env` is added to this process's environment.
    @discardableResult
    public static func run(_ executable: String, _ args: [String], env: [String: String] = [:], timeout: Double = 300)
        throws -> ProcessResult
    {
        let p = try start(executable, args, env: env)
        if !p.wait(timeout: timeout) {
            p.signal(SIGTERM)
            if !p.wait(timeout: 10) { p.signal(SIGKILL) }
        }
        return p.finish()
    }

    /// Runs a command that daemonizes (redis-server --daemonize, pg_ctl start) through Python's
    /// subprocess, whose exit status is the launcher's.
    @discardableResult
    public static func runDaemonizing(_ executable: String, _ args: [String], timeout: Double = 120) throws
        -> ProcessResult
    {
        try run(
            TestConfiguration.python,
            ["-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))", executable] + args,
            timeout: timeout)
    }

    /// Starts a program in the background, output to files; call `finish()` after it exits.
    public static func start(_ executable: String, _ args: [String], env: [String: String] = [:]) throws
        -> RunningProcess
    {
        let (outPath, errPath) = try outputFiles()
        let environment = ProcessInfo.processInfo.environment.merging(childEnvironment(env)) { $1 }
        let pid = try Spawn.launch(executable, args, environment: environment, stdout: outPath, stderr: errPath)
        let label = CPUTimeLog.Label(test: Test.current.map { "\($0.id)" } ?? "-", executable: executable)
        return RunningProcess(pid: pid, outPath: outPath, errPath: errPath, label: label)
    }
}

extension ProcessRunner {
    /// New files in the scratch directory for a child's stdout and stderr.
    static func outputFiles() throws -> (out: String, err: String) {
        let dir = TestConfiguration.scratch + "/proc"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let id = UUID().uuidString
        return ("\(dir)/\(id).out", "\(dir)/\(id).err")
    }

    /// What a child's environment adds to this process's: `env`, and one OpenBLAS thread unless either sets a
    /// number. Tests run four at once on the machine's cores: a reference's OpenBLAS threads would only spin
    /// against them (numpy's import alone costs 0.33 CPU seconds with two, 0.18 with one).
    static func childEnvironment(_ env: [String: String]) -> [String: String] {
        var added = env
        if ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil && env["OPENBLAS_NUM_THREADS"] == nil {
            added["OPENBLAS_NUM_THREADS"] = "1"
        }
        return added
    }
}

extension ProcessResult {
    /// The result of a child that exited with `status`, its output read from (and then removed with) its files.
    static func collect(status: Int32, out outPath: String, err errPath: String) -> ProcessResult {
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
        return ProcessResult(status: status, stdout: out, stderr: err)
    }
}

/// A background process whose output goes to files; a thread of its own reaps it when it exits.
public final class RunningProcess: @unchecked Sendable {
    public let pid: Int32
    let outPath: String
    let errPath: String
    private let exited = NSCondition()
    private var exitStatus: Int32?
    private let label: CPUTimeLog.Label
    private let started = Date()

    init(pid: Int32, outPath: String, errPath: String, label: CPUTimeLog.Label) {
        self.pid = pid
        self.outPath = outPath
        self.errPath = errPath
        self.label = label
        Thread.detachNewThread { [self] in
            // Wait without reaping, then reap under the lock `signal` takes: a signal never reaches a reused pid.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            exited.withLock {
                var status: Int32 = 0
                var usage = rusage()
                while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
                CPUTimeLog.record(label, usage: usage, wall: Date().timeIntervalSince(started))
                // Exit code, or the signal's number for a killed process (as Foundation's Process reports it).
                exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
                exited.broadcast()
            }
        }
    }

    /// Whether the process has not exited yet.
    public var isRunning: Bool { exited.withLock { exitStatus == nil } }

    /// Sends a signal, unless the process has already been reaped (its pid may be reused).
    public func signal(_ sig: Int32) {
        exited.withLock { if exitStatus == nil { _ = kill(pid, sig) } }
    }

    /// Standard output so far.
    public var stdoutSoFar: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }

    /// Output so far.
    public var stderrSoFar: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// Waits up to `timeout` seconds for exit; returns false on timeout.
    public func wait(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        return exited.withLock {
            while exitStatus == nil { if !exited.wait(until: deadline) { break } }
            return exitStatus != nil
        }
    }

    /// Waits for exit and returns the captured output.
    public func finish() -> ProcessResult {
        let status = exited.withLock {
            while exitStatus == nil { exited.wait() }
            return exitStatus!
        }
        return ProcessResult.collect(status: status, out: outPath, err: errPath)
    }
}
