import ArgumentParser
import Compute
import Foundation
import Queue

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A job's event log.")

    @OptionGroup var conn: ConnectionOptions

    @Argument(help: "Job id (or a unique prefix).")
    var job: String

    func run() throws {
        try oneLine {
            let db = try conn.connect()
            guard let id = try JobStore().resolve(db, jobRef: job) else { throw CLIError("no job matches \(job)") }
            for e in try JobStore().events(db, job: id) {
                print("\(e.at)  attempt=\(e.attempt)  \(e.kind)  \(e.detailJSON)")
            }
        }
    }
}
