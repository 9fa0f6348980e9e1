//! PoWR epochs: gathers one epoch's facts from the confirmed events in the database
//! ([`gather_facts`] -> `protocol::epoch::EpochFacts`), runs the pure `protocol::epoch::compute`
//! over them and keeps the history (store, reorg invalidation). The rules below are implemented
//! in `protocol::epoch` (the policy) and `protocol::powr` (the formulas); this module only reads
//! the facts.
//!
//! [`compute_epoch`] is the function every validator runs: its result is a pure function of
//! (the events of confirmed blocks in the database, the [`EpochConfig`], the epoch number), so
//! two indexers fed the same chain produce the same report byte for byte. The verifier calls it
//! on its own database.
//!
//! # Facts of epoch `e`
//! Epoch `e` spans block times `[genesis + e·len, genesis + (e+1)·len)`.
//! - **assigned**: `TaskAssigned` events of the worker with a block time in the epoch (a
//!   reassigned task counts once per assignment, for the worker it was assigned to);
//! - **on_time**: of those, the ones the same worker committed (`ResultsCommitted`) with a result
//!   or an input fault (codes 0-3; a worker-side failure code counts against completion like a
//!   miss) in a block no later than the assignment's deadline; **latency** = commit time -
//!   assignment time.
//!   Because a deadline may fall after the epoch's end, the epoch's facts run until
//!   `facts_until = max(end - 1, latest deadline of its assignments)` and the epoch can only be
//!   computed once the database is indexed past that time (about one response window after
//!   the end);
//! - **uptime**: over the last `uptime_window` epochs (this one included), the epochs in which the
//!   worker had work (an assignment or a commit) form the window, and those with a commit count
//!   as up (there is no heartbeat event yet);
//! - **audited / passed / quality_sum** (added to the worker's decayed audit record, whose
//!   `(quality + 1)/(audited + 1)` is the accuracy, `protocol::epoch::AuditRecord`): the
//!   judgements of the worker's results that became known in the epoch (block time in
//!   `[start, end)`), each counted once, in the epoch it was made:
//!   - a matching `VerdictAccepted`: audited, passed, its `qualityPpm`;
//!   - a dispute over the worker's result (mismatch verdict or user challenge) resolved
//!     `Fraud`: audited, quality 0; resolved `Cleared`: audited, passed, quality 1.0 (the quorum
//!     upheld the result). `Undecided` and `ForcedError` outcomes are no evidence about the
//!     worker and do not count;
//!   - a `CanaryReported` (a task's first report only): audited; if it matches, passed with its
//!     `qualityPpm`, else quality 0.
//!
//!   A verdict arrives up to a challenge window after the commit; attributing it to the epoch
//!   in which it was posted (rather than the commit's epoch) counts every judgement exactly once
//!   without holding an epoch back for verdicts that may never come. Judgements made while the
//!   worker is idle (no assignment) leave its trust unchanged like any idle epoch, except a
//!   proven fraud;
//! - **slashed**: a `Slashed` event of the address (any role, any reason) in the epoch, or a
//!   dispute over its result resolved `Fraud` in the epoch (also when nothing was left to slash):
//!   trust 0 for `PowrParams::slash_zero_epochs` epochs, this one included;
//! - **PoWR work**: `TaskFinalized` events of the worker in the epoch, each worth
//!   `computeUnits · quality`. Quality is 0 for a failure code (a refused input is no worthy
//!   result); for an audited result (a judgement above with a block time before the epoch's end)
//!   the judgement's quality (the lowest, if a verdict and a canary both judged it); for an
//!   unaudited result the worker's accuracy estimate `a` of this epoch (`protocol::powr`),
//!   scaled by the event's `quality` when that is below 1.0 (`TaskManager` emits 1.0).
//!
//! - **probes** (formula version 5): when probe emission is on (the last
//!   `ProbeRegistry.ProbeEmissionSet` before the epoch's end says so), a probe is a task whose
//!   submitter the prober revealed for the epoch the task was submitted in
//!   (`ProbesRevealed(ep, submitter)` with a block time in `[end(ep), end(ep) - 1 +
//!   responseWindow]`, the prober's time to reveal; `facts_until` is then at least `end - 1 +
//!   responseWindow`). The epoch's facts count each worker's probe assignments of the epoch,
//!   their on-time commits and latencies (completion and speed are measured on these), its probe
//!   tasks finalized in the epoch, whatever epoch they were submitted in (the only PoWR work
//!   counted; version 4 counted only those submitted in the same epoch, so a probe finalized
//!   after its epoch's end was lost), and each model's probe compute units (the developers'
//!   pool).
//!
//! # Trust
//! Epoch `e` starts from the trust computed for `e - 1` (stored in `epoch_nodes`, or recomputed
//! in memory when this database has not stored it); an address never seen starts at
//! `PowrParams::initial_trust_wad`. A worker with no assignment and no slash in the epoch is
//! idle: its trust is carried unchanged (a pinned slashed trust still counts down), since not
//! being drawn is no evidence either way. The trust tree holds every worker known so far: every
//! address that ever staked as a worker, was assigned or finalized a task, or had a trust before.
//!
//! # Reward policy
//! The epoch budget `B = epoch_budget(initialEmission, decayWad, e, cap_room)` (the same steps
//! as `Settlement.epochBudget`) is split into three pools:
//! - **workers, 70 %**: in proportion to their PoWR score `S_i = Σ computeUnits·quality·T_i`
//!   (trust after this epoch's update), over the probe tasks only when probe emission is on;
//! - **validators, 20 %**: in proportion to the weight `stake · r` of each validator with active
//!   validator stake at the epoch's end (replayed from `Staked`, `UnstakeRequested` and `Slashed`
//!   events before the end). `r = (done + 1)/(done + missed + 2)`
//!   (`powr::validator_reliability_wad`) is its reliability over the epoch: `done` counts the
//!   verdicts it signed (`VerdictAccepted`) and the dispute votes it cast (`DisputeVoted`),
//!   `missed` its `DeadlineMissed` events (audit verdict or dispute vote), each in the epoch its
//!   block time falls in, like the judgements above. A validator without either keeps `r = 0.5`,
//!   so an epoch without audits splits by stake. A validator slashed as a validator (false
//!   accusation or lazy approval) in the epoch has weight 0;
//! - **model developers, 10 % (plus the rounding dust of the other two)**: in proportion to the
//!   compute units of their models' results (code 0) finalized in the epoch (of probe tasks
//!   only when probe emission is on).
//!
//! Each pool is split with largest-remainder rounding (`powr::split_budget`) and the three lists
//! are merged per account (`powr::merge_rewards`). A pool without recipients (no finalized work,
//! no validator weight, no model usage) is left unminted, so `totalRewards <= B`.
//!
//! # Model statuses (natural selection)
//! Every model registered before the epoch's end gets a [`ModelQualityRow`]: its measured quality
//! `feedback x canary accuracy` from the `TaskRated` and `CanaryReported` (first report per task)
//! events with a block time in `[start, end)` (rules and constants in
//! [`crate::model_selection`]; canary accuracy = matching reports / reports, 1.0 without any)
//! and the status the epoch gives it. A rating counts only when its task ended successfully: a
//! `committed` result with code 0 and no `refunded` event before the epoch's end. Ratings alone
//! move a model to Probation at most; delisting needs canary evidence. The status a model enters epoch
//! `e` with is the one epoch `e - 1` gave it, unless the registry changed it since `e - 1` ended
//! (a `ModelStatusChanged` event in `[start, end)`: an applied report leaf or the admin), in
//! which case the registry's status at the end of `e` is taken; a model registered in `e` enters
//! Active. A model gets a leaf of the report's model status tree when the status after the epoch
//! differs from its registry status at the epoch's end: a new transition, or one of the previous
//! report that nobody applied on-chain before this report superseded it (applyModelStatus takes
//! the latest report's proofs only). `modelStatusHash` is that tree's root, `bytes32(0)` when no
//! model has a leaf.

use crate::db::Db;
use crate::sql::Conn;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
pub use protocol::epoch::{
    canary_accuracy_wad, AuditRecord, Carried, EpochFacts, EpochOutcome, ModelQualityRow, ModelRow,
    ValidatorAudits, ValidatorRow, WorkerRow, DEFAULT_UPTIME_WINDOW, MODEL_SHARE_BPS,
    VALIDATOR_SHARE_BPS, WORKER_SHARE_BPS,
};
use protocol::epoch::{ModelFacts, ModelUsage, WorkerFacts};
use protocol::powr::{self, PowrError, PowrParams, TrustState, MODEL_ACTIVE};
use protocol::Deployment;
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Most epochs [`settle_ready`] computes per call (keeps the follow loop responsive).
pub const MAX_EPOCHS_PER_CALL: usize = 32;

mod abi {
    #![allow(missing_docs, clippy::too_many_arguments)]
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        Settlement,
        "../out/Settlement.sol/Settlement.json"
    );
}

/// Errors of the epoch computation; each names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    /// The database is not yet indexed past the epoch's last fact.
    #[error("epoch {epoch} is not ready: its facts run until block time {facts_until}, the database is indexed to block time {indexed_time:?}")]
    NotReady {
        /// The epoch asked for.
        epoch: u64,
        /// Last block time whose events feed the epoch (known once the epoch has ended).
        facts_until: u64,
        /// Block time of the database's cursor (None: nothing indexed).
        indexed_time: Option<u64>,
    },
    /// The formulas rejected the facts (an inconsistency in the database).
    #[error("epoch {epoch}: {source}")]
    Powr {
        /// The epoch.
        epoch: u64,
        /// The formula error.
        source: PowrError,
    },
    /// A stored value could not be read back.
    #[error("epoch data in the database is corrupt: {0}")]
    Corrupt(String),
    /// Reading the parameters from the chain failed.
    #[error("reading epoch parameters from the chain: {0}")]
    Chain(String),
    /// The configuration is unusable.
    #[error("invalid epoch configuration: {0}")]
    Config(String),
    /// A query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Everything besides the database that an epoch's result depends on. Two indexers with equal
/// configs and the same confirmed chain compute identical reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochConfig {
    /// Chain id (the database cursor of this chain tells how far facts are known).
    pub chain_id: u64,
    /// Start of epoch 0 (`Settlement.genesis`).
    pub genesis: u64,
    /// Seconds per epoch (`Settlement.epochLength`, > 0).
    pub epoch_length: u64,
    /// Budget of epoch 0 in wei (`Settlement.initialEmission`).
    pub initial_emission: U256,
    /// Budget multiplier per epoch, WAD (`Settlement.decayWad`).
    pub decay_wad: U256,
    /// `token.cap() - token.totalSupply()` when the config was loaded: the budget is capped by
    /// it. It only binds when the token nears its cap; indexers that load it at different times
    /// then disagree, and `Settlement.postReport` rejects an over-budget report anyway.
    pub cap_room: U256,
    /// `TaskManager.responseWindow` in seconds (the speed rate's scale, > 0).
    pub response_window_secs: u32,
    /// Uptime window `W` in epochs (> 0).
    pub uptime_window: u32,
    /// Trust and PoWR parameters.
    pub params: PowrParams,
}

impl EpochConfig {
    /// Reads the schedule from `Settlement` (genesis, epochLength, initialEmission, decayWad),
    /// the cap room from its token and the response window from `TaskManager`.
    pub async fn load<P: Provider>(
        provider: &P,
        d: &Deployment,
    ) -> Result<EpochConfig, EpochError> {
        let chain =
            |what: &str, e: String| EpochError::Chain(format!("{what} at {}: {e}", d.settlement));
        let s = abi::Settlement::new(d.settlement, provider);
        let genesis = s
            .genesis()
            .call()
            .await
            .map_err(|e| chain("Settlement.genesis", e.to_string()))?;
        let epoch_length = s
            .epochLength()
            .call()
            .await
            .map_err(|e| chain("Settlement.epochLength", e.to_string()))?;
        let initial_emission = s
            .initialEmission()
            .call()
            .await
            .map_err(|e| chain("Settlement.initialEmission", e.to_string()))?;
        let decay_wad = s
            .decayWad()
            .call()
            .await
            .map_err(|e| chain("Settlement.decayWad", e.to_string()))?;
        let token = s
            .token()
            .call()
            .await
            .map_err(|e| chain("Settlement.token", e.to_string()))?;
        let t = protocol::bindings::DNToken::new(token, provider);
        let cap = t
            .cap()
            .call()
            .await
            .map_err(|e| chain("DNToken.cap", e.to_string()))?;
        let supply = t
            .totalSupply()
            .call()
            .await
            .map_err(|e| chain("DNToken.totalSupply", e.to_string()))?;
        let tm = protocol::bindings::ITaskManager::new(d.task_manager, provider);
        let rw = tm.responseWindow().call().await.map_err(|e| {
            EpochError::Chain(format!(
                "TaskManager.responseWindow at {}: {e}",
                d.task_manager
            ))
        })?;
        let cfg = EpochConfig {
            chain_id: d.chain_id,
            genesis,
            epoch_length,
            initial_emission,
            decay_wad,
            cap_room: cap.saturating_sub(supply),
            response_window_secs: u32::try_from(rw).unwrap_or(u32::MAX),
            uptime_window: DEFAULT_UPTIME_WINDOW,
            params: PowrParams::default(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the ranges the computation relies on.
    pub fn validate(&self) -> Result<(), EpochError> {
        if self.epoch_length == 0 {
            return Err(EpochError::Config("epoch_length is 0".into()));
        }
        if self.response_window_secs == 0 {
            return Err(EpochError::Config("response_window_secs is 0".into()));
        }
        if self.uptime_window == 0 {
            return Err(EpochError::Config("uptime_window is 0".into()));
        }
        if self.decay_wad > U256::from(powr::WAD) {
            return Err(EpochError::Config(format!(
                "decay_wad {} above 1e18",
                self.decay_wad
            )));
        }
        self.params
            .validate()
            .map_err(|e| EpochError::Config(e.to_string()))
    }

    /// `[start, end)` block times of `epoch`.
    pub fn bounds(&self, epoch: u64) -> Result<(u64, u64), EpochError> {
        let start = epoch
            .checked_mul(self.epoch_length)
            .and_then(|x| x.checked_add(self.genesis));
        let end = start.and_then(|s| s.checked_add(self.epoch_length));
        match (start, end) {
            (Some(s), Some(e)) if e <= i64::MAX as u64 => Ok((s, e)),
            _ => Err(EpochError::Config(format!(
                "epoch {epoch} lies beyond the representable time"
            ))),
        }
    }

    /// The epoch a block time falls in (None before genesis).
    pub fn epoch_at(&self, time: u64) -> Option<u64> {
        time.checked_sub(self.genesis)
            .map(|d| d / self.epoch_length.max(1))
    }

    /// Emission budget of `epoch` (as `Settlement.epochBudget`, with the loaded cap room).
    pub fn budget(&self, epoch: u64) -> U256 {
        powr::epoch_budget(self.initial_emission, self.decay_wad, epoch, self.cap_room)
    }
}

/// `Staking.Slashed.reason` of a validator whose dispute the quorum cleared.
pub const SLASH_FALSE_ACCUSATION: i64 = 2;
/// `Staking.Slashed.reason` of a validator that approved a planted wrong result.
pub const SLASH_LAZY_VALIDATOR: i64 = 3;

/// Every validator's audit record over the block times `[start, end)`, by address: the events
/// count in the epoch their block falls in, as the workers' judgements do.
pub async fn validator_audits(
    pool: &crate::sql::Pool,
    start: u64,
    end: u64,
) -> Result<BTreeMap<Address, ValidatorAudits>, sqlx::Error> {
    const DONE: i64 = 0;
    const MISSED: i64 = 1;
    const SLASHED: i64 = 2;
    let rows = sqlx::query(crate::sql!(
        "SELECT validator AS account, ?3 AS what, COUNT(*) AS n FROM verdicts
           WHERE block_time >= ?1 AND block_time < ?2 GROUP BY validator
         UNION ALL
         SELECT validator, ?3, COUNT(*) FROM dispute_votes
           WHERE block_time >= ?1 AND block_time < ?2 GROUP BY validator
         UNION ALL
         SELECT validator, ?4, COUNT(*) FROM deadline_misses
           WHERE block_time >= ?1 AND block_time < ?2 GROUP BY validator
         UNION ALL
         SELECT account, ?5, COUNT(*) FROM slashes
           WHERE block_time >= ?1 AND block_time < ?2 AND role = ?6 AND reason IN (?7, ?8)
           GROUP BY account"
    ))
    .bind(i64_of(start))
    .bind(i64_of(end))
    .bind(DONE)
    .bind(MISSED)
    .bind(SLASHED)
    .bind(i64::from(protocol::bindings::ROLE_VALIDATOR))
    .bind(SLASH_FALSE_ACCUSATION)
    .bind(SLASH_LAZY_VALIDATOR)
    .fetch_all(pool)
    .await?;
    let mut out: BTreeMap<Address, ValidatorAudits> = BTreeMap::new();
    for r in &rows {
        let account: String = r.try_get("account")?;
        let account = Address::from_str(&account).map_err(|e| {
            sqlx::Error::Decode(format!("validator address `{account}`: {e}").into())
        })?;
        let n = u64_of(r.try_get("n")?);
        let v = out.entry(account).or_default();
        match r.try_get::<i64, _>("what")? {
            DONE => v.done += n,
            MISSED => v.missed += n,
            _ => v.slashed |= n > 0,
        }
    }
    Ok(out)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn parse_addr(s: &str) -> Result<Address, EpochError> {
    Address::from_str(s).map_err(|e| EpochError::Corrupt(format!("address `{s}`: {e}")))
}

fn parse_u256(s: &str) -> Result<U256, EpochError> {
    U256::from_str_radix(s, 10).map_err(|e| EpochError::Corrupt(format!("amount `{s}`: {e}")))
}

/// The trust every worker had and the status every model had after the latest stored epoch
/// before `epoch`, with that epoch's number (None: nothing stored before `epoch`).
async fn stored_state_before(db: &Db, epoch: u64) -> Result<Option<(u64, Carried)>, EpochError> {
    let prev: Option<i64> =
        sqlx::query_scalar(crate::sql!("SELECT MAX(epoch) FROM epochs WHERE epoch < ?"))
            .bind(i64_of(epoch))
            .fetch_one(db.pool())
            .await?;
    let Some(prev) = prev else { return Ok(None) };
    let rows = sqlx::query(crate::sql!(
        "SELECT address, trust_wad, zero_epochs_left, record_audited_ppm, record_quality_ppm
         FROM epoch_nodes WHERE epoch = ?"
    ))
    .bind(prev)
    .fetch_all(db.pool())
    .await?;
    let mut out = BTreeMap::new();
    let mut accuracy = BTreeMap::new();
    for r in rows {
        let a = parse_addr(&r.try_get::<String, _>("address")?)?;
        let t: i64 = r.try_get("trust_wad")?;
        let z: i64 = r.try_get("zero_epochs_left")?;
        out.insert(
            a,
            TrustState {
                trust_wad: u64_of(t),
                zero_epochs_left: u32::try_from(z).unwrap_or(0),
            },
        );
        let record = AuditRecord {
            audited_ppm: u64_of(r.try_get("record_audited_ppm")?),
            quality_ppm: u64_of(r.try_get("record_quality_ppm")?),
        };
        if record != AuditRecord::default() {
            accuracy.insert(a, record);
        }
    }
    let mut models = BTreeMap::new();
    let rows: Vec<(i64, i64)> = sqlx::query_as(crate::sql!(
        "SELECT model_id, status FROM epoch_model_quality WHERE epoch = ?"
    ))
    .bind(prev)
    .fetch_all(db.pool())
    .await?;
    for (m, st) in rows {
        let m = u32::try_from(m).map_err(|_| EpochError::Corrupt(format!("model id {m}")))?;
        let st = u8::try_from(st).map_err(|_| EpochError::Corrupt(format!("model status {st}")))?;
        models.insert(m, st);
    }
    Ok(Some((
        u64_of(prev),
        Carried {
            trust: out,
            models,
            accuracy,
        },
    )))
}

/// Computes epoch `epoch` from the confirmed facts in `db`.
///
/// Deterministic: the result depends only on the events of blocks with a time up to the
/// epoch's `facts_until` (all confirmed, since the follower stores confirmed blocks only), on
/// `cfg` and on `epoch`. The previous trust comes from the latest epoch stored in `db` before
/// `epoch`; epochs in between (or all of them, on a database that stored none) are recomputed in
/// memory, so the result does not depend on which epochs the database has stored.
///
/// Fails with [`EpochError::NotReady`] while the database is not indexed past `facts_until`.
/// Nothing is written; [`store_epoch`] persists an outcome.
pub async fn compute_epoch(
    db: &Db,
    cfg: &EpochConfig,
    epoch: u64,
) -> Result<EpochOutcome, EpochError> {
    let carried = carried_into(db, cfg, epoch).await?;
    compute_one(db, cfg, epoch, &carried).await
}

/// The state `epoch` starts from: the trust and model statuses after the epoch before it, from
/// the latest epoch stored before it and the ones in between recomputed in memory (as
/// [`compute_epoch`] does).
pub async fn carried_into(db: &Db, cfg: &EpochConfig, epoch: u64) -> Result<Carried, EpochError> {
    cfg.validate()?;
    let (mut next, mut carried) = match stored_state_before(db, epoch).await? {
        Some((e, c)) => (e + 1, c),
        None => (0, Carried::default()),
    };
    while next < epoch {
        carried = compute_one(db, cfg, next, &carried).await?.carried();
        next += 1;
    }
    Ok(carried)
}

async fn compute_one(
    db: &Db,
    cfg: &EpochConfig,
    epoch: u64,
    carried: &Carried,
) -> Result<EpochOutcome, EpochError> {
    let facts = gather_facts(db, cfg, epoch).await?;
    protocol::epoch::compute(&facts, carried).map_err(|e| match e {
        protocol::epoch::EpochComputeError::Powr(source) => EpochError::Powr { epoch, source },
        other => EpochError::Corrupt(format!("epoch {epoch}: {other}")),
    })
}

/// Gathers epoch `epoch`'s facts from the confirmed events in `db` (see the module docs for what
/// each counts) with the parameters of `cfg`. Fails with [`EpochError::NotReady`] while the
/// database is not indexed past the epoch's last fact.
pub async fn gather_facts(
    db: &Db,
    cfg: &EpochConfig,
    epoch: u64,
) -> Result<EpochFacts, EpochError> {
    let (start, end) = cfg.bounds(epoch)?;
    let cursor_time = db
        .cursor(cfg.chain_id)
        .await
        .map_err(|e| EpochError::Corrupt(e.to_string()))?
        .map(|c| c.timestamp);
    let not_ready = |facts_until: u64| EpochError::NotReady {
        epoch,
        facts_until,
        indexed_time: cursor_time,
    };
    if cursor_time.is_none_or(|t| t < end) {
        return Err(not_ready(end - 1));
    }
    let pool = db.pool();
    let probe_emission = probe_emission_at(pool, end).await?;

    // Assignments of the epoch with their on-time commit, if any.
    let rows = sqlx::query(
        crate::sql!("SELECT a.worker AS worker, a.block_time AS assigned_time,
                (SELECT LOWER(t.submitter) FROM tasks t WHERE t.task_id = a.task_id) AS submitter,
                (SELECT t.submitted_time FROM tasks t WHERE t.task_id = a.task_id) AS submitted_time,
                CAST(json_extract(a.detail, '$.deadline') AS BIGINT) AS deadline,
                (SELECT MIN(c.block_time) FROM task_events c
                  WHERE c.task_id = a.task_id AND c.kind = 'committed' AND c.worker = a.worker
                    AND COALESCE(CAST(json_extract(c.detail, '$.code') AS BIGINT), 0) <= ?
                    AND c.block_time >= a.block_time
                    AND c.block_time <= CAST(json_extract(a.detail, '$.deadline') AS BIGINT)) AS committed_time
         FROM task_events a
         WHERE a.kind = 'assigned' AND a.block_time >= ? AND a.block_time < ?"),
    )
    .bind(i64::from(protocol::codes::MAX_INPUT_FAULT))
    .bind(i64_of(start))
    .bind(i64_of(end))
    .fetch_all(pool)
    .await?;
    let mut acc: BTreeMap<Address, WorkerFacts> = BTreeMap::new();
    let mut facts_until = end - 1;
    if probe_emission {
        // the prober reveals its wallets once the epoch has ended: give it a response window
        facts_until = facts_until.max(end - 1 + u64::from(cfg.response_window_secs));
    }
    for r in &rows {
        let deadline: Option<i64> = r.try_get("deadline")?;
        facts_until = facts_until.max(deadline.map(u64_of).unwrap_or(0));
    }
    if cursor_time.is_none_or(|t| t <= facts_until) {
        return Err(not_ready(facts_until));
    }
    let probe_submitters = if probe_emission {
        probe_submitters(pool, cfg, epoch).await?
    } else {
        BTreeSet::new()
    };
    // a probe: a task whose submitter the prober revealed for the epoch the task was submitted
    // in (its work counts in the epoch it is finalized in, maybe a later one)
    let is_probe = |r: &crate::sql::DbRow| -> Result<bool, sqlx::Error> {
        let submitter: Option<String> = r.try_get("submitter")?;
        let submitted: Option<i64> = r.try_get("submitted_time")?;
        Ok(match (submitter, submitted.map(u64_of)) {
            (Some(s), Some(t)) if t >= cfg.genesis => {
                probe_submitters.contains(&((t - cfg.genesis) / cfg.epoch_length, s))
            }
            _ => false,
        })
    };
    let mut tasks_assigned = 0u64;
    for r in &rows {
        let worker: Option<String> = r.try_get("worker")?;
        let Some(worker) = worker else { continue };
        let a = acc.entry(parse_addr(&worker)?).or_default();
        let assigned_time = u64_of(r.try_get("assigned_time")?);
        let committed: Option<i64> = r.try_get("committed_time")?;
        let probe = is_probe(r)?;
        a.assigned += 1;
        tasks_assigned += 1;
        if probe {
            a.probe_assigned += 1;
        }
        if let Some(c) = committed {
            a.on_time += 1;
            let latency = u64_of(c).saturating_sub(assigned_time);
            let latency = u32::try_from(latency).unwrap_or(u32::MAX);
            a.latencies.push(latency);
            if probe {
                a.probe_on_time += 1;
                a.probe_latencies.push(latency);
            }
        }
    }

    // Uptime window: per worker, the epochs with work and those with a commit.
    let window_first = epoch.saturating_sub(u64::from(cfg.uptime_window) - 1);
    let (window_start, _) = cfg.bounds(window_first)?;
    let rows = sqlx::query(
        crate::sql!("SELECT worker, kind, (block_time - ?) / ? AS ep FROM task_events
         WHERE kind IN ('assigned', 'committed') AND block_time >= ? AND block_time < ? AND worker IS NOT NULL
         GROUP BY worker, kind, ep"),
    )
    .bind(i64_of(cfg.genesis))
    .bind(i64_of(cfg.epoch_length))
    .bind(i64_of(window_start))
    .bind(i64_of(end))
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let worker: String = r.try_get("worker")?;
        let kind: String = r.try_get("kind")?;
        let ep = u64_of(r.try_get("ep")?);
        let a = acc.entry(parse_addr(&worker)?).or_default();
        a.active_epochs.insert(ep);
        if kind == "committed" {
            a.commit_epochs.insert(ep);
        }
    }

    // Audit judgements of the epoch (accuracy facts).
    let rows = sqlx::query(
        crate::sql!("SELECT worker, CASE WHEN quality_ppm < 1000000 THEN quality_ppm ELSE 1000000 END AS quality FROM verdicts
         WHERE matches = 1 AND block_time >= ? AND block_time < ?
         UNION ALL
         SELECT worker, CASE outcome WHEN ? THEN 1000000 ELSE NULL END FROM disputes
         WHERE outcome IN (?, ?) AND resolved_time >= ? AND resolved_time < ?
         UNION ALL
         SELECT worker, CASE WHEN matches = 1 THEN CASE WHEN quality_ppm < 1000000 THEN quality_ppm ELSE 1000000 END ELSE NULL END FROM first_canaries
         WHERE block_time >= ? AND block_time < ?"),
    )
    .bind(i64_of(start))
    .bind(i64_of(end))
    .bind(crate::audit::OUTCOME_CLEARED)
    .bind(crate::audit::OUTCOME_FRAUD)
    .bind(crate::audit::OUTCOME_CLEARED)
    .bind(i64_of(start))
    .bind(i64_of(end))
    .bind(i64_of(start))
    .bind(i64_of(end))
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let worker: String = r.try_get("worker")?;
        let quality: Option<i64> = r.try_get("quality")?;
        acc.entry(parse_addr(&worker)?)
            .or_default()
            .judged(quality.map(|q| u32::try_from(q).unwrap_or(0)));
    }
    let frauds: Vec<String> = sqlx::query_scalar(
        crate::sql!("SELECT DISTINCT worker FROM disputes WHERE outcome = ? AND resolved_time >= ? AND resolved_time < ?"),
    )
    .bind(crate::audit::OUTCOME_FRAUD)
    .bind(i64_of(start))
    .bind(i64_of(end))
    .fetch_all(pool)
    .await?;
    for w in &frauds {
        acc.entry(parse_addr(w)?).or_default().fraud = true;
    }

    // Finalized work of the epoch, with the quality of its judgement when it was audited (the
    // lowest of a passed verdict, a dispute's outcome and a canary report made before the end).
    let rows = sqlx::query(
        crate::sql!("SELECT te.worker AS worker, t.model_id AS model_id, COALESCE(t.compute_units, 0) AS compute_units,
                LOWER(t.submitter) AS submitter, t.submitted_time AS submitted_time,
                COALESCE(t.quality, 0) AS quality, COALESCE(t.code, 0) AS code,
                (SELECT CASE WHEN v.quality_ppm < 1000000 THEN v.quality_ppm ELSE 1000000 END FROM verdicts v
                  WHERE v.task_id = te.task_id AND v.matches = 1 AND v.block_time < ?) AS verdict_quality,
                (SELECT CASE d.outcome WHEN ? THEN 0 WHEN ? THEN 1000000 ELSE NULL END FROM disputes d
                  WHERE d.task_id = te.task_id AND d.resolved_time < ?) AS dispute_quality,
                (SELECT CASE WHEN c.matches = 1 THEN CASE WHEN c.quality_ppm < 1000000 THEN c.quality_ppm ELSE 1000000 END ELSE 0 END FROM first_canaries c
                  WHERE c.task_id = te.task_id AND c.block_time < ?) AS canary_quality
         FROM task_events te JOIN tasks t ON t.task_id = te.task_id
         WHERE te.kind = 'finalized' AND te.block_time >= ? AND te.block_time < ? AND te.worker IS NOT NULL"),
    )
    .bind(i64_of(end))
    .bind(crate::audit::OUTCOME_FRAUD)
    .bind(crate::audit::OUTCOME_CLEARED)
    .bind(i64_of(end))
    .bind(i64_of(end))
    .bind(i64_of(start))
    .bind(i64_of(end))
    .fetch_all(pool)
    .await?;
    // per model: tasks finalized, compute units of results, of which probe tasks'
    let mut usage: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
    let mut tasks_finalized = 0u64;
    for r in &rows {
        let worker: String = r.try_get("worker")?;
        let model_id = u32::try_from(r.try_get::<i64, _>("model_id")?).unwrap_or(0);
        let units = u32::try_from(r.try_get::<i64, _>("compute_units")?).unwrap_or(0);
        let quality = u32::try_from(r.try_get::<i64, _>("quality")?).unwrap_or(0);
        let ok = r.try_get::<i64, _>("code")? == 0;
        let judged = ["verdict_quality", "dispute_quality", "canary_quality"]
            .iter()
            .map(|k| r.try_get::<Option<i64>, _>(*k))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .min()
            .map(|q| u32::try_from(q).unwrap_or(0));
        let probe = is_probe(r)?;
        let a = acc.entry(parse_addr(&worker)?).or_default();
        let work = (units, if ok { judged } else { Some(0) }, quality);
        a.finalized.push(work);
        if probe {
            a.probes.push(work);
        }
        a.tasks_finalized += 1;
        tasks_finalized += 1;
        let m = usage.entry(model_id).or_default();
        m.0 += 1;
        if ok {
            a.compute_units += u64::from(units);
            m.1 += u64::from(units);
            if probe {
                m.2 += u64::from(units);
            }
        }
    }

    // Slashes of the epoch.
    let slashed: BTreeSet<Address> = sqlx::query_scalar::<_, String>(crate::sql!(
        "SELECT DISTINCT account FROM slashes WHERE block_time >= ? AND block_time < ?"
    ))
    .bind(i64_of(start))
    .bind(i64_of(end))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|a| parse_addr(a))
    .collect::<Result<_, _>>()?;

    // Stakes at the epoch's end, replayed in chain order.
    let rows = sqlx::query(
        crate::sql!("SELECT name, json FROM events WHERE name IN ('Staked', 'UnstakeRequested', 'Slashed') AND block_time < ?
         ORDER BY block_number, log_index"),
    )
    .bind(i64_of(end))
    .fetch_all(pool)
    .await?;
    let mut validator_stake: BTreeMap<Address, U256> = BTreeMap::new();
    let mut staked_workers: BTreeSet<Address> = BTreeSet::new();
    for r in &rows {
        let name: String = r.try_get("name")?;
        let json: String = r.try_get("json")?;
        let v: Value = serde_json::from_str(&json)
            .map_err(|e| EpochError::Corrupt(format!("event json: {e}")))?;
        let field = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| EpochError::Corrupt(format!("{name} event without `{k}`")))
        };
        let account = parse_addr(&field("account")?)?;
        let role = v["role"].as_u64().unwrap_or(u64::MAX);
        if role == u64::from(protocol::bindings::ROLE_WORKER) {
            staked_workers.insert(account);
            continue;
        }
        if role != u64::from(protocol::bindings::ROLE_VALIDATOR) {
            continue;
        }
        let stake = validator_stake.entry(account).or_default();
        match name.as_str() {
            "Slashed" => {
                let amount = parse_u256(&field("amount")?)?;
                *stake = stake.saturating_sub(amount);
            }
            _ => *stake = parse_u256(&field("newStake")?)?,
        }
    }

    // Models and their developers.
    let mut model_usage = BTreeMap::new();
    for (model_id, (count, units, probe_units)) in usage {
        let developer: Option<String> = sqlx::query_scalar(crate::sql!(
            "SELECT developer FROM models WHERE model_id = ?"
        ))
        .bind(i64::from(model_id))
        .fetch_optional(pool)
        .await?;
        let Some(developer) = developer else {
            tracing::warn!(
                model_id,
                epoch,
                "finalized tasks of a model the database does not know; its share stays unminted"
            );
            continue;
        };
        model_usage.insert(
            model_id,
            ModelUsage {
                developer: parse_addr(&developer)?,
                tasks_finalized: count,
                compute_units: units,
                probe_compute_units: probe_units,
            },
        );
    }
    let validator_audits = validator_audits(pool, start, end).await?;
    let models = model_facts(db, start, end).await?;
    Ok(EpochFacts {
        epoch,
        start_time: start,
        end_time: end,
        facts_until,
        budget: cfg.budget(epoch),
        response_window_secs: cfg.response_window_secs,
        params: cfg.params,
        workers: acc,
        staked_workers,
        slashed,
        validator_stake,
        validator_audits,
        model_usage,
        models,
        tasks_assigned,
        tasks_finalized,
        probe_emission,
    })
}

/// Whether probe emission is on at `end`: the last `ProbeEmissionSet` before it (off without
/// one, or without a probe registry).
async fn probe_emission_at(pool: &crate::sql::Pool, end: u64) -> Result<bool, EpochError> {
    // JSON `true` reads as 1 in SQLite, as 'true' in PostgreSQL
    let enabled: Option<i64> = sqlx::query_scalar(crate::sql!(
        "SELECT CASE WHEN CAST(json_extract(json, '$.enabled') AS TEXT) IN ('1', 'true')
                THEN 1 ELSE 0 END FROM events
         WHERE name = 'ProbeEmissionSet' AND block_time < ?
         ORDER BY block_number DESC, log_index DESC LIMIT 1"
    ))
    .bind(i64_of(end))
    .fetch_optional(pool)
    .await?;
    Ok(enabled.is_some_and(|e| e != 0))
}

/// The wallets the prober revealed, with the epoch each probed: `ProbesRevealed(ep, submitter)`
/// for an epoch `ep <= epoch`, mined within `ep`'s reveal window `[end(ep), end(ep) - 1 +
/// responseWindow]` (a later reveal never counts, whatever epoch is computed).
async fn probe_submitters(
    pool: &crate::sql::Pool,
    cfg: &EpochConfig,
    epoch: u64,
) -> Result<BTreeSet<(u64, String)>, EpochError> {
    let rows = sqlx::query(
        crate::sql!("SELECT CAST(json_extract(json, '$.epoch') AS BIGINT) AS ep,
                LOWER(json_extract(json, '$.submitter')) AS submitter, block_time
         FROM events WHERE name = 'ProbesRevealed' AND CAST(json_extract(json, '$.epoch') AS BIGINT) <= ?"),
    )
    .bind(i64_of(epoch))
    .fetch_all(pool)
    .await?;
    let mut out = BTreeSet::new();
    for r in &rows {
        let ep = u64_of(r.try_get("ep")?);
        let submitter: String = r.try_get("submitter")?;
        let at = u64_of(r.try_get("block_time")?);
        let (_, end) = cfg.bounds(ep)?;
        if at >= end && at <= end - 1 + u64::from(cfg.response_window_secs) {
            out.insert((ep, submitter));
        }
    }
    Ok(out)
}

/// Registry status of every model registered before `end` (`ModelRegistered` = Active, then
/// its `ModelStatusChanged` events in chain order), and the models whose status changed at or
/// after `since`.
async fn registry_statuses(
    db: &Db,
    since: u64,
    end: u64,
) -> Result<(BTreeMap<u32, u8>, BTreeSet<u32>), EpochError> {
    let rows = sqlx::query(crate::sql!(
        "SELECT name, json, block_time FROM events
         WHERE name IN ('ModelRegistered', 'ModelStatusChanged') AND block_time < ?
         ORDER BY block_number, log_index"
    ))
    .bind(i64_of(end))
    .fetch_all(db.pool())
    .await?;
    let mut statuses = BTreeMap::new();
    let mut changed = BTreeSet::new();
    for r in &rows {
        let name: String = r.try_get("name")?;
        let json: String = r.try_get("json")?;
        let v: Value = serde_json::from_str(&json)
            .map_err(|e| EpochError::Corrupt(format!("{name} event json: {e}")))?;
        let model = v["modelId"]
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| EpochError::Corrupt(format!("{name} event without `modelId`")))?;
        if name == "ModelRegistered" {
            statuses.insert(model, MODEL_ACTIVE);
            continue;
        }
        let status = v["status"]
            .as_u64()
            .and_then(|s| u8::try_from(s).ok())
            .ok_or_else(|| EpochError::Corrupt(format!("{name} event without `status`")))?;
        statuses.insert(model, status);
        if u64_of(r.try_get("block_time")?) >= since {
            changed.insert(model);
        }
    }
    Ok((statuses, changed))
}

/// The evidence about every model registered before `end` (see the module docs): registry
/// status, whether it changed in `[start, end)`, ratings and canary reports.
async fn model_facts(
    db: &Db,
    start: u64,
    end: u64,
) -> Result<BTreeMap<u32, ModelFacts>, EpochError> {
    let (chain, changed) = registry_statuses(db, start, end).await?;
    // The model id is in the rating's detail (older databases: the task's model). Only ratings
    // of tasks that ended successfully count: a result (code 0) committed and not refunded
    // before the epoch's end, so a rating costs a full fee (an input fault's failure code
    // refunds most of it) and a task proven fraudulent is the dispute's evidence, not a rating.
    let rows = sqlx::query(
        crate::sql!("SELECT COALESCE(CAST(json_extract(te.detail, '$.modelId') AS BIGINT), t.model_id) AS model_id,
                COUNT(*) AS ratings,
                CAST(SUM(CAST(json_extract(te.detail, '$.score') AS BIGINT)) AS BIGINT) AS score_sum
         FROM task_events te LEFT JOIN tasks t ON t.task_id = te.task_id
         WHERE te.kind = 'rated' AND te.block_time >= ? AND te.block_time < ?
           AND EXISTS (SELECT 1 FROM task_events c WHERE c.task_id = te.task_id AND c.kind = 'committed'
                         AND CAST(json_extract(c.detail, '$.code') AS BIGINT) = 0 AND c.block_time < ?)
           AND NOT EXISTS (SELECT 1 FROM task_events r WHERE r.task_id = te.task_id AND r.kind = 'refunded'
                             AND r.block_time < ?)
         GROUP BY 1"),
    )
    .bind(i64_of(start))
    .bind(i64_of(end))
    .bind(i64_of(end))
    .bind(i64_of(end))
    .fetch_all(db.pool())
    .await?;
    let mut ratings: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for r in &rows {
        let model: Option<i64> = r.try_get("model_id")?;
        let Some(model) = model.and_then(|m| u32::try_from(m).ok()) else {
            continue;
        };
        let n = u64_of(r.try_get("ratings")?);
        let sum = u64_of(r.try_get::<Option<i64>, _>("score_sum")?.unwrap_or(0));
        ratings.insert(model, (n, sum));
    }
    let rows = sqlx::query(
        crate::sql!("SELECT model_id, COUNT(*) AS reports, CAST(SUM(matches) AS BIGINT) AS matches FROM first_canaries
         WHERE block_time >= ? AND block_time < ? GROUP BY model_id"),
    )
    .bind(i64_of(start))
    .bind(i64_of(end))
    .fetch_all(db.pool())
    .await?;
    let mut canaries: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for r in &rows {
        let Ok(model) = u32::try_from(r.try_get::<i64, _>("model_id")?) else {
            continue;
        };
        let reports = u64_of(r.try_get("reports")?);
        let matches = u64_of(r.try_get::<Option<i64>, _>("matches")?.unwrap_or(0));
        canaries.insert(model, (reports, matches.min(reports)));
    }
    for model in ratings.keys().filter(|m| !chain.contains_key(m)) {
        tracing::warn!(
            model_id = model,
            "ratings of a model the database does not know; ignored"
        );
    }
    Ok(chain
        .iter()
        .map(|(&model_id, &chain_status)| {
            let (n, sum) = ratings.get(&model_id).copied().unwrap_or_default();
            let (reports, matches) = canaries.get(&model_id).copied().unwrap_or_default();
            let facts = ModelFacts {
                chain_status,
                changed_in_epoch: changed.contains(&model_id),
                ratings: n,
                score_sum: sum,
                canaries: reports,
                canary_matches: matches,
            };
            (model_id, facts)
        })
        .collect())
}

/// Tables computed per epoch (deleted together on a recompute or a reorg).
const EPOCH_TABLES: [&str; 6] = [
    "epochs",
    "epoch_nodes",
    "epoch_validators",
    "epoch_models",
    "epoch_rewards",
    "epoch_model_quality",
];

/// Stores `out` (replacing a stored copy of the same epoch) in one transaction: the `epochs`
/// row, one `epoch_nodes` row per worker, the validators, the models and every rewards leaf
/// with its proof. `computed_block` is the indexed block it was computed at.
pub async fn store_epoch(
    db: &Db,
    out: &EpochOutcome,
    computed_block: u64,
) -> Result<(), EpochError> {
    let mut tx = db.pool().begin().await?;
    let e = i64_of(out.epoch);
    for table in EPOCH_TABLES {
        sqlx::query(&crate::sql::numbered(&format!(
            "DELETE FROM {table} WHERE epoch = ?"
        )))
        .bind(e)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        crate::sql!("INSERT INTO epochs (epoch, start_time, end_time, facts_until, rewards_root, trust_root, total_rewards,
             model_status_hash, budget, worker_pool, validator_pool, model_pool, tasks_assigned, tasks_finalized,
             computed_block, formula_version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    )
    .bind(e)
    .bind(i64_of(out.start_time))
    .bind(i64_of(out.end_time))
    .bind(i64_of(out.facts_until))
    .bind(out.report.rewardsRoot.to_string())
    .bind(out.report.trustRoot.to_string())
    .bind(out.report.totalRewards.to_string())
    .bind(out.report.modelStatusHash.to_string())
    .bind(out.budget.to_string())
    .bind(out.worker_pool.to_string())
    .bind(out.validator_pool.to_string())
    .bind(out.model_pool.to_string())
    .bind(i64_of(out.tasks_assigned))
    .bind(i64_of(out.tasks_finalized))
    .bind(i64_of(computed_block))
    .bind(i64::from(protocol::epoch::FORMULA_VERSION))
    .execute(&mut *tx)
    .await?;
    for w in &out.workers {
        let p50 = {
            let mut l = w.facts.latencies_secs.clone();
            l.sort_unstable();
            l.get(l.len().saturating_sub(1) / 2).copied()
        };
        sqlx::query(
            crate::sql!("INSERT INTO epoch_nodes (epoch, address, tasks_assigned, tasks_on_time, tasks_finalized, compute_units,
                 active_epochs, commit_epochs, p50_latency, slashed, evaluated, completion_wad, accuracy_wad,
                 uptime_wad, speed_wad, quality_wad, prev_trust_wad, trust_wad, zero_epochs_left, score, reward,
                 audited, passed, quality_sum_ppm, fraud, record_audited_ppm, record_quality_ppm)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(e)
        .bind(w.address.to_checksum(None))
        .bind(i64_of(w.facts.assigned))
        .bind(i64_of(w.facts.on_time))
        .bind(i64_of(w.tasks_finalized))
        .bind(i64_of(w.compute_units))
        .bind(i64::from(w.facts.window))
        .bind(i64::from(w.facts.heartbeat_epochs_in_window))
        .bind(p50.map(i64::from))
        .bind(i64::from(w.facts.slashed))
        .bind(i64::from(w.evaluated))
        .bind(i64_of(w.rates.completion))
        .bind(i64_of(w.rates.accuracy))
        .bind(i64_of(w.rates.uptime))
        .bind(i64_of(w.rates.speed))
        .bind(i64_of(w.quality_wad))
        .bind(i64_of(w.prev_trust_wad))
        .bind(i64_of(w.trust.trust_wad))
        .bind(i64::from(w.trust.zero_epochs_left))
        .bind(w.score.to_string())
        .bind(w.reward.to_string())
        .bind(i64_of(w.facts.audited))
        .bind(i64_of(w.facts.passed))
        .bind(i64_of(w.facts.quality_sum_ppm))
        .bind(i64::from(w.fraud))
        .bind(i64_of(w.audit_record.audited_ppm))
        .bind(i64_of(w.audit_record.quality_ppm))
        .execute(&mut *tx)
        .await?;
    }
    for v in &out.validators {
        sqlx::query(crate::sql!(
            "INSERT INTO epoch_validators (epoch, address, stake, reward) VALUES (?, ?, ?, ?)"
        ))
        .bind(e)
        .bind(v.address.to_checksum(None))
        .bind(v.stake.to_string())
        .bind(v.reward.to_string())
        .execute(&mut *tx)
        .await?;
    }
    for m in &out.models {
        sqlx::query(
            crate::sql!("INSERT INTO epoch_models (epoch, model_id, developer, tasks_finalized, compute_units) VALUES (?, ?, ?, ?, ?)"),
        )
        .bind(e)
        .bind(i64::from(m.model_id))
        .bind(m.developer.to_checksum(None))
        .bind(i64_of(m.tasks_finalized))
        .bind(i64_of(m.compute_units))
        .execute(&mut *tx)
        .await?;
    }
    for m in &out.model_quality {
        let proof = out.model_status.proof(m.model_id).map(|(_, p)| {
            Value::from(p.iter().map(|h| h.to_string()).collect::<Vec<_>>()).to_string()
        });
        sqlx::query(
            crate::sql!("INSERT INTO epoch_model_quality (epoch, model_id, ratings, score_sum, feedback_wad, canary_accuracy_wad,
                 quality_wad, prev_status, chain_status, status, in_report, proof, canaries, canary_matches)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(e)
        .bind(i64::from(m.model_id))
        .bind(i64_of(m.ratings))
        .bind(i64_of(m.score_sum))
        .bind(i64_of(m.feedback_wad))
        .bind(i64_of(m.canary_accuracy_wad))
        .bind(i64_of(m.quality_wad))
        .bind(i64::from(m.prev_status))
        .bind(i64::from(m.chain_status))
        .bind(i64::from(m.status))
        .bind(i64::from(m.in_report()))
        .bind(proof)
        .bind(i64_of(m.canaries))
        .bind(i64_of(m.canary_matches))
        .execute(&mut *tx)
        .await?;
    }
    for (account, amount) in out.rewards.entries() {
        let proof = out
            .rewards
            .proof(*account)
            .map(|(_, p)| p)
            .unwrap_or_default();
        let proof =
            Value::from(proof.iter().map(|h| h.to_string()).collect::<Vec<_>>()).to_string();
        let (w, v, d) = out.reward_parts(*account);
        sqlx::query(
            crate::sql!("INSERT INTO epoch_rewards (epoch, account, amount, worker_reward, validator_reward, developer_reward, proof)
             VALUES (?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(e)
        .bind(account.to_checksum(None))
        .bind(amount.to_string())
        .bind(w.to_string())
        .bind(v.to_string())
        .bind(d.to_string())
        .bind(proof)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The next epoch to compute: one after the latest stored (0 when none).
pub async fn next_epoch(db: &Db) -> Result<u64, EpochError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(epoch) FROM epochs")
        .fetch_one(db.pool())
        .await?;
    Ok(last.map_or(0, |e| u64_of(e) + 1))
}

/// Deletes the stored epochs that another version of the rules computed (`formula_version` other
/// than [`protocol::epoch::FORMULA_VERSION`], say after an upgrade), from the first such epoch
/// on (trust chains forward), so they are computed again by these rules. Epochs up to the latest
/// one reported on-chain are kept: their stored outcome is what the chain's roots and the
/// claims' proofs match. Returns the first epoch deleted.
pub async fn forget_outdated(db: &Db) -> Result<Option<u64>, EpochError> {
    let first: Option<i64> = sqlx::query_scalar(crate::sql!(
        "SELECT MIN(epoch) FROM epochs WHERE formula_version <> ?
           AND epoch > COALESCE((SELECT MAX(epoch) FROM epoch_reports), -1)"
    ))
    .bind(i64::from(protocol::epoch::FORMULA_VERSION))
    .fetch_one(db.pool())
    .await?;
    let Some(first) = first.map(u64_of) else {
        return Ok(None);
    };
    let mut tx = db.pool().begin().await?;
    delete_from(&mut tx, first).await?;
    tx.commit().await?;
    tracing::warn!(
        from_epoch = first,
        formula_version = protocol::epoch::FORMULA_VERSION,
        "stored epochs computed by another version of the rules were deleted; recomputing them"
    );
    Ok(Some(first))
}

/// Computes and stores, in order, every epoch that is ready (at most `max`), continuing after
/// the latest stored one. Returns the epochs stored. Idempotent: a stored epoch is never
/// recomputed unless a reorg deleted it or other rules computed it ([`forget_outdated`]).
pub async fn settle_ready(db: &Db, cfg: &EpochConfig, max: usize) -> Result<Vec<u64>, EpochError> {
    forget_outdated(db).await?;
    let mut done = Vec::new();
    let Some(cursor) = db
        .cursor(cfg.chain_id)
        .await
        .map_err(|e| EpochError::Corrupt(e.to_string()))?
    else {
        return Ok(done);
    };
    let mut epoch = next_epoch(db).await?;
    while done.len() < max {
        let (_, end) = cfg.bounds(epoch)?;
        if cursor.timestamp < end {
            break;
        }
        let started = std::time::Instant::now();
        let out = match compute_epoch(db, cfg, epoch).await {
            Ok(out) => out,
            Err(EpochError::NotReady { .. }) => break,
            Err(e) => return Err(e),
        };
        store_epoch(db, &out, cursor.number).await?;
        metrics::gauge!("indexer_epoch_computed").set(epoch as f64);
        tracing::info!(
            epoch,
            workers = out.workers.len(),
            tasks = out.tasks_assigned,
            total_rewards = %out.report.totalRewards,
            budget = %out.budget,
            rewards_root = %out.report.rewardsRoot,
            trust_root = %out.report.trustRoot,
            model_status_hash = %out.report.modelStatusHash,
            model_status_changes = out.model_status.entries().len(),
            ms = started.elapsed().as_millis() as u64,
            "epoch computed"
        );
        done.push(epoch);
        epoch += 1;
    }
    Ok(done)
}

/// First computed epoch whose facts a rollback to a fork block of time `fork_time` reaches
/// (None for a rollback to before the start block: every epoch). Blocks after the fork have a
/// time >= `fork_time`, so an epoch is untouched only when all its facts are older.
pub async fn first_stale_epoch(
    conn: &mut Conn,
    fork_time: Option<u64>,
) -> Result<Option<u64>, sqlx::Error> {
    let first: Option<i64> = match fork_time {
        None => {
            sqlx::query_scalar("SELECT MIN(epoch) FROM epochs")
                .fetch_one(&mut *conn)
                .await?
        }
        Some(t) => {
            sqlx::query_scalar(crate::sql!(
                "SELECT MIN(epoch) FROM epochs WHERE facts_until >= ?"
            ))
            .bind(i64_of(t))
            .fetch_one(&mut *conn)
            .await?
        }
    };
    Ok(first.map(u64_of))
}

/// Deletes the computed rows of `first` and every later epoch (trust chains forward).
pub async fn delete_from(conn: &mut Conn, first: u64) -> Result<(), sqlx::Error> {
    for table in EPOCH_TABLES {
        sqlx::query(&crate::sql::numbered(&format!(
            "DELETE FROM {table} WHERE epoch >= ?"
        )))
        .bind(i64_of(first))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
