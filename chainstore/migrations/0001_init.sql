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
    chain_id     INTEGER PRIMARY KEY NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash   TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Hashes of indexed blocks that had events or were a cursor, to find a fork point.
CREATE TABLE blocks (
    number    INTEGER PRIMARY KEY NOT NULL,
    hash      TEXT NOT NULL,
    timestamp INTEGER NOT NULL
);

-- Every log of the three contracts, in chain order.
CREATE TABLE events (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   INTEGER NOT NULL,
    address      TEXT NOT NULL,
    name         TEXT NOT NULL,
    topics       TEXT NOT NULL,  -- JSON array of 0x-hex topics
    data         BLOB NOT NULL,
    json         TEXT NOT NULL,  -- decoded fields
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX events_by_name ON events (name, block_number);

CREATE TABLE models (
    model_id        INTEGER PRIMARY KEY NOT NULL,
    developer       TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    uri             TEXT NOT NULL,
    price_per_call  TEXT NOT NULL,
    compute_units   INTEGER NOT NULL,
    rule            INTEGER NOT NULL,
    tolerance       INTEGER NOT NULL,
    parent          INTEGER NOT NULL,
    status          INTEGER NOT NULL,
    royalties       TEXT NOT NULL DEFAULT '0',  -- sum of developer fees of finalized tasks
    registered_block INTEGER NOT NULL,
    registered_time INTEGER NOT NULL,
    tx_hash         TEXT NOT NULL
);

-- Current opt-ins of workers per model with their sortition weight.
CREATE TABLE model_workers (
    model_id       INTEGER NOT NULL,
    worker         TEXT NOT NULL,
    weight         TEXT NOT NULL,
    opted_in_block INTEGER NOT NULL,
    updated_block  INTEGER NOT NULL,
    PRIMARY KEY (model_id, worker)
);
CREATE INDEX model_workers_by_worker ON model_workers (worker);

-- Every address that staked, was assigned work or was slashed.
CREATE TABLE nodes (
    address          TEXT PRIMARY KEY NOT NULL,
    worker_stake     TEXT NOT NULL DEFAULT '0',
    validator_stake  TEXT NOT NULL DEFAULT '0',
    jailed_until     INTEGER NOT NULL DEFAULT 0,
    trust_wad        TEXT,
    earned           TEXT NOT NULL DEFAULT '0',  -- worker fees of finalized tasks
    slashed          TEXT NOT NULL DEFAULT '0',
    first_block      INTEGER NOT NULL,
    updated_block    INTEGER NOT NULL
);

-- Unstake requests, keyed by the log that requested them. `queue_pos` mirrors the position in
-- Staking's per-account queue (swap-and-pop removal), so withdrawals and slashes of unbonding
-- stake touch the same entries as the contract.
CREATE TABLE unbondings (
    block_number  INTEGER NOT NULL,
    log_index     INTEGER NOT NULL,
    tx_hash       TEXT NOT NULL,
    account       TEXT NOT NULL,
    role          INTEGER NOT NULL,
    amount        TEXT NOT NULL,
    remaining     TEXT NOT NULL,  -- amount minus what slashing took while unbonding
    release_at    INTEGER NOT NULL,
    queue_pos     INTEGER,        -- NULL once withdrawn or slashed away
    status        TEXT NOT NULL,  -- pending | withdrawn | slashed
    closed_block  INTEGER,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX unbondings_by_account ON unbondings (account);

CREATE TABLE tasks (
    task_id         INTEGER PRIMARY KEY NOT NULL,
    model_id        INTEGER NOT NULL,
    submitter       TEXT NOT NULL,
    worker          TEXT,
    fee             TEXT NOT NULL,
    input           BLOB NOT NULL,
    output          BLOB,
    output_hash     TEXT,
    code            INTEGER,
    status          TEXT NOT NULL,
    batch_id        TEXT,
    deadline        INTEGER,
    misses          INTEGER NOT NULL DEFAULT 0,
    submitted_block INTEGER NOT NULL,
    submitted_time  INTEGER NOT NULL,
    submitted_tx    TEXT NOT NULL,
    assigned_block  INTEGER,
    assigned_time   INTEGER,
    committed_block INTEGER,
    committed_time  INTEGER,
    finalized_block INTEGER,
    finalized_time  INTEGER,
    latency         INTEGER,
    compute_units   INTEGER,
    quality         INTEGER,
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
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    task_id      INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    worker       TEXT,
    tx_hash      TEXT NOT NULL,
    block_time   INTEGER NOT NULL,
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
    task_count   INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL
);

CREATE TABLE slashes (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    block_time   INTEGER NOT NULL,
    account      TEXT NOT NULL,
    role         INTEGER NOT NULL,
    reason       INTEGER NOT NULL,
    amount       TEXT NOT NULL,
    beneficiary  TEXT NOT NULL,
    rewarded     TEXT NOT NULL,
    burned       TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX slashes_by_account ON slashes (account);
