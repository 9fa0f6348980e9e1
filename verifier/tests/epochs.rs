//! The verifier binary against a real chain: anvil with the contracts deployed by the devnet
//! harness (20-second epochs), tasks submitted, committed and finalized by real transactions
//! from the workers' keys. Covers: two independent verifiers computing byte-identical reports
//! and co-signing one post; a single validator posting, refreshing trust and a worker claiming
//! its reward with the indexer-computed proof (once); bad settings failing in one line.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use devnet::{Devnet, DevnetConfig};
use protocol::bindings::{DNToken, IModelRegistry, ISettlement, ITaskManager};
use serde_json::Value;

mod common;
use common::{label_output, line_of, verifier};
use std::collections::BTreeMap;
use std::path::Path;

const EPOCH_LENGTH: u64 = 20;
/// An epoch's facts run until its assignments' deadlines: keep them short.
const RESPONSE_WINDOW: u64 = 5;

async fn start_devnet(validators: usize) -> Devnet {
    start_devnet_with_veto(validators, 0).await
}

async fn start_devnet_with_veto(validators: usize, veto_window: u64) -> Devnet {
    // forge's deploy script reads the epoch length from the environment; every test of this
    // binary uses the same value.
    std::env::set_var("DN_EPOCH_LENGTH", EPOCH_LENGTH.to_string());
    Devnet::start(DevnetConfig {
        workers: 2,
        validators,
        challenge_window: 2,
        response_window: RESPONSE_WINDOW,
        veto_window,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet")
}

/// Submits `n` digit tasks, commits each from its assigned worker (the true label), finalizes
/// them all; returns the epoch they were finalized in.
async fn run_tasks(devnet: &Devnet, n: usize) -> u64 {
    let samples = devnet::digits::heldout().unwrap();
    let inputs: Vec<Vec<u8>> = samples[..n]
        .iter()
        .map(|s| devnet::digits::encode_input(&s.pixels).unwrap())
        .collect();
    let labels: Vec<i64> = samples[..n].iter().map(|s| s.label).collect();
    let ids = devnet
        .submit_inputs(devnet.model_id, &inputs, n)
        .await
        .unwrap();
    assert_eq!(ids.len(), n);
    // no executor runs here: the test plays the workers, so it draws them itself
    devnet.assign(&ids).await.unwrap();
    let reader = devnet.provider(&devnet.deployer);
    let tm = ITaskManager::new(devnet.deployment.task_manager, &reader);
    let mut by_worker: BTreeMap<Address, Vec<(U256, i64)>> = BTreeMap::new();
    for (id, label) in ids.iter().zip(&labels) {
        let task = tm.getTask(*id).call().await.unwrap();
        by_worker
            .entry(task.worker)
            .or_default()
            .push((*id, *label));
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
        .finalizeBatch(ids.clone())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "finalizeBatch reverted");
    ISettlement::new(devnet.deployment.settlement, &reader)
        .currentEpoch()
        .call()
        .await
        .unwrap()
}

/// The rewards and trust trees of `epoch` computed by the indexer code over a verifier's DB.
async fn outcome(devnet: &Devnet, db: &Path, epoch: u64) -> chainstore::epochs::EpochOutcome {
    let db = chainstore::db::Db::open(db.to_str().unwrap())
        .await
        .unwrap();
    let provider = devnet.provider(&devnet.deployer);
    let cfg = chainstore::epochs::EpochConfig::load(&provider, &devnet.deployment)
        .await
        .unwrap();
    chainstore::epochs::compute_epoch(&db, &cfg, epoch)
        .await
        .unwrap()
}

/// The on-chain record of `epoch` equals the printed report.
async fn assert_record_matches(devnet: &Devnet, epoch: u64, line: &Value) {
    let p = devnet.provider(&devnet.deployer);
    let rec = ISettlement::new(devnet.deployment.settlement, &p)
        .epochRecord(epoch)
        .call()
        .await
        .unwrap();
    assert_ne!(rec.postedAt, 0, "epoch {epoch} not reported on-chain");
    let r = &line["report"];
    assert_eq!(
        rec.rewardsRoot.to_string(),
        r["rewardsRoot"].as_str().unwrap()
    );
    assert_eq!(rec.trustRoot.to_string(), r["trustRoot"].as_str().unwrap());
    assert_eq!(
        rec.modelStatusHash.to_string(),
        r["modelStatusHash"].as_str().unwrap()
    );
    assert_eq!(
        rec.totalRewards.to_string(),
        r["totalRewards"].as_str().unwrap()
    );
}

/// Every node of the trust tree has its weight set from its leaf, refreshed for `epoch`.
async fn assert_trust_refreshed(
    devnet: &Devnet,
    epoch: u64,
    out: &chainstore::epochs::EpochOutcome,
) {
    let p = devnet.provider(&devnet.deployer);
    let registry = IModelRegistry::new(devnet.deployment.model_registry, &p);
    let settlement = ISettlement::new(devnet.deployment.settlement, &p);
    for w in &devnet.workers {
        let (trust, _) = out
            .trust
            .proof(w.address())
            .unwrap_or_else(|| panic!("worker {} has no trust leaf", w.address()));
        assert_eq!(
            registry.trustWeight(w.address()).call().await.unwrap(),
            trust,
            "trust weight of {}",
            w.address()
        );
        let last = settlement
            .lastTrustRefresh(w.address())
            .call()
            .await
            .unwrap();
        assert!(
            last.refreshed && last.epoch == epoch,
            "{} refreshed at {:?}",
            w.address(),
            last.epoch
        );
    }
}

/// A worker claims its reward with the indexer-computed proof; a second claim reverts
/// AlreadyClaimed.
async fn assert_claim_once(devnet: &Devnet, epoch: u64, out: &chainstore::epochs::EpochOutcome) {
    let (worker, amount, proof) = devnet
        .workers
        .iter()
        .find_map(|w| {
            out.rewards
                .proof(w.address())
                .filter(|(a, _)| !a.is_zero())
                .map(|(a, p)| (w.clone(), a, p))
        })
        .expect("a worker with finalized tasks earns a reward");
    let p = devnet.provider(&worker);
    let token = DNToken::new(devnet.deployment.token, &p);
    let before = token.balanceOf(worker.address()).call().await.unwrap();
    let settlement = ISettlement::new(devnet.deployment.settlement, &p);
    let receipt = settlement
        .claim(epoch, worker.address(), amount, proof.clone())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "claim reverted");
    eprintln!("claim gas used: {}", receipt.gas_used);
    let after = token.balanceOf(worker.address()).call().await.unwrap();
    assert_eq!(after - before, amount);
    let again = settlement
        .claim(epoch, worker.address(), amount, proof)
        .send()
        .await
        .expect_err("a second claim must revert");
    let decoded = again.as_decoded_interface_error::<ISettlement::ISettlementErrors>();
    assert!(
        matches!(
            decoded,
            Some(ISettlement::ISettlementErrors::AlreadyClaimed(_))
        ),
        "expected AlreadyClaimed, got {again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_independent_verifiers_sign_byte_identical_reports_and_cosign_one_post() {
    let devnet = start_devnet(2).await;
    let epoch = run_tasks(&devnet, 6).await;
    devnet
        .advance_time(EPOCH_LENGTH + RESPONSE_WINDOW)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let sigs = dir.path().join("signatures");
    let (db_a, db_b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    let stop = epoch.to_string();
    let args = [
        "--no-post",
        "--signatures-dir",
        sigs.to_str().unwrap(),
        "--stop-after-epoch",
        &stop,
    ];
    let (va, vb) = (&devnet.validators[0], &devnet.validators[1]);
    let ((ok_a, out_a, err_a), (ok_b, out_b, err_b)) = tokio::join!(
        verifier(&devnet, Some(va), &db_a, &args),
        verifier(&devnet, Some(vb), &db_b, &args)
    );
    assert!(ok_a, "verifier A failed:\n{err_a}");
    assert!(ok_b, "verifier B failed:\n{err_b}");
    for e in 0..=epoch {
        let (a, b) = (line_of(&out_a, e), line_of(&out_b, e));
        assert_eq!(
            serde_json::to_string(&a["report"]).unwrap(),
            serde_json::to_string(&b["report"]).unwrap(),
            "epoch {e}: the two verifiers computed different reports"
        );
        assert_eq!(a["digest"], b["digest"], "epoch {e}: different digests");
        assert_ne!(a["signature"], b["signature"]);
        assert!(a["postedTx"].is_null() && b["postedTx"].is_null());
        for v in [va, vb] {
            let file = sigs.join(verifier::cosign::file_name(e, v.address()));
            let s: verifier::cosign::SignedReport =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            assert!(s.verify(), "{} does not verify", file.display());
            assert_eq!(serde_json::to_value(&s.report).unwrap(), a["report"]);
        }
    }
    // Each prints its facts, the state carried in and the report they give: the same for both,
    // and enough to recompute the signed report.
    let print = ["--print-facts", &stop];
    let ((ok_a, dump_a, err_a), (ok_b, dump_b, err_b)) = tokio::join!(
        verifier(&devnet, Some(va), &db_a, &print),
        verifier(&devnet, Some(vb), &db_b, &print)
    );
    assert!(ok_a && ok_b, "--print-facts failed:\n{err_a}\n{err_b}");
    let (dump_a, dump_b): (Value, Value) = (
        serde_json::from_str(&dump_a).unwrap(),
        serde_json::from_str(&dump_b).unwrap(),
    );
    assert_eq!(dump_a, dump_b, "the two databases hold different facts");
    assert_eq!(dump_a["report"], line_of(&out_a, epoch)["report"]);
    assert_eq!(
        dump_a["formula_version"],
        protocol::epoch::FORMULA_VERSION,
        "{dump_a}"
    );
    let facts: protocol::epoch::EpochFacts =
        serde_json::from_value(dump_a["facts"].clone()).unwrap();
    let carried: protocol::epoch::Carried =
        serde_json::from_value(dump_a["carried"].clone()).unwrap();
    assert_eq!(facts.epoch, epoch);
    assert!(facts.tasks_finalized > 0, "{dump_a}");
    let again = protocol::epoch::compute(&facts, &carried).unwrap();
    assert_eq!(
        serde_json::to_value(verifier::cosign::ReportJson::from(&again.report)).unwrap(),
        line_of(&out_a, epoch)["report"]
    );
    // An epoch the database has not indexed yet: one line naming the flag.
    let future = (epoch + 50).to_string();
    let (ok, _, err) = verifier(&devnet, Some(va), &db_a, &["--print-facts", &future]).await;
    assert!(!ok, "--print-facts of an unindexed epoch succeeded");
    assert!(
        err.contains(&format!("--print-facts {future}")) && err.contains("not ready"),
        "{err}"
    );

    let report = line_of(&out_a, epoch)["report"].clone();
    assert_ne!(
        report["trustRoot"],
        Value::from(alloy::primitives::B256::ZERO.to_string())
    );
    let p = devnet.provider(&devnet.deployer);
    let settlement = ISettlement::new(devnet.deployment.settlement, &p);
    assert_eq!(
        settlement.epochRecord(epoch).call().await.unwrap().postedAt,
        0,
        "--no-post posted"
    );

    // Alone, A holds half the validator stake (< 2/3): with B's signature from the shared
    // directory it posts. Its second run resumes from its database (same signature re-used).
    let (ok, out, err) = verifier(&devnet, Some(va), &db_a, &args[1..]).await;
    assert!(ok, "posting verifier failed:\n{err}");
    let posted = line_of(&out, epoch);
    assert_eq!(posted["signature"], line_of(&out_a, epoch)["signature"]);
    assert!(posted["postedTx"].is_string(), "{posted}");
    let mut both = vec![va.address(), vb.address()];
    both.sort();
    let signers: Vec<Address> = serde_json::from_value(posted["signers"].clone()).unwrap();
    assert_eq!(signers, both, "signers ascending, both counted");
    assert_record_matches(&devnet, epoch, &posted).await;
    let out = outcome(&devnet, &db_b, epoch).await;
    assert_eq!(
        out.report.trustRoot.to_string(),
        report["trustRoot"].as_str().unwrap()
    );
    assert_trust_refreshed(&devnet, epoch, &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_validator_posts_the_report_refreshes_trust_and_a_worker_claims_once() {
    let devnet = start_devnet(1).await;
    let epoch = run_tasks(&devnet, 6).await;
    devnet
        .advance_time(EPOCH_LENGTH + RESPONSE_WINDOW)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.sqlite");
    let stop = epoch.to_string();
    let (ok, out, err) = verifier(
        &devnet,
        Some(&devnet.validators[0]),
        &db,
        &["--stop-after-epoch", &stop],
    )
    .await;
    assert!(ok, "verifier failed:\n{err}");
    let line = line_of(&out, epoch);
    eprintln!(
        "postReport gas used with 1 signer: {}",
        line["postGasUsed"]
            .as_u64()
            .expect("posted by this verifier")
    );
    assert!(err.contains("epoch report posted"), "{err}");
    assert!(err.contains("trust weights refreshed"), "{err}");
    assert_record_matches(&devnet, epoch, &line).await;
    let out = outcome(&devnet, &db, epoch).await;
    assert_trust_refreshed(&devnet, epoch, &out).await;
    assert_claim_once(&devnet, epoch, &out).await;

    // A restart finds the epoch posted and its trust refreshed: nothing is sent twice.
    let (ok, out2, err2) = verifier(
        &devnet,
        Some(&devnet.validators[0]),
        &db,
        &["--stop-after-epoch", &stop],
    )
    .await;
    assert!(ok, "restarted verifier failed:\n{err2}");
    assert!(line_of(&out2, epoch)["postedTx"].is_null(), "{out2}");
    assert!(err2.contains("already reported on-chain"), "{err2}");
    assert!(err2.contains("refreshed=0"), "{err2}");
}

/// The Settlement error of `account`'s claim of `amount` with an empty proof (the call must fail).
async fn claim_refusal<P: alloy::providers::Provider>(
    settlement: &ISettlement::ISettlementInstance<P>,
    epoch: u64,
    account: Address,
    amount: U256,
) -> Option<ISettlement::ISettlementErrors> {
    let e = settlement
        .claim(epoch, account, amount, Vec::new())
        .call()
        .await
        .expect_err("the claim must be refused");
    e.as_decoded_interface_error::<ISettlement::ISettlementErrors>()
}

/// Runs the three validators' verifiers (one signatures directory) through `last`, moving chain
/// time past each posted report's veto window once a report of epoch `first..=last` other than
/// `forged` is on-chain, so each can finish its epoch.
async fn settle_with_three(
    devnet: &Devnet,
    dbs: &[std::path::PathBuf],
    sigs_dir: &Path,
    first: u64,
    last: u64,
    forged: B256,
    veto_window: u64,
) -> [(bool, String, String); 3] {
    let stop = last.to_string();
    let args = [
        "--signatures-dir",
        sigs_dir.to_str().unwrap(),
        "--stop-after-epoch",
        &stop,
    ];
    let p = devnet.provider(&devnet.deployer);
    let settlement = ISettlement::new(devnet.deployment.settlement, &p);
    let watcher = async {
        for k in first..=last {
            let started = std::time::Instant::now();
            loop {
                let rec = settlement.epochRecord(k).call().await.unwrap();
                if rec.postedAt != 0 && rec.rewardsRoot != forged {
                    devnet.advance_time(veto_window + 1).await.unwrap();
                    break;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(100),
                    "the computed report of epoch {k} was not posted"
                );
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
    };
    let v = &devnet.validators;
    let ((a, b, c), ()) = tokio::join!(
        async {
            tokio::join!(
                verifier(devnet, Some(&v[0]), &dbs[0], &args),
                verifier(devnet, Some(&v[1]), &dbs[1], &args),
                verifier(devnet, Some(&v[2]), &dbs[2], &args)
            )
        },
        watcher
    );
    [a, b, c]
}

/// Finding M-3, the veto window, live: two of three validator keys (2/3 of the stake, bought or
/// stolen) sign a report paying the whole epoch budget to an attacker and post it. The three
/// verifiers, sharing a signatures directory, find roots they did not compute inside the veto
/// window and veto it (one third discards it, burning what it minted), then sign and post the
/// report they computed; the attacker never gets paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_report_of_two_thirds_is_vetoed_and_replaced_by_the_computed_one() {
    const VETO_WINDOW: u64 = 600;
    let devnet = start_devnet_with_veto(3, VETO_WINDOW).await;
    let epoch = run_tasks(&devnet, 4).await;
    devnet
        .advance_time(EPOCH_LENGTH + RESPONSE_WINDOW)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sigs_dir = dir.path().join("signatures");
    let dbs: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("v{i}.sqlite")))
        .collect();
    if epoch > 0 {
        // the epochs before settle honestly first (each waits for its own veto window)
        for (ok, _, err) in settle_with_three(
            &devnet,
            &dbs,
            &sigs_dir,
            0,
            epoch - 1,
            B256::ZERO,
            VETO_WINDOW,
        )
        .await
        {
            assert!(ok, "verifier failed:\n{err}");
        }
    }
    let p = devnet.provider(&devnet.deployer);
    let settlement = ISettlement::new(devnet.deployment.settlement, &p);
    let token = DNToken::new(devnet.deployment.token, &p);
    let attacker = Address::repeat_byte(0xa7);
    let budget = settlement.epochBudget(epoch).call().await.unwrap();
    let leaf = protocol::powr::account_leaf(attacker, budget);
    let forged = ISettlement::EpochReport {
        epoch,
        rewardsRoot: leaf,
        trustRoot: B256::ZERO,
        totalRewards: budget,
        modelStatusHash: B256::ZERO,
    };
    let digest = settlement
        .reportDigest(forged.clone())
        .call()
        .await
        .unwrap();
    let mut colluders: Vec<&PrivateKeySigner> = devnet.validators.iter().take(2).collect();
    colluders.sort_by_key(|k| k.address());
    let sigs: Vec<Bytes> = colluders
        .iter()
        .map(|k| {
            use alloy::signers::SignerSync;
            Bytes::from(k.sign_hash_sync(&digest).unwrap().as_bytes().to_vec())
        })
        .collect();
    let supply_before = token.totalSupply().call().await.unwrap();
    let r = settlement
        .postReport(forged, sigs)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "the forged report is posted (2/3 signed it)");
    let refused = claim_refusal(&settlement, epoch, attacker, budget).await;
    assert!(
        matches!(
            refused,
            Some(ISettlement::ISettlementErrors::ReportInVetoWindow(_))
        ),
        "no claim inside the veto window: {refused:?}"
    );

    let [a, b, c] =
        settle_with_three(&devnet, &dbs, &sigs_dir, epoch, epoch, leaf, VETO_WINDOW).await;
    for (ok, _, err) in [&a, &b, &c] {
        assert!(ok, "verifier failed:\n{err}");
    }
    let logs = format!("{}{}{}", a.2, b.2, c.2);
    assert!(logs.contains("vetoed an epoch report"), "{logs}");
    let line = line_of(&a.1, epoch);
    assert_record_matches(&devnet, epoch, &line).await;
    let rec = settlement.epochRecord(epoch).call().await.unwrap();
    assert_eq!(
        token.totalSupply().call().await.unwrap(),
        supply_before + U256::from(rec.totalRewards),
        "the forged report's mint was burned"
    );
    let refused = claim_refusal(&settlement, epoch, attacker, budget).await;
    assert!(
        matches!(
            refused,
            Some(ISettlement::ISettlementErrors::InvalidRewardProof(_))
        ),
        "the attacker has no leaf in the computed report: {refused:?}"
    );
    let out = outcome(&devnet, &dbs[2], epoch).await;
    assert_claim_once(&devnet, epoch, &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_fail_in_one_line_naming_the_setting() {
    let devnet = start_devnet(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.sqlite");

    let (ok, _, err) = verifier(&devnet, None, &db, &[]).await;
    assert!(!ok && err.contains("--private-key"), "no key: {err}");

    for (who, key) in [
        ("a worker", devnet.workers[0].clone()),
        ("the user", devnet.user.clone()),
        ("a fresh key", PrivateKeySigner::random()),
    ] {
        let (ok, _, err) = verifier(&devnet, Some(&key), &db, &[]).await;
        assert!(!ok, "{who} was accepted as a validator");
        assert!(
            err.contains("is not a validator") && err.contains(&key.address().to_string()),
            "{who}: {err}"
        );
    }

    let (ok, _, err) = verifier(
        &devnet,
        Some(&devnet.validators[0]),
        &db,
        &["--deployment", "/nonexistent/deployment.json"],
    )
    .await;
    assert!(!ok && err.contains("/nonexistent/deployment.json"), "{err}");

    let (ok, _, err) = verifier(
        &devnet,
        Some(&devnet.validators[0]),
        &db,
        &["--signatures-dir", "/proc/no-such-dir"],
    )
    .await;
    assert!(!ok && err.contains("--signatures-dir"), "{err}");

    let (ok, _, err) = verifier(
        &devnet,
        Some(&devnet.validators[0]),
        &db,
        &[
            "--rpc-url",
            "http://127.0.0.1:9",
            "--rpc-retries",
            "0",
            "--rpc-timeout",
            "1",
        ],
    )
    .await;
    assert!(!ok && err.contains("127.0.0.1:9"), "{err}");
    assert!(
        err.lines().filter(|l| l.starts_with("error:")).count() == 1,
        "one error line: {err}"
    );
}
