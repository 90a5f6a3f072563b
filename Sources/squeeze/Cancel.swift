import ArgumentParser
import Foundation
import Queue

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel jobs: queued ones at once, running ones at their next unit boundary.")

    @OptionGroup var conn: ConnectionOptions
    @OptionGroup var selection: JobSelection

    func run() throws {
        try oneLine {
            let queue = try conn.queue()
            let (ids, batchID) = try selection.resolve(queue.db)
            let outcome = try queue.cancel(ids, batch: batchID)
            let (cancelled, flagged) = outcome.value
            warn(outcome.hintWarning)
            print(
                "cancelled \(cancelled.count) queued job(s); \(flagged.count) running job(s) will stop at their next "
                    + "unit"
            )
        }
    }
}
