import ArgumentParser
import Compute
import Foundation
import Queue

struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Put failed, dead or cancelled jobs back in the queue.")

    @OptionGroup var conn: ConnectionOptions

    @Argument(help: "Job ids (or unique prefixes).")
    var jobs: [String] = []

    @Flag(name: .long, help: "Retry every dead job.")
    var dead = false

    func validate() throws {
        if jobs.isEmpty && !dead { throw ValidationError("give job ids or --dead") }
    }

    func run() throws {
        try oneLine {
            let queue = try conn.queue()
            let ids = try jobs.map { ref -> UUID in
                guard let id = try JobStore().resolve(queue.db, jobRef: ref) else {
                    throw CLIError("no job matches \(ref)")
                }
                return id
            }
            let outcome = try queue.retry(ids, allDead: dead)
            warn(outcome.hintWarning)
            print("requeued \(outcome.value.count) job(s)")
        }
    }
}
