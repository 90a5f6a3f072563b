import Foundation

/// A small logfmt logger to stderr; each job's logger carries `job_id` and `attempt`.
public struct Log: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var name: String { ["debug", "info", "warn", "error"][rawValue] }
    }
    public var level: Level
    public var metadata: [(String, String)]
    private static let lock = NSLock()

    public init(level: Level = .info, metadata: [(String, String)] = []) {
        self.level = level
        self.metadata = metadata
    }

    /// A logger with extra metadata keys.
    public func with(_ kv: (String, String)...) -> Log {
        var l = self
        l.metadata += kv
        return l
    }

    public func debug(_ msg: String, _ kv: (String, String)...) { emit(.debug, msg, kv) }
    public func info(_ msg: String, _ kv: (String, String)...) { emit(.info, msg, kv) }
    public func warning(_ msg: String, _ kv: (String, String)...) { emit(.warning, msg, kv) }
    public func error(_ msg: String, _ kv: (String, String)...) { emit(.error, msg, kv) }

    private func emit(_ l: Level, _ msg: String, _ kv: [(String, String)]) {
        guard l >= level else { return }
        var line = "ts=\(Self.timestamp()) level=\(l.name) msg=\(Self.quote(msg))"
        for (k, v) in metadata + kv { line += " \(k)=\(Self.quote(v))" }
        line += "\n"
        Self.lock.lock()
        FileHandle.standardError.write(Data(line.utf8))
        Self.lock.unlock()
    }

    static func quote(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:/@".contains($0) }) { return s }
        return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), Int(tv.tv_usec / 1000))
    }
}
