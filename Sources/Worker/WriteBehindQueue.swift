import Foundation

/// One background thread that runs submitted writes in order, so a job's compute thread does not
/// wait for checkpoint files to reach the disk. At most `limitBytes` of submitted payload wait at
/// once (one task is always admitted); the first task that throws stops the queue, drops what is
/// queued behind it, and its error is thrown by the next `submit` or `drain`.
final class WriteBehindQueue: @unchecked Sendable {
    private struct Task {
        let bytes: Int
        let run: () throws -> Void
    }

    private let cond = NSCondition()
    private let limitBytes: Int
    private var tasks: [Task] = []
    private var busyBytes = 0
    private var running = false
    private var closed = false
    private var failure: Error?
    private var stalled = 0.0

    /// Starts the writer thread; `limitBytes` bounds the payload queued and being written.
    init(limitBytes: Int, name: String) {
        self.limitBytes = limitBytes
        let t = Thread { [self] in loop() }
        t.name = name
        t.start()
    }

    /// Seconds `submit` has spent waiting for room so far.
    var stallSeconds: Double {
        cond.lock()
        defer { cond.unlock() }
        return stalled
    }

    /// Queues `body` (which holds `bytes` of payload) behind the earlier tasks; waits while the queue is full.
    func submit(bytes: Int, _ body: @escaping () throws -> Void) throws {
        cond.lock()
        defer { cond.unlock() }
        if busyBytes > 0 && busyBytes + bytes > limitBytes && failure == nil && !closed {
            let start = DispatchTime.now().uptimeNanoseconds
            while busyBytes > 0 && busyBytes + bytes > limitBytes && failure == nil && !closed { cond.wait() }
            stalled += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        if let failure { throw failure }
        guard !closed else { throw CancellationError() }
        tasks.append(Task(bytes: bytes, run: body))
        busyBytes += bytes
        cond.broadcast()
    }

    /// Waits until every submitted task has run; throws the first task's error, if any.
    func drain() throws {
        cond.lock()
        defer { cond.unlock() }
        while (!tasks.isEmpty || running) && failure == nil { cond.wait() }
        if let failure { throw failure }
    }

    /// Drops the queued tasks, waits for the one running, and ends the thread.
    func close() {
        cond.lock()
        defer { cond.unlock() }
        closed = true
        tasks.removeAll()
        busyBytes = 0
        cond.broadcast()
        while running { cond.wait() }
    }

    private func loop() {
        cond.lock()
        defer { cond.unlock() }
        while true {
            while tasks.isEmpty && !closed { cond.wait() }
            if tasks.isEmpty { return }
            let task = tasks.removeFirst()
            running = true
            cond.unlock()
            var error: Error?
            do { try task.run() } catch let e { error = e }
            cond.lock()
            running = false
            busyBytes = max(0, busyBytes - task.bytes)
            if let error, failure == nil {
                failure = error
                tasks.removeAll()
                busyBytes = 0
            }
            cond.broadcast()
        }
    }
}
