import Foundation
import Testing

@testable import Worker

/// The checkpoint writer thread: tasks run in order, a full queue makes the submitter wait, and the
/// first failure stops the queue and reaches the submitting thread.
@Suite struct WriteBehindQueueTests {
    final class Log: @unchecked Sendable {
        let lock = NSLock()
        var items: [Int] = []
        func add(_ i: Int) {
            lock.lock()
            items.append(i)
            lock.unlock()
        }
    }

    struct Boom: Error {}

    @Test func tasksRunInSubmissionOrder() throws {
        let q = WriteBehindQueue(limitBytes: 1 << 20, name: "test")
        defer { q.close() }
        let log = Log()
        for i in 0..<200 { try q.submit(bytes: 100) { log.add(i) } }
        try q.drain()
        #expect(log.items == Array(0..<200))
    }

    @Test func aFullQueueMakesTheSubmitterWait() throws {
        let q = WriteBehindQueue(limitBytes: 100, name: "test")
        defer { q.close() }
        let start = Date()
        // Each task holds the whole limit: the second submit waits for the first to finish.
        try q.submit(bytes: 100) { Thread.sleep(forTimeInterval: 0.3) }
        try q.submit(bytes: 100) {}
        #expect(Date().timeIntervalSince(start) >= 0.25)
        #expect(q.stallSeconds >= 0.25)
        try q.drain()
    }

    @Test func aFailureDropsLaterTasksAndIsThrownToTheSubmitter() throws {
        let q = WriteBehindQueue(limitBytes: 1 << 20, name: "test")
        defer { q.close() }
        let log = Log()
        // The first task is slow, so all three are queued before the second fails.
        try q.submit(bytes: 1) {
            Thread.sleep(forTimeInterval: 0.2)
            log.add(1)
        }
        try q.submit(bytes: 1) { throw Boom() }
        try q.submit(bytes: 1) { log.add(3) }
        #expect(throws: Boom.self) { try q.drain() }
        #expect(throws: Boom.self) { try q.submit(bytes: 1) { log.add(4) } }
        Thread.sleep(forTimeInterval: 0.05)
        #expect(log.items == [1])
    }

    @Test func closeWaitsForTheRunningTaskAndDropsTheRest() throws {
        let q = WriteBehindQueue(limitBytes: 1 << 20, name: "test")
        let log = Log()
        try q.submit(bytes: 1) {
            Thread.sleep(forTimeInterval: 0.2)
            log.add(1)
        }
        try q.submit(bytes: 1) { log.add(2) }
        Thread.sleep(forTimeInterval: 0.05)
        q.close()
        #expect(log.items == [1])
        Thread.sleep(forTimeInterval: 0.1)
        #expect(log.items == [1])
    }
}
