//! Wash trading against a real chain, with probe emission on (issue 14): an attacker who is the
//! developer, the only worker and the only user of its own model (declared at 4,294,967,295
//! compute units) pays itself tasks in the same epoch as the prober's tasks on the catalogue
//! model. The indexer computes the epoch from the chain: the attacker earns no emission, while
//! the validators' and protocol's shares of its own fees are gone; the workers of the revealed
//! probe tasks share the workers' pool and the catalogue model's developer the developers' pool.
//! Under the rules before probe emission the same epoch paid the attacker most of both pools
//! (`protocol::epoch` test `with_probe_emission_self_paid_tasks_earn_no_emission`).
//!
//! Its own test binary: it sets DN_EPOCH_LENGTH process-wide (the deploy script reads it).

mod live;

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use devnet::{Devnet, DevnetConfig};
use indexer::epochs::EpochConfig;
use live::{commit_as, db_spec, finalize_after_challenge, indexer_args, submit_tasks, wait_for};
use protocol::bindings::{DNToken, IModelRegistry, IProbeRegistry, IStaking, ITaskManager};
use serde_json::Value;
use std::collections::BTreeSet;

const EPOCH_LENGTH: u64 = 30;

fn wei(v: &Value) -> U256 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_dealing_model_earns_no_emission_and_loses_its_fees_shares() {
    // This binary holds this one test: no other thread reads the environment meanwhile.
    std::env::set_var("DN_EPOCH_LENGTH", EPOCH_LENGTH.to_string());
    let config = DevnetConfig {
        probe: true,
        ..DevnetConfig::default()
    };
    let devnet = Devnet::start(config).await.expect("devnet");
    let d = devnet.deployment.clone();
    assert_ne!(
        d.probe_registry,
        Address::ZERO,
        "deployed with a probe registry"
    );
    let user = devnet.provider(&devnet.user);
    let cfg = EpochConfig::load(&user, &d).await.expect("epoch config");
    let prober = devnet.prober.clone().expect("the devnet's prober");
    let probes = IProbeRegistry::new(d.probe_registry, devnet.provider(&prober));
    assert!(
        probes.probeEmission().call().await.unwrap(),
        "probe emission on"
    );

    let dir = tempfile::tempdir().unwrap();
    let args = indexer_args(&devnet, &db_spec(dir.path(), "db.sqlite"), 1, 2000);
    let running = indexer::start(args).await.expect("indexer starts");
    let url = running.url();

    // The attacker: a fresh account, funded by the user, staked as a worker, developer of a model
    // only it serves.
    let attacker = devnet::anvil_signer(devnet.config.workers + devnet.config.validators + 4);
    let dn = |n: u64| U256::from(n) * U256::from(10u64).pow(U256::from(18u64));
    let token = DNToken::new(d.token, &user);
    for (to, amount) in [
        (
            attacker.address(),
            dn(devnet.config.worker_stake_dn + 1_000),
        ),
        (prober.address(), dn(100)),
    ] {
        let r = token
            .transfer(to, amount)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "funding {to}");
    }
    let ap = devnet.provider(&attacker);
    let approve = |p: alloy::providers::DynProvider, spender: Address, amount: U256| async move {
        let r = DNToken::new(d.token, &p)
            .approve(spender, amount)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "approve {spender}");
    };
    let stake = dn(devnet.config.worker_stake_dn);
    approve(ap.clone(), d.staking, stake).await;
    let r = IStaking::new(d.staking, &ap)
        .stake(protocol::bindings::ROLE_WORKER, stake)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "attacker stakes");
    let registry = IModelRegistry::new(d.model_registry, &ap);
    let bond = registry.listingBond().call().await.unwrap();
    approve(ap.clone(), d.model_registry, bond).await;
    let price: alloy::primitives::Uint<96, 2> =
        alloy::primitives::Uint::from(devnet.config.model_price_wei);
    let r = registry
        .registerModel(
            alloy::primitives::keccak256(b"wash"),
            "file:///wash.onnx".into(),
            price,
            u32::MAX,
            0,
            0,
            0,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let wash_model = r
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<IModelRegistry::ModelRegistered>().ok())
        .map(|l| l.inner.data.modelId)
        .expect("ModelRegistered");
    let r = registry
        .optIn(wash_model)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "attacker opts in to its model");

    // Its self-paid tasks, and the prober's tasks on the catalogue model.
    let pp = devnet.provider(&prober);
    approve(ap.clone(), d.task_manager, U256::MAX).await;
    approve(pp.clone(), d.task_manager, U256::MAX).await;
    let fee = devnet.config.model_price_wei;
    let wash_ids = submit_tasks(
        &ap,
        d.task_manager,
        wash_model,
        fee,
        (0..8u8).map(|i| Bytes::from(vec![i; 16])).collect(),
    )
    .await;
    let samples = devnet::digits::heldout().unwrap();
    let probe_ids = submit_tasks(
        &pp,
        d.task_manager,
        devnet.model_id,
        fee,
        samples[..4]
            .iter()
            .map(|s| devnet::digits::encode_input(&s.pixels).unwrap().into())
            .collect(),
    )
    .await;
    assert_eq!((wash_ids.len(), probe_ids.len()), (8, 4));
    let time = |n: u64| {
        let user = user.clone();
        async move {
            user.get_block_by_number(n.into())
                .await
                .unwrap()
                .unwrap()
                .header
                .timestamp
        }
    };
    // the probes' epoch: the one they were submitted in (one transaction)
    let submitted = user
        .get_logs(
            &alloy::rpc::types::Filter::new()
                .address(d.task_manager)
                .event_signature(
                    <ITaskManager::TaskSubmitted as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                )
                .topic1(probe_ids[0]),
        )
        .await
        .unwrap();
    let probe_epoch = cfg
        .epoch_at(time(submitted[0].block_number.unwrap()).await)
        .unwrap();
    let (_, probe_end) = cfg.bounds(probe_epoch).unwrap();
    // A reveal during the epoch is refused (it would tell workers which tasks are probes).
    let early = probes
        .revealProbes(probe_epoch, vec![prober.address()])
        .call()
        .await;
    assert!(
        early.is_err(),
        "a reveal before the epoch's end must revert"
    );
    let all: Vec<U256> = wash_ids.iter().chain(&probe_ids).copied().collect();
    devnet.assign(&all).await.unwrap();
    let tm = ITaskManager::new(d.task_manager, &user);
    let mut probe_workers = BTreeSet::new();
    for id in &all {
        let worker: Address = tm.getTask(*id).call().await.unwrap().worker;
        let signer: &PrivateKeySigner = if worker == attacker.address() {
            &attacker
        } else {
            devnet
                .workers
                .iter()
                .find(|w| w.address() == worker)
                .expect("an honest worker")
        };
        if probe_ids.contains(id) {
            probe_workers.insert(worker);
        } else {
            assert_eq!(
                worker,
                attacker.address(),
                "only the attacker serves its model"
            );
        }
        commit_as(&devnet, signer, *id, b"label 4").await;
    }
    assert!(
        !probe_workers.contains(&attacker.address()),
        "the attacker serves only its own model"
    );
    let r = finalize_after_challenge(&devnet, all.clone()).await;
    // what the attacker's own fees lost: the validators' and protocol's shares
    let mut burned = U256::ZERO;
    for l in r.inner.logs() {
        if let Ok(f) = l.log_decode::<ITaskManager::TaskFinalized>() {
            if wash_ids.contains(&f.inner.data.taskId) {
                burned += f.inner.data.validatorFee + f.inner.data.protocolFee;
            }
        }
    }
    assert!(
        burned > U256::ZERO,
        "the self-paid fees paid validators and protocol"
    );
    // the epoch that pays them: the one they were finalized in (the same or the next)
    let epoch = cfg.epoch_at(time(r.block_number.unwrap()).await).unwrap();
    let (_, end) = cfg.bounds(epoch).unwrap();

    // Once the probes' epoch has ended, the prober reveals its wallet for that epoch, within a
    // response window.
    let now = time(user.get_block_number().await.unwrap()).await;
    if now < probe_end {
        devnet.advance_time(probe_end - now).await.unwrap();
    }
    let r = probes
        .revealProbes(probe_epoch, vec![prober.address()])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "revealProbes");
    let revealed_at = time(r.block_number.unwrap()).await;
    assert!(
        revealed_at >= probe_end
            && revealed_at <= probe_end - 1 + u64::from(cfg.response_window_secs),
        "the reveal is within the window the epoch computation counts"
    );
    // the paying epoch's facts run to its end plus a response window
    let now = time(user.get_block_number().await.unwrap()).await;
    devnet
        .advance_time(
            (end + devnet.config.response_window + 1)
                .saturating_sub(now)
                .max(1),
        )
        .await
        .unwrap();

    let e = wait_for(&format!("{url}/epochs/{epoch}"), "epoch computed", |_| true).await;
    let reward_of = |a: Address| {
        e["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["address"] == a.to_checksum(None))
            .map_or(U256::ZERO, |n| wei(&n["reward"]))
    };
    // The attacker: no worker reward, no developer reward.
    assert_eq!(reward_of(attacker.address()), U256::ZERO, "{e}");
    let res = reqwest::get(format!(
        "{url}/epochs/{epoch}/rewards/{}",
        attacker.address()
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 404, "no reward leaf for the attacker: {e}");
    // The probes' workers share the workers' pool (largest-remainder rounding: exactly).
    let paid: U256 = probe_workers.iter().map(|w| reward_of(*w)).sum();
    assert_eq!(paid, wei(&e["pools"]["worker"]), "{e}");
    // The catalogue model's developer gets the developers' pool.
    let dev = wait_for(
        &format!(
            "{url}/epochs/{epoch}/rewards/{}",
            devnet.developer.address()
        ),
        "developer reward",
        |_| true,
    )
    .await;
    assert!(wei(&dev["amount"]) >= wei(&e["pools"]["model"]), "{dev}");
    running.stop().await.unwrap();
}
