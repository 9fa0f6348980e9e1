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
use protocol::bindings::{DNToken, IAuditManager, ISettlement, IStaking, ITaskManager, TaskStatus};
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
    /// An executor aborts right after broadcasting its first `finalizeBatch`
    /// (`DN_EXECUTOR_CRASH_AFTER=finalizeBatch`); restarted after `down`.
    KillExecutorInFinalize,
    /// `kill -9` of the indexer while it follows the chain; restarted after `down`.
    KillIndexer,
    /// `kill -9` of the verifier while it audits; restarted after `down`.
    KillVerifier,
    /// The verifier aborts right after broadcasting its first `submitVerdicts`
    /// (`DN_VERIFIER_CRASH_AFTER=verdicts-sent`); restarted after `down`.
    KillVerifierInVerdicts,
    /// The verifier aborts right after broadcasting its first epoch report
    /// (`DN_VERIFIER_CRASH_AFTER=report-sent`); restarted after `down`.
    KillVerifierInReport,
    /// The RPC unreachable for `down`: the proxy drops every connection and refuses new ones.
    RpcDown,
    /// The RPC slow for `down`: every request waits [`SLOW_RPC`] before it is forwarded.
    RpcSlow,
    /// The RPC erroring for `down`: every other new connection is answered `503 Service
    /// Unavailable`, the others are cut after [`ERRORING_RPC_CUT`] (a reset mid request).
    RpcErrors,
    /// A chain reorganisation of `depth` blocks under every service, the indexer following at
    /// `confirmations` (`anvil_reorg`: the last blocks replaced by empty ones; what they held is
    /// gone from the chain).
    Reorg {
        /// Blocks replaced.
        depth: u64,
        /// The indexer's `--confirmations`.
        confirmations: u64,
    },
    /// The blob store unreachable for `down` (every input is a blob reference and every output
    /// is published there).
    BlobDown,
    /// The indexer's database on a tmpfs that fills up; `down` later it is enlarged (the fix) and
    /// the indexer restarted if it stopped. Needs root (mount).
    DiskFull,
    /// A line in the middle of an executor's journal corrupted while it is stopped: it must
    /// refuse to start with one line naming the file and line; `down` later the line is
    /// restored and it resumes.
    CorruptJournal,
}

/// How long a slow RPC holds each request.
pub const SLOW_RPC: Duration = Duration::from_millis(1500);

/// How long an erroring RPC lets a forwarded connection live.
pub const ERRORING_RPC_CUT: Duration = Duration::from_millis(500);

impl Fault {
    /// Every fault, in the order `make chaos` runs them.
    pub const ALL: [Fault; 17] = [
        Fault::KillExecutor,
        Fault::KillExecutorInCommit,
        Fault::KillExecutorInFinalize,
        Fault::KillIndexer,
        Fault::KillVerifier,
        Fault::KillVerifierInVerdicts,
        Fault::KillVerifierInReport,
        Fault::RpcDown,
        Fault::RpcSlow,
        Fault::RpcErrors,
        Fault::Reorg {
            depth: 1,
            confirmations: 0,
        },
        Fault::Reorg {
            depth: 1,
            confirmations: 2,
        },
        Fault::Reorg {
            depth: 3,
            confirmations: 0,
        },
        Fault::Reorg {
            depth: 3,
            confirmations: 2,
        },
        Fault::BlobDown,
        Fault::DiskFull,
        Fault::CorruptJournal,
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
            Fault::KillExecutorInFinalize => {
                format!("kill -9 executor with its finalizeBatch in flight, restart after {s} s")
            }
            Fault::KillIndexer => format!("kill -9 indexer mid range, restart after {s} s"),
            Fault::KillVerifier => format!("kill -9 verifier mid audits, restart after {s} s"),
            Fault::KillVerifierInVerdicts => {
                format!("kill -9 verifier with its verdict batch in flight, restart after {s} s")
            }
            Fault::KillVerifierInReport => {
                format!("kill -9 verifier with its epoch report in flight, restart after {s} s")
            }
            Fault::RpcDown => format!("RPC unreachable for {s} s"),
            Fault::RpcSlow => format!(
                "RPC answering {:.1} s late for {s} s",
                SLOW_RPC.as_secs_f64()
            ),
            Fault::RpcErrors => format!("RPC answering 503 or resetting connections for {s} s"),
            Fault::Reorg {
                depth,
                confirmations,
            } => format!("reorg of depth {depth} (indexer at {confirmations} confirmations)"),
            Fault::BlobDown => format!("blob store unreachable for {s} s"),
            Fault::DiskFull => format!("indexer disk full, freed after {s} s"),
            Fault::CorruptJournal => {
                format!("corrupted executor journal line, restored after {s} s")
            }
        }
    }

    /// The `--faults` names, each with the faults it selects.
    pub const NAMES: [(&'static str, &'static [Fault]); 16] = [
        ("executor", &[Fault::KillExecutor]),
        ("executor-commit", &[Fault::KillExecutorInCommit]),
        ("executor-finalize", &[Fault::KillExecutorInFinalize]),
        ("indexer", &[Fault::KillIndexer]),
        ("verifier", &[Fault::KillVerifier]),
        ("verifier-verdicts", &[Fault::KillVerifierInVerdicts]),
        ("verifier-report", &[Fault::KillVerifierInReport]),
        ("rpc", &[Fault::RpcDown]),
        ("rpc-slow", &[Fault::RpcSlow]),
        ("rpc-errors", &[Fault::RpcErrors]),
        (
            "reorg",
            &[
                Fault::Reorg {
                    depth: 1,
                    confirmations: 0,
                },
                Fault::Reorg {
                    depth: 1,
                    confirmations: 2,
                },
                Fault::Reorg {
                    depth: 3,
                    confirmations: 0,
                },
                Fault::Reorg {
                    depth: 3,
                    confirmations: 2,
                },
            ],
        ),
        (
            "reorg-1",
            &[
                Fault::Reorg {
                    depth: 1,
                    confirmations: 0,
                },
                Fault::Reorg {
                    depth: 1,
                    confirmations: 2,
                },
            ],
        ),
        (
            "reorg-3",
            &[
                Fault::Reorg {
                    depth: 3,
                    confirmations: 0,
                },
                Fault::Reorg {
                    depth: 3,
                    confirmations: 2,
                },
            ],
        ),
        ("blob", &[Fault::BlobDown]),
        ("disk-full", &[Fault::DiskFull]),
        ("journal", &[Fault::CorruptJournal]),
    ];

    /// The faults a `--faults` name selects (`reorg` is all four reorgs).
    pub fn parse(s: &str) -> Result<Vec<Fault>, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| f.to_vec())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown fault {s:?} (one of: {})", names.join(", "))
            })
    }

    /// Which service, crash point environment variable and stage a crash fault arms.
    fn crash_point(&self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Fault::KillExecutorInCommit => {
                Some(("executor0", "DN_EXECUTOR_CRASH_AFTER", "submitted"))
            }
            Fault::KillExecutorInFinalize => {
                Some(("executor0", "DN_EXECUTOR_CRASH_AFTER", "finalizeBatch"))
            }
            Fault::KillVerifierInVerdicts => {
                Some(("verifier", "DN_VERIFIER_CRASH_AFTER", "verdicts-sent"))
            }
            Fault::KillVerifierInReport => {
                Some(("verifier", "DN_VERIFIER_CRASH_AFTER", "report-sent"))
            }
            _ => None,
        }
    }
}

/// How long the load waits for a submission's receipt before it sends the next one.
pub const LOAD_RECEIPT_WAIT: Duration = Duration::from_secs(8);

/// How long each phase lasts.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Tasks streamed before the fault.
    pub before: Duration,
    /// How long the fault lasts (killed process down, RPC unreachable).
    pub down: Duration,
    /// Tasks streamed after the fault ends (longer after a reorg: the submission in flight
    /// when it struck was dropped with its block, and the load waits [`LOAD_RECEIPT_WAIT`] for
    /// its receipt before sending the next).
    pub after: Duration,
    /// Most time every task may take to end after the fault.
    pub recovery_limit: Duration,
}

impl Timing {
    /// `make chaos`: a 60 s RPC outage, 30 s of a slow or erroring RPC and of the blob store
    /// down, the other faults down 5 s.
    pub fn full(fault: Fault) -> Self {
        let down = match fault {
            Fault::RpcDown => 60,
            Fault::RpcSlow | Fault::RpcErrors | Fault::BlobDown => 30,
            Fault::DiskFull => 10,
            _ => 5,
        };
        Timing {
            before: Duration::from_secs(8),
            down: Duration::from_secs(down),
            after: Duration::from_secs(if matches!(fault, Fault::Reorg { .. }) {
                16
            } else {
                6
            }),
            recovery_limit: Duration::from_secs(240),
        }
    }

    /// The short version `make test` runs (the RPC down 15 s, the blob store 10 s).
    pub fn short(fault: Fault) -> Self {
        let down = match fault {
            Fault::RpcDown => 15,
            Fault::RpcSlow | Fault::RpcErrors | Fault::BlobDown => 10,
            _ => 3,
        };
        Timing {
            before: Duration::from_secs(5),
            down: Duration::from_secs(down),
            after: Duration::from_secs(if matches!(fault, Fault::Reorg { .. }) {
                13
            } else {
                3
            }),
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
    /// Ended epochs whose on-chain report (posted by the verifier) was compared with the
    /// indexer's computed one.
    pub epochs_checked: usize,
    /// Of those, the ones whose roots, total or model status hash differ.
    pub epochs_disagree: usize,
    /// Ended epochs with no report on-chain, or none computed by the indexer, by the deadline.
    pub epochs_unreported: usize,
    /// Disputes opened (every node is honest: a fault must not make one look like a cheat).
    pub disputes: usize,
    /// Stakes slashed.
    pub slashes: usize,
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
            && self.epochs_disagree == 0
            && self.epochs_unreported == 0
            && self.disputes == 0
            && self.slashes == 0
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
        if self.epochs_disagree > 0 || self.epochs_unreported > 0 {
            l.push_str(&format!(
                " (epoch reports: {} of {} differ between indexer and verifier, {} not reported)",
                self.epochs_disagree, self.epochs_checked, self.epochs_unreported
            ));
        }
        if self.disputes > 0 || self.slashes > 0 {
            l.push_str(&format!(
                " (honest nodes punished: {} disputes, {} slashes)",
                self.disputes, self.slashes
            ));
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

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards everything.
    Up,
    /// Open connections cut, new ones refused.
    Down,
    /// Every chunk from the client waits [`SLOW_RPC`] before it is forwarded.
    Slow,
    /// Every other new connection answered `503`; the others cut after [`ERRORING_RPC_CUT`].
    Errors,
}

/// A TCP proxy in front of the RPC (or the blob store) that can be taken down, slowed or made
/// to fail.
pub struct RpcProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    mode: Arc<Mutex<ProxyMode>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

const UNAVAILABLE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

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
        let mode = Arc::new(Mutex::new(ProxyMode::Up));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (m, c) = (mode.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            let mut accepted = 0u64;
            while let Ok((inbound, _)) = listener.accept().await {
                accepted += 1;
                let now = m.lock().map(|m| *m).unwrap_or(ProxyMode::Down);
                if now == ProxyMode::Down {
                    drop(inbound);
                    continue;
                }
                let h = tokio::spawn(relay(inbound, target.clone(), m.clone(), accepted));
                if let Ok(mut v) = c.lock() {
                    v.retain(|h| !h.is_finished());
                    v.push(h);
                }
            }
        });
        Ok(Self {
            url,
            mode,
            conns,
            accept,
        })
    }

    /// Takes the RPC down (open connections cut, new ones refused) or back up.
    pub fn set_down(&self, down: bool) {
        self.set_mode(if down { ProxyMode::Down } else { ProxyMode::Up });
    }

    /// Switches the mode; going down or erroring cuts the open connections (clients reconnect
    /// into the new mode).
    pub fn set_mode(&self, mode: ProxyMode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
        if matches!(mode, ProxyMode::Down | ProxyMode::Errors) {
            if let Ok(mut v) = self.conns.lock() {
                for h in v.drain(..) {
                    h.abort();
                }
            }
        }
    }
}

/// One proxied connection, in the mode of the moment.
async fn relay(mut inbound: TcpStream, target: String, mode: Arc<Mutex<ProxyMode>>, n: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let now = || mode.lock().map(|m| *m).unwrap_or(ProxyMode::Down);
    let erroring = now() == ProxyMode::Errors;
    if erroring && n.is_multiple_of(2) {
        // read the request (or what arrives of it) before answering, so the client sees the
        // status rather than a reset
        let mut buf = vec![0u8; 64 << 10];
        let _ = tokio::time::timeout(Duration::from_secs(2), inbound.read(&mut buf)).await;
        let _ = inbound.write_all(UNAVAILABLE).await;
        let _ = inbound.shutdown().await;
        return;
    }
    let Ok(out) = TcpStream::connect(&target).await else {
        return;
    };
    let (mut ci, mut co) = inbound.into_split();
    let (mut ui, mut uo) = out.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match ci.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if now() == ProxyMode::Slow {
                tokio::time::sleep(SLOW_RPC).await;
            }
            if uo.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = uo.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut ui, &mut co).await;
        let _ = co.shutdown().await;
    };
    let both = async {
        tokio::join!(up, down);
    };
    if erroring {
        let _ = tokio::time::timeout(ERRORING_RPC_CUT, both).await;
    } else {
        both.await;
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

/// Settlement epochs in the chaos devnet (seconds): several end during one fault, so the
/// verifier posts reports under it and the harness compares them with the indexer's.
pub const EPOCH_SECS: u64 = 20;

/// A child process killed on drop (the blob store).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tmpfs mounted on a directory (the full-disk fault), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "the full-disk fault mounts a tmpfs and needs root: mount -t tmpfs on {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self(dir.to_path_buf()))
    }

    /// Bytes in use.
    fn used(&self) -> Result<u64> {
        let out = Command::new("df")
            .args(["-B1", "--output=used"])
            .arg(&self.0)
            .output()
            .context("running df")?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("df of {}", self.0.display()))
    }

    fn resize(&self, bytes: u64) -> Result<()> {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .output()
            .context("running mount -o remount")?;
        if !out.status.success() {
            bail!(
                "resizing the tmpfs on {} to {bytes} bytes: {}",
                self.0.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// The last lines of a service's log (for an error that needs them).
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Runs one fault on a fresh devnet. `bin_dir` holds the executor, verifier, indexer and blob
/// store binaries. The devnet's directory (every service's log) is removed after a clean run
/// unless `DN_CHAOS_KEEP_LOGS` is set.
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
        // the verifier waits out an unavailable blob store only while more than a minute of the
        // challenge window is left
        challenge_window: if fault == Fault::BlobDown { 120 } else { 6 },
        epoch_length: Some(EPOCH_SECS),
        work_dir: Some(work_dir.clone()),
        ..Default::default()
    })
    .await?;
    let proxy = RpcProxy::start(&net.rpc_url).await?;
    // The blob store, behind its own proxy: the services fetch and publish through the proxy,
    // the user uploads straight to the store.
    let blobs = if fault == Fault::BlobDown {
        let dir = net.work_dir.join("blobs");
        std::fs::create_dir_all(&dir)?;
        let (child, direct) = crate::spawn_blobstore(
            &bin_dir.join("blobstore"),
            &dir,
            &net.work_dir.join("blobstore.log"),
        )?;
        let guard = ChildGuard(child);
        let proxied = RpcProxy::start(&direct).await?;
        Some((guard, direct, proxied))
    } else {
        None
    };
    let chain = |dir: &Path| -> Vec<String> {
        let _ = std::fs::create_dir_all(dir);
        vec![
            "--rpc-url".into(),
            proxy.url.clone(),
            "--deployment".into(),
            net.deployment_path.display().to_string(),
        ]
    };
    let crash = fault.crash_point();
    let crash_env = |service: &str| -> Vec<(String, String)> {
        crash
            .filter(|(s, _, _)| *s == service)
            .map(|(_, k, v)| (k.to_string(), v.to_string()))
            .into_iter()
            .collect()
    };
    let mut services: BTreeMap<&str, Service> = BTreeMap::new();
    for (i, name) in ["executor0", "executor1"].into_iter().enumerate() {
        let dir = net.work_dir.join(name);
        let mut args = chain(&dir);
        args.extend(crate::executor_args(&dir));
        if let Some((_, _, proxied)) = &blobs {
            // every output published to the store; an input fetch may wait out the outage
            args.extend(
                [
                    "--blob-store",
                    &proxied.url,
                    "--inline-output-bytes",
                    "0",
                    "--blob-timeout-secs",
                    "45",
                ]
                .map(String::from),
            );
        }
        let mut env = vec![("DN_PRIVATE_KEY".to_string(), key_hex(&net.workers[i]))];
        env.extend(crash_env(name));
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
    let mut venv = vec![("DN_PRIVATE_KEY".to_string(), key_hex(&net.validators[0]))];
    venv.extend(crash_env("verifier"));
    services.insert(
        "verifier",
        Service {
            name: "verifier".into(),
            args: vargs,
            env: venv,
            log: vdir.join("verifier.log"),
            child: None,
        },
    );
    let idir = net.work_dir.join("indexer");
    // the database on its own tmpfs in the disk fault (the log stays outside it)
    let ddir = idir.join("data");
    std::fs::create_dir_all(&ddir)?;
    let tmpfs = if fault == Fault::DiskFull {
        Some(Tmpfs::mount(&ddir, 256 << 20)?)
    } else {
        None
    };
    let db = ddir.join("db.sqlite");
    let port = crate::free_port()?;
    let confirmations = match fault {
        Fault::Reorg { confirmations, .. } => confirmations,
        _ => 1,
    };
    let mut iargs = chain(&idir);
    iargs.extend(
        [
            "--db",
            &db.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--confirmations",
            &confirmations.to_string(),
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

    // The load: two digits tasks a second from the user, straight to anvil (inputs as blob
    // references to the proxied store in the blob fault).
    let mut inputs: Vec<Vec<u8>> = digits::heldout()?
        .iter()
        .take(2)
        .map(|s| digits::encode_input(&s.pixels))
        .collect::<Result<_>>()?;
    if let Some((_, direct, proxied)) = &blobs {
        let client = blobstore::Client::new(Duration::from_secs(10), 1 << 20)
            .map_err(|e| anyhow::anyhow!("blob client: {e}"))?;
        for input in inputs.iter_mut() {
            let mut r = client
                .put(direct, input.clone())
                .await
                .map_err(|e| anyhow::anyhow!("uploading a load input: {e}"))?;
            r.url = r.url.replacen(direct.as_str(), &proxied.url, 1);
            *input = r.encode();
        }
    }
    let submitted: Arc<Mutex<Vec<U256>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = {
        let (submitted, stop) = (submitted.clone(), stop.clone());
        let (rpc_url, user) = (net.rpc_url.clone(), net.user.clone());
        let (tm, model, price) = (
            net.deployment.task_manager,
            net.model_id,
            net.config.model_price_wei,
        );
        tokio::spawn(async move {
            let connect = || {
                protocol::rpc::wallet_builder()
                    .wallet(alloy::network::EthereumWallet::from(user.clone()))
                    .connect_http(rpc_url.parse().expect("devnet URL"))
                    .erased()
            };
            let mut provider = connect();
            while !stop.load(Ordering::SeqCst) {
                let sent = tokio::time::timeout(
                    LOAD_RECEIPT_WAIT,
                    crate::submit_tasks(&provider, tm, model, price, &inputs),
                )
                .await;
                match sent {
                    Ok(Ok(ids)) => submitted.lock().map(|mut v| v.extend(ids)).unwrap_or(()),
                    failed => {
                        let why = match failed {
                            Ok(Err(e)) => format!("{e:#}"),
                            _ => format!("no receipt within {LOAD_RECEIPT_WAIT:?}"),
                        };
                        tracing::warn!(error = %why, "chaos load: submission failed; reconnecting");
                        // a fresh provider reads the account's nonce again (a reorg rolls it back)
                        provider = connect();
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
        Fault::KillExecutorInCommit
        | Fault::KillExecutorInFinalize
        | Fault::KillVerifierInVerdicts
        | Fault::KillVerifierInReport => {
            let (name, var, stage) = crash.context("a crash fault names its crash point")?;
            let s = services.get_mut(name).context("crash service")?;
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s.exited() {
                if Instant::now() > deadline {
                    bail!("{name} never reached its crash point {var}={stage} within 120 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            s.kill9();
            s.env.retain(|(k, _)| k != var);
            tokio::time::sleep(timing.down).await;
            s.start(bin_dir)?;
        }
        Fault::KillIndexer => down(&mut services, "indexer", timing.down, bin_dir).await?,
        Fault::KillVerifier => down(&mut services, "verifier", timing.down, bin_dir).await?,
        Fault::RpcDown | Fault::RpcSlow | Fault::RpcErrors => {
            proxy.set_mode(match fault {
                Fault::RpcDown => ProxyMode::Down,
                Fault::RpcSlow => ProxyMode::Slow,
                _ => ProxyMode::Errors,
            });
            tokio::time::sleep(timing.down).await;
            proxy.set_mode(ProxyMode::Up);
        }
        Fault::Reorg { depth, .. } => {
            use alloy::providers::ext::AnvilApi;
            net.provider(&net.deployer)
                .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions {
                    depth,
                    tx_block_pairs: Vec::new(),
                })
                .await
                .context("anvil_reorg")?;
        }
        Fault::BlobDown => {
            let (_, _, proxied) = blobs.as_ref().context("blob store")?;
            proxied.set_down(true);
            tokio::time::sleep(timing.down).await;
            proxied.set_down(false);
        }
        Fault::DiskFull => {
            let fs = tmpfs.as_ref().context("tmpfs")?;
            let s = services.get_mut("indexer").context("indexer")?;
            // a little room left: the indexer's next writes fill it
            fs.resize(fs.used()? + (128 << 10))?;
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                let log = std::fs::read_to_string(&s.log).unwrap_or_default();
                if log.contains("disk is full") || s.exited() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "the indexer said nothing of a full disk within 90 s; its log ends:\n{}",
                        log_tail(&s.log)
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokio::time::sleep(timing.down).await;
            fs.resize(256 << 20)?;
            if s.exited() {
                s.kill9();
                s.start(bin_dir)?;
            }
        }
        Fault::CorruptJournal => {
            let s = services.get_mut("executor0").context("executor0")?;
            let journal = net.work_dir.join("executor0").join("journal.jsonl");
            // a line in the middle: wait for the executor to have journaled a few records
            let deadline = Instant::now() + Duration::from_secs(90);
            while std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count()) < 3 {
                if Instant::now() > deadline {
                    bail!("{} has fewer than 3 lines after 90 s", journal.display());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            s.kill9();
            let original = std::fs::read_to_string(&journal)
                .with_context(|| format!("reading {}", journal.display()))?;
            let mut lines: Vec<&str> = original.lines().collect();
            lines[1] = "{\"computed\":{\"task_id\":";
            std::fs::write(&journal, lines.join("\n") + "\n")?;
            s.start(bin_dir)?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.exited() {
                if Instant::now() > deadline {
                    bail!(
                        "the executor kept running on a corrupted journal; its log ends:\n{}",
                        log_tail(&s.log)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let log = std::fs::read_to_string(&s.log).unwrap_or_default();
            if !log.contains("line 2 is not a valid record") {
                bail!(
                    "the executor stopped without naming the corrupted line; its log ends:\n{}",
                    log_tail(&s.log)
                );
            }
            tokio::time::sleep(timing.down).await;
            std::fs::write(&journal, &original)?;
            s.kill9();
            s.start(bin_dir)?;
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
    if matches!(fault, Fault::Reorg { .. }) {
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
    let (missing, extra) = compare_events(&net, &db, port, confirmations).await?;

    // The verifier's posted epoch reports against the indexer's computed ones.
    let (epochs_checked, epochs_disagree, epochs_unreported) =
        compare_epochs(&net, port, Duration::from_secs(120)).await?;

    // Every node is honest: no dispute, no slash.
    let disputes = net
        .events::<IAuditManager::DisputeOpened>(net.deployment.audit_manager)
        .await?
        .len();
    let slashes = net
        .events::<IStaking::Slashed>(net.deployment.staking)
        .await?
        .len();

    // Escrow and payouts add up, at one block.
    let gap = escrow_gap(&net).await?;
    drop(services);
    drop(tmpfs);
    drop(blobs);
    let mut name = fault.name(timing.down);
    if matches!(fault, Fault::Reorg { .. }) {
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
        epochs_checked,
        epochs_disagree,
        epochs_unreported,
        disputes,
        slashes,
    };
    drop(net);
    if report.clean() && std::env::var_os("DN_CHAOS_KEEP_LOGS").is_none() {
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

/// (checked, differing, unreported): every epoch ended before now whose report the verifier
/// posted, against the indexer's computed report (`GET /epochs/{n}`), waiting up to `wait` for
/// both to exist.
async fn compare_epochs(net: &Devnet, port: u16, wait: Duration) -> Result<(usize, usize, usize)> {
    let p = net.provider(&net.user);
    let settlement = ISettlement::new(net.deployment.settlement, &p);
    let current = settlement.currentEpoch().call().await?;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + wait;
    let (mut checked, mut differ, mut unreported) = (0, 0, 0);
    for e in 0..current {
        loop {
            let rec = settlement.epochRecord(e).call().await?;
            let computed: Option<serde_json::Value> = match http
                .get(format!("http://127.0.0.1:{port}/epochs/{e}"))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.json().await.ok(),
                _ => None,
            };
            if let (true, Some(c)) = (rec.postedAt != 0, computed) {
                let r = &c["report"];
                let same = |field: &str, on_chain: String| {
                    r[field]
                        .as_str()
                        .is_some_and(|v| v.eq_ignore_ascii_case(&on_chain))
                };
                checked += 1;
                if !(same("rewardsRoot", rec.rewardsRoot.to_string())
                    && same("trustRoot", rec.trustRoot.to_string())
                    && same("modelStatusHash", rec.modelStatusHash.to_string())
                    && same("totalRewards", rec.totalRewards.to_string()))
                {
                    tracing::warn!(epoch = e, indexer = %r, "the posted report differs from the indexer's");
                    differ += 1;
                }
                break;
            }
            if Instant::now() > deadline {
                tracing::warn!(
                    epoch = e,
                    posted = rec.postedAt != 0,
                    "epoch not reported on-chain or not computed by the indexer in time"
                );
                unreported += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok((checked, differ, unreported))
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
async fn compare_events(
    net: &Devnet,
    db: &Path,
    port: u16,
    confirmations: u64,
) -> Result<(usize, usize)> {
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
        if indexed + confirmations >= head {
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
        d.probe_registry,
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
