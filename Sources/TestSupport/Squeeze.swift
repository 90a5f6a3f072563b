import Foundation
import Queue

/// A test's private Squeeze environment: its own database, Redis key prefix and artifact root.
/// Its scratch directory and database are deleted when the last reference goes (outputs of real
/// models take hundreds of MB each and CI's disk may be small); `SQUEEZE_KEEP_SCRATCH=1` keeps them.
/// The database on the shared cluster is created on first use: a test that only runs the local
/// commands (`run`, `inspect`, `logits`, `generate`, `embed`) never needs one.
public final class SqueezeEnv: Sendable {
    private let database: LazyDatabase
    /// One connection for the test's own queries (`query`): polling with a new session each time cost
    /// the cluster about 10 ms of CPU per poll.
    private let queries: SharedPostgres
    /// The test's database, created now if it is not yet.
    public var db: TestDatabase {
        get throws { try database.created() }
    }
    public let redisURL: String
    public let redisPrefix: String
    public let artifactRoot: String
    public let scratch: String
    /// Whether `db` is on the shared test cluster (dropped when the environment goes).
    let sharedCluster: Bool
    /// The squeeze binary this environment runs (`TestConfiguration.checkedBinary` for hostile inputs).
    public let binary: String

    init(
        database: LazyDatabase, redisURL: String, redisPrefix: String, artifactRoot: String, scratch: String,
        sharedCluster: Bool, binary: String
    ) {
        self.binary = binary
        self.database = database
        self.queries = SharedPostgres(url: database.planned.url)
        self.sharedCluster = sharedCluster
        self.redisURL = redisURL
        self.redisPrefix = redisPrefix
        self.artifactRoot = artifactRoot
        self.scratch = scratch
    }

    deinit {
        queries.close()
        if ProcessInfo.processInfo.environment["SQUEEZE_KEEP_SCRATCH"] == nil {
            try? FileManager.default.removeItem(atPath: scratch)
            if sharedCluster { database.dropIfCreated() }
        }
    }

    /// A fresh database on the shared test cluster (or `postgres`), and `redisURL` (default the shared one);
    /// `checked` runs the build with bounds and overflow checks (suites of hostile and malformed inputs).
    public static func create(
        postgres: PrivatePostgres? = nil, redisURL: String = TestConfiguration.redisURL, checked: Bool = false
    ) throws -> SqueezeEnv {
        let database: LazyDatabase
        if let pg = postgres {
            let name = "squeeze_test_" + UUID().uuidString.prefix(8).lowercased()
            database = LazyDatabase(created: TestDatabase(name: name, url: try pg.createDatabase(name)))
        } else {
            database = LazyDatabase(planned: TestDatabase.planned())
        }
        let id = UUID().uuidString.prefix(8).lowercased()
        let scratch = TestConfiguration.scratch + "/" + database.planned.name
        try FileManager.default.createDirectory(
            atPath: scratch + "/artifacts/models", withIntermediateDirectories: true)
        return SqueezeEnv(
            database: database, redisURL: redisURL, redisPrefix: "test-\(id)", artifactRoot: scratch + "/artifacts",
            scratch: scratch,
            sharedCluster: postgres == nil, binary: checked ? TestConfiguration.checkedBinary : TestConfiguration.binary
        )
    }

    /// Runs one statement on the test's database (created first) over the environment's one connection,
    /// reconnecting once when the server dropped it (a restart in a fault drill).
    public func query(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> [PostgresRow] {
        _ = try db
        return try queries.with { c in
            do { return try c.query(sql, params) } catch  where !c.isOpen { return try c.query(sql, params) }
        }
    }

    /// The variables every squeeze process gets (the database created first).
    public var environment: [String: String] {
        get throws { try environment(creatingDatabase: true) }
    }

    /// Subcommands that never open the database.
    static let localCommands: Set<String> = ["run", "inspect", "logits", "generate", "embed"]

    func environment(creatingDatabase: Bool) throws -> [String: String] {
        let url = creatingDatabase ? try database.created().url : database.planned.url
        return [
            "SQUEEZE_DATABASE_URL": url, "SQUEEZE_REDIS_URL": redisURL,
            "SQUEEZE_REDIS_PREFIX": redisPrefix, "SQUEEZE_ARTIFACT_ROOT": artifactRoot,
            "SQUEEZE_INPUT_ROOTS": [
                scratch, ProcessInfo.processInfo.environment["SQUEEZE_MINILM_DIR"] ?? "",
                ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"] ?? "",
                TestConfiguration.repoRoot + "/.run/datasets"
            ].joined(separator: ":")
        ]
    }

    /// Runs `squeeze args...` to completion.
    @discardableResult
    public func squeeze(_ args: [String], timeout: Double = 300) throws -> ProcessResult {
        let local = args.first.map { Self.localCommands.contains($0) } ?? false
        return try ProcessRunner.run(binary, args, env: try environment(creatingDatabase: !local), timeout: timeout)
    }

    /// Starts `squeeze args...` in the background.
    public func startSqueeze(_ args: [String]) throws -> RunningProcess {
        try ProcessRunner.start(binary, args, env: try environment)
    }

    /// Runs a script from Tests/reference with the test Python, in a fork of the test process's
    /// Python fork server where that runs (numpy, safetensors, gguf and ml_dtypes already imported).
    @discardableResult
    public func python(_ script: String, _ args: [String], timeout: Double = 300) throws -> ProcessResult {
        try reference(script, args, on: PythonForkServer.shared, env: [:], timeout: timeout)
    }

    /// Runs a script from the repository (path relative to its root) with the peer Python (tests
    /// that call it are enabled only when `TestConfiguration.peerPython` is set).
    @discardableResult
    public func peerPython(_ script: String, _ args: [String]) throws -> ProcessResult {
        try ProcessRunner.run(
            TestConfiguration.peerPython ?? "python3", [TestConfiguration.repoRoot + "/" + script] + args,
            env: ["TQDM_DISABLE": "1"], timeout: 600)
    }

    /// Runs a script from Tests/reference with the real llama.cpp loadable (its CPU library and
    /// the libstdc++ shim `SQUEEZE_LLAMA_CPP_SHIM` that Debian 12 needs).
    @discardableResult
    public func pythonLlamaCpp(_ script: String, _ args: [String]) throws -> ProcessResult {
        try reference(script, args, on: PythonForkServer.llama, env: PythonForkServer.llamaEnvironment, timeout: 300)
    }

    /// Runs Tests/reference/`script` in a fork of `server`, or as a plain process where it could not start.
    private func reference(
        _ script: String, _ args: [String], on server: PythonForkServer?, env: [String: String], timeout: Double
    ) throws -> ProcessResult {
        let path = TestConfiguration.repoRoot + "/Tests/reference/" + script
        if let server {
            return try server.run(path, args, env: env, timeout: timeout)
        }
        return try ProcessRunner.run(TestConfiguration.python, [path] + args, env: env, timeout: timeout)
    }

    /// Writes a file into the scratch directory and returns its path.
    public func write(_ name: String, _ text: String) throws -> String {
        let p = scratch + "/" + name
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
}
