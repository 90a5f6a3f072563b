import Foundation

/// Explicit parallel splits. Work is cut into chunks whose boundaries depend only on the data
/// size, never on the thread count, so results are identical for any `threads`.
public enum Parallel {
    /// Calls `body(i)` for every i in 0..<count on up to `threads` threads (striped: thread t takes t, t+T, ...).
    public static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        let t = max(1, min(threads, count))
        if t == 1 {
            for i in 0..<count { body(i) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: t) { tid in
            var i = tid
            while i < count {
                body(i)
                i += t
            }
        }
    }

    /// Calls `body(i)` for every i in 0..<count on up to `threads` threads, each taking the next
    /// index as it becomes free (for tasks of unequal cost, the costliest first).
    public static func forEachInOrder(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        let t = max(1, min(threads, count))
        if t == 1 {
            for i in 0..<count { body(i) }
            return
        }
        let lock = NSLock()
        nonisolated(unsafe) var next = 0
        DispatchQueue.concurrentPerform(iterations: t) { _ in
            while true {
                let i = lock.withLock { () -> Int in
                    defer { next += 1 }
                    return next
                }
                guard i < count else { return }
                body(i)
            }
        }
    }

    /// Chunk ranges of at most `chunk` elements covering 0..<n.
    public static func chunks(_ n: Int, chunk: Int) -> [Range<Int>] {
        stride(from: 0, to: n, by: chunk).map { $0..<min($0 + chunk, n) }
    }
}
