import Foundation
import Queue
import Testing
@testable import Worker

/// The supervisor's decisions against a fake store: which jobs keep their lease, which see a
/// cancel, what a failed renewal does, which state the heartbeat reports.
@Suite struct LeaseSupervisorTests {
    final class FakeStore: SupervisorStore {
        var held = [UUID: Bool]()
        var fail = false
        var heartbeats = [WorkerState]()
        var renewed = [[UUID]]()
        var resets = 0
        struct Down: Error {}

        func heartbeat(worker: String, state: WorkerState) throws {
            if fail { throw Down() }
            heartbeats.append(state)
        }
        func renew(_ leases: [(id: UUID, attempt: Int)], leaseSeconds: Double) throws -> [UUID: Bool] {
            if fail { throw Down() }
            renewed.append(leases.map(\.id))
            return held.filter { id, _ in leases.contains { $0.id == id } }
        }
        var due = [(id: UUID, score: Double)]()
        func reconcile(fullSweep: Bool) throws -> JobStore.ReconcileResult {
            var r = JobStore.ReconcileResult()
            r.toPush = due
            return r
        }
        func states(_ jobs: [UUID]) throws -> [UUID: (state: String, attempt: Int)] { [:] }
        func reset() { resets += 1 }
    }

    /// Counts renewals (thread-safe); a reconciler pass blocks until `release` is signalled.
    final class ThreadedStore: SupervisorStore {
        private let lock = NSLock()
        private var renewals = 0
        let release = DispatchSemaphore(value: 0)
        var renewCount: Int { lock.withLock { renewals } }

        func heartbeat(worker: String, state: WorkerState) throws {}
        func renew(_ leases: [(id: UUID, attempt: Int)], leaseSeconds: Double) throws -> [UUID: Bool] {
            lock.withLock { renewals += 1 }
            return [:]
        }
        func reconcile(fullSweep: Bool) throws -> JobStore.ReconcileResult {
            release.wait()
            return JobStore.ReconcileResult()
        }
        func states(_ jobs: [UUID]) throws -> [UUID: (state: String, attempt: Int)] { [:] }
        func reset() {}
    }

    final class FakeHints: HintSink {
        var pushed = [UUID]()
        func push(_ items: [(id: UUID, score: Double)]) throws { pushed += items.map(\.id) }
    }

    /// The supervisor's collaborators: no Worker, nothing that connects.
    final class Rig {
        let active = ActiveJobs()
        let store = FakeStore()
        let hints = FakeHints()
        var state = WorkerState.running
        let supervisor: LeaseSupervisor!

        init(leaseSeconds: Double = 15, stores: (SupervisorStore, SupervisorStore)? = nil) throws {
            let root = NSTemporaryDirectory() + "sup-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            var cfg = Worker.Configuration(databaseURL: "-", redisURL: "-", artifactRoot: root)
            cfg.leaseSeconds = leaseSeconds
            var current: (() -> WorkerState)?
            supervisor = LeaseSupervisor(
                settings: .init(cfg), active: active, stores: stores ?? (store, store), hints: hints, publisher: try ArtifactPublisher(root: root),
                log: Log(level: .error), metrics: WorkerMetrics()) { current!() }
            current = { [unowned self] in self.state }
        }

        func job() -> ActiveJob {
            let j = ActiveJob(job: ClaimedJob(id: UUID(), attempt: 1, kind: "noop", recipeJSON: "{}", inputPath: "-", inputSHA256: nil,
                                              maxAttempts: 3, releases: 0, memoryEstimate: nil), leaseSeconds: 15)
            active.add(j)
            return j
        }
    }

    @Test func leasesKeptLostAndCancelled() throws {
        let rig = try Rig()
        let kept = rig.job(), cancelled = rig.job(), lost = rig.job()
        let store = rig.store
        store.held = [kept.job.id: false, cancelled.job.id: true]
        #expect(rig.supervisor.renew())
        #expect(Set(store.renewed[0]) == [kept.job.id, cancelled.job.id, lost.job.id])
        #expect(!kept.leaseLost && !kept.cancelRequested)
        #expect(cancelled.cancelRequested && !cancelled.leaseLost)
        #expect(lost.leaseLost)
        #expect(store.heartbeats == [.running])
    }

    @Test func aFailedRenewalKeepsJobsUntilTheirLocalDeadline() throws {
        let rig = try Rig()
        let j = rig.job()
        let store = rig.store
        store.fail = true
        #expect(!rig.supervisor.renew())
        #expect(store.resets == 1)
        #expect(!j.leaseLost, "one failed renewal is not a lost lease: the local deadline (0.9 × lease) decides")
    }

    @Test func theHeartbeatReportsTheWorkersState() throws {
        let rig = try Rig()
        for s in [WorkerState.disconnected, .draining, .running] {
            rig.state = s
            _ = rig.supervisor.renew()
        }
        #expect(rig.store.heartbeats == [.disconnected, .draining, .running])
    }

    @Test func aReconcilerPassPushesTheDueJobsHints() throws {
        let rig = try Rig()
        let due = [UUID(), UUID()]
        rig.store.due = due.map { ($0, 1.0) }
        rig.supervisor.reconcile(fullSweep: true)
        #expect(rig.hints.pushed == due)
    }

    /// The lease thread renews while a reconciler pass is stuck (a slow pass once cost a busy
    /// worker its 3 s lease: renewals waited behind it on one thread).
    @Test func aStuckReconcilerPassDoesNotDelayRenewals() throws {
        let store = ThreadedStore()
        let rig = try Rig(leaseSeconds: 0.3, stores: (store, store))
        rig.supervisor.start()
        defer {
            store.release.signal()
            rig.supervisor.stop()
        }
        let deadline = Date().addingTimeInterval(30)
        while store.renewCount < 5, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(store.renewCount >= 5, "renewals stopped while the reconciler pass was stuck")
    }

    @Test func theWorkersStateFromItsFlags() {
        #expect(Worker.heartbeatState(stopping: false, canClaim: true) == .running)
        #expect(Worker.heartbeatState(stopping: false, canClaim: false) == .disconnected)
        #expect(Worker.heartbeatState(stopping: true, canClaim: false) == .draining)
        #expect(Worker.heartbeatState(stopping: true, canClaim: true) == .draining)
    }
}
