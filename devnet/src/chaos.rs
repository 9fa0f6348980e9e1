//! The chaos harness (`make chaos`, issue 16): a live devnet with its workers, validator and
//! indexer under a steady stream of tasks, one fault at a time, then the checks that nothing was
//! lost. Each fault prints one line:
//! `chaos: <fault>: <N> tasks, lost 0, stuck 0, double commits 0, events missing 0, extra 0, recovered in <s> s`.
//!
//! Every service talks to anvil through [`RpcProxy`], a TCP proxy the harness can take down
//! (connections dropped, new ones refused); the users' submissions go to anvil directly (they
//! are the load, not the system under test). After the fault, the stream goes on for a few
//! seconds and stops; the harness then waits for every submitted task to end and for the indexer
//! to reach the head, and checks from the chain and the indexer's database:
//! - *lost*: a submitted task the chain does not know;
//! - *stuck*: a task neither finalized nor refunded when the recovery deadline passed;
//! - *double commits*: a task in more than one `ResultsCommitted` event;
//! - *events missing / extra*: logs of the followed contracts on the canonical chain up to the
//!   indexer's cursor that its `events` table lacks, and rows there that are not on the chain
//!   (same block, log index and transaction);
//! - escrow: `TaskManager`'s token balance equals `escrowed()` plus every pending payout, read at
//!   one block (a mismatch fails the fault).
//!
//! `recovered in` runs from the end of the fault (the restart, or the RPC back) until every task
//! submitted so far has ended.

use crate::{digits, key_hex, Devnet, DevnetConfig};
use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use anyhow::{bail, Context, Result};
use protocol::bindings::{DNToken, ITaskManager, TaskStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One fault the harness injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of an executor while tasks are assigned to it; restarted after `down`.
    KillExecutor,
    /// An executor aborts right after broadcasting its first commit (`DN_EXECUTOR_CRASH_AFTER=
    /// submitted`, as a power cut would); restarted after `down`.
    KillExecutorInCommit,
    /// `kill -9` of the indexer while it follows the chain; restarted after `down`.
    KillIndexer,
    /// `kill -9` of the verifier while it audits; restarted after `down`.
    KillVerifier,
    /// The RPC unreachable for `down`: the proxy drops every connection and refuses new ones.
    RpcDown,
    /// A chain reorganisation of depth 3 under every service (`anvil_reorg`: the last 3 blocks
    /// replaced by empty ones; what they held is gone from the chain).
    Reorg3,
}

impl Fault {
    /// Every fault, in the order `make chaos` runs them.
    pub const ALL: [Fault; 6] = [
        Fault::KillExecutor,
        Fault::KillExecutorInCommit,
        Fault::KillIndexer,
        Fault::KillVerifier,
        Fault::RpcDown,
        Fault::Reorg3,
    ];

    /// The name on its line.
    pub fn name(&self, down: Duration) -> String {
        let s = down.as_secs();
        match self {
            Fault::KillExecutor => {
                format!("kill -9 executor with tasks assigned, restart after {s} s")
            }
            Fault::KillExecutorInCommit => {
                format!("kill -9 executor with its commit in flight, restart after {s} s")
            }
            Fault::KillIndexer => format!("kill -9 indexer mid range, restart after {s} s"),
            Fault::KillVerifier => format!("kill -9 verifier mid audits, restart after {s} s"),
            Fault::RpcDown => format!("RPC unreachable for {s} s"),
            Fault::Reorg3 => "reorg of depth 3 (indexer at 1 confirmation)".into(),
        }
    }

    /// Parses a `--faults` name: executor, executor-commit, indexer, verifier, rpc.
    pub fn parse(s: &str) -> Result<Fault, String> {
        Ok(match s {
            "executor" => Fault::KillExecutor,
            "executor-commit" => Fault::KillExecutorInCommit,
            "indexer" => Fault::KillIndexer,
            "verifier" => Fault::KillVerifier,
            "rpc" => Fault::RpcDown,
            "reorg" => Fault::Reorg3,
            other => {
                return Err(format!(
                    "unknown fault {other:?} (executor, executor-commit, indexer, verifier, rpc, reorg)"
                ))
            }
        })
    }
}

/// How long each phase lasts.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Tasks streamed before the fault.
    pub before: Duration,
    /// How long the fault lasts (killed process down, RPC unreachable).
    pub down: Duration,
    /// Tasks streamed after the fault ends.
    pub after: Duration,
    /// Most time every task may take to end after the fault.
    pub recovery_limit: Duration,
}

impl Timing {
    /// `make chaos`: a 60 s RPC outage, the other faults down 5 s.
    pub fn full(fault: Fault) -> Self {
        Timing {
            before: Duration::from_secs(8),
            down: Duration::from_secs(if fault == Fault::RpcDown { 60 } else { 5 }),
            after: Duration::from_secs(6),
            recovery_limit: Duration::from_secs(240),
        }
    }

    /// The short version `make test` runs (the RPC down 15 s).
    pub fn short(fault: Fault) -> Self {
        Timing {
            before: Duration::from_secs(5),
            down: Duration::from_secs(if fault == Fault::RpcDown { 15 } else { 3 }),
            after: Duration::from_secs(3),
            recovery_limit: Duration::from_secs(180),
        }
    }
}

/// What one fault's run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The fault, as on its line.
    pub fault: String,
    /// Tasks submitted.
    pub tasks: usize,
    /// Submitted tasks the chain does not know.
    pub lost: usize,
    /// Tasks not ended by the recovery limit.
    pub stuck: usize,
    /// Tasks committed more than once.
    pub double_commits: usize,
    /// Canonical logs missing from the indexer.
    pub events_missing: usize,
    /// Indexer rows not on the canonical chain.
    pub events_extra: usize,
    /// Seconds from the end of the fault until every task had ended.
    pub recovered_secs: f64,
    /// `TaskManager`'s token balance minus escrow and pending payouts (wei; must be 0).
    pub escrow_gap: String,
    /// The stuck tasks by status (why they did not end).
    pub stuck_by_status: BTreeMap<String, usize>,
}

impl Report {
    /// Whether every count is zero.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.stuck == 0
            && self.double_commits == 0
            && self.events_missing == 0
            && self.events_extra == 0
            && self.escrow_gap == "0"
    }

    /// The line `make chaos` prints.
    pub fn line(&self) -> String {
        let mut l = format!(
            "chaos: {}: {} tasks, lost {}, stuck {}, double commits {}, events missing {}, extra {}, recovered in {:.1} s",
            self.fault,
            self.tasks,
            self.lost,
            self.stuck,
            self.double_commits,
            self.events_missing,
            self.events_extra,
            self.recovered_secs
        );
        if self.stuck > 0 {
            let by: Vec<String> = self
                .stuck_by_status
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            l.push_str(&format!(" (stuck: {})", by.join(", ")));
        }
        if self.escrow_gap != "0" {
            l.push_str(&format!(
                " (escrow off by {} wei: token balance != escrowed + payouts)",
                self.escrow_gap
            ));
        }
        l
    }
}

/// A TCP proxy in front of the RPC that can be taken down.
pub struct RpcProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl RpcProxy {
    /// Listens on a free local port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let target = upstream
            .strip_prefix("http://")
            .with_context(|| format!("RPC proxy: {upstream} is not an http:// URL"))?
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (d, c) = (down.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                if let Ok(mut v) = c.lock() {
                    v.retain(|h| !h.is_finished());
                    v.push(h);
                }
            }
        });
        Ok(Self {
            url,
            down,
            conns,
            accept,
        })
    }

    /// Takes the RPC down (open connections cut, new ones refused) or back up.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            if let Ok(mut v) = self.conns.lock() {
                for h in v.drain(..) {
                    h.abort();
                }
            }
        }
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set_down(true);
    }
}

/// A service process, killed (SIGKILL) on drop.
struct Service {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    fn start(&mut self, bin_dir: &Path) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let bin = bin_dir.join(&self.name);
        let child = Command::new(&bin)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("ETH_RPC_URL")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (is it built?)", bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash or an OOM kill would.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process has exited (a crash injection fired).
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs one fault on a fresh devnet. `bin_dir` holds the executor, verifier and indexer.
pub async fn run_fault(fault: Fault, timing: Timing, bin_dir: &Path) -> Result<Report> {
    // the devnet's files (every service's log) are kept when the fault lost something
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let work_dir = std::env::temp_dir().join(format!(
        "deepnode-chaos-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    let net = Devnet::start(DevnetConfig {
        workers: 2,
        validators: 1,
        response_window: 60,
        challenge_window: 6,
        work_dir: Some(work_dir.clone()),
        ..Default::default()
    })
    .await?;
    let proxy = RpcProxy::start(&net.rpc_url).await?;
    let chain = |dir: &Path| -> Vec<String> {
        let _ = std::fs::create_dir_all(dir);
        vec![
            "--rpc-url".into(),
            proxy.url.clone(),
            "--deployment".into(),
            net.deployment_path.display().to_string(),
        ]
    };
    let mut services: BTreeMap<&str, Service> = BTreeMap::new();
    for (i, name) in ["executor0", "executor1"].into_iter().enumerate() {
        let dir = net.work_dir.join(name);
        let mut args = chain(&dir);
        args.extend(crate::executor_args(&dir));
        let mut env = vec![("DN_PRIVATE_KEY".to_string(), key_hex(&net.workers[i]))];
        if i == 0 && fault == Fault::KillExecutorInCommit {
            env.push(("DN_EXECUTOR_CRASH_AFTER".into(), "submitted".into()));
        }
        services.insert(
            name,
            Service {
                name: "executor".into(),
                args,
                env,
                log: dir.join("executor.log"),
                child: None,
            },
        );
    }
    let vdir = net.work_dir.join("validator0");
    let mut vargs = chain(&vdir);
    vargs.extend(crate::verifier_args(&vdir));
    services.insert(
        "verifier",
        Service {
            name: "verifier".into(),
            args: vargs,
            env: vec![("DN_PRIVATE_KEY".into(), key_hex(&net.validators[0]))],
            log: vdir.join("verifier.log"),
            child: None,
        },
    );
    let idir = net.work_dir.join("indexer");
    let db = idir.join("db.sqlite");
    let port = crate::free_port()?;
    let mut iargs = chain(&idir);
    iargs.extend(
        [
            "--db",
            &db.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--confirmations",
            "1",
            "--poll-interval-ms",
            "200",
        ]
        .map(String::from),
    );
    services.insert(
        "indexer",
        Service {
            name: "indexer".into(),
            args: iargs,
            env: Vec::new(),
            log: idir.join("indexer.log"),
            child: None,
        },
    );
    for s in services.values_mut() {
        s.start(bin_dir)?;
    }
    net.wait_validators_joined(&[0], Duration::from_secs(120))
        .await?;

    // The load: two digits tasks a second from the user, straight to anvil.
    let submitted: Arc<Mutex<Vec<U256>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = {
        let (submitted, stop) = (submitted.clone(), stop.clone());
        let inputs: Vec<Vec<u8>> = digits::heldout()?
            .iter()
            .take(2)
            .map(|s| digits::encode_input(&s.pixels))
            .collect::<Result<_>>()?;
        let user = net.provider(&net.user);
        let (tm, model, price) = (
            net.deployment.task_manager,
            net.model_id,
            net.config.model_price_wei,
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match crate::submit_tasks(&user, tm, model, price, &inputs).await {
                    Ok(ids) => submitted.lock().map(|mut v| v.extend(ids)).unwrap_or(()),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "chaos load: submission failed")
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    tokio::time::sleep(timing.before).await;

    // The fault.
    let worker0 = net.workers[0].address();
    let reader = net.provider(&net.user);
    let tm = ITaskManager::new(net.deployment.task_manager, &reader);
    let started = Instant::now();
    match fault {
        Fault::KillExecutor => {
            // wait for a task assigned to it and not committed yet
            loop {
                let ids: Vec<U256> = submitted.lock().map(|v| v.clone()).unwrap_or_default();
                let mut busy = false;
                for id in ids.iter().rev().take(8) {
                    let t = tm.getTask(*id).call().await?;
                    if t.worker == worker0
                        && TaskStatus::from_u8(t.status) == Some(TaskStatus::Assigned)
                    {
                        busy = true;
                        break;
                    }
                }
                if busy || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            down(&mut services, "executor0", timing.down, bin_dir).await?;
        }
        Fault::KillExecutorInCommit => {
            let s = services.get_mut("executor0").context("executor0")?;
            let deadline = Instant::now() + Duration::from_secs(90);
            while !s.exited() {
                if Instant::now() > deadline {
                    bail!("executor0 never reached its crash point (no commit within 90 s)");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            s.kill9();
            s.env.retain(|(k, _)| k != "DN_EXECUTOR_CRASH_AFTER");
            tokio::time::sleep(timing.down).await;
            s.start(bin_dir)?;
        }
        Fault::KillIndexer => down(&mut services, "indexer", timing.down, bin_dir).await?,
        Fault::KillVerifier => down(&mut services, "verifier", timing.down, bin_dir).await?,
        Fault::RpcDown => {
            proxy.set_down(true);
            tokio::time::sleep(timing.down).await;
            proxy.set_down(false);
        }
        Fault::Reorg3 => {
            use alloy::providers::ext::AnvilApi;
            net.provider(&net.deployer)
                .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions {
                    depth: 3,
                    tx_block_pairs: Vec::new(),
                })
                .await
                .context("anvil_reorg")?;
        }
    }
    let fault_end = Instant::now();
    tokio::time::sleep(timing.after).await;
    stop.store(true, Ordering::SeqCst);
    if tokio::time::timeout(Duration::from_secs(90), &mut load)
        .await
        .is_err()
    {
        load.abort();
        tracing::warn!("chaos load: a submission did not end within 90 s; abandoned");
    }
    let mut ids: Vec<U256> = submitted.lock().map(|v| v.clone()).unwrap_or_default();
    let mut orphaned = 0;
    if fault == Fault::Reorg3 {
        // submissions in the replaced blocks are gone from the chain (a user would submit them
        // again): the tasks to account for are those on the canonical chain
        let canonical: BTreeSet<U256> = net
            .events::<ITaskManager::TaskSubmitted>(net.deployment.task_manager)
            .await?
            .into_iter()
            .map(|e| e.taskId)
            .collect();
        orphaned = ids.iter().filter(|id| !canonical.contains(id)).count();
        ids = canonical.into_iter().collect();
    }

    // Recovery: every task ends (finalized or refunded).
    let deadline = fault_end + timing.recovery_limit;
    let mut open: BTreeSet<U256> = ids.iter().copied().collect();
    let lost = loop {
        let mut still = BTreeSet::new();
        let mut lost = 0usize;
        for id in &open {
            let t = tm.getTask(*id).call().await?;
            match TaskStatus::from_u8(t.status) {
                Some(TaskStatus::Finalized | TaskStatus::Refunded) => {}
                Some(TaskStatus::None) | None => {
                    lost += 1;
                    still.insert(*id);
                }
                _ => {
                    still.insert(*id);
                }
            }
        }
        open = still;
        if open.len() == lost || Instant::now() > deadline {
            break lost;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let recovered_secs = fault_end.elapsed().as_secs_f64();
    let stuck = open.len() - lost;
    let mut stuck_by_status: BTreeMap<String, usize> = BTreeMap::new();
    for id in &open {
        let t = tm.getTask(*id).call().await?;
        let status = TaskStatus::from_u8(t.status).map_or("unknown", TaskStatus::as_str);
        *stuck_by_status.entry(status.to_string()).or_default() += 1;
    }

    // Double commits, from the chain.
    let committed = net
        .events::<ITaskManager::ResultsCommitted>(net.deployment.task_manager)
        .await?;
    let mut commits: BTreeMap<U256, usize> = BTreeMap::new();
    for c in committed {
        for id in c.taskIds {
            *commits.entry(id).or_default() += 1;
        }
    }
    let double_commits = commits.values().filter(|n| **n > 1).count();

    // The indexer's events against the chain, up to its cursor once it reached the head.
    let (missing, extra) = compare_events(&net, &db, port).await?;

    // Escrow and payouts add up, at one block.
    let gap = escrow_gap(&net).await?;
    drop(services);
    let mut name = fault.name(timing.down);
    if fault == Fault::Reorg3 {
        name = format!("{name}, {orphaned} submissions orphaned");
    }
    let report = Report {
        fault: name,
        tasks: ids.len(),
        lost,
        stuck,
        double_commits,
        events_missing: missing,
        events_extra: extra,
        recovered_secs,
        escrow_gap: gap,
        stuck_by_status,
    };
    drop(net);
    if report.clean() {
        let _ = std::fs::remove_dir_all(&work_dir);
    } else {
        eprintln!(
            "chaos: {}: the devnet's logs are kept in {}",
            report.fault,
            work_dir.display()
        );
    }
    Ok(report)
}

/// Kills `name`, waits `for_`, starts it again.
async fn down(
    services: &mut BTreeMap<&str, Service>,
    name: &str,
    for_: Duration,
    bin_dir: &Path,
) -> Result<()> {
    let s = services
        .get_mut(name)
        .with_context(|| format!("no service {name}"))?;
    s.kill9();
    tokio::time::sleep(for_).await;
    s.start(bin_dir)
}

/// (missing, extra) events of the indexer against the canonical chain, once its cursor is
/// within its confirmations of the head.
async fn compare_events(net: &Devnet, db: &Path, port: u16) -> Result<(usize, usize)> {
    let http = reqwest::Client::new();
    let head = net.provider(&net.user).get_block_number().await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let indexed = loop {
        let h: Option<serde_json::Value> = match http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        let indexed = h
            .as_ref()
            .and_then(|h| h["indexed_block"].as_u64())
            .unwrap_or(0);
        if indexed + 1 >= head {
            break indexed;
        }
        if Instant::now() > deadline {
            bail!("the indexer did not reach the head ({indexed} of {head}) within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let d = &net.deployment;
    let followed = vec![
        d.task_manager,
        d.model_registry,
        d.staking,
        d.settlement,
        d.audit_manager,
    ];
    let chain_logs = net
        .provider(&net.user)
        .get_logs(
            &Filter::new()
                .address(followed)
                .from_block(d.start_block)
                .to_block(indexed),
        )
        .await?;
    let on_chain: BTreeSet<(u64, u64, B256)> = chain_logs
        .iter()
        .filter_map(|l| Some((l.block_number?, l.log_index?, l.transaction_hash?)))
        .collect();
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT block_number, log_index, tx_hash FROM events WHERE block_number <= ?",
    )
    .bind(i64::try_from(indexed).unwrap_or(i64::MAX))
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    let stored: BTreeSet<(u64, u64, B256)> = rows
        .into_iter()
        .filter_map(|(b, i, h)| {
            Some((
                u64::try_from(b).ok()?,
                u64::try_from(i).ok()?,
                h.parse().ok()?,
            ))
        })
        .collect();
    Ok((
        on_chain.difference(&stored).count(),
        stored.difference(&on_chain).count(),
    ))
}

/// `balanceOf(TaskManager) - escrowed() - Σ payoutOf(a)` over every account that can hold a
/// payout, read at one block, as a decimal string ("0" when it adds up).
async fn escrow_gap(net: &Devnet) -> Result<String> {
    let p = net.provider(&net.user);
    let at = BlockId::number(p.get_block_number().await?);
    let d = &net.deployment;
    let tm = ITaskManager::new(d.task_manager, &p);
    let balance = DNToken::new(d.token, &p)
        .balanceOf(d.task_manager)
        .block(at)
        .call()
        .await?;
    let mut owed = tm.escrowed().block(at).call().await?;
    let mut accounts: BTreeSet<Address> = [
        net.user.address(),
        net.developer.address(),
        net.deployer.address(),
        d.treasury,
        d.validator_pool,
    ]
    .into();
    accounts.extend(net.workers.iter().map(|w| w.address()));
    accounts.extend(net.validators.iter().map(|v| v.address()));
    for a in accounts {
        owed += tm.payoutOf(a).block(at).call().await?;
    }
    Ok(if balance >= owed {
        (balance - owed).to_string()
    } else {
        format!("-{}", owed - balance)
    })
}
