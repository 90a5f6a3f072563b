-- Rank kept by a `lowrank` stage, per unit (NULL when no low-rank stage selected the tensor),
-- and the job_quality view of `evaluate` results.
ALTER TABLE layer_metrics ADD COLUMN rank integer;

-- What each job's `evaluate` stage measured (latest attempt): cosine similarity of sentence
-- embeddings of held-out text between the original and the compressed model.
CREATE VIEW job_quality AS
SELECT DISTINCT ON (e.job_id)
       e.job_id, j.state, j.input_path, e.attempt,
       (e.detail->>'mean_cosine')::double precision AS mean_cosine,
       (e.detail->>'min_cosine')::double precision AS min_cosine,
       (e.detail->>'samples')::integer AS samples,
       (e.detail->>'seq_len')::integer AS seq_len,
       e.detail->>'dataset' AS dataset,
       e.at
FROM job_events e JOIN jobs j ON j.id = e.job_id
WHERE e.kind = 'evaluated'
ORDER BY e.job_id, e.id DESC;

GRANT SELECT ON job_quality TO squeeze_monitor;
