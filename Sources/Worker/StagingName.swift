import Foundation

/// `<job uuid>-attempt-<n>-<host>-<pid>` (or the older `<job uuid>-attempt-<n>-<pid>`, host unknown).
struct StagingName: Equatable {
    let job: UUID
    let attempt: Int
    let host: String?
    let pid: Int32

    init(job: UUID, attempt: Int, host: String?, pid: Int32) {
        (self.job, self.attempt, self.host, self.pid) = (job, attempt, host, pid)
    }

    init?(_ name: String) {
        guard name.count > 45, let job = UUID(uuidString: String(name.prefix(36))) else { return nil }
        let rest = name.dropFirst(36)
        guard rest.hasPrefix("-attempt-") else { return nil }
        let parts = rest.dropFirst(9).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, let attempt = Int(parts[0]), let pid = Int32(parts[parts.count - 1]) else { return nil }
        self.job = job
        self.attempt = attempt
        self.pid = pid
        host = parts.count > 2 ? parts[1..<(parts.count - 1)].joined(separator: "-") : nil
    }
}
