import Foundation

/// Every job state change, as single fenced statements against PostgreSQL.
///
/// Writes a worker makes for a job carry `attempt = $n AND state = 'running'`: once its lease is
/// lost, nothing it sends changes anything. Each transition appends to `job_events` atomically.
public struct JobStore {
    public init() {}

    // MARK: submit

    /// Inserts jobs (and an optional batch) in one transaction; returns one result per input, in order.
    ///
    /// Ids are generated here, so rows map back to inputs; a job whose idempotency key already
    /// exists is not inserted and the existing job is returned instead.
    public func submit(_ db: PostgresConnection, jobs: [NewJob], batchName: String? = nil) throws -> (
        batch: UUID?, jobs: [SubmittedJob]
    ) {
        try db.transaction { tx in
            var batchID: UUID?
            if let name = batchName {
                let r = try tx.query(
                    "INSERT INTO batches (name, job_count) VALUES ($1, $2) RETURNING id", [name, jobs.count])
                batchID = try r[0].decode("id", as: UUID.self)
            }
            var results = [SubmittedJob]()
            results.reserveCapacity(jobs.count)
            var start = 0
            while start < jobs.count {
                let chunk = Array(jobs[start..<min(start + 1000, jobs.count)])
                let ids = chunk.map { _ in UUID() }
                let rows = try tx.query(
                    """
                    INSERT INTO jobs (id, kind, recipe, input_path, input_sha256, input_bytes, priority, max_attempts,
                        run_after, idempotency_key, memory_estimate, units_total, batch_id, input_size)
                    SELECT id, kind, recipe, input_path, input_sha256, input_bytes, priority, max_attempts,
                        now() + make_interval(secs => delay_s), idempotency_key, memory_estimate, units_total,
                        $13::uuid, input_size
                    FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::bigint[], $7::int[],
                        $8::int[], $9::float8[], $10::text[], $11::bigint[], $12::int[], $14::text[])
                        AS t(id, kind, recipe, input_path, input_sha256, input_bytes, priority, max_attempts, delay_s,
                            idempotency_key, memory_estimate, units_total, input_size)
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING id, priority, seq, run_after <= now() AS due
                    """,
                    [
                        ids, chunk.map(\.kind), chunk.map(\.recipeJSON), chunk.map(\.inputPath),
                        chunk.map(\.inputSHA256),
                        chunk.map(\.inputBytes), chunk.map(\.priority), chunk.map(\.maxAttempts),
                        chunk.map(\.delaySeconds),
                        chunk.map(\.idempotencyKey), chunk.map(\.memoryEstimate), chunk.map(\.unitsTotal), batchID,
                        chunk.map(\.inputSize)
                    ])
                // A statement of its own, after the jobs exist: a submitter's event must name its own job,
                // which a sibling statement of the insert could not yet see (migration 0010).
                let newIDs = try rows.map { try $0.decode("id", as: UUID.self) }
                let priorities = try rows.map { try $0.decode("priority", as: Int.self) }
                try tx.query(
                    """
                    INSERT INTO job_events (job_id, kind, detail)
                    SELECT id, 'submitted', jsonb_build_object('priority', priority)
                    FROM unnest($1::uuid[], $2::int[]) AS t(id, priority)
                    """, [newIDs, priorities])
                var inserted = [UUID: PostgresRow]()
                for r in rows { inserted[try r.decode("id", as: UUID.self)] = r }
                for (i, job) in chunk.enumerated() {
                    if let r = inserted[ids[i]] {
                        results.append(try Self.submitted(r, existed: false))
                    } else if let key = job.idempotencyKey {
                        let ex = try tx.query(
                            "SELECT id, priority, seq, state = 'queued' AND run_after <= now() AS due FROM jobs WHERE "
                                + "idempotency_key = $1",
                            [key])
                        guard let r = ex.first else {
                            throw PostgresError(
                                code: .protocolViolation, message: "idempotency key \(key) conflicted but no job has it"
                            )
                        }
                        results.append(try Self.submitted(r, existed: true))
                    } else {
                        throw PostgresError(code: .protocolViolation, message: "submit: job \(ids[i]) was not inserted")
                    }
                }
                start += chunk.count
            }
            try Self.addDependencies(tx, jobs: jobs, results: &results)
            return (batchID, results)
        }
    }

    /// Inserts the dependencies of the jobs this submit inserted (keys resolved among all jobs,
    /// this submit's included). Migration 0012's trigger refuses a dependency that already failed,
    /// died or was cancelled (a `DependencyError`), and makes a job whose dependency has not
    /// succeeded `waiting`: not due.
    private static func addDependencies(_ tx: PostgresConnection, jobs: [NewJob], results: inout [SubmittedJob])
        throws
    {
        let keys = Array(Set(jobs.flatMap(\.needsKeys)))
        let ids = Array(Set(jobs.flatMap(\.needsIDs)))
        guard !keys.isEmpty || !ids.isEmpty else { return }
        var byKey = [String: UUID]()
        for r in try tx.query("SELECT id, idempotency_key FROM jobs WHERE idempotency_key = ANY($1::text[])", [keys]) {
            byKey[try r.decode("idempotency_key")] = try r.decode("id")
        }
        let found = try tx.query("SELECT id FROM jobs WHERE id = ANY($1::uuid[])", [ids])
        let known = Set(try found.map { try $0.decode("id") as UUID })
        var from = [UUID]()
        var to = [UUID]()
        for (i, j) in jobs.enumerated() where !results[i].existed {
            for k in j.needsKeys {
                guard let id = byKey[k] else { throw DependencyError("needs \(k): no job has that key") }
                from.append(results[i].id)
                to.append(id)
            }
            for id in j.needsIDs {
                guard known.contains(id) else {
                    throw DependencyError("needs job \(id.uuidString.lowercased()): no such job")
                }
                from.append(results[i].id)
                to.append(id)
            }
        }
        guard !from.isEmpty else { return }
        do {
            try tx.query(
                "INSERT INTO job_dependencies (job_id, needs) SELECT * FROM unnest($1::uuid[], $2::uuid[]) "
                    + "ON CONFLICT DO NOTHING",
                [from, to])
        } catch let e as PostgresError where e.sqlState == "23514" && e.message.hasPrefix("dependency ") {
            // The trigger's refusal of a dependency that already failed, died or was cancelled.
            throw DependencyError(e.message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let rows = try tx.query("SELECT id FROM jobs WHERE id = ANY($1::uuid[]) AND state = 'waiting'", [from])
        let waiting = Set(try rows.map { try $0.decode("id") as UUID })
        results = results.map { r in
            waiting.contains(r.id) ? SubmittedJob(id: r.id, existed: r.existed, score: r.score, due: false) : r
        }
    }

    private static func submitted(_ r: PostgresRow, existed: Bool) throws -> SubmittedJob {
        SubmittedJob(
            id: try r.decode("id"), existed: existed,
            score: RedisTransport.score(priority: try r.decode("priority"), seq: try r.decode("seq")),
            due: try r.decode("due"))
    }
}
