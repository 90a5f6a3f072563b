import Foundation
import Queue
import Testing
import TestSupport

@Suite struct MigratorTests {
    /// The binary's migrations are migrations/ exactly (a new file needs its line in Migrator+Embedded.swift).
    @Test func theBuiltInMigrationsAreTheDirectorysFiles() throws {
        let dir = try Migrator(directory: URL(fileURLWithPath: TestConfiguration.repoRoot + "/migrations"))
        let built = try Migrator()
        #expect(built.migrations.map(\.name) == dir.migrations.map(\.name), "list it in Migrator+Embedded.swift")
        for (a, b) in zip(built.migrations, dir.migrations) { #expect(a.sql == b.sql, "\(a.name)") }
    }

    @Test func concurrentMigrationsApplyOnce() throws {
        let admin = try PostgresConnection(url: TestConfiguration.adminURL)
        let name = "squeeze_mig_" + UUID().uuidString.prefix(8).lowercased()
        try admin.executeScript("CREATE DATABASE \(name)")
        var c = URLComponents(string: TestConfiguration.adminURL)!
        c.path = "/" + name
        let url = c.string!
        let m = try Migrator(directory: URL(fileURLWithPath: TestConfiguration.repoRoot + "/migrations"))
        let results = Locked([[String]]())
        let errors = Locked([String]())
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let db = try PostgresConnection(url: url)
                let applied = try m.migrate(db)
                results.mutate { $0.append(applied) }
            } catch { errors.mutate { $0.append("\(error)") } }
        }
        #expect(errors.value.isEmpty, "\(errors.value)")
        // Each file is its own transaction, so the four may share the work; every file
        // must be applied by exactly one of them.
        let applied = results.value.flatMap { $0 }
        #expect(applied.sorted() == m.migrations.map(\.name).sorted(), "\(results.value)")
        let db = try PostgresConnection(url: url)
        #expect(try db.query("SELECT count(*) AS n FROM schema_migrations")[0].decode("n", as: Int.self) == m.migrations.count)
        #expect(try m.migrate(db).isEmpty)
        for view in ["queue_overview", "worker_health", "batch_progress", "job_durations", "failing_jobs", "compression_summary"] {
            #expect(try db.query("SELECT count(*) AS n FROM \(view)").count == 1)
        }
    }
}

final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.withLock { v } }
    func mutate(_ f: (inout T) -> Void) { lock.withLock { f(&v) } }
}
