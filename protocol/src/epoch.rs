//! The pure epoch computation: [`compute`] turns one epoch's [`EpochFacts`] (everything the
//! rules read, gathered from confirmed chain events by `chainstore::epochs`, whose module docs
//! define each fact) and the state the previous epoch [`Carried`] into the [`EpochOutcome`]:
//! every worker's rates, quality, trust and PoWR score, the three reward pools and their split,
//! the validators' weights, the models' measured quality and status, and the report validators
//! sign. No I/O: the indexer, the verifier and the `sim` crate run this same code, so a rule
//! change is simulated before it is deployed, and two validators whose roots differ can diff
//! their facts (both serialize to JSON).

use crate::model_selection::{
    feedback_wad, next_model_status, Evidence, CANARY_ACCURACY_WITHOUT_CANARIES_WAD,
};
use crate::powr::{
    self, build_report, epoch_quality, next_trust, powr_score, AccountTree, EpochReport,
    FinalizedTask, ModelStatusTree, NodeEpochFacts, PowrError, PowrParams, Rates, TrustState,
};
use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Workers' share of the epoch budget, in basis points.
pub const WORKER_SHARE_BPS: u64 = 7_000;
/// Validators' share of the epoch budget, in basis points.
pub const VALIDATOR_SHARE_BPS: u64 = 2_000;
/// Model developers' share of the epoch budget, in basis points (they also get the rounding
/// dust of the other two pools).
pub const MODEL_SHARE_BPS: u64 = 1_000;

/// Version of the epoch rules this build implements ([`compute`] and the facts it reads), stored
/// with each computed epoch (`epochs.formula_version` in the chain store), which recomputes an
/// epoch computed by another version unless its report is already on-chain. Bump it with every
/// rule change. History:
/// 1. up to 2026-12-02: ratings and canary reports together (at least 5) moved a model
///    Active -> Probation -> Delisted;
/// 2. ratings alone never delist (failed canaries do) and only ratings of tasks that ended
///    successfully count (issue 14, the rating attack); accuracy is `(quality + 1) /
///    (audited + 1)` over each worker's decayed audit record ([`AuditRecord`]) instead of
///    `(quality + 1) / (audited + 2)` over the epoch's judgements alone (big-stake-vs-quality);
/// 3. a slashed node's trust, 0 for the slash's epoch and 3 more, comes back to the new-node
///    trust 0.2 in the epoch after (it stayed 0 for good: never drawn, never re-evaluated);
/// 4. probe emission ([`EpochFacts::probe_emission`]): when the network switched it on, the
///    workers' and developers' pools count revealed probe tasks only (issue 14, wash trading);
/// 5. a probe is a task revealed for the epoch it was submitted in, counted in the epoch it is
///    finalized in (version 4 required both in one epoch: a probe finalized after its epoch's
///    end, which the demo's short epochs made the rule, counted nowhere); a reveal counts within
///    one response window of its epoch's end.
pub const FORMULA_VERSION: u32 = 5;

/// Default length `W` of the uptime window, in epochs.
pub const DEFAULT_UPTIME_WINDOW: u32 = 6;

/// Why an epoch could not be computed from its facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochComputeError {
    /// The formulas rejected the facts.
    #[error(transparent)]
    Powr(#[from] PowrError),
    /// The rewards add up to more than the budget (inconsistent facts).
    #[error("rewards {rewards} exceed the budget {budget}")]
    OverBudget {
        /// Sum of the rewards tree.
        rewards: U256,
        /// The epoch's budget.
        budget: U256,
    },
}

/// One worker's facts in an epoch (see `chainstore::epochs` for what each counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerFacts {
    /// Assignments in the epoch.
    pub assigned: u64,
    /// Of those, committed by their deadline (a result or an input fault).
    pub on_time: u64,
    /// Seconds from assignment to commit of each on-time commit.
    pub latencies: Vec<u32>,
    /// Epochs of the uptime window in which it had work.
    pub active_epochs: BTreeSet<u64>,
    /// Of those, the epochs with a commit.
    pub commit_epochs: BTreeSet<u64>,
    /// Finalized tasks: compute units, the quality of their judgement (None: unaudited; a
    /// failure code counts `Some(0)`) and the `TaskFinalized.quality` (ppm).
    pub finalized: Vec<(u32, Option<u32>, u32)>,
    /// Tasks finalized for it in the epoch (results and failure codes).
    pub tasks_finalized: u64,
    /// Compute units of its finalized results (code 0).
    pub compute_units: u64,
    /// Of the assignments, those of probe tasks (submitted by a wallet the prober revealed for
    /// the epoch). With probe emission on, completion and speed are measured on these only.
    #[serde(default)]
    pub probe_assigned: u64,
    /// Of those, committed by their deadline.
    #[serde(default)]
    pub probe_on_time: u64,
    /// Their latencies (seconds from assignment to commit).
    #[serde(default)]
    pub probe_latencies: Vec<u32>,
    /// The entries of `finalized` that were probe tasks: submitted by a wallet the prober
    /// revealed for the epoch (`ProbeRegistry.ProbesRevealed`). With probe emission on, the PoWR
    /// score counts these only.
    #[serde(default)]
    pub probes: Vec<(u32, Option<u32>, u32)>,
    /// Judgements of its results made in the epoch.
    pub audited: u64,
    /// Of those, passed.
    pub passed: u64,
    /// Sum of the passed judgements' quality (ppm).
    pub quality_sum_ppm: u64,
    /// A dispute over one of its results was resolved Fraud in the epoch.
    pub fraud: bool,
}

/// One model's use in an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// Its developer (paid from the model pool).
    pub developer: Address,
    /// Tasks of the model finalized in the epoch.
    pub tasks_finalized: u64,
    /// Compute units of its results (code 0) finalized in the epoch.
    pub compute_units: u64,
    /// Of those, the compute units of probe tasks (see [`WorkerFacts::probes`]).
    #[serde(default)]
    pub probe_compute_units: u64,
}

/// One registered model's evidence in an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// `ModelRegistry` status at the epoch's end.
    pub chain_status: u8,
    /// The registry changed its status during the epoch (an applied leaf or the admin).
    pub changed_in_epoch: bool,
    /// `TaskRated` events of the model in the epoch, of tasks that ended successfully (a
    /// result with code 0, not refunded before the epoch's end).
    pub ratings: u64,
    /// Sum of their scores.
    pub score_sum: u64,
    /// Canary reports of the model in the epoch (first report per task).
    pub canaries: u64,
    /// Of those, matching.
    pub canary_matches: u64,
}

/// Everything the rules read about one epoch: gathered from confirmed events (and the
/// parameters in force) by `chainstore::epochs::gather_facts`, or generated by the `sim` crate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochFacts {
    /// The epoch.
    pub epoch: u64,
    /// First block time of the epoch.
    pub start_time: u64,
    /// First block time after the epoch.
    pub end_time: u64,
    /// Last block time whose events feed the epoch.
    pub facts_until: u64,
    /// Emission budget of the epoch (`Settlement.epochBudget`).
    pub budget: U256,
    /// `TaskManager.responseWindow` in seconds (> 0).
    pub response_window_secs: u32,
    /// Trust and PoWR parameters.
    pub params: PowrParams,
    /// Workers with any fact in the epoch, by address.
    pub workers: BTreeMap<Address, WorkerFacts>,
    /// Every address that staked as a worker before the epoch's end.
    pub staked_workers: BTreeSet<Address>,
    /// Addresses slashed (any role, any reason) in the epoch.
    pub slashed: BTreeSet<Address>,
    /// Active validator stake at the epoch's end.
    pub validator_stake: BTreeMap<Address, U256>,
    /// Validators' audit records in the epoch.
    pub validator_audits: BTreeMap<Address, ValidatorAudits>,
    /// Models with finalized tasks in the epoch, by id.
    pub model_usage: BTreeMap<u32, ModelUsage>,
    /// Every model registered before the epoch's end, by id.
    pub models: BTreeMap<u32, ModelFacts>,
    /// Assignments in the epoch.
    pub tasks_assigned: u64,
    /// Tasks finalized in the epoch.
    pub tasks_finalized: u64,
    /// Probe emission is on (`ProbeRegistry.probeEmission` at the epoch's end): the workers'
    /// pool is split by PoWR scores over probe tasks only and the developers' pool by the
    /// compute units of probe tasks, so a task its submitter paid earns its fee and no emission
    /// (a self-paid task loses the validators' and protocol's 15 %). Off: every finalized task
    /// counts (the rules before formula version 4).
    #[serde(default)]
    pub probe_emission: bool,
}

/// What an epoch carries into the next: every worker's trust, audit record and every model's
/// status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// Trust of every known worker after the previous epoch.
    pub trust: BTreeMap<Address, TrustState>,
    /// Status of every registered model after the previous epoch.
    pub models: BTreeMap<u32, u8>,
    /// Every worker's decayed audit record after the previous epoch (absent: none yet).
    #[serde(default)]
    pub accuracy: BTreeMap<Address, AuditRecord>,
}

/// A worker's audit record across epochs, each past epoch's judgements weighted by the trust
/// keep factor per epoch since (0.8 at the defaults), in ppm of a judgement: `audited_ppm` sums
/// 1e6 per judgement, `quality_ppm` the passed judgements' quality. The accuracy estimate is
/// `(quality + 1) / (audited + 1)` over the record: a worker drawn for few audits is judged on
/// its history, not reset to a prior each epoch, and the prior is a first pass (1.0 without
/// audits) rather than 0.5, so a small worker's few audits do not rank it below a large worker
/// of measured lower quality (issue 14, big-stake-vs-quality). A failed judgement weighs on it
/// for about five epochs; frauds are punished by the slash and the pinned trust, not here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Judgements, decayed, in ppm.
    pub audited_ppm: u64,
    /// Quality of the passed ones, decayed, in ppm (at most `audited_ppm`).
    pub quality_ppm: u64,
}

impl AuditRecord {
    /// The record after an epoch with `audited` judgements whose passed ones sum
    /// `quality_sum_ppm`: the previous one decayed by `keep_wad`, plus the epoch's.
    pub fn next(&self, audited: u64, quality_sum_ppm: u64, keep_wad: u64) -> Self {
        let decay = |v: u64| {
            let d = u128::from(v) * u128::from(keep_wad.min(powr::WAD)) / u128::from(powr::WAD);
            u64::try_from(d).unwrap_or(u64::MAX)
        };
        let audited_ppm = decay(self.audited_ppm).saturating_add(audited.saturating_mul(powr::PPM));
        let quality_ppm = decay(self.quality_ppm)
            .saturating_add(quality_sum_ppm)
            .min(audited_ppm);
        Self {
            audited_ppm,
            quality_ppm,
        }
    }

    /// `(quality + 1) / (audited + 1)` in WAD (floored): 1.0 without judgements.
    pub fn accuracy_wad(&self) -> u64 {
        let ppm = u128::from(powr::PPM);
        let num = u128::from(self.quality_ppm.min(self.audited_ppm)) + ppm;
        let den = u128::from(self.audited_ppm) + ppm;
        u64::try_from(num * u128::from(powr::WAD) / den).unwrap_or(powr::WAD)
    }
}

/// One worker's row of an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// Worker address.
    pub address: Address,
    /// The facts gathered for it.
    pub facts: NodeEpochFacts,
    /// False when it was idle (no assignment, no slash or proven fraud): trust carried
    /// unchanged.
    pub evaluated: bool,
    /// A dispute over one of its results was resolved `Fraud` in the epoch.
    pub fraud: bool,
    /// The four rates.
    pub rates: Rates,
    /// Epoch quality `q` (WAD).
    pub quality_wad: u64,
    /// Trust it entered the epoch with (WAD; `T_0` for a new address).
    pub prev_trust_wad: u64,
    /// Trust after the epoch (its trust-tree leaf).
    pub trust: TrustState,
    /// Audit record after the epoch (its accuracy is `rates.accuracy`).
    pub audit_record: AuditRecord,
    /// Tasks finalized for it in the epoch (results and failure codes).
    pub tasks_finalized: u64,
    /// Compute units of its finalized results (code 0).
    pub compute_units: u64,
    /// PoWR score.
    pub score: u128,
    /// Worker-pool reward in wei.
    pub reward: U256,
}

/// One validator's row of an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorRow {
    /// Validator address.
    pub address: Address,
    /// Active validator stake at the epoch's end.
    pub stake: U256,
    /// Verdicts it signed plus dispute votes it cast in the epoch.
    pub audits_done: u64,
    /// Verdict and dispute-vote deadlines it let pass in the epoch (`DeadlineMissed`).
    pub audits_missed: u64,
    /// Reliability `(done + 1) / (done + missed + 2)` (WAD).
    pub reliability_wad: u64,
    /// Slashed as a validator (false accusation or lazy approval) in the epoch.
    pub slashed: bool,
    /// Share weight in the validators' pool: `stake · reliability`, 0 when slashed.
    pub weight: u128,
    /// Validator-pool reward in wei.
    pub reward: U256,
}

/// A validator's audit record in one epoch (the facts behind its reliability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorAudits {
    /// `VerdictAccepted` events it signed plus `DisputeVoted` events it cast.
    pub done: u64,
    /// `DeadlineMissed` events of it (audit verdicts and dispute votes).
    pub missed: u64,
    /// A `Slashed` event of it as validator (role 1) for a false accusation or a lazy approval.
    pub slashed: bool,
}

/// Usage of one model in an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRow {
    /// Model id.
    pub model_id: u32,
    /// Its developer (paid from the model pool).
    pub developer: Address,
    /// Tasks of the model finalized in the epoch.
    pub tasks_finalized: u64,
    /// Compute units of its results (code 0) finalized in the epoch.
    pub compute_units: u64,
}

/// Measured quality and status of one registered model in an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelQualityRow {
    /// Model id.
    pub model_id: u32,
    /// `TaskRated` events of the model in the epoch.
    pub ratings: u64,
    /// Sum of their scores (0..=100 each).
    pub score_sum: u64,
    /// Average score / 100 (WAD; 1.0 without ratings).
    pub feedback_wad: u64,
    /// Canary reports of the model in the epoch (first report per task).
    pub canaries: u64,
    /// Of those, the ones whose result matched the known answer.
    pub canary_matches: u64,
    /// Validators' canary accuracy: `canary_matches / canaries` (WAD; 1.0 without canaries).
    pub canary_accuracy_wad: u64,
    /// Measured quality: feedback x canary accuracy (WAD).
    pub quality_wad: u64,
    /// Status the model entered the epoch with.
    pub prev_status: u8,
    /// `ModelRegistry` status at the epoch's end (from its events).
    pub chain_status: u8,
    /// Status after the epoch.
    pub status: u8,
}

impl ModelQualityRow {
    /// Whether the epoch report carries a leaf for this model (its status differs from the
    /// registry's).
    pub fn in_report(&self) -> bool {
        self.status != self.chain_status
    }
}

/// Everything computed for an epoch: the report validators sign, both Merkle trees and the
/// per-account rows behind them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochOutcome {
    /// The epoch.
    pub epoch: u64,
    /// First block time of the epoch.
    pub start_time: u64,
    /// First block time after the epoch.
    pub end_time: u64,
    /// Last block time whose events feed the epoch.
    pub facts_until: u64,
    /// Emission budget `B`.
    pub budget: U256,
    /// Workers' pool (70 % of `B`).
    pub worker_pool: U256,
    /// Validators' pool (20 % of `B`).
    pub validator_pool: U256,
    /// Model developers' pool (the rest of `B`).
    pub model_pool: U256,
    /// The report (`totalRewards` = sum of the rewards tree <= `budget`).
    pub report: EpochReport,
    /// Rewards tree (accounts with a non-zero reward).
    pub rewards: AccountTree,
    /// Trust tree (every known worker).
    pub trust: AccountTree,
    /// Workers, ascending by address.
    pub workers: Vec<WorkerRow>,
    /// Validators with stake, ascending by address.
    pub validators: Vec<ValidatorRow>,
    /// Models used in the epoch, ascending by id.
    pub models: Vec<ModelRow>,
    /// Model-pool rewards per developer, ascending by address.
    pub developer_rewards: Vec<(Address, U256)>,
    /// Measured quality and status of every registered model, ascending by id.
    pub model_quality: Vec<ModelQualityRow>,
    /// Model status tree (the report's `modelStatusHash`): models whose status after the epoch
    /// differs from the registry's.
    pub model_status: ModelStatusTree,
    /// Assignments in the epoch.
    pub tasks_assigned: u64,
    /// Tasks finalized in the epoch.
    pub tasks_finalized: u64,
}

impl EpochOutcome {
    /// Trust of every worker after this epoch (the input of the next one).
    pub fn trust_states(&self) -> BTreeMap<Address, TrustState> {
        self.workers.iter().map(|w| (w.address, w.trust)).collect()
    }

    /// What this epoch carries into the next.
    pub fn carried(&self) -> Carried {
        Carried {
            trust: self.trust_states(),
            models: self.model_statuses(),
            accuracy: self
                .workers
                .iter()
                .filter(|w| w.audit_record != AuditRecord::default())
                .map(|w| (w.address, w.audit_record))
                .collect(),
        }
    }

    /// Status of every registered model after this epoch (the input of the next one).
    pub fn model_statuses(&self) -> BTreeMap<u32, u8> {
        self.model_quality
            .iter()
            .map(|m| (m.model_id, m.status))
            .collect()
    }

    /// An account's reward split into (worker, validator, developer) parts.
    pub fn reward_parts(&self, account: Address) -> (U256, U256, U256) {
        let w = self
            .workers
            .binary_search_by_key(&account, |r| r.address)
            .map(|i| self.workers[i].reward)
            .unwrap_or_default();
        let v = self
            .validators
            .binary_search_by_key(&account, |r| r.address)
            .map(|i| self.validators[i].reward)
            .unwrap_or_default();
        let d = self
            .developer_rewards
            .binary_search_by_key(&account, |r| r.0)
            .map(|i| self.developer_rewards[i].1)
            .unwrap_or_default();
        (w, v, d)
    }
}

impl WorkerFacts {
    /// One judgement of the worker's results: `Some(quality)` passed, `None` failed.
    pub fn judged(&mut self, passed_quality_ppm: Option<u32>) {
        self.audited += 1;
        if let Some(q) = passed_quality_ppm {
            self.passed += 1;
            self.quality_sum_ppm += u64::from(q).min(powr::PPM);
        }
    }

    /// The PoWR work items: audited results at their judgement's quality, unaudited ones at
    /// the accuracy estimate (scaled by an on-chain quality below 1.0). With `probes_only`, the
    /// probe tasks alone ([`EpochFacts::probe_emission`]).
    pub fn work(&self, accuracy_wad: u64, probes_only: bool) -> Vec<FinalizedTask> {
        let estimate = accuracy_wad.min(powr::WAD) / (powr::WAD / powr::PPM);
        let tasks = if probes_only {
            &self.probes
        } else {
            &self.finalized
        };
        tasks
            .iter()
            .map(|&(units, judged, chain_quality)| FinalizedTask {
                compute_units: units,
                verdict_quality_ppm: match judged {
                    Some(q) => Some(q),
                    None if u64::from(chain_quality) >= powr::PPM => None,
                    None => Some(
                        u32::try_from(estimate * u64::from(chain_quality) / powr::PPM).unwrap_or(0),
                    ),
                },
            })
            .collect()
    }
}

/// Completion over probe assignments, `(on_time + 1) / (assigned + 1)` (WAD, floored): 1.0
/// when every probe was committed in time, whatever their number.
pub fn probe_completion_wad(on_time: u64, assigned: u64) -> u64 {
    let on_time = on_time.min(assigned);
    let v = (u128::from(on_time) + 1) * u128::from(powr::WAD) / (u128::from(assigned) + 1);
    u64::try_from(v).unwrap_or(powr::WAD)
}

/// Validators' canary accuracy of a model: `matches / reports` (WAD, floored), 1.0 without
/// reports ([`CANARY_ACCURACY_WITHOUT_CANARIES_WAD`]).
pub fn canary_accuracy_wad(reports: u64, matches: u64) -> u64 {
    if reports == 0 {
        return CANARY_ACCURACY_WITHOUT_CANARIES_WAD;
    }
    let v = u128::from(matches.min(reports)) * u128::from(powr::WAD) / u128::from(reports);
    u64::try_from(v).unwrap_or(powr::WAD)
}

/// Computes an epoch from its facts and the previous epoch's state. Pure and deterministic.
pub fn compute(facts: &EpochFacts, carried: &Carried) -> Result<EpochOutcome, EpochComputeError> {
    let prev = &carried.trust;
    let params = &facts.params;
    let acc = &facts.workers;
    // Evaluate every known worker.
    let mut addresses: BTreeSet<Address> = prev.keys().copied().collect();
    addresses.extend(facts.staked_workers.iter().copied());
    addresses.extend(
        acc.iter()
            .filter(|(_, a)| a.assigned > 0 || a.tasks_finalized > 0 || a.audited > 0 || a.fraud)
            .map(|(k, _)| *k),
    );
    addresses.extend(
        facts
            .slashed
            .iter()
            .filter(|a| prev.contains_key(*a) || acc.contains_key(*a)),
    );
    let empty = WorkerFacts::default();
    let mut workers = Vec::with_capacity(addresses.len());
    for address in addresses {
        let a = acc.get(&address).unwrap_or(&empty);
        let is_slashed = facts.slashed.contains(&address) || a.fraud;
        let window = u32::try_from(a.active_epochs.len()).unwrap_or(u32::MAX);
        let up = u32::try_from(a.commit_epochs.len()).unwrap_or(u32::MAX);
        // With probe emission on, completion and speed are measured on the prober's tasks, the
        // protocol's own sample: a worker's self-paid tasks would otherwise buy a better
        // completion (its Laplace prior rewards volume) and speed (fast trivial tasks lower the
        // median latency), hence trust, sortition weight and probes.
        let (assigned, on_time, latencies) = if facts.probe_emission {
            (a.probe_assigned, a.probe_on_time, &a.probe_latencies)
        } else {
            (a.assigned, a.on_time, &a.latencies)
        };
        let node = NodeEpochFacts {
            assigned,
            on_time,
            audited: a.audited,
            passed: a.passed,
            quality_sum_ppm: a.quality_sum_ppm,
            heartbeat_epochs_in_window: up,
            window: window.max(1),
            latencies_secs: latencies.clone(),
            response_window_secs: facts.response_window_secs,
            slashed: is_slashed,
        };
        let prev_state = prev.get(&address).copied();
        // Judgements alone do not make an idle worker evaluated: its completion and speed would
        // fall back to their priors and pull a good trust down. With probe emission on, an
        // epoch without a probe assignment is idle in this sense.
        let evaluated = assigned > 0 || is_slashed;
        let prev_record = carried.accuracy.get(&address).copied().unwrap_or_default();
        // Accuracy is the posterior over the decayed record (an idle worker's record is kept
        // as it was, like its trust).
        let audit_record = if evaluated || a.audited > 0 {
            prev_record.next(a.audited, a.quality_sum_ppm, params.trust_keep_wad)
        } else {
            prev_record
        };
        let mut rates = node.rates()?;
        rates.accuracy = audit_record.accuracy_wad();
        if facts.probe_emission {
            // A worker gets a few probes an epoch: the `(on_time + 1) / (assigned + 2)` prior
            // would put a small worker's single on-time probe (0.67) far below a large worker's
            // hundred (0.99), so a clean probe record is 1.0, as the accuracy's is.
            rates.completion = probe_completion_wad(on_time, assigned);
        }
        let quality_wad = epoch_quality(&rates, params);
        let trust = if evaluated {
            next_trust(prev_state, quality_wad, is_slashed, params)
        } else {
            let carried = prev_state.unwrap_or_else(|| TrustState::new_node(params));
            match carried.zero_epochs_left {
                0 => carried,
                // the pin ends: back to the new-node trust, whatever the priors' quality
                1 => TrustState::new_node(params),
                _ => next_trust(Some(carried), quality_wad, false, params),
            }
        };
        let score = powr_score(
            &a.work(rates.accuracy, facts.probe_emission),
            rates.accuracy,
            trust.trust_wad,
        );
        workers.push(WorkerRow {
            address,
            facts: node,
            evaluated,
            fraud: a.fraud,
            rates,
            quality_wad,
            prev_trust_wad: prev_state.map_or(params.initial_trust_wad, |p| p.trust_wad),
            trust,
            audit_record,
            tasks_finalized: a.tasks_finalized,
            compute_units: a.compute_units,
            score,
            reward: U256::ZERO,
        });
    }

    // Models and their developers.
    let mut models = Vec::with_capacity(facts.model_usage.len());
    let mut developer_units: BTreeMap<Address, u128> = BTreeMap::new();
    for (&model_id, usage) in &facts.model_usage {
        let units = if facts.probe_emission {
            usage.probe_compute_units
        } else {
            usage.compute_units
        };
        *developer_units.entry(usage.developer).or_default() += u128::from(units);
        models.push(ModelRow {
            model_id,
            developer: usage.developer,
            tasks_finalized: usage.tasks_finalized,
            compute_units: usage.compute_units,
        });
    }

    // Pools and rewards.
    let budget = facts.budget;
    let bps = U256::from(10_000u64);
    let worker_pool = budget * U256::from(WORKER_SHARE_BPS) / bps;
    let validator_pool = budget * U256::from(VALIDATOR_SHARE_BPS) / bps;
    let model_pool = budget - worker_pool - validator_pool;
    let scores: Vec<(Address, u128)> = workers.iter().map(|w| (w.address, w.score)).collect();
    let worker_rewards = powr::split_budget(worker_pool, &scores)?;
    for (w, (_, r)) in workers.iter_mut().zip(&worker_rewards) {
        w.reward = *r;
    }
    // Validators: stake x reliability of their audit work in the epoch (0 when slashed).
    let mut validators: Vec<ValidatorRow> = facts
        .validator_stake
        .iter()
        .filter(|(_, s)| !s.is_zero())
        .map(|(a, s)| {
            let rec = facts.validator_audits.get(a).copied().unwrap_or_default();
            let reliability_wad = powr::validator_reliability_wad(rec.done, rec.missed);
            ValidatorRow {
                address: *a,
                stake: *s,
                audits_done: rec.done,
                audits_missed: rec.missed,
                reliability_wad,
                slashed: rec.slashed,
                weight: powr::validator_weight(*s, reliability_wad, rec.slashed),
                reward: U256::ZERO,
            }
        })
        .collect();
    let weights: Vec<(Address, u128)> = validators.iter().map(|v| (v.address, v.weight)).collect();
    let validator_rewards = powr::split_budget(validator_pool, &weights)?;
    for (v, (_, r)) in validators.iter_mut().zip(&validator_rewards) {
        v.reward = *r;
    }
    let units: Vec<(Address, u128)> = developer_units.into_iter().collect();
    let developer_rewards = powr::split_budget(model_pool, &units)?;
    let merged = powr::merge_rewards([
        worker_rewards.as_slice(),
        validator_rewards.as_slice(),
        developer_rewards.as_slice(),
    ]);
    let rewards = AccountTree::rewards(&merged)?;
    let trust_entries: Vec<(Address, u64)> = workers
        .iter()
        .map(|w| (w.address, w.trust.trust_wad))
        .collect();
    let trust = AccountTree::trust(&trust_entries)?;
    let (model_quality, model_status) = measure_models(&facts.models, &carried.models)?;
    let report = build_report(facts.epoch, &rewards, &trust, model_status.root());
    if report.totalRewards > budget {
        return Err(EpochComputeError::OverBudget {
            rewards: report.totalRewards,
            budget,
        });
    }
    Ok(EpochOutcome {
        epoch: facts.epoch,
        start_time: facts.start_time,
        end_time: facts.end_time,
        facts_until: facts.facts_until,
        budget,
        worker_pool,
        validator_pool,
        model_pool,
        report,
        rewards,
        trust,
        workers,
        validators,
        models,
        developer_rewards,
        model_quality,
        model_status,
        tasks_assigned: facts.tasks_assigned,
        tasks_finalized: facts.tasks_finalized,
    })
}

/// Measured quality and status of every registered model, and the model status tree of the
/// report (see `chainstore::epochs`, "Model statuses").
fn measure_models(
    models: &BTreeMap<u32, ModelFacts>,
    prev: &BTreeMap<u32, u8>,
) -> Result<(Vec<ModelQualityRow>, ModelStatusTree), PowrError> {
    let mut out = Vec::with_capacity(models.len());
    for (&model_id, m) in models {
        let prev_status = match prev.get(&model_id) {
            Some(p) if !m.changed_in_epoch => *p,
            _ => m.chain_status,
        };
        let evidence = Evidence {
            ratings: m.ratings,
            feedback_wad: feedback_wad(m.ratings, m.score_sum),
            canaries: m.canaries,
            canary_accuracy_wad: canary_accuracy_wad(m.canaries, m.canary_matches),
        };
        let (feedback, canary, quality) = (
            evidence.feedback_wad,
            evidence.canary_accuracy_wad,
            evidence.quality_wad(),
        );
        out.push(ModelQualityRow {
            model_id,
            ratings: m.ratings,
            score_sum: m.score_sum,
            feedback_wad: feedback,
            canaries: m.canaries,
            canary_matches: m.canary_matches,
            canary_accuracy_wad: canary,
            quality_wad: quality,
            prev_status,
            chain_status: m.chain_status,
            status: next_model_status(prev_status, &evidence),
        });
    }
    let leaves: Vec<(u32, u8)> = out
        .iter()
        .filter(|m| m.in_report())
        .map(|m| (m.model_id, m.status))
        .collect();
    let tree = ModelStatusTree::new(&leaves)?;
    Ok((out, tree))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Address = Address::repeat_byte(0x11);
    const IDLE: Address = Address::repeat_byte(0x22);
    const CHEAT: Address = Address::repeat_byte(0x33);
    const V: Address = Address::repeat_byte(0x44);
    const DEV: Address = Address::repeat_byte(0x55);

    fn busy(assigned: u64, units: u32) -> WorkerFacts {
        WorkerFacts {
            assigned,
            on_time: assigned,
            latencies: vec![2; assigned as usize],
            active_epochs: [0].into(),
            commit_epochs: [0].into(),
            finalized: vec![(units, None, 1_000_000); assigned as usize],
            tasks_finalized: assigned,
            compute_units: u64::from(units) * assigned,
            ..Default::default()
        }
    }

    /// One honest worker, an idle one carried over, a cheater with a proven fraud, one
    /// validator and one model: 1,000 DN of budget.
    fn facts() -> EpochFacts {
        let dn = U256::from(10u64).pow(U256::from(18u64));
        let mut cheat = busy(4, 10);
        cheat.fraud = true;
        cheat.audited = 1;
        EpochFacts {
            epoch: 3,
            start_time: 300,
            end_time: 400,
            facts_until: 420,
            budget: U256::from(1_000u64) * dn,
            response_window_secs: 60,
            params: PowrParams::default(),
            workers: [(W, busy(10, 10)), (CHEAT, cheat)].into(),
            staked_workers: [W, IDLE, CHEAT].into(),
            slashed: [CHEAT].into(),
            validator_stake: [(V, U256::from(5_000u64) * dn)].into(),
            validator_audits: [(
                V,
                ValidatorAudits {
                    done: 3,
                    missed: 0,
                    slashed: false,
                },
            )]
            .into(),
            model_usage: [(
                7,
                ModelUsage {
                    developer: DEV,
                    tasks_finalized: 14,
                    compute_units: 140,
                    probe_compute_units: 0,
                },
            )]
            .into(),
            models: [(7, ModelFacts::default())].into(),
            tasks_assigned: 14,
            tasks_finalized: 14,
            probe_emission: false,
        }
    }

    fn carried() -> Carried {
        Carried {
            trust: [(
                IDLE,
                TrustState {
                    trust_wad: 600_000_000_000_000_000,
                    zero_epochs_left: 0,
                },
            )]
            .into(),
            models: BTreeMap::new(),
            accuracy: BTreeMap::new(),
        }
    }

    /// A slashed worker that stays idle (never drawn at trust 0) is pinned at 0 for the fraud's
    /// epoch and 3 more, then gets the new-node trust back; it used to stay at 0 for good.
    #[test]
    fn an_idle_slashed_worker_gets_the_new_node_trust_back_after_its_pin() {
        let mut f = facts();
        let mut carry = carried();
        let k = f.params.slash_zero_epochs;
        for e in 0..k + 2 {
            let out = compute(&f, &carry).unwrap();
            let cheat = out.workers.iter().find(|w| w.address == CHEAT).unwrap();
            let want = if e < k { 0 } else { f.params.initial_trust_wad };
            assert_eq!(cheat.trust.trust_wad, want, "epoch {e} after the fraud");
            carry.trust = out.workers.iter().map(|w| (w.address, w.trust)).collect();
            // from the next epoch on the cheater is idle (no tasks, no fraud)
            f.workers.remove(&CHEAT);
            f.slashed.clear();
            f.epoch += 1;
        }
    }

    #[test]
    fn pools_split_70_20_10_and_the_honest_worker_takes_the_worker_pool() {
        let f = facts();
        let out = compute(&f, &carried()).unwrap();
        let dn = U256::from(10u64).pow(U256::from(18u64));
        assert_eq!(out.worker_pool, U256::from(700u64) * dn);
        assert_eq!(out.validator_pool, U256::from(200u64) * dn);
        assert_eq!(out.model_pool, U256::from(100u64) * dn);
        // the cheater's trust is pinned at 0, so its score and reward are 0: the honest worker
        // is the only scorer of the worker pool, the validator and the developer the only
        // recipients of theirs
        assert_eq!(
            out.reward_parts(W),
            (out.worker_pool, U256::ZERO, U256::ZERO)
        );
        assert_eq!(out.reward_parts(V).1, out.validator_pool);
        assert_eq!(out.reward_parts(DEV).2, out.model_pool);
        assert_eq!(
            out.reward_parts(CHEAT),
            (U256::ZERO, U256::ZERO, U256::ZERO)
        );
        assert_eq!(out.report.totalRewards, f.budget);
        assert_eq!(out.report.epoch, 3);
        let cheat = out.workers.iter().find(|w| w.address == CHEAT).unwrap();
        assert_eq!(cheat.trust.trust_wad, 0);
        assert!(cheat.trust.zero_epochs_left > 0);
        // the idle worker keeps the trust it carried, unevaluated
        let idle = out.workers.iter().find(|w| w.address == IDLE).unwrap();
        assert!(!idle.evaluated);
        assert_eq!(idle.trust, carried().trust[&IDLE]);
        // the honest worker's row is its epoch rates, with the accuracy of its audit record
        // (none before: this epoch's judgements), from the new-node trust
        let w = out.workers.iter().find(|w| w.address == W).unwrap();
        let mut rates = w.facts.rates().unwrap();
        let record = AuditRecord::default().next(
            w.facts.audited,
            w.facts.quality_sum_ppm,
            f.params.trust_keep_wad,
        );
        assert_eq!(w.audit_record, record);
        rates.accuracy = record.accuracy_wad();
        let q = epoch_quality(&rates, &f.params);
        assert_eq!(
            (w.rates, w.quality_wad, w.trust),
            (rates, q, next_trust(None, q, false, &f.params))
        );
        assert_eq!(w.prev_trust_wad, f.params.initial_trust_wad);
        // what it carries into the next epoch
        assert_eq!(
            out.carried().accuracy.get(&W).copied().unwrap_or_default(),
            record
        );
        // the trust tree holds every known worker, the rewards tree every paid account
        assert_eq!(out.trust.entries().len(), 3);
        assert_eq!(out.rewards.entries().len(), 3);
    }

    #[test]
    fn the_audit_record_decays_and_its_accuracy_starts_at_one() {
        let keep = powr::WAD / 10 * 8;
        let none = AuditRecord::default();
        assert_eq!(none.accuracy_wad(), powr::WAD, "no judgement: a first pass");
        // 3 passed at 1.0, 1 failed: (3 + 1) / (4 + 1)
        let r = none.next(4, 3 * powr::PPM, keep);
        assert_eq!((r.audited_ppm, r.quality_ppm), (4_000_000, 3_000_000));
        assert_eq!(r.accuracy_wad(), powr::WAD / 10 * 8);
        // an epoch without judgements: decayed by 0.8, the ratio kept but pulled toward 1.0
        let r2 = r.next(0, 0, keep);
        assert_eq!((r2.audited_ppm, r2.quality_ppm), (3_200_000, 2_400_000));
        assert_eq!(
            u128::from(r2.accuracy_wad()),
            3_400_000 * u128::from(powr::WAD) / 4_200_000
        );
        // one failed judgement: (0 + 1) / (1 + 1); three: 1 / 4
        assert_eq!(none.next(1, 0, keep).accuracy_wad(), powr::WAD / 2);
        assert_eq!(none.next(3, 0, keep).accuracy_wad(), powr::WAD / 4);
        // quality can never exceed the judgements, even from corrupt inputs
        let bad = AuditRecord {
            audited_ppm: 1,
            quality_ppm: 9_000_000,
        };
        assert_eq!(bad.accuracy_wad(), powr::WAD);
        assert!(none.next(1, 5_000_000, keep).quality_ppm <= powr::PPM);
        // saturates instead of overflowing
        let big = none.next(u64::MAX, u64::MAX, keep);
        assert!(big.accuracy_wad() <= powr::WAD);
    }

    #[test]
    fn a_small_worker_is_judged_on_its_record_not_a_fresh_prior() {
        // Two epochs: W passes its only audit in the first and has none in the second; its
        // accuracy in the second comes from the carried record, not the 0.5 of old.
        let mut f = facts();
        let w = f.workers.get_mut(&W).unwrap();
        (w.audited, w.passed, w.quality_sum_ppm) = (1, 1, 1_000_000);
        let first = compute(&f, &carried()).unwrap();
        let mut g = facts();
        g.epoch = 4;
        let w = g.workers.get_mut(&W).unwrap();
        w.audited = 0;
        w.passed = 0;
        w.quality_sum_ppm = 0;
        let second = compute(&g, &first.carried()).unwrap();
        let row = second.workers.iter().find(|r| r.address == W).unwrap();
        let expected = first.carried().accuracy[&W].next(0, 0, g.params.trust_keep_wad);
        assert_eq!(row.audit_record, expected);
        assert_eq!(row.rates.accuracy, expected.accuracy_wad());
        assert!(row.rates.accuracy > powr::WAD / 2, "{}", row.rates.accuracy);
    }

    #[test]
    fn facts_round_trip_through_json_and_compute_the_same_report() {
        let f = facts();
        let json = serde_json::to_string(&f).unwrap();
        let back: EpochFacts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        let c = carried();
        let c_back: Carried = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(
            compute(&back, &c_back).unwrap().report,
            compute(&f, &c).unwrap().report
        );
    }

    #[test]
    fn a_pool_without_recipients_is_left_unminted() {
        let mut f = facts();
        f.validator_stake.clear();
        f.model_usage.clear();
        let out = compute(&f, &carried()).unwrap();
        assert_eq!(out.report.totalRewards, out.worker_pool);
        assert!(out.validators.is_empty() && out.developer_rewards.is_empty());
    }

    /// Wash trading: a developer serves its own model with its own worker and pays its own
    /// tasks at any declared compute units. With probe emission on, those tasks earn nothing
    /// from the pools: the workers' pool follows the probe tasks (the honest worker's two) and
    /// the developers' pool the probe compute units; off, the self-paid units take most of both.
    #[test]
    fn with_probe_emission_self_paid_tasks_earn_no_emission() {
        const WASH: Address = Address::repeat_byte(0x99);
        let mut f = facts();
        let mut wash = busy(50, u32::MAX);
        wash.audited = 0;
        f.workers.insert(WASH, wash);
        f.staked_workers.insert(WASH);
        f.model_usage.insert(
            9,
            ModelUsage {
                developer: WASH,
                tasks_finalized: 50,
                compute_units: 50 * u64::from(u32::MAX),
                probe_compute_units: 0,
            },
        );
        f.models.insert(9, ModelFacts::default());
        // two of the honest worker's tasks were the prober's
        let w = f.workers.get_mut(&W).unwrap();
        w.probes = w.finalized[..2].to_vec();
        f.model_usage.get_mut(&7).unwrap().probe_compute_units = 20;

        let before = compute(&f, &carried()).unwrap();
        let (ww, _, wd) = before.reward_parts(WASH);
        assert!(
            ww > before.worker_pool / U256::from(2u8) && wd > before.model_pool / U256::from(2u8),
            "without probe emission the self-paid units take most of both pools: {ww} {wd}"
        );

        f.probe_emission = true;
        let out = compute(&f, &carried()).unwrap();
        assert_eq!(out.reward_parts(WASH), (U256::ZERO, U256::ZERO, U256::ZERO));
        assert_eq!(out.reward_parts(W).0, out.worker_pool);
        assert_eq!(out.reward_parts(DEV).2, out.model_pool);
        // its self-paid assignments are no probes: its trust is carried as an idle worker's
        let row = |o: &EpochOutcome, a: Address| o.workers.iter().find(|r| r.address == a).cloned();
        let wash = row(&out, WASH).unwrap();
        assert!(!wash.evaluated && wash.trust.trust_wad == wash.prev_trust_wad);
        assert!(row(&before, WASH).unwrap().evaluated);
    }

    /// With probe emission on, completion and speed come from probe assignments only: a
    /// worker's own fast, always-on-time tasks do not raise its trust, and a missed probe counts
    /// against it however many other tasks it committed on time.
    #[test]
    fn with_probe_emission_completion_and_speed_are_measured_on_probes() {
        let mut f = facts();
        f.probe_emission = true;
        let w = f.workers.get_mut(&W).unwrap();
        w.probe_assigned = 4;
        w.probe_on_time = 3;
        w.probe_latencies = vec![30, 30, 30];
        w.probes = w.finalized[..3].to_vec();
        let out = compute(&f, &carried()).unwrap();
        let row = out.workers.iter().find(|r| r.address == W).unwrap();
        assert!(row.evaluated);
        assert_eq!((row.facts.assigned, row.facts.on_time), (4, 3));
        assert_eq!(row.facts.latencies_secs, vec![30, 30, 30]);
        assert_eq!(row.rates.completion, probe_completion_wad(3, 4));
        assert_eq!(probe_completion_wad(4, 4), powr::WAD);
        assert_eq!(probe_completion_wad(1, 1), powr::WAD);
        assert_eq!(probe_completion_wad(0, 1), powr::WAD / 2);
        f.probe_emission = false;
        let all = compute(&f, &carried()).unwrap();
        let all_row = all.workers.iter().find(|r| r.address == W).unwrap();
        assert_eq!(all_row.facts.assigned, 10);
        assert!(row.rates.completion < all_row.rates.completion);
        assert!(row.trust.trust_wad < all_row.trust.trust_wad);
    }

    /// With probe emission on and no probe revealed, the workers' and developers' pools are
    /// left unminted (no fallback to paid tasks: an attacker could otherwise stall the prober's
    /// reveal and buy the emission again).
    #[test]
    fn with_probe_emission_and_no_probes_the_work_pools_stay_unminted() {
        let mut f = facts();
        f.probe_emission = true;
        let out = compute(&f, &carried()).unwrap();
        assert_eq!(out.report.totalRewards, out.validator_pool);
    }

    #[test]
    fn bad_parameters_are_refused_naming_them() {
        let mut f = facts();
        f.response_window_secs = 0;
        let e = compute(&f, &carried()).unwrap_err().to_string();
        assert!(e.contains("response"), "{e}");
    }
}
