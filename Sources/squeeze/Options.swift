import ArgumentParser
import Foundation
import Queue

/// Connection settings: flags first, then SQUEEZE_* environment variables.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "PostgreSQL URL (env SQUEEZE_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .long, help: "Redis URL (env SQUEEZE_REDIS_URL).")
    var redisURL: String?

    @Option(name: .long, help: "Prefix of Redis keys (env SQUEEZE_REDIS_PREFIX, default squeeze).")
    var redisPrefix: String?

    func database() throws -> String {
        guard let u = databaseURL ?? Settings.current.databaseURL, !u.isEmpty else {
            throw CLIError("no database: pass --database-url or set SQUEEZE_DATABASE_URL (eval \"$(./ops/stack env)\")")
        }
        return u
    }

    func redis() throws -> String {
        guard let u = redisURL ?? Settings.current.redisURL, !u.isEmpty else {
            throw CLIError("no redis: pass --redis-url or set SQUEEZE_REDIS_URL (eval \"$(./ops/stack env)\")")
        }
        return u
    }

    var prefix: String { redisPrefix ?? Settings.current.redisPrefix ?? "squeeze" }

    /// The queue's user-facing writes over these connections.
    func queue() throws -> JobQueue { JobQueue(db: try connect(), redisURL: try redis(), prefix: prefix) }

    func connect() throws -> PostgresConnection {
        do { return try PostgresConnection(url: try database()) } catch let e as PostgresError {
            throw CLIError("cannot connect to PostgreSQL: \(e.message)")
        }
    }
}

/// `--artifact-root`, shared by the worker (which needs one) and submit (whose models/ it allows).
struct ArtifactRootOption: ParsableArguments {
    @Option(
        name: .long, help: "Shared artifact root (env SQUEEZE_ARTIFACT_ROOT); its models/ is an allowed input root.")
    var artifactRoot: String?

    /// The flag, else `SQUEEZE_ARTIFACT_ROOT`, else nil.
    var configured: String? { artifactRoot ?? Settings.current.artifactRoot }

    func root() throws -> String {
        guard let r = configured, !r.isEmpty else {
            throw CLIError("no artifact root: pass --artifact-root or set SQUEEZE_ARTIFACT_ROOT")
        }
        return r
    }
}

/// A one-line error for the command line.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

/// Runs `body`, turning any error into a one-line CLIError that keeps the whole message (its
/// lines joined with "; ").
func oneLine<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as CLIError { throw e } catch let e as ExitCode { throw e } catch {
        throw CLIError(
            String(describing: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: "; "))
    }
}

/// Prints a warning line on stderr (nothing when nil).
func warn(_ message: String?) {
    if let m = message { FileHandle.standardError.write(Data("warning: \(m)\n".utf8)) }
}

/// Prints token ids as one line of compact JSON, `{"ids": [...]}` or `{"ids": [[...], ...], "vocab": n}`:
/// pretty-printed by JSONSerialization, a 1.4 MB text's 350,000 ids cost a second of CPU, more than tokenizing it.
func printTokenIDs(_ ids: [Int32]) {
    print(#"{"ids": "# + idArray(ids) + "}")
}

func printTokenIDs(rows: [[Int32]], vocab: Int) {
    print(#"{"ids": ["# + rows.map(idArray).joined(separator: ", ") + #"], "vocab": "# + String(vocab) + "}")
}

private func idArray(_ ids: [Int32]) -> String {
    "[" + ids.map { String($0) }.joined(separator: ", ") + "]"
}

func printJSON(_ obj: Any) {
    do {
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    } catch {
        FileHandle.standardError.write(Data("Error: cannot encode JSON output: \(error)\n".utf8))
        print("{}")
    }
}
