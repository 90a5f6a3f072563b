-- A worker is alive only while it can claim: a worker whose claim loop cannot reach Redis
-- heartbeats with state 'disconnected' and no longer counts as alive.
ALTER TABLE workers DROP CONSTRAINT IF EXISTS workers_state_check;
ALTER TABLE workers ADD CONSTRAINT workers_state_check CHECK (state IN ('running', 'draining', 'stopped',
    'disconnected'));

CREATE OR REPLACE VIEW worker_health AS
SELECT w.id, w.host, w.pid, w.version, w.state, w.concurrency, w.threads,
       w.started_at, w.last_heartbeat,
       extract(epoch FROM now() - w.last_heartbeat) AS heartbeat_age_s,
       (w.state IN ('running', 'draining') AND w.last_heartbeat > now() - interval '60 seconds') AS alive,
       (SELECT count(*) FROM jobs j WHERE j.worker_id = w.id AND j.state = 'running') AS running_jobs,
       w.jobs_done
FROM workers w;
