-- What `squeeze dashboard` and its /metrics read beyond the earlier monitoring views: one row per
-- job with its timings and published bytes, and a job's attempts, events, per-layer metrics and
-- artifacts. Monitoring views, granted to squeeze_monitor, so the dashboard runs as that role.
CREATE VIEW job_summary AS
SELECT j.id AS job_id, j.batch_id, j.kind, j.state, j.priority, j.attempt, j.max_attempts,
       j.input_path, j.output_path, j.worker_id, j.units_done, j.units_total, j.error_code, j.error,
       j.cancel_requested, j.recipe, j.created_at, j.started_at, j.finished_at,
       extract(epoch FROM j.started_at - j.created_at) AS wait_s,
       extract(epoch FROM coalesce(j.finished_at, now()) - j.started_at) AS run_s,
       (SELECT coalesce(sum(a.bytes), 0) FROM artifacts a WHERE a.job_id = j.id) AS artifact_bytes
FROM jobs j;

CREATE VIEW job_attempt_log AS
SELECT job_id, attempt, worker_id, started_at, ended_at, outcome, error,
       extract(epoch FROM started_at) AS started_epoch,
       extract(epoch FROM coalesce(ended_at, now())) AS ended_epoch
FROM job_attempts;

CREATE VIEW job_event_log AS
SELECT id, job_id, attempt, kind, detail, at FROM job_events;

CREATE VIEW job_layer_metrics AS
SELECT job_id, unit_index, tensor, dtype, numel, sparsity, bits, relative_error, output_error, rank,
       elapsed_ms, bytes_in, bytes_out
FROM layer_metrics;

CREATE VIEW job_artifact_files AS
SELECT job_id, attempt, path, bytes, sha256, format, created_at FROM artifacts;

GRANT SELECT ON job_summary, job_attempt_log, job_event_log, job_layer_metrics, job_artifact_files TO squeeze_monitor;
