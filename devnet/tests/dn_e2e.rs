//! The `dn` command line end to end: a real anvil with the forge-deployed contracts, a blob store,
//! an executor and an indexer, and the built `dn` binary run with `--json` as users and
//! developers would. The developer publishes the digits bundle through the blob store (the
//! executor fetches it from there), sets its price (a stranger is refused), a user runs digit
//! images through it (outputs published by reference and checked against the committed hash),
//! reads, rates and challenges tasks, stakes, unstakes and withdraws; the worker claims its epoch
//! reward with the indexer's proof once the epoch's report is posted. Bad input (a corrupted
//! bundle, an unknown model, a second rating) fails with one clear line and a non-zero exit.

use alloy::primitives::{keccak256, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use anyhow::{Context, Result};
use devnet::{anvil_signer, key_hex, Devnet, DevnetConfig};
use protocol::bindings::{
    DNToken, IAuditManager, IModelRegistry, ISettlement, IStaking, ITaskManager, ROLE_WORKER,
};
use protocol::DN;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// One run of `dn`: exit code, the JSON object it printed, its stderr.
struct Out {
    code: i32,
    json: Value,
    stderr: String,
}

/// Runs `dn ARGS --json` against the devnet with `key`'s wallet.
async fn dn(net: &Devnet, key: &PrivateKeySigner, args: &[&str]) -> Out {
    let mut cmd = tokio::process::Command::new(bin("dn"));
    cmd.args(args)
        .arg("--json")
        .args(chain_args(net))
        .env("DN_PRIVATE_KEY", key_hex(key))
        .env("NO_COLOR", "1");
    for var in [
        "ETH_RPC_URL",
        "DN_DEPLOYMENT",
        "ETH_KEYSTORE",
        "ETH_PASSWORD_FILE",
        "DN_BLOB_STORE",
        "DN_INDEXER_URL",
    ] {
        cmd.env_remove(var);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("dn {args:?} did not finish within 180 s"))
        .unwrap_or_else(|e| panic!("starting dn: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "dn {args:?}: --json prints one line; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let json: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("dn {args:?}: stdout is not JSON ({e}): {stdout}"));
    Out {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

/// Runs `dn ARGS` (text for people) with `key`'s wallet: exit code, stdout, stderr.
async fn dn_text(net: &Devnet, key: &PrivateKeySigner, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(bin("dn"))
        .args(args)
        .args(chain_args(net))
        .env("DN_PRIVATE_KEY", key_hex(key))
        .env_remove("ETH_RPC_URL")
        .env_remove("DN_DEPLOYMENT")
        .output()
        .await
        .unwrap_or_else(|e| panic!("starting dn: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("$ dn {}\n{stdout}{stderr}", args.join(" "));
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The JSON of a run that must succeed.
fn ok(o: Out, net: &Devnet) -> Value {
    assert_eq!(
        o.code,
        0,
        "dn failed: {}\nstderr:\n{}\n{}",
        o.json,
        o.stderr,
        logs_of(net, "executor")
    );
    o.json
}

/// The error line of a run that must fail: non-zero exit, `{"error"}` on stdout and one
/// `error: ...` line on stderr.
fn refused(o: Out) -> String {
    assert_ne!(o.code, 0, "dn should have failed: {}", o.json);
    let msg = o.json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {}", o.json))
        .to_string();
    let last = o.stderr.trim_end().lines().last().unwrap_or_default();
    assert_eq!(last, format!("error: {msg}"), "stderr: {}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    msg
}

fn dn_of(v: &Value) -> U256 {
    v["wei"].as_str().unwrap().parse().unwrap()
}

fn digits_bundle() -> PathBuf {
    devnet::workspace_root().join("models/digits")
}

fn input_file(dir: &Path, i: usize) -> PathBuf {
    let samples = devnet::digits::heldout().unwrap();
    let p = dir.join(format!("digit{i}.safetensors"));
    std::fs::write(
        &p,
        devnet::digits::encode_input(&samples[i].pixels).unwrap(),
    )
    .unwrap();
    p
}

async fn wait_json(url: &str, what: &str, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(url).await {
            if r.status().is_success() {
                if let Ok(v) = r.json::<Value>().await {
                    return v;
                }
            }
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what} at {url}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_status(net: &Devnet, id: U256, want: u8, timeout: Duration) -> Result<()> {
    let p = net.provider(&net.user);
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    let start = Instant::now();
    loop {
        let s = tm.getTask(id).call().await?.status;
        if s == want {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "task {id} is in status {s}, not {want}, after {timeout:?}\n{}",
            logs_of(net, "executor")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dn_publishes_runs_rates_challenges_stakes_and_claims() -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        validators: 1,
        response_window: 120,
        challenge_window: 30,
        register_digits: false,
        ..Default::default()
    })
    .await?;
    let d = net.deployment.clone();
    let admin = net.provider(&net.deployer);
    let developer = net.developer.clone();
    let worker = net.workers[0].clone();
    // a user with DN but no allowance anywhere: `dn` approves what it needs
    let alice = anvil_signer(5);
    let r = DNToken::new(d.token, &admin)
        .transfer(alice.address(), U256::from(1_000u64) * U256::from(DN))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(r.status());

    let (store, store_url) = devnet::spawn_blobstore(
        &bin("blobstore"),
        &net.work_dir.join("blobs"),
        &net.work_dir.join("blobstore.log"),
    )?;
    let mut procs = Procs(vec![store]);
    let idx_port = devnet::free_port()?;
    let idx_url = format!("http://127.0.0.1:{idx_port}");
    let idx_dir = net.work_dir.join("indexer");
    std::fs::create_dir_all(&idx_dir)?;
    let mut idx_args = chain_args(&net);
    idx_args.extend(
        [
            "--db",
            &idx_dir.join("db.sqlite").display().to_string(),
            "--listen",
            &format!("127.0.0.1:{idx_port}"),
            "--confirmations",
            "1",
            "--poll-interval-ms",
            "200",
        ]
        .map(String::from),
    );
    procs.0.push(spawn(
        "indexer",
        &idx_args,
        &net.deployer,
        &[],
        &idx_dir.join("indexer.log"),
    ));

    // ---- bad input first: a corrupted part is named, nothing is uploaded or registered
    let bad = net.work_dir.join("bad-bundle");
    std::fs::create_dir_all(&bad)?;
    std::fs::copy(
        digits_bundle().join("manifest.json"),
        bad.join("manifest.json"),
    )?;
    let mut onnx = std::fs::read(digits_bundle().join("digits.onnx"))?;
    let mid = onnx.len() / 2;
    onnx[mid] ^= 0xff;
    std::fs::write(bad.join("digits.onnx"), onnx)?;
    let e = refused(
        dn(
            &net,
            &developer,
            &[
                "model",
                "publish",
                bad.to_str().unwrap(),
                "--blob-store",
                &store_url,
                "--price",
                "0.5",
            ],
        )
        .await,
    );
    assert!(
        e.contains("part `model`") && e.contains("digits.onnx") && e.contains("sha256"),
        "{e}"
    );

    // ---- publish the digits bundle through the blob store
    let published = ok(
        dn(
            &net,
            &developer,
            &[
                "model",
                "publish",
                digits_bundle().to_str().unwrap(),
                "--blob-store",
                &store_url,
                "--price",
                "0.5",
            ],
        )
        .await,
        &net,
    );
    let model_id = published["model_id"].as_u64().context("model_id")? as u32;
    let uri = published["uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with(&format!("{store_url}/blobs/")), "{uri}");
    assert_eq!(published["kind"], "tensor");
    assert_eq!(published["price"]["dn"], "0.5");
    let registry = IModelRegistry::new(d.model_registry, &admin);
    let m = registry.getModel(model_id).call().await?;
    assert_eq!(m.developer, developer.address());
    assert_eq!(m.uri, uri);
    assert_eq!(U256::from(m.pricePerCall), U256::from(DN / 2));
    assert_eq!(m.computeUnits, 1, "the manifest's compute units");
    assert_eq!(m.rule, 2, "the manifest's verify.rule (argmax)");
    // the registered hash is the stored manifest's, whose parts are named by their sha256
    let manifest = reqwest::get(&uri).await?.bytes().await?;
    assert_eq!(
        B256::from_slice(&<sha2::Sha256 as sha2::Digest>::digest(&manifest)),
        m.sha256Hash
    );
    let parsed = inference::Manifest::parse(&manifest)?;
    let part = &parsed.parts["model"];
    assert_eq!(part.path, part.sha256);
    let bytes = reqwest::get(format!("{store_url}/blobs/{}", part.path))
        .await?
        .bytes()
        .await?;
    assert_eq!(bytes.len() as u64, part.bytes);

    // ---- the worker opts in and an executor serves the model from the store, publishing its
    // outputs there too (anything over 16 bytes goes by reference)
    let r = IModelRegistry::new(d.model_registry, net.provider(&worker))
        .optIn(model_id)
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(r.status(), "optIn");
    procs.0.push(executor(
        &net,
        0,
        &[
            "--blob-store".into(),
            store_url.clone(),
            "--inline-output-bytes".into(),
            "16".into(),
        ],
    ));

    // ---- unknown model: one clear line
    let e = refused(dn(&net, &alice, &["run", "999", "hello"]).await);
    assert!(e.contains("unknown model 999"), "{e}");

    // ---- run a digit
    let input = input_file(&net.work_dir, 0);
    let at = format!("@{}", input.display());
    let run = ok(
        dn(
            &net,
            &alice,
            &["run", &model_id.to_string(), &at, "--timeout", "150"],
        )
        .await,
        &net,
    );
    assert_eq!(run["verified"], true, "{run}");
    assert_eq!(run["status"], "committed");
    assert_eq!(run["code"], 0);
    assert_eq!(run["worker"], worker.address().to_checksum(None));
    assert_eq!(run["fee"]["dn"], "0.5");
    assert_eq!(run["output_by_reference"], true, "{run}");
    assert!(
        run["transactions"]["approve"].is_string(),
        "alice had no allowance: {run}"
    );
    let task1 = U256::from(run["task_id"].as_u64().context("task_id")?);
    let output = hex::decode(run["output"].as_str().unwrap().trim_start_matches("0x"))?;
    assert_eq!(run["output_encoding"], "hex");
    let label = devnet::digits::decode_label(&output).context("the output holds a label")?;
    assert!((0..=9).contains(&label), "{label}");
    // the chain's commitment is what dn checked
    let commits = events::<ITaskManager::ResultsCommitted>(&net, d.task_manager).await?;
    let c = commits
        .iter()
        .find(|c| c.taskIds.contains(&task1))
        .context("ResultsCommitted of task 1")?;
    let i = c.taskIds.iter().position(|t| *t == task1).unwrap();
    assert_eq!(c.outputHashes[i], keccak256(&output));
    assert_eq!(
        run["output_hash"].as_str().unwrap(),
        c.outputHashes[i].to_string()
    );
    assert!(
        matches!(blobstore::BlobRef::decode(&c.outputs[i]), Some(Ok(_))),
        "the executor published the output by reference"
    );

    // for people: the output on stdout (binary as hex), progress on stderr
    let input = input_file(&net.work_dir, 2);
    let at = format!("@{}", input.display());
    let (code, text, err) = dn_text(&net, &alice, &["run", &model_id.to_string(), &at]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with("0x") && text.lines().count() == 1,
        "{text}"
    );
    assert!(err.contains("verified against the committed hash"), "{err}");

    // an input the model refuses: the worker's failure code, its message, a non-zero exit
    let o = dn(
        &net,
        &alice,
        &["run", &model_id.to_string(), "not a tensor"],
    )
    .await;
    let failed = o.json.clone();
    let e = refused(o);
    assert!(e.contains("failed: input_decode"), "{e}");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["code"], 1);
    assert_eq!(
        failed["verified"], true,
        "the failure message is what was committed"
    );

    // ---- task get / rate
    let t = ok(
        dn(&net, &alice, &["task", "get", &task1.to_string()]).await,
        &net,
    );
    assert_eq!(t["status"], "committed");
    assert_eq!(t["model_id"], model_id);
    assert_eq!(t["submitter"], alice.address().to_checksum(None));
    assert_eq!(t["worker"], worker.address().to_checksum(None));
    assert_eq!(t["fee"]["dn"], "0.5");
    assert_eq!(t["code_name"], "ok");
    assert_eq!(t["audit"]["state"], "none");
    assert_eq!(t["rated"], false);
    let rated = ok(
        dn(&net, &alice, &["task", "rate", &task1.to_string(), "90"]).await,
        &net,
    );
    assert_eq!(rated["score"], 90);
    let tm = ITaskManager::new(d.task_manager, &admin);
    assert!(tm.isRated(task1).call().await?);
    let ratings = events::<ITaskManager::TaskRated>(&net, d.task_manager).await?;
    assert!(ratings
        .iter()
        .any(|r| r.taskId == task1 && r.score == 90 && r.submitter == alice.address()));
    let e = refused(dn(&net, &alice, &["task", "rate", &task1.to_string(), "50"]).await);
    assert!(
        e.contains("TaskManager refused") && e.contains("AlreadyRated"),
        "{e}"
    );
    let e = refused(dn(&net, &alice, &["task", "get", "777"]).await);
    assert!(e.contains("unknown task 777"), "{e}");

    // ---- model list / price
    let list = ok(dn(&net, &alice, &["model", "list"]).await, &net);
    let row = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model_id"] == model_id)
        .cloned()
        .context("the model is listed")?;
    assert_eq!(
        row["kind"], "tensor",
        "read from the stored manifest: {row}"
    );
    assert_eq!(row["price"]["dn"], "0.5");
    assert_eq!(row["status"], "active");
    assert_eq!(row["workers"], 1);
    assert_eq!(row["developer"], developer.address().to_checksum(None));
    assert_eq!(row["uri"], uri);
    let priced = ok(
        dn(
            &net,
            &developer,
            &["model", "price", &model_id.to_string(), "0.75"],
        )
        .await,
        &net,
    );
    assert_eq!(priced["previous_price"]["dn"], "0.5");
    assert_eq!(
        U256::from(registry.getModel(model_id).call().await?.pricePerCall),
        U256::from(DN / 4 * 3)
    );
    let e = refused(
        dn(
            &net,
            &alice,
            &["model", "price", &model_id.to_string(), "0.01"],
        )
        .await,
    );
    assert!(
        e.contains("ModelRegistry refused") && e.contains("NotModelDeveloper"),
        "{e}"
    );
    assert_eq!(
        U256::from(registry.getModel(model_id).call().await?.pricePerCall),
        U256::from(DN / 4 * 3),
        "the refused change left the price alone"
    );
    let e = refused(
        dn(
            &net,
            &developer,
            &[
                "model",
                "price",
                &model_id.to_string(),
                "0.0000000000000000001",
            ],
        )
        .await,
    );
    assert!(e.contains("19 decimals"), "{e}");

    // the same for people: a table, a task's fields, a refusal on one line
    let (code, text, _) = dn_text(&net, &alice, &["model", "list"]).await;
    assert_eq!(code, 0);
    assert!(text.starts_with("  ID  KIND"), "{text}");
    assert!(text.contains("tensor") && text.contains("0.75"), "{text}");
    let (code, text, _) = dn_text(&net, &alice, &["task", "get", &task1.to_string()]).await;
    assert_eq!(code, 0);
    assert!(text.contains("status     committed"), "{text}");
    let (code, text, err) = dn_text(
        &net,
        &alice,
        &["model", "price", &model_id.to_string(), "1"],
    )
    .await;
    assert_ne!(code, 0);
    assert!(text.is_empty(), "{text}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // ---- stake / unstake / balance
    let staking = IStaking::new(d.staking, &admin);
    let s = ok(dn(&net, &alice, &["stake", "200"]).await, &net);
    assert_eq!(s["stake"]["dn"], "200");
    assert!(s["transactions"]["approve"].is_string());
    assert_eq!(
        staking.stakeOf(alice.address(), ROLE_WORKER).call().await?,
        U256::from(200u64) * U256::from(DN)
    );
    let u = ok(dn(&net, &alice, &["unstake", "50"]).await, &net);
    assert_eq!(u["stake"]["dn"], "150");
    assert_eq!(
        staking.stakeOf(alice.address(), ROLE_WORKER).call().await?,
        U256::from(150u64) * U256::from(DN)
    );
    let e = refused(dn(&net, &alice, &["unstake", "120"]).await);
    assert!(e.contains("under the 100 DN minimum"), "{e}");
    let e = refused(dn(&net, &alice, &["withdraw"]).await);
    assert!(e.contains("nothing to withdraw yet"), "{e}");
    let b = ok(dn(&net, &alice, &["balance"]).await, &net);
    assert_eq!(b["stake"]["worker"]["dn"], "150");
    assert_eq!(b["unbonding"]["dn"], "50");
    assert_eq!(
        dn_of(&b["dn"]),
        DNToken::new(d.token, &admin)
            .balanceOf(alice.address())
            .call()
            .await?
    );

    let (code, text, _) = dn_text(&net, &alice, &["balance"]).await;
    assert_eq!(code, 0);
    assert!(text.contains("worker stake     150"), "{text}");

    // ---- the epoch: task 1 finalizes inside it, then it ends, the indexer computes it, the
    // validator posts its report and the worker claims its reward with `dn rewards claim`
    net.advance_time(net.config.challenge_window + 1).await?;
    wait_status(&net, task1, 4, Duration::from_secs(60)).await?;
    let settlement = ISettlement::new(d.settlement, &admin);
    let epoch = settlement.currentEpoch().call().await?;
    let end: u64 = settlement.epochEnd(epoch).call().await?.to();
    let now = admin
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .context("latest block")?
        .header
        .timestamp;
    net.advance_time(end.saturating_sub(now) + net.config.response_window + 5)
        .await?;
    let e = wait_json(
        &format!("{idx_url}/epochs/{epoch}"),
        "the epoch computed",
        Duration::from_secs(90),
    )
    .await;
    let report = ISettlement::EpochReport {
        epoch,
        rewardsRoot: e["report"]["rewardsRoot"].as_str().unwrap().parse()?,
        trustRoot: e["report"]["trustRoot"].as_str().unwrap().parse()?,
        totalRewards: e["report"]["totalRewards"].as_str().unwrap().parse()?,
        modelStatusHash: e["report"]["modelStatusHash"].as_str().unwrap().parse()?,
    };
    let vp = net.provider(&net.validators[0]);
    let vs = ISettlement::new(d.settlement, &vp);
    let digest = vs.reportDigest(report.clone()).call().await?;
    let sig = net.validators[0].sign_hash_sync(&digest)?;
    let r = vs
        .postReport(report, vec![Bytes::from(sig.as_bytes().to_vec())])
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(r.status(), "postReport");
    let token = DNToken::new(d.token, &admin);
    let before = token.balanceOf(worker.address()).call().await?;
    let claim = ok(
        dn(
            &net,
            &worker,
            &["rewards", "claim", "--indexer-url", &idx_url],
        )
        .await,
        &net,
    );
    let claimed = claim["claimed"].as_array().unwrap();
    assert_eq!(claimed.len(), 1, "{claim}");
    assert_eq!(claimed[0]["epoch"], epoch);
    let amount = dn_of(&claimed[0]["amount"]);
    assert!(amount > U256::ZERO, "{claim}");
    assert!(settlement.isClaimed(epoch, worker.address()).call().await?);
    let after = token.balanceOf(worker.address()).call().await?;
    assert!(
        after >= before + amount,
        "the reward reached the worker (its executor may also withdraw payouts meanwhile)"
    );
    let again = ok(
        dn(
            &net,
            &worker,
            &["rewards", "claim", "--indexer-url", &idx_url],
        )
        .await,
        &net,
    );
    assert_eq!(again["claimed"].as_array().unwrap().len(), 0, "{again}");
    assert!(again["skipped"].to_string().contains("already claimed"));
    let e = refused(
        dn(
            &net,
            &worker,
            &[
                "rewards",
                "claim",
                "--indexer-url",
                &idx_url,
                "--epoch",
                &(epoch + 5).to_string(),
            ],
        )
        .await,
    );
    assert!(e.contains("not posted"), "{e}");

    // the model list with the indexer: measured latency of the model's tasks
    let list = ok(
        dn(&net, &alice, &["model", "list", "--indexer-url", &idx_url]).await,
        &net,
    );
    let row = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model_id"] == model_id)
        .cloned()
        .context("the model is listed")?;
    assert!(row["latency_secs"].as_f64().is_some(), "{row}");
    assert!(row.as_object().unwrap().contains_key("quality"), "{row}");

    // the unbonding period (1 hour on the devnet) has passed with the epoch
    let w = ok(dn(&net, &alice, &["withdraw"]).await, &net);
    assert_eq!(w["amount"]["dn"], "50");
    assert!(staking
        .unbondingsOf(alice.address())
        .call()
        .await?
        .is_empty());

    // ---- challenge a fresh result inside its challenge window
    let input = input_file(&net.work_dir, 1);
    let at = format!("@{}", input.display());
    let run = ok(
        dn(
            &net,
            &alice,
            &["run", &model_id.to_string(), &at, "--timeout", "150"],
        )
        .await,
        &net,
    );
    assert_eq!(run["fee"]["dn"], "0.75", "the new price: {run}");
    let task2 = U256::from(run["task_id"].as_u64().unwrap());
    let e = refused(dn(&net, &developer, &["task", "challenge", &task2.to_string()]).await);
    assert!(e.contains("only its submitter"), "{e}");
    let am = IAuditManager::new(d.audit_manager, &admin);
    let bond = U256::from(am.params().call().await?.challengeBond);
    let ch = ok(
        dn(&net, &alice, &["task", "challenge", &task2.to_string()]).await,
        &net,
    );
    assert_eq!(dn_of(&ch["bond"]), bond);
    assert_eq!(tm.getTask(task2).call().await?.status, 6, "held: disputed");
    let rec = am.auditRecord(task2).call().await?;
    assert_eq!(rec.state, 2, "the audit record is disputed");
    assert_eq!(rec.accuser, alice.address());
    let t = ok(
        dn(&net, &alice, &["task", "get", &task2.to_string()]).await,
        &net,
    );
    assert_eq!(t["status"], "disputed");
    assert_eq!(t["audit"]["state"], "disputed");
    let e = refused(dn(&net, &alice, &["task", "challenge", &task2.to_string()]).await);
    assert!(e.contains("already disputed"), "{e}");
    drop(procs);
    Ok(())
}
