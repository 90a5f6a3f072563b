import Compute
import Foundation
import Queue

/// Reclaims disk that crashed or finished attempts left under the artifact root, at worker start
/// and every few minutes:
/// - `staging/<job>-attempt-<n>-<host>-<pid>`: removed when that process is gone (same host), or
///   when the job is no longer running attempt n (any host, from PostgreSQL);
/// - `work/<job>` (checkpoints): removed once the job is terminal (succeeded, failed, dead,
///   cancelled) or gone. A running or queued job's files are never touched.
struct DiskSweeper {
    let publisher: ArtifactPublisher
    let host: String
    /// Count what would go, delete nothing (`squeeze gc --dry-run`).
    var dryRun = false

    struct Result: Equatable, BytesCounted {
        var staging = 0, work = 0, bytes: Int64 = 0
    }

    /// One pass; `states` looks up jobs in PostgreSQL (state, attempt).
    func sweep(states: ([UUID]) throws -> [UUID: (state: String, attempt: Int)]) throws -> Result {
        var result = Result()
        let staging = entries("staging").compactMap { name in StagingName(name).map { (name, $0) } }
        let work = entries("work").compactMap { name in UUID(uuidString: name).map { (name, $0) } }
        let known = try states(Array(Set(staging.map(\.1.job) + work.map(\.1))))
        for (name, s) in staging {
            let job = known[s.job]
            let attemptLive = job.map { $0.state == JobState.running.rawValue && $0.attempt == s.attempt } ?? false
            let processGone = s.host == host && s.pid > 0 && kill(s.pid, 0) != 0 && errno == ESRCH
            guard !attemptLive || processGone else { continue }
            remove("staging/" + name, into: &result, counting: \.staging)
        }
        for (name, id) in work {
            guard let state = known[id]?.state else {
                // Unknown to PostgreSQL: only remove once old, in case its job row is not committed yet.
                if age(of: "work/" + name) > 3600 { remove("work/" + name, into: &result, counting: \.work) }
                continue
            }
            guard JobState(rawValue: state)?.isTerminal == true else { continue }
            remove("work/" + name, into: &result, counting: \.work)
        }
        return result
    }

    private func entries(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: publisher.root + "/" + dir)) ?? []).sorted()
    }

    func age(of rel: String) -> Double {
        var st = stat()
        guard lstat(publisher.root + "/" + rel, &st) == 0 else { return 0 }
        return Date().timeIntervalSince1970 - Double(st.st_mtim.tv_sec)
    }

    /// Removes `rel` (under the root) and counts it and its bytes into `field` of `r`.
    func remove<R: BytesCounted>(_ rel: String, into r: inout R, counting field: WritableKeyPath<R, Int>) {
        let path = publisher.root + "/" + rel
        let bytes = Self.size(of: path)
        guard dryRun || (try? FileManager.default.removeItem(atPath: path)) != nil else { return }
        r[keyPath: field] += 1
        r.bytes += bytes
    }

    static func size(of path: String) -> Int64 {
        guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: Int64 = 0
        while let f = e.nextObject() as? String {
            var st = stat()
            if lstat(path + "/" + f, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
        }
        return total
    }
}

/// A tally of removed directories that also sums their bytes.
protocol BytesCounted { var bytes: Int64 { get set } }

extension GarbageCollector.Report: BytesCounted {}
