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

    /// Chunk ranges of at most `chunk` elements covering 0..<n.
    public static func chunks(_ n: Int, chunk: Int) -> [Range<Int>] {
        stride(from: 0, to: n, by: chunk).map { $0..<min($0 + chunk, n) }
    }
}
