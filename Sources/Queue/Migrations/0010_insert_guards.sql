-- What each role may write, column by column (found by an adversarial pass over 0008).
--
-- squeeze_submitter could INSERT a job row in any state (succeeded, running under a forged worker
-- with a 100-year lease, dead with a forged error) or into another submitter's batch, and add
-- events to jobs that are not its own. It may now insert only the columns `squeeze submit`
-- writes: state, attempt, worker, lease, results and submitted_by take their defaults (queued,
-- 0, none, none, none, the login role); a batch it names must be its own; an event it adds must
-- be of its own job and of a kind its own actions make.
REVOKE INSERT ON jobs, batches, job_events FROM squeeze_submitter;
GRANT INSERT (id, kind, recipe, input_path, input_sha256, input_bytes, priority, max_attempts, run_after,
    idempotency_key, memory_estimate, units_total, batch_id) ON jobs TO squeeze_submitter;
GRANT INSERT (name, job_count) ON batches TO squeeze_submitter;
GRANT INSERT (job_id, attempt, kind, detail) ON job_events TO squeeze_submitter;

DROP POLICY job_events_submit ON job_events;
CREATE POLICY job_events_submit ON job_events FOR INSERT TO squeeze_submitter
    WITH CHECK (kind IN ('submitted', 'cancelled', 'cancel_requested')
                AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = job_id));

CREATE FUNCTION squeeze_batch_owner_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.batch_id IS NOT NULL
       AND pg_has_role(current_user, 'squeeze_submitter', 'MEMBER')
       AND NOT pg_has_role(current_user, 'squeeze_worker', 'MEMBER')
       AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = NEW.batch_id) THEN
        -- Row-level security shows a submitter only its own batches.
        RAISE EXCEPTION 'squeeze_submitter may add jobs only to its own batches (batch %)', NEW.batch_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER jobs_batch_owner_guard BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION squeeze_batch_owner_guard();

-- squeeze_worker could DELETE jobs, wipe job_events and rewrite who submitted a job. It keeps
-- what claims, fenced updates, checkpoints, metrics, artifacts and the registry need, and no more:
-- no DELETE anywhere (retention, `squeeze gc`, runs as the owning role), events append-only,
-- and on jobs only the columns a worker moves.
REVOKE DELETE ON jobs, batches, job_attempts, job_events, job_checkpoints, layer_metrics, artifacts, workers
    FROM squeeze_worker;
REVOKE UPDATE ON jobs, batches, job_events FROM squeeze_worker;
GRANT UPDATE (state, attempt, releases, run_after, lease_until, worker_id, started_at, finished_at, updated_at,
    error, error_code, units_done, units_total, output_path, cancel_requested, max_attempts) ON jobs TO squeeze_worker;
