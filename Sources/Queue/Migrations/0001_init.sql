-- Squeeze core schema: PostgreSQL is the source of truth for every job.

CREATE TABLE batches (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    job_count   integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             text NOT NULL CHECK (kind IN ('compress', 'noop')),
    recipe           jsonb NOT NULL,
    input_path       text NOT NULL,
    input_sha256     text,
    input_bytes      bigint,
    output_path      text,
    priority         integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
    seq              bigserial NOT NULL,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
    attempt          integer NOT NULL DEFAULT 0,
    releases         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after        timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    worker_id        text,
    cancel_requested boolean NOT NULL DEFAULT false,
    idempotency_key  text UNIQUE,
    batch_id         uuid REFERENCES batches(id),
    memory_estimate  bigint,
    units_total      integer,
    units_done       integer NOT NULL DEFAULT 0,
    error            text,
    error_code       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX jobs_state_run_after ON jobs (state, run_after);
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_batch ON jobs (batch_id);

CREATE TABLE job_attempts (
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    worker_id   text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    outcome     text CHECK (outcome IN ('succeeded', 'failed', 'retry', 'dead', 'cancelled', 'released',
        'lease_expired')),
    error       text,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE job_events (
    id          bigserial PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt     integer NOT NULL DEFAULT 0,
    kind        text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE TABLE job_checkpoints (
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    unit        text NOT NULL,
    file        text NOT NULL,
    sha256      text NOT NULL,
    bytes       bigint NOT NULL,
    attempt     integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, unit)
);

CREATE TABLE layer_metrics (
    job_id          uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tensor          text NOT NULL,
    attempt         integer NOT NULL,
    unit_index      integer NOT NULL,
    dtype           text NOT NULL,
    numel           bigint NOT NULL,
    sparsity        double precision NOT NULL,
    bits            double precision NOT NULL,
    relative_error  double precision,
    output_error    double precision,
    elapsed_ms      double precision NOT NULL,
    bytes_in        bigint NOT NULL,
    bytes_out       bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, tensor)
);

CREATE TABLE artifacts (
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    path        text NOT NULL,
    bytes       bigint NOT NULL,
    sha256      text NOT NULL,
    format      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, path)
);

CREATE TABLE workers (
    id              text PRIMARY KEY,
    host            text NOT NULL,
    pid             integer NOT NULL,
    version         text NOT NULL,
    concurrency     integer NOT NULL,
    threads         integer NOT NULL,
    max_memory      bigint,
    state           text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'draining', 'stopped')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    last_heartbeat  timestamptz NOT NULL DEFAULT now(),
    jobs_done       bigint NOT NULL DEFAULT 0
);

-- Monitoring views (documented in docs/SQL.md).

CREATE VIEW queue_overview AS
SELECT s.state,
       count(j.id) AS jobs,
       min(j.created_at) AS oldest_created,
       max(j.updated_at) AS last_change,
       count(j.id) FILTER (WHERE j.state = 'queued' AND j.run_after > now()) AS delayed,
       count(j.id) FILTER (WHERE j.state = 'running' AND j.lease_until < now()) AS lease_expired
FROM (VALUES ('queued'), ('running'), ('succeeded'), ('failed'), ('dead'), ('cancelled')) AS s(state)
LEFT JOIN jobs j ON j.state = s.state
GROUP BY s.state;

CREATE VIEW worker_health AS
SELECT w.id, w.host, w.pid, w.version, w.state, w.concurrency, w.threads,
       w.started_at, w.last_heartbeat,
       extract(epoch FROM now() - w.last_heartbeat) AS heartbeat_age_s,
       (w.state <> 'stopped' AND w.last_heartbeat > now() - interval '60 seconds') AS alive,
       (SELECT count(*) FROM jobs j WHERE j.worker_id = w.id AND j.state = 'running') AS running_jobs,
       w.jobs_done
FROM workers w;

CREATE VIEW batch_progress AS
SELECT b.id AS batch_id, b.name, b.created_at,
       count(j.id) AS jobs,
       count(j.id) FILTER (WHERE j.state = 'queued') AS queued,
       count(j.id) FILTER (WHERE j.state = 'running') AS running,
       count(j.id) FILTER (WHERE j.state = 'succeeded') AS succeeded,
       count(j.id) FILTER (WHERE j.state IN ('failed', 'dead')) AS failed,
       count(j.id) FILTER (WHERE j.state = 'cancelled') AS cancelled,
       round(100.0 * count(j.id) FILTER (WHERE j.state IN ('succeeded', 'failed', 'dead', 'cancelled'))
             / greatest(count(j.id), 1), 1) AS pct_done
FROM batches b LEFT JOIN jobs j ON j.batch_id = b.id
GROUP BY b.id, b.name, b.created_at;

CREATE VIEW job_durations AS
SELECT j.id AS job_id, j.kind, j.state, j.attempt, j.priority,
       extract(epoch FROM coalesce(j.started_at, now()) - j.created_at) AS wait_s,
       extract(epoch FROM coalesce(j.finished_at, now()) - j.started_at) AS run_s,
       j.units_done, j.units_total
FROM jobs j;

CREATE VIEW failing_jobs AS
SELECT j.id AS job_id, j.kind, j.state, j.attempt, j.max_attempts, j.error_code, j.error,
       j.input_path, j.updated_at,
       (SELECT count(*) FROM job_attempts a WHERE a.job_id = j.id AND a.outcome IN ('failed', 'retry', 'dead',
           'lease_expired'))
           AS failed_attempts
FROM jobs j
WHERE j.state IN ('failed', 'dead') OR (j.state = 'queued' AND j.error IS NOT NULL);

CREATE VIEW compression_summary AS
SELECT j.id AS job_id, j.state, j.input_path,
       count(m.tensor) AS tensors,
       sum(m.numel) AS params,
       round((sum(m.sparsity * m.numel) / nullif(sum(m.numel), 0))::numeric, 4) AS sparsity,
       round((sum(m.bits * m.numel) / nullif(sum(m.numel), 0))::numeric, 2) AS avg_bits,
       round(max(m.relative_error)::numeric, 4) AS max_rel_error,
       sum(m.bytes_in) AS bytes_in,
       sum(m.bytes_out) AS bytes_out,
       (SELECT sum(a.bytes) FROM artifacts a WHERE a.job_id = j.id) AS artifact_bytes,
       round(sum(m.elapsed_ms)::numeric, 1) AS compute_ms
FROM jobs j LEFT JOIN layer_metrics m ON m.job_id = j.id
WHERE j.kind = 'compress'
GROUP BY j.id, j.state, j.input_path;

-- A read-only role for monitoring dashboards (cluster-wide; created once).
DO $$
BEGIN
    CREATE ROLE squeeze_monitor NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
GRANT SELECT ON queue_overview, worker_health, batch_progress, job_durations, failing_jobs, compression_summary
    TO squeeze_monitor;
