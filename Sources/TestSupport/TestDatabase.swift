import Foundation
import Queue

/// A fresh, migrated database per test, so tests run in any order and in parallel.
public struct TestDatabase: Sendable {
    public let name: String
    public let url: String

    public init(name: String, url: String) {
        self.name = name
        self.url = url
    }

    /// Creates `squeeze_test_<random>` and applies the migrations.
    public static func create() throws -> TestDatabase {
        let name = "squeeze_test_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try PostgresConnection(url: TestConfiguration.adminURL)
        // Identifiers cannot be parameters; the name is generated above from hex digits only.
        precondition(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" })
        try admin.executeScript("CREATE DATABASE \(name)")
        let url = TestDatabase.url(replacingDatabaseIn: TestConfiguration.adminURL, with: name)
        let db = try PostgresConnection(url: url)
        try Migrator(directory: URL(fileURLWithPath: TestConfiguration.repoRoot + "/migrations")).migrate(db)
        return TestDatabase(name: name, url: url)
    }

    public func connect() throws -> PostgresConnection { try PostgresConnection(url: url) }

    /// Drops the database from the shared test cluster (closing what is still connected), so a
    /// suite of hundreds of tests does not leave hundreds of databases on disk.
    public func drop() {
        precondition(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" })
        try? PostgresConnection(url: TestConfiguration.adminURL).executeScript("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    static func url(replacingDatabaseIn url: String, with db: String) -> String {
        guard var c = URLComponents(string: url) else { return url }
        c.path = "/" + db
        return c.string ?? url
    }
}
