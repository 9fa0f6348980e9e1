//! Turns one contract log into rows: the raw `events` row (the source of truth) plus the derived
//! tables (tasks, models, nodes, ...). Pure SQL on a connection the caller owns, so a block range
//! is applied in one transaction and a reorg rollback can replay `events` through the same code.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::sol_types::SolEventInterface;
use protocol::bindings::{
    IAuditManager::IAuditManagerEvents, IModelRegistry::IModelRegistryEvents,
    ISettlement::ISettlementEvents, IStaking::IStakingEvents, ITaskManager::ITaskManagerEvents,
};
use protocol::Deployment;
use serde_json::{json, Value};
use sqlx::SqliteConnection;

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
        }
    }

    /// Addresses for an `eth_getLogs` filter (zero settlement and audit manager addresses are
    /// left out).
    pub fn addresses(&self) -> Vec<Address> {
        let mut a = vec![self.task_manager, self.model_registry, self.staking];
        for optional in [self.settlement, self.audit_manager] {
            if optional != Address::ZERO {
                a.push(optional);
            }
        }
        a
    }
}

/// Tables derived from `events` by [`apply`]: a reorg rollback empties them and replays the
/// events that remain.
pub const DERIVED_TABLES: [&str; 20] = [
    "models",
    "model_workers",
    "nodes",
    "unbondings",
    "tasks",
    "task_events",
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
        Event::Unknown => ("Unknown", json!({})),
    }
}

/// Stores `log` and applies its effects. Returns the event name, or `None` when this log was
/// already stored (re-indexing a range is a no-op).
pub async fn ingest(
    conn: &mut SqliteConnection,
    contracts: &Contracts,
    log: &RawLog,
) -> Result<Option<&'static str>, sqlx::Error> {
    let event = decode(contracts, log);
    let (name, fields) = describe(&event);
    let topics =
        Value::from(log.topics.iter().map(|t| t.to_string()).collect::<Vec<_>>()).to_string();
    let inserted = sqlx::query(
        "INSERT INTO events (block_number, log_index, tx_hash, block_time, address, name, topics, data, json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (block_number, log_index) DO NOTHING",
    )
    .bind(i64_of(log.block_number))
    .bind(i64_of(log.log_index))
    .bind(log.tx_hash.to_string())
    .bind(i64_of(log.block_time))
    .bind(log.address.to_checksum(None))
    .bind(name)
    .bind(topics)
    .bind(log.data.to_vec())
    .bind(fields.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    apply(conn, log, &event).await?;
    Ok(Some(name))
}

/// Applies the derived effects of an already stored event (used by `ingest` and by the replay
/// after a reorg rollback).
pub async fn apply(
    conn: &mut SqliteConnection,
    log: &RawLog,
    event: &Event,
) -> Result<(), sqlx::Error> {
    match event {
        Event::Task(e) => apply_task(conn, log, e).await,
        Event::Model(e) => apply_model(conn, log, e).await,
        Event::Staking(e) => apply_staking(conn, log, e).await,
        Event::Settlement(e) => apply_settlement(conn, log, e).await,
        Event::Audit(e) => crate::audit::apply(conn, log, e).await,
        Event::Unknown => Ok(()),
    }
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
    conn: &mut SqliteConnection,
    who: Address,
    block: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO nodes (address, first_block, updated_block) VALUES (?, ?, ?) ON CONFLICT (address) DO NOTHING")
        .bind(addr(who))
        .bind(i64_of(block))
        .bind(i64_of(block))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds `delta` to a decimal amount column of one row (U256 arithmetic in Rust).
async fn add_amount(
    conn: &mut SqliteConnection,
    table: &str,
    column: &str,
    key_column: &str,
    key: &str,
    delta: U256,
) -> Result<(), sqlx::Error> {
    let current: Option<String> = sqlx::query_scalar(&format!(
        "SELECT {column} FROM {table} WHERE {key_column} = ?"
    ))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(current) = current {
        let total = parse_amount(&current).saturating_add(delta);
        sqlx::query(&format!(
            "UPDATE {table} SET {column} = ? WHERE {key_column} = ?"
        ))
        .bind(total.to_string())
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(crate) async fn task_event(
    conn: &mut SqliteConnection,
    log: &RawLog,
    task_id: i64,
    kind: &str,
    worker: Option<Address>,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_events (block_number, log_index, task_id, kind, worker, tx_hash, block_time, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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

fn warn_missing_task(rows: u64, task_id: i64, event: &str) {
    if rows == 0 {
        tracing::warn!(
            task_id,
            event,
            "event for a task submitted before the indexed range; ignored"
        );
    }
}

async fn apply_task(
    conn: &mut SqliteConnection,
    log: &RawLog,
    event: &ITaskManagerEvents,
) -> Result<(), sqlx::Error> {
    use ITaskManagerEvents as T;
    let block = i64_of(log.block_number);
    let time = i64_of(log.block_time);
    match event {
        T::TaskSubmitted(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            sqlx::query(
                "INSERT INTO tasks (task_id, model_id, submitter, fee, input, status, submitted_block, submitted_time, submitted_tx)
                 VALUES (?, ?, ?, ?, ?, 'submitted', ?, ?, ?) ON CONFLICT (task_id) DO NOTHING",
            )
            .bind(id)
            .bind(i64::from(e.modelId))
            .bind(addr(e.submitter))
            .bind(e.fee.to_string())
            .bind(e.input.to_vec())
            .bind(block)
            .bind(time)
            .bind(log.tx_hash.to_string())
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                log,
                id,
                "submitted",
                None,
                json!({"fee": e.fee.to_string(), "submitter": addr(e.submitter)}),
            )
            .await?;
        }
        T::TaskAssigned(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            ensure_node(conn, e.worker, log.block_number).await?;
            let rows = sqlx::query(
                "UPDATE tasks SET worker = ?, deadline = ?, status = 'assigned', assigned_block = ?, assigned_time = ?
                 WHERE task_id = ?",
            )
            .bind(addr(e.worker))
            .bind(i64_of(e.deadline))
            .bind(block)
            .bind(time)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            warn_missing_task(rows, id, "TaskAssigned");
            task_event(
                conn,
                log,
                id,
                "assigned",
                Some(e.worker),
                json!({"deadline": e.deadline}),
            )
            .await?;
        }
        T::TaskMissed(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            ensure_node(conn, e.worker, log.block_number).await?;
            sqlx::query("UPDATE tasks SET misses = misses + 1 WHERE task_id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            task_event(conn, log, id, "missed", Some(e.worker), json!({})).await?;
        }
        T::AssignmentDeferred(e) => {
            // waiting again for its worker to be drawn (after a miss, or a draw not made in time)
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            sqlx::query("UPDATE tasks SET status = 'submitted' WHERE task_id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            task_event(
                conn,
                log,
                id,
                "draw_deferred",
                None,
                json!({"drawBlock": e.drawBlock}),
            )
            .await?;
        }
        T::ResultsCommitted(e) => {
            let batch_id = e.batchId.to_string();
            sqlx::query(
                "INSERT INTO batches (batch_id, worker, root, task_count, block_number, tx_hash) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (batch_id) DO NOTHING",
            )
            .bind(&batch_id)
            .bind(addr(e.worker))
            .bind(e.root.to_string())
            .bind(i64::try_from(e.taskIds.len()).unwrap_or(i64::MAX))
            .bind(block)
            .bind(log.tx_hash.to_string())
            .execute(&mut *conn)
            .await?;
            for (i, task_id) in e.taskIds.iter().enumerate() {
                let Some(id) = task_key(*task_id) else {
                    continue;
                };
                let hash = e.outputHashes.get(i).copied().unwrap_or_default();
                let code = e.codes.get(i).copied().unwrap_or_default();
                let output = e.outputs.get(i).map(|b| b.to_vec());
                let status = if code == 0 { "committed" } else { "failed" };
                let rows = sqlx::query(
                    "UPDATE tasks SET output = ?, output_hash = ?, code = ?, status = ?, batch_id = ?,
                         committed_block = ?, committed_time = ?,
                         latency = CASE WHEN assigned_time IS NULL THEN NULL ELSE ? - assigned_time END
                     WHERE task_id = ?",
                )
                .bind(output)
                .bind(hash.to_string())
                .bind(i64::from(code))
                .bind(status)
                .bind(&batch_id)
                .bind(block)
                .bind(time)
                .bind(time)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                warn_missing_task(rows, id, "ResultsCommitted");
                task_event(
                    conn,
                    log,
                    id,
                    "committed",
                    Some(e.worker),
                    json!({"batchId": batch_id, "outputHash": hash.to_string(), "code": code, "root": e.root.to_string()}),
                )
                .await?;
            }
        }
        T::TaskFinalized(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            let rows = sqlx::query(
                "UPDATE tasks SET status = 'finalized', code = ?, compute_units = ?, quality = ?, latency = ?,
                     developer_fee = ?, worker_fee = ?, validator_fee = ?, protocol_fee = ?, refund = ?,
                     finalized_block = ?, finalized_time = ?
                 WHERE task_id = ?",
            )
            .bind(i64::from(e.code))
            .bind(i64::from(e.computeUnits))
            .bind(i64::from(e.quality))
            .bind(i64::from(e.latency))
            .bind(e.developerFee.to_string())
            .bind(e.workerFee.to_string())
            .bind(e.validatorFee.to_string())
            .bind(e.protocolFee.to_string())
            .bind(e.refund.to_string())
            .bind(block)
            .bind(time)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            warn_missing_task(rows, id, "TaskFinalized");
            ensure_node(conn, e.worker, log.block_number).await?;
            add_amount(
                conn,
                "nodes",
                "earned",
                "address",
                &addr(e.worker),
                e.workerFee,
            )
            .await?;
            add_amount(
                conn,
                "models",
                "royalties",
                "model_id",
                &e.modelId.to_string(),
                e.developerFee,
            )
            .await?;
            task_event(
                conn,
                log,
                id,
                "finalized",
                Some(e.worker),
                json!({"code": e.code, "quality": e.quality, "latency": e.latency, "workerFee": e.workerFee.to_string(),
                       "refund": e.refund.to_string()}),
            )
            .await?;
        }
        T::TaskRefunded(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            let rows = sqlx::query(
                "UPDATE tasks SET status = 'refunded', refund = ?, finalized_block = ?, finalized_time = ? WHERE task_id = ?",
            )
            .bind(e.amount.to_string())
            .bind(block)
            .bind(time)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            warn_missing_task(rows, id, "TaskRefunded");
            task_event(
                conn,
                log,
                id,
                "refunded",
                None,
                json!({"amount": e.amount.to_string()}),
            )
            .await?;
        }
        T::TaskHeld(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            let rows = sqlx::query("UPDATE tasks SET status = 'disputed' WHERE task_id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            warn_missing_task(rows, id, "TaskHeld");
            task_event(conn, log, id, "held", None, json!({})).await?;
        }
        T::TaskReleased(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            // A fraud release refunds the submitter: TaskRefunded follows in the same call and
            // sets `refunded`. Otherwise the task is what it was again (a result, or an input
            // fault's failure), finalizable at once.
            if !e.fraud {
                sqlx::query(
                    "UPDATE tasks SET status = CASE WHEN COALESCE(code, 0) = 0 THEN 'committed' ELSE 'failed' END
                     WHERE task_id = ? AND status = 'disputed'",
                )
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            task_event(conn, log, id, "released", None, json!({"fraud": e.fraud})).await?;
        }
        T::PayoutWithdrawn(_) => {}
        T::TaskRated(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            task_event(
                conn,
                log,
                id,
                "rated",
                None,
                json!({"score": e.score, "modelId": e.modelId}),
            )
            .await?;
        }
    }
    Ok(())
}

async fn apply_model(
    conn: &mut SqliteConnection,
    log: &RawLog,
    event: &IModelRegistryEvents,
) -> Result<(), sqlx::Error> {
    use IModelRegistryEvents as M;
    let block = i64_of(log.block_number);
    match event {
        M::ModelRegistered(e) => {
            sqlx::query(
                "INSERT INTO models (model_id, developer, sha256, uri, price_per_call, compute_units, rule, tolerance, parent,
                     status, registered_block, registered_time, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (model_id) DO NOTHING",
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
            sqlx::query("UPDATE models SET price_per_call = ? WHERE model_id = ?")
                .bind(e.pricePerCall.to_string())
                .bind(i64::from(e.modelId))
                .execute(&mut *conn)
                .await?;
        }
        M::ModelStatusChanged(e) => {
            sqlx::query("UPDATE models SET status = ? WHERE model_id = ?")
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
            sqlx::query("DELETE FROM model_workers WHERE model_id = ? AND worker = ?")
                .bind(i64::from(e.modelId))
                .bind(addr(e.worker))
                .execute(&mut *conn)
                .await?;
        }
        M::TrustWeightSet(e) => {
            ensure_node(conn, e.worker, log.block_number).await?;
            sqlx::query("UPDATE nodes SET trust_wad = ?, updated_block = ? WHERE address = ?")
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
    conn: &mut SqliteConnection,
    model_id: u32,
    worker: Address,
    weight: U256,
    block: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO model_workers (model_id, worker, weight, opted_in_block, updated_block) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (model_id, worker) DO UPDATE SET weight = excluded.weight, updated_block = excluded.updated_block",
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
    conn: &mut SqliteConnection,
    who: Address,
    role: u8,
    stake: U256,
    block: i64,
) -> Result<(), sqlx::Error> {
    let Some(column) = stake_column(role) else {
        tracing::warn!(role, account = %who, "stake event with an unknown role; ignored");
        return Ok(());
    };
    sqlx::query(&format!(
        "UPDATE nodes SET {column} = ?, updated_block = ? WHERE address = ?"
    ))
    .bind(stake.to_string())
    .bind(block)
    .bind(addr(who))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_staking(
    conn: &mut SqliteConnection,
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
            let queue_len: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM unbondings WHERE account = ? AND queue_pos IS NOT NULL",
            )
            .bind(addr(e.account))
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO unbondings (block_number, log_index, tx_hash, account, role, amount, remaining,
                     release_at, queue_pos, status)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending') ON CONFLICT DO NOTHING",
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
            let task_id: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(json_extract(json, '$.taskId') AS INTEGER) FROM events
                 WHERE block_number = ? AND tx_hash = ? AND log_index < ?
                   AND name IN ('DisputeResolved', 'ForcedErrorRevealed')
                 ORDER BY log_index DESC LIMIT 1",
            )
            .bind(block)
            .bind(log.tx_hash.to_string())
            .bind(i64_of(log.log_index))
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
            sqlx::query(
                "INSERT INTO slashes (block_number, log_index, tx_hash, block_time, account, role, reason, amount,
                     beneficiary, rewarded, burned, task_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
            sqlx::query("UPDATE nodes SET jailed_until = ?, updated_block = ? WHERE address = ?")
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
    async fn load(conn: &mut SqliteConnection, account: Address) -> Result<Self, sqlx::Error> {
        let rows: Vec<(i64, i64, i64, String, i64)> = sqlx::query_as(
            "SELECT block_number, log_index, role, remaining, release_at FROM unbondings
             WHERE account = ? AND queue_pos IS NOT NULL ORDER BY queue_pos",
        )
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

    async fn store(self, conn: &mut SqliteConnection, block: i64) -> Result<(), sqlx::Error> {
        for (pos, e) in self.entries.iter().enumerate() {
            sqlx::query(
                "UPDATE unbondings SET queue_pos = ?, remaining = ? WHERE block_number = ? AND log_index = ?",
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
                "UPDATE unbondings SET queue_pos = NULL, status = ?, remaining = ?, closed_block = ?
                 WHERE block_number = ? AND log_index = ?",
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
    conn: &mut SqliteConnection,
    who: Address,
    role: u8,
    amount: U256,
    block: i64,
) -> Result<(), sqlx::Error> {
    let Some(column) = stake_column(role) else {
        return Ok(());
    };
    let stake: Option<String> =
        sqlx::query_scalar(&format!("SELECT {column} FROM nodes WHERE address = ?"))
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
    conn: &mut SqliteConnection,
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
                "INSERT INTO epoch_reports (epoch, rewards_root, trust_root, total_rewards, model_status_hash, signers,
                     signed_stake, total_validator_stake, block_number, block_time, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (epoch) DO NOTHING",
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
                "INSERT INTO reward_claims (epoch, account, amount, block_number, log_index, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (epoch, account) DO NOTHING",
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
                "INSERT INTO trust_refreshes (block_number, log_index, epoch, node, trust_wad, tx_hash)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
            sqlx::query(
                "INSERT INTO trust_expiries (block_number, log_index, node, latest_epoch, tx_hash)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
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
            sqlx::query("DELETE FROM epoch_reports WHERE epoch = ?")
                .bind(i64_of(e.epoch))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
