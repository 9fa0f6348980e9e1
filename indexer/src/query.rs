//! Read queries behind the REST API. Each returns a response type: serialized in the API's shape
//! (addresses checksummed, amounts decimal strings in wei, names in the protocol's words), its
//! schema derived into the OpenAPI document ([`crate::openapi`]).

use crate::audit_query::{ModelCanaries, NodeAudits, Slash, TaskAudit};
use crate::epoch_query::ModelQuality;
use crate::schema::{Address as AddressSchema, Decimal, Hash, Wei};
use crate::tensor::{self, HumanForm};
use alloy::primitives::Address;
use chainstore::sql::{Backend, Builder, Conn, Pool};
use protocol::codes::FailureCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{FromRow, Row};
use std::sync::OnceLock;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Task states the API accepts in `?status=` (the on-chain ones; `submitted` is the contract's
/// `Drawing`: waiting for its worker to be drawn, from the second block after submission, and
/// again after a missed deadline; `disputed`: held by the AuditManager while a quorum decides).
pub const TASK_STATUSES: [&str; 7] = [
    "submitted",
    "assigned",
    "committed",
    "failed",
    "finalized",
    "refunded",
    "disputed",
];

/// Schema of a task state: one of [`TASK_STATUSES`].
pub struct TaskStatus;

impl PartialSchema for TaskStatus {
    fn schema() -> RefOr<Schema> {
        crate::schema::one_of_names(
            &TASK_STATUSES,
            "task state (`submitted`: waiting for its worker to be drawn; `disputed`: held by the AuditManager while a quorum decides)",
        )
        .into()
    }
}

impl ToSchema for TaskStatus {}

/// A model's status in the ModelRegistry (or the status an epoch report gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Selectable.
    Active,
    /// Selectable with reduced weight until its quality recovers.
    Probation,
    /// No longer selectable.
    Delisted,
    /// A status value unknown to this indexer version.
    Unknown,
}

impl ModelStatus {
    /// The status of an on-chain status value.
    pub fn from_value(status: i64) -> Self {
        match model_status_name(status) {
            "active" => Self::Active,
            "probation" => Self::Probation,
            "delisted" => Self::Delisted,
            _ => Self::Unknown,
        }
    }
}

/// Name of an on-chain model status.
pub fn model_status_name(status: i64) -> &'static str {
    u8::try_from(status).map_or("unknown", protocol::model_selection::status_name)
}

/// Name of an on-chain comparison rule.
pub fn compare_rule_name(rule: i64) -> &'static str {
    match rule {
        0 => "exact_bytes",
        1 => "all_close",
        2 => "argmax",
        3 => "top_k",
        4 => "cosine",
        _ => "unknown",
    }
}

/// A staking role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StakeRole {
    /// Worker stake.
    Worker,
    /// Validator stake.
    Validator,
    /// A role value unknown to this indexer version.
    Unknown,
}

impl StakeRole {
    /// The role of an on-chain role value.
    pub fn from_value(role: i64) -> Self {
        match role_name(role) {
            "worker" => Self::Worker,
            "validator" => Self::Validator,
            _ => Self::Unknown,
        }
    }
}

/// Name of a staking role.
pub fn role_name(role: i64) -> &'static str {
    match role {
        0 => "worker",
        1 => "validator",
        _ => "unknown",
    }
}

/// Why a stake was slashed (`IStaking.Slashed.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlashReason {
    /// 1: a dispute over its result resolved Fraud.
    Fraud,
    /// 2: a validator whose mismatch verdict the quorum cleared.
    FalseAccusation,
    /// 3: a validator that approved a planted wrong result.
    LazyValidator,
    /// 4: a validator that let an audit deadline pass.
    MissedAudit,
    /// 5: a quorum member that voted against the outcome.
    MinorityVote,
    /// 6: a validator that signed two different reports of one epoch.
    ReportEquivocation,
    /// A reason value unknown to this indexer version.
    Unknown,
}

impl SlashReason {
    /// The reason of an on-chain reason value.
    pub fn from_value(reason: i64) -> Self {
        match slash_reason_name(reason) {
            "fraud" => Self::Fraud,
            "false_accusation" => Self::FalseAccusation,
            "lazy_validator" => Self::LazyValidator,
            "missed_audit" => Self::MissedAudit,
            "minority_vote" => Self::MinorityVote,
            "report_equivocation" => Self::ReportEquivocation,
            _ => Self::Unknown,
        }
    }
}

/// Name of a slashing reason (IStaking.Slashed).
pub fn slash_reason_name(reason: i64) -> &'static str {
    match reason {
        1 => "fraud",
        2 => "false_accusation",
        3 => "lazy_validator",
        4 => "missed_audit",
        5 => "minority_vote",
        6 => "report_equivocation",
        _ => "unknown",
    }
}

/// A task's failure code (`ResultsCommitted.code`; 0 is success).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FailureCodeInfo {
    value: i64,
    /// The code's name (`unknown` for a code unknown to this indexer version).
    name: &'static str,
    description: &'static str,
}

fn failure_code(code: Option<i64>) -> Option<FailureCodeInfo> {
    code.map(|c| {
        let known = u16::try_from(c).ok().and_then(FailureCode::from_u16);
        FailureCodeInfo {
            value: c,
            name: known.map(FailureCode::as_str).unwrap_or("unknown"),
            description: known
                .map(FailureCode::describe)
                .unwrap_or("code unknown to this indexer version"),
        }
    })
}

/// Where an event was included: block, block time and transaction.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TxRef {
    /// Block number.
    pub(crate) block: i64,
    /// Unix time of the block.
    pub(crate) time: i64,
    /// Transaction hash.
    #[schema(value_type = Hash)]
    pub(crate) tx: String,
}

/// The block (and its time) a task reached a state in.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BlockTime {
    /// Block number.
    block: i64,
    /// Unix time of the block.
    time: Option<i64>,
}

/// The columns of a task as listed: the payloads' sizes, not the payloads (a page of `/tasks`
/// read every input and output for their lengths).
const SUMMARY_COLUMNS: &str =
    "task_id, model_id, submitter, worker, fee, status, code, output_hash,
    LENGTH(input) AS input_bytes, LENGTH(output) AS output_bytes, submitted_block, submitted_time,
    submitted_tx, assigned_block, assigned_time, committed_block, committed_time, finalized_block,
    finalized_time, latency";

/// The field names of `T` in declaration order, as its derived `Deserialize` knows them (for
/// [`json_rows`]; `T` is a plain struct, no `#[serde(flatten)]`).
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    /// Answers `deserialize_struct` with the field names it is given, and nothing else.
    struct Names<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for Names<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("field names read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Names(&mut names));
    names
}

/// A query whose one value is the rows of `select` (a subquery with a column named after each
/// field of `T`) as a JSON array built by SQLite: each row an array of `T`'s fields in order,
/// the rows in `order`. [`decode_rows`] reads it back.
///
/// sqlx's SQLite driver copies every value of a row and hands each row over from the
/// connection's thread on its own: about 5 µs a row under load on the bench's 2 cores, more than
/// SQLite takes to read it. The lists of the routes that return many rows come back as one value
/// instead (`GET /tasks?limit=50`: 3,000 requests/s read row by row, 7,800 as one array).
pub(crate) fn json_rows<T: DeserializeOwned>(
    backend: Backend,
    select: &str,
    order: &str,
) -> String {
    format!("{}{select}) AS r", json_rows_head::<T>(backend, order))
}

/// [`json_rows`] up to its subquery, which the caller appends and closes (`) AS r`).
fn json_rows_head<T: DeserializeOwned>(backend: Backend, order: &str) -> String {
    let fields = field_names::<T>().join(", ");
    match backend {
        Backend::Sqlite => {
            format!("SELECT json_group_array(json_array({fields}) ORDER BY {order}) FROM (")
        }
        Backend::Postgres => format!(
            "SELECT COALESCE(json_agg(json_build_array({fields}) ORDER BY {order}), '[]')::text FROM ("
        ),
    }
}

/// The rows of a [`json_rows`] value (a struct deserializes from an array of its fields).
pub(crate) fn decode_rows<T: DeserializeOwned>(json: &str) -> Result<Vec<T>, sqlx::Error> {
    serde_json::from_str(json).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// A task as listed ([`SUMMARY_COLUMNS`] of `tasks`).
#[derive(Debug, FromRow, Deserialize)]
struct SummaryRow {
    task_id: i64,
    model_id: i64,
    submitter: String,
    worker: Option<String>,
    fee: String,
    status: String,
    code: Option<i64>,
    output_hash: Option<String>,
    input_bytes: i64,
    output_bytes: Option<i64>,
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
}

/// One row of `tasks`: [`SUMMARY_COLUMNS`] and the rest ([`TASK_COLUMNS`]).
#[derive(Debug, FromRow)]
struct TaskRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    input: Vec<u8>,
    output: Option<Vec<u8>>,
    batch_id: Option<String>,
    deadline: Option<i64>,
    misses: i64,
    compute_units: Option<i64>,
    quality: Option<i64>,
    developer_fee: Option<String>,
    worker_fee: Option<String>,
    validator_fee: Option<String>,
    protocol_fee: Option<String>,
    refund: Option<String>,
}

/// What [`TaskRow`] reads of `tasks`.
const TASK_COLUMNS: &str = "input, output, batch_id, deadline, misses, compute_units, quality,
    developer_fee, worker_fee, validator_fee, protocol_fee, refund";

/// A task as listed (`/tasks`, a node's `recent_tasks`): parties, fee, state, result hash and
/// sizes, and the blocks it reached each state in.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskSummary {
    /// Task id (uint256, decimal).
    #[schema(value_type = Decimal)]
    task_id: String,
    model_id: i64,
    #[schema(value_type = AddressSchema)]
    submitter: String,
    /// The worker drawn for it (null until drawn).
    #[schema(value_type = Option<AddressSchema>)]
    worker: Option<String>,
    /// Fee escrowed by the submitter.
    #[schema(value_type = Wei)]
    fee: String,
    #[schema(value_type = TaskStatus)]
    status: String,
    /// Failure code of the committed result (null before a commit).
    code: Option<FailureCodeInfo>,
    /// keccak256 of the committed output.
    #[schema(value_type = Option<Hash>)]
    output_hash: Option<String>,
    input_bytes: usize,
    output_bytes: Option<usize>,
    submitted: TxRef,
    assigned: Option<BlockTime>,
    committed: Option<BlockTime>,
    finalized: Option<BlockTime>,
    /// Seconds from assignment to commit.
    latency_secs: Option<i64>,
}

/// A payload (task input or output): size, keccak256 and the decoded tensors of a safetensors
/// document; otherwise hex, why it does not decode, and its human form.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Payload {
    bytes: usize,
    #[schema(value_type = Hash)]
    keccak256: String,
    /// `{"<tensor>": {"dtype", "shape", "values"}}` (a safetensors document).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    decoded: Option<Value>,
    /// The bytes, 0x-prefixed hex (not a safetensors document).
    #[serde(skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
    /// Why the bytes are not a safetensors document.
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_error: Option<String>,
    #[serde(flatten)]
    human: HumanForm,
    /// The blob's content, when the payload is a blob reference into the blob store this
    /// indexer was started with (`--blob-store`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<BlobContent>,
    /// Why the blob's content could not be fetched from the blob store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_error: Option<String>,
}

impl Payload {
    /// The blob reference the payload is, if any.
    pub(crate) fn blob(&self) -> Option<&tensor::BlobView> {
        self.human.blob.as_ref()
    }
}

/// The content of a blob: size and decoded tensors, or its human form.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BlobContent {
    bytes: usize,
    /// `{"<tensor>": {"dtype", "shape", "values"}}` (a safetensors document).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    decoded: Option<Value>,
    #[serde(flatten)]
    human: HumanForm,
}

impl BlobContent {
    /// The content of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        match tensor::describe(bytes) {
            Ok(decoded) => Self {
                bytes: bytes.len(),
                decoded: Some(decoded),
                human: HumanForm::default(),
            },
            Err(_) => Self {
                bytes: bytes.len(),
                decoded: None,
                human: tensor::human(bytes),
            },
        }
    }
}

/// How a finalized task's fee was split.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FeeSplit {
    #[schema(value_type = Option<Wei>)]
    developer: Option<String>,
    #[schema(value_type = Option<Wei>)]
    worker: Option<String>,
    #[schema(value_type = Option<Wei>)]
    validator: Option<String>,
    #[schema(value_type = Option<Wei>)]
    protocol: Option<String>,
    /// Returned to the submitter.
    #[schema(value_type = Option<Wei>)]
    refund: Option<String>,
}

/// One event of a task's trail.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrailEvent {
    /// submitted, assigned, committed, held, verdict, dispute_opened, quorum_drawn,
    /// dispute_vote, dispute_resolved, released, canary, finalized, refunded, ...
    kind: String,
    #[schema(value_type = Option<AddressSchema>)]
    worker: Option<String>,
    block: i64,
    log_index: i64,
    #[schema(value_type = Hash)]
    tx: String,
    time: i64,
    /// The event's fields.
    detail: Value,
}

/// One task: decoded input and output, hashes, failure code, fee split, latency, its trail of
/// events and its audit record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Task {
    #[serde(flatten)]
    summary: TaskSummary,
    pub(crate) input: Payload,
    pub(crate) output: Option<Payload>,
    /// Commit batch of the result (uint256, decimal).
    #[schema(value_type = Option<Decimal>)]
    batch_id: Option<String>,
    /// Deadline of the current step (unix seconds).
    deadline: Option<i64>,
    /// Deadlines missed by drawn workers.
    misses: i64,
    compute_units: Option<i64>,
    /// User rating of the result (0..=100).
    quality: Option<i64>,
    fee_split: Option<FeeSplit>,
    /// The task's events in chain order.
    audit_trail: Vec<TrailEvent>,
    audit: TaskAudit,
}

impl SummaryRow {
    fn summary(self) -> TaskSummary {
        let at =
            |block: Option<i64>, time: Option<i64>| block.map(|block| BlockTime { block, time });
        TaskSummary {
            task_id: self.task_id.to_string(),
            model_id: self.model_id,
            submitter: self.submitter,
            worker: self.worker,
            fee: self.fee,
            status: self.status,
            code: failure_code(self.code),
            output_hash: self.output_hash,
            input_bytes: usize::try_from(self.input_bytes).unwrap_or(0),
            output_bytes: self.output_bytes.map(|n| usize::try_from(n).unwrap_or(0)),
            submitted: TxRef {
                block: self.submitted_block,
                time: self.submitted_time,
                tx: self.submitted_tx,
            },
            assigned: at(self.assigned_block, self.assigned_time),
            committed: at(self.committed_block, self.committed_time),
            finalized: at(self.finalized_block, self.finalized_time),
            latency_secs: self.latency,
        }
    }
}

impl TaskRow {
    fn detail(self, audit_trail: Vec<TrailEvent>, audit: TaskAudit) -> Task {
        let fee_split = self.summary.finalized_block.is_some().then(|| FeeSplit {
            developer: self.developer_fee.clone(),
            worker: self.worker_fee.clone(),
            validator: self.validator_fee.clone(),
            protocol: self.protocol_fee.clone(),
            refund: self.refund.clone(),
        });
        Task {
            summary: self.summary.summary(),
            input: payload(&self.input),
            output: self.output.as_deref().map(payload),
            batch_id: self.batch_id,
            deadline: self.deadline,
            misses: self.misses,
            compute_units: self.compute_units,
            quality: self.quality,
            fee_split,
            audit_trail,
            audit,
        }
    }
}

/// Input or output bytes: size, keccak256, the decoded tensors, or hex plus the decode error.
pub(crate) fn payload(bytes: &[u8]) -> Payload {
    let keccak256 = protocol::output_hash(bytes).to_string();
    match tensor::describe(bytes) {
        Ok(decoded) => Payload {
            bytes: bytes.len(),
            keccak256,
            decoded: Some(decoded),
            hex: None,
            decode_error: None,
            human: HumanForm::default(),
            content: None,
            content_error: None,
        },
        Err(e) => Payload {
            bytes: bytes.len(),
            keccak256,
            decoded: None,
            hex: Some(format!("0x{}", hex::encode(bytes))),
            decode_error: Some(e),
            human: tensor::human(bytes),
            content: None,
            content_error: None,
        },
    }
}

/// Filters of `GET /tasks`.
#[derive(Debug, Default, Clone)]
pub struct TaskFilter {
    /// Only tasks in this state.
    pub status: Option<String>,
    /// Only tasks assigned to this worker.
    pub worker: Option<Address>,
    /// Only tasks of this model.
    pub model: Option<u32>,
    /// Page size.
    pub limit: u32,
    /// Only tasks with a smaller id (the `next_cursor` of the previous page).
    pub cursor: Option<i64>,
}

/// A page of tasks, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskPage {
    tasks: Vec<TaskSummary>,
    /// `cursor` of the next page (null: this is the last one).
    #[schema(value_type = Option<Decimal>)]
    next_cursor: Option<String>,
}

/// A page of tasks, newest first, and the cursor of the next page.
pub async fn tasks(pool: &Pool, f: &TaskFilter) -> Result<TaskPage, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    tasks_on(&mut conn, f).await
}

/// [`tasks`] and the cursor of `chain_id` (the last indexed block), read in one read transaction:
/// the cursor names the data the page shows (`GET /tasks` keeps pages by it, [`crate::cache`]).
pub async fn tasks_at(
    pool: &Pool,
    chain_id: u64,
    f: &TaskFilter,
) -> Result<(TaskPage, Option<chainstore::db::BlockRef>), crate::db::DbError> {
    let mut tx = pool.begin().await?;
    let at = chainstore::db::read_cursor(&mut *tx, chain_id).await?;
    let page = tasks_on(&mut tx, f).await?;
    tx.commit().await?;
    Ok((page, at))
}

async fn tasks_on(conn: &mut Conn, f: &TaskFilter) -> Result<TaskPage, sqlx::Error> {
    let backend = Backend::of(conn);
    let mut q = Builder::new(
        backend,
        json_rows_head::<SummaryRow>(backend, "task_id DESC"),
    );
    q.push(format_args!(
        "SELECT {SUMMARY_COLUMNS} FROM tasks WHERE 1 = 1"
    ));
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(w) = f.worker {
        q.push(" AND worker = ").push_bind(w.to_checksum(None));
    }
    if let Some(m) = f.model {
        q.push(" AND model_id = ").push_bind(i64::from(m));
    }
    if let Some(c) = f.cursor {
        q.push(" AND task_id < ").push_bind(c);
    }
    q.push(" ORDER BY task_id DESC LIMIT ")
        .push_bind(i64::from(f.limit))
        .push(") AS r");
    let page: String = q.build_query_scalar().fetch_one(conn).await?;
    let rows: Vec<SummaryRow> = decode_rows(&page)?;
    let next_cursor = if rows.len() == f.limit as usize {
        rows.last().map(|r| r.task_id.to_string())
    } else {
        None
    };
    Ok(TaskPage {
        tasks: rows.into_iter().map(SummaryRow::summary).collect(),
        next_cursor,
    })
}

#[derive(Debug, FromRow)]
struct TrailRow {
    kind: String,
    worker: Option<String>,
    block_number: i64,
    log_index: i64,
    tx_hash: String,
    block_time: i64,
    detail: String,
}

#[derive(Debug, Deserialize)]
struct UnbondingRow {
    role: i64,
    amount: String,
    remaining: String,
    release_at: i64,
    block_number: i64,
    tx_hash: String,
    status: String,
    closed_block: Option<i64>,
}

/// One task with decoded tensors, its trail of events and its audit record, all read in one
/// read transaction: WAL gives it one snapshot, so a block ingested between the statements cannot
/// show a task still `disputed` next to the trail and audit that released it.
pub async fn task(pool: &Pool, task_id: i64) -> Result<Option<Task>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(row) = sqlx::query_as::<_, TaskRow>(&chainstore::sql::numbered(&format!(
        "SELECT {SUMMARY_COLUMNS}, {TASK_COLUMNS} FROM tasks WHERE task_id = ?"
    )))
    .bind(task_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let trail: Vec<TrailRow> = sqlx::query_as(chainstore::sql!(
        "SELECT kind, worker, block_number, log_index, tx_hash, block_time, detail FROM task_events
         WHERE task_id = ? ORDER BY block_number, log_index"
    ))
    .bind(task_id)
    .fetch_all(&mut *tx)
    .await?;
    let trail = trail
        .into_iter()
        .map(|t| TrailEvent {
            kind: t.kind,
            worker: t.worker,
            block: t.block_number,
            log_index: t.log_index,
            tx: t.tx_hash,
            time: t.block_time,
            detail: serde_json::from_str::<Value>(&t.detail).unwrap_or(Value::Null),
        })
        .collect();
    let audit = crate::audit_query::task_audit(&mut tx, task_id, row.batch_id.as_deref()).await?;
    tx.rollback().await?;
    Ok(Some(row.detail(trail, audit)))
}

#[derive(Debug, FromRow)]
struct ModelRow {
    model_id: i64,
    developer: String,
    sha256: String,
    uri: String,
    price_per_call: String,
    compute_units: i64,
    rule: i64,
    tolerance: i64,
    parent: i64,
    status: i64,
    royalties: String,
    registered_block: i64,
    registered_time: i64,
    tx_hash: String,
    worker_count: i64,
}

/// How a model's results are compared (the on-chain comparison rule).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CompareRule {
    value: i64,
    /// exact_bytes, all_close, argmax, top_k, cosine (or unknown).
    name: &'static str,
    tolerance: i64,
}

/// A registered model as listed (`/models`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelSummary {
    model_id: i64,
    #[schema(value_type = AddressSchema)]
    developer: String,
    /// SHA-256 of the registered file (the bundle manifest, or a raw .onnx).
    sha256: String,
    uri: String,
    #[schema(value_type = Wei)]
    price_per_call: String,
    compute_units: i64,
    compare_rule: CompareRule,
    /// Model it derives from (0: none).
    parent: i64,
    status: ModelStatus,
    /// Royalties earned by the developer.
    #[schema(value_type = Wei)]
    royalties: String,
    registered: TxRef,
    worker_count: i64,
    /// The bundle's task kind (text-generation, embeddings, speech-recognition, ocr,
    /// image-classification, tensor); null when the manifest is not readable here.
    kind: Option<String>,
    /// The bundle manifest read from a file:// URI and checked against the registered sha256:
    /// kind, name, compute_units, parts, verify, io, source (or error).
    #[schema(value_type = Option<Object>)]
    bundle: Value,
}

impl ModelRow {
    fn summary(&self) -> ModelSummary {
        let bundle = bundle_summary(&self.uri, &self.sha256);
        ModelSummary {
            model_id: self.model_id,
            developer: self.developer.clone(),
            sha256: self.sha256.clone(),
            uri: self.uri.clone(),
            price_per_call: self.price_per_call.clone(),
            compute_units: self.compute_units,
            compare_rule: CompareRule {
                value: self.rule,
                name: compare_rule_name(self.rule),
                tolerance: self.tolerance,
            },
            parent: self.parent,
            status: ModelStatus::from_value(self.status),
            royalties: self.royalties.clone(),
            registered: TxRef {
                block: self.registered_block,
                time: self.registered_time,
                tx: self.tx_hash.clone(),
            },
            worker_count: self.worker_count,
            kind: bundle
                .get("kind")
                .and_then(Value::as_str)
                .map(str::to_string),
            bundle,
        }
    }
}

/// What the model's bundle manifest says (kind, name, parts, verification rule, input and output
/// schema), read from a `file://` URI and checked against the registered sha256; `null` for
/// URIs this indexer does not read (`http(s)://`: workers fetch those themselves).
fn bundle_summary(uri: &str, sha256: &str) -> Value {
    let Some(path) = uri.strip_prefix("file://") else {
        return Value::Null;
    };
    let bytes = match std::fs::read(path) {
        // a manifest is small; a raw .onnx registration may be a few MB
        Ok(b) if b.len() <= 64 << 20 => b,
        Ok(_) => return json!({"error": "registered file is too large to summarize"}),
        Err(e) => return json!({"error": format!("cannot read {path}: {e}")}),
    };
    let actual = hex::encode(inference::sha256(&bytes));
    if !sha256
        .trim_start_matches("0x")
        .eq_ignore_ascii_case(&actual)
    {
        return json!({"error": format!("the file at the URI has sha256 {actual}, not the registered hash")});
    }
    if bytes.first() != Some(&b'{') {
        return json!({"kind": "tensor", "format": "raw onnx (first protocol version)"});
    }
    match inference::Manifest::parse(&bytes) {
        Ok(m) => json!({
            "kind": m.kind.as_str(), "name": m.name, "compute_units": m.compute_units,
            "parts": m.parts, "verify": m.verify, "io": m.io, "source": m.source,
        }),
        Err(e) => json!({"error": e.to_string()}),
    }
}

const MODEL_SELECT: &str = "SELECT m.*, (SELECT COUNT(*) FROM model_workers w WHERE w.model_id = m.model_id) AS worker_count
     FROM models m";

/// Every registered model.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelList {
    models: Vec<ModelSummary>,
}

/// Every model.
pub async fn models(pool: &Pool) -> Result<ModelList, sqlx::Error> {
    let rows: Vec<ModelRow> = sqlx::query_as(&chainstore::sql::numbered(&format!(
        "{MODEL_SELECT} ORDER BY m.model_id"
    )))
    .fetch_all(pool)
    .await?;
    Ok(ModelList {
        models: rows.iter().map(ModelRow::summary).collect(),
    })
}

/// A worker serving a model.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelWorker {
    #[schema(value_type = AddressSchema)]
    worker: String,
    /// Its sortition weight for the model.
    weight: String,
    opted_in_block: i64,
    updated_block: i64,
}

/// A model's tasks per state, and in all.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskCounts {
    submitted: i64,
    assigned: i64,
    committed: i64,
    failed: i64,
    finalized: i64,
    refunded: i64,
    disputed: i64,
    total: i64,
}

/// One model with its workers, task counts and measured quality.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Model {
    #[serde(flatten)]
    summary: ModelSummary,
    workers: Vec<ModelWorker>,
    tasks: TaskCounts,
    /// Quality of the latest computed epoch (1.0 when it had no ratings and no canary
    /// reports); null before any computed epoch.
    measured_quality: Option<f64>,
    /// The model's quality in each computed epoch, oldest first.
    quality_history: Vec<ModelQuality>,
    /// Matching / all canary reports of the model's tasks (first report per task), over all
    /// time; null without reports.
    canary_accuracy: Option<f64>,
    canaries: ModelCanaries,
}

/// One model with its workers and usage counts.
pub async fn model(pool: &Pool, model_id: u32) -> Result<Option<Model>, sqlx::Error> {
    let Some(row) = sqlx::query_as::<_, ModelRow>(&chainstore::sql::numbered(&format!(
        "{MODEL_SELECT} WHERE m.model_id = ?"
    )))
    .bind(i64::from(model_id))
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let workers: Vec<(String, String, i64, i64)> = sqlx::query_as(
        chainstore::sql!("SELECT worker, weight, opted_in_block, updated_block FROM model_workers WHERE model_id = ? ORDER BY worker"),
    )
    .bind(i64::from(model_id))
    .fetch_all(pool)
    .await?;
    let usage: Vec<(String, i64)> = sqlx::query_as(chainstore::sql!(
        "SELECT status, COUNT(*) FROM tasks WHERE model_id = ? GROUP BY status"
    ))
    .bind(i64::from(model_id))
    .fetch_all(pool)
    .await?;
    let n = |s: &str| {
        usage
            .iter()
            .find(|(k, _)| k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let tasks = TaskCounts {
        submitted: n("submitted"),
        assigned: n("assigned"),
        committed: n("committed"),
        failed: n("failed"),
        finalized: n("finalized"),
        refunded: n("refunded"),
        disputed: n("disputed"),
        total: TASK_STATUSES.iter().map(|s| n(s)).sum(),
    };
    let (quality_history, measured_quality) =
        crate::epoch_query::model_quality(pool, model_id).await?;
    let canaries = crate::audit_query::model_canaries(pool, model_id).await?;
    Ok(Some(Model {
        summary: row.summary(),
        workers: workers
            .into_iter()
            .map(
                |(worker, weight, opted_in_block, updated_block)| ModelWorker {
                    worker,
                    weight,
                    opted_in_block,
                    updated_block,
                },
            )
            .collect(),
        tasks,
        measured_quality,
        quality_history,
        canary_accuracy: canaries.accuracy,
        canaries,
    }))
}

#[derive(Debug, FromRow)]
struct NodeRow {
    address: String,
    worker_stake: String,
    validator_stake: String,
    jailed_until: i64,
    trust_wad: Option<String>,
    earned: String,
    slashed: String,
    first_block: i64,
    updated_block: i64,
    assigned: i64,
    committed: i64,
    failed: i64,
    missed: i64,
    finalized: i64,
    /// Time of the newest indexed block (to tell whether a jail is still running).
    now: Option<i64>,
}

/// A worker's task events, counted.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeTaskCounts {
    assigned: i64,
    committed: i64,
    /// Commits with a non-zero failure code.
    failed: i64,
    /// Deadlines it missed.
    missed: i64,
    finalized: i64,
}

/// A worker or validator as listed (`/nodes`): stakes, jail, trust and earnings.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeSummary {
    #[schema(value_type = AddressSchema)]
    address: String,
    /// Active worker stake.
    #[schema(value_type = Wei)]
    worker_stake: String,
    /// Active validator stake.
    #[schema(value_type = Wei)]
    validator_stake: String,
    /// Unix time its jail ends (0: never jailed).
    jailed_until: i64,
    /// Jailed at the newest indexed block.
    jailed: bool,
    /// Trust as a WAD (1e18 = 1.0; null before its first epoch).
    #[schema(value_type = Option<Decimal>)]
    trust_wad: Option<String>,
    #[schema(value_type = Wei)]
    earned: String,
    #[schema(value_type = Wei)]
    slashed: String,
    first_block: i64,
    updated_block: i64,
    tasks: NodeTaskCounts,
}

/// A pending or closed unbonding of stake.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Unbonding {
    role: StakeRole,
    #[schema(value_type = Wei)]
    amount: String,
    /// What is left of it after slashes.
    #[schema(value_type = Wei)]
    remaining: String,
    /// Unix time it can be withdrawn.
    release_at: i64,
    requested_block: i64,
    #[schema(value_type = Hash)]
    tx: String,
    /// pending, withdrawn or slashed.
    status: String,
    closed_block: Option<i64>,
}

/// A model a worker serves.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeModel {
    model_id: i64,
    /// Its sortition weight for the model.
    weight: String,
}

/// One node: stakes, unbondings, jail, slashes, audit record, task stats and recent tasks.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Node {
    #[serde(flatten)]
    summary: NodeSummary,
    unbondings: Vec<Unbonding>,
    slashes: Vec<Slash>,
    audits: NodeAudits,
    models: Vec<NodeModel>,
    /// Its 20 newest tasks.
    recent_tasks: Vec<TaskSummary>,
}

impl NodeRow {
    fn summary(&self) -> NodeSummary {
        let now = self.now.unwrap_or(0);
        NodeSummary {
            address: self.address.clone(),
            worker_stake: self.worker_stake.clone(),
            validator_stake: self.validator_stake.clone(),
            jailed_until: self.jailed_until,
            jailed: self.jailed_until > now,
            trust_wad: self.trust_wad.clone(),
            earned: self.earned.clone(),
            slashed: self.slashed.clone(),
            first_block: self.first_block,
            updated_block: self.updated_block,
            tasks: NodeTaskCounts {
                assigned: self.assigned,
                committed: self.committed,
                failed: self.failed,
                missed: self.missed,
                finalized: self.finalized,
            },
        }
    }
}

/// Every node with its task counts (kept as the events go in: `node_task_counts`, migration
/// 0006; grouping the worker's events per request took 1.4 ms for one of the bench's workers,
/// every event of every worker for the listing) and the time of the newest indexed block.
const NODE_SELECT: &str = "SELECT n.*,
        COALESCE(c.assigned, 0) AS assigned, COALESCE(c.committed, 0) AS committed,
        COALESCE(c.failed, 0) AS failed, COALESCE(c.missed, 0) AS missed,
        COALESCE(c.finalized, 0) AS finalized,
        (SELECT MAX(timestamp) FROM blocks) AS now";

/// The tables of [`NODE_SELECT`].
const NODE_FROM: &str = "FROM nodes n LEFT JOIN node_task_counts c ON c.worker = n.address";

/// Every worker and validator seen on-chain.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeList {
    nodes: Vec<NodeSummary>,
}

/// Every node (worker or validator).
pub async fn nodes(pool: &Pool) -> Result<NodeList, sqlx::Error> {
    let rows: Vec<NodeRow> = sqlx::query_as(&chainstore::sql::numbered(&format!(
        "{NODE_SELECT} {NODE_FROM} ORDER BY n.address"
    )))
    .fetch_all(pool)
    .await?;
    Ok(NodeList {
        nodes: rows.iter().map(NodeRow::summary).collect(),
    })
}

/// A model a worker serves (`model_workers`).
#[derive(Debug, Deserialize)]
struct NodeModelRow {
    model_id: i64,
    weight: String,
}

/// One node with unbondings, slashes, audit record, models and its most recent tasks, in one
/// statement (seven before: a round trip to the connection's thread each, plus sqlx's check of
/// the connection before each).
pub async fn node(pool: &Pool, address: Address) -> Result<Option<Node>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    node_on(&mut conn, address).await
}

/// [`node`] and the cursor of `chain_id` (the last indexed block), read in one read transaction:
/// the cursor names the data the record shows (`GET /nodes/{addr}` keeps records by it,
/// [`crate::cache`]).
pub async fn node_at(
    pool: &Pool,
    chain_id: u64,
    address: Address,
) -> Result<(Option<Node>, Option<chainstore::db::BlockRef>), crate::db::DbError> {
    let mut tx = pool.begin().await?;
    let at = chainstore::db::read_cursor(&mut *tx, chain_id).await?;
    let node = node_on(&mut tx, address).await?;
    tx.commit().await?;
    Ok((node, at))
}

async fn node_on(conn: &mut Conn, address: Address) -> Result<Option<Node>, sqlx::Error> {
    static SQL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    let backend = Backend::of(conn);
    let sql = SQL[backend as usize].get_or_init(|| {
        chainstore::sql::numbered(&format!(
            "{NODE_SELECT}, {audits},
                ({unbondings}) AS unbondings, ({slashes}) AS slashes, ({models}) AS models,
                ({recent}) AS recent_tasks
             {NODE_FROM} WHERE n.address = ?1",
            audits = crate::audit_query::node_audits_columns(),
            unbondings = json_rows::<UnbondingRow>(
                backend,
                "SELECT * FROM unbondings WHERE account = ?1",
                "block_number, log_index"
            ),
            slashes = json_rows::<crate::audit_query::SlashRow>(
                backend,
                "SELECT * FROM slashes WHERE account = ?1",
                "block_number, log_index"
            ),
            models = json_rows::<NodeModelRow>(
                backend,
                "SELECT model_id, weight FROM model_workers WHERE worker = ?1",
                "model_id"
            ),
            recent = json_rows::<SummaryRow>(
                backend,
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM tasks WHERE worker = ?1
                     ORDER BY task_id DESC LIMIT 20"
                ),
                "task_id DESC"
            ),
        ))
    });
    let key = address.to_checksum(None);
    let Some(r) = sqlx::query(sql)
        .bind(&key)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let row = NodeRow::from_row(&r)?;
    let audits = crate::audit_query::node_audits(&r)?;
    let unbondings: Vec<UnbondingRow> = decode_rows(r.try_get("unbondings")?)?;
    let slashes: Vec<crate::audit_query::SlashRow> = decode_rows(r.try_get("slashes")?)?;
    let slashes = slashes.into_iter().map(Slash::from).collect();
    let models: Vec<NodeModelRow> = decode_rows(r.try_get("models")?)?;
    let recent: Vec<SummaryRow> = decode_rows(r.try_get("recent_tasks")?)?;
    Ok(Some(Node {
        summary: row.summary(),
        unbondings: unbondings
            .into_iter()
            .map(|u| Unbonding {
                role: StakeRole::from_value(u.role),
                amount: u.amount,
                remaining: u.remaining,
                release_at: u.release_at,
                requested_block: u.block_number,
                tx: u.tx_hash,
                status: u.status,
                closed_block: u.closed_block,
            })
            .collect(),
        slashes,
        audits,
        models: models
            .into_iter()
            .map(|NodeModelRow { model_id, weight }| NodeModel { model_id, weight })
            .collect(),
        recent_tasks: recent.into_iter().map(SummaryRow::summary).collect(),
    }))
}

/// Number of stored events per name (for /health and tests).
pub async fn event_counts(pool: &Pool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, COUNT(*) FROM events GROUP BY name ORDER BY name")
        .fetch_all(pool)
        .await
}

#[cfg(test)]
mod bundle_tests {
    use super::bundle_summary;

    #[test]
    fn a_file_manifest_is_summarized_only_when_it_matches_its_hash() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/digits/manifest.json")
            .canonicalize()
            .unwrap();
        let sha = hex::encode(inference::sha256(&std::fs::read(&path).unwrap()));
        let uri = format!("file://{}", path.display());
        let b = bundle_summary(&uri, &format!("0x{sha}"));
        assert_eq!(b["kind"], "tensor");
        assert_eq!(b["name"], "digits-mlp");
        assert_eq!(b["parts"]["model"]["path"], "digits.onnx");
        let wrong = bundle_summary(&uri, &"00".repeat(32));
        assert!(wrong["error"]
            .as_str()
            .unwrap()
            .contains("not the registered hash"));
        assert!(bundle_summary("https://example.com/m.json", &sha).is_null());
        let missing = bundle_summary("file:///nonexistent/manifest.json", &sha);
        assert!(missing["error"].as_str().unwrap().contains("cannot read"));
    }
}

#[cfg(test)]
mod json_rows_tests {
    use super::{decode_rows, field_names, json_rows, Backend, NodeModelRow, SummaryRow};

    #[test]
    fn a_struct_names_its_fields_in_order_and_reads_back_from_arrays() {
        assert_eq!(field_names::<NodeModelRow>(), ["model_id", "weight"]);
        let summary = field_names::<SummaryRow>();
        assert_eq!(summary.len(), 20);
        assert_eq!(summary[..3], ["task_id", "model_id", "submitter"]);
        assert_eq!(
            json_rows::<NodeModelRow>(Backend::Sqlite, "SELECT * FROM model_workers", "model_id"),
            "SELECT json_group_array(json_array(model_id, weight) ORDER BY model_id) \
             FROM (SELECT * FROM model_workers) AS r"
        );
        assert_eq!(
            json_rows::<NodeModelRow>(Backend::Postgres, "SELECT * FROM model_workers", "model_id"),
            "SELECT COALESCE(json_agg(json_build_array(model_id, weight) ORDER BY model_id), '[]')::text \
             FROM (SELECT * FROM model_workers) AS r"
        );
        let rows: Vec<NodeModelRow> = decode_rows(r#"[[1,"5"],[2,"7"]]"#).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.model_id, r.weight.as_str()))
                .collect::<Vec<_>>(),
            [(1, "5"), (2, "7")]
        );
        assert!(decode_rows::<NodeModelRow>(r#"[["1","5"]]"#).is_err());
    }
}
