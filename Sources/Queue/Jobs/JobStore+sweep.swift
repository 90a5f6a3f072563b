import Foundation

extension JobStore {
    /// State and current attempt of each job that exists (for the disk sweeper).
    public func states(_ db: PostgresConnection, jobs: [UUID]) throws -> [UUID: (state: String, attempt: Int)] {
        guard !jobs.isEmpty else { return [:] }
        var out = [UUID: (state: String, attempt: Int)]()
        for r in try db.query("SELECT id, state, attempt FROM jobs WHERE id = ANY($1::uuid[])", [jobs]) {
            out[try r.decode("id")] = (r["state"] ?? "", try r.decode("attempt"))
        }
        return out
    }
}
