//! The prober (`verifier --probe-key`, `verifier::probe`) against a real chain: anvil with the
//! contracts deployed by the devnet harness, probe emission on and the devnet's prober holding
//! PROBER_ROLE (no executors: the probe tasks just wait for a worker). Covers: one fresh wallet per
//! epoch, never the prober's, submitting the epoch's probes within it; each such wallet revealed
//! once, after the epoch's end and within one response window; no reveal of an epoch without
//! probes; restarts that reveal what is due from the chain and never twice; a probe key without
//! the role (or an unknown model) refused at start; `--probe-funding external` (the probe key sends
//! nothing to the epoch wallets, an unfunded wallet's probe waits for its funds); and
//! `--probe-print-wallets` (the coming wallets, nothing secret).
//!
//! Its own test binary: it sets DN_EPOCH_LENGTH process-wide (the deploy script reads it).

use alloy::consensus::Transaction as _;
use alloy::network::TransactionBuilder;
use alloy::primitives::utils::parse_ether;
use alloy::primitives::{keccak256, Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::rpc::types::{Filter, Log};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use chainstore::epochs::EpochConfig;
use clap::Parser;
use devnet::{key_hex, Devnet, DevnetConfig};
use protocol::bindings::{DNToken, IModelRegistry, IProbeRegistry, ITaskManager};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use verifier::probe::{epoch_signer, slot_times, ProbeSeed, Prober};

mod common;

const EPOCH_LENGTH: u64 = 20;
/// The prober's time to reveal after an epoch's end.
const RESPONSE_WINDOW: u64 = 15;
const TASKS_PER_EPOCH: u32 = 2;
const SEED: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

async fn start_devnet() -> Devnet {
    // every test of this binary uses the same value
    std::env::set_var("DN_EPOCH_LENGTH", EPOCH_LENGTH.to_string());
    Devnet::start(DevnetConfig {
        probe: true,
        response_window: RESPONSE_WINDOW,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet")
}

/// A few digits inputs in a fresh directory.
fn inputs_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, s) in devnet::digits::heldout().unwrap()[..3].iter().enumerate() {
        let bytes = devnet::digits::encode_input(&s.pixels).unwrap();
        std::fs::write(dir.path().join(format!("{i}.safetensors")), bytes).unwrap();
    }
    dir
}

fn probe_args(
    devnet: &Devnet,
    key: &PrivateKeySigner,
    model: u32,
    inputs: &Path,
) -> verifier::Args {
    probe_args_with(devnet, key, model, inputs, &[])
}

/// [`probe_args`] plus `extra` flags.
fn probe_args_with(
    devnet: &Devnet,
    key: &PrivateKeySigner,
    model: u32,
    inputs: &Path,
    extra: &[&str],
) -> verifier::Args {
    let args = [
        "verifier".to_string(),
        "--rpc-url".into(),
        devnet.rpc_url.clone(),
        "--deployment".into(),
        devnet.deployment_path.to_str().unwrap().into(),
        "--poll-interval-ms".into(),
        "100".into(),
        "--probe-key".into(),
        key_hex(key),
        "--probe-seed".into(),
        SEED.into(),
        "--probe-model".into(),
        model.to_string(),
        "--probe-inputs".into(),
        inputs.to_str().unwrap().into(),
        "--probe-tasks-per-epoch".into(),
        TASKS_PER_EPOCH.to_string(),
    ];
    verifier::Args::try_parse_from(args.into_iter().chain(extra.iter().map(|s| s.to_string())))
        .expect("probe flags parse")
}

async fn start_prober(args: &verifier::Args) -> Prober {
    let cfg = args.probe_config().unwrap().expect("--probe-key given");
    Prober::start(cfg, &args.rpc).await.expect("prober starts")
}

async fn chain_time(p: &DynProvider) -> u64 {
    p.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

async fn block_time(p: &DynProvider, log: &Log) -> u64 {
    let n = log.block_number.expect("mined log");
    p.get_block_by_number(n.into())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

/// Polls `done` every 100 ms until it holds; panics naming `what` after `timeout`.
async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every log of `E` at `address` since the deployment, optionally with topic 1 / topic 2.
async fn logs<E: SolEvent>(devnet: &Devnet, address: Address, topic2: Option<Address>) -> Vec<Log> {
    let mut f = Filter::new()
        .address(address)
        .event_signature(E::SIGNATURE_HASH)
        .from_block(devnet.deployment.start_block);
    if let Some(a) = topic2 {
        f = f.topic2(a.into_word());
    }
    devnet.provider(&devnet.user).get_logs(&f).await.unwrap()
}

/// Tasks submitted by `wallet`.
async fn submitted_by(devnet: &Devnet, wallet: Address) -> usize {
    logs::<ITaskManager::TaskSubmitted>(devnet, devnet.deployment.task_manager, Some(wallet))
        .await
        .len()
}

struct World {
    devnet: Devnet,
    reader: DynProvider,
    cfg: EpochConfig,
    seed: ProbeSeed,
}

impl World {
    /// A devnet with probe emission on and its prober (which the devnet gives 1,000 DN for the
    /// probes' fees), and the epoch parameters read back from the chain.
    async fn start() -> World {
        let devnet = start_devnet().await;
        let reader = devnet.provider(&devnet.user);
        let cfg = EpochConfig::load(&reader, &devnet.deployment)
            .await
            .expect("epoch config");
        assert_eq!(
            (cfg.epoch_length, u64::from(cfg.response_window_secs)),
            (EPOCH_LENGTH, RESPONSE_WINDOW)
        );
        World {
            seed: ProbeSeed::parse(SEED).unwrap(),
            devnet,
            reader,
            cfg,
        }
    }

    fn wallet(&self, epoch: u64) -> Address {
        epoch_signer(&self.seed, self.devnet.chain_id, epoch).address()
    }

    async fn epoch_now(&self) -> u64 {
        self.cfg.epoch_at(chain_time(&self.reader).await).unwrap()
    }

    async fn revealed(&self, epoch: u64) -> bool {
        IProbeRegistry::new(self.devnet.deployment.probe_registry, &self.reader)
            .isProbeSubmitter(epoch, self.wallet(epoch))
            .call()
            .await
            .unwrap()
    }

    /// Whether the running prober has work due: a slot of the running epoch not submitted yet,
    /// or the ended epoch's probes waiting for their reveal. The test never moves the clock past
    /// either (that would be unfair to the prober: on a real chain time runs at its own pace).
    async fn prober_busy(&self) -> bool {
        let now = chain_time(&self.reader).await;
        let e = self.cfg.epoch_at(now).unwrap();
        let (start, _) = self.cfg.bounds(e).unwrap();
        let due = slot_times(
            &self.seed,
            self.devnet.chain_id,
            e,
            start,
            EPOCH_LENGTH,
            TASKS_PER_EPOCH,
        )
        .into_iter()
        .filter(|t| *t <= now)
        .count();
        if submitted_by(&self.devnet, self.wallet(e)).await < due {
            return true;
        }
        match e.checked_sub(1) {
            Some(prev) => {
                submitted_by(&self.devnet, self.wallet(prev)).await > 0
                    && !self.revealed(prev).await
            }
            None => false,
        }
    }

    /// Moves the chain clock 1 s at a time (while the prober is not busy) until `done` holds;
    /// panics naming `what` after 3 minutes.
    async fn drive_until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let timeout = Duration::from_secs(180);
        let start = Instant::now();
        while !done().await {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what} (chain time {})",
                chain_time(&self.reader).await
            );
            if !self.prober_busy().await {
                self.devnet.advance_time(1).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Lets the running prober probe `epoch`: its slots submitted, the epoch ended, its reveal.
    async fn probe_epoch(&self, epoch: u64) {
        let wallet = self.wallet(epoch);
        self.drive_until(
            &format!("{TASKS_PER_EPOCH} probe tasks of epoch {epoch} from {wallet}"),
            || async { submitted_by(&self.devnet, wallet).await >= TASKS_PER_EPOCH as usize },
        )
        .await;
        self.to_end_of(epoch).await;
        wait_for(
            &format!("the reveal of epoch {epoch}'s wallet {wallet}"),
            Duration::from_secs(60),
            || self.revealed(epoch),
        )
        .await;
    }

    async fn to_end_of(&self, epoch: u64) {
        let (_, end) = self.cfg.bounds(epoch).unwrap();
        self.drive_until(
            &format!("the end of epoch {epoch} (time {end})"),
            || async { chain_time(&self.reader).await >= end },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_submits_from_a_fresh_wallet_each_epoch_and_reveals_it_once_in_time() {
    let world = World::start().await;
    let devnet = &world.devnet;
    let d = devnet.deployment.clone();
    let prober = devnet.prober.clone().expect("the devnet's prober");
    // the documented derivation: keccak256(seed || chain id || epoch), 8-byte big-endian each
    let mut pre = alloy::hex::decode(SEED).unwrap();
    pre.extend_from_slice(&devnet.chain_id.to_be_bytes());
    pre.extend_from_slice(&3u64.to_be_bytes());
    assert_eq!(
        PrivateKeySigner::from_bytes(&keccak256(&pre))
            .unwrap()
            .address(),
        world.wallet(3)
    );

    let dir = inputs_dir();
    let args = probe_args(devnet, &prober, devnet.model_id, dir.path());
    let started = Instant::now();

    // 1. A prober runs through two whole epochs.
    let p1 = start_prober(&args).await;
    assert_eq!(p1.address(), prober.address());
    let (stop, stop_rx) = watch::channel(false);
    let run1 = tokio::spawn(p1.run(stop_rx));
    let e0 = world.epoch_now().await;
    let (e1, e2, e3, e4) = (e0 + 1, e0 + 2, e0 + 3, e0 + 4);
    world.probe_epoch(e1).await;
    eprintln!(
        "epoch {e1} probed and revealed after {:?}",
        started.elapsed()
    );

    // 2. It submits epoch e2's probes and stops before the epoch ends; a fresh prober (nothing in
    //    memory) reveals e2 from what the chain says, and nothing already revealed again.
    let w2 = world.wallet(e2);
    world
        .drive_until(&format!("the probe tasks of epoch {e2}"), || async {
            submitted_by(devnet, w2).await >= TASKS_PER_EPOCH as usize
        })
        .await;
    stop.send(true).unwrap();
    run1.await.unwrap().expect("the first prober stops cleanly");
    let (_, end2) = world.cfg.bounds(e2).unwrap();
    assert!(
        chain_time(&world.reader).await < end2,
        "stopped within epoch {e2}"
    );
    assert!(!world.revealed(e2).await, "not revealed before the end");
    let mut p2 = start_prober(&args).await;
    world.to_end_of(e2).await;
    let out = p2.step().await.expect("the restarted prober's first step");
    assert_eq!(out.epoch, Some(e3));
    assert_eq!(
        out.revealed,
        vec![e2],
        "only epoch {e2} was due for a reveal"
    );
    let out = p2.step().await.expect("a second step");
    assert!(out.revealed.is_empty(), "no reveal twice: {out:?}");
    drop(p2);

    // 3. Nobody probes epoch e3: once it has ended, a prober started in e4 reveals nothing for it
    //    (and nothing twice), then probes e4.
    assert_eq!(
        submitted_by(devnet, world.wallet(e3)).await,
        0,
        "the second prober's two steps came before epoch {e3}'s first slot"
    );
    let (start4, _) = world.cfg.bounds(e4).unwrap();
    let now = chain_time(&world.reader).await;
    devnet.advance_time(start4 + 1 - now).await.unwrap();
    let mut p3 = start_prober(&args).await;
    let out = p3.step().await.expect("the third prober's first step");
    assert_eq!(out.epoch, Some(e4));
    assert!(out.revealed.is_empty(), "nothing to reveal: {out:?}");
    let (stop, stop_rx) = watch::channel(false);
    let run3 = tokio::spawn(p3.run(stop_rx));
    world.probe_epoch(e4).await;
    stop.send(true).unwrap();
    run3.await.unwrap().expect("the third prober stops cleanly");
    eprintln!("epochs {e1}..={e4} done after {:?}", started.elapsed());

    // From the chain: every task came from an epoch wallet, within its epoch.
    let mut by_wallet: BTreeMap<Address, Vec<u64>> = BTreeMap::new();
    for log in logs::<ITaskManager::TaskSubmitted>(devnet, d.task_manager, None).await {
        let ev = log.log_decode::<ITaskManager::TaskSubmitted>().unwrap();
        assert_eq!(ev.inner.data.modelId, devnet.model_id);
        assert_ne!(
            ev.inner.data.submitter,
            prober.address(),
            "the prober never submits"
        );
        by_wallet
            .entry(ev.inner.data.submitter)
            .or_default()
            .push(block_time(&world.reader, &log).await);
    }
    let mut probed = BTreeSet::new();
    for e in e0..=e4 {
        let w = world.wallet(e);
        let Some(times) = by_wallet.remove(&w) else {
            continue;
        };
        let (start, end) = world.cfg.bounds(e).unwrap();
        assert!(
            times.iter().all(|t| (start..end).contains(t)),
            "tasks of epoch {e}'s wallet at {times:?}, outside [{start}, {end})"
        );
        assert!(
            times.len() <= TASKS_PER_EPOCH as usize,
            "epoch {e}: {times:?}"
        );
        probed.insert(e);
    }
    assert!(
        by_wallet.is_empty(),
        "tasks from other wallets: {by_wallet:?}"
    );
    for e in [e1, e2, e4] {
        assert!(probed.contains(&e), "epoch {e} probed");
    }
    assert!(!probed.contains(&e3), "nobody probed epoch {e3}");
    let wallets: BTreeSet<Address> = probed.iter().map(|e| world.wallet(*e)).collect();
    assert_eq!(wallets.len(), probed.len(), "one wallet per epoch");
    assert!(!wallets.contains(&prober.address()));

    // Each probed epoch revealed once, by the prober, after its end and in time to count; no
    // reveal of an epoch without probes.
    let mut reveals: BTreeMap<u64, Vec<(Address, u64)>> = BTreeMap::new();
    for log in logs::<IProbeRegistry::ProbesRevealed>(devnet, d.probe_registry, None).await {
        let ev = log.log_decode::<IProbeRegistry::ProbesRevealed>().unwrap();
        assert_eq!(ev.inner.data.prober, prober.address());
        reveals.entry(ev.inner.data.epoch).or_default().push((
            ev.inner.data.submitter,
            block_time(&world.reader, &log).await,
        ));
    }
    assert_eq!(
        reveals.keys().copied().collect::<BTreeSet<_>>(),
        probed,
        "reveals exactly for the probed epochs"
    );
    for (e, rs) in &reveals {
        assert_eq!(rs.len(), 1, "epoch {e} revealed once: {rs:?}");
        let (submitter, at) = rs[0];
        assert_eq!(submitter, world.wallet(*e));
        let (_, end) = world.cfg.bounds(*e).unwrap();
        assert!(
            at >= end && at <= end - 1 + RESPONSE_WINDOW,
            "epoch {e} revealed at {at}, outside [{end}, {}]",
            end - 1 + RESPONSE_WINDOW
        );
    }
    assert!(!world.revealed(e3).await);
    assert_eq!(
        world
            .reader
            .get_transaction_count(world.wallet(e3))
            .await
            .unwrap(),
        0,
        "epoch {e3}'s wallet never used"
    );
    // the leftover DN went back (the fees were exact: nothing is left)
    let token = DNToken::new(d.token, &world.reader);
    for e in &probed {
        assert_eq!(
            token.balanceOf(world.wallet(*e)).call().await.unwrap(),
            U256::ZERO,
            "epoch {e}'s wallet holds no DN"
        );
    }
    eprintln!("checked after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_key_without_the_role_or_an_unknown_model_is_refused_at_start() {
    let devnet = start_devnet().await;
    let dir = inputs_dir();
    // the verifier binary, with a staked validator's key and the user's as the probe key
    let db = tempfile::tempdir().unwrap();
    let model = devnet.model_id.to_string();
    let user_key = key_hex(&devnet.user);
    let (ok, _, stderr) = common::verifier(
        &devnet,
        Some(&devnet.validators[0]),
        &db.path().join("v.sqlite"),
        &[
            "--audit",
            "false",
            "--probe-key",
            &user_key,
            "--probe-seed",
            SEED,
            "--probe-model",
            &model,
            "--probe-inputs",
            dir.path().to_str().unwrap(),
        ],
    )
    .await;
    assert!(!ok, "a prober without the role must not start:\n{stderr}");
    assert!(
        stderr.contains("PROBER_ROLE") && stderr.contains(&devnet.user.address().to_string()),
        "the error names the role and the address:\n{stderr}"
    );
    assert!(
        !stderr.contains(SEED) && !stderr.contains(&user_key[2..]),
        "no secret in the logs"
    );

    // the prober's own key, a model that does not exist
    let prober = devnet.prober.clone().unwrap();
    let args = probe_args(&devnet, &prober, 999, dir.path());
    let e = Prober::start(args.probe_config().unwrap().unwrap(), &args.rpc)
        .await
        .err()
        .expect("an unknown model is refused")
        .to_string();
    assert!(e.contains("--probe-model 999"), "{e}");
}

/// The catalogue price of `model`.
async fn price_of(devnet: &Devnet, model: u32) -> U256 {
    let m = IModelRegistry::new(
        devnet.deployment.model_registry,
        devnet.provider(&devnet.user),
    )
    .getModel(model)
    .call()
    .await
    .unwrap();
    U256::from(m.pricePerCall)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_funding_sends_nothing_from_the_probe_key_and_waits_for_funds() {
    let world = World::start().await;
    let devnet = &world.devnet;
    let d = devnet.deployment.clone();
    let prober = devnet.prober.clone().expect("the devnet's prober");
    let token = DNToken::new(d.token, &world.reader);
    let price = price_of(devnet, devnet.model_id).await;
    assert!(!price.is_zero());
    let dir = inputs_dir();
    let args = probe_args_with(
        devnet,
        &prober,
        devnet.model_id,
        dir.path(),
        &["--probe-funding", "external"],
    );
    // the probe key as it starts (it holds ETH for its reveals, no DN: external funding needs none)
    let nonce_at_start = world
        .reader
        .get_transaction_count(prober.address())
        .await
        .unwrap();
    let dn_at_start = token.balanceOf(prober.address()).call().await.unwrap();
    let eth_at_start = world.reader.get_balance(prober.address()).await.unwrap();
    let mut p = start_prober(&args).await;

    // 1. The first slot of the next epoch is due and its wallet holds nothing: the step fails,
    //    naming the epoch, the wallet and the mode; nothing is sent or submitted.
    let e1 = world.epoch_now().await + 1;
    let wallet = p.epoch_wallet(e1);
    assert_eq!(wallet, world.wallet(e1));
    let (start1, end1) = world.cfg.bounds(e1).unwrap();
    let slots = slot_times(
        &world.seed,
        devnet.chain_id,
        e1,
        start1,
        EPOCH_LENGTH,
        TASKS_PER_EPOCH,
    );
    let now = chain_time(&world.reader).await;
    devnet
        .advance_time(slots[0].saturating_sub(now))
        .await
        .unwrap();
    let polling = Instant::now();
    let err = loop {
        match p.step().await {
            Err(e) => break format!("{e:#}"),
            Ok(out) => {
                assert_eq!(out.submitted, 0, "nothing to pay with: {out:?}");
                assert!(
                    polling.elapsed() < Duration::from_secs(30),
                    "the unfunded wallet's slot never came due: {out:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        err.contains(&wallet.to_string())
            && err.contains(&format!("epoch {e1}"))
            && err.contains("--probe-funding external")
            && err.contains("DN"),
        "the error names the epoch, the wallet and the mode: {err}"
    );
    eprintln!("unfunded epoch wallet, as the prober reports it: {err}");
    // retried at the next poll: same answer, still nothing sent
    let again = format!("{:#}", p.step().await.expect_err("still unfunded"));
    assert!(again.contains(&wallet.to_string()), "{again}");
    assert_eq!(submitted_by(devnet, wallet).await, 0);
    assert_eq!(
        world.reader.get_transaction_count(wallet).await.unwrap(),
        0,
        "the unfunded wallet sent nothing"
    );
    assert_eq!(
        world
            .reader
            .get_transaction_count(prober.address())
            .await
            .unwrap(),
        nonce_at_start,
        "the probe key sent nothing"
    );
    assert!(!world.revealed(e1).await);

    // 2. The operator funds the wallet through its own route (here: the devnet's user), DN for
    //    the epoch's probes and one more fee, ETH for gas; the running prober then probes.
    let r = token
        .transfer(wallet, price * U256::from(TASKS_PER_EPOCH + 1))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    let r = world
        .reader
        .send_transaction(
            TransactionRequest::default()
                .with_to(wallet)
                .with_value(parse_ether("0.01").unwrap()),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    assert!(
        chain_time(&world.reader).await < end1,
        "epoch {e1} still runs once its wallet is funded"
    );
    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(p.run(stop_rx));
    world
        .drive_until(
            &format!("{TASKS_PER_EPOCH} probe tasks of epoch {e1} from {wallet}"),
            || async { submitted_by(devnet, wallet).await >= TASKS_PER_EPOCH as usize },
        )
        .await;
    assert_eq!(
        world
            .reader
            .get_transaction_count(prober.address())
            .await
            .unwrap(),
        nonce_at_start,
        "before the reveal the probe key sent no transaction (no ETH, no DN)"
    );
    world.to_end_of(e1).await;
    wait_for(
        &format!("the reveal of epoch {e1}'s wallet {wallet}"),
        Duration::from_secs(60),
        || world.revealed(e1),
    )
    .await;
    // the sweep still returns the leftover fee to the probe key after the reveal
    let swept = dn_at_start + price;
    wait_for(
        "the leftover DN swept back to the probe key",
        Duration::from_secs(60),
        || async { token.balanceOf(prober.address()).call().await.unwrap() == swept },
    )
    .await;
    // then the ETH the operator sent for gas (0.01; the probes and the DN transfer used under a
    // tenth of it): what stays is the ETH transfer's fee cap margin, and the probe key, which
    // paid only for its reveal, ends with more ETH than it started with
    wait_for(
        "the leftover ETH swept back to the probe key",
        Duration::from_secs(60),
        || async {
            world.reader.get_balance(wallet).await.unwrap() < parse_ether("0.0005").unwrap()
        },
    )
    .await;
    assert!(
        world.reader.get_balance(prober.address()).await.unwrap()
            > eth_at_start + parse_ether("0.008").unwrap(),
        "the probe key got the wallet's ETH back"
    );
    stop.send(true).unwrap();
    run.await.unwrap().expect("the prober stops cleanly");

    // From the chain: the probe key's only transaction is the reveal (no value), and no DN ever
    // went from it to the wallet; the wallet's DN came from the operator's route only.
    assert_eq!(
        world
            .reader
            .get_transaction_count(prober.address())
            .await
            .unwrap(),
        nonce_at_start + 1,
        "the probe key sent one transaction: the reveal"
    );
    let reveals = logs::<IProbeRegistry::ProbesRevealed>(devnet, d.probe_registry, None).await;
    assert_eq!(reveals.len(), 1, "{reveals:?}");
    let tx = world
        .reader
        .get_transaction_by_hash(reveals[0].transaction_hash.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.inner.signer(), prober.address());
    assert_eq!(tx.inner.to(), Some(d.probe_registry));
    assert!(tx.inner.value().is_zero(), "the reveal carries no ETH");
    let from_prober = world
        .reader
        .get_logs(
            &Filter::new()
                .address(d.token)
                .event_signature(DNToken::Transfer::SIGNATURE_HASH)
                .topic1(prober.address().into_word())
                .from_block(d.start_block),
        )
        .await
        .unwrap();
    assert!(
        from_prober.is_empty(),
        "DN transfers from the probe key: {from_prober:?}"
    );
    let into_wallet = logs::<DNToken::Transfer>(devnet, d.token, Some(wallet)).await;
    assert!(!into_wallet.is_empty());
    for log in &into_wallet {
        let ev = log.log_decode::<DNToken::Transfer>().unwrap();
        assert_eq!(
            ev.inner.data.from,
            devnet.user.address(),
            "the wallet's DN came from the operator's route only"
        );
    }
    assert_eq!(
        token.balanceOf(wallet).call().await.unwrap(),
        U256::ZERO,
        "the leftover went back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_wallets_lists_the_coming_epoch_wallets_and_nothing_secret() {
    let devnet = start_devnet().await;
    let prober = devnet.prober.clone().expect("the devnet's prober");
    let seed = ProbeSeed::parse(SEED).unwrap();
    let reader = devnet.provider(&devnet.user);
    let cfg = EpochConfig::load(&reader, &devnet.deployment)
        .await
        .unwrap();
    let price = price_of(&devnet, devnet.model_id).await;
    let needs = price * U256::from(TASKS_PER_EPOCH);
    let dir = inputs_dir();
    let args = probe_args_with(
        &devnet,
        &prober,
        devnet.model_id,
        dir.path(),
        &["--probe-print-wallets", "5"],
    );
    let secrets = |signers: &[u64]| -> Vec<String> {
        let mut s = vec![SEED.to_string(), key_hex(&prober)[2..].to_string()];
        for e in signers {
            s.push(alloy::hex::encode(
                epoch_signer(&seed, devnet.chain_id, *e).to_bytes(),
            ));
        }
        s
    };

    // the function behind the flag
    let before = cfg.epoch_at(chain_time(&reader).await).unwrap();
    let lines = verifier::probe::epoch_wallets(
        &args.rpc,
        &args.parsed_probe_seed().unwrap(),
        &args.probe_model,
        args.probe_tasks_per_epoch,
        args.probe_print_wallets.unwrap(),
    )
    .await
    .expect("the wallets");
    let after = cfg.epoch_at(chain_time(&reader).await).unwrap();
    assert_eq!(lines.len(), 5);
    let first = lines[0].epoch;
    assert!(
        (before..=after).contains(&first),
        "starts at the running epoch"
    );
    let epochs: Vec<u64> = lines.iter().map(|l| l.epoch).collect();
    assert_eq!(epochs, (first..first + 5).collect::<Vec<_>>());
    let hidden = secrets(&epochs);
    for l in &lines {
        assert_eq!(
            l.wallet,
            epoch_signer(&seed, devnet.chain_id, l.epoch).address()
        );
        assert_eq!((l.start, l.end), cfg.bounds(l.epoch).unwrap());
        assert_eq!(l.needs, Some(needs));
        let text = l.to_string();
        assert_eq!(
            text,
            format!(
                "epoch {} wallet {} from {} to {} needs {} DN",
                l.epoch,
                l.wallet,
                l.start,
                l.end,
                protocol::format_dn(needs)
            )
        );
        let json = l.to_json().to_string().to_lowercase();
        for s in &hidden {
            assert!(
                !text.to_lowercase().contains(s) && !json.contains(s),
                "a secret in {text}"
            );
        }
    }

    // the binary: no validator key, no database, exits 0, one line per epoch
    let db = tempfile::tempdir().unwrap();
    let db_file = db.path().join("v.sqlite");
    let model = devnet.model_id.to_string();
    let key = key_hex(&prober);
    let flags = |json: bool| {
        let mut v = vec![
            "--probe-key",
            key.as_str(),
            "--probe-seed",
            SEED,
            "--probe-model",
            model.as_str(),
            "--probe-inputs",
            dir.path().to_str().unwrap(),
            "--probe-tasks-per-epoch",
            "2",
            "--probe-print-wallets",
            "3",
        ];
        if json {
            v.push("--json");
        }
        v
    };
    assert_eq!(TASKS_PER_EPOCH, 2);
    let (ok, stdout, stderr) = common::verifier(&devnet, None, &db_file, &flags(false)).await;
    assert!(
        ok,
        "--probe-print-wallets runs without a validator key:\n{stderr}"
    );
    assert!(!db_file.exists(), "no database is opened");
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), 3, "{stdout}");
    let mut seen = Vec::new();
    for line in &printed {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 11, "{line}");
        assert_eq!(
            (words[0], words[2], words[4], words[6], words[8], words[10]),
            ("epoch", "wallet", "from", "to", "needs", "DN"),
            "{line}"
        );
        assert_eq!(words[9], protocol::format_dn(needs), "{line}");
        let e: u64 = words[1].parse().unwrap();
        let w: Address = words[3].parse().unwrap();
        assert_eq!(w, epoch_signer(&seed, devnet.chain_id, e).address());
        let (start, end) = cfg.bounds(e).unwrap();
        assert_eq!(
            (words[5], words[7]),
            (&*start.to_string(), &*end.to_string())
        );
        seen.push(e);
    }
    assert_eq!(seen, (seen[0]..seen[0] + 3).collect::<Vec<_>>());
    assert!(seen[0] >= first);
    let (ok, json_out, json_err) = common::verifier(&devnet, None, &db_file, &flags(true)).await;
    assert!(ok, "{json_err}");
    let v: serde_json::Value = serde_json::from_str(json_out.trim()).expect("one JSON array");
    let arr = v.as_array().expect("an array");
    assert_eq!(arr.len(), 3);
    for item in arr {
        let e = item["epoch"].as_u64().unwrap();
        let w: Address = item["wallet"].as_str().unwrap().parse().unwrap();
        assert_eq!(w, epoch_signer(&seed, devnet.chain_id, e).address());
        assert_eq!(
            (
                item["start"].as_u64().unwrap(),
                item["end"].as_u64().unwrap()
            ),
            cfg.bounds(e).unwrap()
        );
        assert_eq!(item["needs"].as_str().unwrap(), protocol::format_dn(needs));
    }
    let all = format!("{stdout}{stderr}{json_out}{json_err}").to_lowercase();
    let mut epochs_printed = seen.clone();
    epochs_printed.extend(arr.iter().map(|i| i["epoch"].as_u64().unwrap()));
    for s in secrets(&epochs_printed) {
        assert!(!all.contains(&s), "a secret in the output:\n{all}");
    }
}
