//! Read queries behind the epoch routes of the REST API (`/epochs`, rewards with proofs, trust
//! history, leaderboards), in the API's shape: WAD values as decimal strings plus a float for
//! display, amounts as decimal wei strings, addresses checksummed.

use alloy::primitives::{Address, U256};
use serde_json::{json, Value};
use sqlx::{Row, SqlitePool};
use std::collections::BTreeMap;

/// Roles accepted by `/leaderboard?role=`.
pub const LEADERBOARD_ROLES: [&str; 3] = ["worker", "validator", "model"];

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
    let validators: Vec<Value> = sqlx::query("SELECT address, stake, reward FROM epoch_validators WHERE epoch = ? ORDER BY address")
        .bind(epoch)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(json!({"address": r.try_get::<String, _>("address")?, "stake": r.try_get::<String, _>("stake")?,
                      "reward": r.try_get::<String, _>("reward")?}))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let models: Vec<Value> = sqlx::query("SELECT model_id, developer, tasks_finalized, compute_units FROM epoch_models WHERE epoch = ? ORDER BY model_id")
        .bind(epoch)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(json!({"model_id": r.try_get::<i64, _>("model_id")?, "developer": r.try_get::<String, _>("developer")?,
                      "tasks_finalized": r.try_get::<i64, _>("tasks_finalized")?,
                      "compute_units": r.try_get::<i64, _>("compute_units")?}))
        })
        .collect::<Result<_, sqlx::Error>>()?;
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
        _ => {
            let rows = sqlx::query(
                "SELECT model_id, developer, SUM(tasks_finalized) AS tasks, SUM(compute_units) AS units, COUNT(*) AS epochs
                 FROM epoch_models GROUP BY model_id, developer ORDER BY units DESC, model_id",
            )
            .fetch_all(pool)
            .await?;
            let dev_rewards = sqlx::query("SELECT account, developer_reward FROM epoch_rewards")
                .fetch_all(pool)
                .await?;
            let mut by_dev: BTreeMap<String, U256> = BTreeMap::new();
            for r in dev_rewards {
                *by_dev.entry(r.try_get("account")?).or_default() +=
                    amount(&r.try_get::<String, _>("developer_reward")?);
            }
            rows.iter()
                .map(|r| {
                    let dev: String = r.try_get("developer")?;
                    Ok(json!({"model_id": r.try_get::<i64, _>("model_id")?, "developer": dev,
                              "tasks_finalized": r.try_get::<i64, _>("tasks")?, "compute_units": r.try_get::<i64, _>("units")?,
                              "epochs": r.try_get::<i64, _>("epochs")?,
                              "developer_rewards": by_dev.get(&dev).copied().unwrap_or_default().to_string()}))
                })
                .collect::<Result<_, sqlx::Error>>()?
        }
    };
    Ok(json!({"role": role, "entries": entries}))
}
