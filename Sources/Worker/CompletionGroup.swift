import Foundation
import Queue

/// Group commit for completions: a job thread that finishes while another completion is being
/// committed waits and goes in the next statement with every other one that arrived meanwhile, so
/// a worker running many short jobs spends one commit on several. Each completion keeps its own
/// fence (job, attempt, running); a failed statement fails every completion in it, and each
/// caller's retry (JobExecutor.finish) decides on its own, as before.
final class CompletionGroup: @unchecked Sendable {
    private let cond = NSCondition()
    private var pending: [(ticket: Int, completion: JobStore.Completion)] = []
    private var results: [Int: Result<Bool, Error>] = [:]
    private var committing = false
    private var nextTicket = 0
    /// Commits a batch; returns the jobs that completed.
    private let commit: ([JobStore.Completion]) throws -> Set<UUID>

    init(commit: @escaping ([JobStore.Completion]) throws -> Set<UUID>) { self.commit = commit }

    /// Completes `c` (alone or with others); true when this attempt's completion landed.
    func complete(_ c: JobStore.Completion) throws -> Bool {
        cond.lock()
        let ticket = nextTicket
        nextTicket += 1
        pending.append((ticket, c))
        while results[ticket] == nil {
            if !committing {
                // Lead: commit everything pending, then hand out the results.
                committing = true
                let batch = pending
                pending = []
                cond.unlock()
                let outcome = Result { try commit(batch.map(\.completion)) }
                cond.lock()
                for (t, c) in batch { results[t] = outcome.map { $0.contains(c.job) } }
                committing = false
                cond.broadcast()
            } else {
                cond.wait()
            }
        }
        let r = results.removeValue(forKey: ticket)!
        cond.unlock()
        return try r.get()
    }
}
