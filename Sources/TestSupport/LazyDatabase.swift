import Foundation

/// A test database created on first use (at most once, from any thread), and dropped only if it was.
final class LazyDatabase: @unchecked Sendable {
    /// The name and URL it has or will have.
    let planned: TestDatabase
    private let lock = NSLock()
    private var exists: Bool

    /// A database not created yet.
    init(planned: TestDatabase) {
        self.planned = planned
        exists = false
    }

    /// A database that already exists.
    init(created: TestDatabase) {
        planned = created
        exists = true
    }

    /// The database, created from the migrated template now if it is not yet.
    func created() throws -> TestDatabase {
        lock.lock()
        defer { lock.unlock() }
        if !exists {
            try planned.createFromTemplate()
            exists = true
        }
        return planned
    }

    /// Drops the database if it was created.
    func dropIfCreated() {
        lock.lock()
        defer { lock.unlock() }
        if exists { planned.drop() }
    }
}
