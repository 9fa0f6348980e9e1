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
    epoch                 INTEGER PRIMARY KEY NOT NULL,
    rewards_root          TEXT NOT NULL,
    trust_root            TEXT NOT NULL,
    total_rewards         TEXT NOT NULL,
    model_status_hash     TEXT NOT NULL,
    signers               TEXT NOT NULL,  -- JSON array of addresses
    signed_stake          TEXT NOT NULL,
    total_validator_stake TEXT NOT NULL,
    block_number          INTEGER NOT NULL,
    block_time            INTEGER NOT NULL,
    tx_hash               TEXT NOT NULL
);

-- Settlement.RewardClaimed.
CREATE TABLE reward_claims (
    epoch        INTEGER NOT NULL,
    account      TEXT NOT NULL,
    amount       TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    PRIMARY KEY (epoch, account)
);

-- Settlement.TrustRefreshed.
CREATE TABLE trust_refreshes (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    epoch        INTEGER NOT NULL,
    node         TEXT NOT NULL,
    trust_wad    TEXT NOT NULL,
    tx_hash      TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX trust_refreshes_by_node ON trust_refreshes (node);

-- Settlement.TrustExpired.
CREATE TABLE trust_expiries (
    block_number  INTEGER NOT NULL,
    log_index     INTEGER NOT NULL,
    node          TEXT NOT NULL,
    latest_epoch  INTEGER NOT NULL,
    tx_hash       TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);

-- One computed epoch: the report validators sign plus the inputs and totals behind it.
CREATE TABLE epochs (
    epoch             INTEGER PRIMARY KEY NOT NULL,
    start_time        INTEGER NOT NULL,
    end_time          INTEGER NOT NULL,
    facts_until       INTEGER NOT NULL,  -- last block time whose events feed this epoch
    rewards_root      TEXT NOT NULL,
    trust_root        TEXT NOT NULL,
    total_rewards     TEXT NOT NULL,
    model_status_hash TEXT NOT NULL,
    budget            TEXT NOT NULL,
    worker_pool       TEXT NOT NULL,
    validator_pool    TEXT NOT NULL,
    model_pool        TEXT NOT NULL,
    tasks_assigned    INTEGER NOT NULL,
    tasks_finalized   INTEGER NOT NULL,
    computed_block    INTEGER NOT NULL   -- indexed (confirmed) block when it was computed
);

-- Per worker and epoch: facts, the four rates, quality, trust, PoWR score and reward.
CREATE TABLE epoch_nodes (
    epoch             INTEGER NOT NULL,
    address           TEXT NOT NULL,
    tasks_assigned    INTEGER NOT NULL,
    tasks_on_time     INTEGER NOT NULL,
    tasks_finalized   INTEGER NOT NULL,
    compute_units     INTEGER NOT NULL,
    active_epochs     INTEGER NOT NULL,  -- uptime window (epochs with work)
    commit_epochs     INTEGER NOT NULL,  -- of those, epochs with a commit
    p50_latency       INTEGER,
    slashed           INTEGER NOT NULL,
    evaluated         INTEGER NOT NULL,  -- 0: idle this epoch, trust carried unchanged
    completion_wad    INTEGER NOT NULL,
    accuracy_wad      INTEGER NOT NULL,
    uptime_wad        INTEGER NOT NULL,
    speed_wad         INTEGER NOT NULL,
    quality_wad       INTEGER NOT NULL,
    prev_trust_wad    INTEGER NOT NULL,
    trust_wad         INTEGER NOT NULL,
    zero_epochs_left  INTEGER NOT NULL,
    score             TEXT NOT NULL,
    reward            TEXT NOT NULL,
    PRIMARY KEY (epoch, address)
);
CREATE INDEX epoch_nodes_by_address ON epoch_nodes (address, epoch);

-- Validators paid by the epoch (active stake at the epoch end).
CREATE TABLE epoch_validators (
    epoch   INTEGER NOT NULL,
    address TEXT NOT NULL,
    stake   TEXT NOT NULL,
    reward  TEXT NOT NULL,
    PRIMARY KEY (epoch, address)
);

-- Usage of each model in the epoch (its developer's share follows compute units).
CREATE TABLE epoch_models (
    epoch           INTEGER NOT NULL,
    model_id        INTEGER NOT NULL,
    developer       TEXT NOT NULL,
    tasks_finalized INTEGER NOT NULL,
    compute_units   INTEGER NOT NULL,
    PRIMARY KEY (epoch, model_id)
);

-- Leaves of the rewards tree with their Merkle proofs.
CREATE TABLE epoch_rewards (
    epoch            INTEGER NOT NULL,
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
