import ArgumentParser
import Foundation
import Queue

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run concurrently).")

    @OptionGroup var conn: ConnectionOptions

    @Option(
        name: .long,
        help: "Directory of NNNN_name.sql files to apply instead of those built in (env SQUEEZE_MIGRATIONS_DIR).")
    var migrations: String?

    func run() throws {
        try oneLine {
            let m: Migrator
            if let dir = migrations ?? Settings.current.migrationsDir {
                m = try Migrator(directory: URL(fileURLWithPath: dir))
            } else {
                m = try Migrator()
            }
            let db = try conn.connect()
            let applied = try m.migrate(db)
            if applied.isEmpty {
                print("up to date (\(m.migrations.count) migrations)")
            } else {
                for a in applied { print("applied \(a)") }
            }
        }
    }
}
