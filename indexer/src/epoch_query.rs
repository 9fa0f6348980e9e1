//! Read queries behind the epoch routes of the REST API (`/epochs`, rewards with proofs, trust
//! history, leaderboards), in the API's shape: WAD values as decimal strings plus a float for
//! display, amounts as decimal wei strings, addresses checksummed.

use crate::query::ModelStatus;
use crate::schema::{Address as AddressSchema, Decimal, Hash, Wei};
use alloy::primitives::{Address, U256};
use chainstore::sql::{DbRow, Pool};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeMap;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Roles accepted by `/leaderboard?role=`.
pub const LEADERBOARD_ROLES: [&str; 3] = ["worker", "validator", "model"];

/// Schema of a leaderboard role: one of [`LEADERBOARD_ROLES`].
pub struct LeaderboardRole;

impl PartialSchema for LeaderboardRole {
    fn schema() -> RefOr<Schema> {
        crate::schema::one_of_names(&LEADERBOARD_ROLES, "which leaderboard").into()
    }
}

impl ToSchema for LeaderboardRole {}

const WAD_I64: i64 = 1_000_000_000_000_000_000;
const WAD_U128: u128 = 1_000_000_000_000_000_000;

fn wad_f64(v: i64) -> f64 {
    v as f64 / 1e18
}

fn amount(s: &str) -> U256 {
    crate::ingest::parse_amount(s)
}

/// Claimed totals per epoch from `RewardClaimed`.
async fn claimed_by_epoch(pool: &Pool) -> Result<BTreeMap<i64, (U256, i64)>, sqlx::Error> {
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

/// The epoch report as posted on-chain (`EpochReportPosted`); only `posted` when it was not.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OnChainReport {
    posted: bool,
    /// The posted roots are the ones this indexer computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    matches_computed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rewards_root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Wei>)]
    total_rewards: Option<String>,
    /// Validators that signed the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<AddressSchema>>)]
    signers: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Wei>)]
    signed_stake: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Wei>)]
    total_validator_stake: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_number: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Hash>)]
    tx_hash: Option<String>,
}

fn on_chain_report(
    r: Option<&DbRow>,
    rewards_root: &str,
    trust_root: &str,
) -> Result<OnChainReport, sqlx::Error> {
    let Some(r) = r else {
        return Ok(OnChainReport {
            posted: false,
            matches_computed: None,
            rewards_root: None,
            trust_root: None,
            total_rewards: None,
            signers: None,
            signed_stake: None,
            total_validator_stake: None,
            block_number: None,
            tx_hash: None,
        });
    };
    let rr: String = r.try_get("rewards_root")?;
    let tr: String = r.try_get("trust_root")?;
    let signers: String = r.try_get("signers")?;
    Ok(OnChainReport {
        posted: true,
        matches_computed: Some(rr == rewards_root && tr == trust_root),
        rewards_root: Some(rr),
        trust_root: Some(tr),
        total_rewards: Some(r.try_get("total_rewards")?),
        signers: Some(serde_json::from_str::<Value>(&signers).unwrap_or(Value::Null)),
        signed_stake: Some(r.try_get("signed_stake")?),
        total_validator_stake: Some(r.try_get("total_validator_stake")?),
        block_number: Some(r.try_get("block_number")?),
        tx_hash: Some(r.try_get("tx_hash")?),
    })
}

/// The report validators sign for an epoch (`Settlement.postEpochReport`'s arguments).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpochReport {
    epoch: i64,
    rewards_root: String,
    trust_root: String,
    #[schema(value_type = Wei)]
    total_rewards: String,
    model_status_hash: String,
}

/// An epoch's reward pools.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RewardPools {
    #[schema(value_type = Wei)]
    worker: String,
    #[schema(value_type = Wei)]
    validator: String,
    #[schema(value_type = Wei)]
    model: String,
}

/// A computed epoch as listed (`/epochs`): its report, budget, pools and totals, whether the
/// report was posted on-chain and what was claimed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EpochSummary {
    epoch: i64,
    /// Unix time the epoch starts.
    start_time: i64,
    /// Unix time the epoch ends (exclusive).
    end_time: i64,
    report: EpochReport,
    /// Emission budget of the epoch.
    #[schema(value_type = Wei)]
    budget: String,
    pools: RewardPools,
    /// Budget not given out as rewards.
    #[schema(value_type = Wei)]
    unminted: String,
    tasks_assigned: i64,
    tasks_finalized: i64,
    /// Rewards claimed so far.
    #[schema(value_type = Wei)]
    claimed: String,
    /// Claims so far.
    claims: i64,
    /// The report was posted on-chain.
    posted: bool,
    on_chain: OnChainReport,
}

fn epoch_summary(
    r: &DbRow,
    claimed: Option<&(U256, i64)>,
    on_chain: OnChainReport,
) -> Result<EpochSummary, sqlx::Error> {
    let total: String = r.try_get("total_rewards")?;
    let budget: String = r.try_get("budget")?;
    let unminted = amount(&budget).saturating_sub(amount(&total));
    let (claimed, claims) = claimed.copied().unwrap_or_default();
    Ok(EpochSummary {
        epoch: r.try_get("epoch")?,
        start_time: r.try_get("start_time")?,
        end_time: r.try_get("end_time")?,
        report: EpochReport {
            epoch: r.try_get("epoch")?,
            rewards_root: r.try_get("rewards_root")?,
            trust_root: r.try_get("trust_root")?,
            total_rewards: total,
            model_status_hash: r.try_get("model_status_hash")?,
        },
        budget,
        pools: RewardPools {
            worker: r.try_get("worker_pool")?,
            validator: r.try_get("validator_pool")?,
            model: r.try_get("model_pool")?,
        },
        unminted: unminted.to_string(),
        tasks_assigned: r.try_get("tasks_assigned")?,
        tasks_finalized: r.try_get("tasks_finalized")?,
        claimed: claimed.to_string(),
        claims,
        posted: on_chain.posted,
        on_chain,
    })
}

/// Every computed epoch, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EpochList {
    epochs: Vec<EpochSummary>,
}

/// `GET /epochs`: every computed epoch, newest first.
pub async fn epochs(pool: &Pool) -> Result<EpochList, sqlx::Error> {
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
    let mut epochs = Vec::with_capacity(rows.len());
    for r in &rows {
        let e: i64 = r.try_get("epoch")?;
        let rr: String = r.try_get("rewards_root")?;
        let tr: String = r.try_get("trust_root")?;
        let on_chain = on_chain_report(by_epoch.get(&e).copied(), &rr, &tr)?;
        epochs.push(epoch_summary(r, claimed.get(&e), on_chain)?);
    }
    Ok(EpochList { epochs })
}

/// The four components of a node's trust.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrustComponents {
    /// Tasks finalized / assigned.
    completion: f64,
    /// Judgements of its results: matching verdicts and their quality.
    accuracy: f64,
    /// Tasks answered before their deadline / assigned.
    uptime: f64,
    /// Latency against the network's.
    speed: f64,
}

/// The four components of a node's trust as WADs (1e18 = 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrustComponentsWad {
    #[schema(value_type = Decimal)]
    completion: String,
    #[schema(value_type = Decimal)]
    accuracy: String,
    #[schema(value_type = Decimal)]
    uptime: String,
    #[schema(value_type = Decimal)]
    speed: String,
}

/// Accuracy facts: judgements of a node's results made in the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EpochNodeAudits {
    audited: i64,
    passed: i64,
    quality_sum_ppm: i64,
    /// A dispute over its result resolved Fraud (trust pinned at 0).
    fraud: bool,
}

/// A worker's row of an epoch: trust and its components, quality, task counts, PoWR score and
/// reward.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EpochNode {
    epoch: i64,
    #[schema(value_type = AddressSchema)]
    address: String,
    /// Trust after the epoch.
    trust: f64,
    #[schema(value_type = Decimal)]
    trust_wad: String,
    /// Trust before the epoch, as a WAD.
    #[schema(value_type = Decimal)]
    prev_trust_wad: String,
    quality: f64,
    #[schema(value_type = Decimal)]
    quality_wad: String,
    components: TrustComponents,
    components_wad: TrustComponentsWad,
    /// It had tasks to be judged by.
    evaluated: bool,
    slashed: bool,
    zero_epochs_left: i64,
    tasks_assigned: i64,
    tasks_on_time: i64,
    tasks_finalized: i64,
    compute_units: i64,
    p50_latency_secs: Option<i64>,
    audits: EpochNodeAudits,
    /// PoWR score.
    score: String,
    #[schema(value_type = Wei)]
    reward: String,
}

fn epoch_node(r: &DbRow) -> Result<EpochNode, sqlx::Error> {
    let wad = |k: &str| -> Result<(String, f64), sqlx::Error> {
        let v: i64 = r.try_get(k)?;
        Ok((v.to_string(), wad_f64(v)))
    };
    let (trust_wad, trust) = wad("trust_wad")?;
    let (quality_wad, quality) = wad("quality_wad")?;
    let (prev_trust_wad, _) = wad("prev_trust_wad")?;
    let (completion_wad, completion) = wad("completion_wad")?;
    let (accuracy_wad, accuracy) = wad("accuracy_wad")?;
    let (uptime_wad, uptime) = wad("uptime_wad")?;
    let (speed_wad, speed) = wad("speed_wad")?;
    Ok(EpochNode {
        epoch: r.try_get("epoch")?,
        address: r.try_get("address")?,
        trust,
        trust_wad,
        prev_trust_wad,
        quality,
        quality_wad,
        components: TrustComponents {
            completion,
            accuracy,
            uptime,
            speed,
        },
        components_wad: TrustComponentsWad {
            completion: completion_wad,
            accuracy: accuracy_wad,
            uptime: uptime_wad,
            speed: speed_wad,
        },
        evaluated: chainstore::sql::flag(r, "evaluated")?,
        slashed: chainstore::sql::flag(r, "slashed")?,
        zero_epochs_left: r.try_get("zero_epochs_left")?,
        tasks_assigned: r.try_get("tasks_assigned")?,
        tasks_on_time: r.try_get("tasks_on_time")?,
        tasks_finalized: r.try_get("tasks_finalized")?,
        compute_units: r.try_get("compute_units")?,
        p50_latency_secs: r.try_get("p50_latency")?,
        audits: EpochNodeAudits {
            audited: r.try_get("audited")?,
            passed: r.try_get("passed")?,
            quality_sum_ppm: r.try_get("quality_sum_ppm")?,
            fraud: chainstore::sql::flag(r, "fraud")?,
        },
        score: r.try_get("score")?,
        reward: r.try_get("reward")?,
    })
}

/// A validator's row of an epoch: stake, reward and the audit record its reward weight
/// followed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EpochValidator {
    #[schema(value_type = AddressSchema)]
    address: String,
    #[schema(value_type = Wei)]
    stake: String,
    #[schema(value_type = Wei)]
    reward: String,
    /// Verdicts signed plus dispute votes cast in the epoch.
    audits_done: u64,
    /// Deadlines missed in the epoch.
    audits_missed: u64,
    /// Share of its audits done, weighting its reward.
    reliability: f64,
    #[schema(value_type = Decimal)]
    reliability_wad: String,
    /// Slashed as validator in the epoch (a false accusation or a lazy approval).
    slashed: bool,
}

/// One computed epoch: the report validators sign, pools and totals, and the per-worker,
/// validator and model tables.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Epoch {
    #[serde(flatten)]
    summary: EpochSummary,
    /// Accounts with a reward leaf.
    rewarded_accounts: i64,
    /// Workers, ascending by address.
    nodes: Vec<EpochNode>,
    /// Validators, ascending by address.
    validators: Vec<EpochValidator>,
    /// Models with usage or a quality row in the epoch, ascending by id.
    models: Vec<EpochModel>,
}

/// `GET /epochs/{n}`: the report, totals, and the per-worker, validator and model tables.
pub async fn epoch(pool: &Pool, epoch: i64) -> Result<Option<Epoch>, sqlx::Error> {
    let Some(r) = sqlx::query(chainstore::sql!("SELECT * FROM epochs WHERE epoch = ?"))
        .bind(epoch)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let report = sqlx::query(chainstore::sql!(
        "SELECT * FROM epoch_reports WHERE epoch = ?"
    ))
    .bind(epoch)
    .fetch_optional(pool)
    .await?;
    let rr: String = r.try_get("rewards_root")?;
    let tr: String = r.try_get("trust_root")?;
    let on_chain = on_chain_report(report.as_ref(), &rr, &tr)?;
    let claimed = claimed_by_epoch(pool).await?;
    let summary = epoch_summary(&r, claimed.get(&epoch), on_chain)?;
    let nodes = sqlx::query(chainstore::sql!(
        "SELECT * FROM epoch_nodes WHERE epoch = ? ORDER BY address"
    ))
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    let nodes = nodes.iter().map(epoch_node).collect::<Result<_, _>>()?;
    let validators = epoch_validators(pool, &r).await?;
    let models = epoch_models(pool, epoch).await?;
    let rewarded_accounts: i64 = sqlx::query_scalar(chainstore::sql!(
        "SELECT COUNT(*) FROM epoch_rewards WHERE epoch = ?"
    ))
    .bind(epoch)
    .fetch_one(pool)
    .await?;
    Ok(Some(Epoch {
        summary,
        rewarded_accounts,
        nodes,
        validators,
        models,
    }))
}

/// The `validators` rows of `GET /epochs/{n}` (`epoch`: the `epochs` row), ascending by address:
/// stake, reward and the audit record its reward weight followed (verdicts and dispute votes
/// done, deadlines missed, reliability, a validator slash), read from the same facts and with the
/// same code as the epoch computation ([`crate::epochs::validator_audits`]).
async fn epoch_validators(pool: &Pool, epoch: &DbRow) -> Result<Vec<EpochValidator>, sqlx::Error> {
    let e: i64 = epoch.try_get("epoch")?;
    let start = u64::try_from(epoch.try_get::<i64, _>("start_time")?).unwrap_or(0);
    let end = u64::try_from(epoch.try_get::<i64, _>("end_time")?).unwrap_or(0);
    let audits = crate::epochs::validator_audits(pool, start, end).await?;
    let rows = sqlx::query(chainstore::sql!(
        "SELECT address, stake, reward FROM epoch_validators WHERE epoch = ? ORDER BY address"
    ))
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
            Ok(EpochValidator {
                address,
                stake: r.try_get("stake")?,
                reward: r.try_get("reward")?,
                audits_done: rec.done,
                audits_missed: rec.missed,
                reliability: reliability as f64 / 1e18,
                reliability_wad: reliability.to_string(),
                slashed: rec.slashed,
            })
        })
        .collect()
}

/// Measured quality of a model in an epoch: feedback (average user score / 100, 1.0 without
/// ratings) x canary accuracy (matching canary reports / reports, 1.0 without reports), and the
/// status the epoch gives it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QualityFields {
    quality: f64,
    #[schema(value_type = Decimal)]
    quality_wad: String,
    /// Average user score / 100 (1.0 without ratings).
    feedback: f64,
    #[schema(value_type = Decimal)]
    feedback_wad: String,
    /// Matching canary reports / reports (1.0 without reports).
    canary_accuracy: f64,
    #[schema(value_type = Decimal)]
    canary_accuracy_wad: String,
    /// User ratings of the model's tasks in the epoch.
    ratings: i64,
    score_sum: i64,
    /// Canary reports of the model in the epoch (first report per task).
    canaries: i64,
    canary_matches: i64,
    /// The status the epoch gives the model.
    status: ModelStatus,
    /// Its status before the epoch.
    prev_status: ModelStatus,
    /// Its status on-chain now.
    chain_status: ModelStatus,
    status_changed: bool,
    /// The status change is in the epoch report's model status tree.
    in_report: bool,
}

impl QualityFields {
    /// The schema of the fields as an optional part of a larger object: the same properties,
    /// none of them required.
    fn optional_schema() -> RefOr<Schema> {
        let mut schema = Self::schema();
        if let RefOr::T(Schema::Object(o)) = &mut schema {
            o.required.clear();
        }
        schema
    }
}

/// The quality fields of an `epoch_model_quality` row.
fn quality_fields(r: &DbRow) -> Result<QualityFields, sqlx::Error> {
    let wad = |k: &str| -> Result<(String, f64), sqlx::Error> {
        let v: i64 = r.try_get(k)?;
        Ok((v.to_string(), wad_f64(v)))
    };
    let (quality_wad, quality) = wad("quality_wad")?;
    let (feedback_wad, feedback) = wad("feedback_wad")?;
    let (canary_accuracy_wad, canary_accuracy) = wad("canary_accuracy_wad")?;
    let status: i64 = r.try_get("status")?;
    let prev: i64 = r.try_get("prev_status")?;
    Ok(QualityFields {
        quality,
        quality_wad,
        feedback,
        feedback_wad,
        canary_accuracy,
        canary_accuracy_wad,
        ratings: r.try_get("ratings")?,
        score_sum: r.try_get("score_sum")?,
        canaries: r.try_get("canaries")?,
        canary_matches: r.try_get("canary_matches")?,
        status: ModelStatus::from_value(status),
        prev_status: ModelStatus::from_value(prev),
        chain_status: ModelStatus::from_value(r.try_get("chain_status")?),
        status_changed: status != prev,
        in_report: chainstore::sql::flag(r, "in_report")?,
    })
}

/// A model's row of an epoch: its usage, plus its measured quality when the epoch has a quality
/// row for it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EpochModel {
    model_id: i64,
    #[schema(value_type = Option<AddressSchema>)]
    developer: Option<String>,
    tasks_finalized: i64,
    compute_units: i64,
    #[serde(flatten)]
    #[schema(schema_with = QualityFields::optional_schema)]
    quality: Option<QualityFields>,
}

/// The `models` rows of `GET /epochs/{n}`: every model with usage or a quality row in the epoch,
/// ascending by id, with its usage, measured quality and status after the epoch.
async fn epoch_models(pool: &Pool, epoch: i64) -> Result<Vec<EpochModel>, sqlx::Error> {
    let mut out: BTreeMap<i64, EpochModel> = BTreeMap::new();
    let usage = sqlx::query(
        chainstore::sql!("SELECT model_id, developer, tasks_finalized, compute_units FROM epoch_models WHERE epoch = ?"),
    )
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    for r in &usage {
        let model_id: i64 = r.try_get("model_id")?;
        out.insert(
            model_id,
            EpochModel {
                model_id,
                developer: Some(r.try_get("developer")?),
                tasks_finalized: r.try_get("tasks_finalized")?,
                compute_units: r.try_get("compute_units")?,
                quality: None,
            },
        );
    }
    let quality = sqlx::query(chainstore::sql!(
        "SELECT q.*, m.developer AS model_developer FROM epoch_model_quality q
         LEFT JOIN models m ON m.model_id = q.model_id WHERE q.epoch = ?"
    ))
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    for r in &quality {
        let model_id: i64 = r.try_get("model_id")?;
        let fields = quality_fields(r)?;
        match out.get_mut(&model_id) {
            Some(row) => row.quality = Some(fields),
            None => {
                out.insert(
                    model_id,
                    EpochModel {
                        model_id,
                        developer: r.try_get("model_developer")?,
                        tasks_finalized: 0,
                        compute_units: 0,
                        quality: Some(fields),
                    },
                );
            }
        }
    }
    Ok(out.into_values().collect())
}

/// A model's quality in one computed epoch.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelQuality {
    #[serde(flatten)]
    fields: QualityFields,
    epoch: i64,
}

/// `quality_history` (oldest first) and `measured_quality` (the latest epoch's quality, null
/// before any computed epoch) of `GET /models/{id}`.
pub async fn model_quality(
    pool: &Pool,
    model_id: u32,
) -> Result<(Vec<ModelQuality>, Option<f64>), sqlx::Error> {
    let rows = sqlx::query(chainstore::sql!(
        "SELECT * FROM epoch_model_quality WHERE model_id = ? ORDER BY epoch"
    ))
    .bind(i64::from(model_id))
    .fetch_all(pool)
    .await?;
    let history = rows
        .iter()
        .map(|r| -> Result<ModelQuality, sqlx::Error> {
            Ok(ModelQuality {
                fields: quality_fields(r)?,
                epoch: r.try_get("epoch")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let measured = history.last().map(|h| h.fields.quality);
    Ok((history, measured))
}

/// Outcome of `GET /epochs/{n}/model-status/{id}`.
pub enum ModelStatusLeaf {
    /// The epoch is not computed.
    NoEpoch,
    /// The model has no leaf in the epoch's model status tree.
    NoLeaf,
    /// The leaf with its proof.
    Leaf(ModelStatusProof),
}

/// A model's leaf of an epoch report's model status tree with its Merkle proof (the arguments of
/// `Settlement.applyModelStatus`) and whether it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelStatusProof {
    epoch: i64,
    model_id: u32,
    /// 0 Active, 1 Probation, 2 Delisted.
    #[schema(minimum = 0, maximum = 2)]
    status: i64,
    status_name: ModelStatus,
    prev_status: ModelStatus,
    chain_status: ModelStatus,
    quality: f64,
    #[schema(value_type = Decimal)]
    quality_wad: String,
    ratings: i64,
    /// Sibling hashes from the leaf up to the model status hash.
    #[schema(value_type = Vec<Hash>)]
    proof: Vec<String>,
    model_status_hash: String,
    /// `ModelStatusApplied` was emitted for the leaf.
    applied: bool,
    #[schema(value_type = Option<Hash>)]
    applied_tx: Option<String>,
}

/// `GET /epochs/{n}/model-status/{id}`: the model's leaf of the epoch's model status tree with
/// its proof (the arguments of `Settlement.applyModelStatus`) and whether it was applied.
pub async fn model_status(
    pool: &Pool,
    epoch: i64,
    model_id: u32,
) -> Result<ModelStatusLeaf, sqlx::Error> {
    let hash: Option<String> = sqlx::query_scalar(chainstore::sql!(
        "SELECT model_status_hash FROM epochs WHERE epoch = ?"
    ))
    .bind(epoch)
    .fetch_optional(pool)
    .await?;
    let Some(hash) = hash else {
        return Ok(ModelStatusLeaf::NoEpoch);
    };
    let Some(r) = sqlx::query(chainstore::sql!(
        "SELECT * FROM epoch_model_quality WHERE epoch = ? AND model_id = ? AND in_report = 1"
    ))
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
        .and_then(|p| serde_json::from_str::<Vec<String>>(&p).ok())
        .unwrap_or_default();
    let applied: Option<String> = sqlx::query_scalar(chainstore::sql!(
        "SELECT tx_hash FROM events WHERE name = 'ModelStatusApplied'
           AND CAST(json_extract(json, '$.epoch') AS BIGINT) = ?
           AND CAST(json_extract(json, '$.modelId') AS BIGINT) = ?
         ORDER BY block_number DESC, log_index DESC LIMIT 1"
    ))
    .bind(epoch)
    .bind(i64::from(model_id))
    .fetch_optional(pool)
    .await?;
    let q = quality_fields(&r)?;
    Ok(ModelStatusLeaf::Leaf(ModelStatusProof {
        epoch,
        model_id,
        status,
        status_name: ModelStatus::from_value(status),
        prev_status: q.prev_status,
        chain_status: q.chain_status,
        quality: q.quality,
        quality_wad: q.quality_wad,
        ratings: q.ratings,
        proof,
        model_status_hash: hash,
        applied: applied.is_some(),
        applied_tx: applied,
    }))
}

/// What an account's reward of an epoch is made of.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RewardParts {
    #[schema(value_type = Wei)]
    worker: String,
    #[schema(value_type = Wei)]
    validator: String,
    #[schema(value_type = Wei)]
    developer: String,
}

/// An account's reward of an epoch with its Merkle proof (for `Settlement.claim`) and whether it
/// was claimed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Reward {
    epoch: i64,
    #[schema(value_type = AddressSchema)]
    account: String,
    #[schema(value_type = Wei)]
    amount: String,
    /// Sibling hashes from the leaf up to the rewards root.
    #[schema(value_type = Vec<Hash>)]
    proof: Vec<String>,
    rewards_root: Option<String>,
    parts: RewardParts,
    claimed: bool,
    #[schema(value_type = Option<Hash>)]
    claim_tx: Option<String>,
}

/// `GET /epochs/{n}/rewards/{address}`: the leaf, its proof and whether it was claimed.
pub async fn reward(
    pool: &Pool,
    epoch: i64,
    account: Address,
) -> Result<Option<Reward>, sqlx::Error> {
    let a = account.to_checksum(None);
    let Some(r) = sqlx::query(chainstore::sql!(
        "SELECT * FROM epoch_rewards WHERE epoch = ? AND account = ?"
    ))
    .bind(epoch)
    .bind(&a)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let root: Option<String> = sqlx::query_scalar(chainstore::sql!(
        "SELECT rewards_root FROM epochs WHERE epoch = ?"
    ))
    .bind(epoch)
    .fetch_optional(pool)
    .await?;
    let claim = sqlx::query(chainstore::sql!(
        "SELECT amount, tx_hash FROM reward_claims WHERE epoch = ? AND account = ?"
    ))
    .bind(epoch)
    .bind(&a)
    .fetch_optional(pool)
    .await?;
    let proof: String = r.try_get("proof")?;
    Ok(Some(Reward {
        epoch,
        account: a,
        amount: r.try_get("amount")?,
        proof: serde_json::from_str(&proof).unwrap_or_default(),
        rewards_root: root,
        parts: RewardParts {
            worker: r.try_get("worker_reward")?,
            validator: r.try_get("validator_reward")?,
            developer: r.try_get("developer_reward")?,
        },
        claimed: claim.is_some(),
        claim_tx: claim
            .map(|c| c.try_get::<String, _>("tx_hash"))
            .transpose()?,
    }))
}

/// The last `TrustRefreshed` of a node: its on-chain trust and the epoch it came from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrustRefresh {
    epoch: i64,
    #[schema(value_type = Decimal)]
    trust_wad: String,
}

/// A node's trust history per epoch with its four components (completion, accuracy, uptime,
/// speed) and the epoch quality.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeTrust {
    #[schema(value_type = AddressSchema)]
    address: String,
    /// Its row of the newest computed epoch it has one in.
    current: Option<EpochNode>,
    last_refresh: Option<TrustRefresh>,
    /// Its rows, oldest first.
    history: Vec<EpochNode>,
}

/// `GET /nodes/{address}/trust`: the node's trust history, oldest first (None: never seen).
pub async fn node_trust(pool: &Pool, node: Address) -> Result<Option<NodeTrust>, sqlx::Error> {
    let a = node.to_checksum(None);
    let rows = sqlx::query(chainstore::sql!(
        "SELECT * FROM epoch_nodes WHERE address = ? ORDER BY epoch"
    ))
    .bind(&a)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        let known: Option<String> = sqlx::query_scalar(chainstore::sql!(
            "SELECT address FROM nodes WHERE address = ?"
        ))
        .bind(&a)
        .fetch_optional(pool)
        .await?;
        if known.is_none() {
            return Ok(None);
        }
    }
    let history: Vec<EpochNode> = rows.iter().map(epoch_node).collect::<Result<_, _>>()?;
    let refreshed: Option<(i64, String)> = sqlx::query_as(
        chainstore::sql!("SELECT epoch, trust_wad FROM trust_refreshes WHERE node = ? ORDER BY block_number DESC, log_index DESC LIMIT 1"),
    )
    .bind(&a)
    .fetch_optional(pool)
    .await?;
    Ok(Some(NodeTrust {
        address: a,
        current: history.last().cloned(),
        last_refresh: refreshed.map(|(epoch, trust_wad)| TrustRefresh { epoch, trust_wad }),
        history,
    }))
}

/// A worker's rank: rewards over all computed epochs, then its latest trust.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WorkerRank {
    #[schema(value_type = AddressSchema)]
    address: String,
    #[schema(value_type = Wei)]
    rewards: String,
    #[schema(value_type = Decimal)]
    trust_wad: String,
    trust: f64,
    /// The epoch `trust` is from.
    trust_epoch: i64,
    tasks_finalized: i64,
    compute_units: i64,
}

/// A validator's rank: rewards over all computed epochs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValidatorRank {
    #[schema(value_type = AddressSchema)]
    address: String,
    #[schema(value_type = Wei)]
    rewards: String,
    /// Its stake in the latest epoch it was in.
    #[schema(value_type = Wei)]
    stake: String,
    /// Epochs it was a validator in.
    epochs: i64,
}

/// A model's rank: compute units of each epoch weighted by its measured quality in it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelRank {
    model_id: i64,
    #[schema(value_type = Option<AddressSchema>)]
    developer: Option<String>,
    tasks_finalized: i64,
    compute_units: i64,
    /// Epochs with usage.
    epochs: i64,
    /// Σ compute units × measured quality of their epoch.
    #[schema(value_type = Decimal)]
    quality_units: String,
    /// Quality in the latest epoch with a quality row.
    measured_quality: Option<f64>,
    #[schema(value_type = Option<Decimal>)]
    measured_quality_wad: Option<String>,
    status: Option<ModelStatus>,
    /// Rewards of the model's developer over all epochs.
    #[schema(value_type = Wei)]
    developer_rewards: String,
}

/// An entry of a leaderboard: a worker's, a validator's or a model's, after the role asked for.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LeaderboardEntry {
    /// `role=worker`.
    Worker(WorkerRank),
    /// `role=validator`.
    Validator(ValidatorRank),
    /// `role=model`.
    Model(ModelRank),
}

/// A leaderboard over all computed epochs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Leaderboard {
    #[schema(value_type = LeaderboardRole)]
    role: String,
    /// Best first.
    entries: Vec<LeaderboardEntry>,
}

/// `GET /leaderboard?role=`: accounts ranked by what they earned over all computed epochs.
/// `role` must be one of [`LEADERBOARD_ROLES`].
pub async fn leaderboard(pool: &Pool, role: &str) -> Result<Leaderboard, sqlx::Error> {
    let entries: Vec<LeaderboardEntry> = match role {
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
                .map(|(address, (reward, trust, tasks, units, epoch))| {
                    LeaderboardEntry::Worker(WorkerRank {
                        address,
                        rewards: reward.to_string(),
                        trust_wad: trust.to_string(),
                        trust: wad_f64(trust),
                        trust_epoch: epoch,
                        tasks_finalized: tasks,
                        compute_units: units,
                    })
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
                .map(|(address, (reward, stake, epochs))| {
                    LeaderboardEntry::Validator(ValidatorRank {
                        address,
                        rewards: reward.to_string(),
                        stake,
                        epochs,
                    })
                })
                .collect()
        }
        _ => model_leaderboard(pool)
            .await?
            .into_iter()
            .map(LeaderboardEntry::Model)
            .collect(),
    };
    Ok(Leaderboard {
        role: role.to_string(),
        entries,
    })
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
async fn model_leaderboard(pool: &Pool) -> Result<Vec<ModelRank>, sqlx::Error> {
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
            ModelRank {
                model_id: id,
                developer: dev,
                tasks_finalized: t.tasks,
                compute_units: t.units,
                epochs: t.epochs,
                quality_units: (t.weighted / WAD_U128).to_string(),
                measured_quality: t.quality_wad.map(wad_f64),
                measured_quality_wad: t.quality_wad.map(|q| q.to_string()),
                status: t.status.map(ModelStatus::from_value),
                developer_rewards: rewards.to_string(),
            }
        })
        .collect())
}
