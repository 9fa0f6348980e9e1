//! The indexer against a real chain: anvil with the contracts deployed by the devnet harness,
//! tasks submitted, committed and finalized by real transactions, the indexer run in-process
//! and read over HTTP. Covers backfill + follow, stop/restart resume without duplicates, and a
//! reorg (anvil snapshot/revert) rolled back and re-indexed.

mod live;

use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use clap::Parser;
use devnet::{Devnet, DevnetConfig};
use inference::tensor::{encode, Tensor};
use live::{db_spec, indexer_args, pg_database, submit_tasks, wait_for};
use protocol::bindings::ITaskManager;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn get(url: &str) -> Value {
    let res = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.json().await.unwrap()
}

fn digit_inputs(range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    let samples = devnet::digits::heldout().expect("models/digits/heldout.json");
    samples[range]
        .iter()
        .map(|s| devnet::digits::encode_input(&s.pixels).unwrap())
        .collect()
}

/// Submits inputs as one `submitTasks` transaction from the devnet user, draws their workers
/// (`Devnet::assign`: no executor runs here) and returns the task ids.
async fn submit(devnet: &Devnet, inputs: &[Vec<u8>]) -> Vec<U256> {
    let ids = submit_tasks(
        &devnet.provider(&devnet.user),
        devnet.deployment.task_manager,
        devnet.model_id,
        devnet.config.model_price_wei,
        inputs.iter().map(|b| b.clone().into()).collect(),
    )
    .await;
    devnet.assign(&ids).await.expect("assignTasks");
    ids
}

/// Chain logs of the indexed contracts up to `to` (what the events table must hold).
async fn chain_log_count(devnet: &Devnet, to: u64) -> usize {
    let d = &devnet.deployment;
    let p = devnet.provider(&devnet.user);
    let filter = Filter::new()
        .address(vec![
            d.task_manager,
            d.model_registry,
            d.staking,
            d.settlement,
            d.audit_manager,
            d.probe_registry,
        ])
        .from_block(d.start_block)
        .to_block(to);
    p.get_logs(&filter).await.unwrap().len()
}

async fn stored_event_count(db: &indexer::db::Db) -> (usize, u64) {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let cursor = db.cursor(31337).await.unwrap().expect("cursor").number;
    (n as usize, cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_devnet_and_resumes_after_restart() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let tm_user = ITaskManager::new(
        devnet.deployment.task_manager,
        devnet.provider(&devnet.user),
    );
    let ids = submit(&devnet, &digit_inputs(0..5)).await;
    assert_eq!(ids.len(), 5);

    let dir = tempfile::tempdir().unwrap();
    let db_path = db_spec(dir.path(), "indexer.sqlite");
    // Small ranges so the backfill takes several transactions.
    let running = indexer::start(indexer_args(&devnet, &db_path, 1, 7))
        .await
        .expect("indexer starts");
    let url = running.url();

    // The assigned worker commits a result for the first task and a failure code for the second.
    let label = encode(&[("label", Tensor::from_i64(vec![1], &[4]).unwrap())]).unwrap();
    for (id, code, output) in [
        (ids[0], 0u16, label.clone()),
        (ids[1], 1u16, b"not safetensors".to_vec()),
    ] {
        let worker: Address = tm_user.getTask(id).call().await.unwrap().worker;
        let signer = devnet
            .workers
            .iter()
            .find(|w| w.address() == worker)
            .expect("assigned worker is a devnet worker");
        let tm = ITaskManager::new(devnet.deployment.task_manager, devnet.provider(signer));
        let r = tm
            .commit(id, protocol::output_hash(&output), code, output.into())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "commit of task {id} reverted");
    }
    devnet
        .advance_time(devnet.config.challenge_window + 1)
        .await
        .unwrap();
    for id in &ids[..2] {
        let r = tm_user
            .finalize(*id)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "finalize of task {id} reverted");
    }

    let t0 = wait_for(&format!("{url}/tasks/{}", ids[0]), "task finalized", |v| {
        v["status"] == "finalized"
    })
    .await;
    let samples = devnet::digits::heldout().unwrap();
    let values: Vec<f64> = t0["input"]["decoded"]["input"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = samples[0].pixels.iter().map(|p| f64::from(*p)).collect();
    assert_eq!(
        values, expected,
        "input decoded from the TaskSubmitted calldata"
    );
    assert_eq!(t0["output"]["decoded"]["label"]["values"][0], 4);
    assert_eq!(t0["code"]["name"], "ok");
    let split: U256 = ["developer", "worker", "validator", "protocol", "refund"]
        .iter()
        .map(|k| {
            t0["fee_split"][k]
                .as_str()
                .unwrap()
                .parse::<U256>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        split.to_string(),
        t0["fee"].as_str().unwrap(),
        "fee split adds up to the fee: {t0}"
    );
    let kinds: Vec<&str> = t0["audit_trail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["submitted", "assigned", "committed", "finalized"]);

    let t1 = wait_for(
        &format!("{url}/tasks/{}", ids[1]),
        "failed task finalized",
        |v| v["status"] == "finalized",
    )
    .await;
    assert_eq!(t1["code"]["name"], "input_decode");
    assert!(t1["output"]["decode_error"].is_string());

    let page = get(&format!("{url}/tasks?limit=3")).await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 3);
    let rest = get(&format!(
        "{url}/tasks?limit=3&cursor={}",
        page["next_cursor"].as_str().unwrap()
    ))
    .await;
    assert_eq!(rest["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(&format!("{url}/tasks?status=assigned")).await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let model = get(&format!("{url}/models/{}", devnet.model_id)).await;
    assert_eq!(
        model["workers"].as_array().unwrap().len(),
        devnet.workers.len()
    );
    assert_eq!(model["tasks"]["total"], 5);
    let w = devnet.workers[0].address();
    let node = get(&format!("{url}/nodes/{w}")).await;
    assert_eq!(
        node["worker_stake"],
        (U256::from(devnet.config.worker_stake_dn) * U256::from(protocol::DN)).to_string()
    );
    let v = devnet.validators[0].address();
    let node = get(&format!("{url}/nodes/{v}")).await;
    assert_eq!(
        node["validator_stake"],
        (U256::from(devnet.config.validator_stake_dn) * U256::from(protocol::DN)).to_string()
    );
    let health = get(&format!("{url}/health")).await;
    assert_eq!(health["chain_id"], 31337);
    assert!(health["blocks_behind"].as_u64().unwrap() <= 4, "{health}");
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("indexer_events_total{event=\"TaskSubmitted\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("indexer_head_block"), "{metrics}");

    // Every chain log up to the cursor is stored exactly once.
    let db = running.db.clone();
    let (stored, cursor) = stored_event_count(&db).await;
    assert_eq!(stored, chain_log_count(&devnet, cursor).await);
    running.stop().await.unwrap();
    assert!(
        reqwest::get(format!("{url}/health")).await.is_err(),
        "server stopped"
    );

    // While it is down, more tasks arrive; a restart on the same file resumes at the cursor.
    let more = submit(&devnet, &digit_inputs(5..8)).await;
    let cursor_before = db.cursor(31337).await.unwrap().unwrap().number;
    drop(db);
    let running = indexer::start(indexer_args(&devnet, &db_path, 1, 2000))
        .await
        .expect("indexer restarts");
    let url = running.url();
    let last = more.last().unwrap();
    wait_for(
        &format!("{url}/tasks/{last}"),
        "task submitted while down",
        |v| v["status"] == "assigned",
    )
    .await;
    let all = get(&format!("{url}/tasks?limit=500")).await;
    assert_eq!(all["tasks"].as_array().unwrap().len(), 8);
    let (stored, cursor) = stored_event_count(&running.db).await;
    assert!(cursor > cursor_before);
    assert_eq!(
        stored,
        chain_log_count(&devnet, cursor).await,
        "no duplicates, nothing missed"
    );
    // The finalized tasks kept their state across the restart.
    assert_eq!(
        get(&format!("{url}/tasks/{}", ids[0])).await["status"],
        "finalized"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_is_rolled_back_and_reindexed() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let anvil = devnet.provider(&devnet.deployer);
    let dir = tempfile::tempdir().unwrap();
    // No confirmation depth, so the reorg reaches indexed blocks.
    let running = indexer::start(indexer_args(
        &devnet,
        &db_spec(dir.path(), "db.sqlite"),
        0,
        2000,
    ))
    .await
    .unwrap();
    let url = running.url();

    let snapshot = anvil.anvil_snapshot().await.unwrap();
    let inputs = digit_inputs(0..2);
    let first = submit(&devnet, &inputs[..1]).await[0];
    let before = wait_for(&format!("{url}/tasks/{first}"), "task indexed", |v| {
        v["status"] == "assigned"
    })
    .await;
    let old_hash = before["input"]["keccak256"].clone();

    // Replace the chain after the snapshot: the same task id now carries another input.
    assert!(anvil.anvil_revert(snapshot).await.unwrap());
    let again = submit(&devnet, &inputs[1..]).await[0];
    assert_eq!(again, first, "the reorged chain reuses the task id");
    anvil.anvil_mine(Some(3), None).await.unwrap();
    let new_hash = protocol::output_hash(&inputs[1]).to_string();
    let after = wait_for(
        &format!("{url}/tasks/{first}"),
        "reorged task re-indexed",
        |v| v["input"]["keccak256"] == new_hash.as_str(),
    )
    .await;
    assert_ne!(after["input"]["keccak256"], old_hash);
    let trail = after["audit_trail"].as_array().unwrap();
    assert_eq!(
        trail.iter().filter(|e| e["kind"] == "submitted").count(),
        1,
        "old submission gone: {after}"
    );

    let (stored, cursor) = stored_event_count(&running.db).await;
    assert_eq!(
        stored,
        chain_log_count(&devnet, cursor).await,
        "events equal the canonical chain's logs"
    );
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("indexer_reorgs_total"), "{metrics}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn bad_settings_fail_fast_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    // Unreachable RPC.
    let args = indexer::Args::try_parse_from([
        "indexer",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--rpc-retries",
        "1",
        "--db",
        dir.path().join("x.sqlite").to_str().unwrap(),
    ])
    .unwrap();
    let e = indexer::start(args)
        .await
        .err()
        .expect("unreachable RPC is an error")
        .to_string();
    assert!(e.contains("127.0.0.1:1"), "{e}");

    let devnet = Devnet::start(DevnetConfig {
        register_digits: false,
        ..DevnetConfig::default()
    })
    .await
    .unwrap();
    // Missing deployment file.
    let mut args = indexer_args(&devnet, &db_spec(dir.path(), "y.sqlite"), 1, 10);
    args.rpc.deployment = Some(dir.path().join("missing.json"));
    let e = indexer::start(args)
        .await
        .err()
        .expect("missing deployment is an error")
        .to_string();
    assert!(e.contains("missing.json"), "{e}");
    // Database directory that does not exist.
    let args = indexer_args(
        &devnet,
        dir.path().join("no/such/dir/z.sqlite").to_str().unwrap(),
        1,
        10,
    );
    let e = indexer::start(args)
        .await
        .err()
        .expect("bad --db is an error")
        .to_string();
    assert!(e.contains("--db"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_and_stops_on_sigterm() {
    let devnet = Devnet::start(DevnetConfig {
        register_digits: false,
        ..DevnetConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = devnet::free_port().unwrap();
    let log = dir.path().join("indexer.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_indexer"))
        .args(["--rpc-url", &devnet.rpc_url, "--deployment"])
        .arg(&devnet.deployment_path)
        .arg("--db")
        .arg(db_spec(dir.path(), "bin.sqlite"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--confirmations",
            "1",
        ])
        .env_remove("RUST_LOG")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let health = loop {
        if let Ok(res) = reqwest::get(format!("{url}/health")).await {
            let v: Value = res.json().await.unwrap();
            if v["indexed_block"].is_u64() {
                break v;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "indexer binary did not come up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(health["chain_id"], 31337);
    let nodes = get(&format!("{url}/nodes")).await;
    assert_eq!(
        nodes["nodes"].as_array().unwrap().len(),
        devnet.workers.len() + devnet.validators.len()
    );

    let status = std::process::Command::new("kill")
        .args(["-s", "TERM", "--", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "indexer did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "graceful exit, got {exit}");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains(&format!("indexer listening on http://127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// A TCP proxy in front of anvil that can cut every connection and refuse new ones (an RPC
/// outage the indexer cannot tell from a real one), then come back on the same port.
struct Proxy {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut p = Proxy {
            port: devnet::free_port().unwrap(),
            upstream,
            task: None,
        };
        p.up().await;
        p
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Drops the listener and every open connection (the JoinSet aborts them).
    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_outage_is_counted_and_survived() {
    let devnet = Devnet::start(DevnetConfig {
        register_digits: false,
        ..DevnetConfig::default()
    })
    .await
    .unwrap();
    let mut proxy = Proxy::start(&devnet.rpc_url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = indexer_args(&devnet, &db_spec(dir.path(), "db.sqlite"), 1, 2000);
    args.rpc.rpc_url = Some(proxy.url());
    args.rpc.rpc_retries = 0;
    args.rpc.rpc_timeout = 2;
    let running = indexer::start(args).await.unwrap();
    let url = running.url();
    wait_for(&format!("{url}/health"), "first range indexed", |v| {
        v["indexed_block"].is_u64()
    })
    .await;

    // The RPC goes away: the follow loop keeps retrying, the API keeps answering.
    proxy.down().await;
    let health = wait_for(&format!("{url}/health"), "RPC errors counted", |v| {
        v["rpc_errors"].as_u64() > Some(1)
    })
    .await;
    let stalled_at = health["indexed_block"].as_u64().unwrap();
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("indexer_rpc_errors_total"), "{metrics}");

    // It comes back (anvil kept mining meanwhile): indexing resumes past the outage.
    proxy.up().await;
    wait_for(&format!("{url}/health"), "indexing resumed", |v| {
        v["indexed_block"]
            .as_u64()
            .is_some_and(|b| b > stalled_at + 1)
    })
    .await;
    running.stop().await.unwrap();
}

/// The AuditManager's real events: a validator joins the audit draw, a batch is sealed, the
/// submitter challenges the result (the task is held, a dispute opens with the validator as its
/// quorum), the validator votes it honest (the dispute resolves Cleared, the task is released).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_manager_events_are_indexed() {
    use protocol::bindings::{DNToken, IAuditManager};
    let devnet = Devnet::start(DevnetConfig {
        challenge_window: 300,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet");
    let d = &devnet.deployment;
    assert_ne!(
        d.audit_manager,
        Address::ZERO,
        "devnet deploys the AuditManager"
    );
    let validator = &devnet.validators[0];
    let am_validator = IAuditManager::new(d.audit_manager, devnet.provider(validator));
    // One provider per sender: each caches its sender's nonce.
    let user = devnet.provider(&devnet.user);
    let am_user = IAuditManager::new(d.audit_manager, user.clone());
    let r = am_validator
        .joinValidators()
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "joinValidators reverted");

    let dir = tempfile::tempdir().unwrap();
    let running = indexer::start(indexer_args(
        &devnet,
        &db_spec(dir.path(), "i.sqlite"),
        1,
        50,
    ))
    .await
    .expect("indexer starts");
    let url = running.url();

    let id = submit(&devnet, &digit_inputs(0..1)).await[0];
    let tm_user = ITaskManager::new(d.task_manager, devnet.provider(&devnet.user));
    let worker: Address = tm_user.getTask(id).call().await.unwrap().worker;
    let signer = devnet
        .workers
        .iter()
        .find(|w| w.address() == worker)
        .expect("assigned worker is a devnet worker");
    let output = encode(&[("label", Tensor::from_i64(vec![1], &[4]).unwrap())]).unwrap();
    let hash = protocol::output_hash(&output);
    let r = ITaskManager::new(d.task_manager, devnet.provider(signer))
        .commit(id, hash, 0, output.into())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "commit reverted");
    let batch = r
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<ITaskManager::ResultsCommitted>().ok())
        .expect("ResultsCommitted")
        .inner
        .data
        .batchId;
    // Sealing needs the block after the commit's.
    devnet.advance_time(1).await.unwrap();
    devnet.advance_time(1).await.unwrap();
    let r = am_user
        .sealBatch(batch)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "sealBatch reverted");
    let seal = am_user.sealOf(batch).call().await.unwrap();

    // The submitter challenges (a single commit is a batch of one: its root is the leaf).
    let bond = am_user.params().call().await.unwrap().challengeBond;
    if bond > alloy::primitives::Uint::ZERO {
        let r = DNToken::new(d.token, user.clone())
            .approve(d.audit_manager, U256::from(bond))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "approve reverted");
    }
    let r = am_user
        .challenge(id, batch, hash, vec![])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "challenge reverted");
    // The quorum is drawn with the hash of the block after the challenge's.
    devnet.advance_time(1).await.unwrap();
    let r = am_user
        .drawQuorum(id)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "drawQuorum reverted");
    let held = wait_for(
        &format!("{url}/tasks/{id}"),
        "task held, quorum drawn",
        |v| {
            v["status"] == "disputed"
                && v["audit"]["dispute"]["members"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty())
        },
    )
    .await;
    assert_eq!(held["audit"]["state"], "disputed");
    assert_eq!(held["audit"]["dispute"]["opener"], "user");
    assert_eq!(
        held["audit"]["dispute"]["accuser"],
        devnet.user.address().to_checksum(None)
    );
    assert_eq!(
        held["audit"]["dispute"]["members"],
        serde_json::json!([validator.address().to_checksum(None)])
    );
    assert_eq!(held["audit"]["seal"]["batch_id"], batch.to_string());
    assert_eq!(held["audit"]["seal"]["p_wad"], seal.pWad.to_string());
    assert_eq!(
        held["audit"]["seal"]["randomness"],
        seal.randomness.to_string()
    );

    let r = am_validator
        .vote(id, false, hash)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "vote reverted");
    let t = wait_for(&format!("{url}/tasks/{id}"), "dispute resolved", |v| {
        v["audit"]["state"] == "cleared"
    })
    .await;
    assert_eq!(t["status"], "committed", "released without fraud: {t}");
    assert_eq!(t["audit"]["dispute"]["honest_votes"], 1);
    assert_eq!(
        t["audit"]["votes"][0]["validator"],
        validator.address().to_checksum(None)
    );
    let kinds: Vec<&str> = t["audit_trail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "submitted",
            "assigned",
            "committed",
            "held",
            "dispute_opened",
            "quorum_drawn",
            "dispute_vote",
            "dispute_resolved",
            "released"
        ]
    );
    let weight = am_user
        .validatorWeight(validator.address())
        .call()
        .await
        .unwrap();
    let node = get(&format!("{url}/nodes/{}", validator.address())).await;
    assert_eq!(node["audits"]["validator_weight"], weight.to_string());
    assert_eq!(node["audits"]["dispute_votes"], 1);
    let w = get(&format!("{url}/nodes/{worker}")).await;
    assert_eq!(w["audits"]["challenged"], 1);
    assert_eq!(w["audits"]["cleared"], 1);
    running.stop().await.unwrap();
}

/// Two indexers on one PostgreSQL database (always PostgreSQL, whatever `DN_TEST_DB` says): one
/// takes the writer lock and follows the chain, the other serves what it writes and answers
/// the same; when the writer stops, the other takes the lock over and follows on.
#[tokio::test]
async fn two_indexers_share_one_postgres_database() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let db = pg_database();
    let a = indexer::start(indexer_args(&devnet, &db, 1, 2000))
        .await
        .expect("first indexer starts");
    wait_for(
        &format!("{}/health", a.url()),
        "first indexer writes",
        |v| v["writer"] == true,
    )
    .await;
    let b = indexer::start(indexer_args(&devnet, &db, 1, 2000))
        .await
        .expect("second indexer starts");
    let ids = submit(&devnet, &digit_inputs(0..3)).await;
    let newest = ids.iter().max().unwrap().to_string();
    let has_newest = |v: &Value| v["tasks"][0]["task_id"].as_str() == Some(newest.as_str());
    let page_a = wait_for(
        &format!("{}/tasks", a.url()),
        "tasks via the writer",
        has_newest,
    )
    .await;
    let page_b = wait_for(
        &format!("{}/tasks", b.url()),
        "tasks via the reader",
        has_newest,
    )
    .await;
    assert_eq!(page_a, page_b, "both serve the same rows");
    let health_b = get(&format!("{}/health", b.url())).await;
    assert_eq!(health_b["writer"], false, "{health_b}");
    assert!(health_b["head_block"].as_u64() > Some(0), "{health_b}");
    // the server probes the connections (the writer lock's among them): a writer whose host
    // vanishes loses the lock in about 25 s, not the two hours of the OS's default keepalive
    let pool = chainstore::db::Db::open(&db)
        .await
        .expect("open")
        .pool()
        .clone();
    for (setting, want) in [
        ("tcp_keepalives_idle", "10"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "3"),
    ] {
        let got: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(&pool)
            .await
            .expect(setting);
        assert_eq!(got, want, "{setting}");
    }

    // The writer stops (its lock's connection closes): the reader takes over and follows on.
    a.stop().await.unwrap();
    wait_for(
        &format!("{}/health", b.url()),
        "second indexer takes over",
        |v| v["writer"] == true,
    )
    .await;
    let more = submit(&devnet, &digit_inputs(3..5)).await;
    let newest = more.iter().max().unwrap().to_string();
    wait_for(
        &format!("{}/tasks", b.url()),
        "tasks after the takeover",
        |v| v["tasks"][0]["task_id"].as_str() == Some(newest.as_str()),
    )
    .await;
    b.stop().await.unwrap();
}
