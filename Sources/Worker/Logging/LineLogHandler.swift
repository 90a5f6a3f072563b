import Compute
import Foundation
import Logging

/// A swift-log handler writing one line per event to stderr: logfmt (`ts=… level=info msg="…" k=v`)
/// or JSON (`{"ts":…,"level":…,"msg":…,"k":"v"}`). Metadata keys are sorted; `job_id` and
/// `attempt` come first so a job's lines line up.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable { case logfmt, json }

    public let format: Format
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private static let lock = NSLock()

    public init(format: Format) { self.format = format }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let keys = all.keys.sorted { (Self.rank($0), $0) < (Self.rank($1), $1) }
        let pairs =
            [("ts", Self.timestamp()), ("level", Self.name(event.level)), ("msg", event.message.description)]
            + keys.map { ($0, "\(all[$0]!)") }
        let line = format == .json ? Self.json(pairs) : Self.logfmt(pairs)
        Self.lock.withLock { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    private static func rank(_ key: String) -> Int { key == LogKey.jobID ? 0 : key == LogKey.attempt ? 1 : 2 }

    private static func name(_ l: Logger.Level) -> String {
        switch l {
        case .trace, .debug: return "debug"
        case .info, .notice: return "info"
        case .warning: return "warn"
        case .error, .critical: return "error"
        }
    }

    static func logfmt(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0.0)=\(quote($0.1))" }.joined(separator: " ")
    }

    static func quote(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:/@".contains($0) }) { return s }
        return "\""
            + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    static func json(_ pairs: [(String, String)]) -> String {
        "{" + pairs.map { "\(TextRules.json($0.0)):\(TextRules.json($0.1))" }.joined(separator: ",") + "}"
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
            Int(tmv.tm_mday),
            Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), Int(tv.tv_usec / 1000))
    }
}
