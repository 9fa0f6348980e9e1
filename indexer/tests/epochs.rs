//! Epoch computation on real SQLite files filled by the real ingestion code: two independent
//! databases agree byte for byte, rewards add up within the budget, proofs verify, readiness,
//! reorg invalidation, Settlement events, the REST routes, and the time for 10,000 tasks of
//! 1,000 workers.

mod common;

use alloy::primitives::{Address, B256, U256};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use indexer::api::{router, AppState, SyncStatus};
use indexer::db::Db;
use indexer::epochs::{self, compute_epoch, EpochConfig, EpochError};
use protocol::bindings::{
    IModelRegistry as M, IProbeRegistry as P, ISettlement as X, IStaking as S, ITaskManager as T,
};
use protocol::merkle;
use protocol::powr::{account_leaf, PowrParams, WAD};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

/// Seconds per epoch of the fixture: 10 blocks of 12 s.
const EPOCH_LEN: u64 = 120;
const RESPONSE_WINDOW: u64 = 60;
const VAL2: Address = alloy::primitives::address!("0x976EA74026E726554dB657fA54763abd0C3a0aa9");

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

fn worker(i: usize) -> Address {
    Address::left_padding_from(&(0x1000_0000u64 + i as u64).to_be_bytes())
}

/// How worker `i` behaves: 9 of 10 commit on time (quality 1.0, or 0.8 for every third), the
/// tenth never answers.
fn answers(i: usize) -> bool {
    i % 10 != 9
}

fn quality(i: usize) -> u32 {
    if i.is_multiple_of(3) {
        800_000
    } else {
        1_000_000
    }
}

/// A synthetic chain: block 1 stakes `workers` workers and two validators and registers model 1
/// (10 compute units); blocks `2..2+task_blocks` each submit and assign `per_block` tasks
/// round-robin; answering workers commit in the next block and are finalized two blocks after
/// the assignment; in block 12 worker 5 is slashed and validator 2 unstakes part of its stake.
/// The chain runs `tail` blocks past the last task.
fn synth(workers: usize, per_block: usize, task_blocks: u64, tail: u64) -> Vec<BlockLogs> {
    let last = 1 + task_blocks + tail;
    let mut blocks: Vec<BlockLogs> = (0..=last).map(BlockLogs::new).collect();
    let b1 = &mut blocks[1];
    for i in 0..workers {
        b1.push(
            STAKING,
            S::Staked {
                account: worker(i),
                role: 0,
                amount: dn(1000),
                newStake: dn(1000),
            },
        );
    }
    for (v, stake) in [(VAL, 5000), (VAL2, 3000)] {
        b1.push(
            STAKING,
            S::Staked {
                account: v,
                role: 1,
                amount: dn(stake),
                newStake: dn(stake),
            },
        );
    }
    b1.push(
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
    let mut task = 0u64;
    for b in 2..2 + task_blocks {
        let mut commits: std::collections::BTreeMap<Address, Vec<u64>> = Default::default();
        for _ in 0..per_block {
            task += 1;
            let w = (task as usize * 7) % workers;
            blocks[b as usize]
                .push(
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
                        worker: worker(w),
                        deadline: time_of(b) + RESPONSE_WINDOW,
                    },
                );
            if answers(w) {
                commits.entry(worker(w)).or_default().push(task);
            }
        }
        for (w, ids) in &commits {
            blocks[b as usize + 1].push(
                TM,
                T::ResultsCommitted {
                    batchId: U256::from(b * 100_000 + ids[0]),
                    worker: *w,
                    root: B256::repeat_byte(0x11),
                    taskIds: ids.iter().map(|t| U256::from(*t)).collect(),
                    outputHashes: ids.iter().map(|_| B256::repeat_byte(7)).collect(),
                    codes: ids.iter().map(|_| 0u16).collect(),
                    outputs: ids.iter().map(|_| vec![9u8].into()).collect(),
                },
            );
            let i = (w.0[19] as usize) | ((w.0[18] as usize) << 8) | ((w.0[17] as usize) << 16);
            for t in ids {
                blocks[b as usize + 2].push(
                    TM,
                    T::TaskFinalized {
                        taskId: U256::from(*t),
                        worker: *w,
                        modelId: 1,
                        code: 0,
                        computeUnits: 10,
                        quality: quality(i),
                        latency: 12,
                        developerFee: U256::ZERO,
                        workerFee: dn(1),
                        validatorFee: U256::ZERO,
                        protocolFee: U256::ZERO,
                        refund: U256::ZERO,
                    },
                );
            }
        }
    }
    if blocks.len() > 12 {
        blocks[12]
            .push(
                STAKING,
                S::Slashed {
                    account: worker(5),
                    role: 0,
                    reason: 1,
                    amount: dn(100),
                    beneficiary: USER,
                    rewarded: dn(50),
                    burned: dn(50),
                },
            )
            .push(
                STAKING,
                S::UnstakeRequested {
                    account: VAL2,
                    role: 1,
                    amount: dn(1000),
                    releaseAt: time_of(12) + 3600,
                    newStake: dn(2000),
                },
            );
    }
    blocks
}

async fn db_in(dir: &std::path::Path, name: &str) -> Db {
    let db = Db::open(&db_spec(dir, name)).await.unwrap();
    db.bind_deployment(&deployment()).await.unwrap();
    db
}

/// The standard fixture: 20 workers, 4 tasks per block in blocks 2..=26 (epochs 0..2), through
/// block 39, so epochs 0, 1 and 2 are ready and epoch 3 (ending at block 40's time) is not.
fn standard() -> Vec<BlockLogs> {
    synth(20, 4, 25, 13)
}

fn last_block(h: &[BlockLogs]) -> u64 {
    h.last().unwrap().number
}

#[tokio::test]
async fn two_independent_databases_compute_identical_epochs() {
    let h = standard();
    let dir = tempfile::tempdir().unwrap();
    // A: the whole history as one range. B: block by block.
    let a = db_in(dir.path(), "a.sqlite").await;
    index(&a, &h, 0, last_block(&h)).await;
    let b = db_in(dir.path(), "b.sqlite").await;
    for n in 0..=last_block(&h) {
        index(&b, &h, n, n).await;
    }
    let cfg = cfg();
    for e in 0..=2 {
        let oa = compute_epoch(&a, &cfg, e).await.unwrap();
        let ob = compute_epoch(&b, &cfg, e).await.unwrap();
        assert_eq!(oa.report, ob.report, "epoch {e}");
        assert_eq!(oa, ob, "epoch {e}: every row identical");
        assert_ne!(oa.report.rewardsRoot, B256::ZERO);
        assert_ne!(oa.report.trustRoot, B256::ZERO);
    }
    // A stores epochs 0 and 1 and continues from them; B recomputes everything in memory.
    let stored = epochs::settle_ready(&a, &cfg, 2).await.unwrap();
    assert_eq!(stored, [0, 1]);
    let from_history = compute_epoch(&a, &cfg, 2).await.unwrap();
    let from_scratch = compute_epoch(&b, &cfg, 2).await.unwrap();
    assert_eq!(from_history, from_scratch);
    // The epochs differ from each other (trust moved, budget decayed).
    let e0 = compute_epoch(&b, &cfg, 0).await.unwrap();
    assert_ne!(e0.report.trustRoot, from_scratch.report.trustRoot);
    assert!(e0.budget > from_scratch.budget);
}

/// Probe emission from the chain's events: on once `ProbeEmissionSet(true)` precedes the epoch's
/// end; a submitter revealed for the epoch in `[end, facts_until]` makes its tasks probes, a
/// reveal later than `facts_until` or for another epoch does not count, and without the switch a
/// reveal changes nothing.
#[tokio::test]
async fn probe_reveals_count_for_their_epoch_within_the_reveal_window() {
    let reveal = |epoch: u64| P::ProbesRevealed {
        epoch,
        submitter: USER,
        prober: DEV,
    };
    // epoch 0 is blocks 0..=9 (120 s); facts_until is then at least end - 1 + 60 s: block 14
    // (what, switch on, revealed in (block, for epoch), the tasks are probes)
    type Case = (&'static str, bool, Option<(u64, u64)>, bool);
    let cases: [Case; 5] = [
        ("switch on, revealed in block 12", true, Some((12, 0)), true),
        ("switch on, revealed in block 14", true, Some((14, 0)), true),
        (
            "switch on, revealed too late (block 15)",
            true,
            Some((15, 0)),
            false,
        ),
        (
            "switch on, revealed for epoch 1",
            true,
            Some((12, 1)),
            false,
        ),
        (
            "switch off, revealed in block 12",
            false,
            Some((12, 0)),
            false,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg();
    for (i, (what, on, at, probes)) in cases.into_iter().enumerate() {
        let mut h = standard();
        if on {
            h[1].push(PROBES, P::ProbeEmissionSet { enabled: true });
        }
        if let Some((block, epoch)) = at {
            h[block as usize].push(PROBES, reveal(epoch));
        }
        let db = db_in(dir.path(), &format!("p{i}.sqlite")).await;
        index(&db, &h, 0, last_block(&h)).await;
        let f = epochs::gather_facts(&db, &cfg, 0).await.unwrap();
        assert_eq!(f.probe_emission, on, "{what}");
        let (_, end) = cfg.bounds(0).unwrap();
        if on {
            assert!(f.facts_until >= end - 1 + RESPONSE_WINDOW, "{what}");
        }
        let finalized: usize = f.workers.values().map(|w| w.finalized.len()).sum();
        let probed: usize = f.workers.values().map(|w| w.probes.len()).sum();
        let assigned: u64 = f.workers.values().map(|w| w.assigned).sum();
        let probe_assigned: u64 = f.workers.values().map(|w| w.probe_assigned).sum();
        assert!(finalized > 0 && assigned > 0, "{what}");
        if probes {
            // the fixture's user submitted every task: all of them are probes
            assert_eq!((probed, probe_assigned), (finalized, assigned), "{what}");
            let units: u64 = f.model_usage.values().map(|m| m.probe_compute_units).sum();
            assert_eq!(
                units,
                f.model_usage.values().map(|m| m.compute_units).sum::<u64>()
            );
        } else {
            assert_eq!((probed, probe_assigned), (0, 0), "{what}");
        }
        let out = compute_epoch(&db, &cfg, 0).await.unwrap();
        let worker_rewards: U256 = out.workers.iter().map(|w| w.reward).sum();
        if on && !probes {
            assert_eq!(
                worker_rewards,
                U256::ZERO,
                "{what}: no probes, no workers' emission"
            );
        } else {
            assert_eq!(worker_rewards, out.worker_pool, "{what}");
        }
    }
}

/// A probe submitted near its epoch's end is finalized in the next epoch: its work counts there
/// (formula version 5; version 4 counted it nowhere), and a task of a wallet revealed for another
/// epoch than its submission's is no probe.
#[tokio::test]
async fn a_probe_counts_in_the_epoch_it_is_finalized_in() {
    let mut h = standard();
    h[1].push(PROBES, P::ProbeEmissionSet { enabled: true });
    h[12].push(
        PROBES,
        P::ProbesRevealed {
            epoch: 0,
            submitter: USER,
            prober: DEV,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path(), "db.sqlite").await;
    index(&db, &h, 0, last_block(&h)).await;
    let cfg = cfg();
    let (_, end0) = cfg.bounds(0).unwrap();
    let (start1, end1) = cfg.bounds(1).unwrap();
    // the fixture's user submitted every task: those of epoch 0 are probes, wherever finalized
    let finalized_in_1_of_0 = count(
        &db,
        &format!(
            "SELECT COUNT(*) FROM task_events te JOIN tasks t ON t.task_id = te.task_id
             WHERE te.kind = 'finalized' AND te.worker IS NOT NULL AND te.block_time >= {start1}
               AND te.block_time < {end1} AND t.submitted_time < {end0}"
        ),
    )
    .await;
    assert!(
        finalized_in_1_of_0 > 0,
        "the fixture finalizes some of epoch 0's tasks in epoch 1"
    );
    let f = epochs::gather_facts(&db, &cfg, 1).await.unwrap();
    let finalized: usize = f.workers.values().map(|w| w.finalized.len()).sum();
    let probed: usize = f.workers.values().map(|w| w.probes.len()).sum();
    assert_eq!(probed as i64, finalized_in_1_of_0);
    assert!(
        probed < finalized,
        "epoch 1's own tasks (no reveal for epoch 1) are no probes"
    );
    let probe_assigned: u64 = f.workers.values().map(|w| w.probe_assigned).sum();
    let assigned_in_1_of_0 = count(
        &db,
        &format!(
            "SELECT COUNT(*) FROM task_events a JOIN tasks t ON t.task_id = a.task_id
             WHERE a.kind = 'assigned' AND a.block_time >= {start1} AND a.block_time < {end1}
               AND t.submitted_time < {end0}"
        ),
    )
    .await;
    assert_eq!(probe_assigned as i64, assigned_in_1_of_0);
    // and the workers' pool of epoch 1 pays them
    let out = compute_epoch(&db, &cfg, 1).await.unwrap();
    let worker_rewards: U256 = out.workers.iter().map(|w| w.reward).sum();
    assert_eq!(worker_rewards, out.worker_pool);
    assert!(worker_rewards > U256::ZERO);
}

#[tokio::test]
async fn rewards_add_up_within_the_budget_and_every_proof_verifies() {
    let h = standard();
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path(), "db.sqlite").await;
    index(&db, &h, 0, last_block(&h)).await;
    let cfg = cfg();
    for e in 0..=2 {
        let out = compute_epoch(&db, &cfg, e).await.unwrap();
        let sum: U256 = out.rewards.entries().iter().map(|(_, v)| *v).sum();
        assert_eq!(sum, out.report.totalRewards);
        assert!(out.report.totalRewards <= out.budget);
        assert_eq!(out.budget, cfg.budget(e));
        // Every pool had recipients, so the whole budget is paid (largest-remainder rounding).
        assert_eq!(out.report.totalRewards, out.budget, "epoch {e}");
        let workers: U256 = out.workers.iter().map(|w| w.reward).sum();
        assert_eq!(workers, out.worker_pool);
        assert_eq!(out.worker_pool, out.budget * U256::from(7) / U256::from(10));
        let validators: U256 = out.validators.iter().map(|v| v.reward).sum();
        assert_eq!(validators, out.validator_pool);
        assert_eq!(out.developer_rewards, vec![(DEV, out.model_pool)]);
        for (account, amount) in out.rewards.entries() {
            let (value, proof) = out.rewards.proof(*account).unwrap();
            assert_eq!(value, *amount);
            assert!(merkle::verify(
                &proof,
                out.report.rewardsRoot,
                account_leaf(*account, *amount)
            ));
            assert!(!merkle::verify(
                &proof,
                out.report.rewardsRoot,
                account_leaf(*account, *amount + U256::from(1))
            ));
        }
        for w in &out.workers {
            let (value, proof) = out.trust.proof(w.address).unwrap();
            assert_eq!(value, U256::from(w.trust.trust_wad));
            assert!(merkle::verify(
                &proof,
                out.report.trustRoot,
                account_leaf(w.address, value)
            ));
        }
        assert_eq!(out.report.modelStatusHash, B256::ZERO);
    }
}

#[tokio::test]
async fn behaviour_moves_trust_and_rewards() {
    let h = standard();
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path(), "db.sqlite").await;
    index(&db, &h, 0, last_block(&h)).await;
    let cfg = cfg();
    let e0 = compute_epoch(&db, &cfg, 0).await.unwrap();
    let row = |o: &epochs::EpochOutcome, i: usize| {
        o.workers
            .iter()
            .find(|w| w.address == worker(i))
            .unwrap()
            .clone()
    };
    let t0 = cfg.params.initial_trust_wad;
    // Worker 9 never answers: completion falls and so does its trust; it earns nothing.
    let silent = row(&e0, 9);
    assert!(silent.facts.assigned > 0 && silent.facts.on_time == 0);
    assert!(silent.trust.trust_wad < t0, "{silent:?}");
    assert_eq!(silent.reward, U256::ZERO);
    // Worker 1 answers everything on time with quality 1.0.
    let good = row(&e0, 1);
    assert_eq!(good.facts.on_time, good.facts.assigned);
    assert!(good.trust.trust_wad > silent.trust.trust_wad);
    assert!(good.reward > U256::ZERO);
    // Same work, same trust, better results, more reward: worker 2 (quality 1.0) vs worker 3
    // (quality 0.8).
    let better = row(&e0, 2);
    let worse = row(&e0, 3);
    assert_eq!(worse.compute_units, better.compute_units);
    assert_eq!(worse.trust, better.trust);
    assert!(
        better.reward > worse.reward,
        "{} vs {}",
        better.reward,
        worse.reward
    );
    // Worker 5 was slashed in epoch 1: trust 0, no reward, pinned for the next epoch.
    let e1 = compute_epoch(&db, &cfg, 1).await.unwrap();
    let slashed = row(&e1, 5);
    assert!(slashed.facts.slashed);
    assert_eq!(slashed.trust.trust_wad, 0);
    assert_eq!(slashed.reward, U256::ZERO);
    let e2 = compute_epoch(&db, &cfg, 2).await.unwrap();
    assert_eq!(row(&e2, 5).trust.trust_wad, 0, "still pinned in epoch 2");
    // Validator stake at each epoch's end: VAL2 unstaked 1000 of 3000 in epoch 1.
    assert_eq!(
        e0.validators.iter().map(|v| v.stake).collect::<Vec<_>>(),
        stakes(&e0, &[5000, 3000])
    );
    assert_eq!(
        e1.validators.iter().map(|v| v.stake).collect::<Vec<_>>(),
        stakes(&e1, &[5000, 2000])
    );
}

fn stakes(o: &epochs::EpochOutcome, by_val_val2: &[u64; 2]) -> Vec<U256> {
    // Validators come sorted by address.
    let mut v = vec![(VAL, dn(by_val_val2[0])), (VAL2, dn(by_val_val2[1]))];
    v.sort();
    assert_eq!(o.validators.len(), 2);
    v.into_iter().map(|(_, s)| s).collect()
}

#[tokio::test]
async fn an_epoch_is_not_ready_until_its_deadlines_are_indexed() {
    let h = standard();
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path(), "db.sqlite").await;
    let cfg = cfg();
    assert!(matches!(
        compute_epoch(&db, &cfg, 0).await,
        Err(EpochError::NotReady {
            indexed_time: None,
            ..
        })
    ));
    // Block 10 starts epoch 1, but the deadlines of epoch 0's last assignments (block 9 + 60 s)
    // are still ahead.
    index(&db, &h, 0, 10).await;
    let e = compute_epoch(&db, &cfg, 0).await.unwrap_err();
    match e {
        EpochError::NotReady {
            epoch: 0,
            facts_until,
            ..
        } => {
            assert_eq!(facts_until, time_of(9) + RESPONSE_WINDOW)
        }
        other => panic!("{other}"),
    }
    assert!(e_message(&db, &cfg).await.contains("not ready"));
    assert!(epochs::settle_ready(&db, &cfg, 10)
        .await
        .unwrap()
        .is_empty());
    index(&db, &h, 11, 15).await;
    assert_eq!(epochs::settle_ready(&db, &cfg, 10).await.unwrap(), [0]);
    // Idempotent: nothing more until epoch 1 is ready.
    assert!(epochs::settle_ready(&db, &cfg, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn e_message(db: &Db, cfg: &EpochConfig) -> String {
    compute_epoch(db, cfg, 0).await.unwrap_err().to_string()
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

/// A database with the standard fixture indexed and its epochs 0, 1 and 2 stored.
async fn standard_settled(dir: &std::path::Path) -> (Db, Vec<BlockLogs>) {
    let h = standard();
    let db = db_in(dir, "db.sqlite").await;
    index(&db, &h, 0, last_block(&h)).await;
    assert_eq!(
        epochs::settle_ready(&db, &cfg(), 10).await.unwrap(),
        [0, 1, 2]
    );
    (db, h)
}

#[tokio::test]
async fn a_reorg_into_an_epoch_deletes_it_and_it_is_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let (db, h) = standard_settled(dir.path()).await;
    let cfg = cfg();
    let before = indexer::epoch_query::epochs(db.pool()).await.unwrap();
    // Roll back to block 15: epoch 0's facts end at block 14's time, epoch 1 runs to block 19.
    db.rollback_to(CHAIN, &contracts(), Some(block(15)))
        .await
        .unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM epochs").await, 1);
    assert_eq!(count(&db, "SELECT MAX(epoch) FROM epochs").await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM epoch_nodes WHERE epoch > 0").await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM epoch_rewards WHERE epoch > 0").await,
        0
    );
    assert!(epochs::settle_ready(&db, &cfg, 10)
        .await
        .unwrap()
        .is_empty());
    // The same blocks come back: the same epochs are recomputed.
    index(&db, &h, 16, last_block(&h)).await;
    assert_eq!(epochs::settle_ready(&db, &cfg, 10).await.unwrap(), [1, 2]);
    assert_eq!(
        indexer::epoch_query::epochs(db.pool()).await.unwrap(),
        before
    );
    // A rollback to before the start block forgets every epoch.
    db.rollback_to(CHAIN, &contracts(), None).await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM epochs").await, 0);
}

#[tokio::test]
async fn epochs_computed_by_other_rules_are_recomputed_unless_reported_on_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = standard_settled(dir.path()).await;
    let cfg = cfg();
    let version = i64::from(protocol::epoch::FORMULA_VERSION);
    assert_eq!(
        count(&db, "SELECT MIN(formula_version) FROM epochs").await,
        version
    );
    let before = indexer::epoch_query::epochs(db.pool()).await.unwrap();
    // An older build computed epochs 1 and 2: they are forgotten and computed again.
    sqlx::query("UPDATE epochs SET formula_version = 1 WHERE epoch >= 1")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(epochs::settle_ready(&db, &cfg, 10).await.unwrap(), [1, 2]);
    assert_eq!(
        count(&db, "SELECT MIN(formula_version) FROM epochs").await,
        version
    );
    assert_eq!(
        indexer::epoch_query::epochs(db.pool()).await.unwrap(),
        before
    );
    assert!(epochs::settle_ready(&db, &cfg, 10)
        .await
        .unwrap()
        .is_empty());
    // An epoch whose report is on-chain keeps its stored outcome (its roots are the chain's).
    let other = dir.path().join("settled");
    std::fs::create_dir(&other).unwrap();
    let (db, _) = settled(&other).await;
    sqlx::query("UPDATE epochs SET formula_version = 1")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(epochs::forget_outdated(&db).await.unwrap(), Some(1));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM epochs").await, 1);
    assert_eq!(
        count(&db, "SELECT formula_version FROM epochs WHERE epoch = 0").await,
        1
    );
    assert_eq!(epochs::forget_outdated(&db).await.unwrap(), None);
}

/// A database with epochs 0..2 stored and Settlement events for epoch 0 (report posted, one
/// claim, one trust refresh, one expiry).
async fn settled(dir: &std::path::Path) -> (Db, epochs::EpochOutcome) {
    let mut h = standard();
    let db = db_in(dir, "db.sqlite").await;
    index(&db, &h, 0, last_block(&h)).await;
    let cfg = cfg();
    epochs::settle_ready(&db, &cfg, 10).await.unwrap();
    let e0 = compute_epoch(&db, &cfg, 0).await.unwrap();
    let n = last_block(&h) + 1;
    let mut b = BlockLogs::new(n);
    let good = worker(1);
    let (amount, _) = e0.rewards.proof(good).unwrap();
    b.push(
        SETTLEMENT,
        X::EpochReported {
            epoch: 0,
            rewardsRoot: e0.report.rewardsRoot,
            trustRoot: e0.report.trustRoot,
            totalRewards: e0.report.totalRewards,
            modelStatusHash: B256::ZERO,
            signers: vec![VAL],
            signedStake: dn(5000),
            totalValidatorStake: dn(7000),
        },
    )
    .push(
        SETTLEMENT,
        X::RewardClaimed {
            epoch: 0,
            account: good,
            amount,
        },
    )
    .push(
        SETTLEMENT,
        X::TrustRefreshed {
            epoch: 0,
            node: good,
            trustWad: U256::from(e0.trust.proof(good).unwrap().0),
        },
    )
    .push(
        SETTLEMENT,
        X::TrustExpired {
            node: worker(9),
            latestEpoch: 0,
        },
    );
    h.push(b);
    index(&db, &h, n, n).await;
    (db, e0)
}

#[tokio::test]
async fn settlement_events_are_indexed_and_survive_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (db, e0) = settled(dir.path()).await;
    for (table, n) in [
        ("epoch_reports", 1),
        ("reward_claims", 1),
        ("trust_refreshes", 1),
        ("trust_expiries", 1),
    ] {
        assert_eq!(
            count(&db, &format!("SELECT COUNT(*) FROM {table}")).await,
            n,
            "{table}"
        );
    }
    let names = count(&db, "SELECT COUNT(*) FROM events WHERE name IN ('EpochReported','RewardClaimed','TrustRefreshed','TrustExpired')").await;
    assert_eq!(names, 4);
    // A rollback to a block before them replays the rest: the Settlement rows are gone, the
    // earlier facts intact.
    let last = db.cursor(CHAIN).await.unwrap().unwrap().number;
    db.rollback_to(CHAIN, &contracts(), Some(block(last - 1)))
        .await
        .unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM epoch_reports").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM reward_claims").await, 0);
    let again = compute_epoch(&db, &cfg(), 0).await.unwrap();
    assert_eq!(again, e0);
}

struct Api {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn api() -> (Api, epochs::EpochOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let (db, e0) = settled(dir.path()).await;
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
    (Api { state, _dir: dir }, e0)
}

impl Api {
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

fn hex(b: B256) -> String {
    b.to_string()
}

#[tokio::test]
async fn epochs_routes_serve_reports_totals_and_flags() {
    let (api, e0) = api().await;
    let list = api.ok("/epochs").await;
    let epochs = list["epochs"].as_array().unwrap();
    assert_eq!(
        epochs
            .iter()
            .map(|e| e["epoch"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1, 0]
    );
    let zero = &epochs[2];
    assert_eq!(zero["report"]["rewardsRoot"], hex(e0.report.rewardsRoot));
    assert_eq!(zero["report"]["trustRoot"], hex(e0.report.trustRoot));
    assert_eq!(
        zero["report"]["totalRewards"],
        e0.report.totalRewards.to_string()
    );
    assert_eq!(zero["posted"], true);
    assert_eq!(zero["on_chain"]["matches_computed"], true);
    assert_eq!(epochs[0]["posted"], false);
    let (claimed, _) = e0.rewards.proof(worker(1)).unwrap();
    assert_eq!(zero["claimed"], claimed.to_string());
    assert_eq!(zero["claims"], 1);

    let one = api.ok("/epochs/0").await;
    assert_eq!(one["report"], zero["report"]);
    assert_eq!(one["budget"], e0.budget.to_string());
    let nodes = one["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), e0.workers.len());
    let w1 = nodes
        .iter()
        .find(|n| n["address"] == worker(1).to_checksum(None))
        .unwrap();
    let row = e0.workers.iter().find(|w| w.address == worker(1)).unwrap();
    assert_eq!(w1["trust_wad"], row.trust.trust_wad.to_string());
    assert_eq!(w1["reward"], row.reward.to_string());
    assert_eq!(w1["tasks_assigned"], row.facts.assigned);
    assert!(w1["components"]["completion"].as_f64().unwrap() > 0.5);
    assert_eq!(one["validators"].as_array().unwrap().len(), 2);
    assert_eq!(one["models"][0]["developer"], DEV.to_checksum(None));

    api.error("/epochs/x", StatusCode::BAD_REQUEST, "`n`").await;
    api.error("/epochs/-1", StatusCode::BAD_REQUEST, "`n`")
        .await;
    api.error("/epochs/7", StatusCode::NOT_FOUND, "epoch 7")
        .await;
    api.error("/epochs?x=1", StatusCode::BAD_REQUEST, "`x`")
        .await;
}

#[tokio::test]
async fn reward_route_gives_the_proof_and_the_claimed_flag() {
    let (api, e0) = api().await;
    let good = worker(1);
    let r = api.ok(&format!("/epochs/0/rewards/{good}")).await;
    let (amount, proof) = e0.rewards.proof(good).unwrap();
    assert_eq!(r["amount"], amount.to_string());
    let served: Vec<B256> = r["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(served, proof);
    assert!(r["proof"][0].as_str().unwrap().starts_with("0x"));
    assert!(merkle::verify(
        &served,
        e0.report.rewardsRoot,
        account_leaf(good, amount)
    ));
    assert_eq!(r["claimed"], true);
    assert_eq!(r["parts"]["worker"], amount.to_string());
    // Another worker's reward is not claimed yet; the validator's comes from its pool.
    let other = api.ok(&format!("/epochs/0/rewards/{}", worker(2))).await;
    assert_eq!(other["claimed"], false);
    let v = api.ok(&format!("/epochs/0/rewards/{VAL}")).await;
    assert_ne!(v["parts"]["validator"], "0");
    // The silent worker earned nothing: no leaf.
    api.error(
        &format!("/epochs/0/rewards/{}", worker(9)),
        StatusCode::NOT_FOUND,
        "no reward",
    )
    .await;
    api.error(
        "/epochs/9/rewards/0x0000000000000000000000000000000000000001",
        StatusCode::NOT_FOUND,
        "epoch 9",
    )
    .await;
    api.error(
        "/epochs/0/rewards/0xzz",
        StatusCode::BAD_REQUEST,
        "`address`",
    )
    .await;
    api.error(
        &format!("/epochs/abc/rewards/{good}"),
        StatusCode::BAD_REQUEST,
        "`n`",
    )
    .await;
}

#[tokio::test]
async fn trust_history_and_leaderboards() {
    let (api, _) = api().await;
    let t = api.ok(&format!("/nodes/{}/trust", worker(5))).await;
    let history = t["history"].as_array().unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| h["epoch"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for h in history {
        for c in ["completion", "accuracy", "uptime", "speed"] {
            let v = h["components"][c].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{c} = {v}");
        }
        assert!(h["quality"].is_number() && h["trust_wad"].is_string());
    }
    assert!(history[0]["trust"].as_f64().unwrap() > 0.0);
    assert_eq!(history[1]["trust"], 0.0, "slashed in epoch 1");
    assert_eq!(history[1]["slashed"], true);
    assert_eq!(t["current"]["epoch"], 2);
    let refreshed = api.ok(&format!("/nodes/{}/trust", worker(1))).await;
    assert_eq!(refreshed["last_refresh"]["epoch"], 0);
    api.error(
        "/nodes/0x0000000000000000000000000000000000000001/trust",
        StatusCode::NOT_FOUND,
        "no node",
    )
    .await;
    api.error("/nodes/nope/trust", StatusCode::BAD_REQUEST, "`address`")
        .await;

    let w = api.ok("/leaderboard?role=worker").await;
    let entries = w["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 20);
    let rewards: Vec<U256> = entries
        .iter()
        .map(|e| e["rewards"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        rewards.windows(2).all(|p| p[0] >= p[1]),
        "sorted by rewards"
    );
    assert_eq!(entries.last().unwrap()["rewards"], "0");
    let v = api.ok("/leaderboard?role=validator").await;
    assert_eq!(
        v["entries"][0]["address"],
        VAL.to_checksum(None),
        "larger stake first"
    );
    let m = api.ok("/leaderboard?role=model").await;
    assert_eq!(m["entries"][0]["model_id"], 1);
    assert_ne!(m["entries"][0]["developer_rewards"], "0");
    api.error("/leaderboard", StatusCode::BAD_REQUEST, "`role`")
        .await;
    api.error("/leaderboard?role=user", StatusCode::BAD_REQUEST, "`role`")
        .await;
    api.error(
        "/leaderboard?role=worker&limit=3",
        StatusCode::BAD_REQUEST,
        "`limit`",
    )
    .await;
}

#[tokio::test]
async fn rates_and_trust_are_within_range_for_every_row() {
    let h = standard();
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path(), "db.sqlite").await;
    index(&db, &h, 0, last_block(&h)).await;
    let out = compute_epoch(&db, &cfg(), 2).await.unwrap();
    for w in &out.workers {
        for r in [
            w.rates.completion,
            w.rates.accuracy,
            w.rates.uptime,
            w.rates.speed,
            w.quality_wad,
            w.trust.trust_wad,
        ] {
            assert!(r <= WAD, "{w:?}");
        }
    }
}

/// The README figure: time to compute (and store) an epoch of 10,000 tasks and 1,000 workers.
/// Prints the figure; asserts only correctness, not time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_epoch_of_10000_tasks_and_1000_nodes() {
    // 1,000 workers, 10,000 tasks in blocks 2..=9 (epoch 0), 10 more blocks.
    let h = synth(1000, 1250, 8, 10);
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path(), "bench.sqlite").await;
    let started = Instant::now();
    index(&db, &h, 0, last_block(&h)).await;
    let ingest = started.elapsed();
    let cfg = cfg();
    let started = Instant::now();
    let out = compute_epoch(&db, &cfg, 0).await.unwrap();
    let compute = started.elapsed();
    let started = Instant::now();
    epochs::store_epoch(&db, &out, last_block(&h))
        .await
        .unwrap();
    let store = started.elapsed();
    assert_eq!(out.tasks_assigned, 10_000);
    assert_eq!(out.workers.len(), 1000);
    assert_eq!(out.report.totalRewards, out.budget);
    println!(
        "epoch of {} tasks and {} workers: compute {:.3} s, store {:.3} s (ingesting the {} events took {:.1} s; {} build)",
        out.tasks_assigned,
        out.workers.len(),
        compute.as_secs_f64(),
        store.as_secs_f64(),
        h.iter().map(|b| b.logs().len()).sum::<usize>(),
        ingest.as_secs_f64(),
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
}
