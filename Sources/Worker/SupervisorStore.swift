import Foundation
import Queue

/// What the lease supervisor reads and writes: heartbeats, lease renewals (with cancel flags read
/// back), reconciler passes and job states for the disk sweeper. `PostgresSupervisorStore` is the
/// real one (its own connection); tests give a fake.
protocol SupervisorStore: AnyObject {
    func heartbeat(worker: String, state: WorkerState) throws
    /// Renews the leases still held; returns, per job still held, whether cancel was requested.
    func renew(_ leases: [(id: UUID, attempt: Int)], leaseSeconds: Double) throws -> [UUID: Bool]
    func reconcile(fullSweep: Bool) throws -> JobStore.ReconcileResult
    func states(_ jobs: [UUID]) throws -> [UUID: (state: String, attempt: Int)]
    /// Drops the connection after an error (the next call reconnects).
    func reset()
}

/// The supervisor's store over a PostgreSQL connection: its own (leases), or one it shares (housekeeping).
final class PostgresSupervisorStore: SupervisorStore {
    private let db: SharedPostgres
    private let store = JobStore()

    init(db: SharedPostgres) { self.db = db }

    func heartbeat(worker: String, state: WorkerState) throws {
        try db.with { try WorkerRegistry().heartbeat($0, id: worker, state: state) }
    }

    func renew(_ leases: [(id: UUID, attempt: Int)], leaseSeconds: Double) throws -> [UUID: Bool] {
        try db.with { try store.renew($0, leases: leases, leaseSeconds: leaseSeconds) }
    }

    func reconcile(fullSweep: Bool) throws -> JobStore.ReconcileResult {
        try db.with { try store.reconcile($0, fullSweep: fullSweep) }
    }

    func states(_ jobs: [UUID]) throws -> [UUID: (state: String, attempt: Int)] {
        try db.with { try store.states($0, jobs: jobs) }
    }

    func reset() { db.close() }
}
