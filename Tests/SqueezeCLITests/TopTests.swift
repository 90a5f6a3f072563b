import Foundation
import Testing
import TestSupport

/// `squeeze top`: under a real terminal (tmux) it draws throughput, the backlog by priority, the
/// live worker and its running job with a progress bar, refreshes, and quits on `q`; piped, it
/// prints one plain snapshot.
@Suite struct TopTests {
    static let tmux = ["/usr/bin/tmux", "/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func tmux(_ args: [String]) throws -> ProcessResult { try ProcessRunner.run(Self.tmux!, args, env: [:], timeout: 10) }

    @Test(.enabled(if: tmux != nil, "needs tmux (ops/test installs it)")) func drawsRefreshesAndQuitsOnQ() throws {
        let env = try SqueezeEnv.create()
        let long = try env.submit(["--noop", "--sleep-ms", "20000", "--priority", "100"])
        #expect(try env.squeeze(["submit", "--noop", "--count", "3", "--priority", "5"]).status == 0)
        #expect(try env.squeeze(["submit", "--noop", "--count", "2"]).status == 0)
        let worker = try env.startSqueeze(["worker", "--id", "top-worker", "--concurrency", "1"])
        defer { worker.signal(SIGKILL); _ = worker.finish() }
        #expect(try waitUntil(timeout: 30) { try env.scalar("SELECT state FROM jobs WHERE id = $1::uuid", [long]) == "running" })

        // Piped: one plain snapshot, no escape sequences.
        let snap = try env.squeeze(["top"])
        #expect(snap.status == 0 && !snap.stdout.contains("\u{1B}"), "\(snap.stderr)")
        for expected in ["QUEUE (5 queued)", "priority 5: 3", "priority 0: 2", "WORKERS (1 alive)", "top-worker", "RUNNING (1)", "noop"] {
            #expect(snap.stdout.contains(expected), "\(expected) missing from:\n\(snap.stdout)")
        }

        // A terminal: a script carries the test environment into the tmux session.
        let script = try env.write("top.sh", "#!/bin/sh\n" + env.environment.map { "export \($0.key)='\($0.value)'\n" }.joined()
                                   + "exec '\(TestConfiguration.binary)' top --interval 0.3\n")
        chmod(script, 0o755)
        let session = "squeeze-top-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        // new-session starts tmux's server, a daemon: launched through the daemon-safe runner.
        #expect(try ProcessRunner.runDaemonizing(Self.tmux!, ["new-session", "-d", "-s", session, "-x", "160", "-y", "40", script], timeout: 10).status == 0)
        defer { _ = try? tmux(["kill-session", "-t", session]) }
        var screen = ""
        #expect(try waitUntil(timeout: 10) {
            screen = try tmux(["capture-pane", "-p", "-t", session]).stdout
            return screen.contains("RUNNING (1)") && screen.contains("priority 5: 3")
        }, "screen:\n\(screen)")
        #expect(screen.contains("THROUGHPUT") && screen.contains("top-worker") && screen.contains("[") && screen.contains("attempt 1/"))
        // It refreshes: the running job's seconds move on.
        let first = screen
        #expect(try waitUntil(timeout: 5) { try tmux(["capture-pane", "-p", "-t", session]).stdout != first })
        #expect(try tmux(["send-keys", "-t", session, "q"]).status == 0)
        #expect(try waitUntil(timeout: 5) { try tmux(["has-session", "-t", session]).status != 0 }, "top did not quit on q")
    }

    @Test func refusesABadInterval() throws {
        let env = try SqueezeEnv.create()
        let r = try env.squeeze(["top", "--interval", "0"])
        #expect(r.status != 0 && r.stderr.contains("--interval must be between"))
    }
}
