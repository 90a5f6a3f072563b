-- The size a job loads its input at, for a BitStack stack (`squeeze submit --size 60MB`, a
-- manifest entry's `size`): the stack is decomposed once and any number of jobs evaluate or export
-- it at other sizes without recompressing. NULL for every other input. Stored as submitted
-- (bytes with a unit, a byte count, or bits per weight: `3bpw`), checked at submit against the
-- stack it names.
ALTER TABLE jobs ADD COLUMN input_size text CHECK (input_size IS NULL OR length(input_size) BETWEEN 1 AND 64);
GRANT INSERT (input_size) ON jobs TO squeeze_submitter;

-- A batch over sizes of one stack: the quality rows say which size each job evaluated.
CREATE OR REPLACE VIEW job_quality AS
SELECT DISTINCT ON (e.job_id)
       e.job_id, j.state, j.input_path, e.attempt,
       (e.detail->>'mean_cosine')::double precision AS mean_cosine,
       (e.detail->>'min_cosine')::double precision AS min_cosine,
       (e.detail->>'samples')::integer AS samples,
       (e.detail->>'seq_len')::integer AS seq_len,
       e.detail->>'dataset' AS dataset,
       e.at,
       (e.detail->>'perplexity')::double precision AS perplexity,
       (e.detail->>'original_perplexity')::double precision AS original_perplexity,
       (e.detail->>'perplexity')::double precision / NULLIF((e.detail->>'original_perplexity')::double precision,
           0) AS perplexity_ratio,
       (e.detail->>'mean_kl')::double precision AS mean_kl,
       (e.detail->>'top1_agreement')::double precision AS top1_agreement,
       (e.detail->>'scored_tokens')::integer AS scored_tokens,
       (e.detail->>'model_bytes')::bigint AS model_bytes,
       j.input_size
FROM job_events e JOIN jobs j ON j.id = e.job_id
WHERE e.kind = 'evaluated'
ORDER BY e.job_id, e.id DESC;
