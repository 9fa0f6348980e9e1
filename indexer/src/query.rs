//! Read queries behind the REST API. Each returns JSON-ready values in the API's shape:
//! addresses checksummed, amounts decimal strings (wei), names in the protocol's words.

use crate::tensor;
use alloy::primitives::Address;
use protocol::codes::FailureCode;
use serde_json::{json, Value};
use sqlx::{FromRow, QueryBuilder, Sqlite, SqlitePool};

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

/// Name of a staking role.
pub fn role_name(role: i64) -> &'static str {
    match role {
        0 => "worker",
        1 => "validator",
        _ => "unknown",
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

fn code_json(code: Option<i64>) -> Value {
    match code {
        None => Value::Null,
        Some(c) => {
            let known = u16::try_from(c).ok().and_then(FailureCode::from_u16);
            json!({
                "value": c,
                "name": known.map(FailureCode::as_str).unwrap_or("unknown"),
                "description": known.map(FailureCode::describe).unwrap_or("code unknown to this indexer version"),
            })
        }
    }
}

/// One row of `tasks`.
#[derive(Debug, FromRow)]
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

impl TaskRow {
    fn summary(&self) -> Value {
        json!({
            "task_id": self.task_id.to_string(),
            "model_id": self.model_id,
            "submitter": self.submitter,
            "worker": self.worker,
            "fee": self.fee,
            "status": self.status,
            "code": code_json(self.code),
            "output_hash": self.output_hash,
            "input_bytes": self.input.len(),
            "output_bytes": self.output.as_ref().map(Vec::len),
            "submitted": {"block": self.submitted_block, "time": self.submitted_time, "tx": self.submitted_tx},
            "assigned": self.assigned_block.map(|b| json!({"block": b, "time": self.assigned_time})),
            "committed": self.committed_block.map(|b| json!({"block": b, "time": self.committed_time})),
            "finalized": self.finalized_block.map(|b| json!({"block": b, "time": self.finalized_time})),
            "latency_secs": self.latency,
        })
    }

    fn detail(&self, trail: Vec<Value>) -> Value {
        let mut v = self.summary();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("input".into(), tensor_json(&self.input));
            obj.insert(
                "output".into(),
                self.output
                    .as_deref()
                    .map(tensor_json)
                    .unwrap_or(Value::Null),
            );
            obj.insert("batch_id".into(), json!(self.batch_id));
            obj.insert("deadline".into(), json!(self.deadline));
            obj.insert("misses".into(), json!(self.misses));
            obj.insert("compute_units".into(), json!(self.compute_units));
            obj.insert("quality".into(), json!(self.quality));
            obj.insert(
                "fee_split".into(),
                if self.finalized_block.is_some() {
                    json!({
                        "developer": self.developer_fee, "worker": self.worker_fee,
                        "validator": self.validator_fee, "protocol": self.protocol_fee, "refund": self.refund,
                    })
                } else {
                    Value::Null
                },
            );
            obj.insert("audit_trail".into(), Value::Array(trail));
        }
        v
    }
}

/// Input or output bytes: size, keccak256, the decoded tensors, or hex plus the decode error.
fn tensor_json(bytes: &[u8]) -> Value {
    let hash = protocol::output_hash(bytes).to_string();
    match tensor::describe(bytes) {
        Ok(decoded) => json!({"bytes": bytes.len(), "keccak256": hash, "decoded": decoded}),
        Err(e) => {
            let mut v = json!({"bytes": bytes.len(), "keccak256": hash, "hex": format!("0x{}", hex::encode(bytes)),
                         "decode_error": e});
            if let Some(obj) = v.as_object_mut() {
                obj.extend(tensor::human(bytes));
            }
            v
        }
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

/// A page of tasks, newest first, and the cursor of the next page.
pub async fn tasks(pool: &SqlitePool, f: &TaskFilter) -> Result<Value, sqlx::Error> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM tasks WHERE 1 = 1");
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
        .push_bind(i64::from(f.limit));
    let rows: Vec<TaskRow> = q.build_query_as().fetch_all(pool).await?;
    let next = if rows.len() == f.limit as usize {
        rows.last().map(|r| r.task_id.to_string())
    } else {
        None
    };
    Ok(json!({"tasks": rows.iter().map(TaskRow::summary).collect::<Vec<_>>(), "next_cursor": next}))
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

#[derive(Debug, FromRow)]
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

/// One task with decoded tensors, its trail of events and its audit record.
pub async fn task(pool: &SqlitePool, task_id: i64) -> Result<Option<Value>, sqlx::Error> {
    let Some(row) = sqlx::query_as::<_, TaskRow>("SELECT * FROM tasks WHERE task_id = ?")
        .bind(task_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let trail: Vec<TrailRow> = sqlx::query_as(
        "SELECT kind, worker, block_number, log_index, tx_hash, block_time, detail FROM task_events
         WHERE task_id = ? ORDER BY block_number, log_index",
    )
    .bind(task_id)
    .fetch_all(pool)
    .await?;
    let trail = trail
        .into_iter()
        .map(|t| {
            json!({"kind": t.kind, "worker": t.worker, "block": t.block_number, "log_index": t.log_index,
                   "tx": t.tx_hash, "time": t.block_time,
                   "detail": serde_json::from_str::<Value>(&t.detail).unwrap_or(Value::Null)})
        })
        .collect();
    let audit = crate::audit_query::task_audit(pool, task_id, row.batch_id.as_deref()).await?;
    let mut v = row.detail(trail);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("audit".into(), audit);
    }
    Ok(Some(v))
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

impl ModelRow {
    fn json(&self) -> Value {
        let bundle = bundle_summary(&self.uri, &self.sha256);
        json!({
            "model_id": self.model_id,
            "developer": self.developer,
            "sha256": self.sha256,
            "uri": self.uri,
            "price_per_call": self.price_per_call,
            "compute_units": self.compute_units,
            "compare_rule": {"value": self.rule, "name": compare_rule_name(self.rule), "tolerance": self.tolerance},
            "parent": self.parent,
            "status": model_status_name(self.status),
            "royalties": self.royalties,
            "registered": {"block": self.registered_block, "time": self.registered_time, "tx": self.tx_hash},
            "worker_count": self.worker_count,
            "kind": bundle.get("kind").cloned().unwrap_or(Value::Null),
            "bundle": bundle,
        })
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

/// Every model.
pub async fn models(pool: &SqlitePool) -> Result<Value, sqlx::Error> {
    let rows: Vec<ModelRow> = sqlx::query_as(&format!("{MODEL_SELECT} ORDER BY m.model_id"))
        .fetch_all(pool)
        .await?;
    Ok(json!({"models": rows.iter().map(ModelRow::json).collect::<Vec<_>>()}))
}

/// One model with its workers and usage counts.
pub async fn model(pool: &SqlitePool, model_id: u32) -> Result<Option<Value>, sqlx::Error> {
    let Some(row) = sqlx::query_as::<_, ModelRow>(&format!("{MODEL_SELECT} WHERE m.model_id = ?"))
        .bind(i64::from(model_id))
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let workers: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT worker, weight, opted_in_block, updated_block FROM model_workers WHERE model_id = ? ORDER BY worker",
    )
    .bind(i64::from(model_id))
    .fetch_all(pool)
    .await?;
    let usage: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM tasks WHERE model_id = ? GROUP BY status")
            .bind(i64::from(model_id))
            .fetch_all(pool)
            .await?;
    let mut counts = serde_json::Map::new();
    let mut total = 0;
    for s in TASK_STATUSES {
        let n = usage
            .iter()
            .find(|(k, _)| k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        total += n;
        counts.insert(s.into(), json!(n));
    }
    counts.insert("total".into(), json!(total));
    let mut v = row.json();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "workers".into(),
            workers
                .into_iter()
                .map(|(w, weight, opted, updated)| {
                    json!({"worker": w, "weight": weight, "opted_in_block": opted, "updated_block": updated})
                })
                .collect(),
        );
        obj.insert("tasks".into(), Value::Object(counts));
    }
    let (history, measured) = crate::epoch_query::model_quality(pool, model_id).await?;
    let canaries = crate::audit_query::model_canaries(pool, model_id).await?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("measured_quality".into(), measured);
        obj.insert("quality_history".into(), history);
        obj.insert("canary_accuracy".into(), canaries["accuracy"].clone());
        obj.insert("canaries".into(), canaries);
    }
    Ok(Some(v))
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
}

impl NodeRow {
    fn json(&self, now: i64) -> Value {
        json!({
            "address": self.address,
            "worker_stake": self.worker_stake,
            "validator_stake": self.validator_stake,
            "jailed_until": self.jailed_until,
            "jailed": self.jailed_until > now,
            "trust_wad": self.trust_wad,
            "earned": self.earned,
            "slashed": self.slashed,
            "first_block": self.first_block,
            "updated_block": self.updated_block,
            "tasks": {"assigned": self.assigned, "committed": self.committed, "failed": self.failed,
                      "missed": self.missed, "finalized": self.finalized},
        })
    }
}

/// Every node with its task counts. `{filter}` narrows the per-worker sums before they are
/// grouped: `worker IS NOT NULL` for the listing, `worker = ?1` for one node, whose sums then
/// read only its own events through `task_events_by_worker` instead of grouping every event of
/// every worker (0.4 s per request with 100,000 tasks indexed, `make bench`).
fn node_select(filter: &str) -> String {
    format!(
        "SELECT n.*,
            COALESCE(s.assigned, 0) AS assigned, COALESCE(s.committed, 0) AS committed,
            COALESCE(s.failed, 0) AS failed, COALESCE(s.missed, 0) AS missed, COALESCE(s.finalized, 0) AS finalized
         FROM nodes n LEFT JOIN (
            SELECT worker,
                SUM(kind = 'assigned') AS assigned,
                SUM(kind = 'committed') AS committed,
                SUM(kind = 'committed' AND json_extract(detail, '$.code') != 0) AS failed,
                SUM(kind = 'missed') AS missed,
                SUM(kind = 'finalized') AS finalized
            FROM task_events WHERE {filter} GROUP BY worker
         ) s ON s.worker = n.address"
    )
}

/// Time of the newest indexed block (to tell whether a jail is still running).
async fn indexed_time(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    let t: Option<i64> = sqlx::query_scalar("SELECT MAX(timestamp) FROM blocks")
        .fetch_one(pool)
        .await?;
    Ok(t.unwrap_or(0))
}

/// Every node (worker or validator).
pub async fn nodes(pool: &SqlitePool) -> Result<Value, sqlx::Error> {
    let now = indexed_time(pool).await?;
    let sql = format!("{} ORDER BY n.address", node_select("worker IS NOT NULL"));
    let rows: Vec<NodeRow> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(json!({"nodes": rows.iter().map(|r| r.json(now)).collect::<Vec<_>>()}))
}

/// One node with unbondings, slashes, models and its most recent tasks.
pub async fn node(pool: &SqlitePool, address: Address) -> Result<Option<Value>, sqlx::Error> {
    let key = address.to_checksum(None);
    let now = indexed_time(pool).await?;
    let sql = format!("{} WHERE n.address = ?1", node_select("worker = ?1"));
    let Some(row) = sqlx::query_as::<_, NodeRow>(&sql)
        .bind(&key)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let unbondings: Vec<UnbondingRow> = sqlx::query_as(
        "SELECT role, amount, remaining, release_at, block_number, tx_hash, status, closed_block FROM unbondings
         WHERE account = ? ORDER BY block_number, log_index",
    )
    .bind(&key)
    .fetch_all(pool)
    .await?;
    let slashes = crate::audit_query::node_slashes(pool, &key).await?;
    let audits = crate::audit_query::node_audits(pool, &key).await?;
    let models: Vec<(i64, String)> = sqlx::query_as(
        "SELECT model_id, weight FROM model_workers WHERE worker = ? ORDER BY model_id",
    )
    .bind(&key)
    .fetch_all(pool)
    .await?;
    let recent: Vec<TaskRow> =
        sqlx::query_as("SELECT * FROM tasks WHERE worker = ? ORDER BY task_id DESC LIMIT 20")
            .bind(&key)
            .fetch_all(pool)
            .await?;
    let mut v = row.json(now);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "unbondings".into(),
            unbondings
                .into_iter()
                .map(|u| {
                    json!({"role": role_name(u.role), "amount": u.amount, "remaining": u.remaining,
                           "release_at": u.release_at, "requested_block": u.block_number, "tx": u.tx_hash,
                           "status": u.status, "closed_block": u.closed_block})
                })
                .collect(),
        );
        obj.insert("slashes".into(), Value::Array(slashes));
        obj.insert("audits".into(), audits);
        obj.insert(
            "models".into(),
            models
                .into_iter()
                .map(|(m, w)| json!({"model_id": m, "weight": w}))
                .collect(),
        );
        obj.insert(
            "recent_tasks".into(),
            recent.iter().map(TaskRow::summary).collect(),
        );
    }
    Ok(Some(v))
}

/// Number of stored events per name (for /health and tests).
pub async fn event_counts(pool: &SqlitePool) -> Result<Vec<(String, i64)>, sqlx::Error> {
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
