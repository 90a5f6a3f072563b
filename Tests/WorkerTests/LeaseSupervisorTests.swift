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

        init() throws {
            let root = NSTemporaryDirectory() + "sup-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let cfg = Worker.Configuration(databaseURL: "-", redisURL: "-", artifactRoot: root)
            var current: (() -> WorkerState)?
            supervisor = LeaseSupervisor(
                settings: .init(cfg), active: active, store: store, hints: hints, publisher: try ArtifactPublisher(root: root),
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

    @Test func theWorkersStateFromItsFlags() {
        #expect(Worker.heartbeatState(stopping: false, canClaim: true) == .running)
        #expect(Worker.heartbeatState(stopping: false, canClaim: false) == .disconnected)
        #expect(Worker.heartbeatState(stopping: true, canClaim: false) == .draining)
        #expect(Worker.heartbeatState(stopping: true, canClaim: true) == .draining)
    }
}
