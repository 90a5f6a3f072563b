import Foundation
import Queue
import Testing
import TestSupport

@Suite struct PostgresClientTests {
    let db: PostgresConnection

    init() throws { db = try TestDatabase.create().connect() }

    @Test func bindsEveryType() throws {
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let blob = Data((0...255).map { UInt8($0) })
        let r = try db.query("""
            SELECT $1::text AS s, $2::bigint AS i, $3::int AS i32, $4::float8 AS d, $5::bool AS b, $6::uuid AS u,
                   $7::timestamptz AS t, $8::bytea AS bytes, $9::text AS n, $10::float8 AS nan, $11::float8 AS inf,
                   $12::text[] AS arr, $13::bigint[] AS iarr, $14::jsonb AS j, $15::int AS neg
            """, ["héllo 🌍 'quote' \"dq\" \\ back", Int64.max, Int32.min, 0.1, true, id, date, blob, String?.none,
                  Double.nan, -Double.infinity, ["a", "b,c", "d\"e", "f\\g", "NULL"], [Int64(1), Int64(-2)],
                  #"{"k": [1, "v"]}"#, -42])[0]
        #expect(try r.decode("s", as: String.self) == "héllo 🌍 'quote' \"dq\" \\ back")
        #expect(try r.decode("i", as: Int64.self) == Int64.max)
        #expect(try r.decode("i32", as: Int32.self) == Int32.min)
        #expect(try r.decode("d", as: Double.self) == 0.1)
        #expect(try r.decode("b", as: Bool.self) == true)
        #expect(try r.decode("u", as: UUID.self) == id)
        #expect(abs(try r.decode("t", as: Date.self).timeIntervalSince(date)) < 1e-6)
        #expect(try r.decode("bytes", as: Data.self) == blob)
        #expect(r["n"] == nil)
        #expect(try r.decode("n", as: String?.self) == nil)
        #expect(try r.decode("nan", as: Double.self).isNaN)
        #expect(try r.decode("inf", as: Double.self) == -.infinity)
        #expect(r["arr"] == #"{a,"b,c","d\"e","f\\g","NULL"}"#)
        #expect(try db.query("SELECT ($1::text[])[5] IS NULL AS isnull", [["x", "y", "z", "w", "NULL"]])[0].decode("isnull", as: Bool.self) == false)
        #expect(r["iarr"] == "{1,-2}")
        #expect(r["j"] == #"{"k": [1, "v"]}"#)
        #expect(try r.decode("neg", as: Int.self) == -42)
    }

    @Test func unicodeAndLargeValuesRoundTrip() throws {
        let big = String(repeating: "Ünïcødé ✓ ", count: 100_000)  // ~1.3 MB
        #expect(big.utf8.count > 1_000_000)
        try db.query("CREATE TABLE t (v text)")
        try db.query("INSERT INTO t VALUES ($1)", [big])
        let back = try db.query("SELECT v, length(v) AS n FROM t")[0]
        #expect(try back.decode("v", as: String.self) == big)
        #expect(try back.decode("n", as: Int.self) == big.count)
    }

    @Test func injectionIsJustData() throws {
        try db.query("CREATE TABLE u (name text)")
        let evil = "x'); DROP TABLE u; --"
        try db.query("INSERT INTO u VALUES ($1)", [evil])
        #expect(try db.query("SELECT name FROM u")[0]["name"] == evil)
    }

    @Test func sqlErrorsCarrySQLState() throws {
        do {
            try db.query("SELECT * FROM no_such_table")
            Issue.record("no error")
        } catch let e as PostgresError {
            #expect(e.sqlState == "42P01")
            #expect(e.code == .server)
            #expect(e.description.contains("no_such_table"))
            #expect(!e.isTransient)
        }
        do {
            try db.query("SELECT 1 / $1::int", [0])
            Issue.record("no error")
        } catch let e as PostgresError {
            #expect(e.sqlState == "22012")
        }
        // The connection is still usable after errors.
        #expect(try db.query("SELECT 2 AS x")[0]["x"] == "2")
    }

    @Test func transactionsCommitAndRollBack() throws {
        try db.query("CREATE TABLE tx (v int)")
        try db.transaction { try $0.query("INSERT INTO tx VALUES ($1)", [1]) }
        #expect(throws: PostgresError.self) {
            try db.transaction { tx in
                try tx.query("INSERT INTO tx VALUES ($1)", [2])
                try tx.query("SELECT * FROM nope")
            }
        }
        #expect(try db.query("SELECT count(*) AS n FROM tx")[0]["n"] == "1")
    }

    @Test func reconnectsAfterTheServerDropsTheConnection() throws {
        let pid = db.backendPID
        #expect(pid > 0)
        let killer = try PostgresConnection(url: TestConfiguration.adminURL)
        try killer.query("SELECT pg_terminate_backend($1)", [pid])
        // The first statement on the dead connection reports the loss as transient…
        do {
            try db.query("SELECT 1")
        } catch let e as PostgresError {
            #expect(e.isTransient, "\(e)")
        }
        // …and the next one reconnects.
        #expect(try db.query("SELECT 1 AS one")[0]["one"] == "1")
        #expect(db.backendPID != pid)
    }

    @Test func connectionFailureIsClear() {
        do {
            _ = try PostgresConnection(url: "postgres://postgres@127.0.0.1:1/none", connectTimeoutSeconds: 2)
            Issue.record("connected to port 1?")
        } catch let e as PostgresError {
            #expect(e.code == .connectionFailed)
            #expect(!e.description.contains("\n"))
        } catch { Issue.record("\(error)") }
    }
}

/// A client stopped inside a transaction (SIGSTOP, a paused VM, a cut cable) must not hold its locks
/// past `idleInTransactionTimeout`: workers set it, so a stalled worker cannot block the reconciler.
@Suite struct IdleTransactionTests {
    @Test func aClientStalledInATransactionLosesItsSessionAndItsLocks() throws {
        let test = try TestDatabase.create()
        let stalled = SharedPostgres(url: test.url, idleInTransactionTimeout: 0.3)
        let other = try test.connect()
        let lock: Int64 = 0x5351_5245_434F
        func otherGetsLock() throws -> Bool {
            try other.transaction { try $0.query("SELECT pg_try_advisory_xact_lock($1) AS ok", [lock])[0].decode("ok") }
        }
        #expect(throws: PostgresError.self) {
            try stalled.with { db in
                try db.transaction { tx in
                    try tx.query("SELECT pg_advisory_xact_lock($1)", [lock])
                    #expect(try otherGetsLock() == false)
                    Thread.sleep(forTimeInterval: 1.0)  // stalled past the limit
                    #expect(try otherGetsLock() == true)
                    try tx.query("SELECT 1")  // the session is gone
                }
            }
        }
        // A plain connection keeps its transaction however long it waits.
        let patient = try test.connect()
        try patient.transaction { tx in
            try tx.query("SELECT pg_advisory_xact_lock($1)", [lock])
            Thread.sleep(forTimeInterval: 0.6)
            #expect(try otherGetsLock() == false)
        }
        // The stalled client's next transaction reconnects.
        #expect(try stalled.with { try $0.query("SELECT 1 AS one")[0].decode("one", as: Int.self) } == 1)
    }
}
