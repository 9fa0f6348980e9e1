//! The validation layer's events (AuditManager) turned into rows: batch seals, the validator set,
//! verdicts, disputes with their votes, missed deadlines, forced errors and canary reports. Each
//! also lands in the task's `task_events` trail. Called by `ingest::apply`, so a reorg rollback
//! rebuilds these tables by replaying `events` like the others.

use crate::ingest::{addr, ensure_node, i64_of, task_event, task_key, RawLog};
use crate::sql::Conn;
use alloy::primitives::{B256, U256};
use protocol::bindings::IAuditManager::IAuditManagerEvents;
use serde_json::{json, Value};

/// `IAuditManager.AuditState` values a dispute resolves to.
pub const OUTCOME_FRAUD: i64 = 3;
/// Quorum found no fraud: the accusing validator is slashed (or the user's bond lost).
pub const OUTCOME_CLEARED: i64 = 4;
/// Quorum tied or nobody voted: nobody slashed.
pub const OUTCOME_UNDECIDED: i64 = 5;
/// The disputed task was a planted forced error (revealed).
pub const OUTCOME_FORCED_ERROR: i64 = 6;

/// `IAuditManager.Opener`: a drawn validator's mismatch verdict.
pub const OPENER_VALIDATOR: i64 = 0;
/// `IAuditManager.Opener`: the task's submitter challenged with a bond.
pub const OPENER_USER: i64 = 1;

/// `DeadlineMissed.kind`: the drawn validator posted no verdict in the challenge window.
pub const MISS_VERDICT: i64 = 0;
/// `DeadlineMissed.kind`: a quorum member did not vote before the dispute deadline.
pub const MISS_VOTE: i64 = 1;

/// Name of an `IAuditManager.AuditState` value.
pub fn audit_state_name(state: i64) -> &'static str {
    match state {
        0 => "none",
        1 => "passed",
        2 => "disputed",
        OUTCOME_FRAUD => "fraud",
        OUTCOME_CLEARED => "cleared",
        OUTCOME_UNDECIDED => "undecided",
        OUTCOME_FORCED_ERROR => "forced_error",
        7 => "missed",
        _ => "unknown",
    }
}

/// Name of a dispute opener.
pub fn opener_name(opener: i64) -> &'static str {
    match opener {
        OPENER_VALIDATOR => "validator",
        OPENER_USER => "user",
        _ => "unknown",
    }
}

/// Name of a `DeadlineMissed.kind`.
pub fn miss_kind_name(kind: i64) -> &'static str {
    match kind {
        MISS_VERDICT => "verdict",
        MISS_VOTE => "dispute_vote",
        _ => "unknown",
    }
}

fn hex32(h: B256) -> String {
    h.to_string()
}

/// Event name and decoded fields as JSON (addresses checksummed, amounts decimal strings).
pub fn describe(event: &IAuditManagerEvents) -> (&'static str, Value) {
    use IAuditManagerEvents as A;
    match event {
        A::ValidatorJoined(e) => (
            "ValidatorJoined",
            json!({"validator": addr(e.validator), "weight": e.weight.to_string()}),
        ),
        A::ValidatorWeightUpdated(e) => (
            "ValidatorWeightUpdated",
            json!({"validator": addr(e.validator), "weight": e.weight.to_string()}),
        ),
        A::BatchSealed(e) => (
            "BatchSealed",
            json!({"batchId": e.batchId.to_string(), "worker": addr(e.worker), "randomness": hex32(e.randomness),
                   "pWad": e.pWad.to_string(), "full": e.full}),
        ),
        A::VerdictAccepted(e) => (
            "VerdictAccepted",
            json!({"taskId": e.taskId.to_string(), "batchId": e.batchId.to_string(), "validator": addr(e.validator),
                   "worker": addr(e.worker), "workerOutputHash": hex32(e.workerOutputHash),
                   "validatorOutputHash": hex32(e.validatorOutputHash), "qualityPpm": e.qualityPpm,
                   "matches": e.matches}),
        ),
        A::DisputeOpened(e) => (
            "DisputeOpened",
            json!({"taskId": e.taskId.to_string(), "worker": addr(e.worker), "accuser": addr(e.accuser),
                   "opener": e.opener, "quorumBlock": e.quorumBlock, "deadline": e.deadline}),
        ),
        A::QuorumDrawn(e) => (
            "QuorumDrawn",
            json!({"taskId": e.taskId.to_string(),
                   "members": e.members.iter().map(|m| addr(*m)).collect::<Vec<_>>(),
                   "deadline": e.deadline}),
        ),
        A::QuorumDeferred(e) => (
            "QuorumDeferred",
            json!({"taskId": e.taskId.to_string(), "quorumBlock": e.quorumBlock, "deadline": e.deadline}),
        ),
        A::VerdictSkipped(e) => (
            "VerdictSkipped",
            json!({"taskId": e.taskId.to_string(), "state": e.state}),
        ),
        A::DisputeVoted(e) => (
            "DisputeVoted",
            json!({"taskId": e.taskId.to_string(), "validator": addr(e.validator), "fraud": e.fraud,
                   "outputHash": hex32(e.outputHash)}),
        ),
        A::DisputeResolved(e) => (
            "DisputeResolved",
            json!({"taskId": e.taskId.to_string(), "outcome": e.outcome, "fraudVotes": e.fraudVotes,
                   "honestVotes": e.honestVotes}),
        ),
        A::DeadlineMissed(e) => (
            "DeadlineMissed",
            json!({"taskId": e.taskId.to_string(), "validator": addr(e.validator), "kind": e.kind}),
        ),
        A::ForcedErrorPlanted(e) => (
            "ForcedErrorPlanted",
            json!({"commitment": hex32(e.commitment), "planter": addr(e.planter)}),
        ),
        A::ForcedErrorRevealed(e) => (
            "ForcedErrorRevealed",
            json!({"taskId": e.taskId.to_string(), "validator": addr(e.validator), "caughtLazy": e.caughtLazy}),
        ),
        A::CanaryReported(e) => (
            "CanaryReported",
            json!({"taskId": e.taskId.to_string(), "worker": addr(e.worker), "modelId": e.modelId,
                   "validator": addr(e.validator), "expectedOutputHash": hex32(e.expectedOutputHash),
                   "matches": e.matches, "qualityPpm": e.qualityPpm}),
        ),
        A::ParamsSet(e) => {
            let p = &e.params;
            (
                "ParamsSet",
                json!({"p0Wad": p.p0Wad.to_string(), "pMinWad": p.pMinWad.to_string(),
                       "disputeWindow": p.disputeWindow, "quorum": p.quorum, "fraudSlashBps": p.fraudSlashBps,
                       "falseAccusationSlashBps": p.falseAccusationSlashBps, "lazySlashBps": p.lazySlashBps,
                       "rewardBps": p.rewardBps, "challengeBond": U256::from(p.challengeBond).to_string(),
                       "minoritySlashBps": p.minoritySlashBps}),
            )
        }
    }
}

/// Position of the log (the columns every audit table starts with).
struct At<'a> {
    block: i64,
    index: i64,
    tx: String,
    time: i64,
    log: &'a RawLog,
}

impl<'a> At<'a> {
    fn of(log: &'a RawLog) -> Self {
        Self {
            block: i64_of(log.block_number),
            index: i64_of(log.log_index),
            tx: log.tx_hash.to_string(),
            time: i64_of(log.block_time),
            log,
        }
    }
}

/// Applies one AuditManager event to the derived tables.
pub async fn apply(
    conn: &mut Conn,
    log: &RawLog,
    event: &IAuditManagerEvents,
) -> Result<(), sqlx::Error> {
    use IAuditManagerEvents as A;
    let at = At::of(log);
    match event {
        A::ValidatorJoined(e) => {
            ensure_node(conn, e.validator, log.block_number).await?;
            sqlx::query(
                crate::sql!("INSERT INTO audit_validators (address, weight, joined_block, joined_tx, updated_block)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (address) DO UPDATE SET weight = excluded.weight, updated_block = excluded.updated_block"),
            )
            .bind(addr(e.validator))
            .bind(e.weight.to_string())
            .bind(at.block)
            .bind(&at.tx)
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
        }
        A::ValidatorWeightUpdated(e) => {
            sqlx::query(crate::sql!(
                "UPDATE audit_validators SET weight = ?, updated_block = ? WHERE address = ?"
            ))
            .bind(e.weight.to_string())
            .bind(at.block)
            .bind(addr(e.validator))
            .execute(&mut *conn)
            .await?;
        }
        A::BatchSealed(e) => {
            sqlx::query(
                crate::sql!("INSERT INTO batch_seals (batch_id, worker, randomness, p_wad, full_audit, block_number, log_index,
                     tx_hash, block_time)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id) DO NOTHING"),
            )
            .bind(e.batchId.to_string())
            .bind(addr(e.worker))
            .bind(hex32(e.randomness))
            .bind(e.pWad.to_string())
            .bind(i64::from(e.full))
            .bind(at.block)
            .bind(at.index)
            .bind(&at.tx)
            .bind(at.time)
            .execute(&mut *conn)
            .await?;
        }
        A::VerdictAccepted(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            ensure_node(conn, e.validator, log.block_number).await?;
            sqlx::query(
                crate::sql!("INSERT INTO verdicts (block_number, log_index, tx_hash, block_time, task_id, batch_id, validator, worker,
                     worker_output_hash, validator_output_hash, quality_ppm, matches)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(at.block)
            .bind(at.index)
            .bind(&at.tx)
            .bind(at.time)
            .bind(id)
            .bind(e.batchId.to_string())
            .bind(addr(e.validator))
            .bind(addr(e.worker))
            .bind(hex32(e.workerOutputHash))
            .bind(hex32(e.validatorOutputHash))
            .bind(i64::from(e.qualityPpm))
            .bind(i64::from(e.matches))
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                at.log,
                id,
                "verdict",
                Some(e.worker),
                json!({"validator": addr(e.validator), "batchId": e.batchId.to_string(), "matches": e.matches,
                       "qualityPpm": e.qualityPpm, "validatorOutputHash": hex32(e.validatorOutputHash)}),
            )
            .await?;
        }
        A::DisputeOpened(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            // the quorum is drawn later (QuorumDrawn): members start empty
            sqlx::query(
                crate::sql!("INSERT INTO disputes (task_id, worker, accuser, opener, members, deadline, opened_block, opened_time,
                     opened_tx)
                 VALUES (?, ?, ?, ?, '[]', ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING"),
            )
            .bind(id)
            .bind(addr(e.worker))
            .bind(addr(e.accuser))
            .bind(i64::from(e.opener))
            .bind(i64_of(e.deadline))
            .bind(at.block)
            .bind(at.time)
            .bind(&at.tx)
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                at.log,
                id,
                "dispute_opened",
                Some(e.worker),
                json!({"accuser": addr(e.accuser), "opener": opener_name(i64::from(e.opener)),
                       "quorumBlock": e.quorumBlock, "deadline": e.deadline}),
            )
            .await?;
        }
        A::QuorumDrawn(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            let members: Vec<String> = e.members.iter().map(|m| addr(*m)).collect();
            sqlx::query(crate::sql!(
                "UPDATE disputes SET members = ?, deadline = ? WHERE task_id = ?"
            ))
            .bind(Value::from(members.clone()).to_string())
            .bind(i64_of(e.deadline))
            .bind(id)
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                at.log,
                id,
                "quorum_drawn",
                None,
                json!({"members": members, "deadline": e.deadline}),
            )
            .await?;
        }
        A::QuorumDeferred(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            sqlx::query(crate::sql!(
                "UPDATE disputes SET deadline = ? WHERE task_id = ?"
            ))
            .bind(i64_of(e.deadline))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        A::VerdictSkipped(_) => {}
        A::DisputeVoted(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            sqlx::query(
                crate::sql!("INSERT INTO dispute_votes (block_number, log_index, tx_hash, block_time, task_id, validator, fraud,
                     output_hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(at.block)
            .bind(at.index)
            .bind(&at.tx)
            .bind(at.time)
            .bind(id)
            .bind(addr(e.validator))
            .bind(i64::from(e.fraud))
            .bind(hex32(e.outputHash))
            .execute(&mut *conn)
            .await?;
            let column = if e.fraud {
                "fraud_votes"
            } else {
                "honest_votes"
            };
            sqlx::query(&crate::sql::numbered(&format!(
                "UPDATE disputes SET {column} = {column} + 1 WHERE task_id = ? AND outcome IS NULL"
            )))
            .bind(id)
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                at.log,
                id,
                "dispute_vote",
                None,
                json!({"validator": addr(e.validator), "fraud": e.fraud, "outputHash": hex32(e.outputHash)}),
            )
            .await?;
        }
        A::DisputeResolved(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            let rows = sqlx::query(
                crate::sql!("UPDATE disputes SET outcome = ?, fraud_votes = ?, honest_votes = ?, resolved_block = ?,
                     resolved_time = ?, resolved_tx = ?
                 WHERE task_id = ?"),
            )
            .bind(i64::from(e.outcome))
            .bind(i64::from(e.fraudVotes))
            .bind(i64::from(e.honestVotes))
            .bind(at.block)
            .bind(at.time)
            .bind(&at.tx)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if rows == 0 {
                tracing::warn!(
                    task_id = id,
                    "DisputeResolved for a dispute opened before the indexed range; ignored"
                );
            }
            task_event(
                conn,
                at.log,
                id,
                "dispute_resolved",
                None,
                json!({"outcome": audit_state_name(i64::from(e.outcome)), "fraudVotes": e.fraudVotes,
                       "honestVotes": e.honestVotes}),
            )
            .await?;
        }
        A::DeadlineMissed(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            ensure_node(conn, e.validator, log.block_number).await?;
            sqlx::query(
                crate::sql!("INSERT INTO deadline_misses (block_number, log_index, tx_hash, block_time, task_id, validator, kind)
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(at.block)
            .bind(at.index)
            .bind(&at.tx)
            .bind(at.time)
            .bind(id)
            .bind(addr(e.validator))
            .bind(i64::from(e.kind))
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                at.log,
                id,
                "validator_missed",
                None,
                json!({"validator": addr(e.validator), "kind": miss_kind_name(i64::from(e.kind))}),
            )
            .await?;
        }
        // Kept raw in `events`: the commitment names no task until it is revealed.
        A::ForcedErrorPlanted(_) => {}
        A::ForcedErrorRevealed(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            sqlx::query(
                crate::sql!("INSERT INTO forced_errors (block_number, log_index, tx_hash, block_time, task_id, validator, caught_lazy)
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(at.block)
            .bind(at.index)
            .bind(&at.tx)
            .bind(at.time)
            .bind(id)
            .bind(addr(e.validator))
            .bind(i64::from(e.caughtLazy))
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                at.log,
                id,
                "forced_error_revealed",
                None,
                json!({"validator": addr(e.validator), "caughtLazy": e.caughtLazy}),
            )
            .await?;
        }
        A::CanaryReported(e) => {
            let Some(id) = task_key(e.taskId) else {
                return Ok(());
            };
            sqlx::query(
                crate::sql!("INSERT INTO canaries (block_number, log_index, tx_hash, block_time, task_id, worker, model_id, validator,
                     expected_output_hash, matches, quality_ppm)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(at.block)
            .bind(at.index)
            .bind(&at.tx)
            .bind(at.time)
            .bind(id)
            .bind(addr(e.worker))
            .bind(i64::from(e.modelId))
            .bind(addr(e.validator))
            .bind(hex32(e.expectedOutputHash))
            .bind(i64::from(e.matches))
            .bind(i64::from(e.qualityPpm))
            .execute(&mut *conn)
            .await?;
            task_event(
                conn,
                at.log,
                id,
                "canary",
                Some(e.worker),
                json!({"validator": addr(e.validator), "modelId": e.modelId, "matches": e.matches,
                       "qualityPpm": e.qualityPpm, "expectedOutputHash": hex32(e.expectedOutputHash)}),
            )
            .await?;
        }
        A::ParamsSet(_) => {}
    }
    Ok(())
}
