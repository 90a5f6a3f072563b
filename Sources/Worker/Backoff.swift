import Foundation

/// Exponential backoff with ±25% jitter: base × 2^(n−1), the jittered delay capped (never over `cap`).
public struct Backoff: Sendable {
    public var base: Double
    public var cap: Double

    public init(base: Double = 2, cap: Double = 300) {
        self.base = base
        self.cap = cap
    }

    /// Delay before retry number `n` (1-based).
    public func delay(_ n: Int) -> Double {
        let raw = base * pow(2, Double(min(max(0, n - 1), 62)))
        return min(cap, raw * Double.random(in: 0.75...1.25))
    }
}
