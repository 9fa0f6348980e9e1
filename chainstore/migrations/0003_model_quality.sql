-- DeepNode indexer schema v3: natural selection of models.
-- Computed by `indexer::epochs` at each epoch boundary, like the other epoch_* tables (deleted from
-- the first epoch a reorg reaches into, then recomputed). One row per registered model and epoch:
-- its measured quality (user feedback x canary accuracy, WAD) and the status the epoch gives it.

CREATE TABLE epoch_model_quality (
    epoch               INTEGER NOT NULL,
    model_id            INTEGER NOT NULL,
    ratings             INTEGER NOT NULL,  -- TaskRated events of the model in the epoch
    score_sum           INTEGER NOT NULL,  -- sum of their scores (0..100 each)
    feedback_wad        INTEGER NOT NULL,  -- average score / 100 (1e18 without ratings)
    canary_accuracy_wad INTEGER NOT NULL,  -- 1e18 until validators run canary tasks
    quality_wad         INTEGER NOT NULL,  -- feedback x canary accuracy
    prev_status         INTEGER NOT NULL,  -- status the model entered the epoch with
    chain_status        INTEGER NOT NULL,  -- ModelRegistry status at the epoch's end
    status              INTEGER NOT NULL,  -- status after the epoch
    in_report           INTEGER NOT NULL,  -- 1: a leaf of the report's model status tree
    proof               TEXT,              -- JSON array of 0x bytes32 (bottom-up) when in_report
    PRIMARY KEY (epoch, model_id)
);
CREATE INDEX epoch_model_quality_by_model ON epoch_model_quality (model_id, epoch);
