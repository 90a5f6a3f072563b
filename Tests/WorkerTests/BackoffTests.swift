import Testing
@testable import Worker

/// Retry delays grow as base × 2^(n−1) with ±25% jitter and never pass the cap (docs say 300 s).
@Suite struct BackoffTests {
    @Test func delaysStayWithinTheJitterAndTheCap() {
        let b = Backoff(base: 2, cap: 300)
        for n in 1...80 {
            let raw = 2 * Double(1 << UInt64(min(n - 1, 62)))
            for _ in 0..<200 {
                let d = b.delay(n)
                #expect(d <= 300, "retry \(n): \(d) s is over the cap")
                #expect(d >= min(300, 0.75 * raw) && d <= 1.25 * raw, "retry \(n): \(d) s")
            }
        }
    }
}
