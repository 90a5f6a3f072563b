-- Job dependencies: (job, needs) pairs. A job with a dependency that has not succeeded waits in
-- state `waiting` (never in Redis). The transaction that ends a job releases what waited on it:
-- `succeeded` queues every dependent whose dependencies have all succeeded; `failed`, `dead` or
-- `cancelled` cancels its waiting dependents with error code `dependency_failed` (and theirs, by
-- the same trigger). Both run as the migrations' owner (SECURITY DEFINER), so a submitter's
-- cancel reaches dependents that row-level security hides from it.
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('waiting', 'queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled'));

CREATE TABLE job_dependencies (
    job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    needs  uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    PRIMARY KEY (job_id, needs),
    CHECK (job_id <> needs)
);
CREATE INDEX job_dependencies_needs ON job_dependencies (needs);
-- Set on a job once another job needs it: a job nobody needs ends without running the release
-- trigger at all (the no-op queue's completions pay nothing for dependencies).
ALTER TABLE jobs ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_waiting ON jobs (id) WHERE state = 'waiting';

-- A new dependency: refused when the job it needs already failed, died or was cancelled; the
-- dependent waits unless it has succeeded. Marking the needed row (has_dependents) locks it, so a
-- completion committing at the same time either comes first (its state is read here, after the
-- lock) or after (and then sees the mark and this row).
CREATE FUNCTION squeeze_dependency_added() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp AS $$
DECLARE
    s text;
    k text;
BEGIN
    UPDATE jobs SET has_dependents = true WHERE id = NEW.needs RETURNING state, idempotency_key INTO s, k;
    IF s IN ('failed', 'dead', 'cancelled') THEN
        RAISE EXCEPTION 'dependency % (key %) already ended %', NEW.needs, coalesce(k, '-'), s
            USING ERRCODE = 'check_violation';
    END IF;
    IF s <> 'succeeded' THEN
        UPDATE jobs SET state = 'waiting', updated_at = now() WHERE id = NEW.job_id AND state = 'queued';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER job_dependencies_added AFTER INSERT ON job_dependencies
    FOR EACH ROW EXECUTE FUNCTION squeeze_dependency_added();

CREATE FUNCTION squeeze_release_dependents() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.state = 'succeeded' THEN
        WITH r AS (
            UPDATE jobs j SET state = 'queued', run_after = now(), updated_at = now()
            WHERE j.state = 'waiting'
              AND j.id IN (SELECT d.job_id FROM job_dependencies d WHERE d.needs = NEW.id)
              AND NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs n ON n.id = d.needs
                              WHERE d.job_id = j.id AND n.state <> 'succeeded')
            RETURNING j.id, j.attempt
        )
        INSERT INTO job_events (job_id, attempt, kind, detail)
        SELECT id, attempt, 'dependencies_met', jsonb_build_object('last', NEW.id) FROM r;
    ELSE
        WITH c AS (
            UPDATE jobs j SET state = 'cancelled', finished_at = now(), updated_at = now(),
                   error_code = 'dependency_failed',
                   error = format('dependency %s (key %s) ended %s', NEW.id, coalesce(NEW.idempotency_key, '-'),
                                  NEW.state)
            WHERE j.state = 'waiting' AND j.id IN (SELECT d.job_id FROM job_dependencies d WHERE d.needs = NEW.id)
            RETURNING j.id, j.attempt
        )
        INSERT INTO job_events (job_id, attempt, kind, detail)
        SELECT id, attempt, 'cancelled',
               jsonb_build_object('code', 'dependency_failed', 'dependency', NEW.id, 'dependency_state', NEW.state)
        FROM c;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_release_dependents AFTER UPDATE OF state ON jobs FOR EACH ROW
    WHEN (NEW.has_dependents AND NEW.state IS DISTINCT FROM OLD.state
          AND NEW.state IN ('succeeded', 'failed', 'dead', 'cancelled'))
    EXECUTE FUNCTION squeeze_release_dependents();

-- A submitter may also cancel its waiting jobs (and nothing else changes for it).
CREATE OR REPLACE FUNCTION squeeze_submitter_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_has_role(current_user, 'squeeze_submitter', 'MEMBER')
       AND NOT pg_has_role(current_user, 'squeeze_worker', 'MEMBER') THEN
        IF NEW.state IS DISTINCT FROM OLD.state
           AND NOT (OLD.state IN ('queued', 'waiting') AND NEW.state = 'cancelled') THEN
            RAISE EXCEPTION 'squeeze_submitter may only cancel: job % cannot move from % to %', OLD.id, OLD.state,
                NEW.state
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.finished_at IS DISTINCT FROM OLD.finished_at
           AND NOT (OLD.state IN ('queued', 'waiting') AND NEW.state = 'cancelled') THEN
            RAISE EXCEPTION 'squeeze_submitter may only cancel: job % keeps its finish time', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF OLD.cancel_requested AND NOT NEW.cancel_requested THEN
            RAISE EXCEPTION 'squeeze_submitter may not withdraw a cancel request (job %)', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END $$;

GRANT SELECT, INSERT ON job_dependencies TO squeeze_worker;
GRANT SELECT, INSERT ON job_dependencies TO squeeze_submitter;
GRANT SELECT ON job_dependencies TO squeeze_monitor;
ALTER TABLE job_dependencies ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_dependencies_fleet ON job_dependencies TO squeeze_worker, squeeze_monitor
    USING (true) WITH CHECK (true);
CREATE POLICY job_dependencies_own ON job_dependencies TO squeeze_submitter
    USING (EXISTS (SELECT 1 FROM jobs j WHERE j.id = job_id))
    WITH CHECK (EXISTS (SELECT 1 FROM jobs j WHERE j.id = job_id));

-- Monitoring: waiting jobs in the per-state counts and batch progress, and what each waits for.
CREATE OR REPLACE VIEW queue_overview AS
SELECT s.state,
       count(j.id) AS jobs,
       min(j.created_at) AS oldest_created,
       max(j.updated_at) AS last_change,
       count(j.id) FILTER (WHERE j.state = 'queued' AND j.run_after > now()) AS delayed,
       count(j.id) FILTER (WHERE j.state = 'running' AND j.lease_until < now()) AS lease_expired
FROM (VALUES ('waiting'), ('queued'), ('running'), ('succeeded'), ('failed'), ('dead'), ('cancelled')) AS s(state)
LEFT JOIN jobs j ON j.state = s.state
GROUP BY s.state;

CREATE OR REPLACE VIEW batch_progress AS
SELECT b.id AS batch_id, b.name, b.created_at,
       count(j.id) AS jobs,
       count(j.id) FILTER (WHERE j.state = 'queued') AS queued,
       count(j.id) FILTER (WHERE j.state = 'running') AS running,
       count(j.id) FILTER (WHERE j.state = 'succeeded') AS succeeded,
       count(j.id) FILTER (WHERE j.state IN ('failed', 'dead')) AS failed,
       count(j.id) FILTER (WHERE j.state = 'cancelled') AS cancelled,
       round(100.0 * count(j.id) FILTER (WHERE j.state IN ('succeeded', 'failed', 'dead', 'cancelled'))
             / greatest(count(j.id), 1), 1) AS pct_done,
       count(j.id) FILTER (WHERE j.state = 'waiting') AS waiting
FROM batches b LEFT JOIN jobs j ON j.batch_id = b.id
GROUP BY b.id, b.name, b.created_at;

CREATE VIEW job_waits AS
SELECT d.job_id, j.state, d.needs, n.idempotency_key AS needs_key, n.state AS needs_state
FROM job_dependencies d JOIN jobs j ON j.id = d.job_id JOIN jobs n ON n.id = d.needs;
GRANT SELECT ON queue_overview, batch_progress, job_waits TO squeeze_monitor;
