//! Turns one contract log into rows: the raw `events` row (the source of truth) plus the derived
//! tables (tasks, models, nodes, ...). Pure SQL on a connection the caller owns, so a block range
//! is applied in one transaction and a reorg rollback can replay `events` through the same code.

use crate::sql::{Backend, Builder, Conn, Separated};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::sol_types::SolEventInterface;
use protocol::bindings::{
    IAuditManager::IAuditManagerEvents, IModelRegistry::IModelRegistryEvents,
    IProbeRegistry::IProbeRegistryEvents, ISettlement::ISettlementEvents, IStaking::IStakingEvents,
    ITaskManager::ITaskManagerEvents,
};
use protocol::Deployment;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The contracts whose logs are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contracts {
    /// TaskManager address.
    pub task_manager: Address,
    /// ModelRegistry address.
    pub model_registry: Address,
    /// Staking address.
    pub staking: Address,
    /// Settlement address (epoch reports, claims, trust refresh).
    pub settlement: Address,
    /// AuditManager address (audit draw, verdicts, disputes, forced errors, canaries).
    pub audit_manager: Address,
    /// ProbeRegistry address (probe emission switch, probe submitters revealed); zero for a
    /// deployment without one.
    pub probe_registry: Address,
}

impl Contracts {
    /// The indexed contracts of a deployment.
    pub fn of(d: &Deployment) -> Self {
        Self {
            task_manager: d.task_manager,
            model_registry: d.model_registry,
            staking: d.staking,
            settlement: d.settlement,
            audit_manager: d.audit_manager,
            probe_registry: d.probe_registry,
        }
    }

    /// Addresses for an `eth_getLogs` filter (zero settlement, audit manager and probe registry
    /// addresses are left out).
    pub fn addresses(&self) -> Vec<Address> {
        let mut a = vec![self.task_manager, self.model_registry, self.staking];
        for optional in [self.settlement, self.audit_manager, self.probe_registry] {
            if optional != Address::ZERO {
                a.push(optional);
            }
        }
        a
    }
}

/// Tables derived from `events` by [`apply`]: a reorg rollback empties them and replays the
/// events that remain.
pub const DERIVED_TABLES: [&str; 21] = [
    "models",
    "model_workers",
    "nodes",
    "unbondings",
    "tasks",
    "task_events",
    "node_task_counts",
    "batches",
    "slashes",
    "epoch_reports",
    "reward_claims",
    "trust_refreshes",
    "trust_expiries",
    "batch_seals",
    "audit_validators",
    "verdicts",
    "disputes",
    "dispute_votes",
    "deadline_misses",
    "forced_errors",
    "canaries",
];

/// A log as the indexer stores it: position in the chain plus the raw topics and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLog {
    /// Block number.
    pub block_number: u64,
    /// Index of the log in its block.
    pub log_index: u64,
    /// Transaction that emitted it.
    pub tx_hash: B256,
    /// Unix time of the block.
    pub block_time: u64,
    /// Emitting contract.
    pub address: Address,
    /// Topics (topic 0 is the event signature).
    pub topics: Vec<B256>,
    /// ABI-encoded non-indexed fields.
    pub data: Bytes,
}

/// A log decoded by the `sol!` bindings of the contract that emitted it.
#[derive(Debug)]
pub enum Event {
    /// TaskManager event.
    Task(ITaskManagerEvents),
    /// ModelRegistry event.
    Model(IModelRegistryEvents),
    /// Staking event.
    Staking(IStakingEvents),
    /// Settlement event.
    Settlement(ISettlementEvents),
    /// AuditManager event.
    Audit(IAuditManagerEvents),
    /// ProbeRegistry event (kept in `events` only; the epoch facts read it from there).
    Probe(IProbeRegistryEvents),
    /// A log the bindings do not know (e.g. an OpenZeppelin AccessControl event); kept raw.
    Unknown,
}

/// Decodes a log by its emitting contract. Undecodable logs become [`Event::Unknown`].
pub fn decode(contracts: &Contracts, log: &RawLog) -> Event {
    let decoded = if log.address == contracts.task_manager {
        ITaskManagerEvents::decode_raw_log(&log.topics, &log.data).map(Event::Task)
    } else if log.address == contracts.model_registry {
        IModelRegistryEvents::decode_raw_log(&log.topics, &log.data).map(Event::Model)
    } else if log.address == contracts.staking {
        IStakingEvents::decode_raw_log(&log.topics, &log.data).map(Event::Staking)
    } else if log.address == contracts.settlement && log.address != Address::ZERO {
        ISettlementEvents::decode_raw_log(&log.topics, &log.data).map(Event::Settlement)
    } else if log.address == contracts.audit_manager && log.address != Address::ZERO {
        IAuditManagerEvents::decode_raw_log(&log.topics, &log.data).map(Event::Audit)
    } else if log.address == contracts.probe_registry && log.address != Address::ZERO {
        IProbeRegistryEvents::decode_raw_log(&log.topics, &log.data).map(Event::Probe)
    } else {
        return Event::Unknown;
    };
    decoded.unwrap_or(Event::Unknown)
}

/// Event name and decoded fields as JSON (addresses checksummed, amounts decimal strings).
pub fn describe(event: &Event) -> (&'static str, Value) {
    use IModelRegistryEvents as M;
    use ISettlementEvents as X;
    use IStakingEvents as S;
    use ITaskManagerEvents as T;
    match event {
        Event::Settlement(X::EpochReported(e)) => (
            "EpochReported",
            json!({"epoch": e.epoch, "rewardsRoot": e.rewardsRoot.to_string(), "trustRoot": e.trustRoot.to_string(),
                   "totalRewards": e.totalRewards.to_string(), "modelStatusHash": e.modelStatusHash.to_string(),
                   "signers": e.signers.iter().map(|a| a.to_checksum(None)).collect::<Vec<_>>(),
                   "signedStake": e.signedStake.to_string(), "totalValidatorStake": e.totalValidatorStake.to_string()}),
        ),
        Event::Settlement(X::EquivocationSlashed(e)) => (
            "EquivocationSlashed",
            json!({"epoch": e.epoch, "validator": e.validator.to_checksum(None),
                   "reporter": e.reporter.to_checksum(None), "slashed": e.slashed.to_string()}),
        ),
        Event::Settlement(X::RewardClaimed(e)) => (
            "RewardClaimed",
            json!({"epoch": e.epoch, "account": e.account.to_checksum(None), "amount": e.amount.to_string()}),
        ),
        Event::Settlement(X::TrustRefreshed(e)) => (
            "TrustRefreshed",
            json!({"epoch": e.epoch, "node": e.node.to_checksum(None), "trustWad": e.trustWad.to_string()}),
        ),
        Event::Settlement(X::TrustExpired(e)) => (
            "TrustExpired",
            json!({"node": e.node.to_checksum(None), "latestEpoch": e.latestEpoch}),
        ),
        Event::Settlement(X::ReportVetoed(e)) => (
            "ReportVetoed",
            json!({"epoch": e.epoch, "validator": e.validator.to_checksum(None), "stake": e.stake.to_string(),
                   "vetoed": e.vetoed.to_string(), "total": e.total.to_string()}),
        ),
        Event::Settlement(X::ReportDiscarded(e)) => (
            "ReportDiscarded",
            json!({"epoch": e.epoch, "rewardsRoot": e.rewardsRoot.to_string(), "burned": e.burned.to_string()}),
        ),
        Event::Settlement(X::ModelStatusApplied(e)) => (
            "ModelStatusApplied",
            json!({"epoch": e.epoch, "modelId": e.modelId, "status": e.status}),
        ),
        Event::Task(T::TaskRated(e)) => (
            "TaskRated",
            json!({"taskId": e.taskId.to_string(), "modelId": e.modelId, "submitter": e.submitter.to_checksum(None),
                   "score": e.score}),
        ),
        Event::Task(T::TaskSubmitted(e)) => (
            "TaskSubmitted",
            json!({"taskId": e.taskId.to_string(), "submitter": e.submitter.to_checksum(None),
                   "modelId": e.modelId, "fee": e.fee.to_string(), "inputBytes": e.input.len()}),
        ),
        Event::Task(T::TaskAssigned(e)) => (
            "TaskAssigned",
            json!({"taskId": e.taskId.to_string(), "worker": e.worker.to_checksum(None), "deadline": e.deadline}),
        ),
        Event::Task(T::TaskMissed(e)) => (
            "TaskMissed",
            json!({"taskId": e.taskId.to_string(), "worker": e.worker.to_checksum(None)}),
        ),
        Event::Task(T::AssignmentDeferred(e)) => (
            "AssignmentDeferred",
            json!({"taskId": e.taskId.to_string(), "drawBlock": e.drawBlock}),
        ),
        Event::Task(T::ResultsCommitted(e)) => (
            "ResultsCommitted",
            json!({"batchId": e.batchId.to_string(), "worker": e.worker.to_checksum(None), "root": e.root.to_string(),
                   "taskIds": e.taskIds.iter().map(U256::to_string).collect::<Vec<_>>(),
                   "outputHashes": e.outputHashes.iter().map(B256::to_string).collect::<Vec<_>>(),
                   "codes": e.codes, "outputBytes": e.outputs.iter().map(|o| o.len()).collect::<Vec<_>>()}),
        ),
        Event::Task(T::TaskFinalized(e)) => (
            "TaskFinalized",
            json!({"taskId": e.taskId.to_string(), "worker": e.worker.to_checksum(None), "modelId": e.modelId,
                   "code": e.code, "computeUnits": e.computeUnits, "quality": e.quality, "latency": e.latency,
                   "developerFee": e.developerFee.to_string(), "workerFee": e.workerFee.to_string(),
                   "validatorFee": e.validatorFee.to_string(), "protocolFee": e.protocolFee.to_string(),
                   "refund": e.refund.to_string()}),
        ),
        Event::Task(T::TaskRefunded(e)) => (
            "TaskRefunded",
            json!({"taskId": e.taskId.to_string(), "submitter": e.submitter.to_checksum(None),
                   "amount": e.amount.to_string()}),
        ),
        Event::Task(T::TaskHeld(e)) => ("TaskHeld", json!({"taskId": e.taskId.to_string()})),
        Event::Task(T::TaskReleased(e)) => (
            "TaskReleased",
            json!({"taskId": e.taskId.to_string(), "fraud": e.fraud}),
        ),
        Event::Task(T::PayoutWithdrawn(e)) => (
            "PayoutWithdrawn",
            json!({"account": e.account.to_checksum(None), "amount": e.amount.to_string()}),
        ),
        Event::Model(M::ModelRegistered(e)) => (
            "ModelRegistered",
            json!({"modelId": e.modelId, "developer": e.developer.to_checksum(None),
                   "sha256Hash": e.sha256Hash.to_string(), "uri": e.uri, "pricePerCall": e.pricePerCall.to_string(),
                   "computeUnits": e.computeUnits, "rule": e.rule, "tolerance": e.tolerance, "parent": e.parent}),
        ),
        Event::Model(M::ModelPriceChanged(e)) => (
            "ModelPriceChanged",
            json!({"modelId": e.modelId, "pricePerCall": e.pricePerCall.to_string()}),
        ),
        Event::Model(M::ModelRetired(e)) => (
            "ModelRetired",
            json!({"modelId": e.modelId, "bondRefunded": e.bondRefunded.to_string()}),
        ),
        Event::Model(M::ListingBondForfeited(e)) => (
            "ListingBondForfeited",
            json!({"modelId": e.modelId, "bond": e.bond.to_string()}),
        ),
        Event::Model(M::ModelStatusChanged(e)) => (
            "ModelStatusChanged",
            json!({"modelId": e.modelId, "status": e.status}),
        ),
        Event::Model(M::WorkerOptedIn(e)) => (
            "WorkerOptedIn",
            json!({"modelId": e.modelId, "worker": e.worker.to_checksum(None), "weight": e.weight.to_string()}),
        ),
        Event::Model(M::WorkerOptedOut(e)) => (
            "WorkerOptedOut",
            json!({"modelId": e.modelId, "worker": e.worker.to_checksum(None)}),
        ),
        Event::Model(M::WorkerWeightUpdated(e)) => (
            "WorkerWeightUpdated",
            json!({"modelId": e.modelId, "worker": e.worker.to_checksum(None), "weight": e.weight.to_string()}),
        ),
        Event::Model(M::TrustWeightSet(e)) => (
            "TrustWeightSet",
            json!({"worker": e.worker.to_checksum(None), "trustWad": e.trustWad.to_string()}),
        ),
        Event::Staking(S::Staked(e)) => (
            "Staked",
            json!({"account": e.account.to_checksum(None), "role": e.role, "amount": e.amount.to_string(),
                   "newStake": e.newStake.to_string()}),
        ),
        Event::Staking(S::UnstakeRequested(e)) => (
            "UnstakeRequested",
            json!({"account": e.account.to_checksum(None), "role": e.role, "amount": e.amount.to_string(),
                   "releaseAt": e.releaseAt, "newStake": e.newStake.to_string()}),
        ),
        Event::Staking(S::Withdrawn(e)) => (
            "Withdrawn",
            json!({"account": e.account.to_checksum(None), "amount": e.amount.to_string()}),
        ),
        Event::Staking(S::Slashed(e)) => (
            "Slashed",
            json!({"account": e.account.to_checksum(None), "role": e.role, "reason": e.reason,
                   "amount": e.amount.to_string(), "beneficiary": e.beneficiary.to_checksum(None),
                   "rewarded": e.rewarded.to_string(), "burned": e.burned.to_string()}),
        ),
        Event::Staking(S::Jailed(e)) => (
            "Jailed",
            json!({"account": e.account.to_checksum(None), "until": e.until}),
        ),
        Event::Staking(S::StakeObserverSet(e)) => (
            "StakeObserverSet",
            json!({"observer": e.observer.to_checksum(None)}),
        ),
        Event::Staking(S::ValidatorObserverSet(e)) => (
            "ValidatorObserverSet",
            json!({"observer": e.observer.to_checksum(None)}),
        ),
        Event::Audit(e) => crate::audit::describe(e),
        Event::Probe(IProbeRegistryEvents::ProbesRevealed(e)) => (
            "ProbesRevealed",
            json!({"epoch": e.epoch, "submitter": e.submitter.to_checksum(None),
                   "prober": e.prober.to_checksum(None)}),
        ),
        Event::Probe(IProbeRegistryEvents::ProbeEmissionSet(e)) => {
            ("ProbeEmissionSet", json!({"enabled": e.enabled}))
        }
        Event::Unknown => ("Unknown", json!({})),
    }
}

/// Stores `log` and applies its effects. Returns the event name, or `None` when this log was
/// already stored (re-indexing a range is a no-op).
pub async fn ingest(
    conn: &mut Conn,
    contracts: &Contracts,
    log: &RawLog,
) -> Result<Option<&'static str>, sqlx::Error> {
    let names = ingest_all(conn, contracts, std::slice::from_ref(log)).await?;
    Ok(names.into_iter().next())
}

/// One row of `events`.
struct EventRow<'a> {
    log: &'a RawLog,
    name: &'static str,
    address: String,
    topics: String,
    json: String,
}

/// Logs stored and applied together (the most events of a [`TaskRun`]). A busy chain's block
/// range holds hundreds of thousands of logs (the bench's 100 blocks: 47,500): in chunks, the
/// memory a range takes stays bounded while the statements stay few.
const LOGS_PER_CHUNK: usize = 16_384;

/// Stores the logs not stored yet (a log is its block number and log index; re-indexing a range
/// is a no-op) and applies their effects in the order given. Returns the names of the newly
/// stored events.
///
/// Written in bulk, not a statement per event: every statement is a round trip to the SQLite
/// connection's worker thread, and with one statement per row of each table (17 per task life)
/// the backfill spent more time switching threads than in SQLite (`perf`, `make bench`). The
/// `events` rows go in multi-row statements, the effects through [`apply_all`], a chunk of
/// logs at a time.
pub async fn ingest_all(
    conn: &mut Conn,
    contracts: &Contracts,
    logs: &[RawLog],
) -> Result<Vec<&'static str>, sqlx::Error> {
    let mut names = Vec::with_capacity(logs.len());
    for chunk in logs.chunks(LOGS_PER_CHUNK) {
        names.extend(ingest_chunk(conn, contracts, chunk).await?);
    }
    Ok(names)
}

async fn ingest_chunk(
    conn: &mut Conn,
    contracts: &Contracts,
    logs: &[RawLog],
) -> Result<Vec<&'static str>, sqlx::Error> {
    let (Some(lo), Some(hi)) = (
        logs.iter().map(|l| l.block_number).min(),
        logs.iter().map(|l| l.block_number).max(),
    ) else {
        return Ok(Vec::new());
    };
    let mut stored: HashSet<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(crate::sql!(
        "SELECT block_number, log_index FROM events WHERE block_number BETWEEN ? AND ?"
    ))
    .bind(i64_of(lo))
    .bind(i64_of(hi))
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut rows = Vec::with_capacity(logs.len());
    let mut events = Vec::with_capacity(logs.len());
    for log in logs {
        if !stored.insert((i64_of(log.block_number), i64_of(log.log_index))) {
            continue;
        }
        let event = decode(contracts, log);
        let (name, fields) = describe(&event);
        rows.push(EventRow {
            log,
            name,
            address: log.address.to_checksum(None),
            topics: Value::from(log.topics.iter().map(|t| t.to_string()).collect::<Vec<_>>())
                .to_string(),
            json: fields.to_string(),
        });
        events.push(event);
    }
    // Every new row is in `events` before any effect is applied, as in the replay after a
    // rollback (the one effect reading `events`, Slashed's, reads only earlier logs).
    insert_rows(
        conn,
        "INSERT INTO events (block_number, log_index, tx_hash, block_time, address, name, topics, data, json) ",
        "",
        &rows,
        |mut b, r| {
            b.push_bind(i64_of(r.log.block_number))
                .push_bind(i64_of(r.log.log_index))
                .push_bind(r.log.tx_hash.to_string())
                .push_bind(i64_of(r.log.block_time))
                .push_bind(r.address.as_str())
                .push_bind(r.name)
                .push_bind(r.topics.as_str())
                .push_bind(r.log.data.as_ref())
                .push_bind(r.json.as_str());
        },
    )
    .await?;
    let names = rows.iter().map(|r| r.name).collect();
    let items: Vec<(&RawLog, &Event)> = rows.iter().map(|r| r.log).zip(&events).collect();
    drop(rows); // the rows' text, before the effects take their memory
    apply_all(conn, &items).await?;
    Ok(names)
}

/// Applies the derived effects of an already stored event (used by `ingest` and by the replay
/// after a reorg rollback).
pub async fn apply(conn: &mut Conn, log: &RawLog, event: &Event) -> Result<(), sqlx::Error> {
    apply_all(conn, &[(log, event)]).await
}

/// Applies the derived effects of already stored events, in order. Runs of consecutive
/// TaskManager events (most of a chain's events) are applied together by [`TaskRun`], each other
/// event by its own statements; either way the result is that of applying them one by one.
pub async fn apply_all(conn: &mut Conn, items: &[(&RawLog, &Event)]) -> Result<(), sqlx::Error> {
    let mut rest = items;
    while let Some(&(log, event)) = rest.first() {
        let run: Vec<(&RawLog, &ITaskManagerEvents)> = rest
            .iter()
            .map_while(|&(log, event)| match event {
                Event::Task(e) => Some((log, e)),
                _ => None,
            })
            .take(LOGS_PER_CHUNK)
            .collect();
        if !run.is_empty() {
            TaskRun::apply(conn, &run).await?;
            rest = &rest[run.len()..];
            continue;
        }
        match event {
            Event::Task(_) => unreachable!("a TaskManager event starts a run"),
            Event::Model(e) => apply_model(conn, log, e).await?,
            Event::Staking(e) => apply_staking(conn, log, e).await?,
            Event::Settlement(e) => apply_settlement(conn, log, e).await?,
            Event::Audit(e) => crate::audit::apply(conn, log, e).await?,
            Event::Probe(_) | Event::Unknown => {}
        }
        rest = &rest[1..];
    }
    Ok(())
}

/// SQLite integers are i64; block numbers, times and indexes never come near 2^63.
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Task ids are sequential from 1; a task id beyond i64 cannot be stored (and cannot happen).
pub(crate) fn task_key(id: U256) -> Option<i64> {
    u64::try_from(id).ok().and_then(|v| i64::try_from(v).ok())
}

pub(crate) fn addr(a: Address) -> String {
    a.to_checksum(None)
}

/// Parses a stored decimal amount; a corrupt value counts as zero rather than failing the block.
pub fn parse_amount(s: &str) -> U256 {
    U256::from_str_radix(s, 10).unwrap_or(U256::ZERO)
}

pub(crate) async fn ensure_node(
    conn: &mut Conn,
    who: Address,
    block: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(crate::sql!("INSERT INTO nodes (address, first_block, updated_block) VALUES (?, ?, ?) ON CONFLICT (address) DO NOTHING"))
        .bind(addr(who))
        .bind(i64_of(block))
        .bind(i64_of(block))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds `delta` to a decimal amount column of one row (U256 arithmetic in Rust).
async fn add_amount(
    conn: &mut Conn,
    table: &str,
    column: &str,
    key_column: &str,
    key: &str,
    delta: U256,
) -> Result<(), sqlx::Error> {
    let current: Option<String> = sqlx::query_scalar(&crate::sql::numbered(&format!(
        "SELECT {column} FROM {table} WHERE {key_column} = ?"
    )))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(current) = current {
        let total = parse_amount(&current).saturating_add(delta);
        sqlx::query(&crate::sql::numbered(&format!(
            "UPDATE {table} SET {column} = ? WHERE {key_column} = ?"
        )))
        .bind(total.to_string())
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(crate) async fn task_event(
    conn: &mut Conn,
    log: &RawLog,
    task_id: i64,
    kind: &str,
    worker: Option<Address>,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        crate::sql!("INSERT INTO task_events (block_number, log_index, task_id, kind, worker, tx_hash, block_time, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
    )
    .bind(i64_of(log.block_number))
    .bind(i64_of(log.log_index))
    .bind(task_id)
    .bind(kind)
    .bind(worker.map(addr))
    .bind(log.tx_hash.to_string())
    .bind(i64_of(log.block_time))
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn warn_missing_task(task_id: i64, event: &str) {
    tracing::warn!(
        task_id,
        event,
        "event for a task submitted before the indexed range; ignored"
    );
}

/// The most rows one multi-row statement writes (see [`insert_rows`]).
const MAX_ROWS_PER_STATEMENT: usize = 256;

/// Writes `rows` with `{head}VALUES (..), (..){tail}` statements (`push` binds one row's values).
/// The rows go in chunks of a power of two, at most [`MAX_ROWS_PER_STATEMENT`], so a statement
/// has one of nine shapes, each prepared once per connection (sqlx caches them), and the widest
/// (`tasks`, 30 columns) binds 7,680 values, well under SQLite's limit of 32,766. `head` may
/// open a subquery that `tail` closes (`UPDATE .. FROM (VALUES ..) AS v ..`).
pub(crate) async fn insert_rows<'r, T>(
    conn: &mut Conn,
    head: &str,
    tail: &str,
    rows: &'r [T],
    push: impl Fn(Separated<'_, 'r>, &'r T),
) -> Result<(), sqlx::Error> {
    let mut rest = rows;
    let backend = Backend::of(conn);
    while !rest.is_empty() {
        let n = rest.len().min(MAX_ROWS_PER_STATEMENT);
        let n = 1 << (usize::BITS - 1 - n.leading_zeros()); // the largest power of two <= n
        let (chunk, after) = rest.split_at(n);
        let mut q = Builder::new(backend, head);
        q.push_values(chunk, &push);
        q.push(tail);
        q.build().execute(&mut *conn).await?;
        rest = after;
    }
    Ok(())
}

/// A subquery of the values of the JSON array bound as `$1` (integers if `integers`).
fn json_values(backend: Backend, integers: bool) -> &'static str {
    match (backend, integers) {
        (Backend::Sqlite, _) => "SELECT value FROM json_each($1)",
        (Backend::Postgres, true) => {
            "SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST($1 AS JSON))"
        }
        (Backend::Postgres, false) => {
            "SELECT value FROM json_array_elements_text(CAST($1 AS JSON))"
        }
    }
}

/// Columns of `tasks`, in [`TaskRow`]'s order.
const TASK_COLUMNS: &str = "task_id, model_id, submitter, worker, fee, input, output, output_hash, code, status, batch_id,
    deadline, misses, submitted_block, submitted_time, submitted_tx, assigned_block, assigned_time,
    committed_block, committed_time, finalized_block, finalized_time, latency, compute_units, quality,
    developer_fee, worker_fee, validator_fee, protocol_fee, refund";

/// One row of `tasks`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct TaskRow {
    task_id: i64,
    model_id: i64,
    submitter: String,
    worker: Option<String>,
    fee: String,
    input: Vec<u8>,
    output: Option<Vec<u8>>,
    output_hash: Option<String>,
    code: Option<i64>,
    status: String,
    batch_id: Option<String>,
    deadline: Option<i64>,
    misses: i64,
    submitted_block: i64,
    submitted_time: i64,
    submitted_tx: String,
    assigned_block: Option<i64>,
    assigned_time: Option<i64>,
    committed_block: Option<i64>,
    committed_time: Option<i64>,
    finalized_block: Option<i64>,
    finalized_time: Option<i64>,
    latency: Option<i64>,
    compute_units: Option<i64>,
    quality: Option<i64>,
    developer_fee: Option<String>,
    worker_fee: Option<String>,
    validator_fee: Option<String>,
    protocol_fee: Option<String>,
    refund: Option<String>,
}

/// A task's row in a [`TaskRun`]: as stored when the run began (`None`: no such task), then as
/// the run's events change it.
struct TaskSlot {
    row: Option<TaskRow>,
    changed: bool,
}

/// One row of `task_events`.
struct TaskEventRow {
    block_number: i64,
    log_index: i64,
    task_id: i64,
    kind: &'static str,
    worker: Option<String>,
    tx_hash: String,
    block_time: i64,
    detail: String,
}

/// One row of `batches`.
struct BatchRow {
    batch_id: String,
    worker: String,
    root: String,
    task_count: i64,
    block_number: i64,
    tx_hash: String,
}

/// A run of consecutive TaskManager events, applied in memory and written together.
///
/// Applying them one statement at a time, with a read before each amount added, took 17
/// statements per task life, each a round trip to the connection's worker thread. A run reads
/// the rows its events change (their tasks, the finalizing workers' earnings, the models'
/// royalties) in three queries, applies the events to them in order with the rules of the
/// contract's events, then writes each table in multi-row statements: a task submitted,
/// assigned, committed and finalized within one block range is written once. Only these events
/// write these rows while the run is applied (any other event ends the run), and they read
/// nothing else, so the tables end as they would with the events applied one by one.
#[derive(Default)]
struct TaskRun {
    tasks: HashMap<i64, TaskSlot>,
    task_events: Vec<TaskEventRow>,
    /// Keys of `task_events` rows of the run (a key's first row is the one stored).
    task_event_keys: HashSet<(i64, i64, i64)>,
    /// Per worker, its new `task_events` rows counted as `node_task_counts` counts them.
    task_counts: BTreeMap<String, TaskCounts>,
    batches: Vec<BatchRow>,
    /// `ensure_node` of each address the run names, at its first block in the run.
    new_nodes: Vec<(String, i64)>,
    named_nodes: HashSet<String>,
    /// `nodes.earned` of the workers whose tasks the run finalizes: as stored, then added to.
    earned: HashMap<String, U256>,
    /// `models.royalties` of the existing models whose tasks the run finalizes.
    royalties: HashMap<i64, U256>,
    changed_earned: BTreeSet<String>,
    changed_royalties: BTreeSet<i64>,
}

/// A worker's `task_events` rows counted by kind (`node_task_counts`).
#[derive(Debug, Default, Clone, Copy)]
struct TaskCounts {
    assigned: i64,
    committed: i64,
    /// Commits whose detail has a non-zero `code`.
    failed: i64,
    missed: i64,
    finalized: i64,
}

/// Task ids an event names (those that fit the table's integer key).
fn task_ids(event: &ITaskManagerEvents) -> Vec<i64> {
    use ITaskManagerEvents as T;
    let one = |id: U256| task_key(id).into_iter().collect();
    match event {
        T::TaskSubmitted(e) => one(e.taskId),
        T::TaskAssigned(e) => one(e.taskId),
        T::TaskMissed(e) => one(e.taskId),
        T::AssignmentDeferred(e) => one(e.taskId),
        T::ResultsCommitted(e) => e.taskIds.iter().filter_map(|t| task_key(*t)).collect(),
        T::TaskFinalized(e) => one(e.taskId),
        T::TaskRefunded(e) => one(e.taskId),
        T::TaskHeld(e) => one(e.taskId),
        T::TaskReleased(e) => one(e.taskId),
        T::TaskRated(e) => one(e.taskId),
        T::PayoutWithdrawn(_) => Vec::new(),
    }
}

impl TaskRun {
    /// Applies `events` (consecutive, in chain order) and writes what they changed.
    async fn apply(
        conn: &mut Conn,
        events: &[(&RawLog, &ITaskManagerEvents)],
    ) -> Result<(), sqlx::Error> {
        let mut run = TaskRun::load(conn, events).await?;
        for (log, event) in events {
            run.apply_event(log, event);
        }
        run.write(conn).await
    }

    /// The stored rows `events` change.
    async fn load(
        conn: &mut Conn,
        events: &[(&RawLog, &ITaskManagerEvents)],
    ) -> Result<Self, sqlx::Error> {
        let mut ids = BTreeSet::new();
        let mut workers = BTreeSet::new();
        let mut models = BTreeSet::new();
        for (_, event) in events {
            ids.extend(task_ids(event));
            if let ITaskManagerEvents::TaskFinalized(e) = event {
                workers.insert(addr(e.worker));
                models.insert(i64::from(e.modelId));
            }
        }
        let mut run = TaskRun {
            tasks: ids
                .iter()
                .map(|id| {
                    let slot = TaskSlot {
                        row: None,
                        changed: false,
                    };
                    (*id, slot)
                })
                .collect(),
            ..TaskRun::default()
        };
        // key lists travel as one JSON array each: one statement shape whatever their length
        let backend = Backend::of(conn);
        let json_list = |v: Vec<Value>| Value::from(v).to_string();
        if !ids.is_empty() {
            let rows: Vec<TaskRow> = sqlx::query_as(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE task_id IN ({})",
                json_values(backend, true)
            ))
            .bind(json_list(ids.iter().map(|id| Value::from(*id)).collect()))
            .fetch_all(&mut *conn)
            .await?;
            for row in rows {
                if let Some(slot) = run.tasks.get_mut(&row.task_id) {
                    slot.row = Some(row);
                }
            }
        }
        if !workers.is_empty() {
            let rows: Vec<(String, String)> = sqlx::query_as(&format!(
                "SELECT address, earned FROM nodes WHERE address IN ({})",
                json_values(backend, false)
            ))
            .bind(json_list(workers.into_iter().map(Value::from).collect()))
            .fetch_all(&mut *conn)
            .await?;
            run.earned = rows
                .into_iter()
                .map(|(a, earned)| (a, parse_amount(&earned)))
                .collect();
        }
        if !models.is_empty() {
            let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
                "SELECT model_id, royalties FROM models WHERE model_id IN ({})",
                json_values(backend, true)
            ))
            .bind(json_list(models.into_iter().map(Value::from).collect()))
            .fetch_all(&mut *conn)
            .await?;
            run.royalties = rows
                .into_iter()
                .map(|(m, royalties)| (m, parse_amount(&royalties)))
                .collect();
        }
        Ok(run)
    }

    /// `INSERT INTO nodes .. ON CONFLICT DO NOTHING`: the first block naming the node counts.
    fn ensure_node(&mut self, who: Address, block: i64) {
        let a = addr(who);
        if self.named_nodes.insert(a.clone()) {
            self.new_nodes.push((a, block));
        }
    }

    /// Changes a task's row; a task unknown here is not stored (submitted before the indexed
    /// range): `warn` names the event when that is worth a warning.
    fn update(&mut self, id: i64, warn: Option<&str>, change: impl FnOnce(&mut TaskRow)) {
        let slot = self
            .tasks
            .get_mut(&id)
            .expect("TaskRun::load reads every task its events name");
        match &mut slot.row {
            Some(row) => {
                change(row);
                slot.changed = true;
            }
            None => {
                if let Some(event) = warn {
                    warn_missing_task(id, event);
                }
            }
        }
    }

    fn task_event(
        &mut self,
        log: &RawLog,
        task_id: i64,
        kind: &'static str,
        worker: Option<Address>,
        detail: Value,
    ) {
        let key = (i64_of(log.block_number), i64_of(log.log_index), task_id);
        if !self.task_event_keys.insert(key) {
            return; // `ON CONFLICT DO NOTHING` would keep the first (a task twice in one commit)
        }
        if let Some(w) = worker {
            let counted = matches!(kind, "assigned" | "committed" | "missed" | "finalized");
            if counted {
                let c = self.task_counts.entry(addr(w)).or_default();
                match kind {
                    "assigned" => c.assigned += 1,
                    "committed" => {
                        c.committed += 1;
                        // `json_extract(detail, '$.code') != 0`
                        if detail
                            .get("code")
                            .is_some_and(|code| !code.is_null() && *code != 0)
                        {
                            c.failed += 1;
                        }
                    }
                    "missed" => c.missed += 1,
                    _ => c.finalized += 1,
                }
            }
        }
        self.task_events.push(TaskEventRow {
            block_number: i64_of(log.block_number),
            log_index: i64_of(log.log_index),
            task_id,
            kind,
            worker: worker.map(addr),
            tx_hash: log.tx_hash.to_string(),
            block_time: i64_of(log.block_time),
            detail: detail.to_string(),
        });
    }

    /// One event's effects, in memory.
    fn apply_event(&mut self, log: &RawLog, event: &ITaskManagerEvents) {
        use ITaskManagerEvents as T;
        let block = i64_of(log.block_number);
        let time = i64_of(log.block_time);
        match event {
            T::TaskSubmitted(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                let slot = self
                    .tasks
                    .get_mut(&id)
                    .expect("TaskRun::load reads every task its events name");
                if slot.row.is_none() {
                    slot.row = Some(TaskRow {
                        task_id: id,
                        model_id: i64::from(e.modelId),
                        submitter: addr(e.submitter),
                        worker: None,
                        fee: e.fee.to_string(),
                        input: e.input.to_vec(),
                        output: None,
                        output_hash: None,
                        code: None,
                        status: "submitted".into(),
                        batch_id: None,
                        deadline: None,
                        misses: 0,
                        submitted_block: block,
                        submitted_time: time,
                        submitted_tx: log.tx_hash.to_string(),
                        assigned_block: None,
                        assigned_time: None,
                        committed_block: None,
                        committed_time: None,
                        finalized_block: None,
                        finalized_time: None,
                        latency: None,
                        compute_units: None,
                        quality: None,
                        developer_fee: None,
                        worker_fee: None,
                        validator_fee: None,
                        protocol_fee: None,
                        refund: None,
                    });
                    slot.changed = true;
                }
                self.task_event(
                    log,
                    id,
                    "submitted",
                    None,
                    json!({"fee": e.fee.to_string(), "submitter": addr(e.submitter)}),
                );
            }
            T::TaskAssigned(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                self.ensure_node(e.worker, block);
                self.update(id, Some("TaskAssigned"), |t| {
                    t.worker = Some(addr(e.worker));
                    t.deadline = Some(i64_of(e.deadline));
                    t.status = "assigned".into();
                    t.assigned_block = Some(block);
                    t.assigned_time = Some(time);
                });
                self.task_event(
                    log,
                    id,
                    "assigned",
                    Some(e.worker),
                    json!({"deadline": e.deadline}),
                );
            }
            T::TaskMissed(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                self.ensure_node(e.worker, block);
                self.update(id, None, |t| t.misses += 1);
                self.task_event(log, id, "missed", Some(e.worker), json!({}));
            }
            T::AssignmentDeferred(e) => {
                // waiting again for its worker to be drawn (after a miss, or a draw not made in
                // time)
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                self.update(id, None, |t| t.status = "submitted".into());
                self.task_event(
                    log,
                    id,
                    "draw_deferred",
                    None,
                    json!({"drawBlock": e.drawBlock}),
                );
            }
            T::ResultsCommitted(e) => {
                let batch_id = e.batchId.to_string();
                self.batches.push(BatchRow {
                    batch_id: batch_id.clone(),
                    worker: addr(e.worker),
                    root: e.root.to_string(),
                    task_count: i64::try_from(e.taskIds.len()).unwrap_or(i64::MAX),
                    block_number: block,
                    tx_hash: log.tx_hash.to_string(),
                });
                for (i, task_id) in e.taskIds.iter().enumerate() {
                    let Some(id) = task_key(*task_id) else {
                        continue;
                    };
                    let hash = e.outputHashes.get(i).copied().unwrap_or_default();
                    let code = e.codes.get(i).copied().unwrap_or_default();
                    let output = e.outputs.get(i).map(|b| b.to_vec());
                    let status = if code == 0 { "committed" } else { "failed" };
                    self.update(id, Some("ResultsCommitted"), |t| {
                        t.output = output;
                        t.output_hash = Some(hash.to_string());
                        t.code = Some(i64::from(code));
                        t.status = status.into();
                        t.batch_id = Some(batch_id.clone());
                        t.committed_block = Some(block);
                        t.committed_time = Some(time);
                        t.latency = t.assigned_time.map(|assigned| time - assigned);
                    });
                    self.task_event(
                        log,
                        id,
                        "committed",
                        Some(e.worker),
                        json!({"batchId": batch_id, "outputHash": hash.to_string(), "code": code, "root": e.root.to_string()}),
                    );
                }
            }
            T::TaskFinalized(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                self.update(id, Some("TaskFinalized"), |t| {
                    t.status = "finalized".into();
                    t.code = Some(i64::from(e.code));
                    t.compute_units = Some(i64::from(e.computeUnits));
                    t.quality = Some(i64::from(e.quality));
                    t.latency = Some(i64::from(e.latency));
                    t.developer_fee = Some(e.developerFee.to_string());
                    t.worker_fee = Some(e.workerFee.to_string());
                    t.validator_fee = Some(e.validatorFee.to_string());
                    t.protocol_fee = Some(e.protocolFee.to_string());
                    t.refund = Some(e.refund.to_string());
                    t.finalized_block = Some(block);
                    t.finalized_time = Some(time);
                });
                self.ensure_node(e.worker, block);
                // the node exists now: stored before the run (its earnings were read) or named
                // by it (from 0)
                let worker = addr(e.worker);
                let earned = self.earned.entry(worker.clone()).or_default();
                *earned = earned.saturating_add(e.workerFee);
                self.changed_earned.insert(worker);
                // a model not registered (yet) has no royalties to add to
                let model = i64::from(e.modelId);
                if let Some(royalties) = self.royalties.get_mut(&model) {
                    *royalties = royalties.saturating_add(e.developerFee);
                    self.changed_royalties.insert(model);
                }
                self.task_event(
                    log,
                    id,
                    "finalized",
                    Some(e.worker),
                    json!({"code": e.code, "quality": e.quality, "latency": e.latency, "workerFee": e.workerFee.to_string(),
                           "refund": e.refund.to_string()}),
                );
            }
            T::TaskRefunded(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                self.update(id, Some("TaskRefunded"), |t| {
                    t.status = "refunded".into();
                    t.refund = Some(e.amount.to_string());
                    t.finalized_block = Some(block);
                    t.finalized_time = Some(time);
                });
                self.task_event(
                    log,
                    id,
                    "refunded",
                    None,
                    json!({"amount": e.amount.to_string()}),
                );
            }
            T::TaskHeld(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                self.update(id, Some("TaskHeld"), |t| t.status = "disputed".into());
                self.task_event(log, id, "held", None, json!({}));
            }
            T::TaskReleased(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                // A fraud release refunds the submitter: TaskRefunded follows in the same call
                // and sets `refunded`. Otherwise the task is what it was again (a result, or an
                // input fault's failure), finalizable at once.
                if !e.fraud {
                    self.update(id, None, |t| {
                        if t.status == "disputed" {
                            t.status = if t.code.unwrap_or(0) == 0 {
                                "committed"
                            } else {
                                "failed"
                            }
                            .into();
                        }
                    });
                }
                self.task_event(log, id, "released", None, json!({"fraud": e.fraud}));
            }
            T::PayoutWithdrawn(_) => {}
            T::TaskRated(e) => {
                let Some(id) = task_key(e.taskId) else {
                    return;
                };
                self.task_event(
                    log,
                    id,
                    "rated",
                    None,
                    json!({"score": e.score, "modelId": e.modelId}),
                );
            }
        }
    }

    /// Writes what the run changed, a few multi-row statements per table.
    async fn write(self, conn: &mut Conn) -> Result<(), sqlx::Error> {
        insert_rows(
            conn,
            "INSERT INTO nodes (address, first_block, updated_block) ",
            " ON CONFLICT (address) DO NOTHING",
            &self.new_nodes,
            |mut b, (a, block)| {
                b.push_bind(a.as_str()).push_bind(*block).push_bind(*block);
            },
        )
        .await?;
        let earned: Vec<(&str, String)> = self
            .changed_earned
            .iter()
            .map(|a| (a.as_str(), self.earned[a].to_string()))
            .collect();
        insert_rows(
            conn,
            "UPDATE nodes SET earned = v.column2 FROM (",
            ") AS v WHERE nodes.address = v.column1",
            &earned,
            |mut b, (a, amount)| {
                b.push_bind(*a).push_bind(amount.as_str());
            },
        )
        .await?;
        let royalties: Vec<(i64, String)> = self
            .changed_royalties
            .iter()
            .map(|m| (*m, self.royalties[m].to_string()))
            .collect();
        insert_rows(
            conn,
            "UPDATE models SET royalties = v.column2 FROM (",
            ") AS v WHERE models.model_id = v.column1",
            &royalties,
            |mut b, (m, amount)| {
                b.push_bind(*m).push_bind(amount.as_str());
            },
        )
        .await?;
        let mut tasks: Vec<&TaskRow> = self
            .tasks
            .values()
            .filter(|s| s.changed)
            .filter_map(|s| s.row.as_ref())
            .collect();
        tasks.sort_unstable_by_key(|t| t.task_id);
        let update_all = TASK_COLUMNS
            .split(',')
            .map(str::trim)
            .filter(|c| *c != "task_id")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        insert_rows(
            conn,
            &format!("INSERT INTO tasks ({TASK_COLUMNS}) "),
            &format!(" ON CONFLICT (task_id) DO UPDATE SET {update_all}"),
            &tasks,
            |mut b, t| {
                b.push_bind(t.task_id)
                    .push_bind(t.model_id)
                    .push_bind(t.submitter.as_str())
                    .push_bind(t.worker.as_deref())
                    .push_bind(t.fee.as_str())
                    .push_bind(t.input.as_slice())
                    .push_bind(t.output.as_deref())
                    .push_bind(t.output_hash.as_deref())
                    .push_bind(t.code)
                    .push_bind(t.status.as_str())
                    .push_bind(t.batch_id.as_deref())
                    .push_bind(t.deadline)
                    .push_bind(t.misses)
                    .push_bind(t.submitted_block)
                    .push_bind(t.submitted_time)
                    .push_bind(t.submitted_tx.as_str())
                    .push_bind(t.assigned_block)
                    .push_bind(t.assigned_time)
                    .push_bind(t.committed_block)
                    .push_bind(t.committed_time)
                    .push_bind(t.finalized_block)
                    .push_bind(t.finalized_time)
                    .push_bind(t.latency)
                    .push_bind(t.compute_units)
                    .push_bind(t.quality)
                    .push_bind(t.developer_fee.as_deref())
                    .push_bind(t.worker_fee.as_deref())
                    .push_bind(t.validator_fee.as_deref())
                    .push_bind(t.protocol_fee.as_deref())
                    .push_bind(t.refund.as_deref());
            },
        )
        .await?;
        insert_rows(
            conn,
            "INSERT INTO batches (batch_id, worker, root, task_count, block_number, tx_hash) ",
            " ON CONFLICT (batch_id) DO NOTHING",
            &self.batches,
            |mut b, r| {
                b.push_bind(r.batch_id.as_str())
                    .push_bind(r.worker.as_str())
                    .push_bind(r.root.as_str())
                    .push_bind(r.task_count)
                    .push_bind(r.block_number)
                    .push_bind(r.tx_hash.as_str());
            },
        )
        .await?;
        insert_rows(
            conn,
            "INSERT INTO task_events (block_number, log_index, task_id, kind, worker, tx_hash, block_time, detail) ",
            " ON CONFLICT DO NOTHING",
            &self.task_events,
            |mut b, r| {
                b.push_bind(r.block_number)
                    .push_bind(r.log_index)
                    .push_bind(r.task_id)
                    .push_bind(r.kind)
                    .push_bind(r.worker.as_deref())
                    .push_bind(r.tx_hash.as_str())
                    .push_bind(r.block_time)
                    .push_bind(r.detail.as_str());
            },
        )
        .await?;
        let counts: Vec<(&String, &TaskCounts)> = self.task_counts.iter().collect();
        insert_rows(
            conn,
            "INSERT INTO node_task_counts (worker, assigned, committed, failed, missed, finalized) ",
            " ON CONFLICT (worker) DO UPDATE SET assigned = node_task_counts.assigned + excluded.assigned,
                 committed = node_task_counts.committed + excluded.committed, failed = node_task_counts.failed + excluded.failed,
                 missed = node_task_counts.missed + excluded.missed, finalized = node_task_counts.finalized + excluded.finalized",
            &counts,
            |mut b, (w, c)| {
                b.push_bind(w.as_str())
                    .push_bind(c.assigned)
                    .push_bind(c.committed)
                    .push_bind(c.failed)
                    .push_bind(c.missed)
                    .push_bind(c.finalized);
            },
        )
        .await
    }
}

async fn apply_model(
    conn: &mut Conn,
    log: &RawLog,
    event: &IModelRegistryEvents,
) -> Result<(), sqlx::Error> {
    use IModelRegistryEvents as M;
    let block = i64_of(log.block_number);
    match event {
        M::ModelRegistered(e) => {
            sqlx::query(
                crate::sql!("INSERT INTO models (model_id, developer, sha256, uri, price_per_call, compute_units, rule, tolerance, parent,
                     status, registered_block, registered_time, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (model_id) DO NOTHING"),
            )
            .bind(i64::from(e.modelId))
            .bind(addr(e.developer))
            .bind(e.sha256Hash.to_string())
            .bind(&e.uri)
            .bind(e.pricePerCall.to_string())
            .bind(i64::from(e.computeUnits))
            .bind(i64::from(e.rule))
            .bind(i64::from(e.tolerance))
            .bind(i64::from(e.parent))
            .bind(block)
            .bind(i64_of(log.block_time))
            .bind(log.tx_hash.to_string())
            .execute(&mut *conn)
            .await?;
        }
        // the status change that comes with either is its own ModelStatusChanged event
        M::ModelRetired(_) | M::ListingBondForfeited(_) => {}
        M::ModelPriceChanged(e) => {
            sqlx::query(crate::sql!(
                "UPDATE models SET price_per_call = ? WHERE model_id = ?"
            ))
            .bind(e.pricePerCall.to_string())
            .bind(i64::from(e.modelId))
            .execute(&mut *conn)
            .await?;
        }
        M::ModelStatusChanged(e) => {
            sqlx::query(crate::sql!(
                "UPDATE models SET status = ? WHERE model_id = ?"
            ))
            .bind(i64::from(e.status))
            .bind(i64::from(e.modelId))
            .execute(&mut *conn)
            .await?;
        }
        M::WorkerOptedIn(e) => {
            ensure_node(conn, e.worker, log.block_number).await?;
            upsert_weight(conn, e.modelId, e.worker, e.weight, block).await?;
        }
        M::WorkerWeightUpdated(e) => {
            upsert_weight(conn, e.modelId, e.worker, e.weight, block).await?;
        }
        M::WorkerOptedOut(e) => {
            sqlx::query(crate::sql!(
                "DELETE FROM model_workers WHERE model_id = ? AND worker = ?"
            ))
            .bind(i64::from(e.modelId))
            .bind(addr(e.worker))
            .execute(&mut *conn)
            .await?;
        }
        M::TrustWeightSet(e) => {
            ensure_node(conn, e.worker, log.block_number).await?;
            sqlx::query(crate::sql!(
                "UPDATE nodes SET trust_wad = ?, updated_block = ? WHERE address = ?"
            ))
            .bind(e.trustWad.to_string())
            .bind(block)
            .bind(addr(e.worker))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn upsert_weight(
    conn: &mut Conn,
    model_id: u32,
    worker: Address,
    weight: U256,
    block: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        crate::sql!("INSERT INTO model_workers (model_id, worker, weight, opted_in_block, updated_block) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (model_id, worker) DO UPDATE SET weight = excluded.weight, updated_block = excluded.updated_block"),
    )
    .bind(i64::from(model_id))
    .bind(addr(worker))
    .bind(weight.to_string())
    .bind(block)
    .bind(block)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn stake_column(role: u8) -> Option<&'static str> {
    match role {
        protocol::bindings::ROLE_WORKER => Some("worker_stake"),
        protocol::bindings::ROLE_VALIDATOR => Some("validator_stake"),
        _ => None,
    }
}

async fn set_stake(
    conn: &mut Conn,
    who: Address,
    role: u8,
    stake: U256,
    block: i64,
) -> Result<(), sqlx::Error> {
    let Some(column) = stake_column(role) else {
        tracing::warn!(role, account = %who, "stake event with an unknown role; ignored");
        return Ok(());
    };
    sqlx::query(&crate::sql::numbered(&format!(
        "UPDATE nodes SET {column} = ?, updated_block = ? WHERE address = ?"
    )))
    .bind(stake.to_string())
    .bind(block)
    .bind(addr(who))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_staking(
    conn: &mut Conn,
    log: &RawLog,
    event: &IStakingEvents,
) -> Result<(), sqlx::Error> {
    use IStakingEvents as S;
    let block = i64_of(log.block_number);
    match event {
        S::Staked(e) => {
            ensure_node(conn, e.account, log.block_number).await?;
            set_stake(conn, e.account, e.role, e.newStake, block).await?;
        }
        S::UnstakeRequested(e) => {
            ensure_node(conn, e.account, log.block_number).await?;
            set_stake(conn, e.account, e.role, e.newStake, block).await?;
            let queue_len: i64 = sqlx::query_scalar(crate::sql!(
                "SELECT COUNT(*) FROM unbondings WHERE account = ? AND queue_pos IS NOT NULL"
            ))
            .bind(addr(e.account))
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query(
                crate::sql!("INSERT INTO unbondings (block_number, log_index, tx_hash, account, role, amount, remaining,
                     release_at, queue_pos, status)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending') ON CONFLICT DO NOTHING"),
            )
            .bind(block)
            .bind(i64_of(log.log_index))
            .bind(log.tx_hash.to_string())
            .bind(addr(e.account))
            .bind(i64::from(e.role))
            .bind(e.amount.to_string())
            .bind(e.amount.to_string())
            .bind(i64_of(e.releaseAt))
            .bind(queue_len)
            .execute(&mut *conn)
            .await?;
        }
        S::Withdrawn(e) => {
            // withdraw() pays out every matured entry, walking the queue with swap-and-pop.
            let mut q = UnbondingQueue::load(conn, e.account).await?;
            let mut i = 0;
            while i < q.entries.len() {
                if q.entries[i].release_at <= i64_of(log.block_time) {
                    q.remove(i, "withdrawn");
                } else {
                    i += 1;
                }
            }
            q.store(conn, block).await?;
        }
        S::Slashed(e) => {
            ensure_node(conn, e.account, log.block_number).await?;
            // AuditManager slashes right after the log naming the task (same transaction).
            let task_id: Option<i64> = sqlx::query_scalar(crate::sql!(
                "SELECT CAST(json_extract(json, '$.taskId') AS BIGINT) FROM events
                 WHERE block_number = ? AND tx_hash = ? AND log_index < ?
                   AND name IN ('DisputeResolved', 'ForcedErrorRevealed')
                 ORDER BY log_index DESC LIMIT 1"
            ))
            .bind(block)
            .bind(log.tx_hash.to_string())
            .bind(i64_of(log.log_index))
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
            sqlx::query(
                crate::sql!("INSERT INTO slashes (block_number, log_index, tx_hash, block_time, account, role, reason, amount,
                     beneficiary, rewarded, burned, task_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(block)
            .bind(i64_of(log.log_index))
            .bind(log.tx_hash.to_string())
            .bind(i64_of(log.block_time))
            .bind(addr(e.account))
            .bind(i64::from(e.role))
            .bind(i64::from(e.reason))
            .bind(e.amount.to_string())
            .bind(addr(e.beneficiary))
            .bind(e.rewarded.to_string())
            .bind(e.burned.to_string())
            .bind(task_id)
            .execute(&mut *conn)
            .await?;
            add_amount(
                conn,
                "nodes",
                "slashed",
                "address",
                &addr(e.account),
                e.amount,
            )
            .await?;
            slash_stake(conn, e.account, e.role, e.amount, block).await?;
        }
        S::Jailed(e) => {
            ensure_node(conn, e.account, log.block_number).await?;
            sqlx::query(crate::sql!(
                "UPDATE nodes SET jailed_until = ?, updated_block = ? WHERE address = ?"
            ))
            .bind(i64_of(e.until))
            .bind(block)
            .bind(addr(e.account))
            .execute(&mut *conn)
            .await?;
        }
        S::StakeObserverSet(_) | S::ValidatorObserverSet(_) => {}
    }
    Ok(())
}

/// One entry of an account's unbonding queue.
#[derive(Debug, Clone)]
struct QueueEntry {
    block_number: i64,
    log_index: i64,
    role: i64,
    remaining: U256,
    release_at: i64,
}

/// An account's unbonding queue in the contract's order, changed in memory the way Staking
/// changes it (swap-and-pop removal), then written back.
struct UnbondingQueue {
    entries: Vec<QueueEntry>,
    removed: Vec<(QueueEntry, &'static str)>,
}

impl UnbondingQueue {
    async fn load(conn: &mut Conn, account: Address) -> Result<Self, sqlx::Error> {
        let rows: Vec<(i64, i64, i64, String, i64)> = sqlx::query_as(crate::sql!(
            "SELECT block_number, log_index, role, remaining, release_at FROM unbondings
             WHERE account = ? AND queue_pos IS NOT NULL ORDER BY queue_pos"
        ))
        .bind(addr(account))
        .fetch_all(&mut *conn)
        .await?;
        let entries = rows
            .into_iter()
            .map(
                |(block_number, log_index, role, remaining, release_at)| QueueEntry {
                    block_number,
                    log_index,
                    role,
                    remaining: parse_amount(&remaining),
                    release_at,
                },
            )
            .collect();
        Ok(Self {
            entries,
            removed: Vec::new(),
        })
    }

    /// `queue[i] = queue[last]; queue.pop()`.
    fn remove(&mut self, i: usize, status: &'static str) {
        let entry = self.entries.swap_remove(i);
        self.removed.push((entry, status));
    }

    async fn store(self, conn: &mut Conn, block: i64) -> Result<(), sqlx::Error> {
        for (pos, e) in self.entries.iter().enumerate() {
            sqlx::query(
                crate::sql!("UPDATE unbondings SET queue_pos = ?, remaining = ? WHERE block_number = ? AND log_index = ?"),
            )
            .bind(i64::try_from(pos).unwrap_or(i64::MAX))
            .bind(e.remaining.to_string())
            .bind(e.block_number)
            .bind(e.log_index)
            .execute(&mut *conn)
            .await?;
        }
        for (e, status) in &self.removed {
            let remaining = if *status == "slashed" {
                U256::ZERO
            } else {
                e.remaining
            };
            sqlx::query(
                crate::sql!("UPDATE unbondings SET queue_pos = NULL, status = ?, remaining = ?, closed_block = ?
                 WHERE block_number = ? AND log_index = ?"),
            )
            .bind(*status)
            .bind(remaining.to_string())
            .bind(block)
            .bind(e.block_number)
            .bind(e.log_index)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Mirrors `Staking.slash`: the Slashed event carries what was taken but not the new stake, so
/// take it from the active stake first, then from the role's unbonding entries newest first
/// (walking the queue from its end, removing emptied entries with swap-and-pop).
async fn slash_stake(
    conn: &mut Conn,
    who: Address,
    role: u8,
    amount: U256,
    block: i64,
) -> Result<(), sqlx::Error> {
    let Some(column) = stake_column(role) else {
        return Ok(());
    };
    let stake: Option<String> = sqlx::query_scalar(&crate::sql::numbered(&format!(
        "SELECT {column} FROM nodes WHERE address = ?"
    )))
    .bind(addr(who))
    .fetch_optional(&mut *conn)
    .await?;
    let stake = stake.map(|s| parse_amount(&s)).unwrap_or_default();
    let from_active = stake.min(amount);
    set_stake(conn, who, role, stake - from_active, block).await?;
    let mut slashed = from_active;
    if slashed >= amount {
        return Ok(());
    }
    let mut q = UnbondingQueue::load(conn, who).await?;
    let mut i = q.entries.len();
    while i > 0 && slashed < amount {
        i -= 1;
        if q.entries[i].role != i64::from(role) {
            continue;
        }
        let want = amount - slashed;
        if q.entries[i].remaining <= want {
            slashed += q.entries[i].remaining;
            q.remove(i, "slashed");
        } else {
            q.entries[i].remaining -= want;
            slashed += want;
        }
    }
    q.store(conn, block).await
}

async fn apply_settlement(
    conn: &mut Conn,
    log: &RawLog,
    event: &ISettlementEvents,
) -> Result<(), sqlx::Error> {
    use ISettlementEvents as X;
    let block = i64_of(log.block_number);
    let tx = log.tx_hash.to_string();
    match event {
        X::EpochReported(e) => {
            let signers: Vec<String> = e.signers.iter().map(|a| addr(*a)).collect();
            sqlx::query(
                crate::sql!("INSERT INTO epoch_reports (epoch, rewards_root, trust_root, total_rewards, model_status_hash, signers,
                     signed_stake, total_validator_stake, block_number, block_time, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (epoch) DO NOTHING"),
            )
            .bind(i64_of(e.epoch))
            .bind(e.rewardsRoot.to_string())
            .bind(e.trustRoot.to_string())
            .bind(e.totalRewards.to_string())
            .bind(e.modelStatusHash.to_string())
            .bind(Value::from(signers).to_string())
            .bind(e.signedStake.to_string())
            .bind(e.totalValidatorStake.to_string())
            .bind(block)
            .bind(i64_of(log.block_time))
            .bind(&tx)
            .execute(&mut *conn)
            .await?;
        }
        // the slash itself is Staking's Slashed event (reason 6), stored with the other slashes
        X::EquivocationSlashed(_) => {}
        X::RewardClaimed(e) => {
            sqlx::query(
                crate::sql!("INSERT INTO reward_claims (epoch, account, amount, block_number, log_index, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (epoch, account) DO NOTHING"),
            )
            .bind(i64_of(e.epoch))
            .bind(addr(e.account))
            .bind(e.amount.to_string())
            .bind(block)
            .bind(i64_of(log.log_index))
            .bind(&tx)
            .execute(&mut *conn)
            .await?;
        }
        X::TrustRefreshed(e) => {
            sqlx::query(
                crate::sql!("INSERT INTO trust_refreshes (block_number, log_index, epoch, node, trust_wad, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(block)
            .bind(i64_of(log.log_index))
            .bind(i64_of(e.epoch))
            .bind(addr(e.node))
            .bind(e.trustWad.to_string())
            .bind(&tx)
            .execute(&mut *conn)
            .await?;
        }
        X::TrustExpired(e) => {
            sqlx::query(crate::sql!(
                "INSERT INTO trust_expiries (block_number, log_index, node, latest_epoch, tx_hash)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ))
            .bind(block)
            .bind(i64_of(log.log_index))
            .bind(addr(e.node))
            .bind(i64_of(e.latestEpoch))
            .bind(&tx)
            .execute(&mut *conn)
            .await?;
        }
        // The registry's ModelStatusChanged (same transaction) updates `models`.
        X::ModelStatusApplied(_) => {}
        // the events table keeps each veto; the report stands until it is discarded
        X::ReportVetoed(_) => {}
        // vetoed by 1/3 of the signing stake: the epoch has no report until it is posted again (a
        // reorg replays every event, so a discard in an orphaned block is undone with it)
        X::ReportDiscarded(e) => {
            sqlx::query(crate::sql!("DELETE FROM epoch_reports WHERE epoch = ?"))
                .bind(i64_of(e.epoch))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod run_tests {
    //! A block range is applied in runs (`TaskRun`): its tables must end exactly as with every
    //! log stored on its own, and as the replay after a rollback leaves them.
    use super::*;
    use crate::db::{BlockRef, Db};
    use alloy::primitives::keccak256;
    use alloy::sol_types::SolEvent;
    use protocol::bindings::{IModelRegistry as M, IStaking as S, ITaskManager as T};

    const CHAIN: u64 = 31337;

    fn contracts() -> Contracts {
        Contracts {
            task_manager: Address::repeat_byte(0x71),
            model_registry: Address::repeat_byte(0x72),
            staking: Address::repeat_byte(0x73),
            settlement: Address::repeat_byte(0x74),
            audit_manager: Address::repeat_byte(0x75),
            probe_registry: Address::repeat_byte(0x76),
        }
    }

    fn block(n: u64) -> BlockRef {
        BlockRef {
            number: n,
            hash: keccak256(n.to_be_bytes()),
            timestamp: 1_000 + 12 * n,
        }
    }

    struct History(Vec<RawLog>);

    impl History {
        fn push<E: SolEvent>(&mut self, block: u64, address: Address, event: E) -> &mut Self {
            let data = event.encode_log_data();
            let index = self.0.iter().filter(|l| l.block_number == block).count() as u64;
            self.0.push(RawLog {
                block_number: block,
                log_index: index,
                tx_hash: keccak256([block.to_be_bytes(), index.to_be_bytes()].concat()),
                block_time: 1_000 + 12 * block,
                address,
                topics: data.topics().to_vec(),
                data: data.data.clone(),
            });
            self
        }
    }

    /// Every TaskManager event, unknown tasks, repeats, a model never registered, and other
    /// events (stakes, a slash) cutting the runs.
    fn history() -> Vec<RawLog> {
        let c = contracts();
        let (w1, w2, user, dev) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
            Address::repeat_byte(4),
        );
        let fee = U256::from(1_000_000_000_000_000_000u128);
        let submit = |id: u64, model: u32| T::TaskSubmitted {
            taskId: U256::from(id),
            submitter: user,
            modelId: model,
            fee,
            input: Bytes::from(vec![id as u8; 5]),
        };
        let assign = |id: u64, worker: Address| T::TaskAssigned {
            taskId: U256::from(id),
            worker,
            deadline: 5_000 + id,
        };
        let finalize = |id: u64, worker: Address, model: u32| T::TaskFinalized {
            taskId: U256::from(id),
            worker,
            modelId: model,
            code: 0,
            computeUnits: 10,
            quality: 1_000_000,
            latency: 12,
            developerFee: fee / U256::from(10),
            workerFee: fee * U256::from(7) / U256::from(10),
            validatorFee: fee / U256::from(10),
            protocolFee: fee / U256::from(10),
            refund: U256::ZERO,
        };
        let commit =
            |batch: u64, worker: Address, ids: &[u64], codes: &[u16]| T::ResultsCommitted {
                batchId: U256::from(batch),
                worker,
                root: B256::repeat_byte(batch as u8),
                taskIds: ids.iter().map(|i| U256::from(*i)).collect(),
                outputHashes: ids.iter().map(|i| B256::repeat_byte(*i as u8)).collect(),
                codes: codes.to_vec(),
                outputs: ids.iter().map(|i| Bytes::from(vec![*i as u8; 3])).collect(),
            };
        let mut h = History(Vec::new());
        h.push(
            1,
            c.staking,
            S::Staked {
                account: w1,
                role: 0,
                amount: fee,
                newStake: fee,
            },
        )
        .push(
            1,
            c.model_registry,
            M::ModelRegistered {
                modelId: 1,
                developer: dev,
                sha256Hash: B256::repeat_byte(0xab),
                uri: "file:///m.json".into(),
                pricePerCall: alloy::primitives::Uint::from(fee),
                computeUnits: 10,
                rule: 2,
                tolerance: 0,
                parent: 0,
            },
        )
        .push(1, c.task_manager, assign(77, w1)) // a task submitted before the range
        .push(2, c.task_manager, submit(1, 1))
        .push(2, c.task_manager, assign(1, w1))
        .push(2, c.task_manager, submit(2, 1))
        .push(2, c.task_manager, assign(2, w2)) // w2 first named here
        .push(2, c.task_manager, submit(3, 9))
        .push(2, c.task_manager, submit(1, 1)) // again: no change
        .push(
            3,
            c.task_manager,
            T::TaskMissed {
                taskId: U256::from(3),
                worker: w1,
            },
        )
        .push(
            3,
            c.task_manager,
            T::AssignmentDeferred {
                taskId: U256::from(3),
                drawBlock: 4,
            },
        )
        .push(3, c.task_manager, assign(3, w2))
        .push(3, c.task_manager, commit(1, w1, &[1, 1, 88], &[0, 0, 0]))
        .push(3, c.task_manager, commit(2, w2, &[2, 3], &[0, 5]))
        .push(4, c.task_manager, finalize(1, w1, 1))
        .push(
            4,
            c.task_manager,
            T::TaskHeld {
                taskId: U256::from(2),
            },
        )
        .push(
            4,
            c.task_manager,
            T::TaskReleased {
                taskId: U256::from(2),
                fraud: false,
            },
        )
        .push(4, c.task_manager, finalize(2, w2, 1))
        .push(
            4,
            c.staking,
            S::Slashed {
                account: w2,
                role: 0,
                reason: 1,
                amount: fee / U256::from(4),
                beneficiary: user,
                rewarded: U256::ZERO,
                burned: fee / U256::from(4),
            },
        )
        .push(4, c.task_manager, finalize(3, w2, 9)) // model 9 is not registered
        .push(4, c.task_manager, finalize(99, w1, 1)) // no such task
        .push(
            5,
            c.task_manager,
            T::TaskRated {
                taskId: U256::from(1),
                modelId: 1,
                submitter: user,
                score: 80,
            },
        )
        .push(
            5,
            c.task_manager,
            T::TaskHeld {
                taskId: U256::from(3),
            },
        )
        .push(
            5,
            c.task_manager,
            T::TaskReleased {
                taskId: U256::from(3),
                fraud: true,
            },
        )
        .push(
            5,
            c.task_manager,
            T::TaskRefunded {
                taskId: U256::from(3),
                submitter: user,
                amount: fee,
            },
        )
        .push(5, c.task_manager, submit(4, 1))
        .push(
            5,
            c.task_manager,
            T::PayoutWithdrawn {
                account: w1,
                amount: fee,
            },
        );
        h.0
    }

    struct TempDb(std::path::PathBuf);

    impl TempDb {
        async fn open(name: &str) -> (Self, Db) {
            let path = std::env::temp_dir().join(format!(
                "chainstore-run-tests-{}-{name}.sqlite",
                std::process::id()
            ));
            let t = TempDb(path);
            t.remove();
            let db = Db::open(t.0.to_str().unwrap()).await.unwrap();
            (t, db)
        }

        fn remove(&self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.remove();
        }
    }

    /// `events` and every derived table, each row as SQL literals (types included).
    async fn tables(db: &Db) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for table in std::iter::once("events").chain(DERIVED_TABLES) {
            let columns: Vec<String> = sqlx::query_scalar(&crate::sql::numbered(&format!(
                "SELECT name FROM pragma_table_info('{table}')"
            )))
            .fetch_all(db.pool())
            .await
            .unwrap();
            let row = columns
                .iter()
                .map(|c| format!("quote({c})"))
                .collect::<Vec<_>>()
                .join(" || ',' || ");
            let rows: Vec<String> = sqlx::query_scalar(&crate::sql::numbered(&format!(
                "SELECT {row} FROM {table} ORDER BY 1"
            )))
            .fetch_all(db.pool())
            .await
            .unwrap();
            out.push((table.to_string(), rows));
        }
        out
    }

    #[tokio::test]
    async fn a_range_in_runs_equals_its_logs_one_by_one_and_the_replay() {
        let logs = history();
        let last = logs.last().unwrap().block_number;
        let blocks: Vec<BlockRef> = (1..=last).map(block).collect();

        let (_a, whole) = TempDb::open("whole").await;
        let names = whole
            .index_range(CHAIN, &contracts(), &logs, &blocks, block(last))
            .await
            .unwrap();
        assert_eq!(names.len(), logs.len());
        assert!(!names.contains(&"Unknown"), "{names:?}");
        let expected = tables(&whole).await;

        let (_b, single) = TempDb::open("single").await;
        for log in &logs {
            let b = block(log.block_number);
            single
                .index_range(CHAIN, &contracts(), std::slice::from_ref(log), &[b], b)
                .await
                .unwrap();
        }
        assert_eq!(tables(&single).await, expected, "one log per range");

        // the same range again stores nothing; a rollback replays every event in runs
        let again = whole
            .index_range(CHAIN, &contracts(), &logs, &blocks, block(last))
            .await
            .unwrap();
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(tables(&whole).await, expected, "indexed twice");
        whole
            .rollback_to(CHAIN, &contracts(), Some(block(last)))
            .await
            .unwrap();
        assert_eq!(tables(&whole).await, expected, "replayed");

        // spot checks of the rules
        let pool = whole.pool();
        let statuses: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT task_id, status, misses FROM tasks ORDER BY task_id")
                .fetch_all(pool)
                .await
                .unwrap();
        let statuses: Vec<(i64, &str, i64)> = statuses
            .iter()
            .map(|(t, s, m)| (*t, s.as_str(), *m))
            .collect();
        assert_eq!(
            statuses,
            [
                (1, "finalized", 0),
                (2, "finalized", 0),
                (3, "refunded", 1),
                (4, "submitted", 0)
            ]
        );
        let earned: Vec<(String, String)> =
            sqlx::query_as("SELECT address, earned FROM nodes ORDER BY address")
                .fetch_all(pool)
                .await
                .unwrap();
        // fees are paid as the events say, a task unknown here (99) or a model not registered
        // (9, no royalties) or not
        let fee_07 = "1400000000000000000".to_string();
        assert_eq!(
            earned,
            [
                (addr(Address::repeat_byte(1)), fee_07.clone()),
                (addr(Address::repeat_byte(2)), fee_07),
            ]
        );
        let royalties: String = sqlx::query_scalar("SELECT royalties FROM models")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(royalties, "300000000000000000");
        // the counts kept as the rows go in are the rows counted (migration 0006's backfill)
        type Counts = (String, i64, i64, i64, i64, i64);
        let kept: Vec<Counts> = sqlx::query_as(
            "SELECT worker, assigned, committed, failed, missed, finalized FROM node_task_counts
             ORDER BY worker",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let counted: Vec<Counts> = sqlx::query_as(
            "SELECT worker, SUM(kind = 'assigned'), SUM(kind = 'committed'),
                 COALESCE(SUM(kind = 'committed' AND json_extract(detail, '$.code') != 0), 0),
                 SUM(kind = 'missed'), SUM(kind = 'finalized')
             FROM task_events
             WHERE worker IS NOT NULL AND kind IN ('assigned', 'committed', 'missed', 'finalized')
             GROUP BY worker ORDER BY worker",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(kept, counted);
        // w1: tasks 77 (not stored) and 1 assigned, 1 and 88 committed (1 twice in the batch),
        // 3 missed, 1 and 99 finalized; w2: 2 and 3, 3 failed (code 5)
        let (w1, w2) = (addr(Address::repeat_byte(1)), addr(Address::repeat_byte(2)));
        assert_eq!(kept, [(w1, 2, 2, 0, 1, 2), (w2, 2, 2, 1, 0, 2)]);
    }
}
