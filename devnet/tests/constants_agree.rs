//! Facts written both in Solidity and in Rust, checked against each other on a real deployment:
//! the new-node trust T_0, the batch Merkle root of a commit, and the failure-code boundary
//! (code 0 = result, anything else = refund minus the processing share).

use alloy::primitives::{keccak256, Address, U256};
use devnet::{digits, Devnet, DevnetConfig};
use protocol::bindings::{IModelRegistry, ITaskManager, TaskStatus};
use protocol::codes::FailureCode;
use protocol::merkle::{batch_root, leaf_hash};
use protocol::powr::PowrParams;

#[tokio::test]
async fn solidity_and_rust_agree_on_shared_constants() {
    let net = Devnet::start(DevnetConfig {
        block_time: 0,
        response_window: 60,
        challenge_window: 1,
        ..Default::default()
    })
    .await
    .expect("devnet");
    let d = &net.deployment;
    let reader = net.provider(&net.deployer);

    // T_0: a never-scored address has the protocol's initial trust on-chain too.
    let registry = IModelRegistry::new(d.model_registry, &reader);
    let fresh: Address = keccak256(b"a fresh address")[12..].try_into().unwrap();
    let onchain_t0 = registry.trustWeight(fresh).call().await.unwrap();
    assert_eq!(
        onchain_t0,
        U256::from(PowrParams::default().initial_trust_wad)
    );

    // Batch root: the contract's MerkleBatch and protocol::merkle give the same root for a
    // 3-task batch (odd node promoted), with one failure code among the leaves.
    let samples = digits::heldout().unwrap();
    let inputs: Vec<Vec<u8>> = samples[..3]
        .iter()
        .map(|s| digits::encode_input(&s.pixels).unwrap())
        .collect();
    let ids = net.submit_inputs(net.model_id, &inputs, 3).await.unwrap();
    net.assign(&ids).await.unwrap();
    let tm = ITaskManager::new(d.task_manager, &reader);
    // Commit everything a worker got in one batch per worker; check each batch's root.
    let mut by_worker: std::collections::BTreeMap<Address, Vec<U256>> = Default::default();
    for id in &ids {
        by_worker
            .entry(tm.getTask(*id).call().await.unwrap().worker)
            .or_default()
            .push(*id);
    }
    for (worker, tasks) in by_worker {
        let signer = net
            .workers
            .iter()
            .find(|w| w.address() == worker)
            .expect("a devnet worker");
        let p = net.provider(signer);
        let hashes: Vec<_> = tasks
            .iter()
            .map(|id| keccak256(id.to_be_bytes::<32>()))
            .collect();
        let codes: Vec<u16> = tasks
            .iter()
            .enumerate()
            .map(|(i, _)| {
                if i == 0 {
                    FailureCode::InputShape.as_u16()
                } else {
                    0
                }
            })
            .collect();
        let outputs: Vec<alloy::primitives::Bytes> = tasks
            .iter()
            .map(|_| alloy::primitives::Bytes::new())
            .collect();
        let receipt = ITaskManager::new(d.task_manager, &p)
            .commitBatch(tasks.clone(), hashes.clone(), codes.clone(), outputs)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let ev = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<ITaskManager::ResultsCommitted>().ok())
            .expect("ResultsCommitted")
            .inner
            .data;
        let leaves: Vec<_> = tasks
            .iter()
            .zip(&hashes)
            .zip(&codes)
            .map(|((id, h), c)| leaf_hash(*id, *h, *c))
            .collect();
        assert_eq!(
            ev.root,
            batch_root(&leaves),
            "event root == protocol::merkle::batch_root"
        );
        assert_eq!(
            tm.batchRoot(ev.batchId).call().await.unwrap(),
            ev.root,
            "stored root == event root"
        );
        // Code 0 is a result, any other code a failure: the contract's statuses say the same.
        for (id, c) in tasks.iter().zip(&codes) {
            let status = TaskStatus::from_u8(tm.getTask(*id).call().await.unwrap().status);
            let want = if FailureCode::from_u16(*c) == Some(FailureCode::Ok) {
                TaskStatus::Committed
            } else {
                TaskStatus::Failed
            };
            assert_eq!(status, Some(want), "task {id} code {c}");
        }
    }
}
