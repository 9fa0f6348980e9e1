//! Audit judgements in the PoWR epoch: verdicts, dispute outcomes and canary reports move a
//! worker's accuracy (and through it its trust and reward), audited results score at their
//! verdict's quality, a proven fraud pins trust at 0, canaries set a model's quality, a
//! reorg that removes the judgements changes the recomputed epoch, and validators share their
//! pool by stake x reliability of their audit work (missed deadlines cost, a validator slash
//! zeroes it).

mod common;

use alloy::primitives::{Address, B256, U256};
use common::*;
use indexer::db::Db;
use indexer::epochs::{self, compute_epoch, EpochConfig, EpochOutcome, WorkerRow};
use protocol::bindings::{
    IAuditManager as A, IModelRegistry as M, IStaking as S, ITaskManager as T,
};
use protocol::powr::{PowrParams, MODEL_PROBATION, WAD};

const EPOCH_LEN: u64 = 120;
const RESPONSE_WINDOW: u64 = 60;
const LAST: u64 = 52;

fn cfg() -> EpochConfig {
    EpochConfig {
        chain_id: CHAIN,
        genesis: time_of(0),
        epoch_length: EPOCH_LEN,
        initial_emission: dn(1_000),
        decay_wad: U256::from(WAD),
        cap_room: U256::MAX,
        response_window_secs: RESPONSE_WINDOW as u32,
        uptime_window: 6,
        params: PowrParams::default(),
    }
}

/// Workers: A honest and audited, B with failed canaries, C never audited, D proven fraudulent.
fn worker(k: u64) -> Address {
    Address::left_padding_from(&(0xA000 + k).to_be_bytes())
}
const WA: u64 = 0;
const WB: u64 = 1;
const WC: u64 = 2;
const WD: u64 = 3;

/// Task ids of worker `k` in epoch 0: 6 each, `1 + 6k ..= 6 + 6k`.
fn tasks_of(k: u64) -> std::ops::RangeInclusive<u64> {
    1 + 6 * k..=6 + 6 * k
}

fn verdict(task: u64, k: u64, quality: u32, matches: bool) -> A::VerdictAccepted {
    A::VerdictAccepted {
        taskId: U256::from(task),
        batchId: U256::from(k + 1),
        validator: VAL,
        worker: worker(k),
        workerOutputHash: B256::repeat_byte(7),
        validatorOutputHash: B256::repeat_byte(if matches { 7 } else { 8 }),
        qualityPpm: quality,
        matches,
    }
}

fn finalized(task: u64, k: u64) -> T::TaskFinalized {
    T::TaskFinalized {
        taskId: U256::from(task),
        worker: worker(k),
        modelId: 1,
        code: 0,
        computeUnits: 10,
        quality: 1_000_000,
        latency: 12,
        developerFee: U256::ZERO,
        workerFee: dn(1),
        validatorFee: U256::ZERO,
        protocolFee: U256::ZERO,
        refund: U256::ZERO,
    }
}

fn assign(b: &mut BlockLogs, task: u64, k: u64, block: u64) {
    b.push(
        TM,
        T::TaskSubmitted {
            taskId: U256::from(task),
            submitter: USER,
            modelId: 1,
            fee: dn(1),
            input: vec![1u8, 2, 3].into(),
        },
    )
    .push(
        TM,
        T::TaskAssigned {
            taskId: U256::from(task),
            worker: worker(k),
            deadline: time_of(block) + RESPONSE_WINDOW,
        },
    );
}

fn commit(b: &mut BlockLogs, batch: u64, k: u64, ids: &[u64]) {
    b.push(
        TM,
        T::ResultsCommitted {
            batchId: U256::from(batch),
            worker: worker(k),
            root: B256::repeat_byte(0x11),
            taskIds: ids.iter().map(|t| U256::from(*t)).collect(),
            outputHashes: ids.iter().map(|_| B256::repeat_byte(7)).collect(),
            codes: ids.iter().map(|_| 0u16).collect(),
            outputs: ids.iter().map(|_| vec![9u8].into()).collect(),
        },
    );
}

/// Epoch 0 (blocks 0..=9): every worker gets 6 tasks (block 2), commits them on time (3) and
/// they are finalized (6). With `audits`: A passes 3 verdicts (quality 1.0), B passes one and
/// fails 5 canary reports, D's mismatch verdict ends in a proven fraud (blocks 4, 5; task 19
/// refunded, nothing left to slash). Epochs 1..=3 are idle (but for a late canary report on one
/// of A's results in block 12); in epoch 4 D works again (42..44).
fn chain(audits: bool) -> Vec<BlockLogs> {
    let mut blocks: Vec<BlockLogs> = (0..=LAST).map(BlockLogs::new).collect();
    for k in [WA, WB, WC, WD] {
        blocks[1].push(
            STAKING,
            S::Staked {
                account: worker(k),
                role: 0,
                amount: dn(1000),
                newStake: dn(1000),
            },
        );
    }
    blocks[1]
        .push(
            STAKING,
            S::Staked {
                account: VAL,
                role: 1,
                amount: dn(5000),
                newStake: dn(5000),
            },
        )
        .push(
            REG,
            M::ModelRegistered {
                modelId: 1,
                developer: DEV,
                sha256Hash: B256::repeat_byte(0xab),
                uri: "file:///digits.onnx".into(),
                pricePerCall: alloy::primitives::Uint::from(dn(1)),
                computeUnits: 10,
                rule: 2,
                tolerance: 0,
                parent: 0,
            },
        );
    for k in [WA, WB, WC, WD] {
        for t in tasks_of(k) {
            assign(&mut blocks[2], t, k, 2);
        }
        commit(&mut blocks[3], k + 1, k, &tasks_of(k).collect::<Vec<_>>());
    }
    if audits {
        let b4 = &mut blocks[4];
        for t in 1..=3 {
            b4.push(AM, verdict(t, WA, 1_000_000, true));
        }
        b4.push(AM, verdict(7, WB, 1_000_000, true));
        for t in 8..=12 {
            b4.push(
                AM,
                A::CanaryReported {
                    taskId: U256::from(t),
                    worker: worker(WB),
                    modelId: 1,
                    validator: VAL,
                    expectedOutputHash: B256::repeat_byte(9),
                    matches: false,
                    qualityPpm: 0,
                },
            );
        }
        b4.push(AM, verdict(19, WD, 0, false))
            .push(
                TM,
                T::TaskHeld {
                    taskId: U256::from(19),
                },
            )
            .push(
                AM,
                A::DisputeOpened {
                    taskId: U256::from(19),
                    worker: worker(WD),
                    accuser: VAL,
                    opener: 0,
                    quorumBlock: 4,
                    deadline: time_of(4) + 60,
                },
            )
            .push(
                AM,
                A::QuorumDrawn {
                    taskId: U256::from(19),
                    members: vec![USER],
                    deadline: time_of(4) + 60,
                },
            );
        blocks[5]
            .push(
                AM,
                A::DisputeVoted {
                    taskId: U256::from(19),
                    validator: USER,
                    fraud: true,
                    outputHash: B256::repeat_byte(8),
                },
            )
            .push(
                AM,
                A::DisputeResolved {
                    taskId: U256::from(19),
                    outcome: 3,
                    fraudVotes: 1,
                    honestVotes: 0,
                },
            )
            .push(
                TM,
                T::TaskReleased {
                    taskId: U256::from(19),
                    fraud: true,
                },
            )
            .push(
                TM,
                T::TaskRefunded {
                    taskId: U256::from(19),
                    submitter: USER,
                    amount: dn(1),
                },
            );
    }
    for k in [WA, WB, WC, WD] {
        for t in tasks_of(k).filter(|t| !(audits && *t == 19)) {
            blocks[6].push(TM, finalized(t, k));
        }
    }
    if audits {
        // Epoch 1, while A is idle: a late canary report on one of its epoch-0 results.
        blocks[12].push(
            AM,
            A::CanaryReported {
                taskId: U256::from(4),
                worker: worker(WA),
                modelId: 1,
                validator: VAL,
                expectedOutputHash: B256::repeat_byte(9),
                matches: false,
                qualityPpm: 0,
            },
        );
    }
    assign(&mut blocks[42], 25, WD, 42);
    commit(&mut blocks[43], 5, WD, &[25]);
    blocks[44].push(TM, finalized(25, WD));
    blocks
}

async fn db_with(dir: &std::path::Path, name: &str, audits: bool) -> Db {
    let db = Db::open(&db_spec(dir, name)).await.unwrap();
    db.bind_deployment(&deployment()).await.unwrap();
    index(&db, &chain(audits), 0, LAST).await;
    db
}

fn row(o: &EpochOutcome, k: u64) -> WorkerRow {
    o.workers
        .iter()
        .find(|w| w.address == worker(k))
        .unwrap_or_else(|| panic!("worker {k} in epoch {}", o.epoch))
        .clone()
}

#[tokio::test]
async fn judgements_set_accuracy_trust_and_rewards() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", true).await;
    let cfg = cfg();
    let e0 = compute_epoch(&db, &cfg, 0).await.unwrap();
    let (a, b, c, d) = (row(&e0, WA), row(&e0, WB), row(&e0, WC), row(&e0, WD));

    // Same tasks, same timing: only the judgements differ.
    for w in [&a, &b, &c] {
        assert_eq!(
            (
                w.facts.assigned,
                w.facts.on_time,
                w.tasks_finalized,
                w.compute_units
            ),
            (6, 6, 6, 60)
        );
        assert_eq!(w.rates.completion, a.rates.completion);
        assert_eq!(w.rates.speed, a.rates.speed);
        assert_eq!(w.rates.uptime, a.rates.uptime);
    }
    // a = (Σquality + 1) / (audited + 1) over the audit record (none before epoch 0).
    assert_eq!(
        (a.facts.audited, a.facts.passed, a.facts.quality_sum_ppm),
        (3, 3, 3_000_000)
    );
    assert_eq!(a.rates.accuracy, WAD, "(3 + 1) / (3 + 1)");
    assert_eq!(
        (b.facts.audited, b.facts.passed, b.facts.quality_sum_ppm),
        (6, 1, 1_000_000)
    );
    assert_eq!(b.rates.accuracy, 2 * WAD / 7, "(1 + 1) / (6 + 1)");
    assert_eq!(c.facts.audited, 0);
    assert_eq!(c.rates.accuracy, WAD, "1.0 without audits");
    assert_eq!((d.facts.audited, d.facts.passed), (1, 0));
    assert!(d.fraud && d.facts.slashed);

    // Failed judgements lower trust: A (all passed) = C (none) > B.
    assert_eq!(a.trust.trust_wad, c.trust.trust_wad);
    assert!(c.trust.trust_wad > b.trust.trust_wad);

    // PoWR: A's audited results count at their verdict (1.0), the rest at its accuracy (1.0).
    let work_a: u128 = 3 * 10 * 1_000_000 + 3 * 10 * 1_000_000;
    assert_eq!(
        a.score,
        work_a * u128::from(a.trust.trust_wad) / u128::from(WAD)
    );
    // B: one passed verdict, five failed canaries (0); C: six unaudited at its accuracy 1.0.
    assert_eq!(
        b.score,
        10 * 1_000_000 * u128::from(b.trust.trust_wad) / u128::from(WAD)
    );
    assert_eq!(
        c.score,
        6 * 10 * 1_000_000 * u128::from(c.trust.trust_wad) / u128::from(WAD)
    );
    // The worker with failed audits earns less than the honest ones with the same tasks (an
    // unaudited record counts as clean as an audited clean one: equal scores, the leftover
    // wei of the split to one of them).
    assert_eq!(a.score, c.score);
    assert!(
        b.reward < c.reward && c.reward.abs_diff(a.reward) <= U256::from(1u8),
        "{} {} {}",
        b.reward,
        c.reward,
        a.reward
    );
    assert!(b.reward > U256::ZERO);

    // A proven fraud (even with nothing to slash) zeroes trust and reward.
    assert_eq!(d.trust.trust_wad, 0);
    assert_eq!(d.trust.zero_epochs_left, cfg.params.slash_zero_epochs);
    assert_eq!(d.score, 0);
    assert_eq!(d.reward, U256::ZERO);

    // Canaries measure the model: 0 of 5 right, quality 0; 5 reports are enough evidence.
    let m = e0.model_quality.iter().find(|m| m.model_id == 1).unwrap();
    assert_eq!((m.canaries, m.canary_matches, m.ratings), (5, 0, 0));
    assert_eq!(m.canary_accuracy_wad, 0);
    assert_eq!(m.quality_wad, 0);
    assert_eq!(m.status, MODEL_PROBATION);
}

#[tokio::test]
async fn a_judgement_of_an_idle_worker_leaves_its_trust_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", true).await;
    let cfg = cfg();
    let e0 = row(&compute_epoch(&db, &cfg, 0).await.unwrap(), WA);
    let e1 = row(&compute_epoch(&db, &cfg, 1).await.unwrap(), WA);
    assert_eq!(
        (e1.facts.audited, e1.facts.passed),
        (1, 0),
        "counted in epoch 1"
    );
    assert!(!e1.evaluated, "no assignment in epoch 1");
    assert_eq!(e1.trust, e0.trust);
}

#[tokio::test]
async fn a_fraud_pins_trust_at_zero_for_k_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", true).await;
    let cfg = cfg();
    let k = cfg.params.slash_zero_epochs;
    assert_eq!(k, 4, "the fraud's epoch and 3 more");
    for e in 0..u64::from(k) {
        let d = row(&compute_epoch(&db, &cfg, e).await.unwrap(), WD);
        assert_eq!(d.trust.trust_wad, 0, "epoch {e}");
        assert_eq!(d.trust.zero_epochs_left, k - e as u32, "epoch {e}");
        assert_eq!(d.reward, U256::ZERO, "epoch {e}");
    }
    // Epoch 4: D works again, from the new-node trust (0.8 · 0.2 + 0.2 · q).
    let e4 = compute_epoch(&db, &cfg, 4).await.unwrap();
    let d = row(&e4, WD);
    assert!(
        d.trust.trust_wad >= WAD / 100 * 16 && d.trust.trust_wad <= WAD / 100 * 36,
        "{d:?}"
    );
    assert_eq!(d.trust.zero_epochs_left, 0);
    assert!(d.reward > U256::ZERO);
    // Without the fraud the same worker keeps its trust.
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = db_with(clean_dir.path(), "clean.sqlite", false).await;
    let d = row(&compute_epoch(&clean, &cfg, 0).await.unwrap(), WD);
    assert!(d.trust.trust_wad > 0 && !d.fraud && !d.facts.slashed);
}

#[tokio::test]
async fn audit_facts_are_stored_served_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "a.sqlite", true).await;
    let cfg = cfg();
    assert_eq!(
        epochs::settle_ready(&db, &cfg, 10).await.unwrap(),
        [0, 1, 2, 3, 4]
    );
    // A database filled block by block computes the same epochs.
    let b = Db::open(&db_spec(dir.path(), "b.sqlite")).await.unwrap();
    b.bind_deployment(&deployment()).await.unwrap();
    let h = chain(true);
    for n in 0..=LAST {
        index(&b, &h, n, n).await;
    }
    for e in 0..=4 {
        assert_eq!(
            compute_epoch(&db, &cfg, e).await.unwrap(),
            compute_epoch(&b, &cfg, e).await.unwrap(),
            "epoch {e}"
        );
    }
    let v = to_json(
        indexer::epoch_query::epoch(db.pool(), 0)
            .await
            .unwrap()
            .unwrap(),
    );
    let node = |k: u64| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["address"] == worker(k).to_checksum(None))
            .unwrap()
            .clone()
    };
    assert_eq!(
        node(WA)["audits"],
        serde_json::json!({"audited": 3, "passed": 3, "quality_sum_ppm": 3_000_000, "fraud": false})
    );
    assert_eq!(node(WD)["audits"]["fraud"], true);
    assert_eq!(node(WD)["slashed"], true);
    assert_eq!(node(WA)["components"]["accuracy"], 1.0);
    let b_accuracy = node(WB)["components"]["accuracy"].as_f64().unwrap();
    assert!((b_accuracy - 2.0 / 7.0).abs() < 1e-12, "{b_accuracy}");
    let m = &v["models"][0];
    assert_eq!(
        (m["canaries"].clone(), m["canary_matches"].clone()),
        (5.into(), 0.into())
    );
    assert_eq!(m["canary_accuracy"], 0.0);
    let model = to_json(indexer::query::model(db.pool(), 1).await.unwrap().unwrap());
    // All-time canary accuracy; the measured quality is the latest epoch's (4: no evidence).
    assert_eq!(model["canary_accuracy"], 0.0);
    assert_eq!(model["measured_quality"], 1.0);
    assert_eq!(model["quality_history"][0]["quality"], 0.0);
    assert_eq!(model["quality_history"][0]["status"], "probation");
}

#[tokio::test]
async fn a_reorg_that_removes_the_judgements_changes_the_recomputed_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), "db.sqlite", true).await;
    let cfg = cfg();
    epochs::settle_ready(&db, &cfg, 10).await.unwrap();
    let before = compute_epoch(&db, &cfg, 0).await.unwrap();
    assert_eq!(row(&before, WB).rates.accuracy, 2 * WAD / 7);

    // The blocks with the judgements are replaced by a fork without them.
    db.rollback_to(CHAIN, &contracts(), Some(block(3)))
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM epochs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "epoch 0's facts reach past the fork");
    for table in ["verdicts", "disputes", "dispute_votes", "canaries"] {
        let n: i64 = sqlx::query_scalar(&chainstore::sql::numbered(&format!(
            "SELECT COUNT(*) FROM {table}"
        )))
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    index(&db, &chain(false), 4, LAST).await;
    epochs::settle_ready(&db, &cfg, 10).await.unwrap();
    let after = compute_epoch(&db, &cfg, 0).await.unwrap();
    assert_eq!(row(&after, WB).rates.accuracy, WAD);
    assert_eq!(row(&after, WB).facts.audited, 0);
    assert!(row(&after, WD).trust.trust_wad > 0);
    assert_ne!(after.report, before.report);
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = db_with(clean_dir.path(), "clean.sqlite", false).await;
    assert_eq!(after, compute_epoch(&clean, &cfg, 0).await.unwrap());
}

// ------------------------------------------------------------------ validator rewards

/// Validators of the reward test (VAL, staked in `chain`, stays idle).
fn validator(k: u64) -> Address {
    Address::left_padding_from(&(0xB000 + k).to_be_bytes())
}
const VA: u64 = 0;
const VB: u64 = 1;
const VC: u64 = 2;

/// `chain(false)` plus three validators staking 5000 DN each (block 1) and their audit work:
/// - VA signs 3 verdicts (block 4) and votes in a dispute (block 5): 4 done, 0 missed;
/// - VB signs 1 verdict (block 4), misses 2 audit deadlines and its dispute vote (block 6):
///   1 done, 3 missed;
/// - VC signs a mismatch verdict (block 4) whose dispute the quorum clears (block 6): it is
///   slashed 1000 DN for the false accusation;
/// - epoch 1: VA misses one audit deadline (block 12). Epoch 2 has no audit work at all.
fn validator_chain() -> Vec<BlockLogs> {
    let mut blocks = chain(false);
    for k in [VA, VB, VC] {
        blocks[1].push(
            STAKING,
            S::Staked {
                account: validator(k),
                role: 1,
                amount: dn(5000),
                newStake: dn(5000),
            },
        );
    }
    let by = |task: u64, k: u64, v: u64, matches: bool| A::VerdictAccepted {
        validator: validator(v),
        ..verdict(task, k, if matches { 1_000_000 } else { 0 }, matches)
    };
    let b4 = &mut blocks[4];
    for t in 1..=3 {
        b4.push(AM, by(t, WA, VA, true));
    }
    b4.push(AM, by(7, WB, VB, true))
        .push(AM, by(20, WD, VC, false))
        .push(
            AM,
            A::DisputeOpened {
                taskId: U256::from(20),
                worker: worker(WD),
                accuser: validator(VC),
                opener: 0,
                quorumBlock: 4,
                deadline: time_of(4) + 60,
            },
        )
        .push(
            AM,
            A::QuorumDrawn {
                taskId: U256::from(20),
                members: vec![validator(VA), validator(VB)],
                deadline: time_of(4) + 60,
            },
        );
    blocks[5].push(
        AM,
        A::DisputeVoted {
            taskId: U256::from(20),
            validator: validator(VA),
            fraud: false,
            outputHash: B256::repeat_byte(7),
        },
    );
    let missed = |task: u64, v: u64, kind: u8| A::DeadlineMissed {
        taskId: U256::from(task),
        validator: validator(v),
        kind,
    };
    blocks[6]
        .push(
            AM,
            A::DisputeResolved {
                taskId: U256::from(20),
                outcome: 4,
                fraudVotes: 0,
                honestVotes: 1,
            },
        )
        .push(AM, missed(20, VB, 1))
        .push(
            STAKING,
            S::Slashed {
                account: validator(VC),
                role: 1,
                reason: 2,
                amount: dn(1000),
                beneficiary: worker(WD),
                rewarded: dn(500),
                burned: dn(500),
            },
        )
        .push(AM, missed(8, VB, 0))
        .push(AM, missed(9, VB, 0));
    blocks[12].push(AM, missed(10, VA, 0));
    blocks
}

fn vrow(o: &EpochOutcome, a: Address) -> epochs::ValidatorRow {
    o.validators
        .iter()
        .find(|v| v.address == a)
        .unwrap_or_else(|| panic!("validator {a} in epoch {}", o.epoch))
        .clone()
}

#[tokio::test]
async fn validator_rewards_follow_audit_work_and_reliability() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&db_spec(dir.path(), "v.sqlite")).await.unwrap();
    db.bind_deployment(&deployment()).await.unwrap();
    let h = validator_chain();
    index(&db, &h, 0, LAST).await;
    let cfg = cfg();
    let e0 = compute_epoch(&db, &cfg, 0).await.unwrap();
    let (a, b, c, idle) = (
        vrow(&e0, validator(VA)),
        vrow(&e0, validator(VB)),
        vrow(&e0, validator(VC)),
        vrow(&e0, VAL),
    );
    assert_eq!(e0.validators.len(), 4);
    assert!(e0
        .validators
        .windows(2)
        .all(|w| w[0].address < w[1].address));

    // The facts: verdicts and votes done, deadlines missed, the validator slash.
    assert_eq!((a.audits_done, a.audits_missed, a.slashed), (4, 0, false));
    assert_eq!((b.audits_done, b.audits_missed, b.slashed), (1, 3, false));
    assert_eq!((c.audits_done, c.audits_missed, c.slashed), (1, 0, true));
    assert_eq!((idle.audits_done, idle.audits_missed), (0, 0));
    // r = (done + 1) / (done + missed + 2)
    assert_eq!(a.reliability_wad, 833_333_333_333_333_333, "5/6 floored");
    assert_eq!(b.reliability_wad, WAD / 3, "2/6");
    assert_eq!(idle.reliability_wad, WAD / 2, "the prior without a record");
    // weight = stake x r; the slashed validator weighs nothing.
    assert_eq!((a.stake, b.stake, c.stake), (dn(5000), dn(5000), dn(4000)));
    for v in [&a, &b, &idle] {
        assert_eq!(
            v.weight,
            (v.stake * U256::from(v.reliability_wad) / U256::from(WAD)).to::<u128>()
        );
    }
    assert_eq!(c.weight, 0);

    // Equal stakes: the validator that did 4 and missed none earns more than the one that did 1
    // and missed 3; the slashed one earns nothing; the pool is paid out exactly.
    assert!(
        a.reward > idle.reward && idle.reward > b.reward && b.reward > U256::ZERO,
        "{} {} {}",
        a.reward,
        idle.reward,
        b.reward
    );
    assert_eq!(c.reward, U256::ZERO);
    let paid: U256 = e0.validators.iter().map(|v| v.reward).sum();
    assert_eq!(paid, e0.validator_pool);
    assert!(e0.validator_pool > U256::ZERO);
    // The split follows the weights (largest remainder: within a wei of the exact share).
    let total: u128 = e0.validators.iter().map(|v| v.weight).sum();
    for v in &e0.validators {
        let exact = e0.validator_pool * U256::from(v.weight) / U256::from(total);
        assert!(v.reward >= exact && v.reward <= exact + U256::from(1u8));
    }
    // The validator rewards are leaves of the rewards tree (alone or merged with other parts).
    assert_eq!(e0.reward_parts(validator(VA)).1, a.reward);
    assert_eq!(e0.rewards.proof(validator(VC)), None);

    // Epoch 1: the miss counts where its block falls; the slash does not carry over.
    let e1 = compute_epoch(&db, &cfg, 1).await.unwrap();
    let a1 = vrow(&e1, validator(VA));
    assert_eq!((a1.audits_done, a1.audits_missed), (0, 1));
    assert_eq!(a1.reliability_wad, WAD / 3);
    let c1 = vrow(&e1, validator(VC));
    assert!(!c1.slashed && c1.weight > 0 && c1.reward > U256::ZERO);
    assert!(a1.reward < vrow(&e1, validator(VB)).reward);

    // Epoch 2: no audit work at all, every r = 0.5: the pool splits by stake as before.
    let e2 = compute_epoch(&db, &cfg, 2).await.unwrap();
    assert!(e2.validators.iter().all(|v| v.reliability_wad == WAD / 2));
    let stakes: Vec<(Address, u128)> = e2
        .validators
        .iter()
        .map(|v| (v.address, v.stake.to::<u128>()))
        .collect();
    let by_stake = protocol::powr::split_budget(e2.validator_pool, &stakes).unwrap();
    assert_eq!(
        e2.validators
            .iter()
            .map(|v| (v.address, v.reward))
            .collect::<Vec<_>>(),
        by_stake
    );

    // Deterministic: a database filled block by block computes the same epochs.
    let other = Db::open(&db_spec(dir.path(), "w.sqlite")).await.unwrap();
    other.bind_deployment(&deployment()).await.unwrap();
    for n in 0..=LAST {
        index(&other, &h, n, n).await;
    }
    for (e, out) in [(0, &e0), (1, &e1), (2, &e2)] {
        assert_eq!(
            &compute_epoch(&other, &cfg, e).await.unwrap(),
            out,
            "epoch {e}"
        );
    }

    // Served per validator by /epochs/{n}.
    epochs::settle_ready(&db, &cfg, 3).await.unwrap();
    let v = to_json(
        indexer::epoch_query::epoch(db.pool(), 0)
            .await
            .unwrap()
            .unwrap(),
    );
    let served = |addr: Address| {
        v["validators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == addr.to_checksum(None))
            .unwrap()
            .clone()
    };
    let (ja, jb, jc) = (
        served(validator(VA)),
        served(validator(VB)),
        served(validator(VC)),
    );
    assert_eq!(
        (ja["audits_done"].clone(), ja["audits_missed"].clone()),
        (4.into(), 0.into())
    );
    assert_eq!(
        (jb["audits_done"].clone(), jb["audits_missed"].clone()),
        (1.into(), 3.into())
    );
    assert!((ja["reliability"].as_f64().unwrap() - 5.0 / 6.0).abs() < 1e-12);
    assert!((jb["reliability"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(ja["reliability_wad"], a.reliability_wad.to_string());
    assert_eq!(ja["reward"], a.reward.to_string());
    assert_eq!(
        (jc["slashed"].clone(), jc["reward"].clone()),
        (true.into(), "0".into())
    );
    assert_eq!(served(VAL)["reliability"], 0.5);
}
