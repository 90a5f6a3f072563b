import Foundation
import Queue

/// A job this worker is running, with the flags the lease supervisor and signals set.
public final class ActiveJob: @unchecked Sendable {
    public let job: ClaimedJob
    private let lock = NSLock()
    private var _cancelRequested = false
    private var _leaseLost = false
    private var _completing = false
    /// Local deadline: if no renewal succeeds before it, the worker abandons the job itself.
    private var _leaseDeadline: Date

    init(job: ClaimedJob, leaseSeconds: Double) {
        self.job = job
        _leaseDeadline = Date().addingTimeInterval(leaseSeconds * 0.9)
    }

    var cancelRequested: Bool { lock.withLock { _cancelRequested } }
    var leaseLost: Bool { lock.withLock { _leaseLost || Date() > _leaseDeadline } }

    func renewed(leaseSeconds: Double, at: Date, cancel: Bool) {
        lock.withLock {
            _leaseDeadline = at.addingTimeInterval(leaseSeconds * 0.9)
            if cancel { _cancelRequested = true }
        }
    }

    func markLost() { lock.withLock { _leaseLost = true } }

    /// Whether the completion is being written: from then on the completion's own fenced write
    /// says whether the lease held, so a renewal that no longer finds the job running (it has just
    /// succeeded) is not a lost lease.
    var completing: Bool { lock.withLock { _completing } }

    func markCompleting() { lock.withLock { _completing = true } }
}

/// The set of running jobs, shared by the claim loop, job threads and the supervisor.
final class ActiveJobs: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs = [UUID: ActiveJob]()

    var count: Int { cond.withLock { jobs.count } }
    var all: [ActiveJob] { cond.withLock { Array(jobs.values) } }

    func add(_ j: ActiveJob) { cond.withLock { jobs[j.job.id] = j } }

    func remove(_ id: UUID) {
        cond.lock()
        jobs[id] = nil
        cond.broadcast()
        cond.unlock()
    }

    /// Waits until fewer than `limit` jobs run, or `timeout` passes; returns whether there is room.
    func waitForRoom(limit: Int, timeout: Double) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        let until = Date().addingTimeInterval(timeout)
        while jobs.count >= limit {
            if !cond.wait(until: until) { return jobs.count < limit }
        }
        return true
    }

    /// Waits until no job runs or `timeout` passes.
    func waitEmpty(timeout: Double) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        let until = Date().addingTimeInterval(timeout)
        while !jobs.isEmpty {
            if !cond.wait(until: until) { return jobs.isEmpty }
        }
        return true
    }
}
