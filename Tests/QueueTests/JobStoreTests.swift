import Foundation
import Queue
import Testing
import TestSupport

/// Every JobStore statement against a real PostgreSQL, below the CLI (as river's driver tests run
/// each query): what a claim takes and leaves, how completion, failure and release are fenced by
/// the attempt, what the reconciler reaps and re-pushes, what retention forgets, and the views.
@Suite struct JobStoreTests {
    let store = JobStore()

    /// A fresh database and connection; `sql` runs there as its owner (to move time along).
    func fresh() throws -> (TestDatabase, PostgresConnection) {
        let t = try TestDatabase.create()
        return (t, try t.connect())
    }

    func submit(_ db: PostgresConnection, _ n: Int = 1, priority: Int = 0, delay: Double = 0, memory: Int64? = nil)
        throws -> [SubmittedJob]
    {
        let jobs = (0..<n).map { _ in
            var j = NewJob(kind: "noop", recipeJSON: "{}", inputPath: "noop")
            j.priority = priority
            j.delaySeconds = delay
            j.memoryEstimate = memory
            j.maxAttempts = 2
            return j
        }
        return try store.submit(db, jobs: jobs).jobs
    }

    func scalar(_ db: PostgresConnection, _ sql: String, _ params: [PostgresEncodable?] = []) throws -> String? {
        try db.query(sql, params).first?.values.first ?? nil
    }

    @Test func submitScoresPriorityFirstThenFIFOAndKeysAreIdempotent() throws {
        let (_, db) = try fresh()
        let low = try submit(db)[0]
        let high = try submit(db, 2, priority: 5)
        #expect(high[0].score < high[1].score && high[1].score < low.score, "BZPOPMIN takes the lowest score first")
        var keyed = NewJob(kind: "noop", recipeJSON: "{}", inputPath: "noop")
        keyed.idempotencyKey = "k1"
        let first = try store.submit(db, jobs: [keyed]).jobs[0]
        let again = try store.submit(db, jobs: [keyed]).jobs[0]
        #expect(!first.existed && again.existed && again.id == first.id)
        #expect(try scalar(db, "SELECT count(*) FROM job_events WHERE kind = 'submitted'") == "4")
        let batch = try store.submit(
            db, jobs: [keyed, NewJob(kind: "noop", recipeJSON: "{}", inputPath: "x")],
            batchName: "b")
        #expect(batch.batch != nil && batch.jobs[0].existed)
    }

    @Test func claimTakesOnlyQueuedDueUncancelledJobsThatFitInMemory() throws {
        let (_, db) = try fresh()
        let ready = try submit(db, 2)
        let later = try submit(db, delay: 3600)[0]
        let big = try submit(db, memory: 8 << 30)[0]
        let cancelled = try submit(db)[0]
        _ = try store.cancel(db, jobs: [cancelled.id])
        let ids = [ready[1].id, later.id, big.id, cancelled.id, ready[0].id]
        let got = try store.claim(db, ids: ids, workerID: "w1", leaseSeconds: 30, maxMemory: 1 << 30, blasCore: "Zen")
        #expect(got.map(\.id) == [ready[1].id, ready[0].id], "in the order asked, the others left out")
        #expect(got.allSatisfy { $0.attempt == 1 })
        #expect(try store.tooBig(db, id: big.id, maxMemory: 1 << 30) != nil)
        #expect(try store.claim(db, ids: [ready[0].id], workerID: "w2", leaseSeconds: 30).isEmpty, "claimed once")
        #expect(try scalar(db, "SELECT count(*) FROM job_attempts WHERE worker_id = 'w1' AND blas_core = 'Zen'") == "2")
        #expect(try scalar(db, "SELECT count(*) FROM job_events WHERE kind = 'claimed'") == "2")
        #expect(try scalar(db, "SELECT state FROM jobs WHERE id = $1", [later.id]) == "queued")
    }

    @Test func completionIsFencedByAttemptAndState() throws {
        let (_, db) = try fresh()
        let j = try submit(db)[0]
        let c = try #require(try store.claim(db, ids: [j.id], workerID: "w1", leaseSeconds: 30).first)
        let art = ArtifactRecord(path: "artifacts/x/model.gguf", bytes: 10, sha256: "ab", format: "gguf")
        let stale = JobStore.Completion(job: j.id, attempt: c.attempt + 1, outputPath: "o", artifacts: [art])
        #expect(try store.complete(db, [stale], workerID: "w1").isEmpty, "a stale attempt changes nothing")
        #expect(
            try store.recordUnit(
                db, job: j.id, attempt: c.attempt + 1,
                metric: LayerMetricRecord(
                    tensor: "t", unitIndex: 0, dtype: "F32", numel: 1, sparsity: 0, bits: 32, relativeError: nil,
                    elapsedMS: 1, bytesIn: 4, bytesOut: 4)) == false)
        let done = JobStore.Completion(job: j.id, attempt: c.attempt, outputPath: "o", artifacts: [art])
        #expect(try store.complete(db, [done], workerID: "w1") == [j.id])
        #expect(try store.complete(db, [done], workerID: "w1").isEmpty, "twice is once")
        #expect(try scalar(db, "SELECT state || ' ' || output_path FROM jobs WHERE id = $1", [j.id]) == "succeeded o")
        #expect(try scalar(db, "SELECT count(*) FROM artifacts WHERE job_id = $1", [j.id]) == "1")
        #expect(try scalar(db, "SELECT outcome FROM job_attempts WHERE job_id = $1", [j.id]) == "succeeded")
        #expect(
            try store.fail(
                db, job: j.id, attempt: c.attempt, code: .io, message: "late", permanent: false,
                backoffSeconds: 1) == nil, "a finished job cannot fail")
    }

    @Test func failureRetriesWithBackoffThenDiesAndPermanentErrorsFailAtOnce() throws {
        let (_, db) = try fresh()
        let j = try submit(db)[0]
        var c = try #require(try store.claim(db, ids: [j.id], workerID: "w", leaseSeconds: 30).first)
        #expect(
            try store.fail(
                db, job: j.id, attempt: c.attempt, code: .io, message: "disk", permanent: false,
                backoffSeconds: 60) == .retry)
        #expect(
            try scalar(db, "SELECT run_after > now() + interval '50 seconds' FROM jobs WHERE id = $1", [j.id]) == "t")
        #expect(try store.claim(db, ids: [j.id], workerID: "w", leaseSeconds: 30).isEmpty, "not due yet")
        _ = try db.query("UPDATE jobs SET run_after = now() WHERE id = $1", [j.id])
        c = try #require(try store.claim(db, ids: [j.id], workerID: "w", leaseSeconds: 30).first)
        #expect(
            try store.fail(
                db, job: j.id, attempt: c.attempt, code: .io, message: "disk", permanent: false,
                backoffSeconds: 60) == .dead, "max_attempts 2 spent")
        let p = try submit(db)[0]
        let pc = try #require(try store.claim(db, ids: [p.id], workerID: "w", leaseSeconds: 30).first)
        #expect(
            try store.fail(
                db, job: p.id, attempt: pc.attempt, code: .corruptHeader, message: "bad",
                permanent: true, backoffSeconds: 60) == .failed)
        #expect(try scalar(db, "SELECT error_code FROM jobs WHERE id = $1", [p.id]) == "corrupt_header")
        #expect(try scalar(db, "SELECT count(*) FROM failing_jobs") == "2")
        let again = try store.retry(db, allDead: true)
        #expect(again.map(\.id) == [j.id])
        #expect(
            try scalar(
                db, "SELECT state || ' ' || (max_attempts - (attempt - releases)) FROM jobs WHERE id = $1",
                [j.id]) == "queued 2", "a fresh attempt budget")
    }

    @Test func releaseGivesAJobBackWithoutSpendingAnAttempt() throws {
        let (_, db) = try fresh()
        let j = try submit(db)[0]
        let c = try #require(try store.claim(db, ids: [j.id], workerID: "w", leaseSeconds: 30).first)
        #expect(try store.release(db, job: j.id, attempt: c.attempt + 1, reason: "drain") == nil)
        #expect(try store.release(db, job: j.id, attempt: c.attempt, reason: "drain")?.id == j.id)
        #expect(
            try scalar(db, "SELECT state || ' ' || attempt || ' ' || releases FROM jobs WHERE id = $1", [j.id])
                == "queued 1 1")
        #expect(try scalar(db, "SELECT outcome FROM job_attempts WHERE job_id = $1", [j.id]) == "released")
    }

    @Test func renewalReportsCancelAndLosesTakenOverLeases() throws {
        let (_, db) = try fresh()
        let jobs = try submit(db, 2)
        let c = try store.claim(db, ids: jobs.map(\.id), workerID: "w", leaseSeconds: 30)
        _ = try store.cancel(db, jobs: [jobs[0].id])
        let r = try store.renew(
            db, leases: [(jobs[0].id, c[0].attempt), (jobs[1].id, c[1].attempt + 1)],
            leaseSeconds: 30)
        #expect(r == [jobs[0].id: true], "the cancel request is read back; a stale attempt is lost")
        #expect(try store.markCancelled(db, job: jobs[0].id, attempt: c[0].attempt))
        #expect(try scalar(db, "SELECT state FROM jobs WHERE id = $1", [jobs[0].id]) == "cancelled")
    }

    @Test func reconcileReapsExpiredLeasesAndListsDueJobs() throws {
        let (_, db) = try fresh()
        let jobs = try submit(db, 3)
        let c = try store.claim(db, ids: jobs.map(\.id), workerID: "gone", leaseSeconds: 30)
        _ = try db.query("UPDATE jobs SET lease_until = now() - interval '1 second'")
        _ = try db.query("UPDATE jobs SET max_attempts = 1 WHERE id = $1", [jobs[1].id])
        _ = try db.query("UPDATE jobs SET cancel_requested = true WHERE id = $1", [jobs[2].id])
        let queued = try submit(db)[0]
        let r = try store.reconcile(db, fullSweep: true)
        #expect(r.ranPass)
        #expect(r.requeued == [jobs[0].id] && r.dead == [jobs[1].id], "\(r.requeued) \(r.dead)")
        #expect(try scalar(db, "SELECT state FROM jobs WHERE id = $1", [jobs[2].id]) == "cancelled")
        #expect(Set(r.toPush.map(\.id)) == [jobs[0].id, queued.id], "due queued jobs are pushed again")
        #expect(
            try store.complete(
                db,
                [
                    JobStore.Completion(
                        job: jobs[0].id, attempt: c[0].attempt, outputPath: nil,
                        artifacts: [])
                ], workerID: "gone"
            ).isEmpty,
            "the reaped attempt is fenced out")
        #expect(try scalar(db, "SELECT count(*) FROM job_attempts WHERE outcome = 'lease_expired'") == "3")
    }

    @Test func retentionForgetsOnlyFinishedJobsPastTheirHorizon() throws {
        let (_, db) = try fresh()
        let jobs = try submit(db, 3)
        let c = try store.claim(db, ids: jobs.map(\.id), workerID: "w", leaseSeconds: 30)
        _ = try store.complete(
            db,
            [
                JobStore.Completion(
                    job: jobs[0].id, attempt: c[0].attempt, outputPath: nil,
                    artifacts: [])
            ], workerID: "w")
        _ = try store.fail(
            db, job: jobs[1].id, attempt: c[1].attempt, code: .corruptData, message: "x",
            permanent: true, backoffSeconds: 0)
        _ = try db.query("UPDATE jobs SET finished_at = now() - interval '40 days' WHERE finished_at IS NOT NULL")
        let dry = try store.expire(db, olderThan: 30 * 86_400, keepFailed: 90 * 86_400, dryRun: true)
        #expect(dry.jobs == 1 && dry.expired == [jobs[0].id])
        #expect(try scalar(db, "SELECT count(*) FROM jobs") == "3", "a dry run deletes nothing")
        let real = try store.expire(db, olderThan: 30 * 86_400, keepFailed: 90 * 86_400, dryRun: false)
        #expect(real.jobs == 1 && real.events >= 3)
        #expect(try scalar(db, "SELECT string_agg(state, ',' ORDER BY state) FROM jobs") == "failed,running")
    }

    /// Dependencies at the statement level (migration 0012's triggers): a dependent waits and is
    /// not due; completing its last dependency queues it in the same statement; a dead dependency
    /// cancels two levels of dependents; retrying a dependent whose dependency has not succeeded
    /// makes it wait; `isIdle` is false while a waiting job can still be released.
    @Test func dependenciesAreReleasedAndCancelledByTheEndingStatement() throws {
        let (_, db) = try fresh()
        let a = try submit(db)[0]
        var j = NewJob(kind: "noop", recipeJSON: "{}", inputPath: "noop")
        j.needsIDs = [a.id]
        let b = try store.submit(db, jobs: [j]).jobs[0]
        #expect(!b.due)
        #expect(try scalar(db, "SELECT state FROM jobs WHERE id = $1", [b.id]) == "waiting")
        #expect(try store.isIdle(db, horizon: 0) == false)
        #expect(try store.claim(db, ids: [b.id], workerID: "w", leaseSeconds: 30).isEmpty, "a waiting job is never claimed")
        let c = try #require(try store.claim(db, ids: [a.id], workerID: "w", leaseSeconds: 30).first)
        _ = try store.complete(db, [JobStore.Completion(job: a.id, attempt: c.attempt, outputPath: "o", artifacts: [])], workerID: "w")
        #expect(try scalar(db, "SELECT state FROM jobs WHERE id = $1", [b.id]) == "queued")
        #expect(try store.reconcile(db, fullSweep: false).toPush.contains { $0.id == b.id }, "the reconciler pushes it")
        let cb = try #require(try store.claim(db, ids: [b.id], workerID: "w", leaseSeconds: 30).first)
        _ = try store.complete(db, [JobStore.Completion(job: b.id, attempt: cb.attempt, outputPath: "o", artifacts: [])], workerID: "w")

        let x = try submit(db)[0]
        j.needsIDs = [x.id]
        let y = try store.submit(db, jobs: [j]).jobs[0]
        j.needsIDs = [y.id]
        let z = try store.submit(db, jobs: [j]).jobs[0]
        let cx = try #require(try store.claim(db, ids: [x.id], workerID: "w", leaseSeconds: 30).first)
        _ = try store.fail(db, job: x.id, attempt: cx.attempt, code: .io, message: "boom", permanent: true, backoffSeconds: 0)
        for d in [y.id, z.id] {
            #expect(try scalar(db, "SELECT state || ' ' || error_code FROM jobs WHERE id = $1", [d]) == "cancelled dependency_failed")
        }
        #expect(try store.isIdle(db, horizon: 0), "nothing waits for anything that can still succeed")
        let again = try store.retry(db, jobs: [y.id])
        #expect(again.count == 1 && !again[0].due)
        #expect(try scalar(db, "SELECT state FROM jobs WHERE id = $1", [y.id]) == "waiting")
        #expect(throws: DependencyError.self) {
            j.needsIDs = [x.id]
            _ = try store.submit(db, jobs: [j])
        }
    }

    /// A dependency inserted while the job it needs completes on another connection: whichever
    /// commits first, the dependent ends queued, never stranded waiting.
    @Test func aDependencyAddedWhileItsJobCompletesIsNotStranded() throws {
        let (t, db) = try fresh()
        let other = try t.connect()
        for completeFirst in [true, false] {
            let a = try submit(db)[0]
            let c = try #require(try store.claim(db, ids: [a.id], workerID: "w", leaseSeconds: 30).first)
            var j = NewJob(kind: "noop", recipeJSON: "{}", inputPath: "noop")
            j.needsIDs = [a.id]
            let done = JobStore.Completion(job: a.id, attempt: c.attempt, outputPath: "o", artifacts: [])
            var b: SubmittedJob?
            if completeFirst {
                try db.query("BEGIN")
                _ = try store.complete(db, [done], workerID: "w")
                let t0 = Date()
                let submitter = Thread { b = try? self.store.submit(other, jobs: [j]).jobs[0] }
                submitter.start()
                Thread.sleep(forTimeInterval: 0.3)
                try db.query("COMMIT")
                while b == nil && Date().timeIntervalSince(t0) < 10 { Thread.sleep(forTimeInterval: 0.05) }
            } else {
                try other.query("BEGIN")
                var jb = j
                jb.idempotencyKey = "race"
                b = try store.submit(other, jobs: [jb]).jobs[0]
                let completer = Thread { _ = try? self.store.complete(db, [done], workerID: "w") }
                completer.start()
                Thread.sleep(forTimeInterval: 0.3)
                try other.query("COMMIT")
                _ = try waitUntil(timeout: 10) { try self.scalar(other, "SELECT state FROM jobs WHERE id = $1", [a.id]) == "succeeded" }
            }
            let id = try #require(b).id
            #expect(try scalar(other, "SELECT state FROM jobs WHERE id = $1", [id]) == "queued", "complete first: \(completeFirst)")
        }
    }

    @Test func viewsCountWhatTheTablesHold() throws {
        let (_, db) = try fresh()
        let jobs = try submit(db, 3, priority: 2)
        _ = try store.claim(db, ids: [jobs[0].id], workerID: "w", leaseSeconds: 30)
        let counts = Dictionary(uniqueKeysWithValues: try store.stateCounts(db).map { ($0.state, $0.jobs) })
        #expect(counts["queued"] == 2 && counts["running"] == 1, "\(counts)")
        let backlog = try store.backlog(db)
        #expect(backlog.first?.priority == 2 && backlog.first?.jobs == 2)
        #expect(try store.runningJobs(db).map(\.id) == [jobs[0].id])
        #expect(try scalar(db, "SELECT count(*) FROM queue_overview") != nil)
    }
}
