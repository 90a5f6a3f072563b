import Foundation

/// What a diagnostic no-op job does, stored as its recipe: `{"fail_times":K,"sleep_ms":N}`.
public struct NoopSpec: Codable, Sendable {
    enum CodingKeys: String, CodingKey { case sleepMS = "sleep_ms", failTimes = "fail_times" }
    public let sleepMS: Int
    public let failTimes: Int

    public init(sleepMS: Int, failTimes: Int) {
        self.sleepMS = sleepMS
        self.failTimes = failTimes
    }

    /// The spec as canonical JSON (sorted keys).
    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
