-- Rank kept by a `lowrank` stage, per unit (NULL when no low-rank stage selected the tensor).
ALTER TABLE layer_metrics ADD COLUMN rank integer;
