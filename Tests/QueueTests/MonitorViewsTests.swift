import Foundation
import Queue
import Testing
import TestSupport

/// The dashboard's reads (JobStore+monitor.swift), each run as a `squeeze_monitor` login against a
/// real PostgreSQL holding a batch with a succeeded, a failed and a running job: what each returns,
/// and that the monitoring views are all they need.
@Suite struct MonitorViewsTests {
    let store = JobStore()

    /// A login in `squeeze_monitor` on `t`'s database (dropped by `drop`).
    static func monitorLogin(_ t: TestDatabase, _ owner: PostgresConnection) throws -> (PostgresConnection, String) {
        let role = "sq_mon_" + UUID().uuidString.prefix(8).lowercased()
        _ = try owner.query("CREATE ROLE \(role) LOGIN IN ROLE squeeze_monitor")
        var url = try #require(URLComponents(string: t.url))
        url.user = role
        url.password = nil
        return (try PostgresConnection(url: try #require(url.string)), role)
    }

    @Test func everyDashboardReadWorksFromTheViewsAlone() throws {
        let t = try TestDatabase.create()
        let owner = try t.connect()
        let jobs = (0..<3).map { i in
            var j = NewJob(kind: "noop", recipeJSON: #"{"stages":[{"prune":{"method":"magnitude"}}]}"#, inputPath: "in\(i)")
            j.maxAttempts = 1
            return j
        }
        let (batchID, submitted) = try store.submit(owner, jobs: jobs, batchName: "nightly")
        let batch = try #require(batchID)
        let ids = submitted.map(\.id)
        try WorkerRegistry().register(
            owner, id: "w1", host: "h", pid: 7, version: "v", concurrency: 2, threads: 2, maxMemory: nil)
        let claimed = try store.claim(owner, ids: ids, workerID: "w1", leaseSeconds: 300)
        #expect(claimed.count == 3)
        let metric = LayerMetricRecord(
            tensor: "blk.0.ffn_up.weight", unitIndex: 0, dtype: "F32", numel: 64, sparsity: 0.5, bits: 32,
            relativeError: 0.01, elapsedMS: 2, bytesIn: 256, bytesOut: 256)
        #expect(try store.recordUnit(owner, job: ids[0], attempt: 1, metric: metric))
        try store.event(
            owner, job: ids[0], attempt: 1, kind: "evaluated",
            detailJSON: #"{"perplexity": 12.5, "original_perplexity": 10, "mean_kl": 0.02, "model_bytes": 900}"#)
        let art = ArtifactRecord(path: "artifacts/a/model.gguf", bytes: 1000, sha256: "ab", format: "gguf")
        let done = JobStore.Completion(job: ids[0], attempt: 1, outputPath: "out", artifacts: [art])
        #expect(try store.complete(owner, [done], workerID: "w1") == [ids[0]])
        #expect(
            try store.fail(owner, job: ids[1], attempt: 1, code: .io, message: "disk", permanent: true, backoffSeconds: 1)
                == .failed)

        let (db, role) = try Self.monitorLogin(t, owner)
        defer { _ = try? owner.query("DROP OWNED BY \(role)") }

        let summary = try #require(try store.jobSummary(db, id: ids[0]))
        #expect(summary.state == "succeeded" && summary.batchID == batch && summary.artifactBytes == 1000)
        #expect(summary.runSeconds != nil && summary.outputPath == "out" && summary.inputPath == "in0")
        #expect(try store.jobSummary(db, id: UUID()) == nil)

        let counts = try #require(try store.batchSummary(db, id: batch))
        #expect(counts.name == "nightly" && counts.jobs == 3 && counts.succeeded == 1 && counts.failed == 1)
        #expect(counts.running == 1 && counts.pctDone == 66.7)
        #expect(try store.batchSummaries(db, limit: 10, offset: 0).map(\.id) == [batch])
        #expect(try store.batchSummaries(db, limit: 10, offset: 1).isEmpty)
        let active = try store.activeBatches(db)
        #expect(active.map(\.batch.id) == [batch] && active.first?.finishedRecently == 2)

        let rows = try store.batchJobs(db, batch: batch, limit: 10, offset: 0)
        #expect(Set(rows.map(\.job.id)) == Set(ids) && rows.count == 3)
        #expect(rows.first { $0.job.id == ids[0] }?.perplexityRatio == 1.25)
        let sized = try store.batchSizeQuality(db, batch: batch)
        #expect(sized.map(\.id) == [ids[0]] && sized.first?.size == 900, "the evaluated file's bytes")

        let evaluation = try #require(try store.evaluation(db, job: ids[0]))
        #expect(evaluation.perplexity == 12.5 && evaluation.meanKL == 0.02 && evaluation.top1 == nil)
        #expect(try store.evaluation(db, job: ids[1]) == nil)

        let failures = try store.recentFailures(db)
        #expect(failures.map(\.id) == [ids[1]] && failures.first?.errorCode == "io" && failures.first?.error == "disk")

        let attempts = try store.attemptLog(db, job: ids[0])
        #expect(attempts.map(\.attempt.outcome) == ["succeeded"] && attempts[0].startEpoch <= attempts[0].endEpoch)
        #expect(try store.layerMetrics(db, job: ids[0]).map(\.tensor) == ["blk.0.ffn_up.weight"])
        let files = try store.artifactFiles(db, job: ids[0])
        #expect(files.map(\.path) == ["artifacts/a/model.gguf"] && files.first?.bytes == 1000)
        let events = try store.latestEvents(db, job: ids[0])
        #expect(events.contains { $0.kind == "evaluated" } && events.count >= 2)
        #expect(try store.latestEvents(db, job: ids[0], limit: 1).count == 1)

        let workers = try store.fleetWorkers(db)
        #expect(workers.map(\.id) == ["w1"] && workers[0].alive && workers[0].currentJobs == [ids[2].uuidString.lowercased()])

        let minutes = try store.finishedSeries(db, step: "minute", window: "1 hour")
        #expect(minutes.count == 61)
        #expect(minutes.map(\.succeeded).reduce(0, +) == 1 && minutes.map(\.failed).reduce(0, +) == 1)

        let fleet = try store.fleetCounts(db)
        #expect(fleet.byState["succeeded"] == 1 && fleet.byState["running"] == 1 && fleet.byState["failed"] == 1)
        #expect(fleet.finishedByState == ["succeeded": 1, "failed": 1] && fleet.artifactBytes == 1000)
        #expect(fleet.workersAlive == 1 && fleet.workersStale == 0)

        // Finished jobs settle for 5 s before /metrics counts them, then come once each, in order.
        #expect(try store.finishedJobs(db, after: nil, limit: 10).isEmpty)
        _ = try owner.query("UPDATE jobs SET finished_at = finished_at - interval '1 minute' WHERE finished_at IS NOT NULL")
        let finished = try store.finishedJobs(db, after: nil, limit: 1)
        #expect(finished.count == 1)
        let rest = try store.finishedJobs(db, after: (finished[0].finishedAt, finished[0].id), limit: 10)
        #expect(Set((finished + rest).map(\.id)) == Set(ids[0...1].map { $0.uuidString.lowercased() }))
        #expect(rest.count == 1)
    }
}
