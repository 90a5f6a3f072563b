-- What `squeeze top` (and dashboards) need beyond the per-state counts: jobs finished over the last
-- minute, hour and day, the queued backlog by priority with its oldest age, and the running jobs
-- with their worker and unit progress. Monitoring views, granted to squeeze_monitor.
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE VIEW job_throughput AS
SELECT count(*) FILTER (WHERE finished_at > now() - interval '1 minute') AS last_minute,
       count(*) FILTER (WHERE finished_at > now() - interval '1 hour') AS last_hour,
       count(*) AS last_day,
       count(*) FILTER (WHERE state = 'succeeded' AND finished_at > now() - interval '1 hour') AS succeeded_last_hour,
       count(*) FILTER (WHERE state IN ('failed', 'dead') AND finished_at > now() - interval '1 hour') AS
           failed_last_hour
FROM jobs
WHERE finished_at > now() - interval '1 day';

CREATE VIEW queue_backlog AS
SELECT priority, count(*) AS jobs,
       count(*) FILTER (WHERE run_after > now()) AS delayed,
       extract(epoch FROM now() - min(created_at)) AS oldest_age_s
FROM jobs
WHERE state = 'queued'
GROUP BY priority;

CREATE VIEW running_jobs AS
SELECT id AS job_id, kind, attempt, max_attempts, worker_id, input_path, units_done, units_total,
       extract(epoch FROM now() - started_at) AS run_s,
       lease_until < now() AS lease_expired
FROM jobs
WHERE state = 'running';

GRANT SELECT ON job_throughput, queue_backlog, running_jobs TO squeeze_monitor;
