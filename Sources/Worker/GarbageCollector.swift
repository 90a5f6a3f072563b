import Compute
import Foundation
import Queue

/// `squeeze gc`: retention for the database and the artifact root, safe while workers run.
/// - rows: finished jobs past the horizon (failed and dead ones past their own), with their events,
///   attempts, metrics and artifact rows; checkpoint rows of every finished job; batches left empty;
/// - files: the published outputs of the jobs it forgot, published attempt directories no job row
///   references (superseded attempts), staging directories of attempts that are not running, and
///   checkpoint directories of finished jobs.
/// Never touched: a running attempt's staging and published directory, the directory a job row's
/// artifacts or output_path name, the checkpoints of queued and running jobs.
public struct GarbageCollector {
    public struct Report: Sendable {
        public var rows = JobStore.RetentionRows()
        public var outputDirs = 0, supersededDirs = 0, stagingDirs = 0, workDirs = 0
        public var bytes: Int64 = 0
    }

    let publisher: ArtifactPublisher
    let store = JobStore()

    public init(artifactRoot: String) throws { publisher = try ArtifactPublisher(root: artifactRoot) }

    public func run(_ db: PostgresConnection, olderThan: Double, keepFailed: Double, dryRun: Bool) throws -> Report {
        var report = Report()
        report.rows = try store.expire(db, olderThan: olderThan, keepFailed: keepFailed, dryRun: dryRun)
        let forgotten = Set(report.rows.expired)

        var sweeper = DiskSweeper(publisher: publisher, host: ArtifactPublisher.hostTag)
        sweeper.dryRun = dryRun
        let swept = try sweeper.sweep { ids in
            // Jobs this pass forgets (or, dry, would forget) count as finished.
            var states = try store.states(db, jobs: ids)
            for id in ids where forgotten.contains(id) { states[id] = (JobState.cancelled.rawValue, 0) }
            return states
        }
        (report.stagingDirs, report.workDirs, report.bytes) = (swept.staging, swept.work, swept.bytes)

        let jobDirs = ((try? FileManager.default.contentsOfDirectory(atPath: publisher.root + "/artifacts")) ?? [])
            .sorted()
            .compactMap { name in UUID(uuidString: name).map { (name, $0) } }
        let owners = try store.artifactOwners(db, jobs: jobDirs.map(\.1)).filter { !forgotten.contains($0.key) }
        for (name, id) in jobDirs {
            let rel = "artifacts/" + name
            guard let owner = owners[id] else {
                // No job row: a job this or an earlier pass forgot. Others only once past the horizon.
                if forgotten.contains(id) || sweeper.age(of: rel) > olderThan {
                    sweeper.remove(rel, into: &report, counting: \.outputDirs)
                }
                continue
            }
            for attempt in ((try? FileManager.default.contentsOfDirectory(atPath: publisher.root + "/" + rel)) ?? [])
                .sorted()
            {
                guard attempt.hasPrefix("attempt-"), let n = Int(attempt.dropFirst(8)) else { continue }
                let live =
                    owner.referenced.contains(n)
                    || (owner.attempt == n && !(JobState(rawValue: owner.state)?.isTerminal ?? true))
                if !live { sweeper.remove(rel + "/" + attempt, into: &report, counting: \.supersededDirs) }
            }
        }
        return report
    }
}
