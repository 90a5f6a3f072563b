-- The bytes of the file a job's evaluation measured (its last GGUF export, else its dense
-- safetensors), so size-against-quality charts plot the model a user would download rather than
-- every output of the job added up. Older evaluations have none (NULL).
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
       (e.detail->>'model_bytes')::bigint AS model_bytes
FROM job_events e JOIN jobs j ON j.id = e.job_id
WHERE e.kind = 'evaluated'
ORDER BY e.job_id, e.id DESC;
