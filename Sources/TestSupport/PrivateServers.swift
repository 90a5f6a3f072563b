import Foundation
import Queue

/// A free loopback TCP port (bound, read back, released).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
    }
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
@discardableResult
public func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}

/// A Redis server of a test's own (no persistence), so the test can restart it.
public final class PrivateRedis: @unchecked Sendable {
    public let port = freePort()
    let dir: String
    /// Addresses it listens on besides 127.0.0.1 (a test network's host side).
    let extraBind: [String]

    public init(extraBind: [String] = []) throws {
        self.extraBind = extraBind
        dir = TestConfiguration.scratch + "/redis-\(port)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try start()
    }

    deinit { stop() }

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    public func start() throws {
        let r = try ProcessRunner.runDaemonizing(
            "/usr/bin/redis-server",
            [
                "--port", "\(port)", "--bind", (["127.0.0.1"] + extraBind).joined(separator: " "),
                "--protected-mode", extraBind.isEmpty ? "yes" : "no", "--daemonize", "yes",
                "--dir", dir, "--pidfile", dir + "/redis.pid", "--save", "",
                "--appendonly", "no", "--logfile", dir + "/redis.log"
            ])
        guard r.status == 0, waitUntil(timeout: 5, { (try? RedisConnection(url: url, timeout: 1)) != nil }) else {
            throw PostgresError(code: .connectionFailed, message: "private redis did not start on \(port): \(r.stderr)")
        }
    }

    /// Stops without saving: all data is lost, like a restart without persistence.
    public func stop() {
        _ = try? ProcessRunner.run("/usr/bin/redis-cli", ["-p", "\(port)", "shutdown", "nosave"], timeout: 10)
        _ = waitUntil(timeout: 5) { (try? RedisConnection(url: url, timeout: 0.2)) == nil }
    }

    public func restart() throws {
        stop()
        try start()
    }
}

/// A PostgreSQL cluster of a test's own (fsync off), so the test can restart it.
public final class PrivatePostgres: @unchecked Sendable {
    public let port = freePort()
    let dir: String
    let bin: String
    let asRoot = getuid() == 0
    /// The superuser's password when the cluster requires one over TCP (scram-sha-256).
    public let password: String?

    /// Addresses it listens on besides 127.0.0.1 (a test network's host side), trusted like loopback.
    let extraListen: [String]

    /// `password`: require it (scram-sha-256) for TCP connections; the local socket stays trusted.
    public init(password: String? = nil, extraListen: [String] = []) throws {
        self.password = password
        self.extraListen = extraListen
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let v = versions.sorted(by: { Int($0) ?? 0 < Int($1) ?? 0 }).last else {
            throw PostgresError(
                code: .connectionFailed, message: "no PostgreSQL server binaries under /usr/lib/postgresql")
        }
        bin = "/usr/lib/postgresql/\(v)/bin"
        // Under /tmp: the postgres user may not be able to enter the clone.
        dir = "/tmp/squeeze-test-pg-\(port)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if asRoot { try ProcessRunner.run("/bin/chown", ["postgres:postgres", dir]) }
        var auth = ["-A", "trust"]
        if let password {
            let pw = dir + "/pw"
            try password.write(toFile: pw, atomically: true, encoding: .utf8)
            if asRoot { try ProcessRunner.run("/bin/chown", ["postgres:postgres", pw]) }
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + pw]
        }
        let r = try pg(["initdb", "-D", dir + "/data", "-U", "postgres", "--no-sync", "-E", "UTF8"] + auth)
        guard r.status == 0 else { throw PostgresError(code: .connectionFailed, message: "initdb failed: \(r.stderr)") }
        if !extraListen.isEmpty {
            let hba = dir + "/data/pg_hba.conf"
            let nets = extraListen.map { $0.split(separator: ".").prefix(3).joined(separator: ".") + ".0/24" }
            let lines = nets.map { "host all all \($0) trust\n" }.joined()
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: hba))
            handle.seekToEndOfFile()
            handle.write(Data(lines.utf8))
            try handle.close()
        }
        try start()
    }

    deinit {
        _ = try? pg(["pg_ctl", "-D", dir + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func pg(_ args: [String]) throws -> ProcessResult {
        if asRoot {
            return try ProcessRunner.runDaemonizing(
                "/usr/sbin/runuser", ["-u", "postgres", "--", bin + "/" + args[0]] + args.dropFirst())
        }
        return try ProcessRunner.runDaemonizing(bin + "/" + args[0], Array(args.dropFirst()))
    }

    public var adminURL: String { url("postgres") }
    public func url(_ db: String) -> String {
        "postgres://postgres\(password.map { ":" + $0 } ?? "")@127.0.0.1:\(port)/\(db)"
    }

    public func start() throws {
        let r = try pg([
            "pg_ctl", "-D", dir + "/data", "-l", dir + "/log", "-w", "-o",
            "-c listen_addresses=\((["127.0.0.1"] + extraListen).joined(separator: ",")) -c port=\(port) "
                + "-c unix_socket_directories=\(dir) -c fsync=off -c "
                + "max_connections=100",
            "start"
        ])
        guard r.status == 0 else {
            throw PostgresError(code: .connectionFailed, message: "pg_ctl start failed: \(r.stderr)")
        }
    }

    /// A fast restart: every connection is dropped.
    public func restart() throws {
        let r = try pg([
            "pg_ctl", "-D", dir + "/data", "-m", "fast", "-w", "restart", "-o",
            "-c listen_addresses=\((["127.0.0.1"] + extraListen).joined(separator: ",")) -c port=\(port) "
                + "-c unix_socket_directories=\(dir) -c fsync=off -c "
                + "max_connections=100"
        ])
        guard r.status == 0 else {
            throw PostgresError(code: .connectionFailed, message: "pg_ctl restart failed: \(r.stderr)")
        }
    }

    /// Creates a migrated database.
    public func createDatabase(_ name: String) throws -> String {
        try PostgresConnection(url: adminURL).executeScript("CREATE DATABASE \(name)")
        let u = url(name)
        try Migrator(directory: URL(fileURLWithPath: TestConfiguration.repoRoot + "/migrations")).migrate(
            PostgresConnection(url: u))
        return u
    }
}
