//! Read queries of the validation layer behind the REST API: a task's audit record (`audit` of
//! `/tasks/{id}`), a node's audit record and slashes (`/nodes/{address}`), the `/audits` listing
//! and a model's canary accuracy. Same shape rules as [`crate::query`].

use crate::audit::{
    audit_state_name, miss_kind_name, opener_name, MISS_VERDICT, OPENER_VALIDATOR, OUTCOME_CLEARED,
    OUTCOME_FRAUD,
};
use crate::query::{role_name, slash_reason_name};
use serde_json::{json, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

const PPM: f64 = 1_000_000.0;

fn position(r: &SqliteRow) -> Result<Value, sqlx::Error> {
    Ok(json!({
        "block": r.try_get::<i64, _>("block_number")?,
        "log_index": r.try_get::<i64, _>("log_index")?,
        "tx": r.try_get::<String, _>("tx_hash")?,
        "time": r.try_get::<i64, _>("block_time")?,
    }))
}

/// Merges `extra` (an object) into `base` (an object).
fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

fn verdict_json(r: &SqliteRow) -> Result<Value, sqlx::Error> {
    let q: i64 = r.try_get("quality_ppm")?;
    Ok(with(
        json!({
            "task_id": r.try_get::<i64, _>("task_id")?.to_string(),
            "batch_id": r.try_get::<String, _>("batch_id")?,
            "validator": r.try_get::<String, _>("validator")?,
            "worker": r.try_get::<String, _>("worker")?,
            "worker_output_hash": r.try_get::<String, _>("worker_output_hash")?,
            "validator_output_hash": r.try_get::<String, _>("validator_output_hash")?,
            "quality_ppm": q,
            "quality": q as f64 / PPM,
            "matches": r.try_get::<bool, _>("matches")?,
        }),
        position(r)?,
    ))
}

/// `open` while undecided, else the name of the AuditState it resolved to.
fn outcome_name(outcome: Option<i64>) -> &'static str {
    outcome.map_or("open", audit_state_name)
}

fn dispute_json(r: &SqliteRow) -> Result<Value, sqlx::Error> {
    let outcome: Option<i64> = r.try_get("outcome")?;
    let members: String = r.try_get("members")?;
    let resolved: Option<i64> = r.try_get("resolved_block")?;
    Ok(json!({
        "worker": r.try_get::<String, _>("worker")?,
        "accuser": r.try_get::<String, _>("accuser")?,
        "opener": opener_name(r.try_get("opener")?),
        "members": serde_json::from_str::<Value>(&members).unwrap_or_else(|_| json!([])),
        "deadline": r.try_get::<i64, _>("deadline")?,
        "outcome": outcome_name(outcome),
        "outcome_value": outcome,
        "fraud_votes": r.try_get::<i64, _>("fraud_votes")?,
        "honest_votes": r.try_get::<i64, _>("honest_votes")?,
        "opened": {"block": r.try_get::<i64, _>("opened_block")?, "time": r.try_get::<i64, _>("opened_time")?,
                   "tx": r.try_get::<String, _>("opened_tx")?},
        "resolved": match resolved {
            Some(b) => json!({"block": b, "time": r.try_get::<Option<i64>, _>("resolved_time")?,
                              "tx": r.try_get::<Option<String>, _>("resolved_tx")?}),
            None => Value::Null,
        },
    }))
}

fn canary_json(r: &SqliteRow) -> Result<Value, sqlx::Error> {
    let q: i64 = r.try_get("quality_ppm")?;
    Ok(with(
        json!({
            "validator": r.try_get::<String, _>("validator")?,
            "worker": r.try_get::<String, _>("worker")?,
            "model_id": r.try_get::<i64, _>("model_id")?,
            "expected_output_hash": r.try_get::<String, _>("expected_output_hash")?,
            "matches": r.try_get::<bool, _>("matches")?,
            "quality_ppm": q,
            "quality": q as f64 / PPM,
        }),
        position(r)?,
    ))
}

/// One `slashes` row in the API's shape.
pub fn slash_json(r: &SqliteRow) -> Result<Value, sqlx::Error> {
    let reason: i64 = r.try_get("reason")?;
    Ok(json!({
        "role": role_name(r.try_get("role")?),
        "reason": reason,
        "reason_name": slash_reason_name(reason),
        "amount": r.try_get::<String, _>("amount")?,
        "beneficiary": r.try_get::<String, _>("beneficiary")?,
        "rewarded": r.try_get::<String, _>("rewarded")?,
        "burned": r.try_get::<String, _>("burned")?,
        "task_id": r.try_get::<Option<i64>, _>("task_id")?.map(|t| t.to_string()),
        "block": r.try_get::<i64, _>("block_number")?,
        "tx": r.try_get::<String, _>("tx_hash")?,
        "time": r.try_get::<i64, _>("block_time")?,
    }))
}

/// The `audit` object of `/tasks/{id}`: the audit state (as `IAuditManager.AuditState` names
/// it), the batch's seal, verdicts, the dispute with its votes, the canary report, validators'
/// missed deadlines, a revealed forced error and the slashes it caused.
pub async fn task_audit(
    pool: &SqlitePool,
    task_id: i64,
    batch_id: Option<&str>,
) -> Result<Value, sqlx::Error> {
    let seal = match batch_id {
        Some(b) => sqlx::query("SELECT * FROM batch_seals WHERE batch_id = ?")
            .bind(b)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<Value, sqlx::Error> {
                let p: String = r.try_get("p_wad")?;
                Ok(with(
                    json!({
                        "batch_id": r.try_get::<String, _>("batch_id")?,
                        "randomness": r.try_get::<String, _>("randomness")?,
                        "p_wad": p,
                        "p": p.parse::<f64>().unwrap_or(0.0) / 1e18,
                        "full": r.try_get::<bool, _>("full_audit")?,
                    }),
                    position(&r)?,
                ))
            })
            .transpose()?,
        None => None,
    };
    let verdicts =
        sqlx::query("SELECT * FROM verdicts WHERE task_id = ? ORDER BY block_number, log_index")
            .bind(task_id)
            .fetch_all(pool)
            .await?;
    let dispute = sqlx::query("SELECT * FROM disputes WHERE task_id = ?")
        .bind(task_id)
        .fetch_optional(pool)
        .await?;
    let votes = sqlx::query(
        "SELECT * FROM dispute_votes WHERE task_id = ? ORDER BY block_number, log_index",
    )
    .bind(task_id)
    .fetch_all(pool)
    .await?;
    let canary = sqlx::query("SELECT * FROM first_canaries WHERE task_id = ?")
        .bind(task_id)
        .fetch_optional(pool)
        .await?;
    let misses = sqlx::query(
        "SELECT * FROM deadline_misses WHERE task_id = ? ORDER BY block_number, log_index",
    )
    .bind(task_id)
    .fetch_all(pool)
    .await?;
    let forced = sqlx::query(
        "SELECT * FROM forced_errors WHERE task_id = ? ORDER BY block_number, log_index LIMIT 1",
    )
    .bind(task_id)
    .fetch_optional(pool)
    .await?;
    let slashes =
        sqlx::query("SELECT * FROM slashes WHERE task_id = ? ORDER BY block_number, log_index")
            .bind(task_id)
            .fetch_all(pool)
            .await?;

    // The record's state, as AuditManager keeps it (latest transition wins).
    let outcome: Option<Option<i64>> = dispute
        .as_ref()
        .map(|d| d.try_get::<Option<i64>, _>("outcome"))
        .transpose()?;
    let passed = verdicts
        .iter()
        .map(|v| v.try_get::<bool, _>("matches"))
        .collect::<Result<Vec<_>, _>>()?
        .contains(&true);
    let missed = misses
        .iter()
        .map(|m| m.try_get::<i64, _>("kind"))
        .collect::<Result<Vec<_>, _>>()?
        .contains(&MISS_VERDICT);
    let state = if forced.is_some() {
        "forced_error"
    } else if let Some(o) = outcome {
        o.map_or("disputed", audit_state_name)
    } else if passed {
        "passed"
    } else if missed {
        "missed"
    } else {
        "none"
    };

    Ok(json!({
        "state": state,
        "seal": seal,
        "verdicts": verdicts.iter().map(verdict_json).collect::<Result<Vec<_>, _>>()?,
        "dispute": dispute.as_ref().map(dispute_json).transpose()?,
        "votes": votes.iter().map(|r| -> Result<Value, sqlx::Error> {
            Ok(with(json!({
                "validator": r.try_get::<String, _>("validator")?,
                "fraud": r.try_get::<bool, _>("fraud")?,
                "output_hash": r.try_get::<String, _>("output_hash")?,
            }), position(r)?))
        }).collect::<Result<Vec<_>, _>>()?,
        "canary": canary.as_ref().map(canary_json).transpose()?,
        "misses": misses.iter().map(|r| -> Result<Value, sqlx::Error> {
            let kind: i64 = r.try_get("kind")?;
            Ok(with(json!({
                "validator": r.try_get::<String, _>("validator")?,
                "kind": miss_kind_name(kind),
                "kind_value": kind,
            }), position(r)?))
        }).collect::<Result<Vec<_>, _>>()?,
        "forced_error": forced.as_ref().map(|r| -> Result<Value, sqlx::Error> {
            Ok(with(json!({
                "validator": r.try_get::<String, _>("validator")?,
                "caught_lazy": r.try_get::<bool, _>("caught_lazy")?,
            }), position(r)?))
        }).transpose()?,
        "slashes": slashes.iter().map(slash_json).collect::<Result<Vec<_>, _>>()?,
    }))
}

/// The `audits` object of `/nodes/{address}` (`key`: checksummed address): its record as a
/// worker (its results' verdicts, disputes and canary reports) and as a validator (verdicts
/// signed, votes, missed deadlines, false accusations, lazy approvals caught), plus its draw
/// weight.
pub async fn node_audits(pool: &SqlitePool, key: &str) -> Result<Value, sqlx::Error> {
    let r = sqlx::query(
        "SELECT
            (SELECT COUNT(*) FROM verdicts WHERE worker = ?1) AS audited,
            (SELECT COUNT(*) FROM verdicts WHERE worker = ?1 AND matches = 1) AS passed,
            (SELECT COUNT(*) FROM verdicts WHERE worker = ?1 AND matches = 0) AS failed,
            (SELECT COUNT(*) FROM disputes WHERE worker = ?1 AND opener != ?2) AS challenged,
            (SELECT COUNT(*) FROM disputes WHERE worker = ?1 AND outcome = ?3) AS fraud_proven,
            (SELECT COUNT(*) FROM disputes WHERE worker = ?1 AND outcome = ?4) AS cleared,
            (SELECT COUNT(*) FROM first_canaries WHERE worker = ?1) AS canaries,
            (SELECT COUNT(*) FROM first_canaries WHERE worker = ?1 AND matches = 1) AS canaries_passed,
            (SELECT COUNT(*) FROM verdicts WHERE validator = ?1) AS verdicts_signed,
            (SELECT COUNT(*) FROM dispute_votes WHERE validator = ?1) AS dispute_votes,
            (SELECT COUNT(*) FROM deadline_misses WHERE validator = ?1 AND kind = 0) AS missed_audits,
            (SELECT COUNT(*) FROM deadline_misses WHERE validator = ?1 AND kind = 1) AS missed_votes,
            (SELECT COUNT(*) FROM disputes WHERE accuser = ?1 AND opener = ?2 AND outcome = ?4) AS false_accusations,
            (SELECT COUNT(*) FROM forced_errors WHERE validator = ?1 AND caught_lazy = 1) AS lazy_caught,
            (SELECT weight FROM audit_validators WHERE address = ?1) AS validator_weight",
    )
    .bind(key)
    .bind(OPENER_VALIDATOR)
    .bind(OUTCOME_FRAUD)
    .bind(OUTCOME_CLEARED)
    .fetch_one(pool)
    .await?;
    let n = |k: &str| r.try_get::<i64, _>(k);
    Ok(json!({
        "audited": n("audited")?,
        "passed": n("passed")?,
        "failed": n("failed")?,
        "challenged": n("challenged")?,
        "fraud_proven": n("fraud_proven")?,
        "cleared": n("cleared")?,
        "canaries": n("canaries")?,
        "canaries_passed": n("canaries_passed")?,
        "verdicts_signed": n("verdicts_signed")?,
        "dispute_votes": n("dispute_votes")?,
        "missed_audits": n("missed_audits")?,
        "missed_votes": n("missed_votes")?,
        "false_accusations": n("false_accusations")?,
        "lazy_caught": n("lazy_caught")?,
        "validator_weight": r.try_get::<Option<String>, _>("validator_weight")?,
    }))
}

/// Every slash of `key`, oldest first.
pub async fn node_slashes(pool: &SqlitePool, key: &str) -> Result<Vec<Value>, sqlx::Error> {
    sqlx::query("SELECT * FROM slashes WHERE account = ? ORDER BY block_number, log_index")
        .bind(key)
        .fetch_all(pool)
        .await?
        .iter()
        .map(slash_json)
        .collect()
}

/// Filters of `GET /audits`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only verdicts on this worker's results (checksummed).
    pub worker: Option<String>,
    /// Only verdicts signed by this validator (checksummed).
    pub validator: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Verdicts to skip (newest first).
    pub offset: u64,
}

fn push_filters<'a>(q: &mut QueryBuilder<'a, Sqlite>, f: &'a AuditFilter) {
    q.push(" WHERE 1 = 1");
    if let Some(w) = &f.worker {
        q.push(" AND v.worker = ").push_bind(w.as_str());
    }
    if let Some(v) = &f.validator {
        q.push(" AND v.validator = ").push_bind(v.as_str());
    }
}

/// `GET /audits`: verdicts, newest first, each with the outcome of the dispute it opened.
pub async fn audits(pool: &SqlitePool, f: &AuditFilter) -> Result<Value, sqlx::Error> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT v.*, d.task_id AS dispute_task, d.outcome, d.fraud_votes, d.honest_votes, d.resolved_block
         FROM verdicts v LEFT JOIN disputes d ON d.task_id = v.task_id",
    );
    push_filters(&mut q, f);
    q.push(" ORDER BY v.block_number DESC, v.log_index DESC LIMIT ")
        .push_bind(i64::from(f.limit))
        .push(" OFFSET ")
        .push_bind(i64::try_from(f.offset).unwrap_or(i64::MAX));
    let rows = q.build().fetch_all(pool).await?;
    let mut c: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT COUNT(*) FROM verdicts v");
    push_filters(&mut c, f);
    let total: i64 = c.build_query_scalar().fetch_one(pool).await?;
    let audits = rows
        .iter()
        .map(|r| -> Result<Value, sqlx::Error> {
            let dispute = match r.try_get::<Option<i64>, _>("dispute_task")? {
                Some(_) => {
                    let outcome: Option<i64> = r.try_get("outcome")?;
                    json!({"outcome": outcome_name(outcome), "outcome_value": outcome,
                           "fraud_votes": r.try_get::<i64, _>("fraud_votes")?,
                           "honest_votes": r.try_get::<i64, _>("honest_votes")?,
                           "resolved_block": r.try_get::<Option<i64>, _>("resolved_block")?})
                }
                None => Value::Null,
            };
            Ok(with(verdict_json(r)?, json!({"dispute": dispute})))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"audits": audits, "total": total, "limit": f.limit, "offset": f.offset}))
}

/// `canary_accuracy` (matching first reports / first reports of the model's tasks, null without
/// any) and the counts behind it, for `/models/{id}`.
pub async fn model_canaries(pool: &SqlitePool, model_id: u32) -> Result<Value, sqlx::Error> {
    let (reports, matches): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), SUM(matches) FROM first_canaries WHERE model_id = ?")
            .bind(i64::from(model_id))
            .fetch_one(pool)
            .await?;
    let matches = matches.unwrap_or(0);
    Ok(json!({
        "reports": reports,
        "matches": matches,
        "accuracy": (reports > 0).then(|| matches as f64 / reports as f64),
    }))
}
