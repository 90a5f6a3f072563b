import ArgumentParser
import Compute
import Foundation
import Queue

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait for jobs or a batch to finish; exit non-zero if any did not succeed.")

    @OptionGroup var conn: ConnectionOptions
    @OptionGroup var selection: JobSelection

    @Option(name: .long, help: "Give up after this long (e.g. 10m); exit code 2.")
    var timeout: Duration?

    func run() throws {
        let deadline = timeout.map { Date().addingTimeInterval($0.seconds) }
        let outcome: (failed: Int, total: Int) = try oneLine {
            let db = try conn.connect()
            let (ids, batchID) = try selection.resolve(db)
            let tty = isatty(STDOUT_FILENO) == 1
            var last = ""
            while true {
                let p = try JobStore().progress(db, jobs: ids, batch: batchID)
                let (total, ok, bad) = (p.total, p.succeeded, p.failed)
                guard total > 0 else { throw CLIError("no such jobs") }
                let line =
                    "\(ok + bad)/\(total) done: \(ok) succeeded, \(bad) failed/cancelled, \(p.running) running (units "
                    + "\(p.unitsDone)/\(p.unitsTotal))"
                if line != last {
                    if tty {
                        print("\r\u{1B}[K" + line, terminator: "")
                        fflush(stdout)
                    } else {
                        print(line)
                    }
                    last = line
                }
                if ok + bad == total {
                    if tty { print("") }
                    return (bad, total)
                }
                if let d = deadline, Date() > d {
                    if tty { print("") }
                    throw ExitCode(2)
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
        if outcome.failed > 0 { throw ExitCode(1) }
    }
}
