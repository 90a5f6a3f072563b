-- Least-privilege roles beside squeeze_monitor (views only). Both are NOLOGIN groups, created once
-- per cluster; grant them to login roles: GRANT squeeze_worker TO worker_login;
--   squeeze_submitter: insert jobs and batches, read its own (row-level security on submitted_by),
--                      cancel its own queued or running jobs; nothing else moves or writes results.
--   squeeze_worker:    claim jobs and write every fenced update (attempts, events, checkpoints,
--                      metrics, artifacts, the workers registry); no DDL (it owns nothing).
DO $$
BEGIN
    CREATE ROLE squeeze_submitter NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE squeeze_worker NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- Who submitted each job and batch (the login role); rows from before this migration belong to
-- the role that ran it.
ALTER TABLE batches ADD COLUMN submitted_by text NOT NULL DEFAULT current_user;
ALTER TABLE jobs ADD COLUMN submitted_by text NOT NULL DEFAULT current_user;

GRANT SELECT ON schema_migrations TO squeeze_submitter, squeeze_worker;

GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, batches, job_attempts, job_events, job_checkpoints,
    layer_metrics, artifacts, workers TO squeeze_worker;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO squeeze_worker;

GRANT SELECT, INSERT ON jobs, batches, job_events TO squeeze_submitter;
GRANT UPDATE (state, cancel_requested, updated_at, finished_at) ON jobs TO squeeze_submitter;
GRANT SELECT ON job_attempts, layer_metrics, artifacts TO squeeze_submitter;
GRANT USAGE, SELECT ON SEQUENCE jobs_seq_seq, job_events_id_seq TO squeeze_submitter;

-- Row-level security: a submitter sees and touches only its own jobs and batches (and their
-- events and results); the worker and monitor roles, and the tables' owner, see everything.
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_fleet ON jobs TO squeeze_worker, squeeze_monitor USING (true) WITH CHECK (true);
CREATE POLICY jobs_own ON jobs TO squeeze_submitter
    USING (submitted_by = current_user) WITH CHECK (submitted_by = current_user);
CREATE POLICY batches_fleet ON batches TO squeeze_worker, squeeze_monitor USING (true) WITH CHECK (true);
CREATE POLICY batches_own ON batches TO squeeze_submitter
    USING (submitted_by = current_user) WITH CHECK (submitted_by = current_user);

ALTER TABLE job_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE layer_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE artifacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_events_fleet ON job_events TO squeeze_worker, squeeze_monitor USING (true) WITH CHECK (true);
CREATE POLICY job_events_own ON job_events FOR SELECT TO squeeze_submitter USING (EXISTS (SELECT 1 FROM jobs j
    WHERE j.id = job_id));
-- (Submit writes a job and its event in one statement, before the job is visible to a subquery:
-- a submitter may add only the events its own actions make.)
CREATE POLICY job_events_submit ON job_events FOR INSERT TO squeeze_submitter
    WITH CHECK (kind IN ('submitted', 'cancelled', 'cancel_requested'));
CREATE POLICY job_attempts_fleet ON job_attempts TO squeeze_worker, squeeze_monitor USING (true) WITH CHECK (true);
CREATE POLICY job_attempts_own ON job_attempts FOR SELECT TO squeeze_submitter USING (EXISTS (SELECT 1 FROM jobs j
    WHERE j.id = job_id));
CREATE POLICY layer_metrics_fleet ON layer_metrics TO squeeze_worker, squeeze_monitor USING (true) WITH CHECK (true);
CREATE POLICY layer_metrics_own ON layer_metrics FOR SELECT TO squeeze_submitter USING (EXISTS (SELECT 1 FROM jobs
    j WHERE j.id = job_id));
CREATE POLICY artifacts_fleet ON artifacts TO squeeze_worker, squeeze_monitor USING (true) WITH CHECK (true);
CREATE POLICY artifacts_own ON artifacts FOR SELECT TO squeeze_submitter USING (EXISTS (SELECT 1 FROM jobs j WHERE
    j.id = job_id));

-- A submitter may only cancel: a queued job may become cancelled, a running one may be flagged
-- (cancel_requested); no other state change, and nothing a worker writes.
CREATE FUNCTION squeeze_submitter_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_has_role(current_user, 'squeeze_submitter', 'MEMBER')
       AND NOT pg_has_role(current_user, 'squeeze_worker', 'MEMBER') THEN
        IF NEW.state IS DISTINCT FROM OLD.state AND NOT (OLD.state = 'queued' AND NEW.state = 'cancelled') THEN
            RAISE EXCEPTION 'squeeze_submitter may only cancel: job % cannot move from % to %', OLD.id, OLD.state,
                NEW.state
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.finished_at IS DISTINCT FROM OLD.finished_at AND NOT (OLD.state = 'queued' AND NEW.state =
            'cancelled') THEN
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
CREATE TRIGGER jobs_submitter_guard BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION squeeze_submitter_guard();
