//! Natural selection of models end to end: anvil with the contracts deployed by the devnet
//! harness (20-second epochs), a second model registered from the same ONNX file, tasks of both
//! models submitted, committed and finalized by real transactions, rated by the user (0 for the
//! second model, 100 for the digits model), and the real verifier binary across two rated
//! epochs: the second model goes Active -> Probation on-chain and stays there (ratings alone
//! never delist: issue 14's rating attack), still taking tasks; the digits model stays Active.

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use devnet::{Devnet, DevnetConfig};
use protocol::bindings::{IModelRegistry, ITaskManager};
use protocol::powr::{MODEL_ACTIVE, MODEL_PROBATION};
use serde_json::Value;

mod common;
use common::{label_output, line_of};

/// The real verifier binary as validator 0, stopping once `epoch` is handled.
async fn run_verifier(devnet: &Devnet, db: &Path, epoch: u64) -> (bool, String, String) {
    let epoch = epoch.to_string();
    common::verifier(
        devnet,
        Some(&devnet.validators[0]),
        db,
        &["--stop-after-epoch", &epoch],
    )
    .await
}
use std::collections::BTreeMap;
use std::path::Path;

const EPOCH_LENGTH: u64 = 20;
const RESPONSE_WINDOW: u64 = 5;
/// Ratings per model and epoch (at least MIN_RATINGS, so the status can move).
const TASKS: usize = chainstore::model_selection::MIN_RATINGS as usize + 1;

/// Submits `TASKS` digit tasks to each of `models`, commits them from their assigned workers,
/// finalizes them, then rates them all in one transaction (each model its score); returns the
/// epoch of the ratings' block.
async fn rated_round(devnet: &Devnet, models: &[(u32, u8)]) -> u64 {
    let samples = devnet::digits::heldout().unwrap();
    let user = devnet.provider(&devnet.user);
    let tm = ITaskManager::new(devnet.deployment.task_manager, &user);
    let mut rated: Vec<(U256, u8)> = Vec::new();
    let mut by_worker: BTreeMap<Address, Vec<(U256, i64)>> = BTreeMap::new();
    for &(model, score) in models {
        let inputs: Vec<Vec<u8>> = samples[..TASKS]
            .iter()
            .map(|s| devnet::digits::encode_input(&s.pixels).unwrap())
            .collect();
        let ids = devnet.submit_inputs(model, &inputs, TASKS).await.unwrap();
        assert_eq!(ids.len(), TASKS);
        // no executor runs here: the test plays the workers, so it draws them itself
        devnet.assign(&ids).await.unwrap();
        for (id, s) in ids.iter().zip(&samples) {
            let task = tm.getTask(*id).call().await.unwrap();
            by_worker
                .entry(task.worker)
                .or_default()
                .push((*id, s.label));
            rated.push((*id, score));
        }
    }
    for (worker, tasks) in &by_worker {
        let key = devnet
            .workers
            .iter()
            .find(|w| w.address() == *worker)
            .expect("tasks are assigned to devnet workers");
        let p = devnet.provider(key);
        let outputs: Vec<Vec<u8>> = tasks.iter().map(|(_, l)| label_output(*l)).collect();
        let receipt = ITaskManager::new(devnet.deployment.task_manager, &p)
            .commitBatch(
                tasks.iter().map(|(id, _)| *id).collect(),
                outputs.iter().map(|o| protocol::output_hash(o)).collect(),
                vec![0u16; tasks.len()],
                outputs.into_iter().map(Bytes::from).collect(),
            )
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "commitBatch of {worker} reverted");
    }
    devnet
        .advance_time(devnet.config.challenge_window + 1)
        .await
        .unwrap();
    let receipt = tm
        .finalizeBatch(rated.iter().map(|(id, _)| *id).collect())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "finalizeBatch reverted");
    // One transaction: every rating lands in the same block, hence the same epoch.
    let receipt = tm
        .rateTasks(
            rated.iter().map(|(id, _)| *id).collect(),
            rated.iter().map(|(_, s)| *s).collect(),
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "rateTasks reverted");
    let block = user
        .get_block_by_number(receipt.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap();
    let cfg = chainstore::epochs::EpochConfig::load(&user, &devnet.deployment)
        .await
        .unwrap();
    assert_eq!(cfg.epoch_length, EPOCH_LENGTH);
    cfg.epoch_at(block.header.timestamp).unwrap()
}

/// Moves the chain past `epoch`'s end and its deadlines, so a verifier can settle it.
async fn let_epoch_end(devnet: &Devnet, epoch: u64) {
    let p = devnet.provider(&devnet.deployer);
    let cfg = chainstore::epochs::EpochConfig::load(&p, &devnet.deployment)
        .await
        .unwrap();
    let (_, end) = cfg.bounds(epoch).unwrap();
    let target = end + RESPONSE_WINDOW + 1;
    let now = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    devnet
        .advance_time(target.saturating_sub(now).max(1))
        .await
        .unwrap();
}

async fn status_of(devnet: &Devnet, model: u32) -> u8 {
    let p = devnet.provider(&devnet.deployer);
    IModelRegistry::new(devnet.deployment.model_registry, &p)
        .getModel(model)
        .call()
        .await
        .unwrap()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rating_attack_puts_a_model_on_probation_but_cannot_delist_it() {
    let devnet = Devnet::start(DevnetConfig {
        workers: 2,
        validators: 1,
        challenge_window: 2,
        response_window: RESPONSE_WINDOW,
        epoch_length: Some(EPOCH_LENGTH),
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet");
    let digits = devnet.model_id;
    let bad = devnet
        .register_model(&devnet::digits::model_path(), None)
        .await
        .unwrap();
    assert_ne!(bad, digits);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.sqlite");

    // Round 1: the user rates the second model's results 0, the digits model's 100.
    let first = rated_round(&devnet, &[(bad, 0), (digits, 100)]).await;
    let_epoch_end(&devnet, first).await;
    let (ok, out, err) = run_verifier(&devnet, &db, first).await;
    assert!(ok, "verifier failed:\n{err}");
    let line = line_of(&out, first);
    assert_ne!(
        line["report"]["modelStatusHash"],
        Value::from(alloy::primitives::B256::ZERO.to_string()),
        "{line}"
    );
    assert!(err.contains("model status applied"), "{err}");
    assert_eq!(status_of(&devnet, bad).await, MODEL_PROBATION);
    assert_eq!(status_of(&devnet, digits).await, MODEL_ACTIVE);

    // A restart finds every leaf applied: nothing is sent again.
    let (ok, _, err) = run_verifier(&devnet, &db, first).await;
    assert!(ok, "restarted verifier failed:\n{err}");
    assert!(
        err.contains("applied=0") && !err.contains("model status applied"),
        "{err}"
    );

    // Round 2: a model on probation still takes tasks; rated 0 again it stays on probation:
    // ratings are bought (issue 14's rating attack), so they never delist a model alone, only
    // failed canaries (validator evidence) do.
    let second = rated_round(&devnet, &[(bad, 0), (digits, 100)]).await;
    assert!(second > first);
    let_epoch_end(&devnet, second).await;
    let (ok, out, err) = run_verifier(&devnet, &db, second).await;
    assert!(ok, "verifier failed:\n{err}");
    let line = line_of(&out, second);
    assert!(line["postedTx"].is_string(), "{out}");
    assert_eq!(
        line["report"]["modelStatusHash"],
        Value::from(alloy::primitives::B256::ZERO.to_string()),
        "no status changes in epoch {second}: {line}"
    );
    assert!(!err.contains("model status applied"), "{err}");
    assert_eq!(status_of(&devnet, bad).await, MODEL_PROBATION);
    assert_eq!(status_of(&devnet, digits).await, MODEL_ACTIVE);

    // Still listed: it takes new tasks.
    let input =
        devnet::digits::encode_input(&devnet::digits::heldout().unwrap()[0].pixels).unwrap();
    let ids = devnet
        .submit_inputs(bad, &[input], 1)
        .await
        .expect("a model on probation takes tasks");
    assert_eq!(ids.len(), 1);
}
