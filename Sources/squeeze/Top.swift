import ArgumentParser
import Compute
import Foundation
import Queue

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "A refreshing view of the fleet: throughput, backlog by priority, workers, running jobs with progress (q "
            + "quits).",
        discussion:
            "Reads only the monitoring views. When stdout is not a terminal (or with --once) it prints one plain "
            + "snapshot and exits."
    )

    @OptionGroup var conn: ConnectionOptions

    @Option(name: .long, help: "Seconds between refreshes (0.2 to 3600).")
    var interval: Double = 2

    @Flag(name: .long, help: "Print one snapshot and exit.")
    var once = false

    func validate() throws {
        guard interval >= 0.2 && interval <= 3600 else {
            throw ValidationError("--interval must be between 0.2 and 3600 seconds")
        }
    }

    func run() throws {
        try oneLine {
            let db = try conn.connect()
            let view = TopView(db: db)
            guard !once && isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1 else {
                print(try view.lines(width: 100, ansi: false).joined(separator: "\n"))
                return
            }
            let terminal = RawTerminal()
            defer { terminal.restore() }
            while true {
                let frame = try view.lines(width: terminal.width, ansi: true).prefix(terminal.height - 1)
                FileHandle.standardOutput.write(
                    Data(("\u{1B}[H\u{1B}[2J" + frame.joined(separator: "\r\n") + "\r\n").utf8))
                if terminal.waitForQuit(seconds: interval) { return }
            }
        }
    }
}

/// One frame of `squeeze top`, from the monitoring views.
struct TopView {
    let db: PostgresConnection
    let store = JobStore()

    func lines(width: Int, ansi: Bool) throws -> [String] {
        let bold = ansi ? "\u{1B}[1m" : "", plain = ansi ? "\u{1B}[0m" : ""
        let t = try store.throughput(db), backlog = try store.backlog(db), states = try store.stateCounts(db)
        let workers = try store.liveWorkers(db), running = try store.runningJobs(db)
        let now = ISO8601DateFormatter().string(from: Date())
        var out = ["\(bold)squeeze top\(plain)  \(now)" + (ansi ? "  (q quits)" : "")]
        out.append(
            "\(bold)THROUGHPUT\(plain)  last minute \(t.lastMinute)  last hour \(t.lastHour) (\(t.succeededLastHour) "
                + "succeeded, \(t.failedLastHour) failed)  last day \(t.lastDay)"
        )
        out.append("\(bold)JOBS\(plain)  " + states.map { "\($0.state) \($0.jobs)" }.joined(separator: "  "))
        out.append("\(bold)QUEUE\(plain) (\(backlog.reduce(0) { $0 + $1.jobs }) queued)")
        for b in backlog {
            out.append(
                "  priority \(b.priority): \(b.jobs)" + (b.delayed > 0 ? " (\(b.delayed) delayed)" : "")
                    + String(format: "  oldest %.1fs", b.oldestAge))
        }
        out.append("\(bold)WORKERS\(plain) (\(workers.count) alive)")
        for w in workers {
            out.append(
                "  \(TextRules.display(w.id))  \(w.state)  running=\(w.runningJobs) done=\(w.jobsDone)"
                    + String(format: "  heartbeat %.1fs ago", w.heartbeatAge))
        }
        out.append("\(bold)RUNNING\(plain) (\(running.count)\(running.count == 20 ? "+" : ""))")
        for r in running {
            let total = max(r.unitsTotal ?? 0, 0)
            out.append(
                "  \(r.id.uuidString.lowercased().prefix(8))  \(r.kind)  \(Self.bar(r.unitsDone, total, width: 20))  "
                    + "\(r.unitsDone)/\(total == 0 ? "?" : String(total)) units"
                    + String(format: "  %.0fs", r.runSeconds)
                    + "  attempt \(r.attempt)/\(r.maxAttempts)  \(TextRules.display(r.workerID ?? "-"))"
                    + (r.leaseExpired ? "  LEASE EXPIRED" : "") + "  \(TextRules.display(r.inputPath))")
        }
        return out.map { String($0.prefix(max(width, 20) + (ansi ? 8 : 0))) }
    }

    /// `[#####.....]` for done of total (all dots when the total is unknown).
    static func bar(_ done: Int, _ total: Int, width: Int) -> String {
        let filled = total > 0 ? min(width, done * width / total) : 0
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }
}

/// The terminal in non-canonical, no-echo mode while `top` runs; restored on exit and on SIGINT/SIGTERM.
final class RawTerminal {
    init() {
        tcgetattr(STDIN_FILENO, &savedTermios)
        var raw = savedTermios
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        FileHandle.standardOutput.write(Data("\u{1B}[?25l".utf8))
        for s in [SIGINT, SIGTERM] {
            signal(s) { sig in
                tcsetattr(STDIN_FILENO, TCSANOW, &savedTermios)
                _ = "\u{1B}[?25h\r\n".withCString { write(STDOUT_FILENO, $0, strlen($0)) }
                _exit(128 + sig)
            }
        }
    }

    func restore() {
        tcsetattr(STDIN_FILENO, TCSANOW, &savedTermios)
        FileHandle.standardOutput.write(Data("\u{1B}[?25h\r\n".utf8))
    }

    var width: Int { size.ws_col > 0 ? Int(size.ws_col) : 100 }
    var height: Int { size.ws_row > 0 ? Int(size.ws_row) : 40 }

    private var size: winsize {
        var w = winsize()
        _ = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &w)
        return w
    }

    /// Waits up to `seconds` for a key; true when it was `q` (or stdin closed).
    func waitForQuit(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var p = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left * 1000)) > 0 else { continue }
            var c: UInt8 = 0
            if read(STDIN_FILENO, &c, 1) <= 0 { return true }
            if c == UInt8(ascii: "q") || c == UInt8(ascii: "Q") { return true }
        }
    }
}

/// The terminal settings `top` found (a global: the signal handler restores them).
nonisolated(unsafe) private var savedTermios = termios()
