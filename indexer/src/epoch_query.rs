//! Read queries behind the epoch routes of the REST API (`/epochs`, rewards with proofs, trust
//! history, leaderboards), in the API's shape: WAD values as decimal strings plus a float for
//! display, amounts as decimal wei strings, addresses checksummed.

use crate::query::model_status_name;
use alloy::primitives::{Address, U256};
use serde_json::{json, Value};
use sqlx::{Row, SqlitePool};
use std::collections::BTreeMap;

/// Roles accepted by `/leaderboard?role=`.
pub const LEADERBOARD_ROLES: [&str; 3] = ["worker", "validator", "model"];

const WAD_I64: i64 = 1_000_000_000_000_000_000;
const WAD_U128: u128 = 1_000_000_000_000_000_000;

fn wad_f64(v: i64) -> f64 {
    v as f64 / 1e18
}

fn amount(s: &str) -> U256 {
    crate::ingest::parse_amount(s)
}

/// Claimed totals per epoch from `RewardClaimed`.
async fn claimed_by_epoch(pool: &SqlitePool) -> Result<BTreeMap<i64, (U256, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT epoch, amount FROM reward_claims")
        .fetch_all(pool)
        .await?;
    let mut out: BTreeMap<i64, (U256, i64)> = BTreeMap::new();
    for r in rows {
        let e: i64 = r.try_get("epoch")?;
        let a: String = r.try_get("amount")?;
        let entry = out.entry(e).or_default();
        entry.0 += amount(&a);
        entry.1 += 1;
    }
    Ok(out)
}

fn on_chain_json(
    r: Option<&sqlx::sqlite::SqliteRow>,
    rewards_root: &str,
    trust_root: &str,
) -> Result<Value, sqlx::Error> {
    let Some(r) = r else {
        return Ok(json!({"posted": false}));
    };
    let rr: String = r.try_get("rewards_root")?;
    let tr: String = r.try_get("trust_root")?;
    let signers: String = r.try_get("signers")?;
    Ok(json!({
        "posted": true,
        "matches_computed": rr == rewards_root && tr == trust_root,
        "rewards_root": rr,
        "trust_root": tr,
        "total_rewards": r.try_get::<String, _>("total_rewards")?,
        "signers": serde_json::from_str::<Value>(&signers).unwrap_or(Value::Null),
        "signed_stake": r.try_get::<String, _>("signed_stake")?,
        "total_validator_stake": r.try_get::<String, _>("total_validator_stake")?,
        "block_number": r.try_get::<i64, _>("block_number")?,
        "tx_hash": r.try_get::<String, _>("tx_hash")?,
    }))
}

fn epoch_summary(
    r: &sqlx::sqlite::SqliteRow,
    claimed: Option<&(U256, i64)>,
    on_chain: Value,
) -> Result<Value, sqlx::Error> {
    let total: String = r.try_get("total_rewards")?;
    let budget: String = r.try_get("budget")?;
    let unminted = amount(&budget).saturating_sub(amount(&total));
    let (claimed, claims) = claimed.copied().unwrap_or_default();
    Ok(json!({
        "epoch": r.try_get::<i64, _>("epoch")?,
        "start_time": r.try_get::<i64, _>("start_time")?,
        "end_time": r.try_get::<i64, _>("end_time")?,
        "report": {
            "epoch": r.try_get::<i64, _>("epoch")?,
            "rewardsRoot": r.try_get::<String, _>("rewards_root")?,
            "trustRoot": r.try_get::<String, _>("trust_root")?,
            "totalRewards": total,
            "modelStatusHash": r.try_get::<String, _>("model_status_hash")?,
        },
        "budget": budget,
        "pools": {
            "worker": r.try_get::<String, _>("worker_pool")?,
            "validator": r.try_get::<String, _>("validator_pool")?,
            "model": r.try_get::<String, _>("model_pool")?,
        },
        "unminted": unminted.to_string(),
        "tasks_assigned": r.try_get::<i64, _>("tasks_assigned")?,
        "tasks_finalized": r.try_get::<i64, _>("tasks_finalized")?,
        "claimed": claimed.to_string(),
        "claims": claims,
        "posted": on_chain["posted"].clone(),
        "on_chain": on_chain,
    }))
}

/// `GET /epochs`: every computed epoch, newest first.
pub async fn epochs(pool: &SqlitePool) -> Result<Value, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM epochs ORDER BY epoch DESC")
        .fetch_all(pool)
        .await?;
    let reports = sqlx::query("SELECT * FROM epoch_reports")
        .fetch_all(pool)
        .await?;
    let mut by_epoch = BTreeMap::new();
    for r in &reports {
        by_epoch.insert(r.try_get::<i64, _>("epoch")?, r);
    }
    let claimed = claimed_by_epoch(pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let e: i64 = r.try_get("epoch")?;
        let rr: String = r.try_get("rewards_root")?;
        let tr: String = r.try_get("trust_root")?;
        let on_chain = on_chain_json(by_epoch.get(&e).copied(), &rr, &tr)?;
        out.push(epoch_summary(r, claimed.get(&e), on_chain)?);
    }
    Ok(json!({"epochs": out}))
}

fn node_row_json(r: &sqlx::sqlite::SqliteRow) -> Result<Value, sqlx::Error> {
    let wad = |k: &str| -> Result<(String, f64), sqlx::Error> {
        let v: i64 = r.try_get(k)?;
        Ok((v.to_string(), wad_f64(v)))
    };
    let (trust_wad, trust) = wad("trust_wad")?;
    let (quality_wad, quality) = wad("quality_wad")?;
    let (prev_wad, _) = wad("prev_trust_wad")?;
    let comps = ["completion", "accuracy", "uptime", "speed"];
    let mut components = serde_json::Map::new();
    let mut components_wad = serde_json::Map::new();
    for c in comps {
        let (s, f) = wad(&format!("{c}_wad"))?;
        components.insert(c.to_string(), json!(f));
        components_wad.insert(c.to_string(), json!(s));
    }
    Ok(json!({
        "epoch": r.try_get::<i64, _>("epoch")?,
        "address": r.try_get::<String, _>("address")?,
        "trust": trust,
        "trust_wad": trust_wad,
        "prev_trust_wad": prev_wad,
        "quality": quality,
        "quality_wad": quality_wad,
        "components": components,
        "components_wad": components_wad,
        "evaluated": r.try_get::<bool, _>("evaluated")?,
        "slashed": r.try_get::<bool, _>("slashed")?,
        "zero_epochs_left": r.try_get::<i64, _>("zero_epochs_left")?,
        "tasks_assigned": r.try_get::<i64, _>("tasks_assigned")?,
        "tasks_on_time": r.try_get::<i64, _>("tasks_on_time")?,
        "tasks_finalized": r.try_get::<i64, _>("tasks_finalized")?,
        "compute_units": r.try_get::<i64, _>("compute_units")?,
        "p50_latency_secs": r.try_get::<Option<i64>, _>("p50_latency")?,
        "audits": {
            "audited": r.try_get::<i64, _>("audited")?,
            "passed": r.try_get::<i64, _>("passed")?,
            "quality_sum_ppm": r.try_get::<i64, _>("quality_sum_ppm")?,
            "fraud": r.try_get::<bool, _>("fraud")?,
        },
        "score": r.try_get::<String, _>("score")?,
        "reward": r.try_get::<String, _>("reward")?,
    }))
}

/// `GET /epochs/{n}`: the report, totals, and the per-worker, validator and model tables.
pub async fn epoch(pool: &SqlitePool, epoch: i64) -> Result<Option<Value>, sqlx::Error> {
    let Some(r) = sqlx::query("SELECT * FROM epochs WHERE epoch = ?")
        .bind(epoch)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let report = sqlx::query("SELECT * FROM epoch_reports WHERE epoch = ?")
        .bind(epoch)
        .fetch_optional(pool)
        .await?;
    let rr: String = r.try_get("rewards_root")?;
    let tr: String = r.try_get("trust_root")?;
    let on_chain = on_chain_json(report.as_ref(), &rr, &tr)?;
    let claimed = claimed_by_epoch(pool).await?;
    let mut v = epoch_summary(&r, claimed.get(&epoch), on_chain)?;
    let nodes = sqlx::query("SELECT * FROM epoch_nodes WHERE epoch = ? ORDER BY address")
        .bind(epoch)
        .fetch_all(pool)
        .await?;
    let nodes: Vec<Value> = nodes.iter().map(node_row_json).collect::<Result<_, _>>()?;
    let validators = epoch_validators(pool, &r).await?;
    let models = epoch_models(pool, epoch).await?;
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM epoch_rewards WHERE epoch = ?")
        .bind(epoch)
        .fetch_one(pool)
        .await?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("rewarded_accounts".into(), json!(accounts));
        obj.insert("nodes".into(), json!(nodes));
        obj.insert("validators".into(), json!(validators));
        obj.insert("models".into(), json!(models));
    }
    Ok(Some(v))
}

/// The `validators` rows of `GET /epochs/{n}` (`epoch`: the `epochs` row), ascending by address:
/// stake, reward and the audit record its reward weight followed (verdicts and dispute votes
/// done, deadlines missed, reliability, a validator slash), read from the same facts and with the
/// same code as the epoch computation ([`crate::epochs::validator_audits`]).
async fn epoch_validators(
    pool: &SqlitePool,
    epoch: &sqlx::sqlite::SqliteRow,
) -> Result<Vec<Value>, sqlx::Error> {
    let e: i64 = epoch.try_get("epoch")?;
    let start = u64::try_from(epoch.try_get::<i64, _>("start_time")?).unwrap_or(0);
    let end = u64::try_from(epoch.try_get::<i64, _>("end_time")?).unwrap_or(0);
    let audits = crate::epochs::validator_audits(pool, start, end).await?;
    let rows = sqlx::query(
        "SELECT address, stake, reward FROM epoch_validators WHERE epoch = ? ORDER BY address",
    )
    .bind(e)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let address: String = r.try_get("address")?;
            let rec = address
                .parse::<Address>()
                .ok()
                .and_then(|a| audits.get(&a).copied())
                .unwrap_or_default();
            let reliability = protocol::powr::validator_reliability_wad(rec.done, rec.missed);
            Ok(json!({
                "address": address,
                "stake": r.try_get::<String, _>("stake")?,
                "reward": r.try_get::<String, _>("reward")?,
                "audits_done": rec.done,
                "audits_missed": rec.missed,
                "reliability": reliability as f64 / 1e18,
                "reliability_wad": reliability.to_string(),
                "slashed": rec.slashed,
            }))
        })
        .collect()
}

/// The quality fields of an `epoch_model_quality` row.
fn quality_json(r: &sqlx::sqlite::SqliteRow) -> Result<Value, sqlx::Error> {
    let wad = |k: &str| -> Result<(String, f64), sqlx::Error> {
        let v: i64 = r.try_get(k)?;
        Ok((v.to_string(), wad_f64(v)))
    };
    let (quality_wad, quality) = wad("quality_wad")?;
    let (feedback_wad, feedback) = wad("feedback_wad")?;
    let (canary_wad, canary) = wad("canary_accuracy_wad")?;
    let status: i64 = r.try_get("status")?;
    let prev: i64 = r.try_get("prev_status")?;
    Ok(json!({
        "quality": quality,
        "quality_wad": quality_wad,
        "feedback": feedback,
        "feedback_wad": feedback_wad,
        "canary_accuracy": canary,
        "canary_accuracy_wad": canary_wad,
        "ratings": r.try_get::<i64, _>("ratings")?,
        "score_sum": r.try_get::<i64, _>("score_sum")?,
        "canaries": r.try_get::<i64, _>("canaries")?,
        "canary_matches": r.try_get::<i64, _>("canary_matches")?,
        "status": model_status_name(status),
        "prev_status": model_status_name(prev),
        "chain_status": model_status_name(r.try_get::<i64, _>("chain_status")?),
        "status_changed": status != prev,
        "in_report": r.try_get::<bool, _>("in_report")?,
    }))
}

/// The `models` rows of `GET /epochs/{n}`: every model with usage or a quality row in the epoch,
/// ascending by id, with its usage, measured quality and status after the epoch.
async fn epoch_models(pool: &SqlitePool, epoch: i64) -> Result<Vec<Value>, sqlx::Error> {
    let mut out: BTreeMap<i64, serde_json::Map<String, Value>> = BTreeMap::new();
    let usage = sqlx::query(
        "SELECT model_id, developer, tasks_finalized, compute_units FROM epoch_models WHERE epoch = ?",
    )
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    for r in &usage {
        let id: i64 = r.try_get("model_id")?;
        let row = out.entry(id).or_default();
        row.insert("model_id".into(), json!(id));
        row.insert(
            "developer".into(),
            json!(r.try_get::<String, _>("developer")?),
        );
        row.insert(
            "tasks_finalized".into(),
            json!(r.try_get::<i64, _>("tasks_finalized")?),
        );
        row.insert(
            "compute_units".into(),
            json!(r.try_get::<i64, _>("compute_units")?),
        );
    }
    let quality = sqlx::query(
        "SELECT q.*, m.developer AS model_developer FROM epoch_model_quality q
         LEFT JOIN models m ON m.model_id = q.model_id WHERE q.epoch = ?",
    )
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    for r in &quality {
        let id: i64 = r.try_get("model_id")?;
        let row = out.entry(id).or_default();
        if row.is_empty() {
            row.insert("model_id".into(), json!(id));
            row.insert(
                "developer".into(),
                json!(r.try_get::<Option<String>, _>("model_developer")?),
            );
            row.insert("tasks_finalized".into(), json!(0));
            row.insert("compute_units".into(), json!(0));
        }
        if let Value::Object(q) = quality_json(r)? {
            row.extend(q);
        }
    }
    Ok(out.into_values().map(Value::Object).collect())
}

/// `quality_history` (oldest first) and `measured_quality` (the latest epoch's quality, null
/// before any computed epoch) of `GET /models/{id}`.
pub async fn model_quality(
    pool: &SqlitePool,
    model_id: u32,
) -> Result<(Value, Value), sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM epoch_model_quality WHERE model_id = ? ORDER BY epoch")
        .bind(i64::from(model_id))
        .fetch_all(pool)
        .await?;
    let mut history = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut v = quality_json(r)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("epoch".into(), json!(r.try_get::<i64, _>("epoch")?));
        }
        history.push(v);
    }
    let measured = history
        .last()
        .map(|h| h["quality"].clone())
        .unwrap_or(Value::Null);
    Ok((Value::Array(history), measured))
}

/// Outcome of `GET /epochs/{n}/model-status/{id}`.
pub enum ModelStatusLeaf {
    /// The epoch is not computed.
    NoEpoch,
    /// The model has no leaf in the epoch's model status tree.
    NoLeaf,
    /// The leaf with its proof.
    Leaf(Value),
}

/// `GET /epochs/{n}/model-status/{id}`: the model's leaf of the epoch's model status tree with
/// its proof (the arguments of `Settlement.applyModelStatus`) and whether it was applied.
pub async fn model_status(
    pool: &SqlitePool,
    epoch: i64,
    model_id: u32,
) -> Result<ModelStatusLeaf, sqlx::Error> {
    let hash: Option<String> =
        sqlx::query_scalar("SELECT model_status_hash FROM epochs WHERE epoch = ?")
            .bind(epoch)
            .fetch_optional(pool)
            .await?;
    let Some(hash) = hash else {
        return Ok(ModelStatusLeaf::NoEpoch);
    };
    let Some(r) = sqlx::query(
        "SELECT * FROM epoch_model_quality WHERE epoch = ? AND model_id = ? AND in_report = 1",
    )
    .bind(epoch)
    .bind(i64::from(model_id))
    .fetch_optional(pool)
    .await?
    else {
        return Ok(ModelStatusLeaf::NoLeaf);
    };
    let status: i64 = r.try_get("status")?;
    let proof: Option<String> = r.try_get("proof")?;
    let proof = proof
        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
        .unwrap_or_else(|| json!([]));
    let applied: Option<String> = sqlx::query_scalar(
        "SELECT tx_hash FROM events WHERE name = 'ModelStatusApplied'
           AND CAST(json_extract(json, '$.epoch') AS INTEGER) = ?
           AND CAST(json_extract(json, '$.modelId') AS INTEGER) = ?
         ORDER BY block_number DESC, log_index DESC LIMIT 1",
    )
    .bind(epoch)
    .bind(i64::from(model_id))
    .fetch_optional(pool)
    .await?;
    let q = quality_json(&r)?;
    Ok(ModelStatusLeaf::Leaf(json!({
        "epoch": epoch,
        "model_id": model_id,
        "status": status,
        "status_name": model_status_name(status),
        "prev_status": q["prev_status"],
        "chain_status": q["chain_status"],
        "quality": q["quality"],
        "quality_wad": q["quality_wad"],
        "ratings": q["ratings"],
        "proof": proof,
        "model_status_hash": hash,
        "applied": applied.is_some(),
        "applied_tx": applied,
    })))
}

/// `GET /epochs/{n}/rewards/{address}`: the leaf, its proof and whether it was claimed.
pub async fn reward(
    pool: &SqlitePool,
    epoch: i64,
    account: Address,
) -> Result<Option<Value>, sqlx::Error> {
    let a = account.to_checksum(None);
    let Some(r) = sqlx::query("SELECT * FROM epoch_rewards WHERE epoch = ? AND account = ?")
        .bind(epoch)
        .bind(&a)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let root: Option<String> =
        sqlx::query_scalar("SELECT rewards_root FROM epochs WHERE epoch = ?")
            .bind(epoch)
            .fetch_optional(pool)
            .await?;
    let claim =
        sqlx::query("SELECT amount, tx_hash FROM reward_claims WHERE epoch = ? AND account = ?")
            .bind(epoch)
            .bind(&a)
            .fetch_optional(pool)
            .await?;
    let proof: String = r.try_get("proof")?;
    Ok(Some(json!({
        "epoch": epoch,
        "account": a,
        "amount": r.try_get::<String, _>("amount")?,
        "proof": serde_json::from_str::<Value>(&proof).unwrap_or(Value::Null),
        "rewards_root": root,
        "parts": {
            "worker": r.try_get::<String, _>("worker_reward")?,
            "validator": r.try_get::<String, _>("validator_reward")?,
            "developer": r.try_get::<String, _>("developer_reward")?,
        },
        "claimed": claim.is_some(),
        "claim_tx": claim.map(|c| c.try_get::<String, _>("tx_hash")).transpose()?,
    })))
}

/// `GET /nodes/{address}/trust`: the node's trust history, oldest first (None: never seen).
pub async fn node_trust(pool: &SqlitePool, node: Address) -> Result<Option<Value>, sqlx::Error> {
    let a = node.to_checksum(None);
    let rows = sqlx::query("SELECT * FROM epoch_nodes WHERE address = ? ORDER BY epoch")
        .bind(&a)
        .fetch_all(pool)
        .await?;
    if rows.is_empty() {
        let known: Option<String> =
            sqlx::query_scalar("SELECT address FROM nodes WHERE address = ?")
                .bind(&a)
                .fetch_optional(pool)
                .await?;
        if known.is_none() {
            return Ok(None);
        }
    }
    let history: Vec<Value> = rows.iter().map(node_row_json).collect::<Result<_, _>>()?;
    let refreshed: Option<(i64, String)> = sqlx::query_as(
        "SELECT epoch, trust_wad FROM trust_refreshes WHERE node = ? ORDER BY block_number DESC, log_index DESC LIMIT 1",
    )
    .bind(&a)
    .fetch_optional(pool)
    .await?;
    Ok(Some(json!({
        "address": a,
        "current": history.last().cloned(),
        "last_refresh": refreshed.map(|(e, t)| json!({"epoch": e, "trust_wad": t})),
        "history": history,
    })))
}

/// `GET /leaderboard?role=`: accounts ranked by what they earned over all computed epochs.
/// `role` must be one of [`LEADERBOARD_ROLES`].
pub async fn leaderboard(pool: &SqlitePool, role: &str) -> Result<Value, sqlx::Error> {
    let entries: Vec<Value> = match role {
        "worker" => {
            let rows = sqlx::query(
                "SELECT address, epoch, reward, trust_wad, tasks_finalized, compute_units FROM epoch_nodes ORDER BY epoch",
            )
            .fetch_all(pool)
            .await?;
            let mut acc: BTreeMap<String, (U256, i64, i64, i64, i64)> = BTreeMap::new();
            for r in rows {
                let e = acc.entry(r.try_get("address")?).or_default();
                e.0 += amount(&r.try_get::<String, _>("reward")?);
                e.1 = r.try_get("trust_wad")?;
                e.2 += r.try_get::<i64, _>("tasks_finalized")?;
                e.3 += r.try_get::<i64, _>("compute_units")?;
                e.4 = r.try_get("epoch")?;
            }
            let mut v: Vec<_> = acc.into_iter().collect();
            v.sort_by(|a, b| {
                b.1 .0
                    .cmp(&a.1 .0)
                    .then(b.1 .1.cmp(&a.1 .1))
                    .then(a.0.cmp(&b.0))
            });
            v.into_iter()
                .map(|(a, (reward, trust, tasks, units, epoch))| {
                    json!({"address": a, "rewards": reward.to_string(), "trust_wad": trust.to_string(),
                           "trust": wad_f64(trust), "trust_epoch": epoch, "tasks_finalized": tasks, "compute_units": units})
                })
                .collect()
        }
        "validator" => {
            let rows = sqlx::query(
                "SELECT address, epoch, stake, reward FROM epoch_validators ORDER BY epoch",
            )
            .fetch_all(pool)
            .await?;
            let mut acc: BTreeMap<String, (U256, String, i64)> = BTreeMap::new();
            for r in rows {
                let e = acc.entry(r.try_get("address")?).or_default();
                e.0 += amount(&r.try_get::<String, _>("reward")?);
                e.1 = r.try_get("stake")?;
                e.2 += 1;
            }
            let mut v: Vec<_> = acc.into_iter().collect();
            v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
            v.into_iter()
                .map(|(a, (reward, stake, epochs))| {
                    json!({"address": a, "rewards": reward.to_string(), "stake": stake, "epochs": epochs})
                })
                .collect()
        }
        _ => model_leaderboard(pool).await?,
    };
    Ok(json!({"role": role, "entries": entries}))
}

/// Per model over all computed epochs: usage, quality-weighted usage and the latest quality.
#[derive(Default)]
struct ModelTotals {
    developer: Option<String>,
    tasks: i64,
    units: i64,
    epochs: i64,
    /// Σ compute units × measured quality of their epoch (WAD · units).
    weighted: u128,
    quality_wad: Option<i64>,
    status: Option<i64>,
}

/// Models ranked by quality × usage: the compute units of each epoch weighted by the model's
/// measured quality in that epoch (1.0 for epochs computed before quality was measured), then
/// by compute units, then by id.
async fn model_leaderboard(pool: &SqlitePool) -> Result<Vec<Value>, sqlx::Error> {
    let mut acc: BTreeMap<i64, ModelTotals> = BTreeMap::new();
    let quality = sqlx::query(
        "SELECT epoch, model_id, quality_wad, status FROM epoch_model_quality ORDER BY epoch",
    )
    .fetch_all(pool)
    .await?;
    let mut by_epoch: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for r in &quality {
        let (e, m): (i64, i64) = (r.try_get("epoch")?, r.try_get("model_id")?);
        let q: i64 = r.try_get("quality_wad")?;
        by_epoch.insert((e, m), q);
        let t = acc.entry(m).or_default();
        t.quality_wad = Some(q);
        t.status = Some(r.try_get("status")?);
    }
    let usage = sqlx::query(
        "SELECT epoch, model_id, developer, tasks_finalized, compute_units FROM epoch_models ORDER BY epoch",
    )
    .fetch_all(pool)
    .await?;
    for r in &usage {
        let (e, m): (i64, i64) = (r.try_get("epoch")?, r.try_get("model_id")?);
        let units: i64 = r.try_get("compute_units")?;
        let q = by_epoch.get(&(e, m)).copied().unwrap_or(WAD_I64);
        let t = acc.entry(m).or_default();
        t.developer = Some(r.try_get("developer")?);
        t.tasks += r.try_get::<i64, _>("tasks_finalized")?;
        t.units += units;
        t.epochs += 1;
        t.weighted += u128::try_from(units).unwrap_or(0) * u128::try_from(q).unwrap_or(0);
    }
    let developers: BTreeMap<i64, String> =
        sqlx::query_as::<_, (i64, String)>("SELECT model_id, developer FROM models")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let dev_rewards = sqlx::query("SELECT account, developer_reward FROM epoch_rewards")
        .fetch_all(pool)
        .await?;
    let mut by_dev: BTreeMap<String, U256> = BTreeMap::new();
    for r in dev_rewards {
        *by_dev.entry(r.try_get("account")?).or_default() +=
            amount(&r.try_get::<String, _>("developer_reward")?);
    }
    let mut v: Vec<(i64, ModelTotals)> = acc.into_iter().collect();
    v.sort_by(|a, b| {
        b.1.weighted
            .cmp(&a.1.weighted)
            .then(b.1.units.cmp(&a.1.units))
            .then(a.0.cmp(&b.0))
    });
    Ok(v.into_iter()
        .map(|(id, t)| {
            let dev = t.developer.or_else(|| developers.get(&id).cloned());
            let rewards = dev
                .as_ref()
                .and_then(|d| by_dev.get(d))
                .copied()
                .unwrap_or_default();
            json!({"model_id": id, "developer": dev,
                   "tasks_finalized": t.tasks, "compute_units": t.units, "epochs": t.epochs,
                   "quality_units": (t.weighted / WAD_U128).to_string(),
                   "measured_quality": t.quality_wad.map(wad_f64),
                   "measured_quality_wad": t.quality_wad.map(|q| q.to_string()),
                   "status": t.status.map(model_status_name),
                   "developer_rewards": rewards.to_string()})
        })
        .collect())
}
