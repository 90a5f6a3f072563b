import ArgumentParser
import Foundation
import Queue

/// Jobs named on the command line (ids or unique prefixes) and/or a batch id.
struct JobSelection: ParsableArguments {
    @Argument(help: "Job ids (or unique prefixes).")
    var jobs: [String] = []

    @Option(name: .long, help: "Every job of a batch.")
    var batch: String?

    func validate() throws {
        if jobs.isEmpty && batch == nil { throw ValidationError("give job ids or --batch ID") }
    }

    /// Resolves the ids and the batch; a reference that matches no job is an error.
    func resolve(_ db: PostgresConnection) throws -> (ids: [UUID], batch: UUID?) {
        let store = JobStore()
        let ids = try jobs.map { ref -> UUID in
            guard let id = try store.resolve(db, jobRef: ref) else { throw CLIError("no job matches \(ref)") }
            return id
        }
        let b = try batch.map { s -> UUID in
            guard let u = UUID(uuidString: s) else { throw CLIError("--batch needs a batch id") }
            return u
        }
        return (ids, b)
    }
}
