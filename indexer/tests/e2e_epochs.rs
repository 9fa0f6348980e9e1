//! Epochs against a real chain: a devnet with 30-second epochs, tasks submitted, committed and
//! finalized by real transactions, the indexer computing the epoch once it has passed, and the
//! computed report accepted by the Settlement contract (signed by the devnet's validator, posted,
//! and a reward claimed with the indexer's proof), which the indexer then shows as posted and
//! claimed.
//!
//! Its own test binary: it sets DN_EPOCH_LENGTH process-wide (the deploy script reads it).

mod live;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::signers::SignerSync;
use devnet::{Devnet, DevnetConfig};
use indexer::epochs::EpochConfig;
use live::{commit_as, db_spec, finalize_after_challenge, indexer_args, submit_tasks, wait_for};
use protocol::bindings::{ISettlement, ITaskManager};
use protocol::merkle;
use protocol::powr::{account_leaf, report_digest, EpochReport};
use serde_json::Value;

const EPOCH_LENGTH: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_passes_is_computed_posted_and_claimed() {
    // This binary holds this one test: no other thread reads the environment meanwhile.
    std::env::set_var("DN_EPOCH_LENGTH", EPOCH_LENGTH.to_string());
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let d = devnet.deployment.clone();
    let user = devnet.provider(&devnet.user);
    let cfg = EpochConfig::load(&user, &d)
        .await
        .expect("epoch config from the chain");
    assert_eq!(
        cfg.epoch_length, EPOCH_LENGTH,
        "the deploy script read DN_EPOCH_LENGTH"
    );
    assert_eq!(
        cfg.response_window_secs as u64,
        devnet.config.response_window
    );

    let dir = tempfile::tempdir().unwrap();
    let args = indexer_args(&devnet, &db_spec(dir.path(), "db.sqlite"), 1, 2000);
    let running = indexer::start(args).await.expect("indexer starts");
    let url = running.url();

    // Four tasks; each assigned worker commits a result; all are finalized.
    let tm = ITaskManager::new(d.task_manager, &user);
    let samples = devnet::digits::heldout().unwrap();
    let inputs: Vec<Bytes> = samples[..4]
        .iter()
        .map(|s| devnet::digits::encode_input(&s.pixels).unwrap().into())
        .collect();
    let ids = submit_tasks(
        &user,
        d.task_manager,
        devnet.model_id,
        devnet.config.model_price_wei,
        inputs,
    )
    .await;
    assert_eq!(ids.len(), 4);
    devnet.assign(&ids).await.unwrap();
    let mut workers = Vec::new();
    for id in &ids {
        let worker: Address = tm.getTask(*id).call().await.unwrap().worker;
        let signer = devnet
            .workers
            .iter()
            .find(|w| w.address() == worker)
            .unwrap();
        commit_as(&devnet, signer, *id, b"label 4").await;
        workers.push(worker);
    }
    let r = finalize_after_challenge(&devnet, ids.clone()).await;
    let block = user
        .get_block_by_number(r.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap();
    let epoch = cfg.epoch_at(block.header.timestamp).unwrap();

    // Let the epoch end and the deadlines pass, then wait for the indexer to compute it.
    devnet
        .advance_time(EPOCH_LENGTH + devnet.config.response_window + 1)
        .await
        .unwrap();
    let e = wait_for(&format!("{url}/epochs/{epoch}"), "epoch computed", |_| true).await;
    let list = wait_for(&format!("{url}/epochs"), "epoch list", |v| {
        v["epochs"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let first = list["epochs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["epoch"], 0, "epochs are computed in order from 0");
    let total: U256 = e["report"]["totalRewards"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let budget: U256 = e["budget"].as_str().unwrap().parse().unwrap();
    assert_eq!(budget, cfg.budget(epoch));
    assert!(total <= budget && total > U256::ZERO, "{e}");
    let chain_budget = ISettlement::new(d.settlement, &user)
        .epochBudget(epoch)
        .call()
        .await
        .unwrap();
    assert_eq!(
        budget, chain_budget,
        "Rust schedule == Settlement.epochBudget"
    );
    let finalized: i64 = e["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["tasks_finalized"].as_i64().unwrap())
        .sum();
    assert_eq!(finalized, 4, "{e}");
    let v = devnet.validators[0].address();
    assert_eq!(e["validators"][0]["address"], v.to_checksum(None));

    // A worker's reward and proof.
    let worker = workers[0];
    let reward = wait_for(
        &format!("{url}/epochs/{epoch}/rewards/{worker}"),
        "reward",
        |_| true,
    )
    .await;
    let amount: U256 = reward["amount"].as_str().unwrap().parse().unwrap();
    let proof: Vec<B256> = reward["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().parse().unwrap())
        .collect();
    let rewards_root: B256 = e["report"]["rewardsRoot"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(merkle::verify(
        &proof,
        rewards_root,
        account_leaf(worker, amount)
    ));
    assert_eq!(reward["claimed"], false);

    // The validator signs the computed report and posts it: the contract accepts our roots.
    let report = EpochReport {
        epoch,
        rewardsRoot: rewards_root,
        trustRoot: e["report"]["trustRoot"].as_str().unwrap().parse().unwrap(),
        totalRewards: total,
        modelStatusHash: e["report"]["modelStatusHash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    };
    let digest = report_digest(&report, devnet.chain_id, d.settlement);
    let sig = devnet.validators[0].sign_hash_sync(&digest).unwrap();
    let vp = devnet.provider(&devnet.validators[0]);
    let settlement = ISettlement::new(d.settlement, &vp);
    let onchain = ISettlement::EpochReport {
        epoch: report.epoch,
        rewardsRoot: report.rewardsRoot,
        trustRoot: report.trustRoot,
        totalRewards: report.totalRewards,
        modelStatusHash: report.modelStatusHash,
    };
    assert_eq!(
        settlement
            .reportDigest(onchain.clone())
            .call()
            .await
            .unwrap(),
        digest
    );
    let r = settlement
        .postReport(onchain, vec![Bytes::from(sig.as_bytes().to_vec())])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "postReport reverted");
    let r = settlement
        .claim(epoch, worker, amount, proof)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "claim reverted");

    let e = wait_for(
        &format!("{url}/epochs/{epoch}"),
        "report posted and claimed",
        |v| v["posted"] == true && v["claims"] == 1,
    )
    .await;
    assert_eq!(e["on_chain"]["matches_computed"], true, "{e}");
    assert_eq!(e["claimed"], amount.to_string());
    let reward = reqwest::get(format!("{url}/epochs/{epoch}/rewards/{worker}"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(reward["claimed"], true);
    let trust = reqwest::get(format!("{url}/nodes/{worker}/trust"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        trust["history"].as_array().unwrap().len() as u64 > epoch,
        "{trust}"
    );
    let board = reqwest::get(format!("{url}/leaderboard?role=worker"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        board["entries"].as_array().unwrap().len(),
        devnet.workers.len()
    );
    running.stop().await.unwrap();
}
