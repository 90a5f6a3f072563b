import Foundation
import Logging

/// The worker's logger: a swift-log `Logger` (handler: `LineLogHandler`, logfmt or JSON lines on
/// stderr) with the project's call style, `log.info("msg", (LogKey.jobID, id))`. Each job's
/// logger carries `job_id` and `attempt`.
public struct Log: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var swiftLog: Logger.Level { [.debug, .info, .warning, .error][rawValue] }
    }

    public private(set) var logger: Logger

    public init(level: Level = .info, format: LineLogHandler.Format = .logfmt) {
        var l = Logger(label: "squeeze") { _ in LineLogHandler(format: format) }
        l.logLevel = level.swiftLog
        logger = l
    }

    /// A logger with extra metadata keys.
    public func with(_ kv: (String, String)...) -> Log {
        var l = self
        for (k, v) in kv { l.logger[metadataKey: k] = .string(v) }
        return l
    }

    public func debug(_ msg: String, _ kv: (String, String)...) { emit(.debug, msg, kv) }
    public func info(_ msg: String, _ kv: (String, String)...) { emit(.info, msg, kv) }
    public func warning(_ msg: String, _ kv: (String, String)...) { emit(.warning, msg, kv) }
    public func error(_ msg: String, _ kv: (String, String)...) { emit(.error, msg, kv) }

    private func emit(_ l: Level, _ msg: String, _ kv: [(String, String)]) {
        logger.log(
            level: l.swiftLog, Logger.Message(stringLiteral: msg),
            metadata: kv.isEmpty
                ? nil : Dictionary(kv.map { ($0.0, Logger.MetadataValue.string($0.1)) }, uniquingKeysWith: { $1 }))
    }
}

/// Metadata keys, in one place.
public enum LogKey {
    public static let jobID = "job_id", attempt = "attempt", worker = "worker", error = "error", kind = "kind"
}
