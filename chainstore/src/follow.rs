//! The follow loop: backfill from the deployment's start block in `--batch-blocks` ranges up to
//! `head - confirmations`, then poll. Each range is stored in one transaction with its cursor.
//! Before each step the cursor's block hash is checked against the chain; on a mismatch the
//! newest still-canonical stored block is the fork point and everything after it is rolled back.
//! RPC and database errors are logged (rate limited), counted and retried with backoff, except a
//! full disk under the database, which stops the process ([`EXIT_DISK_FULL`]).

use crate::db::{BlockRef, Db, DbError};
use crate::ingest::{Contracts, RawLog};
use alloy::eips::BlockNumberOrTag;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the follow loop shares with the REST API or a status page (lock-free).
#[derive(Debug, Default)]
pub struct SyncStatus {
    /// Latest chain head seen (0 until the first poll).
    pub head: AtomicU64,
    /// RPC errors since start.
    pub rpc_errors: AtomicU64,
    /// Unix time of the last successful poll (0 = never).
    pub last_poll: AtomicU64,
    /// Whether this process holds the database's writer lock and follows the chain into it
    /// (false: another process writes the shared PostgreSQL database; this one only serves).
    pub writer: AtomicBool,
}

/// How many stored block hashes are compared to find a fork point before re-indexing from the
/// start block.
const FORK_SEARCH_DEPTH: u32 = 256;
/// Longest wait between retries of a failing step.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// At most one error line per this interval (the rest are counted).
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);
/// Exit status of a process whose database's disk is full (`EX_TEMPFAIL`: start it again once
/// space is freed; a service manager's restart policy does).
pub const EXIT_DISK_FULL: i32 = 75;

/// Why a step failed; both kinds are retried.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The RPC endpoint failed or answered something inconsistent.
    #[error("RPC: {0}")]
    Rpc(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn rpc<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StepError {
    move |e| StepError::Rpc(format!("{what}: {e}"))
}

/// Settings of the follow loop.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// Blocks at or below `head - confirmations` are indexed.
    pub confirmations: u64,
    /// Wait between polls once caught up.
    pub poll_interval: Duration,
    /// Largest `eth_getLogs` range.
    pub batch_blocks: u64,
}

/// Outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Indexed through this block; more may be waiting.
    Indexed {
        /// Last block of the range.
        to: u64,
        /// Whether the confirmed head was reached.
        caught_up: bool,
    },
    /// Nothing new below the confirmation depth.
    Idle,
    /// A reorg was found and rolled back to this block (None: to before the start block).
    RolledBack(Option<u64>),
    /// This process took the database's writer lock: it follows the chain from now on.
    TookWriterLock,
}

/// Follows one deployment into one database.
pub struct Follower {
    provider: DynProvider,
    db: Db,
    chain_id: u64,
    start_block: u64,
    contracts: Contracts,
    config: FollowConfig,
    sync: Arc<SyncStatus>,
    /// Current `eth_getLogs` range: halves when the node refuses a range, grows back after.
    batch: u64,
    /// Epoch schedule; None: epochs are not computed.
    epochs: Option<crate::epochs::EpochConfig>,
    /// The database's writer lock, once taken (see [`crate::db::WriterLock`]).
    writer: Option<crate::db::WriterLock>,
}

impl Follower {
    /// A follower of `deployment` on `provider` writing to `db`.
    pub fn new(
        provider: DynProvider,
        db: Db,
        deployment: &protocol::Deployment,
        config: FollowConfig,
        sync: Arc<SyncStatus>,
    ) -> Self {
        let batch = config.batch_blocks.max(1);
        Self {
            provider,
            db,
            chain_id: deployment.chain_id,
            start_block: deployment.start_block,
            contracts: Contracts::of(deployment),
            config,
            sync,
            batch,
            epochs: None,
            writer: None,
        }
    }

    /// Also computes each epoch once the confirmed blocks cover it (see [`crate::epochs`]).
    pub fn with_epochs(mut self, cfg: crate::epochs::EpochConfig) -> Self {
        self.epochs = Some(cfg);
        self
    }

    /// Computes and stores the epochs that became ready. Errors are returned, not retried here:
    /// the next step tries again.
    pub async fn settle_epochs(&self) -> Result<Vec<u64>, crate::epochs::EpochError> {
        match &self.epochs {
            Some(cfg) => {
                crate::epochs::settle_ready(&self.db, cfg, crate::epochs::MAX_EPOCHS_PER_CALL).await
            }
            None => Ok(Vec::new()),
        }
    }

    /// Runs until `shutdown` turns true. Never returns an error: failures are retried.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = self.config.poll_interval;
        let mut last_error_log: Option<Instant> = None;
        let mut suppressed = 0u64;
        let mut last_epoch_error: Option<Instant> = None;
        let mut told_reader = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let step = if self.writer.is_none() {
                // Only the process holding the writer lock follows the chain; the others serve
                // what it writes, poll the head for /health and try again every poll interval.
                tokio::select! {
                    _ = shutdown.changed() => break,
                    step = self.take_writer_lock(&mut told_reader) => step,
                }
            } else {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    step = self.step_and_settle(&mut last_epoch_error) => step,
                }
            };
            let wait = match step {
                Ok(Step::Indexed {
                    caught_up: false, ..
                })
                | Ok(Step::RolledBack(_))
                | Ok(Step::TookWriterLock) => {
                    backoff = self.config.poll_interval;
                    Duration::ZERO
                }
                Ok(_) => {
                    backoff = self.config.poll_interval;
                    self.config.poll_interval
                }
                Err(StepError::Db(e)) if e.is_disk_full() => {
                    // Nothing of the failed range was stored (one transaction per range with its
                    // cursor), so a restart indexes it again. Stop rather than retry: a write
                    // that failed for want of space can leave a pooled connection holding the
                    // write lock, and every later write then fails with "database is locked"
                    // even after space is freed (seen in the chaos full-disk fault).
                    tracing::error!(error = %e, exit_status = EXIT_DISK_FULL,
                        "the database's disk is full: stopping (nothing lost: what is stored is whole); free space and start again, it resumes from its cursor");
                    std::process::exit(EXIT_DISK_FULL);
                }
                Err(StepError::Db(DbError::NotWriter)) => {
                    tracing::warn!("lost the database's writer lock (its connection dropped): serving only until it is taken again");
                    self.writer = None;
                    self.sync.writer.store(false, Ordering::Relaxed);
                    told_reader = true;
                    Duration::ZERO
                }
                Err(e) => {
                    if matches!(e, StepError::Rpc(_)) {
                        self.sync.rpc_errors.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("indexer_rpc_errors_total").increment(1);
                    }
                    if last_error_log.is_none_or(|t| t.elapsed() >= ERROR_LOG_INTERVAL) {
                        tracing::warn!(error = %e, suppressed, retry_in_ms = backoff.as_millis() as u64,
                                "indexing step failed; retrying");
                        last_error_log = Some(Instant::now());
                        suppressed = 0;
                    } else {
                        suppressed += 1;
                    }
                    let w = backoff;
                    backoff = (backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                    w
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        tracing::info!("follow loop stopped");
    }

    /// Takes the writer lock if it is free (then the next step follows the chain); otherwise
    /// polls the head and waits ([`Step::Idle`]).
    async fn take_writer_lock(&mut self, told_reader: &mut bool) -> Result<Step, StepError> {
        if let Some(lock) = self.db.try_writer_lock().await? {
            if *told_reader {
                tracing::info!("took the database's writer lock: following the chain");
            }
            self.writer = Some(lock);
            self.sync.writer.store(true, Ordering::Relaxed);
            return Ok(Step::TookWriterLock);
        }
        if !*told_reader {
            tracing::info!("another process writes this database (it holds the writer lock): serving only, taking over if it stops");
            *told_reader = true;
        }
        self.poll_head().await?;
        Ok(Step::Idle)
    }

    /// The chain head, recorded for /health and the metrics.
    async fn poll_head(&self) -> Result<u64, StepError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(rpc("eth_blockNumber"))?;
        self.sync.head.store(head, Ordering::Relaxed);
        metrics::gauge!("indexer_head_block").set(head as f64);
        Ok(head)
    }

    /// One step, then the epochs it made ready (an epoch error is logged, rate limited, and
    /// does not hold indexing up).
    async fn step_and_settle(
        &mut self,
        last_error: &mut Option<Instant>,
    ) -> Result<Step, StepError> {
        let step = self.step().await?;
        if let Err(e) = self.settle_epochs().await {
            metrics::counter!("indexer_epoch_errors_total").increment(1);
            if last_error.is_none_or(|t| t.elapsed() >= ERROR_LOG_INTERVAL) {
                tracing::warn!(error = %e, "computing an epoch failed; retrying after the next step");
                *last_error = Some(Instant::now());
            }
        }
        Ok(step)
    }

    /// The canonical block at `number`, or None when the chain is shorter (it was rewound).
    async fn header_opt(&self, number: u64) -> Result<Option<BlockRef>, StepError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(rpc("eth_getBlockByNumber"))?;
        Ok(block.map(|b| BlockRef {
            number,
            hash: b.header.hash,
            timestamp: b.header.timestamp,
        }))
    }

    async fn header(&self, number: u64) -> Result<BlockRef, StepError> {
        self.header_opt(number)
            .await?
            .ok_or_else(|| StepError::Rpc(format!("block {number} not found")))
    }

    /// One unit of work: detect a reorg, or index the next range, or find nothing to do.
    pub async fn step(&mut self) -> Result<Step, StepError> {
        let head = self.poll_head().await?;
        let target = head.saturating_sub(self.config.confirmations);
        let cursor = self.db.cursor(self.chain_id).await?;
        if let Some(c) = cursor {
            metrics::gauge!("indexer_indexed_block").set(c.number as f64);
            metrics::gauge!("indexer_blocks_behind").set(head.saturating_sub(c.number) as f64);
            let on_chain = self.header_opt(c.number).await?;
            if on_chain.map(|b| b.hash) != Some(c.hash) {
                return self.roll_back(c).await;
            }
        }
        let from = cursor.map(|c| c.number + 1).unwrap_or(self.start_block);
        if from > target {
            return Ok(Step::Idle);
        }
        let to = target.min(from.saturating_add(self.batch - 1));
        let filter = Filter::new()
            .address(self.contracts.addresses())
            .from_block(from)
            .to_block(to);
        let logs = match self.provider.get_logs(&filter).await {
            Ok(logs) => logs,
            Err(e) => {
                // Providers cap the range or the result size: retry with a smaller range.
                self.batch = (self.batch / 2).max(1);
                return Err(StepError::Rpc(format!("eth_getLogs {from}..={to}: {e}")));
            }
        };
        let mut headers: BTreeMap<u64, BlockRef> = BTreeMap::new();
        let mut raw = Vec::with_capacity(logs.len());
        for log in logs.iter().filter(|l| !l.removed) {
            let (Some(number), Some(index), Some(tx)) =
                (log.block_number, log.log_index, log.transaction_hash)
            else {
                return Err(StepError::Rpc(
                    "eth_getLogs returned a log without block number, index or tx hash".into(),
                ));
            };
            let h = match headers.get(&number) {
                Some(h) => *h,
                None => {
                    let h = self.header(number).await?;
                    headers.insert(number, h);
                    h
                }
            };
            if log.block_hash.is_some_and(|bh| bh != h.hash) {
                return Err(StepError::Rpc(format!(
                    "block {number} changed while reading its logs (reorg); retrying"
                )));
            }
            raw.push(RawLog {
                block_number: number,
                log_index: index,
                tx_hash: tx,
                block_time: log.block_timestamp.unwrap_or(h.timestamp),
                address: log.address(),
                topics: log.topics().to_vec(),
                data: log.data().data.clone(),
            });
        }
        let cursor_block = match headers.get(&to) {
            Some(h) => *h,
            None => self.header(to).await?,
        };
        let blocks: Vec<BlockRef> = headers.into_values().collect();
        let names = self
            .db
            .index_range(self.chain_id, &self.contracts, &raw, &blocks, cursor_block)
            .await?;
        for name in &names {
            metrics::counter!("indexer_events_total", "event" => *name).increment(1);
        }
        metrics::gauge!("indexer_indexed_block").set(to as f64);
        metrics::gauge!("indexer_blocks_behind").set(head.saturating_sub(to) as f64);
        tracing::debug!(from, to, events = names.len(), "indexed block range");
        if !names.is_empty() {
            tracing::info!(from, to, events = names.len(), "indexed events");
        }
        self.batch = (self.batch * 2).min(self.config.batch_blocks.max(1));
        Ok(Step::Indexed {
            to,
            caught_up: to == target,
        })
    }

    async fn roll_back(&mut self, cursor: BlockRef) -> Result<Step, StepError> {
        let mut fork: Option<BlockRef> = None;
        for known in self
            .db
            .known_blocks(cursor.number, FORK_SEARCH_DEPTH)
            .await?
        {
            let on_chain = self.header_opt(known.number).await?;
            if on_chain.map(|b| b.hash) == Some(known.hash) {
                fork = Some(known);
                break;
            }
        }
        let dropped = self
            .db
            .rollback_to(self.chain_id, &self.contracts, fork)
            .await?;
        metrics::counter!("indexer_reorgs_total").increment(1);
        tracing::warn!(
            cursor = cursor.number,
            fork_point = ?fork.map(|f| f.number),
            dropped_events = dropped,
            "chain reorganized below the confirmation depth; rolled back and re-indexing"
        );
        Ok(Step::RolledBack(fork.map(|f| f.number)))
    }
}
