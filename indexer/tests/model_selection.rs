//! Natural selection of models on real SQLite files filled by the real ingestion code: user
//! ratings move a bad model Active -> Probation -> Delisted through the epoch reports while a
//! good one stays Active, two databases agree on the model status hash, proofs verify, a leaf
//! nobody applied is carried into the next report, and the REST routes serve it all.

mod common;

use alloy::primitives::{B256, U256};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use indexer::api::{router, AppState, SyncStatus};
use indexer::db::Db;
use indexer::epochs::{self, compute_epoch, EpochConfig, EpochOutcome, ModelQualityRow};
use indexer::model_selection::{MIN_CANARIES, MIN_RATINGS};
use protocol::bindings::{
    IAuditManager as A, IModelRegistry as M, ISettlement as X, IStaking as S, ITaskManager as T,
};
use protocol::merkle;
use protocol::powr::{
    model_status_leaf, PowrParams, MODEL_ACTIVE, MODEL_DELISTED, MODEL_PROBATION, WAD,
};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// Seconds per epoch of the fixture: 10 blocks of 12 s (epoch e = blocks 10e..10e+9).
const EPOCH_LEN: u64 = 120;
const RESPONSE_WINDOW: u64 = 60;
/// Rated 90 by the user.
const GOOD: u32 = 1;
/// Rated 10 by the user.
const BAD: u32 = 2;
/// Rated 0, but fewer than MIN_RATINGS times per epoch.
const FEW: u32 = 3;
/// Last block of the fixture: epochs 0, 1 and 2 are ready.
const LAST: u64 = 36;

fn cfg() -> EpochConfig {
    EpochConfig {
        chain_id: CHAIN,
        genesis: time_of(0),
        epoch_length: EPOCH_LEN,
        initial_emission: dn(1_000),
        decay_wad: U256::from(990_000_000_000_000_000u64),
        cap_room: U256::MAX,
        response_window_secs: RESPONSE_WINDOW as u32,
        uptime_window: 6,
        params: PowrParams::default(),
    }
}

/// How a rated task ended.
#[derive(Clone, Copy, PartialEq)]
enum End {
    /// A result (code 0), finalized.
    Result,
    /// A failure code (an input fault), finalized.
    Failure,
    /// A result, held and refunded as a fraud.
    Refunded,
}

/// Submits, assigns, commits and finalizes `n` tasks of `model` (ids from `*next`) in blocks
/// `b`, `b + 1`, `b + 2`, and rates them `score` in block `b + 3`; returns their ids.
fn rated_tasks(
    blocks: &mut [BlockLogs],
    b: usize,
    next: &mut u64,
    model: u32,
    n: u64,
    score: u8,
) -> Vec<u64> {
    ended_tasks(blocks, b, next, model, n, score, End::Result)
}

/// [`rated_tasks`] ending as `end`.
fn ended_tasks(
    blocks: &mut [BlockLogs],
    b: usize,
    next: &mut u64,
    model: u32,
    n: u64,
    score: u8,
    end: End,
) -> Vec<u64> {
    let code = if end == End::Failure { 3u16 } else { 0 };
    let ids: Vec<u64> = (*next..*next + n).collect();
    *next += n;
    for id in &ids {
        blocks[b]
            .push(
                TM,
                T::TaskSubmitted {
                    taskId: U256::from(*id),
                    submitter: USER,
                    modelId: model,
                    fee: dn(1),
                    input: vec![1u8, 2, 3].into(),
                },
            )
            .push(
                TM,
                T::TaskAssigned {
                    taskId: U256::from(*id),
                    worker: W1,
                    deadline: time_of(b as u64) + RESPONSE_WINDOW,
                },
            );
    }
    blocks[b + 1].push(
        TM,
        T::ResultsCommitted {
            batchId: U256::from(1000 + ids[0]),
            worker: W1,
            root: B256::repeat_byte(0x11),
            taskIds: ids.iter().map(|t| U256::from(*t)).collect(),
            outputHashes: ids.iter().map(|_| B256::repeat_byte(7)).collect(),
            codes: ids.iter().map(|_| code).collect(),
            outputs: ids.iter().map(|_| vec![9u8].into()).collect(),
        },
    );
    for id in &ids {
        if end == End::Refunded {
            blocks[b + 2]
                .push(
                    TM,
                    T::TaskHeld {
                        taskId: U256::from(*id),
                    },
                )
                .push(
                    TM,
                    T::TaskReleased {
                        taskId: U256::from(*id),
                        fraud: true,
                    },
                )
                .push(
                    TM,
                    T::TaskRefunded {
                        taskId: U256::from(*id),
                        submitter: USER,
                        amount: dn(1),
                    },
                );
        } else {
            blocks[b + 2].push(
                TM,
                T::TaskFinalized {
                    taskId: U256::from(*id),
                    worker: W1,
                    modelId: model,
                    code,
                    computeUnits: 10,
                    quality: 1_000_000,
                    latency: 12,
                    developerFee: U256::ZERO,
                    workerFee: dn(1),
                    validatorFee: U256::ZERO,
                    protocolFee: U256::ZERO,
                    refund: U256::ZERO,
                },
            );
        }
        blocks[b + 3].push(
            TM,
            T::TaskRated {
                taskId: U256::from(*id),
                modelId: model,
                submitter: USER,
                score,
            },
        );
    }
    ids
}

/// `MIN_CANARIES` failed canary reports of `model`'s tasks `ids` in block `b` (each the first
/// report of its task).
fn failed_canaries(blocks: &mut [BlockLogs], b: usize, model: u32, ids: &[u64]) {
    for id in &ids[..MIN_CANARIES as usize] {
        blocks[b].push(
            AM,
            A::CanaryReported {
                taskId: U256::from(*id),
                worker: W1,
                modelId: model,
                validator: VAL,
                expectedOutputHash: B256::repeat_byte(9),
                matches: false,
                qualityPpm: 0,
            },
        );
    }
}

/// Block 1: a worker and a validator stake, models 1, 2 and 3 are registered. In epochs 0 and 1
/// the user rates 6 tasks of GOOD 90 and 6 of BAD 10, and 4 of FEW 0 (below MIN_RATINGS); in
/// epoch 1 validators' canaries also fail on 5 of BAD's tasks (ratings alone never delist);
/// epoch 2 has no ratings. With `applied`, the chain applies each report's leaf in the next epoch, as
/// the verifier does (Settlement.ModelStatusApplied + ModelRegistry.ModelStatusChanged in block
/// 11 for epoch 0 and block 21 for epoch 1).
fn history(applied: bool) -> Vec<BlockLogs> {
    history_with(applied, true)
}

/// [`history`], with or without the failed canaries of epoch 1.
fn history_with(applied: bool, canaries: bool) -> Vec<BlockLogs> {
    let mut blocks: Vec<BlockLogs> = (0..=LAST).map(BlockLogs::new).collect();
    blocks[1]
        .push(
            STAKING,
            S::Staked {
                account: W1,
                role: 0,
                amount: dn(1000),
                newStake: dn(1000),
            },
        )
        .push(
            STAKING,
            S::Staked {
                account: VAL,
                role: 1,
                amount: dn(5000),
                newStake: dn(5000),
            },
        );
    for id in [GOOD, BAD, FEW] {
        blocks[1].push(
            REG,
            M::ModelRegistered {
                modelId: id,
                developer: DEV,
                sha256Hash: B256::repeat_byte(id as u8),
                uri: format!("file:///m{id}.onnx"),
                pricePerCall: alloy::primitives::Uint::from(dn(1)),
                computeUnits: 10,
                rule: 2,
                tolerance: 0,
                parent: 0,
            },
        );
    }
    let mut next = 1;
    for b in [2usize, 12] {
        rated_tasks(&mut blocks, b, &mut next, GOOD, 6, 90);
        let bad = rated_tasks(&mut blocks, b, &mut next, BAD, 6, 10);
        rated_tasks(&mut blocks, b, &mut next, FEW, MIN_RATINGS - 1, 0);
        if b == 12 && canaries {
            failed_canaries(&mut blocks, b + 3, BAD, &bad);
        }
    }
    if applied {
        apply_leaf(&mut blocks[11], 0, BAD, MODEL_PROBATION);
        apply_leaf(&mut blocks[21], 1, BAD, MODEL_DELISTED);
    }
    blocks
}

/// The chain applies `epoch`'s status leaf of `model` in `block`, as the verifier does
/// (Settlement.ModelStatusApplied + ModelRegistry.ModelStatusChanged).
fn apply_leaf(block: &mut BlockLogs, epoch: u64, model: u32, status: u8) {
    block
        .push(
            SETTLEMENT,
            X::ModelStatusApplied {
                epoch,
                modelId: model,
                status,
            },
        )
        .push(
            REG,
            M::ModelStatusChanged {
                modelId: model,
                status,
            },
        );
}

async fn db_with(dir: &std::path::Path, name: &str, h: &[BlockLogs], one_range: bool) -> Db {
    let db = Db::open(&db_spec(dir, name)).await.unwrap();
    db.bind_deployment(&deployment()).await.unwrap();
    if one_range {
        index(&db, h, 0, LAST).await;
    } else {
        for n in 0..=LAST {
            index(&db, h, n, n).await;
        }
    }
    db
}

fn row(out: &EpochOutcome, model: u32) -> &ModelQualityRow {
    out.model_quality
        .iter()
        .find(|m| m.model_id == model)
        .unwrap_or_else(|| panic!("no quality row for model {model} in epoch {}", out.epoch))
}

/// The leaf of `model` verifies against the report's modelStatusHash with the tree's proof, and
/// the same proof does not verify another status.
fn assert_leaf(out: &EpochOutcome, model: u32, status: u8) {
    let (s, proof) = out
        .model_status
        .proof(model)
        .unwrap_or_else(|| panic!("model {model} has no leaf in epoch {}", out.epoch));
    assert_eq!(s, status, "epoch {} model {model}", out.epoch);
    let root = out.report.modelStatusHash;
    assert!(merkle::verify(
        &proof,
        root,
        model_status_leaf(model, status)
    ));
    assert!(!merkle::verify(
        &proof,
        root,
        model_status_leaf(model, (status + 1) % 3)
    ));
}

#[tokio::test]
async fn low_ratings_move_a_model_to_probation_failed_canaries_delist_it_and_a_good_model_stays_active(
) {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", &history(true), true).await;
    let cfg = cfg();

    let e0 = compute_epoch(&db, &cfg, 0).await.unwrap();
    let bad = row(&e0, BAD);
    assert_eq!((bad.ratings, bad.score_sum), (6, 60));
    assert_eq!(bad.feedback_wad, WAD / 10);
    assert_eq!(bad.canary_accuracy_wad, WAD, "no canaries yet");
    assert_eq!(bad.quality_wad, WAD / 10);
    assert_eq!(
        (bad.prev_status, bad.chain_status, bad.status),
        (MODEL_ACTIVE, MODEL_ACTIVE, MODEL_PROBATION)
    );
    let good = row(&e0, GOOD);
    assert_eq!(good.quality_wad, WAD / 10 * 9);
    assert_eq!(good.status, MODEL_ACTIVE);
    assert!(!good.in_report());
    let few = row(&e0, FEW);
    assert_eq!((few.ratings, few.quality_wad), (MIN_RATINGS - 1, 0));
    assert_eq!(few.status, MODEL_ACTIVE, "too few ratings to move it");
    assert_eq!(e0.model_status.entries(), [(BAD, MODEL_PROBATION)]);
    assert_ne!(e0.report.modelStatusHash, B256::ZERO);
    assert_eq!(e0.report.modelStatusHash, e0.model_status.root());
    assert_leaf(&e0, BAD, MODEL_PROBATION);

    // Epoch 1: the chain applied epoch 0's leaf (Probation); low ratings again and failed
    // canaries: Delisted.
    let e1 = compute_epoch(&db, &cfg, 1).await.unwrap();
    let bad = row(&e1, BAD);
    assert_eq!((bad.canaries, bad.canary_matches), (MIN_CANARIES, 0));
    assert_eq!(bad.canary_accuracy_wad, 0);
    assert_eq!(
        (bad.prev_status, bad.chain_status, bad.status),
        (MODEL_PROBATION, MODEL_PROBATION, MODEL_DELISTED)
    );
    assert_eq!(row(&e1, GOOD).status, MODEL_ACTIVE);
    assert_eq!(row(&e1, FEW).status, MODEL_ACTIVE);
    assert_eq!(e1.model_status.entries(), [(BAD, MODEL_DELISTED)]);
    assert_leaf(&e1, BAD, MODEL_DELISTED);
    assert_ne!(e1.report.modelStatusHash, e0.report.modelStatusHash);

    // Epoch 2: no ratings, the chain shows Delisted: nothing changes, the hash is zero.
    let e2 = compute_epoch(&db, &cfg, 2).await.unwrap();
    assert_eq!(row(&e2, BAD).status, MODEL_DELISTED);
    assert_eq!(row(&e2, GOOD).quality_wad, WAD, "1.0 without ratings");
    assert!(e2.model_status.entries().is_empty());
    assert_eq!(e2.report.modelStatusHash, B256::ZERO);
}

#[tokio::test]
async fn ratings_alone_never_delist_a_model() {
    // issue 14's rating attack: the same low ratings two epochs running, no canary evidence.
    let mut h = history_with(false, false);
    apply_leaf(&mut h[11], 0, BAD, MODEL_PROBATION);
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", &h, true).await;
    let cfg = cfg();
    assert_eq!(
        row(&compute_epoch(&db, &cfg, 0).await.unwrap(), BAD).status,
        MODEL_PROBATION
    );
    let e1 = compute_epoch(&db, &cfg, 1).await.unwrap();
    let bad = row(&e1, BAD);
    assert_eq!((bad.ratings, bad.feedback_wad), (6, WAD / 10));
    assert_eq!(
        (bad.prev_status, bad.chain_status, bad.status),
        (MODEL_PROBATION, MODEL_PROBATION, MODEL_PROBATION),
        "ratings alone keep it on probation"
    );
    assert!(e1.model_status.entries().is_empty());
    assert_eq!(e1.report.modelStatusHash, B256::ZERO);
}

#[tokio::test]
async fn ratings_of_failed_or_refunded_tasks_do_not_count() {
    // A rival pays for tasks it makes fail (an input fault's failure code) or that end
    // refunded, and rates them 0: none of it is evidence about the model.
    let mut blocks: Vec<BlockLogs> = (0..=LAST).map(BlockLogs::new).collect();
    blocks[1].push(
        REG,
        M::ModelRegistered {
            modelId: BAD,
            developer: DEV,
            sha256Hash: B256::repeat_byte(2),
            uri: "file:///m2.onnx".into(),
            pricePerCall: alloy::primitives::Uint::from(dn(1)),
            computeUnits: 10,
            rule: 2,
            tolerance: 0,
            parent: 0,
        },
    );
    let mut next = 1;
    ended_tasks(&mut blocks, 2, &mut next, BAD, 6, 0, End::Failure);
    ended_tasks(&mut blocks, 2, &mut next, BAD, 6, 0, End::Refunded);
    rated_tasks(&mut blocks, 2, &mut next, BAD, MIN_RATINGS - 1, 0);
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", &blocks, true).await;
    let e0 = compute_epoch(&db, &cfg(), 0).await.unwrap();
    let bad = row(&e0, BAD);
    assert_eq!(
        (bad.ratings, bad.score_sum),
        (MIN_RATINGS - 1, 0),
        "only the results' ratings count"
    );
    assert_eq!(bad.status, MODEL_ACTIVE, "too few ratings to move it");
    // One more rated result makes the evidence enough.
    let mut next = 100;
    rated_tasks(&mut blocks, 4, &mut next, BAD, 1, 0);
    let db = db_with(dir.path(), "db2.sqlite", &blocks, true).await;
    let bad = row(&compute_epoch(&db, &cfg(), 0).await.unwrap(), BAD).clone();
    assert_eq!(bad.ratings, MIN_RATINGS);
    assert_eq!(bad.status, MODEL_PROBATION);
}

#[tokio::test]
async fn two_databases_give_identical_model_status_hashes_stored_or_recomputed() {
    let h = history(true);
    let dir = tempfile::tempdir().unwrap();
    let a = db_with(dir.path(), "a.sqlite", &h, true).await;
    let b = db_with(dir.path(), "b.sqlite", &h, false).await;
    let cfg = cfg();
    for e in 0..=2 {
        let (oa, ob) = (
            compute_epoch(&a, &cfg, e).await.unwrap(),
            compute_epoch(&b, &cfg, e).await.unwrap(),
        );
        assert_eq!(
            oa.report.modelStatusHash, ob.report.modelStatusHash,
            "epoch {e}"
        );
        assert_eq!(oa, ob, "epoch {e}");
    }
    // A stores epochs 0 and 1 and continues from the stored statuses; B recomputes in memory.
    assert_eq!(epochs::settle_ready(&a, &cfg, 2).await.unwrap(), [0, 1]);
    let stored: Vec<(i64, i64, i64)> = sqlx::query_as(
        chainstore::sql!("SELECT epoch, status, in_report FROM epoch_model_quality WHERE model_id = ? ORDER BY epoch"),
    )
    .bind(i64::from(BAD))
    .fetch_all(a.pool())
    .await
    .unwrap();
    assert_eq!(stored, [(0, 1, 1), (1, 2, 1)]);
    assert_eq!(
        compute_epoch(&a, &cfg, 2).await.unwrap(),
        compute_epoch(&b, &cfg, 2).await.unwrap()
    );
}

#[tokio::test]
async fn a_leaf_nobody_applied_is_carried_into_the_next_report() {
    // The same ratings, but no report leaf is ever applied on-chain.
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", &history(false), true).await;
    let cfg = cfg();
    let e0 = compute_epoch(&db, &cfg, 0).await.unwrap();
    assert_eq!(e0.model_status.entries(), [(BAD, MODEL_PROBATION)]);
    // Epoch 1 starts from epoch 0's decision (Probation), not from the stale registry.
    let e1 = compute_epoch(&db, &cfg, 1).await.unwrap();
    let bad = row(&e1, BAD);
    assert_eq!(
        (bad.prev_status, bad.chain_status, bad.status),
        (MODEL_PROBATION, MODEL_ACTIVE, MODEL_DELISTED)
    );
    assert_leaf(&e1, BAD, MODEL_DELISTED);
    // Epoch 2 has no ratings, but the registry still says Active: the report keeps the leaf.
    let e2 = compute_epoch(&db, &cfg, 2).await.unwrap();
    assert_eq!(e2.model_status.entries(), [(BAD, MODEL_DELISTED)]);
    assert_ne!(e2.report.modelStatusHash, B256::ZERO);
}

#[tokio::test]
async fn an_admin_status_change_overrides_the_previous_decision() {
    // The admin lists the bad model again (Active) during epoch 1; its low ratings of epoch 1
    // then move it from Active to Probation, not to Delisted.
    let mut h = history(false);
    h[15].push(
        REG,
        M::ModelStatusChanged {
            modelId: BAD,
            status: MODEL_ACTIVE,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", &h, true).await;
    let e1 = compute_epoch(&db, &cfg(), 1).await.unwrap();
    let bad = row(&e1, BAD);
    assert_eq!(
        (bad.prev_status, bad.chain_status, bad.status),
        (MODEL_ACTIVE, MODEL_ACTIVE, MODEL_PROBATION)
    );
}

struct Api {
    state: AppState,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn new() -> (Self, Vec<EpochOutcome>) {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with(dir.path(), "db.sqlite", &history(true), true).await;
        let cfg = cfg();
        assert_eq!(
            epochs::settle_ready(&db, &cfg, 10).await.unwrap(),
            [0, 1, 2]
        );
        let mut outs = Vec::new();
        for e in 0..=2 {
            outs.push(compute_epoch(&db, &cfg, e).await.unwrap());
        }
        let state = AppState {
            db,
            chain_id: CHAIN,
            confirmations: 2,
            sync: Arc::new(SyncStatus::default()),
            metrics: None,
            web_dir: None,
            deployment: None,
            pages: Default::default(),
        };
        (Self { state, _dir: dir }, outs)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let res = router(self.state.clone())
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}")),
        )
    }

    async fn ok(&self, uri: &str) -> Value {
        let (s, v) = self.get(uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        v
    }

    async fn error(&self, uri: &str, status: StatusCode, needle: &str) {
        let (s, v) = self.get(uri).await;
        assert_eq!(s, status, "{uri}: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(needle),
            "{uri}: {detail:?} should mention {needle:?}"
        );
    }
}

fn proof_of(v: &Value) -> Vec<B256> {
    v["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn model_status_route_serves_the_leaf_and_proof_of_a_changed_model_only() {
    let (api, outs) = Api::new().await;
    let v = api.ok(&format!("/epochs/0/model-status/{BAD}")).await;
    assert_eq!(v["model_id"], BAD);
    assert_eq!(v["status"], MODEL_PROBATION);
    assert_eq!(v["status_name"], "probation");
    assert_eq!(v["prev_status"], "active");
    assert_eq!(
        v["model_status_hash"],
        outs[0].report.modelStatusHash.to_string()
    );
    let proof = proof_of(&v);
    assert_eq!(proof, outs[0].model_status.proof(BAD).unwrap().1);
    assert!(merkle::verify(
        &proof,
        outs[0].report.modelStatusHash,
        model_status_leaf(BAD, MODEL_PROBATION)
    ));
    assert_eq!(v["applied"], true, "Settlement.ModelStatusApplied indexed");
    let v1 = api.ok(&format!("/epochs/1/model-status/{BAD}")).await;
    assert_eq!(v1["status"], MODEL_DELISTED);
    assert_eq!(v1["status_name"], "delisted");

    // Unchanged models, an epoch without changes, an epoch not computed, malformed parameters.
    api.error(
        &format!("/epochs/0/model-status/{GOOD}"),
        StatusCode::NOT_FOUND,
        "no status change",
    )
    .await;
    api.error(
        &format!("/epochs/2/model-status/{BAD}"),
        StatusCode::NOT_FOUND,
        "no status change",
    )
    .await;
    api.error("/epochs/9/model-status/1", StatusCode::NOT_FOUND, "epoch 9")
        .await;
    api.error("/epochs/0/model-status/x", StatusCode::BAD_REQUEST, "`id`")
        .await;
    api.error("/epochs/y/model-status/1", StatusCode::BAD_REQUEST, "`n`")
        .await;
}

#[tokio::test]
async fn epoch_model_and_leaderboard_routes_show_quality_and_status() {
    let (api, _) = Api::new().await;
    let e1 = api.ok("/epochs/1").await;
    assert_eq!(e1["report"]["modelStatusHash"].as_str().unwrap().len(), 66);
    let models = e1["models"].as_array().unwrap();
    assert_eq!(
        models
            .iter()
            .map(|m| m["model_id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let by_id = |id: u32| models.iter().find(|m| m["model_id"] == id).unwrap();
    assert_eq!(by_id(GOOD)["quality"], 0.9);
    assert_eq!(by_id(GOOD)["status"], "active");
    assert_eq!(by_id(GOOD)["compute_units"], 60);
    // ratings 0.1 x canary accuracy 0 (its 5 canaries failed)
    assert_eq!(by_id(BAD)["quality"], 0.0);
    assert_eq!(by_id(BAD)["quality_wad"], "0");
    assert_eq!(by_id(BAD)["status"], "delisted");
    assert_eq!(by_id(BAD)["prev_status"], "probation");
    assert_eq!(by_id(BAD)["in_report"], true);
    assert_eq!(by_id(BAD)["developer"], DEV.to_checksum(None));
    assert_eq!(by_id(FEW)["ratings"], MIN_RATINGS - 1);

    let m = api.ok(&format!("/models/{BAD}")).await;
    let history = m["quality_history"].as_array().unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| (h["epoch"].as_u64().unwrap(), h["status"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [(0, "probation"), (1, "delisted"), (2, "delisted")]
    );
    assert_eq!(history[0]["quality"], 0.1);
    assert_eq!(history[0]["ratings"], 6);
    assert_eq!(m["measured_quality"], 1.0, "epoch 2 had no ratings");
    assert_eq!(m["status"], "delisted", "the registry's status");
    let good = api.ok(&format!("/models/{GOOD}")).await;
    assert_eq!(good["quality_history"][1]["quality"], 0.9);

    // Same usage (60 compute units per epoch in epochs 0 and 1), better quality ranks first.
    let lb = api.ok("/leaderboard?role=model").await;
    let entries = lb["entries"].as_array().unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e["model_id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(entries[0]["compute_units"], entries[1]["compute_units"]);
    assert_eq!(entries[0]["quality_units"], "108", "60 x 0.9 x 2 epochs");
    assert_eq!(entries[1]["quality_units"], "6", "60 x 0.1, then 60 x 0");
    assert_eq!(entries[1]["status"], "delisted");
    assert_eq!(entries[2]["quality_units"], "0");
}

#[tokio::test]
async fn openapi_documents_the_model_quality_fields() {
    let (api, _) = Api::new().await;
    let doc = api.ok("/openapi.json").await;
    let route = &doc["paths"]["/epochs/{n}/model-status/{id}"]["get"];
    assert!(route["responses"]["404"].is_object());
    let (props, _) = properties(
        &doc,
        &route["responses"]["200"]["content"]["application/json"]["schema"],
    );
    for k in ["model_id", "status", "proof"] {
        assert!(props[k].is_object(), "model-status {k}");
    }
    let schemas = &doc["components"]["schemas"];
    let (model, _) = properties(&doc, &schemas["Model"]);
    for k in ["measured_quality", "quality_history"] {
        assert!(model[k].is_object(), "Model {k}");
    }
    let (epoch_model, _) = properties(&doc, &schemas["EpochModel"]);
    for k in ["quality", "status"] {
        assert!(epoch_model[k].is_object(), "EpochModel {k}");
    }
    // The served fields are the documented ones.
    let m = api.ok("/models/1").await;
    for k in m.as_object().unwrap().keys() {
        assert!(model[k].is_object(), "Model field {k} undocumented");
    }
    let e = api.ok("/epochs/0").await;
    for k in e["models"][0].as_object().unwrap().keys() {
        assert!(
            epoch_model[k].is_object(),
            "EpochModel field {k} undocumented"
        );
    }
    // Every field the epoch routes serve is documented, recursively.
    let mut uris: Vec<(&str, String)> = vec![
        ("/epochs", "/epochs".into()),
        ("/models/{id}", "/models/1".into()),
        ("/leaderboard", "/leaderboard?role=worker".into()),
        ("/leaderboard", "/leaderboard?role=validator".into()),
        ("/leaderboard", "/leaderboard?role=model".into()),
    ];
    let mut leaves = 0;
    for n in 0..=2 {
        uris.push(("/epochs/{n}", format!("/epochs/{n}")));
        let epoch = api.ok(&format!("/epochs/{n}")).await;
        for node in epoch["nodes"].as_array().unwrap() {
            let a = node["address"].as_str().unwrap();
            uris.push(("/nodes/{address}/trust", format!("/nodes/{a}/trust")));
            let reward = format!("/epochs/{n}/rewards/{a}");
            if api.get(&reward).await.0 == StatusCode::OK {
                uris.push(("/epochs/{n}/rewards/{address}", reward));
            }
        }
        for model in epoch["models"].as_array().unwrap() {
            let leaf = format!("/epochs/{n}/model-status/{}", model["model_id"]);
            if api.get(&leaf).await.0 == StatusCode::OK {
                uris.push(("/epochs/{n}/model-status/{id}", leaf));
                leaves += 1;
            }
        }
    }
    assert!(leaves > 0, "a model status leaf is served");
    for (route, uri) in uris {
        assert_documented(
            &doc,
            &response_schema(&doc, route),
            &api.ok(&uri).await,
            &uri,
        );
    }
}

#[tokio::test]
async fn a_reorg_deletes_the_model_rows_with_their_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let h = history(true);
    let db = db_with(dir.path(), "db.sqlite", &h, true).await;
    let cfg = cfg();
    epochs::settle_ready(&db, &cfg, 10).await.unwrap();
    let rows = |db: &Db| {
        let pool = db.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM epoch_model_quality")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(rows(&db).await, 9);
    // Roll back into epoch 1: its rows and epoch 2's go, epoch 0's stay.
    db.rollback_to(CHAIN, &contracts(), Some(block(15)))
        .await
        .unwrap();
    assert_eq!(rows(&db).await, 3);
    index(&db, &h, 16, LAST).await;
    assert_eq!(epochs::settle_ready(&db, &cfg, 10).await.unwrap(), [1, 2]);
    assert_eq!(rows(&db).await, 9);
}
