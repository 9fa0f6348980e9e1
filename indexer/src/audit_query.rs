//! Read queries of the validation layer behind the REST API: a task's audit record (`audit` of
//! `/tasks/{id}`), a node's audit record and slashes (`/nodes/{address}`), the `/audits` listing
//! and a model's canary accuracy. Same shape rules as [`crate::query`].

use crate::audit::{
    audit_state_name, miss_kind_name, opener_name, MISS_VERDICT, OPENER_VALIDATOR, OUTCOME_CLEARED,
    OUTCOME_FRAUD,
};
use crate::query::{SlashReason, StakeRole};
use crate::schema::{Address, Decimal, Hash, Wei};
use chainstore::sql::{Backend, Builder, Conn, DbRow, Pool};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row};
use utoipa::ToSchema;

const PPM: f64 = 1_000_000.0;

/// Where an event of the validation layer was logged.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Position {
    /// Block number.
    block: i64,
    log_index: i64,
    /// Transaction hash.
    #[schema(value_type = Hash)]
    tx: String,
    /// Unix time of the block.
    time: i64,
}

fn position(r: &DbRow) -> Result<Position, sqlx::Error> {
    Ok(Position {
        block: r.try_get("block_number")?,
        log_index: r.try_get("log_index")?,
        tx: r.try_get("tx_hash")?,
        time: r.try_get("block_time")?,
    })
}

/// A task's audit state (`IAuditManager.AuditState`, plus `missed`: a drawn validator let the
/// verdict deadline pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditState {
    /// Not drawn for an audit (yet).
    None,
    /// A drawn validator's verdict matched.
    Passed,
    /// A dispute is open.
    Disputed,
    /// The dispute resolved Fraud.
    Fraud,
    /// The dispute resolved Cleared.
    Cleared,
    /// The quorum did not decide.
    Undecided,
    /// A planted wrong result was revealed.
    ForcedError,
    /// The drawn validator let the verdict deadline pass.
    Missed,
    /// A state value unknown to this indexer version.
    Unknown,
}

impl AuditState {
    fn from_name(name: &str) -> Self {
        match name {
            "none" => Self::None,
            "passed" => Self::Passed,
            "disputed" => Self::Disputed,
            "fraud" => Self::Fraud,
            "cleared" => Self::Cleared,
            "undecided" => Self::Undecided,
            "forced_error" => Self::ForcedError,
            "missed" => Self::Missed,
            _ => Self::Unknown,
        }
    }
}

/// Outcome of a dispute: `open` while the quorum votes, else the AuditState it resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    /// The quorum is voting.
    Open,
    /// The worker's result was fraudulent.
    Fraud,
    /// The worker's result was honest.
    Cleared,
    /// The quorum did not decide.
    Undecided,
    /// The disputed result was a planted wrong one.
    ForcedError,
    /// An outcome value unknown to this indexer version.
    Unknown,
}

/// The outcome of a dispute whose stored outcome is `outcome` (None: still open).
fn outcome_of(outcome: Option<i64>) -> DisputeOutcome {
    match outcome.map(audit_state_name) {
        None => DisputeOutcome::Open,
        Some("fraud") => DisputeOutcome::Fraud,
        Some("cleared") => DisputeOutcome::Cleared,
        Some("undecided") => DisputeOutcome::Undecided,
        Some("forced_error") => DisputeOutcome::ForcedError,
        Some(_) => DisputeOutcome::Unknown,
    }
}

/// Who opened a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Opener {
    /// A drawn validator's mismatching verdict.
    Validator,
    /// A user's challenge.
    User,
    /// An opener value unknown to this indexer version.
    Unknown,
}

/// Which deadline a validator missed (`DeadlineMissed.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissKind {
    /// An audit verdict.
    Verdict,
    /// A dispute vote.
    DisputeVote,
    /// A kind value unknown to this indexer version.
    Unknown,
}

/// A drawn validator's signed verdict (VerdictAccepted).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Verdict {
    #[schema(value_type = Decimal)]
    task_id: String,
    /// Commit batch of the result (uint256, decimal).
    #[schema(value_type = Decimal)]
    batch_id: String,
    #[schema(value_type = Address)]
    validator: String,
    #[schema(value_type = Address)]
    worker: String,
    #[schema(value_type = Hash)]
    worker_output_hash: String,
    #[schema(value_type = Hash)]
    validator_output_hash: String,
    /// Quality of the worker's output in parts per million.
    #[schema(minimum = 0, maximum = 1000000)]
    quality_ppm: i64,
    /// `quality_ppm` / 1e6.
    quality: f64,
    /// The outputs match (a mismatch opens a dispute).
    matches: bool,
    #[serde(flatten)]
    at: Position,
}

fn verdict(r: &DbRow) -> Result<Verdict, sqlx::Error> {
    let q: i64 = r.try_get("quality_ppm")?;
    Ok(Verdict {
        task_id: r.try_get::<i64, _>("task_id")?.to_string(),
        batch_id: r.try_get("batch_id")?,
        validator: r.try_get("validator")?,
        worker: r.try_get("worker")?,
        worker_output_hash: r.try_get("worker_output_hash")?,
        validator_output_hash: r.try_get("validator_output_hash")?,
        quality_ppm: q,
        quality: q as f64 / PPM,
        matches: chainstore::sql::flag(r, "matches")?,
        at: position(r)?,
    })
}

/// The block, time and transaction a dispute resolved in.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Resolution {
    block: i64,
    time: Option<i64>,
    #[schema(value_type = Option<Hash>)]
    tx: Option<String>,
}

/// A dispute over a task's result, opened by a mismatch verdict or a user challenge.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Dispute {
    #[schema(value_type = Address)]
    worker: String,
    #[schema(value_type = Address)]
    accuser: String,
    opener: Opener,
    /// The drawn quorum (empty until drawQuorum, a block or more after the dispute opened).
    #[schema(value_type = Vec<Address>)]
    members: Vec<String>,
    /// Voting deadline (unix seconds).
    deadline: i64,
    outcome: DisputeOutcome,
    /// IAuditManager.AuditState: 3 Fraud, 4 Cleared, 5 Undecided, 6 ForcedError.
    outcome_value: Option<i64>,
    fraud_votes: i64,
    honest_votes: i64,
    opened: crate::query::TxRef,
    resolved: Option<Resolution>,
}

fn dispute(r: &DbRow) -> Result<Dispute, sqlx::Error> {
    let outcome: Option<i64> = r.try_get("outcome")?;
    let members: String = r.try_get("members")?;
    let resolved: Option<i64> = r.try_get("resolved_block")?;
    Ok(Dispute {
        worker: r.try_get("worker")?,
        accuser: r.try_get("accuser")?,
        opener: match opener_name(r.try_get("opener")?) {
            "validator" => Opener::Validator,
            "user" => Opener::User,
            _ => Opener::Unknown,
        },
        members: serde_json::from_str(&members).unwrap_or_default(),
        deadline: r.try_get("deadline")?,
        outcome: outcome_of(outcome),
        outcome_value: outcome,
        fraud_votes: r.try_get("fraud_votes")?,
        honest_votes: r.try_get("honest_votes")?,
        opened: crate::query::TxRef {
            block: r.try_get("opened_block")?,
            time: r.try_get("opened_time")?,
            tx: r.try_get("opened_tx")?,
        },
        resolved: match resolved {
            Some(block) => Some(Resolution {
                block,
                time: r.try_get("resolved_time")?,
                tx: r.try_get("resolved_tx")?,
            }),
            None => None,
        },
    })
}

/// A quorum member's vote on a dispute.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DisputeVote {
    #[schema(value_type = Address)]
    validator: String,
    /// It voted Fraud.
    fraud: bool,
    /// The output it computed.
    #[schema(value_type = Hash)]
    output_hash: String,
    #[serde(flatten)]
    at: Position,
}

/// A validator's known-answer task came back (the task's first CanaryReported).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CanaryReport {
    #[schema(value_type = Address)]
    validator: String,
    #[schema(value_type = Address)]
    worker: String,
    model_id: i64,
    #[schema(value_type = Hash)]
    expected_output_hash: String,
    matches: bool,
    quality_ppm: i64,
    quality: f64,
    #[serde(flatten)]
    at: Position,
}

fn canary(r: &DbRow) -> Result<CanaryReport, sqlx::Error> {
    let q: i64 = r.try_get("quality_ppm")?;
    Ok(CanaryReport {
        validator: r.try_get("validator")?,
        worker: r.try_get("worker")?,
        model_id: r.try_get("model_id")?,
        expected_output_hash: r.try_get("expected_output_hash")?,
        matches: chainstore::sql::flag(r, "matches")?,
        quality_ppm: q,
        quality: q as f64 / PPM,
        at: position(r)?,
    })
}

/// A validator let a deadline pass (DeadlineMissed).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValidatorMiss {
    #[schema(value_type = Address)]
    validator: String,
    kind: MissKind,
    kind_value: i64,
    #[serde(flatten)]
    at: Position,
}

/// ForcedErrorRevealed: the task's result was a planted wrong one.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ForcedError {
    #[schema(value_type = Address)]
    validator: String,
    /// The validator approved the planted wrong result.
    caught_lazy: bool,
    #[serde(flatten)]
    at: Position,
}

/// Audit randomness and rate of the task's batch (BatchSealed).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Seal {
    /// Commit batch of the result (uint256, decimal).
    #[schema(value_type = Decimal)]
    batch_id: String,
    #[schema(value_type = Hash)]
    randomness: String,
    /// Audit probability as a WAD.
    #[schema(value_type = Decimal)]
    p_wad: String,
    /// Audit probability.
    p: f64,
    /// Every task of the batch is audited.
    full: bool,
    #[serde(flatten)]
    at: Position,
}

/// Staking.Slashed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Slash {
    role: StakeRole,
    /// 1 fraud, 2 false accusation, 3 lazy validator, 4 missed audit, 5 minority vote, 6 report
    /// equivocation.
    reason: i64,
    reason_name: SlashReason,
    #[schema(value_type = Wei)]
    amount: String,
    #[schema(value_type = Address)]
    beneficiary: String,
    /// Paid to the beneficiary.
    #[schema(value_type = Wei)]
    rewarded: String,
    #[schema(value_type = Wei)]
    burned: String,
    /// The disputed or forced-error task the slash settled.
    #[schema(value_type = Option<Decimal>)]
    task_id: Option<String>,
    block: i64,
    #[schema(value_type = Hash)]
    tx: String,
    time: i64,
}

/// One `slashes` row, as [`Slash`] shows it.
#[derive(Debug, FromRow, Deserialize)]
pub(crate) struct SlashRow {
    role: i64,
    reason: i64,
    amount: String,
    beneficiary: String,
    rewarded: String,
    burned: String,
    task_id: Option<i64>,
    block_number: i64,
    tx_hash: String,
    block_time: i64,
}

impl From<SlashRow> for Slash {
    fn from(r: SlashRow) -> Self {
        Slash {
            role: StakeRole::from_value(r.role),
            reason: r.reason,
            reason_name: SlashReason::from_value(r.reason),
            amount: r.amount,
            beneficiary: r.beneficiary,
            rewarded: r.rewarded,
            burned: r.burned,
            task_id: r.task_id.map(|t| t.to_string()),
            block: r.block_number,
            tx: r.tx_hash,
            time: r.block_time,
        }
    }
}

/// The task's audit record in the validation layer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskAudit {
    /// IAuditManager.AuditState of the task.
    state: AuditState,
    seal: Option<Seal>,
    verdicts: Vec<Verdict>,
    dispute: Option<Dispute>,
    votes: Vec<DisputeVote>,
    canary: Option<CanaryReport>,
    misses: Vec<ValidatorMiss>,
    forced_error: Option<ForcedError>,
    slashes: Vec<Slash>,
}

/// The `audit` object of `/tasks/{id}`: the audit state (as `IAuditManager.AuditState` names
/// it), the batch's seal, verdicts, the dispute with its votes, the canary report, validators'
/// missed deadlines, a revealed forced error and the slashes it caused. Read on the caller's
/// connection, so that a read transaction gives the task and its audit from one snapshot.
pub async fn task_audit(
    conn: &mut Conn,
    task_id: i64,
    batch_id: Option<&str>,
) -> Result<TaskAudit, sqlx::Error> {
    let seal = match batch_id {
        Some(b) => sqlx::query(chainstore::sql!(
            "SELECT * FROM batch_seals WHERE batch_id = ?"
        ))
        .bind(b)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| -> Result<Seal, sqlx::Error> {
            let p: String = r.try_get("p_wad")?;
            Ok(Seal {
                batch_id: r.try_get("batch_id")?,
                randomness: r.try_get("randomness")?,
                p: p.parse::<f64>().unwrap_or(0.0) / 1e18,
                p_wad: p,
                full: chainstore::sql::flag(&r, "full_audit")?,
                at: position(&r)?,
            })
        })
        .transpose()?,
        None => None,
    };
    let verdicts = sqlx::query(chainstore::sql!(
        "SELECT * FROM verdicts WHERE task_id = ? ORDER BY block_number, log_index"
    ))
    .bind(task_id)
    .fetch_all(&mut *conn)
    .await?;
    let dispute_row = sqlx::query(chainstore::sql!("SELECT * FROM disputes WHERE task_id = ?"))
        .bind(task_id)
        .fetch_optional(&mut *conn)
        .await?;
    let votes = sqlx::query(chainstore::sql!(
        "SELECT * FROM dispute_votes WHERE task_id = ? ORDER BY block_number, log_index"
    ))
    .bind(task_id)
    .fetch_all(&mut *conn)
    .await?;
    let canary_row = sqlx::query(chainstore::sql!(
        "SELECT * FROM first_canaries WHERE task_id = ?"
    ))
    .bind(task_id)
    .fetch_optional(&mut *conn)
    .await?;
    let misses = sqlx::query(chainstore::sql!(
        "SELECT * FROM deadline_misses WHERE task_id = ? ORDER BY block_number, log_index"
    ))
    .bind(task_id)
    .fetch_all(&mut *conn)
    .await?;
    let forced = sqlx::query(chainstore::sql!(
        "SELECT * FROM forced_errors WHERE task_id = ? ORDER BY block_number, log_index LIMIT 1"
    ))
    .bind(task_id)
    .fetch_optional(&mut *conn)
    .await?;
    let slashes: Vec<SlashRow> = sqlx::query_as(chainstore::sql!(
        "SELECT * FROM slashes WHERE task_id = ? ORDER BY block_number, log_index"
    ))
    .bind(task_id)
    .fetch_all(&mut *conn)
    .await?;

    // The record's state, as AuditManager keeps it (latest transition wins).
    let outcome: Option<Option<i64>> = dispute_row
        .as_ref()
        .map(|d| d.try_get::<Option<i64>, _>("outcome"))
        .transpose()?;
    let passed = verdicts
        .iter()
        .map(|v| chainstore::sql::flag(v, "matches"))
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

    Ok(TaskAudit {
        state: AuditState::from_name(state),
        seal,
        verdicts: verdicts.iter().map(verdict).collect::<Result<_, _>>()?,
        dispute: dispute_row.as_ref().map(dispute).transpose()?,
        votes: votes
            .iter()
            .map(|r| -> Result<DisputeVote, sqlx::Error> {
                Ok(DisputeVote {
                    validator: r.try_get("validator")?,
                    fraud: chainstore::sql::flag(r, "fraud")?,
                    output_hash: r.try_get("output_hash")?,
                    at: position(r)?,
                })
            })
            .collect::<Result<_, _>>()?,
        canary: canary_row.as_ref().map(canary).transpose()?,
        misses: misses
            .iter()
            .map(|r| -> Result<ValidatorMiss, sqlx::Error> {
                let kind: i64 = r.try_get("kind")?;
                Ok(ValidatorMiss {
                    validator: r.try_get("validator")?,
                    kind: match miss_kind_name(kind) {
                        "verdict" => MissKind::Verdict,
                        "dispute_vote" => MissKind::DisputeVote,
                        _ => MissKind::Unknown,
                    },
                    kind_value: kind,
                    at: position(r)?,
                })
            })
            .collect::<Result<_, _>>()?,
        forced_error: forced
            .as_ref()
            .map(|r| -> Result<ForcedError, sqlx::Error> {
                Ok(ForcedError {
                    validator: r.try_get("validator")?,
                    caught_lazy: chainstore::sql::flag(r, "caught_lazy")?,
                    at: position(r)?,
                })
            })
            .transpose()?,
        slashes: slashes.into_iter().map(Slash::from).collect(),
    })
}

/// A node's audit record: as a worker (its results) and as a validator.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeAudits {
    /// Verdicts on its results.
    audited: i64,
    /// Of those, matching.
    passed: i64,
    /// Of those, mismatching (a dispute opened).
    failed: i64,
    /// User challenges of its results.
    challenged: i64,
    /// Disputes over its results resolved Fraud.
    fraud_proven: i64,
    /// Disputes over its results resolved Cleared.
    cleared: i64,
    /// Canary reports on its results (first report per task).
    canaries: i64,
    /// Of those, matching.
    canaries_passed: i64,
    /// As validator: verdicts signed.
    verdicts_signed: i64,
    /// As quorum member: votes cast.
    dispute_votes: i64,
    /// As validator: drawn audits without a verdict.
    missed_audits: i64,
    /// As quorum member: disputes it did not vote on.
    missed_votes: i64,
    /// Its mismatch verdicts the quorum cleared.
    false_accusations: i64,
    /// Forced errors it approved.
    lazy_caught: i64,
    /// Audit draw weight (null: never joined).
    validator_weight: Option<String>,
}

/// The `audits` object of `/nodes/{address}` as columns of the node's row (`?1`: its checksummed
/// address; read by [`node_audits`]): its record as a worker (its results' verdicts, disputes and
/// canary reports) and as a validator (verdicts signed, votes, missed deadlines, false
/// accusations, lazy approvals caught), plus its draw weight.
pub(crate) fn node_audits_columns() -> String {
    format!(
        "(SELECT COUNT(*) FROM verdicts WHERE worker = ?1) AS audited,
        (SELECT COUNT(*) FROM verdicts WHERE worker = ?1 AND matches = 1) AS passed,
        (SELECT COUNT(*) FROM verdicts WHERE worker = ?1 AND matches = 0) AS failed_audits,
        (SELECT COUNT(*) FROM disputes WHERE worker = ?1 AND opener != {OPENER_VALIDATOR}) AS challenged,
        (SELECT COUNT(*) FROM disputes WHERE worker = ?1 AND outcome = {OUTCOME_FRAUD}) AS fraud_proven,
        (SELECT COUNT(*) FROM disputes WHERE worker = ?1 AND outcome = {OUTCOME_CLEARED}) AS cleared,
        (SELECT COUNT(*) FROM first_canaries WHERE worker = ?1) AS canaries,
        (SELECT COUNT(*) FROM first_canaries WHERE worker = ?1 AND matches = 1) AS canaries_passed,
        (SELECT COUNT(*) FROM verdicts WHERE validator = ?1) AS verdicts_signed,
        (SELECT COUNT(*) FROM dispute_votes WHERE validator = ?1) AS dispute_votes,
        (SELECT COUNT(*) FROM deadline_misses WHERE validator = ?1 AND kind = 0) AS missed_audits,
        (SELECT COUNT(*) FROM deadline_misses WHERE validator = ?1 AND kind = 1) AS missed_votes,
        (SELECT COUNT(*) FROM disputes
            WHERE accuser = ?1 AND opener = {OPENER_VALIDATOR} AND outcome = {OUTCOME_CLEARED}) AS false_accusations,
        (SELECT COUNT(*) FROM forced_errors WHERE validator = ?1 AND caught_lazy = 1) AS lazy_caught,
        (SELECT weight FROM audit_validators WHERE address = ?1) AS validator_weight"
    )
}

/// The `audits` object of a row with [`node_audits_columns`].
pub(crate) fn node_audits(r: &DbRow) -> Result<NodeAudits, sqlx::Error> {
    let n = |k: &str| r.try_get::<i64, _>(k);
    Ok(NodeAudits {
        audited: n("audited")?,
        passed: n("passed")?,
        failed: n("failed_audits")?,
        challenged: n("challenged")?,
        fraud_proven: n("fraud_proven")?,
        cleared: n("cleared")?,
        canaries: n("canaries")?,
        canaries_passed: n("canaries_passed")?,
        verdicts_signed: n("verdicts_signed")?,
        dispute_votes: n("dispute_votes")?,
        missed_audits: n("missed_audits")?,
        missed_votes: n("missed_votes")?,
        false_accusations: n("false_accusations")?,
        lazy_caught: n("lazy_caught")?,
        validator_weight: r.try_get("validator_weight")?,
    })
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

fn push_filters<'a>(q: &mut Builder<'a>, f: &'a AuditFilter) {
    q.push(" WHERE 1 = 1");
    if let Some(w) = &f.worker {
        q.push(" AND v.worker = ").push_bind(w.as_str());
    }
    if let Some(v) = &f.validator {
        q.push(" AND v.validator = ").push_bind(v.as_str());
    }
}

/// The outcome of the dispute a verdict opened.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VerdictDispute {
    outcome: DisputeOutcome,
    /// IAuditManager.AuditState: 3 Fraud, 4 Cleared, 5 Undecided, 6 ForcedError.
    outcome_value: Option<i64>,
    fraud_votes: i64,
    honest_votes: i64,
    resolved_block: Option<i64>,
}

/// A verdict with the outcome of the dispute it opened.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    #[serde(flatten)]
    verdict: Verdict,
    /// The dispute a mismatching verdict opened (null: none).
    dispute: Option<VerdictDispute>,
}

/// A page of verdicts, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditPage {
    audits: Vec<AuditEntry>,
    /// Verdicts matching the filters.
    total: i64,
    limit: u32,
    offset: u64,
}

/// `GET /audits`: verdicts, newest first, each with the outcome of the dispute it opened.
pub async fn audits(pool: &Pool, f: &AuditFilter) -> Result<AuditPage, sqlx::Error> {
    let backend = Backend::of_pool(pool);
    let mut q: Builder = Builder::new(
        backend,
        "SELECT v.*, d.task_id AS dispute_task, d.outcome, d.fraud_votes, d.honest_votes, d.resolved_block
         FROM verdicts v LEFT JOIN disputes d ON d.task_id = v.task_id",
    );
    push_filters(&mut q, f);
    q.push(" ORDER BY v.block_number DESC, v.log_index DESC LIMIT ")
        .push_bind(i64::from(f.limit))
        .push(" OFFSET ")
        .push_bind(i64::try_from(f.offset).unwrap_or(i64::MAX));
    let rows = q.build().fetch_all(pool).await?;
    let mut c: Builder = Builder::new(backend, "SELECT COUNT(*) FROM verdicts v");
    push_filters(&mut c, f);
    let total: i64 = c.build_query_scalar().fetch_one(pool).await?;
    let audits = rows
        .iter()
        .map(|r| -> Result<AuditEntry, sqlx::Error> {
            let dispute = match r.try_get::<Option<i64>, _>("dispute_task")? {
                Some(_) => {
                    let outcome: Option<i64> = r.try_get("outcome")?;
                    Some(VerdictDispute {
                        outcome: outcome_of(outcome),
                        outcome_value: outcome,
                        fraud_votes: r.try_get("fraud_votes")?,
                        honest_votes: r.try_get("honest_votes")?,
                        resolved_block: r.try_get("resolved_block")?,
                    })
                }
                None => None,
            };
            Ok(AuditEntry {
                verdict: verdict(r)?,
                dispute,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AuditPage {
        audits,
        total,
        limit: f.limit,
        offset: f.offset,
    })
}

/// Canary reports of a model's tasks (first report per task), over all time.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelCanaries {
    reports: i64,
    /// Of those, matching.
    matches: i64,
    /// `matches / reports`; null without reports.
    pub(crate) accuracy: Option<f64>,
}

/// `canary_accuracy` (matching first reports / first reports of the model's tasks, null without
/// any) and the counts behind it, for `/models/{id}`.
pub async fn model_canaries(pool: &Pool, model_id: u32) -> Result<ModelCanaries, sqlx::Error> {
    let (reports, matches): (i64, Option<i64>) = sqlx::query_as(chainstore::sql!(
        "SELECT COUNT(*), CAST(SUM(matches) AS BIGINT) FROM first_canaries WHERE model_id = ?"
    ))
    .bind(i64::from(model_id))
    .fetch_one(pool)
    .await?;
    let matches = matches.unwrap_or(0);
    Ok(ModelCanaries {
        reports,
        matches,
        accuracy: (reports > 0).then(|| matches as f64 / reports as f64),
    })
}
