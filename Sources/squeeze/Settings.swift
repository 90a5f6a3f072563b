import ArgumentParser
import Compute
import Foundation

/// Every SQUEEZE_* environment variable the CLI reads, in one place; flags take precedence and
/// are applied by the option groups.
struct Settings {
    let databaseURL: String?
    let redisURL: String?
    let redisPrefix: String?
    let artifactRoot: String?
    /// `SQUEEZE_INPUT_ROOTS`, colon-separated.
    let inputRoots: [String]
    let migrationsDir: String?

    static let current = Settings(ProcessInfo.processInfo.environment)

    init(_ env: [String: String]) {
        func value(_ k: String) -> String? { env[k].flatMap { $0.isEmpty ? nil : $0 } }
        databaseURL = value("SQUEEZE_DATABASE_URL")
        redisURL = value("SQUEEZE_REDIS_URL")
        redisPrefix = value("SQUEEZE_REDIS_PREFIX")
        artifactRoot = value("SQUEEZE_ARTIFACT_ROOT")
        inputRoots = (env["SQUEEZE_INPUT_ROOTS"] ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        migrationsDir = value("SQUEEZE_MIGRATIONS_DIR")
    }
}

/// A duration flag: `30s`, `5m`, `2h`, `30d`, `1500ms` or plain seconds.
struct Duration: ExpressibleByArgument {
    let seconds: Double

    init?(argument s: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (u, f) in units where s.hasSuffix(u) {
            if let v = Double(s.dropLast(u.count)), v >= 0, v.isFinite {
                seconds = v * f
                return
            }
        }
        guard let v = Double(s), v >= 0, v.isFinite else { return nil }
        seconds = v
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A size flag: `512M`, `8G`, `1.5G`, or bytes.
struct ByteSize: ExpressibleByArgument {
    let bytes: Int64

    init?(argument s: String) {
        guard let b = ByteSizeText.bytes(s) else { return nil }
        bytes = b
    }
}

/// `--input-root` (repeatable), shared by the commands that read models.
struct InputRootOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A directory models may be read from (repeatable; also SQUEEZE_INPUT_ROOTS, and always <artifact "
                + "root>/models)."))
    var inputRoot: [String] = []

    /// Flags, then `SQUEEZE_INPUT_ROOTS`, then `<artifact root>/models`.
    func roots(artifactRoot: String?) -> [String] {
        inputRoot + Settings.current.inputRoots + (artifactRoot.map { [$0 + "/models"] } ?? [])
    }
}
