-- DeepNode chain store schema for PostgreSQL: the SQLite migrations 0001-0006 (../migrations)
-- in one, with PostgreSQL's types (BIGINT for SQLite's 64-bit INTEGER, BYTEA for BLOB) and
-- the SQLite functions the shared queries use. A new SQLite migration gets its twin here, as
-- 0002 onwards.

-- SQLite's json_extract(doc, '$.a.b') on a TEXT column holding JSON: the value at that path as
-- text (queries CAST it where they need a number).
CREATE FUNCTION json_extract(doc TEXT, path TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (doc::jsonb) #>> string_to_array(substr(path, 3), '.') $$;

-- ======================================================================
-- 0001_init.sql
-- DeepNode indexer schema v1.
-- `events` is the source of truth (every contract log, raw and decoded); every other table is
-- derived from it by `ingest::apply`, so a reorg rollback deletes events past the fork point and
-- replays the rest. Amounts are decimal strings (wei, uint256 does not fit SQLite integers);
-- addresses are EIP-55 checksummed strings; times are unix seconds of the block.

-- Which deployment this database belongs to (chain id, contract addresses).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Last fully indexed block per chain, with its hash (reorg detection).
CREATE TABLE cursor (
    chain_id     BIGINT PRIMARY KEY NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash   TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Hashes of indexed blocks that had events or were a cursor, to find a fork point.
CREATE TABLE blocks (
    number    BIGINT PRIMARY KEY NOT NULL,
    hash      TEXT NOT NULL,
    timestamp BIGINT NOT NULL
);

-- Every log of the three contracts, in chain order.
CREATE TABLE events (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   BIGINT NOT NULL,
    address      TEXT NOT NULL,
    name         TEXT NOT NULL,
    topics       TEXT NOT NULL,  -- JSON array of 0x-hex topics
    data         BYTEA NOT NULL,
    json         TEXT NOT NULL,  -- decoded fields
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX events_by_name ON events (name, block_number);

CREATE TABLE models (
    model_id        BIGINT PRIMARY KEY NOT NULL,
    developer       TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    uri             TEXT NOT NULL,
    price_per_call  TEXT NOT NULL,
    compute_units   BIGINT NOT NULL,
    rule            BIGINT NOT NULL,
    tolerance       BIGINT NOT NULL,
    parent          BIGINT NOT NULL,
    status          BIGINT NOT NULL,
    royalties       TEXT NOT NULL DEFAULT '0',  -- sum of developer fees of finalized tasks
    registered_block BIGINT NOT NULL,
    registered_time BIGINT NOT NULL,
    tx_hash         TEXT NOT NULL
);

-- Current opt-ins of workers per model with their sortition weight.
CREATE TABLE model_workers (
    model_id       BIGINT NOT NULL,
    worker         TEXT NOT NULL,
    weight         TEXT NOT NULL,
    opted_in_block BIGINT NOT NULL,
    updated_block  BIGINT NOT NULL,
    PRIMARY KEY (model_id, worker)
);
CREATE INDEX model_workers_by_worker ON model_workers (worker);

-- Every address that staked, was assigned work or was slashed.
CREATE TABLE nodes (
    address          TEXT PRIMARY KEY NOT NULL,
    worker_stake     TEXT NOT NULL DEFAULT '0',
    validator_stake  TEXT NOT NULL DEFAULT '0',
    jailed_until     BIGINT NOT NULL DEFAULT 0,
    trust_wad        TEXT,
    earned           TEXT NOT NULL DEFAULT '0',  -- worker fees of finalized tasks
    slashed          TEXT NOT NULL DEFAULT '0',
    first_block      BIGINT NOT NULL,
    updated_block    BIGINT NOT NULL
);

-- Unstake requests, keyed by the log that requested them. `queue_pos` mirrors the position in
-- Staking's per-account queue (swap-and-pop removal), so withdrawals and slashes of unbonding
-- stake touch the same entries as the contract.
CREATE TABLE unbondings (
    block_number  BIGINT NOT NULL,
    log_index     BIGINT NOT NULL,
    tx_hash       TEXT NOT NULL,
    account       TEXT NOT NULL,
    role          BIGINT NOT NULL,
    amount        TEXT NOT NULL,
    remaining     TEXT NOT NULL,  -- amount minus what slashing took while unbonding
    release_at    BIGINT NOT NULL,
    queue_pos     BIGINT,        -- NULL once withdrawn or slashed away
    status        TEXT NOT NULL,  -- pending | withdrawn | slashed
    closed_block  BIGINT,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX unbondings_by_account ON unbondings (account);

CREATE TABLE tasks (
    task_id         BIGINT PRIMARY KEY NOT NULL,
    model_id        BIGINT NOT NULL,
    submitter       TEXT NOT NULL,
    worker          TEXT,
    fee             TEXT NOT NULL,
    input           BYTEA NOT NULL,
    output          BYTEA,
    output_hash     TEXT,
    code            BIGINT,
    status          TEXT NOT NULL,
    batch_id        TEXT,
    deadline        BIGINT,
    misses          BIGINT NOT NULL DEFAULT 0,
    submitted_block BIGINT NOT NULL,
    submitted_time  BIGINT NOT NULL,
    submitted_tx    TEXT NOT NULL,
    assigned_block  BIGINT,
    assigned_time   BIGINT,
    committed_block BIGINT,
    committed_time  BIGINT,
    finalized_block BIGINT,
    finalized_time  BIGINT,
    latency         BIGINT,
    compute_units   BIGINT,
    quality         BIGINT,
    developer_fee   TEXT,
    worker_fee      TEXT,
    validator_fee   TEXT,
    protocol_fee    TEXT,
    refund          TEXT
);
CREATE INDEX tasks_by_worker ON tasks (worker, task_id);
CREATE INDEX tasks_by_model ON tasks (model_id, task_id);
CREATE INDEX tasks_by_status ON tasks (status, task_id);

-- Audit trail of a task: submitted, assigned, missed, committed, finalized, refunded.
CREATE TABLE task_events (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    task_id      BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    worker       TEXT,
    tx_hash      TEXT NOT NULL,
    block_time   BIGINT NOT NULL,
    detail       TEXT NOT NULL,  -- JSON
    PRIMARY KEY (block_number, log_index, task_id)
);
CREATE INDEX task_events_by_task ON task_events (task_id);
CREATE INDEX task_events_by_worker ON task_events (worker, kind);

-- Commit batches (one Merkle root each).
CREATE TABLE batches (
    batch_id     TEXT PRIMARY KEY NOT NULL,
    worker       TEXT NOT NULL,
    root         TEXT NOT NULL,
    task_count   BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL
);

CREATE TABLE slashes (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   BIGINT NOT NULL,
    account      TEXT NOT NULL,
    role         BIGINT NOT NULL,
    reason       BIGINT NOT NULL,
    amount       TEXT NOT NULL,
    beneficiary  TEXT NOT NULL,
    rewarded     TEXT NOT NULL,
    burned       TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX slashes_by_account ON slashes (account);

-- ======================================================================
-- 0002_epochs.sql
-- DeepNode indexer schema v2: PoWR epochs.
-- Two kinds of tables:
--   * derived from Settlement events (like the v1 tables, rebuilt from `events` on a reorg):
--     epoch_reports, reward_claims, trust_refreshes, trust_expiries;
--   * computed by `indexer::epochs` from confirmed facts at each epoch boundary (deleted from the
--     first epoch a reorg reaches into, then recomputed): epochs, epoch_nodes, epoch_validators,
--     epoch_models, epoch_rewards.
-- WAD values (1e18 = 1.0) fit SQLite integers; token amounts and PoWR scores are decimal strings.

-- Reports accepted on-chain (Settlement.EpochReported).
CREATE TABLE epoch_reports (
    epoch                 BIGINT PRIMARY KEY NOT NULL,
    rewards_root          TEXT NOT NULL,
    trust_root            TEXT NOT NULL,
    total_rewards         TEXT NOT NULL,
    model_status_hash     TEXT NOT NULL,
    signers               TEXT NOT NULL,  -- JSON array of addresses
    signed_stake          TEXT NOT NULL,
    total_validator_stake TEXT NOT NULL,
    block_number          BIGINT NOT NULL,
    block_time            BIGINT NOT NULL,
    tx_hash               TEXT NOT NULL
);

-- Settlement.RewardClaimed.
CREATE TABLE reward_claims (
    epoch        BIGINT NOT NULL,
    account      TEXT NOT NULL,
    amount       TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    PRIMARY KEY (epoch, account)
);

-- Settlement.TrustRefreshed.
CREATE TABLE trust_refreshes (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    epoch        BIGINT NOT NULL,
    node         TEXT NOT NULL,
    trust_wad    TEXT NOT NULL,
    tx_hash      TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX trust_refreshes_by_node ON trust_refreshes (node);

-- Settlement.TrustExpired.
CREATE TABLE trust_expiries (
    block_number  BIGINT NOT NULL,
    log_index     BIGINT NOT NULL,
    node          TEXT NOT NULL,
    latest_epoch  BIGINT NOT NULL,
    tx_hash       TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);

-- One computed epoch: the report validators sign plus the inputs and totals behind it.
CREATE TABLE epochs (
    epoch             BIGINT PRIMARY KEY NOT NULL,
    start_time        BIGINT NOT NULL,
    end_time          BIGINT NOT NULL,
    facts_until       BIGINT NOT NULL,  -- last block time whose events feed this epoch
    rewards_root      TEXT NOT NULL,
    trust_root        TEXT NOT NULL,
    total_rewards     TEXT NOT NULL,
    model_status_hash TEXT NOT NULL,
    budget            TEXT NOT NULL,
    worker_pool       TEXT NOT NULL,
    validator_pool    TEXT NOT NULL,
    model_pool        TEXT NOT NULL,
    tasks_assigned    BIGINT NOT NULL,
    tasks_finalized   BIGINT NOT NULL,
    computed_block    BIGINT NOT NULL   -- indexed (confirmed) block when it was computed
);

-- Per worker and epoch: facts, the four rates, quality, trust, PoWR score and reward.
CREATE TABLE epoch_nodes (
    epoch             BIGINT NOT NULL,
    address           TEXT NOT NULL,
    tasks_assigned    BIGINT NOT NULL,
    tasks_on_time     BIGINT NOT NULL,
    tasks_finalized   BIGINT NOT NULL,
    compute_units     BIGINT NOT NULL,
    active_epochs     BIGINT NOT NULL,  -- uptime window (epochs with work)
    commit_epochs     BIGINT NOT NULL,  -- of those, epochs with a commit
    p50_latency       BIGINT,
    slashed           BIGINT NOT NULL,
    evaluated         BIGINT NOT NULL,  -- 0: idle this epoch, trust carried unchanged
    completion_wad    BIGINT NOT NULL,
    accuracy_wad      BIGINT NOT NULL,
    uptime_wad        BIGINT NOT NULL,
    speed_wad         BIGINT NOT NULL,
    quality_wad       BIGINT NOT NULL,
    prev_trust_wad    BIGINT NOT NULL,
    trust_wad         BIGINT NOT NULL,
    zero_epochs_left  BIGINT NOT NULL,
    score             TEXT NOT NULL,
    reward            TEXT NOT NULL,
    PRIMARY KEY (epoch, address)
);
CREATE INDEX epoch_nodes_by_address ON epoch_nodes (address, epoch);

-- Validators paid by the epoch (active stake at the epoch end).
CREATE TABLE epoch_validators (
    epoch   BIGINT NOT NULL,
    address TEXT NOT NULL,
    stake   TEXT NOT NULL,
    reward  TEXT NOT NULL,
    PRIMARY KEY (epoch, address)
);

-- Usage of each model in the epoch (its developer's share follows compute units).
CREATE TABLE epoch_models (
    epoch           BIGINT NOT NULL,
    model_id        BIGINT NOT NULL,
    developer       TEXT NOT NULL,
    tasks_finalized BIGINT NOT NULL,
    compute_units   BIGINT NOT NULL,
    PRIMARY KEY (epoch, model_id)
);

-- Leaves of the rewards tree with their Merkle proofs.
CREATE TABLE epoch_rewards (
    epoch            BIGINT NOT NULL,
    account          TEXT NOT NULL,
    amount           TEXT NOT NULL,
    worker_reward    TEXT NOT NULL,
    validator_reward TEXT NOT NULL,
    developer_reward TEXT NOT NULL,
    proof            TEXT NOT NULL,  -- JSON array of 0x bytes32, bottom-up
    PRIMARY KEY (epoch, account)
);

-- Epoch facts are read by block time.
CREATE INDEX task_events_by_kind_time ON task_events (kind, block_time);
CREATE INDEX slashes_by_time ON slashes (block_time);

-- ======================================================================
-- 0003_model_quality.sql
-- DeepNode indexer schema v3: natural selection of models.
-- Computed by `indexer::epochs` at each epoch boundary, like the other epoch_* tables (deleted from
-- the first epoch a reorg reaches into, then recomputed). One row per registered model and epoch:
-- its measured quality (user feedback x canary accuracy, WAD) and the status the epoch gives it.

CREATE TABLE epoch_model_quality (
    epoch               BIGINT NOT NULL,
    model_id            BIGINT NOT NULL,
    ratings             BIGINT NOT NULL,  -- TaskRated events of the model in the epoch
    score_sum           BIGINT NOT NULL,  -- sum of their scores (0..100 each)
    feedback_wad        BIGINT NOT NULL,  -- average score / 100 (1e18 without ratings)
    canary_accuracy_wad BIGINT NOT NULL,  -- 1e18 until validators run canary tasks
    quality_wad         BIGINT NOT NULL,  -- feedback x canary accuracy
    prev_status         BIGINT NOT NULL,  -- status the model entered the epoch with
    chain_status        BIGINT NOT NULL,  -- ModelRegistry status at the epoch's end
    status              BIGINT NOT NULL,  -- status after the epoch
    in_report           BIGINT NOT NULL,  -- 1: a leaf of the report's model status tree
    proof               TEXT,              -- JSON array of 0x bytes32 (bottom-up) when in_report
    PRIMARY KEY (epoch, model_id)
);
CREATE INDEX epoch_model_quality_by_model ON epoch_model_quality (model_id, epoch);

-- ======================================================================
-- 0004_audits.sql
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
    full_audit   BIGINT NOT NULL,  -- 1: sealed too late, every task audited
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   BIGINT NOT NULL
);

-- Validators in the audit draw (ValidatorJoined, ValidatorWeightUpdated).
CREATE TABLE audit_validators (
    address       TEXT PRIMARY KEY NOT NULL,
    weight        TEXT NOT NULL,
    joined_block  BIGINT NOT NULL,
    joined_tx     TEXT NOT NULL,
    updated_block BIGINT NOT NULL
);

-- Signed verdicts of drawn validators (VerdictAccepted); a mismatch opens a dispute.
CREATE TABLE verdicts (
    block_number          BIGINT NOT NULL,
    log_index             BIGINT NOT NULL,
    tx_hash               TEXT NOT NULL,
    block_time            BIGINT NOT NULL,
    task_id               BIGINT NOT NULL,
    batch_id              TEXT NOT NULL,
    validator             TEXT NOT NULL,
    worker                TEXT NOT NULL,
    worker_output_hash    TEXT NOT NULL,
    validator_output_hash TEXT NOT NULL,
    quality_ppm           BIGINT NOT NULL,
    matches               BIGINT NOT NULL,
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
    task_id        BIGINT PRIMARY KEY NOT NULL,
    worker         TEXT NOT NULL,
    accuser        TEXT NOT NULL,
    opener         BIGINT NOT NULL,
    members        TEXT NOT NULL,  -- JSON array of the quorum's addresses
    deadline       BIGINT NOT NULL,
    opened_block   BIGINT NOT NULL,
    opened_time    BIGINT NOT NULL,
    opened_tx      TEXT NOT NULL,
    outcome        BIGINT,
    fraud_votes    BIGINT NOT NULL DEFAULT 0,
    honest_votes   BIGINT NOT NULL DEFAULT 0,
    resolved_block BIGINT,
    resolved_time  BIGINT,
    resolved_tx    TEXT
);
CREATE INDEX disputes_by_worker ON disputes (worker);
CREATE INDEX disputes_by_accuser ON disputes (accuser);
CREATE INDEX disputes_by_resolved_time ON disputes (resolved_time);

-- Quorum votes (DisputeVoted).
CREATE TABLE dispute_votes (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   BIGINT NOT NULL,
    task_id      BIGINT NOT NULL,
    validator    TEXT NOT NULL,
    fraud        BIGINT NOT NULL,
    output_hash  TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX dispute_votes_by_task ON dispute_votes (task_id);
CREATE INDEX dispute_votes_by_validator ON dispute_votes (validator);

-- Deadlines validators let pass (DeadlineMissed): kind 0 an audit verdict, 1 a dispute vote.
CREATE TABLE deadline_misses (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   BIGINT NOT NULL,
    task_id      BIGINT NOT NULL,
    validator    TEXT NOT NULL,
    kind         BIGINT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX deadline_misses_by_task ON deadline_misses (task_id);
CREATE INDEX deadline_misses_by_validator ON deadline_misses (validator);

-- Revealed forced errors (ForcedErrorRevealed): `caught_lazy` 1 when the validator had approved
-- the planted wrong result (it is slashed), 0 when its dispute caught it.
CREATE TABLE forced_errors (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   BIGINT NOT NULL,
    task_id      BIGINT NOT NULL,
    validator    TEXT NOT NULL,
    caught_lazy  BIGINT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX forced_errors_by_task ON forced_errors (task_id);
CREATE INDEX forced_errors_by_validator ON forced_errors (validator);

-- Known-answer tasks reported by the validator that submitted them (CanaryReported).
CREATE TABLE canaries (
    block_number         BIGINT NOT NULL,
    log_index            BIGINT NOT NULL,
    tx_hash              TEXT NOT NULL,
    block_time           BIGINT NOT NULL,
    task_id              BIGINT NOT NULL,
    worker               TEXT NOT NULL,
    model_id             BIGINT NOT NULL,
    validator            TEXT NOT NULL,
    expected_output_hash TEXT NOT NULL,
    matches              BIGINT NOT NULL,
    quality_ppm          BIGINT NOT NULL,
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
ALTER TABLE slashes ADD COLUMN task_id BIGINT;
CREATE INDEX slashes_by_task ON slashes (task_id);

-- Epoch facts of the audit layer (computed tables; older rows read 0).
ALTER TABLE epoch_nodes ADD COLUMN audited BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN passed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN quality_sum_ppm BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN fraud BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epoch_model_quality ADD COLUMN canaries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epoch_model_quality ADD COLUMN canary_matches BIGINT NOT NULL DEFAULT 0;

-- ======================================================================
-- 0005_formula_version.sql
-- The version of the epoch rules (protocol::epoch::FORMULA_VERSION) each stored epoch was
-- computed with. Epochs stored before versions were recorded were computed by version 1.
ALTER TABLE epochs ADD COLUMN formula_version BIGINT NOT NULL DEFAULT 1;

-- Each worker's decayed audit record after the epoch (protocol::epoch::AuditRecord, ppm of a
-- judgement), carried into the next epoch's accuracy. Version 1 rows have none (0, 0).
ALTER TABLE epoch_nodes ADD COLUMN record_audited_ppm BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN record_quality_ppm BIGINT NOT NULL DEFAULT 0;

-- ======================================================================
-- 0006_read_paths.sql
-- DeepNode indexer schema v6: what the REST API's hot routes read without scanning.

-- Each worker's task events counted (derived, like `task_events` itself: kept by
-- `ingest::TaskRun` as the rows go in, emptied and rebuilt by the replay after a rollback).
-- `GET /nodes/{address}` grouped every task event of the worker per request (about 2,000 rows,
-- 1.4 ms, for a worker of the bench's 500 tasks; `GET /nodes` every event of every worker).
-- `failed`: commits with a non-zero failure code.
CREATE TABLE node_task_counts (
    worker    TEXT PRIMARY KEY NOT NULL,
    assigned  BIGINT NOT NULL DEFAULT 0,
    committed BIGINT NOT NULL DEFAULT 0,
    failed    BIGINT NOT NULL DEFAULT 0,
    missed    BIGINT NOT NULL DEFAULT 0,
    finalized BIGINT NOT NULL DEFAULT 0
);

-- The newest indexed block's time (whether a jail still runs), read by every node route.
CREATE INDEX blocks_by_timestamp ON blocks (timestamp);
