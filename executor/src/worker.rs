//! The worker loop: scan assignments -> run models in batches -> journal -> commit -> finalize.
//! Every durable fact is journaled before the action that depends on it, so the loop may be
//! cancelled or crash at any await point and resume from the journal and the chain.

use crate::chain::{is_transport_error, Assignment, Chain, SignError, TaskInfo};
use crate::cheat::Cheater;
use crate::crash;
use crate::engine::{Engine, ModelInfo};
use crate::journal::{Computed, Journal, JournalError, Planted, Record, TaskState};
use crate::metrics as m;
use crate::outcome::Outcome;
use crate::payload::Payloads;
use crate::sentinel::{self, RevealOutcome, Sentinel};
use crate::stream::{Streamer, TokenSink};
use alloy::primitives::U256;
use alloy::rpc::types::TransactionReceipt;
use protocol::bindings::TaskStatus;
use protocol::codes::FailureCode;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

/// Loop settings (from the CLI).
#[derive(Debug, Clone)]
pub struct Config {
    /// Most tasks per commitBatch.
    pub batch_size: usize,
    /// How long to gather assignments into a batch.
    pub batch_wait: Duration,
    /// Pause between scans.
    pub poll: Duration,
    /// Finalize own tasks and withdraw payouts.
    pub finalize: bool,
    /// Pause between finalization rounds.
    pub finalize_interval: Duration,
}

/// Why a loop step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The journal cannot be written: stop, since continuing could lose or double-send work.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A chain call failed: retried with backoff, no state is lost.
    #[error("{0:#}")]
    Chain(#[from] anyhow::Error),
}

/// How long a commit waits for its receipt before the next step looks again.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Write the cursor at least every this many blocks even when nothing was assigned.
const CURSOR_EVERY: u64 = 50;
/// Blocks rescanned at start for tasks waiting for `assignTasks` (the block-hash window).
const DRAW_RESCAN_BLOCKS: u64 = 256;

/// The running worker.
pub struct Worker {
    chain: Chain,
    engine: Engine,
    journal: Journal,
    cfg: Config,
    models: HashMap<u32, ModelInfo>,
    /// When each task was first seen (commit latency).
    seen_at: HashMap<U256, Instant>,
    /// End of the challenge window of committed tasks, once read.
    challenge_ends: HashMap<U256, u64>,
    /// Scan position in memory (the journaled cursor may lag behind it).
    cursor: Option<u64>,
    /// Last block scanned for tasks waiting for their worker to be drawn.
    draw_cursor: Option<u64>,
    /// Tasks waiting for `assignTasks`, by id, with their anchor block.
    draws: BTreeMap<U256, u64>,
    /// Drawn tasks of this worker's models, by id, with the chain time from which to look
    /// whether their worker missed its response deadline (0: look at the next round).
    watch: BTreeMap<U256, u64>,
    last_finalize: Option<Instant>,
    /// TEST-ONLY: commits wrong results on some tasks (`--test-cheat-rate`).
    cheater: Option<Cheater>,
    /// Off-chain inputs and outputs (`None`: blob references cannot be fetched).
    payloads: Option<Payloads>,
    /// Streams text-generation tokens to the gateway a task names (`None`: never streams).
    streamer: Option<Streamer>,
    /// Plants forced errors on its planter's tasks (`--sentinel-key`; `None`: never).
    sentinel: Option<Sentinel>,
}

impl Worker {
    /// A worker over an opened journal.
    pub fn new(
        chain: Chain,
        engine: Engine,
        journal: Journal,
        mut cfg: Config,
        max_batch: u64,
    ) -> Self {
        cfg.batch_size = cfg
            .batch_size
            .clamp(1, max_batch.max(1).try_into().unwrap_or(usize::MAX));
        let cursor = journal.state().cursor;
        Self {
            chain,
            engine,
            journal,
            cfg,
            models: HashMap::new(),
            seen_at: HashMap::new(),
            challenge_ends: HashMap::new(),
            cursor,
            // rescan the last 256 blocks at start: a task submitted there may still wait for its
            // draw (a crash between seeing it and assigning it), and its hash is still available
            draw_cursor: cursor.map(|c| c.saturating_sub(DRAW_RESCAN_BLOCKS)),
            draws: BTreeMap::new(),
            watch: BTreeMap::new(),
            last_finalize: None,
            cheater: None,
            payloads: None,
            streamer: None,
            sentinel: None,
        }
    }

    /// Sentinel mode: plant forced errors on `sentinel`'s tasks drawn to this worker and reveal
    /// them after their verdicts (see `crate::sentinel`).
    pub fn with_sentinel(mut self, sentinel: Option<Sentinel>) -> Self {
        self.sentinel = sentinel;
        self
    }

    /// TEST-ONLY: cheat on the tasks `cheater` selects (their results still go through the
    /// journal and the same commit path as honest ones).
    pub fn with_cheater(mut self, cheater: Option<Cheater>) -> Self {
        self.cheater = cheater;
        self
    }

    /// Fetches referenced inputs and publishes large outputs through `payloads`.
    pub fn with_payloads(mut self, payloads: Payloads) -> Self {
        self.payloads = Some(payloads);
        self
    }

    /// Streams tokens of tasks that ask for it (`stream_to`) through `streamer`.
    pub fn with_streamer(mut self, streamer: Option<Streamer>) -> Self {
        self.streamer = streamer;
        self
    }

    /// Runs until `shutdown` resolves (or the journal fails). RPC errors are retried with
    /// exponential backoff.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let result = tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutting down (the journal is consistent; a restart resumes)");
                    return Ok(());
                }
                r = self.step() => r,
            };
            let wait = match result {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!("RPC reachable again");
                    }
                    failures = 0;
                    self.cfg.poll
                }
                Err(StepError::Journal(e)) => return Err(e.into()),
                Err(StepError::Chain(e)) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!(m::RPC_ERRORS).increment(1);
                    let secs = backoff_secs(failures);
                    if is_transport_error(&e) {
                        tracing::warn!(error = %format!("{e:#}"), "RPC unreachable, retrying in {secs}s");
                    } else {
                        tracing::warn!(error = %format!("{e:#}"), "chain call failed, retrying in {secs}s");
                    }
                    Duration::from_secs(secs)
                }
            };
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutting down (the journal is consistent; a restart resumes)");
                    return Ok(());
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass: settle pending commits, commit journaled results, run new assignments,
    /// finalize when due.
    pub async fn step(&mut self) -> Result<(), StepError> {
        self.sentinel_step().await?;
        self.resolve_pending().await?;
        self.commit_ready().await?;
        self.assign_ready().await?;
        self.scan().await?;
        self.reassign_missed().await?;
        if self.cfg.finalize
            && self
                .last_finalize
                .is_none_or(|t| t.elapsed() >= self.cfg.finalize_interval)
        {
            self.finalize_due().await?;
            self.restore_weight().await?;
            self.last_finalize = Some(Instant::now());
        }
        self.sentinel_step().await
    }

    /// Sentinel mode: start the submitter's next task when due, and reveal every planted forced
    /// error that has a verdict (quickly: a rejected one must be revealed before its dispute's
    /// quorum votes, or the quorum judges this worker's wrong result a fraud).
    async fn sentinel_step(&mut self) -> Result<(), StepError> {
        let Some(s) = self.sentinel.as_mut() else {
            return Ok(());
        };
        s.submit_due().await;
        let planted: Vec<Planted> = self.journal.state().planted.values().copied().collect();
        for p in planted {
            let Some(s) = self.sentinel.as_ref() else {
                break;
            };
            let why = match s.reveal(&self.chain, &p).await? {
                RevealOutcome::Waiting => continue,
                RevealOutcome::CaughtLazy(validator) => {
                    tracing::warn!(task = %p.task_id, %validator, "forced error revealed: the validator approved a wrong result without re-executing it and is slashed as lazy");
                    "caught a lazy validator"
                }
                RevealOutcome::Rejected(validator) => {
                    tracing::info!(task = %p.task_id, %validator, "forced error revealed: the validator rejected it (re-executed); dispute closed");
                    "rejected as it should be"
                }
                RevealOutcome::Done(why) => why,
            };
            tracing::debug!(task = %p.task_id, why, "forced error settled");
            self.journal.append(Record::Revealed {
                task_ids: vec![p.task_id],
            })?;
        }
        Ok(())
    }

    /// Draws the workers of tasks of this worker's models whose randomness exists now
    /// (`assignTasks`, from the second block after their anchor). Anyone may, and every worker of
    /// the model does: whoever is first assigns them, the others' calls are refused at gas
    /// estimation (`NothingToAssign`) and nothing is sent. The draw itself is fixed by the anchor
    /// block, so who calls it, and when, changes nothing.
    async fn assign_ready(&mut self) -> Result<(), StepError> {
        let head = self.chain.head().await?;
        let from = self
            .draw_cursor
            .map_or(self.chain.deployment.start_block, |c| c + 1);
        if from <= head {
            let models = self.chain.models_of_me().await?;
            for (id, anchor) in self.chain.draws(from, head, &models).await? {
                self.draws.insert(id, anchor);
            }
            self.draw_cursor = Some(head);
        }
        let ready: Vec<U256> = self
            .draws
            .iter()
            .filter(|(_, anchor)| **anchor + 2 <= head)
            .map(|(id, _)| *id)
            .collect();
        for chunk in ready.chunks(self.cfg.batch_size.max(1)) {
            // watched from now on, whoever draws them (see reassign_missed)
            for id in chunk {
                self.watch.entry(*id).or_insert(0);
            }
            match self
                .chain
                .send_and_wait("assignTasks", self.chain.assign_tx(chunk.to_vec()))
                .await
            {
                Ok(r) => {
                    tracing::info!(tasks = chunk.len(), tx = %r.transaction_hash, "workers drawn (assignTasks)")
                }
                Err(e) if is_transport_error(&e) => return Err(e.into()),
                // another worker drew them first (NothingToAssign), or they are gone: either
                // way not ours to retry (a re-anchored task comes back with AssignmentDeferred)
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "assignTasks refused"),
            }
            for id in chunk {
                self.draws.remove(id);
            }
        }
        Ok(())
    }

    /// Puts back to the draw (`reassign`) every task of this worker's models whose worker, another
    /// one, missed its response deadline (crashed, or cut off by an RPC outage): the missed worker
    /// is jailed and the task drawn again, or refunded when nobody is eligible. Anyone may, and a
    /// competing worker has the reason to (it may win the new draw); without it a missed task
    /// would stay assigned for good. Its own missed tasks it leaves to the others (and to their
    /// submitters): reassigning them would jail itself. Only tasks drawn while this process runs
    /// (and those the start-up rescan finds) are watched.
    async fn reassign_missed(&mut self) -> Result<(), StepError> {
        if self.watch.is_empty() {
            return Ok(());
        }
        let now = self.chain.now().await?;
        let due: Vec<U256> = self
            .watch
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let t = self.chain.task(id).await?;
            match t.status {
                Some(TaskStatus::Assigned) if t.deadline < now && t.worker != self.chain.me => {
                    match self
                        .chain
                        .send_and_wait("reassign", self.chain.reassign_tx(id))
                        .await
                    {
                        Ok(r) => {
                            tracing::info!(task = %id, worker = %t.worker, tx = %r.transaction_hash, "worker missed its response deadline; task reassigned (drawn again, or refunded)")
                        }
                        Err(e) if is_transport_error(&e) => return Err(e.into()),
                        // someone else reassigned it first, it was committed meanwhile, or the
                        // node refused the transaction for now: the next look tells which
                        Err(e) => {
                            tracing::debug!(task = %id, error = %format!("{e:#}"), "reassign refused; looking at the task again shortly")
                        }
                    }
                    // still watched: drawn again, its new worker can miss it too
                    self.watch.insert(id, now.saturating_add(5));
                }
                Some(TaskStatus::Assigned) if t.deadline >= now => {
                    self.watch.insert(id, t.deadline.saturating_add(1));
                }
                // not drawn (again) yet: back to the draws, in case its assignment is gone (a
                // reorg dropped the block that drew it); look again in a few seconds
                Some(TaskStatus::Drawing) => {
                    self.draws.entry(id).or_insert(t.draw_block);
                    self.watch.insert(id, now.saturating_add(5));
                }
                // answered: watched until its challenge window ends, since a reorg can still
                // drop the commit (or the assignment) and put the task back in play
                Some(TaskStatus::Committed | TaskStatus::Failed) if t.deadline >= now => {
                    self.watch.insert(id, t.deadline.saturating_add(1));
                }
                // ended, or this worker's own missed task (left to the others)
                _ => {
                    self.watch.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// After a jail ends the worker's sortition weight stays 0 until someone syncs it; the
    /// worker does it itself so it gets tasks again.
    async fn restore_weight(&mut self) -> Result<(), StepError> {
        if !self.chain.weight_lost().await? {
            return Ok(());
        }
        match self
            .chain
            .send_and_wait("syncWorker", self.chain.sync_worker_tx())
            .await
        {
            Ok(_) => tracing::info!("sortition weight restored (syncWorker) after the jail ended"),
            Err(e) if is_transport_error(&e) => return Err(e.into()),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "syncWorker failed; will retry"),
        }
        Ok(())
    }

    /// Finds new assignments (gathering for up to `batch_wait`), runs and commits them, then
    /// moves the cursor.
    async fn scan(&mut self) -> Result<(), StepError> {
        let head = self.chain.head().await?;
        let from = self
            .cursor
            .map_or(self.chain.deployment.start_block, |c| c + 1);
        metrics::gauge!(m::BLOCKS_BEHIND).set(head.saturating_sub(from.saturating_sub(1)) as f64);
        if from > head {
            return Ok(());
        }
        let mut found = self.chain.assignments(from, head).await?;
        let mut to = head;
        if !found.is_empty() && found.len() < self.cfg.batch_size && !self.cfg.batch_wait.is_zero()
        {
            let until = Instant::now() + self.cfg.batch_wait;
            while found.len() < self.cfg.batch_size {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
                let h = self.chain.head().await?;
                if h > to {
                    found.extend(self.chain.assignments(to + 1, h).await?);
                    to = h;
                }
            }
        }
        let had_work = !found.is_empty();
        self.process(found).await?;
        self.cursor = Some(to);
        let journaled = self.journal.state().cursor.unwrap_or(0);
        if had_work || to.saturating_sub(journaled) >= CURSOR_EVERY {
            self.journal.append(Record::Cursor(to))?;
        }
        metrics::gauge!(m::BLOCKS_BEHIND).set(0.0);
        Ok(())
    }

    /// Runs the tasks of new assignments that are still ours, grouped by model.
    async fn process(&mut self, found: Vec<Assignment>) -> Result<(), StepError> {
        let mut latest: BTreeMap<U256, u64> = BTreeMap::new();
        for a in found {
            latest.insert(a.task_id, a.block);
        }
        if latest.is_empty() {
            return Ok(());
        }
        let now = self.chain.now().await?;
        let mut by_model: BTreeMap<u32, Vec<(TaskInfo, u64)>> = BTreeMap::new();
        for (id, block) in latest {
            let state = self.journal.state().state_of(&id);
            if matches!(
                state,
                Some(
                    TaskState::Computed
                        | TaskState::Submitted(_)
                        | TaskState::Committed(_)
                        | TaskState::Finalized
                )
            ) {
                continue;
            }
            let t = self.chain.task(id).await?;
            if t.status != Some(TaskStatus::Assigned) || t.worker != self.chain.me {
                tracing::debug!(task = %id, status = ?t.status, "assignment no longer ours");
                continue;
            }
            if t.deadline <= now {
                tracing::warn!(task = %id, deadline = t.deadline, now, "task deadline passed before it was seen; skipping");
                continue;
            }
            self.seen_at.entry(id).or_insert_with(Instant::now);
            // Assigned back to us after a skip: the journaled result is still valid.
            if self.has_result(&id) {
                self.journal
                    .append(Record::Requeued { task_ids: vec![id] })?;
                continue;
            }
            by_model.entry(t.model_id).or_default().push((t, block));
        }
        for (model_id, tasks) in by_model {
            for chunk in tasks.chunks(self.cfg.batch_size) {
                self.run_chunk(model_id, chunk).await?;
                self.commit_ready().await?;
            }
        }
        Ok(())
    }

    async fn model_info(&mut self, id: u32) -> anyhow::Result<ModelInfo> {
        if let Some(info) = self.models.get(&id) {
            return Ok(info.clone());
        }
        let info = self.chain.model(id).await?;
        self.models.insert(id, info.clone());
        Ok(info)
    }

    /// Fetches inputs, runs one model batch, journals every outcome.
    async fn run_chunk(
        &mut self,
        model_id: u32,
        chunk: &[(TaskInfo, u64)],
    ) -> Result<(), StepError> {
        let info = self.model_info(model_id).await?;
        let mut inputs = Vec::with_capacity(chunk.len());
        for (t, block) in chunk {
            let input = self.chain.input_of(t.id, *block).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "TaskSubmitted event of task {} not found between blocks {} and {block}",
                    t.id,
                    self.chain.deployment.start_block
                )
            })?;
            inputs.push(input.to_vec());
        }
        // Blob references are fetched (and verified) now, all of the chunk's at once (a store
        // that is down is waited for up to --blob-timeout-secs, once for the whole chunk); one
        // that cannot be is its outcome.
        let resolved: Vec<Result<Vec<u8>, Outcome>> = match &self.payloads {
            Some(p) => p.resolve_all(std::mem::take(&mut inputs)).await,
            None => std::mem::take(&mut inputs)
                .into_iter()
                .map(|input| {
                    if blobstore::BlobRef::decode(&input).is_some() {
                        Err(Outcome::failure(
                            FailureCode::InputUnavailable,
                            "this worker has no blob client configured",
                        ))
                    } else {
                        Ok(input)
                    }
                })
                .collect(),
        };
        let mut fetched: Vec<Option<Outcome>> = Vec::with_capacity(resolved.len());
        for r in resolved {
            match r {
                Ok(bytes) => {
                    inputs.push(bytes);
                    fetched.push(None);
                }
                Err(o) => {
                    inputs.push(Vec::new());
                    fetched.push(Some(o));
                }
            }
        }
        // Sentinel: the planter's tasks picked as forced errors (or planted before a restart).
        let forced: Vec<Option<Vec<u8>>> = chunk
            .iter()
            .zip(&inputs)
            .zip(&fetched)
            .map(|(((t, _), input), f)| {
                let picked = f.is_none()
                    && (self.journal.state().planted.contains_key(&t.id)
                        || self.sentinel.as_ref().is_some_and(|s| s.picks(t)));
                picked.then(|| input.clone())
            })
            .collect();
        let started = Instant::now();
        let runnable: Vec<(TaskInfo, u64)> = chunk
            .iter()
            .zip(&fetched)
            .filter(|(_, f)| f.is_none())
            .map(|(t, _)| t.clone())
            .collect();
        let inputs: Vec<Vec<u8>> = inputs
            .into_iter()
            .zip(&fetched)
            .filter(|(_, f)| f.is_none())
            .map(|(i, _)| i)
            .collect();
        let mut ran = if runnable.is_empty() {
            Vec::new()
        } else {
            self.run_inputs(&info, &runnable, inputs).await
        }
        .into_iter();
        let mut outcomes = Vec::with_capacity(chunk.len());
        for f in fetched {
            let o = match f {
                Some(o) => (o, false),
                None => ran.next().unwrap_or_else(|| {
                    (
                        Outcome::failure(FailureCode::Runtime, "no result returned for this input"),
                        false,
                    )
                }),
            };
            outcomes.push(o);
        }
        for (((t, _), (o, cheated)), input) in chunk.iter().zip(outcomes.iter_mut()).zip(forced) {
            if let Some(input) = input {
                if o.code == FailureCode::Ok && !*cheated {
                    if let Some(wrong) = self.force_error(&info, t.id, input, o).await? {
                        *o = wrong;
                    }
                }
            }
        }
        if let Some(p) = &self.payloads {
            for (o, _) in outcomes.iter_mut() {
                if o.code == FailureCode::Ok {
                    o.published = Some(p.publish(o.output.clone()).await);
                }
            }
        }
        let failed = outcomes
            .iter()
            .filter(|(o, _)| o.code != FailureCode::Ok)
            .count();
        tracing::debug!(
            model_id,
            tasks = chunk.len(),
            failed,
            ms = started.elapsed().as_millis() as u64,
            "batch run"
        );
        for ((t, _), (outcome, cheated)) in chunk.iter().zip(outcomes) {
            metrics::counter!(m::TASKS_RUN).increment(1);
            if outcome.code != FailureCode::Ok {
                metrics::counter!(m::TASKS_FAILED, "code" => outcome.code.as_str()).increment(1);
                tracing::debug!(task = %t.id, code = outcome.code.as_str(), message = %String::from_utf8_lossy(&outcome.output), "task failed");
            }
            self.journal
                .append(Record::Computed(outcome.into_computed(t.id, model_id)))?;
            if cheated {
                if let Some(c) = self.cheater.as_mut() {
                    c.record(t.id);
                }
            }
        }
        crash::point("computed");
        Ok(())
    }

    /// Sentinel: journals and plants the forced error of `task` whose true outcome is `honest`,
    /// and returns the counterfeit to commit instead (`None`: commit the true one).
    async fn force_error(
        &mut self,
        info: &ModelInfo,
        task: U256,
        input: Vec<u8>,
        honest: &Outcome,
    ) -> Result<Option<Outcome>, StepError> {
        let p = match self.journal.state().planted.get(&task) {
            Some(p) => *p,
            None => Planted {
                task_id: task,
                true_hash: honest.output_hash(),
                salt: sentinel::salt(),
            },
        };
        // the salt is durable before the commitment exists on-chain
        self.journal.append(Record::Planted(p))?;
        let planted = match self.sentinel.as_ref() {
            Some(s) => s.plant(&p).await?,
            None => false,
        };
        let wrong = if planted {
            self.engine
                .run_cheated(info, vec![(task, input)], p.salt)
                .await
                .into_iter()
                .next()
                .map(|(o, _)| o)
                .filter(|o| o.code == FailureCode::Ok && o.output_hash() != p.true_hash)
        } else {
            None
        };
        if wrong.is_none() {
            self.journal.append(Record::Revealed {
                task_ids: vec![task],
            })?;
        } else {
            tracing::info!(%task, "sentinel: forced error planted; committing a wrong result");
        }
        Ok(wrong)
    }

    /// One outcome per input, in order, and whether it was cheated. Without a cheater (or when
    /// it picks none of these tasks) this is exactly the engine's honest batch run.
    async fn run_inputs(
        &mut self,
        info: &ModelInfo,
        chunk: &[(TaskInfo, u64)],
        inputs: Vec<Vec<u8>>,
    ) -> Vec<(Outcome, bool)> {
        let picks: Vec<bool> = chunk
            .iter()
            .map(|(t, _)| self.cheater.as_ref().is_some_and(|c| c.cheats_on(t.id)))
            .collect();
        let Some(salt) = self
            .cheater
            .as_ref()
            .filter(|_| picks.contains(&true))
            .map(Cheater::salt)
        else {
            let sinks = self.sinks(chunk.iter().map(|(t, _)| t.id).zip(&inputs));
            let outcomes = self.engine.run_streaming(info, inputs, sinks).await;
            return outcomes.into_iter().map(|o| (o, false)).collect();
        };
        let mut honest = Vec::new();
        let mut honest_ids = Vec::new();
        let mut cheat = Vec::new();
        for (((t, _), input), pick) in chunk.iter().zip(inputs).zip(&picks) {
            if *pick {
                cheat.push((t.id, input));
            } else {
                honest_ids.push(t.id);
                honest.push(input);
            }
        }
        let mut honest = if honest.is_empty() {
            Vec::new()
        } else {
            let sinks = self.sinks(honest_ids.into_iter().zip(&honest));
            self.engine.run_streaming(info, honest, sinks).await
        }
        .into_iter();
        let lazy = self.cheater.as_ref().is_some_and(Cheater::fails);
        let mut cheated = if lazy {
            // TEST-ONLY lazy worker: "fails" the input without running anything
            let o = Outcome::failure(
                FailureCode::InputDecode,
                "TEST-ONLY lazy failure: the task was not run",
            );
            vec![(o, true); cheat.len()].into_iter()
        } else {
            self.engine.run_cheated(info, cheat, salt).await.into_iter()
        };
        picks
            .into_iter()
            .map(|pick| {
                let next = if pick {
                    cheated.next()
                } else {
                    honest.next().map(|o| (o, false))
                };
                next.unwrap_or_else(|| {
                    (
                        Outcome::failure(FailureCode::Runtime, "no result returned for this input"),
                        false,
                    )
                })
            })
            .collect()
    }

    /// One token sink per input: a stream to the gateway its input names, if any.
    fn sinks<'a>(
        &self,
        tasks: impl Iterator<Item = (U256, &'a Vec<u8>)>,
    ) -> Vec<Option<TokenSink>> {
        tasks
            .map(|(id, input)| self.streamer.as_ref().and_then(|s| s.open(id, input)))
            .collect()
    }

    /// Commits every journaled result that the chain still expects from us.
    async fn commit_ready(&mut self) -> Result<(), StepError> {
        let todo = self.journal.state().to_commit();
        if todo.is_empty() {
            return Ok(());
        }
        let now = self.chain.now().await?;
        let mut ready: Vec<Computed> = Vec::new();
        for c in todo {
            let t = self.chain.task(c.task_id).await?;
            match self.classify(&t, now) {
                Disposition::Commit => ready.push(c),
                Disposition::AlreadyCommitted => {
                    tracing::info!(task = %c.task_id, "already committed on-chain; not sending again");
                    self.journal.append(Record::Committed {
                        task_ids: vec![c.task_id],
                        block: 0,
                    })?;
                }
                Disposition::Skip(reason) => {
                    tracing::warn!(task = %c.task_id, %reason, "not committing task");
                    self.journal.append(Record::Skipped {
                        task_ids: vec![c.task_id],
                        reason,
                    })?;
                }
            }
        }
        let batches: Vec<Vec<Computed>> = ready
            .chunks(self.cfg.batch_size)
            .map(<[Computed]>::to_vec)
            .collect();
        for batch in batches {
            self.commit_batch(batch).await?;
        }
        Ok(())
    }

    fn classify(&self, t: &TaskInfo, now: u64) -> Disposition {
        let mine = t.worker == self.chain.me;
        match t.status {
            Some(TaskStatus::Assigned) if mine && t.deadline > now => Disposition::Commit,
            Some(TaskStatus::Assigned) if mine => Disposition::Skip(format!(
                "response deadline {} passed (chain time {now})",
                t.deadline
            )),
            Some(TaskStatus::Committed | TaskStatus::Failed | TaskStatus::Finalized) if mine => {
                Disposition::AlreadyCommitted
            }
            Some(TaskStatus::Assigned) => Disposition::Skip(format!("reassigned to {}", t.worker)),
            other => Disposition::Skip(format!(
                "task is {} and assigned to {}",
                other.map_or("unknown", TaskStatus::as_str),
                t.worker
            )),
        }
    }

    /// Signs, journals, broadcasts one commitBatch and records its outcome.
    async fn commit_batch(&mut self, batch: Vec<Computed>) -> Result<(), StepError> {
        let ids: Vec<U256> = batch.iter().map(|c| c.task_id).collect();
        let tx = self.chain.commit_batch_tx(
            ids.clone(),
            batch.iter().map(|c| c.output_hash).collect(),
            batch.iter().map(|c| c.code).collect(),
            batch.iter().map(|c| c.output_hex.clone()).collect(),
        );
        let signed = match self.chain.sign(tx).await {
            Ok(s) => s,
            Err(SignError::Rpc(e)) => return Err(e.into()),
            Err(SignError::Revert(reason)) if batch.len() > 1 => {
                // One bad task must not block the others: commit them one by one.
                tracing::warn!(tasks = batch.len(), %reason, "commitBatch would revert; committing tasks one by one");
                for c in batch {
                    Box::pin(self.commit_batch(vec![c])).await?;
                }
                return Ok(());
            }
            Err(SignError::Revert(reason)) => {
                tracing::warn!(task = %ids[0], %reason, "commit would revert; skipping task");
                self.journal.append(Record::Skipped {
                    task_ids: ids,
                    reason,
                })?;
                return Ok(());
            }
        };
        self.journal.append(Record::Submitted {
            task_ids: ids.clone(),
            tx_hash: signed.hash,
        })?;
        self.chain.broadcast(&signed).await?;
        crash::point("submitted");
        match self
            .chain
            .wait_receipt(signed.hash, RECEIPT_TIMEOUT)
            .await?
        {
            Some(r) => self.on_receipt(&ids, &r).await,
            None => {
                tracing::warn!(tx = %signed.hash, "commit not mined (dropped, or not within {}s); will check again", RECEIPT_TIMEOUT.as_secs());
                Ok(())
            }
        }
    }

    async fn on_receipt(&mut self, ids: &[U256], r: &TransactionReceipt) -> Result<(), StepError> {
        if !r.status() {
            tracing::warn!(tx = %r.transaction_hash, "commit transaction reverted; re-checking its tasks");
            return self.recheck(ids).await;
        }
        let block = r.block_number.unwrap_or(0);
        self.journal.append(Record::Committed {
            task_ids: ids.to_vec(),
            block,
        })?;
        let mut failed = 0usize;
        for id in ids {
            if let Some(seen) = self.seen_at.remove(id) {
                metrics::histogram!(m::COMMIT_LATENCY).record(seen.elapsed().as_secs_f64());
            }
            let code = self
                .journal
                .state()
                .tasks
                .get(id)
                .and_then(|e| e.result.as_ref())
                .map_or(0, |c| c.code);
            failed += usize::from(code != 0);
        }
        metrics::counter!(m::TASKS_COMMITTED).increment(ids.len() as u64);
        tracing::info!(tasks = ids.len(), ok = ids.len() - failed, failed, block, tx = %r.transaction_hash, "committed batch");
        Ok(())
    }

    /// After a reverted or vanished commit: settle each task by its on-chain status.
    async fn recheck(&mut self, ids: &[U256]) -> Result<(), StepError> {
        let now = self.chain.now().await?;
        for id in ids {
            let t = self.chain.task(*id).await?;
            match self.classify(&t, now) {
                Disposition::Commit if self.has_result(id) => {
                    self.journal.append(Record::Requeued {
                        task_ids: vec![*id],
                    })?
                }
                Disposition::Commit => self.journal.append(Record::Skipped {
                    task_ids: vec![*id],
                    reason: "no journaled result to commit".into(),
                })?,
                Disposition::AlreadyCommitted => self.journal.append(Record::Committed {
                    task_ids: vec![*id],
                    block: 0,
                })?,
                Disposition::Skip(reason) => {
                    tracing::warn!(task = %id, %reason, "not committing task");
                    self.journal.append(Record::Skipped {
                        task_ids: vec![*id],
                        reason,
                    })?
                }
            }
        }
        Ok(())
    }

    /// Commit transactions journaled before a restart (or still unmined): settle them by receipt.
    async fn resolve_pending(&mut self) -> Result<(), StepError> {
        for (tx, ids) in self.journal.state().pending_txs() {
            match self.chain.receipt(tx).await? {
                Some(r) => self.on_receipt(&ids, &r).await?,
                None if self.chain.tx_known(tx).await? => {
                    tracing::debug!(%tx, "commit still pending");
                }
                None => {
                    tracing::warn!(%tx, tasks = ids.len(), "journaled commit transaction is unknown to the node (never sent or dropped); re-checking its tasks");
                    self.recheck(&ids).await?;
                }
            }
        }
        Ok(())
    }

    /// Finalizes own tasks whose challenge window has passed, then withdraws the payout.
    async fn finalize_due(&mut self) -> Result<(), StepError> {
        let waiting = self.journal.state().awaiting_finalize();
        let now = self.chain.now().await?;
        let mut due = Vec::new();
        for id in waiting {
            if self.challenge_ends.get(&id).is_some_and(|end| *end > now) {
                continue;
            }
            let t = self.chain.task(id).await?;
            match t.status {
                Some(TaskStatus::Committed | TaskStatus::Failed) if t.deadline < now => {
                    due.push(id)
                }
                Some(TaskStatus::Committed | TaskStatus::Failed) => {
                    self.challenge_ends.insert(id, t.deadline);
                }
                // Our commit is gone (a reorg): commit the journaled result again if still ours.
                Some(TaskStatus::Assigned) if t.worker == self.chain.me => {
                    self.recheck(&[id]).await?
                }
                // Our assignment is gone too (a reorg dropped the block that drew us): back to the
                // draws; drawn to us again, the arm above commits the journaled result again.
                Some(TaskStatus::Drawing) => {
                    self.draws.entry(id).or_insert(t.draw_block);
                    self.challenge_ends.insert(id, now.saturating_add(5));
                }
                _ => {
                    // Finalized by someone else, refunded, unknown to the chain, or drawn to
                    // another worker after a reorg: nothing left for us to do.
                    self.challenge_ends.remove(&id);
                    self.journal
                        .append(Record::Finalized { task_ids: vec![id] })?;
                }
            }
        }
        for chunk in due.chunks(self.cfg.batch_size) {
            match self
                .chain
                .send_and_wait(
                    "finalizeBatch",
                    self.chain.finalize_batch_tx(chunk.to_vec()),
                )
                .await
            {
                Ok(r) => {
                    self.journal.append(Record::Finalized {
                        task_ids: chunk.to_vec(),
                    })?;
                    metrics::counter!(m::TASKS_FINALIZED).increment(chunk.len() as u64);
                    tracing::info!(
                        tasks = chunk.len(),
                        block = r.block_number.unwrap_or(0),
                        "finalized"
                    );
                }
                Err(e) if is_transport_error(&e) => return Err(e.into()),
                Err(e) => {
                    // e.g. a task under challenge: the next round re-reads each status.
                    tracing::warn!(error = %format!("{e:#}"), tasks = chunk.len(), "finalizeBatch failed; will retry");
                }
            }
            for id in chunk {
                self.challenge_ends.remove(id);
            }
        }
        let payout = self.chain.payout().await?;
        if payout > U256::ZERO {
            match self
                .chain
                .send_and_wait("withdrawPayout", self.chain.withdraw_tx())
                .await
            {
                Ok(_) => {
                    tracing::info!(amount = %format!("{} DN", protocol::format_dn(payout)), "withdrew payout")
                }
                Err(e) if is_transport_error(&e) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "withdrawPayout failed; will retry")
                }
            }
        }
        Ok(())
    }

    fn has_result(&self, id: &U256) -> bool {
        self.journal
            .state()
            .tasks
            .get(id)
            .is_some_and(|e| e.result.is_some())
    }

    /// Tasks the journal still has to commit or finalize (for the startup line).
    pub fn backlog(&self) -> (usize, usize, usize) {
        let s = self.journal.state();
        (
            s.to_commit().len(),
            s.pending_txs().values().map(Vec::len).sum(),
            s.awaiting_finalize().len(),
        )
    }

    /// This worker's address.
    pub fn worker(&self) -> alloy::primitives::Address {
        self.chain.me
    }
}

/// What to do with a journaled result given the task's on-chain view.
enum Disposition {
    Commit,
    AlreadyCommitted,
    Skip(String),
}

/// 1, 2, 4, ... capped at 30 seconds.
pub fn backoff_secs(failures: u32) -> u64 {
    1u64.checked_shl(failures.saturating_sub(1).min(5))
        .unwrap_or(30)
        .min(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let v: Vec<u64> = (1..=8).map(backoff_secs).collect();
        assert_eq!(v, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff_secs(0), 1);
    }
}
