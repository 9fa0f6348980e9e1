//! End-to-end tests of the real `executor` binary against a real devnet (anvil + the deployed
//! contracts + ONNX Runtime): failure codes and refunds, a model whose bytes do not match its
//! registered hash, crashes between "computed" and "committed", key and RPC misconfiguration.

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use devnet::{digits, Devnet, DevnetConfig};
use protocol::bindings::ITaskManager;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running executor process; killed on drop.
struct Executor {
    child: Child,
    log: PathBuf,
}

impl Drop for Executor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Executor {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit on its own.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                started.elapsed() < timeout,
                "executor did not exit within {timeout:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_running(&mut self) {
        if let Some(s) = self.child.try_wait().unwrap() {
            panic!("executor exited early with {s}; logs:\n{}", self.logs());
        }
    }
}

fn executor_bin() -> &'static str {
    env!("CARGO_BIN_EXE_executor")
}

fn ort_lib() -> PathBuf {
    devnet::workspace_root().join(".deps/onnxruntime/libonnxruntime.so.1.31.1")
}

/// Starts the executor binary for `worker` with test-friendly timings plus `extra` flags.
fn spawn_executor(
    net: &Devnet,
    worker: usize,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Executor {
    spawn_executor_in(net, worker, &net.work_dir.join(name), extra, env)
}

fn spawn_executor_in(
    net: &Devnet,
    worker: usize,
    dir: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Executor {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join(format!(
        "executor-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(executor_bin());
    cmd.args(["--rpc-url", &net.rpc_url])
        .arg("--deployment")
        .arg(&net.deployment_path)
        .arg("--models-dir")
        .arg(net.work_dir.join("models"))
        .arg("--journal")
        .arg(dir.join("journal.jsonl"))
        .args([
            "--device",
            "cpu",
            "--poll-interval-ms",
            "200",
            "--batch-wait-ms",
            "300",
            "--finalize-interval-secs",
            "1",
        ])
        .args(extra)
        .env("DN_PRIVATE_KEY", devnet::key_hex(&net.workers[worker]))
        .env("ORT_DYLIB_PATH", ort_lib())
        .env_remove("ETH_RPC_URL")
        .env_remove("ETH_KEYSTORE")
        .env_remove("DN_EXECUTOR_CRASH_AFTER")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Executor {
        child: cmd.spawn().expect("spawning the executor binary"),
        log,
    }
}

/// The platform anvil binary (killing npm's node wrapper would leave it running).
fn anvil_binary() -> PathBuf {
    let direct =
        devnet::workspace_root().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if direct.exists() {
        direct
    } else {
        devnet::npm_bin("anvil")
    }
}

fn journal_of(net: &Devnet, name: &str) -> PathBuf {
    net.work_dir.join(name).join("journal.jsonl")
}

async fn start_devnet(workers: usize) -> Devnet {
    Devnet::start(DevnetConfig {
        workers,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts")
}

fn reader(net: &Devnet) -> DynProvider {
    net.provider(&net.user)
}

/// Every ResultsCommitted entry: task id -> (code, output hash, output), one per commit.
async fn commits(net: &Devnet) -> HashMap<U256, Vec<(u16, B256, Bytes)>> {
    let p = reader(net);
    let filter = Filter::new()
        .address(net.deployment.task_manager)
        .event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH)
        .from_block(0);
    let mut out: HashMap<U256, Vec<(u16, B256, Bytes)>> = HashMap::new();
    for log in p.get_logs(&filter).await.unwrap() {
        let ev = log
            .log_decode::<ITaskManager::ResultsCommitted>()
            .unwrap()
            .inner
            .data;
        for i in 0..ev.taskIds.len() {
            out.entry(ev.taskIds[i]).or_default().push((
                ev.codes[i],
                ev.outputHashes[i],
                ev.outputs[i].clone(),
            ));
        }
    }
    out
}

async fn finalized(net: &Devnet) -> HashMap<U256, ITaskManager::TaskFinalized> {
    let p = reader(net);
    let filter = Filter::new()
        .address(net.deployment.task_manager)
        .event_signature(ITaskManager::TaskFinalized::SIGNATURE_HASH)
        .from_block(0);
    p.get_logs(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            let ev = l
                .log_decode::<ITaskManager::TaskFinalized>()
                .unwrap()
                .inner
                .data;
            (ev.taskId, ev)
        })
        .collect()
}

async fn withdrawals_of(net: &Devnet, account: Address) -> Vec<U256> {
    let p = reader(net);
    let filter = Filter::new()
        .address(net.deployment.task_manager)
        .event_signature(ITaskManager::PayoutWithdrawn::SIGNATURE_HASH)
        .topic1(account.into_word())
        .from_block(0);
    p.get_logs(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            l.log_decode::<ITaskManager::PayoutWithdrawn>()
                .unwrap()
                .inner
                .data
                .amount
        })
        .collect()
}

/// Polls `check` until it returns true or `timeout` passes.
async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    exec: Option<&mut Executor>,
    mut check: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut exec = exec;
    loop {
        if check().await {
            return;
        }
        if let Some(e) = exec.as_deref_mut() {
            e.assert_running();
        }
        if started.elapsed() > timeout {
            let logs = exec.map(|e| e.logs()).unwrap_or_default();
            panic!("timed out after {timeout:?} waiting for {what}; executor logs:\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn st(name: &str, dtype: safetensors::Dtype, shape: Vec<usize>, data: &[u8]) -> Vec<u8> {
    let view = safetensors::tensor::TensorView::new(dtype, shape, data).unwrap();
    safetensors::serialize([(name, view)], None).unwrap()
}

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| ((i % 16) as f32).to_le_bytes())
        .collect()
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn journal_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_failure_codes_and_refunds() {
    let net = start_devnet(1).await;
    let metrics_port = devnet::free_port().unwrap();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut exec = spawn_executor(
        &net,
        0,
        "a",
        &[
            "--max-input-bytes",
            "1024",
            "--metrics-listen",
            &metrics_addr,
        ],
        &[],
    );

    let sample = &digits::heldout().unwrap()[0];
    let inputs = vec![
        digits::encode_input(&sample.pixels).unwrap(),
        b"this is not a safetensors document".to_vec(),
        st(
            "input",
            safetensors::Dtype::F32,
            vec![1, 63],
            &f32_bytes(63),
        ),
        st(
            "input",
            safetensors::Dtype::I64,
            vec![1, 64],
            &vec![0u8; 64 * 8],
        ),
        st(
            "input",
            safetensors::Dtype::F32,
            vec![1, 400],
            &f32_bytes(400),
        ),
    ];
    assert!(
        inputs[4].len() > 1024 && inputs[4].len() < 65_536,
        "oversized for the worker, fine for the contract"
    );
    let expected_codes = [0u16, 1, 2, 3, 4];
    let expected_names = [
        "",
        "input_decode",
        "input_shape",
        "input_dtype",
        "input_too_large",
    ];
    let ids = net.submit_inputs(net.model_id, &inputs, 10).await.unwrap();
    assert_eq!(ids.len(), 5);

    wait_until(
        "all five tasks committed",
        Duration::from_secs(90),
        Some(&mut exec),
        || async {
            let c = commits(&net).await;
            ids.iter().all(|id| c.contains_key(id))
        },
    )
    .await;
    let c = commits(&net).await;
    for (i, id) in ids.iter().enumerate() {
        let entries = &c[id];
        assert_eq!(entries.len(), 1, "task {id} committed once");
        let (code, hash, output) = &entries[0];
        assert_eq!(
            *code,
            expected_codes[i],
            "task {i}: output {:?}",
            String::from_utf8_lossy(output)
        );
        assert_eq!(
            *hash,
            keccak256(output),
            "output hash is keccak of the committed bytes"
        );
        if i == 0 {
            assert!(
                digits::decode_label(output).is_some(),
                "success output is the model's safetensors"
            );
        } else {
            let msg = std::str::from_utf8(output).expect("failure message is UTF-8");
            assert!(
                msg.starts_with(expected_names[i]),
                "task {i}: message {msg:?}"
            );
        }
    }

    // Finalization after the challenge window: the executor does it, then withdraws its fees.
    net.advance_time(net.config.challenge_window + 1)
        .await
        .unwrap();
    wait_until(
        "all five tasks finalized",
        Duration::from_secs(60),
        Some(&mut exec),
        || async {
            let f = finalized(&net).await;
            ids.iter().all(|id| f.contains_key(id))
        },
    )
    .await;
    let p = reader(&net);
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    let bps = U256::from(tm.failureProcessingBps().call().await.unwrap());
    let fee = net.config.model_price_wei;
    let f = finalized(&net).await;
    let mut refunds = U256::ZERO;
    for (i, id) in ids.iter().enumerate() {
        let ev = &f[id];
        // TaskFinalized carries 0 (result) or 1 (failure); the exact code is in ResultsCommitted.
        assert_eq!(ev.code, u16::from(expected_codes[i] != 0), "task {i}");
        if i == 0 {
            assert_eq!(ev.refund, U256::ZERO);
        } else {
            // an input fault (codes 1-3) pays the processing share; input over this worker's
            // limit (code 4) is worker-side: the whole fee goes back
            let processing = if protocol::codes::is_input_fault_code(expected_codes[i]) {
                fee * bps / U256::from(10_000u64)
            } else {
                U256::ZERO
            };
            assert_eq!(
                ev.refund,
                fee - processing,
                "task {i}: user refund = fee - processing share"
            );
            assert_eq!(ev.workerFee, processing);
            refunds += ev.refund;
        }
    }
    assert_eq!(
        tm.payoutOf(net.user.address()).call().await.unwrap(),
        refunds,
        "refunds credited to the user"
    );

    let worker = net.workers[0].address();
    wait_until(
        "the worker's payout withdrawn",
        Duration::from_secs(30),
        Some(&mut exec),
        || async { !withdrawals_of(&net, worker).await.is_empty() },
    )
    .await;
    assert_eq!(tm.payoutOf(worker).call().await.unwrap(), U256::ZERO);

    let body = http_get(&metrics_addr, "/metrics");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("tasks_run_total 5"), "{body}");
    for name in &expected_names[1..] {
        assert!(
            body.contains(&format!("tasks_failed_total{{code=\"{name}\"}} 1")),
            "{name} in {body}"
        );
    }
    assert!(body.contains("commit_latency_seconds_bucket"), "{body}");
    exec.assert_running();
    if std::env::var_os("DN_SHOW_LOGS").is_some() {
        eprintln!("{}", exec.logs());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_with_wrong_registered_hash_commits_model_hash_mismatch() {
    let net = start_devnet(1).await;
    let bogus = B256::repeat_byte(0x11);
    let model = net
        .register_model(&digits::model_path(), Some(bogus))
        .await
        .unwrap();
    let mut exec = spawn_executor(&net, 0, "b", &[], &[]);
    let sample = &digits::heldout().unwrap()[1];
    let input = digits::encode_input(&sample.pixels).unwrap();
    let ids = net
        .submit_inputs(model, &[input.clone(), input], 10)
        .await
        .unwrap();
    wait_until(
        "both tasks committed",
        Duration::from_secs(90),
        Some(&mut exec),
        || async {
            let c = commits(&net).await;
            ids.iter().all(|id| c.contains_key(id))
        },
    )
    .await;
    let c = commits(&net).await;
    for id in &ids {
        let (code, _, output) = &c[id][0];
        let msg = String::from_utf8_lossy(output);
        assert_eq!(*code, 5, "model_hash_mismatch, got {msg}");
        assert!(
            msg.starts_with("model_hash_mismatch") && msg.contains(&hex::encode(bogus)),
            "{msg}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_computed_and_committed_loses_nothing_and_commits_once() {
    let net = start_devnet(1).await;
    let samples = digits::heldout().unwrap();
    let inputs: Vec<Vec<u8>> = samples
        .iter()
        .take(7)
        .map(|s| digits::encode_input(&s.pixels).unwrap())
        .collect();
    let ids = net.submit_inputs(net.model_id, &inputs, 10).await.unwrap();
    assert_eq!(ids.len(), 7);
    let journal = journal_of(&net, "c");
    let common = ["--batch-size", "3"];

    // 1. Crash right after journaling the first computed batch, before anything is sent.
    let mut e1 = spawn_executor(
        &net,
        0,
        "c",
        &common,
        &[("DN_EXECUTOR_CRASH_AFTER", "computed")],
    );
    let s = e1.wait_exit(Duration::from_secs(120));
    assert!(!s.success(), "aborted: {s}");
    assert!(
        e1.logs().contains("DN_EXECUTOR_CRASH_AFTER=computed"),
        "{}",
        e1.logs()
    );
    let computed_1: Vec<_> = journal_lines(&journal)
        .into_iter()
        .filter(|l| l.get("computed").is_some())
        .collect();
    assert_eq!(computed_1.len(), 3, "first batch journaled");
    assert!(commits(&net).await.is_empty(), "nothing committed yet");

    // 2. Restart, crash right after broadcasting the commit of the journaled batch.
    let mut e2 = spawn_executor(
        &net,
        0,
        "c",
        &common,
        &[("DN_EXECUTOR_CRASH_AFTER", "submitted")],
    );
    let s = e2.wait_exit(Duration::from_secs(120));
    assert!(!s.success(), "aborted: {s}");
    let lines = journal_lines(&journal);
    assert!(
        lines.iter().any(|l| l.get("submitted").is_some()),
        "submitted journaled"
    );
    assert!(
        !lines.iter().any(|l| l.get("committed").is_some()),
        "receipt never recorded"
    );

    // 3. Restart normally: the pending transaction is resolved by its receipt, the rest run.
    let mut e3 = spawn_executor(&net, 0, "c", &common, &[]);
    wait_until(
        "all seven tasks committed",
        Duration::from_secs(120),
        Some(&mut e3),
        || async {
            let c = commits(&net).await;
            ids.iter().all(|id| c.contains_key(id))
        },
    )
    .await;
    // Give a double-commit bug the chance to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = commits(&net).await;
    for id in &ids {
        assert_eq!(c[id].len(), 1, "task {id} committed exactly once");
        assert_eq!(c[id][0].0, 0, "task {id} succeeded");
    }
    // Journaled results were not recomputed: one computed record per task.
    let mut computed_per_task: HashMap<String, usize> = HashMap::new();
    for l in journal_lines(&journal) {
        if let Some(c) = l.get("computed") {
            *computed_per_task
                .entry(c["task_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(computed_per_task.len(), 7);
    assert!(
        computed_per_task.values().all(|n| *n == 1),
        "{computed_per_task:?}"
    );
    // The results committed after the crash are the ones computed before it.
    for l in computed_1 {
        let id: U256 = l["computed"]["task_id"].as_str().unwrap().parse().unwrap();
        let hash: B256 = l["computed"]["output_hash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(c[&id][0].1, hash);
    }
    e3.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvil_key_is_refused_off_devnet() {
    let port = devnet::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut anvil = Command::new(anvil_binary())
        .args(["--port", &port.to_string(), "--chain-id", "5151"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("anvil starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "anvil did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new(executor_bin())
        .args(["--rpc-url", &url, "--models-dir"])
        .arg(dir.path().join("models"))
        .env("DN_PRIVATE_KEY", protocol::wallet::ANVIL_DEV_KEYS[1])
        .env_remove("ETH_RPC_URL")
        .output()
        .unwrap();
    let _ = anvil.kill();
    let _ = anvil.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must refuse: {stderr}");
    assert!(
        stderr.contains("development key") && stderr.contains("5151"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_rpc_at_start_is_a_clear_error() {
    let port = devnet::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let out = Command::new(executor_bin())
        .args([
            "--rpc-url",
            &url,
            "--rpc-retries",
            "1",
            "--rpc-timeout",
            "1",
            "--models-dir",
        ])
        .arg(dir.path().join("models"))
        .env("DN_PRIVATE_KEY", format!("0x{}", "42".repeat(32)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("unreachable") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A TCP proxy in front of anvil: stopping it is a real outage (connections refused and cut)
/// without losing the chain, and starting it again on the same port ends the outage.
struct Proxy {
    port: u16,
    upstream: u16,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(port: u16, upstream: u16) -> Proxy {
        let p = Proxy {
            port,
            upstream,
            tasks: Default::default(),
        };
        p.listen().await;
        p
    }

    async fn listen(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let upstream = self.upstream;
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let conn = tokio::spawn(async move {
                    if let Ok(mut out) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_outage_while_running_is_retried_and_loses_nothing() {
    let mut net = start_devnet(1).await;
    let anvil_port: u16 = net
        .rpc_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = Proxy::start(devnet::free_port().unwrap(), anvil_port).await;
    let direct_url =
        std::mem::replace(&mut net.rpc_url, format!("http://127.0.0.1:{}", proxy.port));
    let mut exec = spawn_executor(
        &net,
        0,
        "e",
        &["--rpc-timeout", "2", "--rpc-retries", "1"],
        &[],
    );
    net.rpc_url = direct_url; // the test itself talks to anvil directly
    let log_dir = net.work_dir.join("e");
    wait_until(
        "executor started",
        Duration::from_secs(60),
        Some(&mut exec),
        || async { read_logs(&log_dir).contains("executor started") },
    )
    .await;

    proxy.stop();
    let sample = &digits::heldout().unwrap()[2];
    let ids = net
        .submit_inputs(
            net.model_id,
            &[digits::encode_input(&sample.pixels).unwrap()],
            10,
        )
        .await
        .unwrap();
    wait_until(
        "the retry message",
        Duration::from_secs(60),
        Some(&mut exec),
        || async { read_logs(&log_dir).contains("RPC unreachable, retrying in") },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    exec.assert_running();
    assert!(
        commits(&net).await.is_empty(),
        "nothing can be committed during the outage"
    );

    // The outage ends: the task submitted meanwhile is run and committed.
    proxy.listen().await;
    wait_until(
        "the task committed after the outage",
        Duration::from_secs(90),
        Some(&mut exec),
        || async {
            commits(&net)
                .await
                .get(&ids[0])
                .is_some_and(|c| c.len() == 1 && c[0].0 == 0)
        },
    )
    .await;
    wait_until(
        "the recovery message",
        Duration::from_secs(30),
        Some(&mut exec),
        || async { read_logs(&log_dir).contains("RPC reachable again") },
    )
    .await;
    proxy.stop();
}

fn read_logs(dir: &Path) -> String {
    let mut all = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    all
}

#[test]
fn help_explains_the_flags() {
    let out = Command::new(executor_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--rpc-url",
        "--keystore",
        "--models-dir",
        "--batch-size",
        "--metrics-listen",
        "--no-finalize",
        "--opt-in",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_past_their_deadline_are_skipped_not_committed() {
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        response_window: 5,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts");
    let sample = &digits::heldout().unwrap()[3];
    let late = net
        .submit_inputs(
            net.model_id,
            &[digits::encode_input(&sample.pixels).unwrap()],
            10,
        )
        .await
        .unwrap();
    // drawn now (nobody runs yet), then its response window passes before the executor starts
    net.assign(&late).await.unwrap();
    net.advance_time(30).await.unwrap();
    let mut exec = spawn_executor(&net, 0, "deadline", &[], &[]);
    let log_dir = net.work_dir.join("deadline");
    wait_until(
        "the skip warning",
        Duration::from_secs(60),
        Some(&mut exec),
        || async { read_logs(&log_dir).contains("deadline passed") },
    )
    .await;
    // A task submitted now is still run and committed.
    let fresh = net
        .submit_inputs(
            net.model_id,
            &[digits::encode_input(&sample.pixels).unwrap()],
            10,
        )
        .await
        .unwrap();
    wait_until(
        "the fresh task committed",
        Duration::from_secs(60),
        Some(&mut exec),
        || async { commits(&net).await.contains_key(&fresh[0]) },
    )
    .await;
    assert!(
        !commits(&net).await.contains_key(&late[0]),
        "a late task is never committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_in_flag_and_stake_shortfall_warning() {
    use protocol::bindings::IModelRegistry;
    let net = start_devnet(1).await;
    let worker = net.workers[0].address();
    let registry =
        IModelRegistry::new(net.deployment.model_registry, net.provider(&net.workers[0]));
    registry
        .optOut(net.model_id)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(!registry
        .workersOf(net.model_id)
        .call()
        .await
        .unwrap()
        .contains(&worker));

    let model = net.model_id.to_string();
    let mut exec = spawn_executor(&net, 0, "optin", &["--opt-in", &model], &[]);
    let log_dir = net.work_dir.join("optin");
    wait_until(
        "executor started",
        Duration::from_secs(60),
        Some(&mut exec),
        || async { read_logs(&log_dir).contains("executor started") },
    )
    .await;
    assert!(
        registry
            .workersOf(net.model_id)
            .call()
            .await
            .unwrap()
            .contains(&worker),
        "opted in at start"
    );
    assert!(read_logs(&log_dir).contains("opted in"));
    drop(exec);

    // An account without worker stake gets told the exact shortfall (anvil key 9 holds no DN).
    let unstaked = devnet::anvil_signer(9);
    let dir = net.work_dir.join("unstaked");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("executor.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(executor_bin())
        .args(["--rpc-url", &net.rpc_url, "--device", "cpu"])
        .arg("--deployment")
        .arg(&net.deployment_path)
        .arg("--models-dir")
        .arg(dir.join("models"))
        .env("DN_PRIVATE_KEY", devnet::key_hex(&unstaked))
        .env("ORT_DYLIB_PATH", ort_lib())
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("executor started") || started.elapsed() > Duration::from_secs(60) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains("below the minimum") && text.contains("more"),
        "{text}"
    );
}

/// The documented `--test-cheat-rate` selection, reimplemented with `abi.encode`.
fn cheat_expected(id: U256, rate: f64, seed: u64) -> bool {
    use alloy::sol_types::SolValue;
    let salt = B256::from(U256::from(seed));
    let scale = U256::from(1_000_000_000_000_000_000u64);
    let draw = U256::from_be_bytes(keccak256((id, salt).abi_encode()).0) % scale;
    draw < U256::from((rate * 1e18) as u64)
}

fn cheat_log_ids(path: &Path) -> Vec<U256> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_cheat_rate_commits_wrong_outputs_and_logs_exactly_the_cheated_tasks() {
    let net = start_devnet(1).await;
    let samples = digits::heldout().unwrap();
    let good = |range: std::ops::Range<usize>| -> Vec<Vec<u8>> {
        samples[range]
            .iter()
            .map(|s| digits::encode_input(&s.pixels).unwrap())
            .collect()
    };
    let rt = inference::Runtime::init(Some(&ort_lib())).unwrap();
    let mut honest_model =
        inference::Model::load(&rt, digits::model_path(), inference::Device::Cpu, None).unwrap();
    let cheat_log = net.work_dir.join("cheat/log/cheated.txt");
    let cheat_log_arg = cheat_log.to_str().unwrap().to_string();

    // 1. Rate 1: every valid task is cheated; an invalid input still gets its honest failure.
    let mut inputs = good(0..3);
    inputs.push(b"not a safetensors document".to_vec());
    let ids = net.submit_inputs(net.model_id, &inputs, 10).await.unwrap();
    let mut exec = spawn_executor(
        &net,
        0,
        "cheat",
        &[
            "--test-cheat-rate",
            "1",
            "--test-cheat-seed",
            "7",
            "--test-cheat-log",
            &cheat_log_arg,
        ],
        &[],
    );
    wait_until(
        "the rate-1 tasks committed",
        Duration::from_secs(90),
        Some(&mut exec),
        || async {
            let c = commits(&net).await;
            ids.iter().all(|id| c.contains_key(id))
        },
    )
    .await;
    let logs = exec.logs();
    assert!(
        logs.contains("TEST-ONLY: this executor cheats on about 100% of tasks")
            && logs.contains("cheated"),
        "{logs}"
    );
    // The declared outputs were read from the graph: no fallback to running the model.
    assert!(!logs.contains("run the model for their shapes"), "{logs}");
    let c = commits(&net).await;
    for (i, id) in ids.iter().enumerate().take(3) {
        let (code, hash, output) = &c[id][0];
        assert_eq!(*code, 0, "a cheated task commits as a success");
        assert_eq!(*hash, keccak256(output));
        let honest = honest_model.run(&inputs[i]).unwrap();
        assert_ne!(
            *hash,
            keccak256(&honest),
            "task {id}: cheated output differs"
        );
        // Same signature as the real output (names, dtypes, shapes), other values.
        let (got, want) = (
            inference::tensor::decode(output).unwrap(),
            inference::tensor::decode(&honest).unwrap(),
        );
        let sig = |ts: &[(String, inference::Tensor)]| -> Vec<_> {
            ts.iter()
                .map(|(n, t)| (n.clone(), t.dtype, t.shape.clone()))
                .collect()
        };
        assert_eq!(sig(&got), sig(&want));
        assert!(got.iter().zip(&want).all(|(a, b)| a.1.data != b.1.data));
    }
    assert_eq!(c[&ids[3]][0].0, 1, "bad input: input_decode, not cheated");
    assert_eq!(cheat_log_ids(&cheat_log), ids[..3].to_vec());
    drop(exec);

    // 2. Restart on the same journal at rate 0.5 with a seed that cheats on some of the new tasks
    // and not others, all in one batch: only the selected ones are wrong, and logged.
    let ids2 = net
        .submit_inputs(net.model_id, &good(3..9), 10)
        .await
        .unwrap();
    let inputs2 = good(3..9);
    let seed = (0u64..)
        .find(|s| {
            let n = ids2
                .iter()
                .filter(|id| cheat_expected(**id, 0.5, *s))
                .count();
            n > 0 && n < ids2.len()
        })
        .unwrap();
    let cheated2: Vec<U256> = ids2
        .iter()
        .copied()
        .filter(|id| cheat_expected(*id, 0.5, seed))
        .collect();
    let seed_arg = seed.to_string();
    let mut exec = spawn_executor(
        &net,
        0,
        "cheat",
        &[
            "--test-cheat-rate",
            "0.5",
            "--test-cheat-seed",
            &seed_arg,
            "--test-cheat-log",
            &cheat_log_arg,
            "--batch-size",
            "8",
        ],
        &[],
    );
    wait_until(
        "the rate-0.5 tasks committed",
        Duration::from_secs(90),
        Some(&mut exec),
        || async {
            let c = commits(&net).await;
            ids2.iter().all(|id| c.contains_key(id))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = commits(&net).await;
    for (i, id) in ids.iter().chain(&ids2).enumerate() {
        assert_eq!(c[id].len(), 1, "task {id} committed exactly once");
        if i >= ids.len() {
            let (code, hash, output) = &c[id][0];
            assert_eq!(*code, 0);
            assert_eq!(*hash, keccak256(output));
            let honest = keccak256(honest_model.run(&inputs2[i - ids.len()]).unwrap());
            assert_eq!(
                *hash != honest,
                cheated2.contains(id),
                "task {id}: wrong exactly when selected (seed {seed})"
            );
        }
    }
    let mut want_log = ids[..3].to_vec();
    want_log.extend(&cheated2);
    assert_eq!(cheat_log_ids(&cheat_log), want_log);
    exec.assert_running();
}

/// A worker that never answers (its executor is down) does not leave its tasks assigned for good:
/// the other worker's executor reassigns each one once its response deadline passed (the missed
/// worker is jailed), draws it again and serves it. Found by `make chaos` (a 60 s RPC outage left
/// two tasks assigned to workers that had missed them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_worker_never_answers_is_reassigned_by_another_worker() {
    let net = Devnet::start(DevnetConfig {
        workers: 2,
        response_window: 10,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts");
    let mut exec = spawn_executor(&net, 0, "live", &[], &[]);
    let offline = net.workers[1].address();
    let sample = &digits::heldout().unwrap()[4];
    let input = digits::encode_input(&sample.pixels).unwrap();
    let p = reader(&net);
    let assigned_to = |worker: Address| {
        let p = p.clone();
        let tm = net.deployment.task_manager;
        let from = net.deployment.start_block;
        async move {
            let logs = p
                .get_logs(
                    &Filter::new()
                        .address(tm)
                        .event_signature(ITaskManager::TaskAssigned::SIGNATURE_HASH)
                        .from_block(from),
                )
                .await
                .unwrap();
            logs.iter()
                .filter_map(|l| l.log_decode::<ITaskManager::TaskAssigned>().ok())
                .filter(|l| l.inner.data.worker == worker)
                .map(|l| l.inner.data.taskId)
                .collect::<Vec<U256>>()
        }
    };
    // tasks until one is drawn to the offline worker (each draw is about even)
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.extend(
            net.submit_inputs(net.model_id, std::slice::from_ref(&input), 1)
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        if !assigned_to(offline).await.is_empty() {
            break;
        }
    }
    let missed = assigned_to(offline).await;
    assert!(
        !missed.is_empty(),
        "no task was drawn to the offline worker"
    );
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    wait_until(
        "every task finalized",
        Duration::from_secs(120),
        Some(&mut exec),
        || async {
            for id in &ids {
                if tm.getTask(*id).call().await.unwrap().status != 4 {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let committed = commits(&net).await;
    for id in &missed {
        assert_eq!(committed[id].len(), 1, "task {id} committed once");
        assert_eq!(
            tm.getTask(*id).call().await.unwrap().worker,
            net.workers[0].address(),
            "task {id} was drawn again and served by the live worker"
        );
    }
    let logs = exec.logs();
    assert!(
        logs.contains("task reassigned"),
        "the executor says what it did:\n{logs}"
    );
}

/// A reorg that drops both the block that drew a task's worker and the block of its commit (the
/// submission stays): the task is back in the draws, so the executor must draw it again and
/// commit its journaled result again. It used to take the task for settled by someone else
/// (journaling it finalized) and then ignore its new assignment: the task stayed assigned for
/// good, since a single worker has nobody to reassign its missed tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_dropping_a_tasks_draw_and_commit_gets_it_committed_again() {
    use alloy::providers::ext::AnvilApi;
    use protocol::bindings::TaskStatus;
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts");
    let mut exec = spawn_executor(&net, 0, "reorg", &[], &[]);
    let sample = &digits::heldout().unwrap()[2];
    let input = digits::encode_input(&sample.pixels).unwrap();
    let id = net
        .submit_inputs(net.model_id, std::slice::from_ref(&input), 1)
        .await
        .unwrap()[0];
    let p = reader(&net);
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    let status = |id: U256| {
        let tm = tm.clone();
        async move { TaskStatus::from_u8(tm.getTask(id).call().await.unwrap().status) }
    };
    wait_until(
        "the task committed",
        Duration::from_secs(60),
        Some(&mut exec),
        || async { status(id).await == Some(TaskStatus::Committed) },
    )
    .await;
    let submitted_in = p
        .get_logs(
            &Filter::new()
                .address(net.deployment.task_manager)
                .event_signature(ITaskManager::TaskSubmitted::SIGNATURE_HASH)
                .from_block(net.deployment.start_block),
        )
        .await
        .unwrap()
        .iter()
        .filter(|l| {
            l.log_decode::<ITaskManager::TaskSubmitted>()
                .is_ok_and(|e| e.inner.data.taskId == id)
        })
        .find_map(|l| l.block_number)
        .expect("the submission's block");
    let head = p.get_block_number().await.unwrap();
    net.provider(&net.deployer)
        .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions {
            depth: head - submitted_in,
            tx_block_pairs: Vec::new(),
        })
        .await
        .expect("anvil_reorg");
    assert!(
        !commits(&net).await.contains_key(&id),
        "the reorg dropped the commit"
    );
    wait_until(
        "the task finalized after the reorg",
        Duration::from_secs(90),
        Some(&mut exec),
        || async { status(id).await == Some(TaskStatus::Finalized) },
    )
    .await;
    assert_eq!(
        commits(&net).await[&id].len(),
        1,
        "committed once on the canonical chain"
    );
}
