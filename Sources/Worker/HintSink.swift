import Foundation

/// Where claimable jobs' hints go (Redis's sorted set; a fake in tests).
protocol HintSink: AnyObject {
    /// Pushes each job id with its due score.
    func push(_ items: [(id: UUID, score: Double)]) throws
}

extension SharedRedis: HintSink {}
