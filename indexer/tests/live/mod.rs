//! What the indexer's end-to-end tests on a devnet share: the indexer's arguments, polling its
//! REST API, and submitting tasks.
#![allow(dead_code)]

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::DynProvider;
use clap::Parser;
use devnet::Devnet;
use protocol::bindings::ITaskManager;
use serde_json::Value;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test binary uses what it needs
pub use chainstore::testing::{db_spec, pg_database};

/// The indexer's arguments against `devnet`, serving on a free port.
pub fn indexer_args(devnet: &Devnet, db: &str, confirmations: u64, batch: u64) -> indexer::Args {
    indexer::Args::try_parse_from([
        "indexer",
        "--rpc-url",
        &devnet.rpc_url,
        "--deployment",
        devnet.deployment_path.to_str().unwrap(),
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--confirmations",
        &confirmations.to_string(),
        "--poll-interval-ms",
        "100",
        "--batch-blocks",
        &batch.to_string(),
    ])
    .unwrap()
}

/// Polls `url` until it answers 2xx with a body for which `done` holds (120 s at most; the
/// panic names `what` and the last answer).
pub async fn wait_for(url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let res = reqwest::get(url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() && done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what} at {url}; last answer ({status}): {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Submits `inputs` to `model` at `fee` each in one `submitTasks` transaction from `p`'s
/// wallet and returns the task ids in order.
pub async fn submit_tasks(
    p: &DynProvider,
    task_manager: Address,
    model: u32,
    fee: U256,
    inputs: Vec<Bytes>,
) -> Vec<U256> {
    let tm = ITaskManager::new(task_manager, p);
    let call = tm.submitTasks(model, inputs, fee);
    let gas = call.estimate_gas().await.unwrap();
    let receipt = call
        .gas(gas * 3 / 2)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "submitTasks reverted");
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<ITaskManager::TaskSubmitted>().ok())
        .map(|l| l.inner.data.taskId)
        .collect()
}

/// Commits `output` (code 0) for task `id` as `signer`, its drawn worker.
pub async fn commit_as(
    devnet: &Devnet,
    signer: &alloy::signers::local::PrivateKeySigner,
    id: U256,
    output: &[u8],
) {
    let r = ITaskManager::new(devnet.deployment.task_manager, devnet.provider(signer))
        .commit(id, protocol::output_hash(output), 0, output.to_vec().into())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "commit of {id}");
}

/// Lets the challenge window pass and finalizes `ids` in one `finalizeBatch` from the user.
pub async fn finalize_after_challenge(
    devnet: &Devnet,
    ids: Vec<U256>,
) -> alloy::rpc::types::TransactionReceipt {
    devnet
        .advance_time(devnet.config.challenge_window + 1)
        .await
        .unwrap();
    let r = ITaskManager::new(
        devnet.deployment.task_manager,
        devnet.provider(&devnet.user),
    )
    .finalizeBatch(ids)
    .send()
    .await
    .unwrap()
    .get_receipt()
    .await
    .unwrap();
    assert!(r.status(), "finalizeBatch");
    r
}
