//! The indexer under load (`make bench`, bench/run.sh): a synthetic history of 100,000 task
//! lifecycles (submit, assign, batched commits, finalize) of a few hundred workers is stored in a
//! fresh SQLite file through the real ingestion code (`Db::index_range`, range by range like the
//! follower's `--batch-blocks`), timing only the storing; then the REST API is served on
//! 127.0.0.1 (per-IP rate limit off) for an external load generator.
//!
//! Prints
//!   bench-raw: indexer-backfill <events/s> events/s <events> events <secs> s
//!   bench-raw: indexer-rss <MiB> MiB            (peak RSS, VmHWM, after the backfill)
//!   bench-raw: rest-listening http://127.0.0.1:<port> <a worker address>
//!   bench-raw: indexer-rss <MiB> MiB            (peak RSS when serving ends)
//! and serves until stdin closes or `--serve-secs N` elapse, whichever comes first.
//! `--tasks N`, `--range-blocks N` change the history's size and the blocks per stored range;
//! `--db-dir DIR` keeps the database (DIR/indexer.sqlite) for a look at its query plans.

#[path = "../tests/common/mod.rs"]
mod common;

use alloy::primitives::{Address, B256, U256};
use common::*;
use indexer::ingest::RawLog;
use indexer::limits::{self, Limits};
use protocol::bindings::{IModelRegistry as M, IStaking as S, ITaskManager as T};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// Workers staked and opted in to the model.
const WORKERS: usize = 200;
/// Tasks submitted and assigned per block.
const PER_BLOCK: u64 = 150;
/// A worker commits what it has pending every this many blocks (staggered by worker), so a
/// batch holds about PER_BLOCK * COMMIT_EVERY / WORKERS tasks (6).
const COMMIT_EVERY: u64 = 8;
/// Blocks between a batch commit and the finalization of its tasks.
const FINALIZE_AFTER: u64 = 2;

fn worker(i: usize) -> Address {
    Address::left_padding_from(&(0x1000_0000u64 + i as u64).to_be_bytes())
}

/// Produces the history block by block, so only a range of it is ever in memory (the peak RSS
/// is the indexer's, not the generator's).
struct History {
    tasks: u64,
    submitted: u64,
    next_block: u64,
    /// Blocks already holding logs scheduled by earlier blocks (finalizations).
    future: BTreeMap<u64, BlockLogs>,
    /// Per worker: tasks assigned and not yet committed.
    pending: Vec<Vec<u64>>,
    batch: u64,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl History {
    fn new(tasks: u64) -> Self {
        History {
            tasks,
            submitted: 0,
            next_block: 1,
            future: BTreeMap::new(),
            pending: vec![Vec::new(); WORKERS],
            batch: 0,
            input: digit_input(1.0),
            output: label_output(7),
        }
    }

    fn done(&self) -> bool {
        self.submitted == self.tasks
            && self.future.is_empty()
            && self.pending.iter().all(|p| p.is_empty())
    }

    /// The logs of the next block.
    fn next(&mut self) -> BlockLogs {
        let b = self.next_block;
        self.next_block += 1;
        let mut logs = self.future.remove(&b).unwrap_or_else(|| BlockLogs::new(b));
        if b == 1 {
            self.genesis(&mut logs);
            return logs;
        }
        // batch commits of what was assigned in earlier blocks
        for w in 0..WORKERS {
            let due = (b + w as u64).is_multiple_of(COMMIT_EVERY) || self.submitted == self.tasks;
            if !due || self.pending[w].is_empty() {
                continue;
            }
            let ids = std::mem::take(&mut self.pending[w]);
            self.batch += 1;
            let hash = alloy::primitives::keccak256(&self.output);
            logs.push(
                TM,
                T::ResultsCommitted {
                    batchId: U256::from(self.batch),
                    worker: worker(w),
                    root: B256::repeat_byte(0x11),
                    taskIds: ids.iter().map(|t| U256::from(*t)).collect(),
                    outputHashes: ids.iter().map(|_| hash).collect(),
                    codes: ids.iter().map(|_| 0u16).collect(),
                    outputs: ids.iter().map(|_| self.output.clone().into()).collect(),
                },
            );
            let fin = b + FINALIZE_AFTER;
            let later = self
                .future
                .entry(fin)
                .or_insert_with(|| BlockLogs::new(fin));
            for t in ids {
                later.push(
                    TM,
                    T::TaskFinalized {
                        taskId: U256::from(t),
                        worker: worker(w),
                        modelId: 1,
                        code: 0,
                        computeUnits: 10,
                        quality: 1_000_000,
                        latency: 12,
                        developerFee: dn(1) / U256::from(10),
                        workerFee: dn(1) * U256::from(7) / U256::from(10),
                        validatorFee: dn(1) / U256::from(10),
                        protocolFee: dn(1) / U256::from(10),
                        refund: U256::ZERO,
                    },
                );
            }
        }
        // new tasks, assigned round-robin
        for _ in 0..PER_BLOCK.min(self.tasks - self.submitted) {
            self.submitted += 1;
            let task = self.submitted;
            let w = (task as usize * 7) % WORKERS;
            logs.push(
                TM,
                T::TaskSubmitted {
                    taskId: U256::from(task),
                    submitter: USER,
                    modelId: 1,
                    fee: dn(1),
                    input: self.input.clone().into(),
                },
            )
            .push(
                TM,
                T::TaskAssigned {
                    taskId: U256::from(task),
                    worker: worker(w),
                    deadline: time_of(b) + 600,
                },
            );
            self.pending[w].push(task);
        }
        logs
    }

    /// Block 1: stakes, the model, the opt-ins.
    fn genesis(&self, b1: &mut BlockLogs) {
        b1.push(
            STAKING,
            S::Staked {
                account: VAL,
                role: 1,
                amount: dn(5000),
                newStake: dn(5000),
            },
        )
        .push(
            REG,
            M::ModelRegistered {
                modelId: 1,
                developer: DEV,
                sha256Hash: B256::repeat_byte(0xab),
                uri: "file:///models/digits.onnx".into(),
                pricePerCall: alloy::primitives::Uint::from(dn(1)),
                computeUnits: 10,
                rule: 2,
                tolerance: 0,
                parent: 0,
            },
        );
        for i in 0..WORKERS {
            b1.push(
                STAKING,
                S::Staked {
                    account: worker(i),
                    role: 0,
                    amount: dn(1000),
                    newStake: dn(1000),
                },
            )
            .push(
                REG,
                M::WorkerOptedIn {
                    modelId: 1,
                    worker: worker(i),
                    weight: dn(1000),
                },
            );
        }
    }
}

/// Peak resident set size of this process, MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let i = args.iter().position(|a| a == name)?;
    let v = args
        .get(i + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name} {v}: not understood")),
    )
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

#[tokio::main]
async fn main() {
    // cargo bench passes `--bench`; other flags are ours
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tasks: u64 = arg(&args, "--tasks").unwrap_or(100_000);
    let range_blocks: u64 = arg(&args, "--range-blocks").unwrap_or(100).max(1);
    let serve_secs: Option<u64> = arg(&args, "--serve-secs");

    // `--db-dir DIR` keeps the SQLite file (DIR/indexer.sqlite, DIR must be empty) for a look
    let keep: Option<std::path::PathBuf> = arg(&args, "--db-dir");
    let dir = tempfile::tempdir().unwrap();
    let db = open(keep.as_deref().unwrap_or(dir.path())).await;
    let cs = contracts();
    let mut history = History::new(tasks);
    let mut events = 0usize;
    let mut storing = Duration::ZERO;
    while !history.done() {
        let mut logs: Vec<RawLog> = Vec::new();
        let mut blocks = Vec::new();
        let mut last = 0;
        for _ in 0..range_blocks {
            let b = history.next();
            last = b.number;
            if !b.logs().is_empty() {
                logs.extend_from_slice(b.logs());
                blocks.push(block(b.number));
            }
            if history.done() {
                break;
            }
        }
        let t = Instant::now();
        let names = db
            .index_range(CHAIN, &cs, &logs, &blocks, block(last))
            .await
            .unwrap();
        storing += t.elapsed();
        assert_eq!(names.len(), logs.len(), "every log is stored");
        events += names.len();
    }
    let secs = storing.as_secs_f64();
    say(format!(
        "bench-raw: indexer-backfill {:.0} events/s {events} events {secs:.3} s",
        events as f64 / secs
    ));
    say(format!("bench-raw: indexer-rss {:.1} MiB", peak_rss_mib()));
    drop(history);

    let app = limits::apply(
        indexer::api::router(api_state(db)),
        // no per-IP rate limit for a load test, and a deadline long enough that a slow route
        // is measured (not cut off at 10 s with 503)
        Limits {
            per_ip_per_sec: 0,
            timeout: Duration::from_secs(60),
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    say(format!(
        "bench-raw: rest-listening http://{addr} {:#x}",
        worker(0)
    ));

    // a plain thread (not spawn_blocking): the runtime would wait for it at exit
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    match serve_secs {
        Some(s) => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(s)) => {}
                _ = stdin_closed => {}
            }
        }
        None => {
            let _ = stdin_closed.await;
        }
    }
    server.abort();
    say(format!("bench-raw: indexer-rss {:.1} MiB", peak_rss_mib()));
}
