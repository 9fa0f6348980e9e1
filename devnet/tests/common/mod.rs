//! Shared harness of the end-to-end tests: executor and verifier processes on a devnet, the
//! waits and the event readers they check results with.
#![allow(dead_code)]

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use anyhow::{bail, Result};
use devnet::{key_hex, Devnet};
use protocol::bindings::{IStaking, ITaskManager};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WAD: u64 = 1_000_000_000_000_000_000;

/// The tests here each run anvil plus several executor and verifier processes; on a 2-core
/// machine running them side by side starves their deadlines, so they take turns.
/// (tokio's Mutex: it does not poison, and it works across the tests' separate runtimes.)
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Kills the processes it holds when dropped (also when a test panics).
pub struct Procs(pub Vec<Child>);
impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn bin(name: &str) -> PathBuf {
    let demo = PathBuf::from(env!("CARGO_BIN_EXE_deepnode-demo"));
    let p = demo.parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} not built (cargo test --workspace builds it)",
        p.display()
    );
    p
}

pub fn spawn(
    name: &str,
    args: &[String],
    key: &PrivateKeySigner,
    env: &[(&str, String)],
    log: &Path,
) -> Child {
    let f = std::fs::File::create(log).unwrap();
    Command::new(bin(name))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("DN_PRIVATE_KEY", key_hex(key))
        .env_remove("ETH_RPC_URL")
        .env_remove("DN_SIGNATURES_DIR")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

pub fn chain_args(net: &Devnet) -> Vec<String> {
    vec![
        "--rpc-url".into(),
        net.rpc_url.clone(),
        "--deployment".into(),
        net.deployment_path.display().to_string(),
    ]
}

pub fn executor(net: &Devnet, i: usize, extra: &[String]) -> Child {
    executor_with(net, i, extra, &[])
}

/// `executor` with more environment variables.
pub fn executor_with(net: &Devnet, i: usize, extra: &[String], env: &[(&str, String)]) -> Child {
    let dir = net.work_dir.join(format!("worker{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = chain_args(net);
    a.extend(devnet::executor_args(&dir));
    a.extend(extra.iter().cloned());
    spawn(
        "executor",
        &a,
        &net.workers[i],
        env,
        &dir.join("executor.log"),
    )
}

pub fn verifier(net: &Devnet, i: usize, mode: &str) -> Child {
    verifier_with(net, i, mode, &[], &[])
}

/// `verifier` with more flags and environment variables.
pub fn verifier_with(
    net: &Devnet,
    i: usize,
    mode: &str,
    extra: &[String],
    env: &[(&str, String)],
) -> Child {
    let dir = net.work_dir.join(format!("validator{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = chain_args(net);
    a.extend(devnet::verifier_args(&dir));
    a.extend(["--test-audit-mode".to_string(), mode.to_string()]);
    a.extend(extra.iter().cloned());
    spawn(
        "verifier",
        &a,
        &net.validators[i],
        env,
        &dir.join("verifier.log"),
    )
}

pub fn logs_of(net: &Devnet, name: &str) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(&net.work_dir).unwrap().flatten() {
        if e.path().is_dir() {
            let p = e.path().join(format!("{name}.log"));
            if let Ok(s) = std::fs::read_to_string(&p) {
                let tail: String = s.lines().rev().take(40).collect::<Vec<_>>().join("\n");
                out.push_str(&format!(
                    "---- {} (last lines, newest first)\n{tail}\n",
                    p.display()
                ));
            }
        }
    }
    out
}

/// Waits until every task is Finalized or Refunded; returns the statuses.
pub async fn wait_settled(net: &Devnet, ids: &[U256], timeout: Duration) -> Result<Vec<u8>> {
    let p = net.provider(&net.user);
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    let start = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for id in ids {
            statuses.push(tm.getTask(*id).call().await?.status);
        }
        if statuses.iter().all(|s| *s == 4 || *s == 5) {
            return Ok(statuses);
        }
        if start.elapsed() > timeout {
            bail!("tasks not settled after {timeout:?}: statuses {statuses:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every Staking.Slashed event since the deployment: (account, role, reason, amount).
pub async fn slashes(net: &Devnet) -> Result<Vec<(Address, u8, u8, U256)>> {
    let p = net.provider(&net.user);
    let logs = p
        .get_logs(
            &Filter::new()
                .address(net.deployment.staking)
                .event_signature(IStaking::Slashed::SIGNATURE_HASH)
                .from_block(net.deployment.start_block),
        )
        .await?;
    Ok(logs
        .iter()
        .filter_map(|l| l.log_decode::<IStaking::Slashed>().ok())
        .map(|l| {
            let d = l.inner.data;
            (d.account, d.role, d.reason, d.amount)
        })
        .collect())
}

/// Sends `dn` DN and 1 ETH (for gas) from the deployer to `to`: a wallet with no stake, such as
/// a canary's or a sentinel's planter.
pub async fn fund_wallet(net: &Devnet, to: Address, dn: u64) -> Result<()> {
    let admin = net.provider(&net.deployer);
    if dn > 0 {
        protocol::bindings::DNToken::new(net.deployment.token, &admin)
            .transfer(to, U256::from(dn) * U256::from(protocol::DN))
            .send()
            .await?
            .get_receipt()
            .await?;
    }
    let eth = alloy::rpc::types::TransactionRequest::default()
        .to(to)
        .value(U256::from(10u64).pow(U256::from(18u64)));
    admin.send_transaction(eth).await?.get_receipt().await?;
    Ok(())
}

pub async fn events<E: SolEvent>(net: &Devnet, address: Address) -> Result<Vec<E>> {
    net.events::<E>(address).await
}
