-- The OpenBLAS kernel of the worker that ran an attempt: calibrated outputs are byte-identical
-- for any thread count on one kernel (Haswell, Prescott, Cooperlake, ...), not across kernels.
ALTER TABLE job_attempts ADD COLUMN IF NOT EXISTS blas_core text;
