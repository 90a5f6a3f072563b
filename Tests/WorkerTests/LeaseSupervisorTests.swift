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
        func reconcile(fullSweep: Bool) throws -> JobStore.ReconcileResult { JobStore.ReconcileResult() }
        func states(_ jobs: [UUID]) throws -> [UUID: (state: String, attempt: Int)] { [:] }
        func reset() { resets += 1 }
    }

    func worker() throws -> Worker {
        let root = NSTemporaryDirectory() + "sup-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // Nothing connects: the supervisor only talks to the fake store.
        let cfg = Worker.Configuration(databaseURL: "postgres://nobody@127.0.0.1:1/none", redisURL: "redis://127.0.0.1:1", artifactRoot: root)
        return try Worker(config: cfg, log: Log(level: .error), stop: StopFlag())
    }

    func job(_ w: Worker) -> ActiveJob {
        let j = ActiveJob(job: ClaimedJob(id: UUID(), attempt: 1, kind: "noop", recipeJSON: "{}", inputPath: "-", inputSHA256: nil,
                                          maxAttempts: 3, releases: 0, memoryEstimate: nil), leaseSeconds: 15)
        w.active.add(j)
        return j
    }

    @Test func leasesKeptLostAndCancelled() throws {
        let w = try worker()
        let kept = job(w), cancelled = job(w), lost = job(w)
        let store = FakeStore()
        store.held = [kept.job.id: false, cancelled.job.id: true]
        let sup = LeaseSupervisor(worker: w, store: store)
        #expect(sup.renew())
        #expect(Set(store.renewed[0]) == [kept.job.id, cancelled.job.id, lost.job.id])
        #expect(!kept.leaseLost && !kept.cancelRequested)
        #expect(cancelled.cancelRequested && !cancelled.leaseLost)
        #expect(lost.leaseLost)
        #expect(store.heartbeats == [.running])
    }

    @Test func aFailedRenewalKeepsJobsUntilTheirLocalDeadline() throws {
        let w = try worker()
        let j = job(w)
        let store = FakeStore()
        store.fail = true
        let sup = LeaseSupervisor(worker: w, store: store)
        #expect(!sup.renew())
        #expect(store.resets == 1)
        #expect(!j.leaseLost, "one failed renewal is not a lost lease: the local deadline (0.9 × lease) decides")
    }

    @Test func theHeartbeatSaysDrainingOrDisconnected() throws {
        let w = try worker()
        let store = FakeStore()
        let sup = LeaseSupervisor(worker: w, store: store)
        w.canClaim = false
        _ = sup.renew()
        w.stop.set()
        _ = sup.renew()
        #expect(store.heartbeats == [.disconnected, .draining])
    }
}
