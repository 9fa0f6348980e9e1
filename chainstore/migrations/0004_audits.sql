-- DeepNode indexer schema v4: the validation layer (AuditManager).
-- Like the v1 tables, every table here is derived from `events` by `ingest::apply` and rebuilt
-- from it on a reorg (`ingest::DERIVED_TABLES`). Keys are the log's (block_number, log_index)
-- unless the contract allows one row per task. Amounts and weights are decimal strings; hashes
-- 0x-hex; quality scores ppm (1e6 = 1.0).

-- Audit randomness and rate fixed for a commit batch (BatchSealed).
CREATE TABLE batch_seals (
    batch_id     TEXT PRIMARY KEY NOT NULL,
    worker       TEXT NOT NULL,
    randomness   TEXT NOT NULL,
    p_wad        TEXT NOT NULL,  -- audit rate of the batch's tasks (WAD)
    full_audit   INTEGER NOT NULL,  -- 1: sealed too late, every task audited
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   INTEGER NOT NULL
);

-- Validators in the audit draw (ValidatorJoined, ValidatorWeightUpdated).
CREATE TABLE audit_validators (
    address       TEXT PRIMARY KEY NOT NULL,
    weight        TEXT NOT NULL,
    joined_block  INTEGER NOT NULL,
    joined_tx     TEXT NOT NULL,
    updated_block INTEGER NOT NULL
);

-- Signed verdicts of drawn validators (VerdictAccepted); a mismatch opens a dispute.
CREATE TABLE verdicts (
    block_number          INTEGER NOT NULL,
    log_index             INTEGER NOT NULL,
    tx_hash               TEXT NOT NULL,
    block_time            INTEGER NOT NULL,
    task_id               INTEGER NOT NULL,
    batch_id              TEXT NOT NULL,
    validator             TEXT NOT NULL,
    worker                TEXT NOT NULL,
    worker_output_hash    TEXT NOT NULL,
    validator_output_hash TEXT NOT NULL,
    quality_ppm           INTEGER NOT NULL,
    matches               INTEGER NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX verdicts_by_task ON verdicts (task_id);
CREATE INDEX verdicts_by_worker ON verdicts (worker, block_time);
CREATE INDEX verdicts_by_validator ON verdicts (validator);
CREATE INDEX verdicts_by_time ON verdicts (block_time);

-- Disputes (one per task: an audit record is judged once). Opened by a mismatch verdict
-- (opener 0) or a user challenge (opener 1); `outcome` is the AuditState it resolved to
-- (3 Fraud, 4 Cleared, 5 Undecided, 6 ForcedError), NULL while open.
CREATE TABLE disputes (
    task_id        INTEGER PRIMARY KEY NOT NULL,
    worker         TEXT NOT NULL,
    accuser        TEXT NOT NULL,
    opener         INTEGER NOT NULL,
    members        TEXT NOT NULL,  -- JSON array of the quorum's addresses
    deadline       INTEGER NOT NULL,
    opened_block   INTEGER NOT NULL,
    opened_time    INTEGER NOT NULL,
    opened_tx      TEXT NOT NULL,
    outcome        INTEGER,
    fraud_votes    INTEGER NOT NULL DEFAULT 0,
    honest_votes   INTEGER NOT NULL DEFAULT 0,
    resolved_block INTEGER,
    resolved_time  INTEGER,
    resolved_tx    TEXT
);
CREATE INDEX disputes_by_worker ON disputes (worker);
CREATE INDEX disputes_by_accuser ON disputes (accuser);
CREATE INDEX disputes_by_resolved_time ON disputes (resolved_time);

-- Quorum votes (DisputeVoted).
CREATE TABLE dispute_votes (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   INTEGER NOT NULL,
    task_id      INTEGER NOT NULL,
    validator    TEXT NOT NULL,
    fraud        INTEGER NOT NULL,
    output_hash  TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX dispute_votes_by_task ON dispute_votes (task_id);
CREATE INDEX dispute_votes_by_validator ON dispute_votes (validator);

-- Deadlines validators let pass (DeadlineMissed): kind 0 an audit verdict, 1 a dispute vote.
CREATE TABLE deadline_misses (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   INTEGER NOT NULL,
    task_id      INTEGER NOT NULL,
    validator    TEXT NOT NULL,
    kind         INTEGER NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX deadline_misses_by_task ON deadline_misses (task_id);
CREATE INDEX deadline_misses_by_validator ON deadline_misses (validator);

-- Revealed forced errors (ForcedErrorRevealed): `caught_lazy` 1 when the validator had approved
-- the planted wrong result (it is slashed), 0 when its dispute caught it.
CREATE TABLE forced_errors (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   INTEGER NOT NULL,
    task_id      INTEGER NOT NULL,
    validator    TEXT NOT NULL,
    caught_lazy  INTEGER NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX forced_errors_by_task ON forced_errors (task_id);
CREATE INDEX forced_errors_by_validator ON forced_errors (validator);

-- Known-answer tasks reported by the validator that submitted them (CanaryReported).
CREATE TABLE canaries (
    block_number         INTEGER NOT NULL,
    log_index            INTEGER NOT NULL,
    tx_hash              TEXT NOT NULL,
    block_time           INTEGER NOT NULL,
    task_id              INTEGER NOT NULL,
    worker               TEXT NOT NULL,
    model_id             INTEGER NOT NULL,
    validator            TEXT NOT NULL,
    expected_output_hash TEXT NOT NULL,
    matches              INTEGER NOT NULL,
    quality_ppm          INTEGER NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX canaries_by_task ON canaries (task_id);
CREATE INDEX canaries_by_worker ON canaries (worker, block_time);
CREATE INDEX canaries_by_model ON canaries (model_id, block_time);

-- The contract does not stop a submitter from reporting the same canary twice: only a task's
-- first report counts (it never changes once made, so epochs stay reproducible).
CREATE VIEW first_canaries AS
SELECT c.* FROM canaries c
WHERE NOT EXISTS (
    SELECT 1 FROM canaries d
    WHERE d.task_id = c.task_id
      AND (d.block_number < c.block_number OR (d.block_number = c.block_number AND d.log_index < c.log_index))
);

-- The task a slash belongs to: the DisputeResolved / ForcedErrorRevealed log just before the
-- Slashed log in the same transaction (NULL for slashes outside the audit layer).
ALTER TABLE slashes ADD COLUMN task_id INTEGER;
CREATE INDEX slashes_by_task ON slashes (task_id);

-- Epoch facts of the audit layer (computed tables; older rows read 0).
ALTER TABLE epoch_nodes ADD COLUMN audited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN passed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN quality_sum_ppm INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN fraud INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_model_quality ADD COLUMN canaries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_model_quality ADD COLUMN canary_matches INTEGER NOT NULL DEFAULT 0;
