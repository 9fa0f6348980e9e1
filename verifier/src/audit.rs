//! Sampled re-execution: follows committed batches, seals their audit randomness, asks the
//! AuditManager which tasks are audited and by whom, re-executes this validator's share with the
//! `inference` library, compares by the model's registered rule, signs EIP-712 verdicts (own
//! output hash and quality score) and posts them in batches; joins the disputes it is drawn for
//! and resolves them once their deadline passed.
//!
//! Two TEST-ONLY behaviours prove the protocol punishes bad validators: `RubberStamp` approves
//! every audit without running anything, `FalseAccuse` calls every audited result a mismatch.

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use anyhow::{anyhow, Context, Result};
use inference::compare::{compare, CompareRule};
use inference::{BundleCache, Device, Kind, LoadOptions, Model, ModelCache, Runner, Runtime};
use protocol::bindings::{IAuditManager, IModelRegistry, ITaskManager};
use protocol::merkle;
use protocol::verdict::{sign_verdict, signature_bytes, Verdict};
use protocol::Deployment;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How this validator judges audits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditMode {
    /// Re-execute and compare (the only honest mode).
    Honest,
    /// TEST-ONLY: approve every audit without re-executing (a lazy validator; forced errors catch it).
    RubberStamp,
    /// TEST-ONLY: call every audited result a mismatch (a lying validator; the quorum outvotes it).
    FalseAccuse,
}

/// Settings of the audit loop.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Judging behaviour.
    pub mode: AuditMode,
    /// Model cache directory.
    pub models_dir: PathBuf,
    /// ONNX Runtime library (None: ORT_DYLIB_PATH or the checkout's .deps).
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads per model (0: ONNX Runtime's default).
    pub threads: usize,
    /// Most verdicts per submitVerdicts transaction.
    pub max_verdicts_per_tx: usize,
    /// Time allowed to one fetch of an off-chain payload (a failed audit fetch is retried on
    /// later steps while the blob store is unavailable).
    pub blob_timeout: Duration,
    /// Largest off-chain payload fetched.
    pub max_blob_bytes: u64,
    /// Poll interval.
    pub poll: Duration,
    /// Known-answer tasks to submit, if any.
    pub canary: Option<CanaryOptions>,
}

/// Canary tasks: known-answer tasks submitted from a wallet with no stake (workers cannot tell
/// them from users' tasks); their outcomes are reported on-chain, a wrong result is challenged.
#[derive(Clone)]
pub struct CanaryOptions {
    /// Provider signing with the canary wallet (pays the fees and the challenge bonds).
    pub provider: DynProvider,
    /// The canary wallet's key (authorizes this validator to report its tasks).
    pub signer: PrivateKeySigner,
    /// Model the canaries are for.
    pub model_id: u32,
    /// Canonical inputs to cycle through.
    pub inputs: Vec<Vec<u8>>,
    /// Seconds between canaries.
    pub interval: Duration,
}

impl std::fmt::Debug for CanaryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryOptions")
            .field("wallet", &self.signer.address())
            .field("model_id", &self.model_id)
            .field("inputs", &self.inputs.len())
            .field("interval", &self.interval)
            .finish()
    }
}

alloy::sol! {
    /// What a canary's submitter signs to let `validator` report the task (AuditManager domain).
    struct Canary {
        uint256 taskId;
        address validator;
    }
}

/// A committed batch waiting to be sealed and audited.
#[derive(Debug, Clone)]
struct Batch {
    id: U256,
    block: u64,
    task_ids: Vec<U256>,
    hashes: Vec<B256>,
    codes: Vec<u16>,
    outputs: Vec<Bytes>,
    /// Its audit randomness is on-chain (seen by `seal_ready`, or sealed by this verifier).
    sealed: bool,
}

impl Batch {
    fn leaves(&self) -> Vec<B256> {
        (0..self.task_ids.len())
            .map(|i| merkle::leaf_hash(self.task_ids[i], self.hashes[i], self.codes[i]))
            .collect()
    }
}

/// An audit (or dispute vote) whose worker output cannot be fetched because the blob store is
/// unavailable waits, with no verdict, until its deadline is this close: the last quarter of its
/// window, and never less than this many seconds (time for one more fetch, the re-execution and
/// the verdict's transaction). Windows under 4 minutes therefore wait at most `window - 60 s`.
const LAST_CALL_SECS: u64 = 60;

/// Where an audit or a dispute vote stands in chain time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AuditClock {
    /// Latest block timestamp.
    now: u64,
    /// Last second a verdict (vote) is accepted: the end of the task's challenge window (the
    /// dispute's deadline).
    deadline: u64,
    /// Length of that window (TaskManager.challengeWindow, AuditManager disputeWindow).
    window: u64,
}

impl AuditClock {
    /// Seconds left before the deadline.
    fn left(&self) -> u64 {
        self.deadline.saturating_sub(self.now)
    }

    /// The deadline is close (or passed): no more waiting for the blob store.
    fn closing(&self) -> bool {
        self.left() <= (self.window / 4).max(LAST_CALL_SECS)
    }
}

/// What an audit does with a worker's published output it could not fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unfetched {
    /// The blob store is unavailable (a transient failure) and the audit has time: no verdict
    /// now, a later step fetches again. An outage of shared storage must not slash an honest
    /// worker.
    Wait,
    /// Still unavailable with the deadline close: judged failed, so a worker that publishes to
    /// a store that never answers cannot escape its audit.
    FailedAtDeadline,
    /// Missing (404), not matching the committed hash, too large, malformed: judged failed at once.
    Failed,
}

/// The decision for an output that could not be fetched with `err` (see [`Unfetched`]).
fn unfetched(err: &blobstore::BlobError, clock: &AuditClock) -> Unfetched {
    if !err.is_transient() {
        Unfetched::Failed
    } else if clock.closing() {
        Unfetched::FailedAtDeadline
    } else {
        Unfetched::Wait
    }
}

/// No verdict yet: something the audit needs is unavailable for now (the task's input or the
/// worker's output behind a blob store outage, or the chain's node not answering the task's input
/// log or its model). The audit stays pending and is judged again on a later step, until its
/// deadline: a validator that gave up on a transient failure would miss the audit and be
/// reported for it.
#[derive(Debug, thiserror::Error)]
#[error("{0}; judged again on a later step")]
struct RetryLater(String);

/// Whether `e` (with any context) is a [`RetryLater`].
fn retry_later(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RetryLater>().is_some()
}

/// The audit loop's blob client. It remembers the stores (scheme, host and port) that failed
/// transiently during the current step: later fetches from one of them in the same step fail at
/// once instead of each waiting for its own timeout, so a hung store holds a step for one
/// timeout, not one per pending audit. Every step tries them again.
struct Blobs {
    client: blobstore::Client,
    /// store -> its first transient error this step
    down: HashMap<String, String>,
}

impl Blobs {
    fn new(client: blobstore::Client) -> Self {
        Self {
            client,
            down: HashMap::new(),
        }
    }

    /// A new step: every store is tried again.
    fn new_step(&mut self) {
        self.down.clear();
    }

    async fn fetch(&mut self, blob: &blobstore::BlobRef) -> Result<Vec<u8>, blobstore::BlobError> {
        let url = self.client.url_of(blob)?;
        let store = origin(&url).to_string();
        if let Some(first) = self.down.get(&store) {
            return Err(blobstore::BlobError::Unreachable {
                location: url,
                detail: format!("not tried again this step after: {first}"),
            });
        }
        let fetched = self.client.fetch(blob).await;
        if let Err(e) = &fetched {
            if e.is_transient() {
                self.down.insert(store, e.to_string());
            }
        }
        fetched
    }
}

/// `scheme://host:port` of a URL (the whole string when it has no path).
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// A worker's published output: the bytes themselves, or what its blob reference points at. A
/// reference that is malformed, or whose blob is missing, too large or not what it claims,
/// gives no bytes (which never hash to a committed output, so the result is judged failed); so
/// does one still unfetchable close to the deadline. A transient failure (the blob store down,
/// a timeout, HTTP 5xx) with time left is `RetryLater`: no verdict now. One fetch per call (at
/// most the client's timeout); the steps of the audit loop are the retries.
async fn fetch_published(
    blobs: &mut Blobs,
    task_id: U256,
    published: &Bytes,
    clock: AuditClock,
) -> Result<Bytes, RetryLater> {
    let blob = match blobstore::BlobRef::decode(published) {
        None => return Ok(published.clone()),
        Some(Err(e)) => {
            tracing::warn!(task = %task_id, error = %e, "worker published a malformed blob reference; judged failed");
            return Ok(Bytes::new());
        }
        Some(Ok(blob)) => blob,
    };
    let started = std::time::Instant::now();
    let err = match blobs.fetch(&blob).await {
        Ok(b) => return Ok(Bytes::from(b)),
        Err(e) => e,
    };
    // chain time moves on while a fetch times out
    let clock = AuditClock {
        now: clock.now + started.elapsed().as_secs(),
        ..clock
    };
    let secs_left = clock.left();
    match unfetched(&err, &clock) {
        Unfetched::Wait => {
            tracing::warn!(task = %task_id, error = %err, secs_left, "worker output cannot be fetched: blob store unavailable; no verdict yet, retrying on a later step");
            Err(RetryLater(format!(
                "task {task_id}: worker output: blob store unavailable: {err} ({secs_left} s before the deadline)"
            )))
        }
        Unfetched::FailedAtDeadline => {
            tracing::warn!(task = %task_id, error = %err, secs_left, "worker output still unavailable close to the deadline; judged failed");
            Ok(Bytes::new())
        }
        Unfetched::Failed => {
            tracing::warn!(task = %task_id, error = %err, "worker output missing or invalid (not a store outage); judged failed");
            Ok(Bytes::new())
        }
    }
}

/// A signed verdict ready to post.
struct Signed {
    verdict: Verdict,
    signature: Bytes,
    proof: Vec<B256>,
}

/// An audit drawn for another validator, watched until its challenge window closes: a missing
/// verdict is then reported on-chain (`reportMissedAudit`), which lowers that validator's share.
#[derive(Debug, Clone)]
struct OthersAudit {
    batch_id: U256,
    task_id: U256,
    output_hash: B256,
    proof: Vec<B256>,
    validator: Address,
}

/// An open dispute this validator was drawn for, or accused in.
#[derive(Debug, Clone)]
struct OpenDispute {
    task_id: U256,
    deadline: u64,
    /// the block whose successor's hash draws the quorum (drawQuorum from quorum_block + 2)
    quorum_block: u64,
    drawn: bool,
    /// this validator opened it (it keeps watching until it resolves)
    accuser: bool,
    voted: bool,
    member: bool,
}

/// Counters for logs, metrics and tests.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct AuditStats {
    /// Batches this verifier sealed.
    pub sealed: u64,
    /// Verdicts accepted on-chain.
    pub verdicts: u64,
    /// Of which mismatches (disputes opened).
    pub mismatches: u64,
    /// Dispute votes cast.
    pub votes: u64,
    /// Disputes resolved by this verifier's transaction.
    pub resolved: u64,
    /// Canary tasks submitted.
    pub canaries_submitted: u64,
    /// Canary outcomes reported on-chain.
    pub canaries_reported: u64,
    /// Canary tasks challenged (wrong result).
    pub canaries_challenged: u64,
}

/// The audit loop of one validator.
pub struct Auditor {
    provider: DynProvider,
    signer: PrivateKeySigner,
    me: Address,
    chain_id: u64,
    deployment: Deployment,
    opts: AuditOptions,
    runtime: Arc<Runtime>,
    cache: Arc<BundleCache>,
    blobs: Blobs,
    models: HashMap<u32, (B256, Arc<Mutex<Judge>>)>,
    next_block: u64,
    batches: BTreeMap<U256, Batch>,
    disputes: BTreeMap<U256, OpenDispute>,
    /// Others' audits to check for a missed deadline, by the end of their challenge window.
    others: Vec<(u64, OthersAudit)>,
    judged: Judged,
    /// Canary tasks in flight: task id -> (input, expected output).
    canaries: HashMap<U256, (Vec<u8>, Vec<u8>)>,
    /// Committed canary results whose output could not be fetched yet (blob store unavailable):
    /// checked again on the next step.
    canary_retries: Vec<(Batch, usize)>,
    /// Wrong canary results challenged, reported once judged Fraud: task id -> (expected hash, quality).
    unproven_canaries: HashMap<U256, (B256, u32)>,
    next_canary: std::time::Instant,
    canary_index: usize,
    /// Shared counters.
    pub stats: Arc<Mutex<AuditStats>>,
}

use protocol::logs::LOG_CHUNK;

/// Sends a contract call with twice its gas estimate, at least `$floor`. The gas of these calls
/// depends on state that can change between the estimate and the block (a validator joining
/// grows the sortition tree; the vote that reaches a majority also resolves and slashes), and
/// an out-of-gas revert would lose the action. A call that would revert fails at the estimate.
macro_rules! send_padded {
    ($inst:expr, $method:ident ( $($arg:expr),* ), $floor:expr) => {{
        let inst = $inst;
        send_padded!(inst.$method($($arg),*), $floor)
    }};
    ($call:expr, $floor:expr) => {{
        let call = $call;
        match call.estimate_gas().await {
            Ok(estimate) => {
                call.gas(estimate.saturating_mul(2).max($floor))
                    .send()
                    .await
            }
            Err(e) => Err(e),
        }
    }};
}

/// How long a sent transaction may take to be mined before the step gives up (and retries).
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

impl Auditor {
    /// Loads ONNX Runtime and the model cache, and makes sure this validator is in the audit draw.
    pub async fn new(
        provider: DynProvider,
        signer: PrivateKeySigner,
        chain_id: u64,
        deployment: Deployment,
        opts: AuditOptions,
    ) -> Result<Self> {
        let a = Self::unjoined(provider, signer, chain_id, deployment, opts)?;
        a.join().await?;
        if a.opts.mode != AuditMode::Honest {
            tracing::warn!(mode = ?a.opts.mode, "TEST-ONLY audit mode: this validator judges without re-executing and will be slashed");
        }
        Ok(a)
    }

    /// [`Auditor::new`] without a call to the chain: ONNX Runtime, the model cache and empty
    /// state, not yet in the audit draw.
    fn unjoined(
        provider: DynProvider,
        signer: PrivateKeySigner,
        chain_id: u64,
        deployment: Deployment,
        opts: AuditOptions,
    ) -> Result<Self> {
        let runtime = Runtime::init(opts.ort_lib.as_deref()).map_err(|e| {
            anyhow!("ONNX Runtime: {e} (pass --ort-lib or set ORT_DYLIB_PATH; `make setup` installs it into .deps/)")
        })?;
        let cache = ModelCache::new(opts.models_dir.clone())
            .map_err(|e| anyhow!("--models-dir {}: {e}", opts.models_dir.display()))?;
        let me = signer.address();
        let blobs = blobstore::Client::new(opts.blob_timeout, opts.max_blob_bytes)
            .map_err(|e| anyhow!("blob client: {e}"))?;
        Ok(Self {
            provider,
            signer,
            me,
            chain_id,
            next_block: deployment.start_block,
            deployment,
            opts,
            runtime: Arc::new(runtime),
            cache: Arc::new(BundleCache::new(cache)),
            blobs: Blobs::new(blobs),
            models: HashMap::new(),
            batches: BTreeMap::new(),
            disputes: BTreeMap::new(),
            others: Vec::new(),
            judged: Judged::default(),
            canaries: HashMap::new(),
            canary_retries: Vec::new(),
            next_canary: std::time::Instant::now(),
            canary_index: 0,
            unproven_canaries: HashMap::new(),
            stats: Arc::new(Mutex::new(AuditStats::default())),
        })
    }

    fn audit(&self) -> IAuditManager::IAuditManagerInstance<&DynProvider> {
        IAuditManager::new(self.deployment.audit_manager, &self.provider)
    }

    fn tm(&self) -> ITaskManager::ITaskManagerInstance<&DynProvider> {
        ITaskManager::new(self.deployment.task_manager, &self.provider)
    }

    /// joinValidators once; syncValidator when already a member (stake may have changed).
    async fn join(&self) -> Result<()> {
        let audit = self.audit();
        let weight = audit
            .validatorWeight(self.me)
            .call()
            .await
            .context("AuditManager.validatorWeight")?;
        if !weight.is_zero() {
            return Ok(());
        }
        match send_padded!(audit.joinValidators(), 300_000) {
            Ok(p) => {
                let r = p
                    .with_timeout(Some(RECEIPT_TIMEOUT))
                    .get_receipt()
                    .await
                    .context("joinValidators receipt")?;
                if !r.status() {
                    anyhow::bail!("joinValidators reverted (tx {})", r.transaction_hash);
                }
                tracing::info!(validator = %self.me, "joined the audit draw");
            }
            Err(e) => match decoded(&e) {
                Some(IAuditManager::IAuditManagerErrors::AlreadyJoined(_)) => {
                    let r = audit
                        .syncValidator(self.me)
                        .send()
                        .await
                        .context("syncValidator")?
                        .with_timeout(Some(RECEIPT_TIMEOUT))
                        .get_receipt()
                        .await?;
                    tracing::info!(tx = %r.transaction_hash, "audit draw weight synced");
                }
                Some(other) => anyhow::bail!("joinValidators reverted: {other:?}"),
                None => return Err(anyhow!("joinValidators: {e}")),
            },
        }
        Ok(())
    }

    /// Polls until `stop` flips: one step per poll interval; a failing step is logged and retried.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            if let Err(e) = self.step().await {
                tracing::warn!(error = %format!("{e:#}"), "audit step failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.opts.poll) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One pass: read new logs, seal, audit, post verdicts, vote, resolve.
    pub async fn step(&mut self) -> Result<()> {
        let head = self
            .provider
            .get_block_number()
            .await
            .context("eth_blockNumber")?;
        self.blobs.new_step();
        let mut hits = self.read_logs(head).await?;
        hits.append(&mut self.canary_retries);
        for (batch, index) in hits {
            if let Err(e) = self.check_canary(&batch, index).await {
                tracing::warn!(error = %format!("{e:#}"), "canary check failed");
            }
        }
        if let Err(e) = self.maybe_submit_canary().await {
            tracing::warn!(error = %format!("{e:#}"), "canary submission failed; retrying later");
        }
        let now = self.now().await?;
        self.seal_ready(head, now).await?;
        let signed = self.judge_sealed(now).await?;
        self.post(signed).await;
        self.handle_disputes(head, now).await?;
        self.report_proven_canaries().await;
        self.report_misses(now).await;
        Ok(())
    }

    async fn now(&self) -> Result<u64> {
        let b = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .context("eth_getBlockByNumber(latest)")?
            .ok_or_else(|| anyhow!("no latest block"))?;
        Ok(b.header.timestamp)
    }

    /// Reads new logs; returns the committed results of this validator's canary tasks.
    async fn read_logs(&mut self, head: u64) -> Result<Vec<(Batch, usize)>> {
        let mut hits = Vec::new();
        while self.next_block <= head {
            let from = self.next_block;
            let to = head.min(from + LOG_CHUNK - 1);
            let filter = Filter::new()
                .address(vec![
                    self.deployment.task_manager,
                    self.deployment.audit_manager,
                ])
                .event_signature(vec![
                    ITaskManager::ResultsCommitted::SIGNATURE_HASH,
                    IAuditManager::DisputeOpened::SIGNATURE_HASH,
                    IAuditManager::QuorumDrawn::SIGNATURE_HASH,
                    IAuditManager::QuorumDeferred::SIGNATURE_HASH,
                ])
                .from_block(from)
                .to_block(to);
            let logs = self
                .provider
                .get_logs(&filter)
                .await
                .with_context(|| format!("eth_getLogs blocks {from}..={to}"))?;
            for log in logs {
                let block = log.block_number.unwrap_or(to);
                if let Ok(ev) = log.log_decode::<ITaskManager::ResultsCommitted>() {
                    let d = ev.inner.data;
                    if d.worker == self.me {
                        continue;
                    }
                    let batch = Batch {
                        id: d.batchId,
                        block,
                        task_ids: d.taskIds,
                        hashes: d.outputHashes,
                        codes: d.codes,
                        outputs: d.outputs,
                        sealed: false,
                    };
                    for (i, t) in batch.task_ids.iter().enumerate() {
                        if self.canaries.contains_key(t) {
                            hits.push((batch.clone(), i));
                        }
                    }
                    self.batches.insert(batch.id, batch);
                } else if let Ok(ev) = log.log_decode::<IAuditManager::DisputeOpened>() {
                    // every validator watches a new dispute until its quorum is drawn (anyone may
                    // draw it), then only its members and its accuser keep it
                    let d = ev.inner.data;
                    self.disputes.insert(
                        d.taskId,
                        OpenDispute {
                            task_id: d.taskId,
                            deadline: d.deadline,
                            quorum_block: d.quorumBlock,
                            drawn: false,
                            accuser: d.accuser == self.me,
                            voted: false,
                            member: false,
                        },
                    );
                } else if let Ok(ev) = log.log_decode::<IAuditManager::QuorumDrawn>() {
                    let d = ev.inner.data;
                    let member = d.members.contains(&self.me);
                    let keep = match self.disputes.get_mut(&d.taskId) {
                        Some(x) => {
                            x.drawn = true;
                            x.member = member;
                            x.deadline = d.deadline;
                            member || x.accuser
                        }
                        None => false,
                    };
                    if !keep {
                        self.disputes.remove(&d.taskId);
                    }
                } else if let Ok(ev) = log.log_decode::<IAuditManager::QuorumDeferred>() {
                    let d = ev.inner.data;
                    if let Some(x) = self.disputes.get_mut(&d.taskId) {
                        x.quorum_block = d.quorumBlock;
                        x.deadline = d.deadline;
                    }
                }
            }
            self.next_block = to + 1;
        }
        Ok(hits)
    }

    /// Submits the next canary when one is due: runs the model on the input first (the known
    /// answer), then submits it from the canary wallet at the model's price.
    async fn maybe_submit_canary(&mut self) -> Result<()> {
        let Some(c) = self.opts.canary.clone() else {
            return Ok(());
        };
        if std::time::Instant::now() < self.next_canary || c.inputs.is_empty() {
            return Ok(());
        }
        self.next_canary = std::time::Instant::now() + c.interval;
        let input = c.inputs[self.canary_index % c.inputs.len()].clone();
        self.canary_index += 1;
        let model = self.model(c.model_id).await?;
        let run_input = input.clone();
        let expected = tokio::task::spawn_blocking(move || {
            let mut m = model
                .lock()
                .map_err(|_| anyhow!("model session poisoned"))?;
            m.run(&run_input)
        })
        .await
        .map_err(|e| anyhow!("inference crashed: {e}"))??;
        let price = IModelRegistry::new(self.deployment.model_registry, &self.provider)
            .getModel(c.model_id)
            .call()
            .await
            .context("getModel")?
            .pricePerCall;
        let price = U256::from(price);
        let token = protocol::bindings::DNToken::new(self.deployment.token, &c.provider);
        token
            .approve(self.deployment.task_manager, price)
            .send()
            .await
            .context("canary wallet: approve the fee")?
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await?;
        let tm = ITaskManager::new(self.deployment.task_manager, &c.provider);
        let input_for_check = input.clone();
        let call = tm.submitTask(c.model_id, Bytes::from(input), price);
        let gas = call
            .estimate_gas()
            .await
            .map_err(|e| anyhow!("submitTask: {}", describe_tm(&e)))?;
        let receipt = call
            .gas(gas * 3 / 2)
            .send()
            .await?
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await?;
        let task_id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<ITaskManager::TaskSubmitted>().ok())
            .map(|l| l.inner.data.taskId)
            .ok_or_else(|| {
                anyhow!(
                    "canary submitTask: no TaskSubmitted event (tx {})",
                    receipt.transaction_hash
                )
            })?;
        self.canaries.insert(task_id, (input_for_check, expected));
        self.stats
            .lock()
            .map(|mut s| s.canaries_submitted += 1)
            .ok();
        tracing::info!(task = %task_id, model = c.model_id, "canary submitted");
        Ok(())
    }

    /// Compares a canary's committed result with the known answer. A right one is reported at once; a
    /// wrong one is challenged (bond from the canary wallet) and reported only once a quorum judged it
    /// Fraud (AuditManager refuses an unproven failure: `CanaryNotProven`), see `report_proven_canaries`.
    async fn check_canary(&mut self, batch: &Batch, i: usize) -> Result<()> {
        let Some(c) = self.opts.canary.clone() else {
            return Ok(());
        };
        let task_id = batch.task_ids[i];
        let Some((input, expected)) = self.canaries.remove(&task_id) else {
            return Ok(());
        };
        let expected_hash = keccak256(&expected);
        let code = batch.codes[i];
        if code != 0 && !protocol::codes::is_input_fault_code(code) {
            // a worker-side failure pays the worker nothing and cannot be challenged
            tracing::info!(task = %task_id, code, "canary answered with a worker-side failure: not reportable");
            return Ok(());
        }
        // an input fault on a known-good input, or published bytes that are not what the worker
        // committed to, is wrong
        let published = if code != 0 {
            Bytes::new()
        } else if blobstore::BlobRef::decode(&batch.outputs[i]).is_some() {
            let clock = self.task_clock(task_id).await?;
            match self
                .published_bytes(task_id, &batch.outputs[i], clock)
                .await
            {
                Ok(b) => b,
                Err(_) => {
                    // the blob store is unavailable: check again next step
                    self.canaries.insert(task_id, (input, expected));
                    self.canary_retries.push((batch.clone(), i));
                    return Ok(());
                }
            }
        } else {
            batch.outputs[i].clone()
        };
        let (matches, quality) = if code != 0 || keccak256(&published) != batch.hashes[i] {
            (false, 0)
        } else {
            let judge = self.model(c.model_id).await?;
            let claimed = published.to_vec();
            let v = tokio::task::spawn_blocking(move || {
                judge
                    .lock()
                    .map_err(|_| anyhow!("model session poisoned"))?
                    .check(&input, &claimed, Some(&expected))
            })
            .await
            .map_err(|e| anyhow!("inference crashed: {e}"))??;
            (v.matches, v.quality_ppm)
        };
        if matches {
            let quality = protocol::verdict::verdict_quality(true, quality);
            return self
                .report_canary(task_id, expected_hash, true, quality)
                .await;
        }
        // wrong result: the canary wallet, as the task's submitter, has a quorum re-execute it; the
        // failure is reported once the quorum (or an audit's dispute) found fraud
        self.unproven_canaries
            .insert(task_id, (expected_hash, quality));
        let audit = IAuditManager::new(self.deployment.audit_manager, &c.provider);
        let proof = merkle::proof(&batch.leaves(), i);
        let challenge = audit.challenge(task_id, batch.id, batch.hashes[i], proof);
        // the bond is pulled by transferFrom: approve it before the dry run
        let bond = U256::from(audit.params().call().await.context("params")?.challengeBond);
        protocol::bindings::DNToken::new(self.deployment.token, &c.provider)
            .approve(self.deployment.audit_manager, bond)
            .send()
            .await
            .context("canary wallet: approve the challenge bond")?
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await?;
        if let Err(e) = challenge.call().await {
            tracing::info!(task = %task_id, reason = %describe(&e), "wrong canary result not challenged (an audit may already judge it)");
            return Ok(());
        }
        let r = send_padded!(challenge, 700_000)
            .map_err(|e| anyhow!("challenge: {}", describe(&e)))?
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await?;
        if r.status() {
            self.stats
                .lock()
                .map(|mut s| s.canaries_challenged += 1)
                .ok();
        }
        tracing::warn!(task = %task_id, worker_hash = %batch.hashes[i], expected = %expected_hash, tx = %r.transaction_hash, "canary result wrong: challenged");
        Ok(())
    }

    /// Reports each wrong canary whose task a quorum judged Fraud; forgets those judged otherwise
    /// (Cleared, Undecided, Passed...: the failure is not proven, so it is not reported).
    async fn report_proven_canaries(&mut self) {
        if self.unproven_canaries.is_empty() {
            return;
        }
        let pending: Vec<(U256, (B256, u32))> = self
            .unproven_canaries
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        for (task_id, (expected_hash, quality)) in pending {
            let state = match self.audit().auditRecord(task_id).call().await {
                Ok(rec) => rec.state,
                Err(e) => {
                    tracing::warn!(task = %task_id, error = %describe(&e), "auditRecord failed; retrying later");
                    continue;
                }
            };
            const DISPUTED: u8 = 2;
            const FRAUD: u8 = 3;
            match state {
                DISPUTED => continue,
                FRAUD => {
                    if let Err(e) = self
                        .report_canary(task_id, expected_hash, false, quality)
                        .await
                    {
                        tracing::warn!(task = %task_id, error = %format!("{e:#}"), "canary report failed; retrying later");
                        continue;
                    }
                }
                other => {
                    tracing::info!(task = %task_id, state = other, "wrong canary result not proven by a quorum: not reported")
                }
            }
            self.unproven_canaries.remove(&task_id);
        }
    }

    /// Reports one canary outcome, authorized by the canary wallet's EIP-712 signature.
    async fn report_canary(
        &mut self,
        task_id: U256,
        expected_hash: B256,
        matches: bool,
        quality: u32,
    ) -> Result<()> {
        let Some(c) = self.opts.canary.clone() else {
            return Ok(());
        };
        let domain =
            protocol::verdict::verdict_domain(self.chain_id, self.deployment.audit_manager);
        let digest = alloy::sol_types::SolStruct::eip712_signing_hash(
            &Canary {
                taskId: task_id,
                validator: self.me,
            },
            &domain,
        );
        let sig = alloy::signers::SignerSync::sign_hash_sync(&c.signer, &digest)?;
        let audit_me = self.audit();
        let report = audit_me.reportCanary(
            task_id,
            expected_hash,
            matches,
            quality,
            Bytes::from(signature_bytes(&sig).to_vec()),
        );
        match report.send().await {
            Ok(p) => {
                let r = p.with_timeout(Some(RECEIPT_TIMEOUT)).get_receipt().await?;
                if r.status() {
                    self.stats.lock().map(|mut s| s.canaries_reported += 1).ok();
                }
                tracing::info!(task = %task_id, matches, quality_ppm = quality, tx = %r.transaction_hash, "canary reported");
            }
            Err(e) => {
                tracing::warn!(task = %task_id, error = %describe(&e), "reportCanary refused")
            }
        }
        Ok(())
    }

    /// Seals every batch whose post-commit block exists and is not sealed yet, in one transaction.
    /// Batches whose tasks are all settled or past their challenge window are dropped unsealed
    /// (after a restart the verifier reads the whole history; sealing it would only cost gas).
    async fn seal_ready(&mut self, head: u64, now: u64) -> Result<()> {
        let mut to_seal = Vec::new();
        let mut stale = Vec::new();
        let mut sealed = Vec::new();
        for b in self.batches.values() {
            if b.sealed || head < b.block + 2 {
                continue;
            }
            let seal = self.audit().sealOf(b.id).call().await.context("sealOf")?;
            if seal.randomness != B256::ZERO {
                sealed.push(b.id);
                continue;
            }
            // results and input faults are audited; worker-side failures are not
            let Some(i) = b.codes.iter().position(|c| auditable(*c)) else {
                stale.push(b.id);
                continue;
            };
            let task = self
                .tm()
                .getTask(b.task_ids[i])
                .call()
                .await
                .context("getTask")?;
            if (task.status == 2 || task.status == 3) && now <= task.deadline {
                to_seal.push(b.id);
            } else {
                stale.push(b.id);
            }
        }
        for id in stale {
            self.batches.remove(&id);
        }
        self.mark_sealed(&sealed);
        if to_seal.is_empty() {
            return Ok(());
        }
        match send_padded!(self.audit(), sealBatches(to_seal.clone()), 100_000) {
            Ok(p) => {
                let r = p
                    .with_timeout(Some(RECEIPT_TIMEOUT))
                    .get_receipt()
                    .await
                    .context("sealBatches receipt")?;
                if r.status() {
                    self.mark_sealed(&to_seal);
                    self.stats
                        .lock()
                        .map(|mut s| s.sealed += to_seal.len() as u64)
                        .ok();
                    tracing::info!(batches = ?to_seal, tx = %r.transaction_hash, "batches sealed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %describe(&e), "sealBatches failed (another validator may have sealed)")
            }
        }
        Ok(())
    }

    fn mark_sealed(&mut self, ids: &[U256]) {
        for id in ids {
            if let Some(b) = self.batches.get_mut(id) {
                b.sealed = true;
            }
        }
    }

    /// Judges this validator's audits in every sealed batch; drops batches that are done. An
    /// audit that cannot be judged yet (a payload unavailable for now, an RPC error) keeps its
    /// batch and is judged again on the next step, until its deadline; an audit is marked judged
    /// only once its verdict is signed or it is given up, so it is never signed twice.
    async fn judge_sealed(&mut self, now: u64) -> Result<Vec<Signed>> {
        self.judged.forget_ended(now);
        let mut out = Vec::new();
        let mut done = Vec::new();
        // TaskManager.challengeWindow, read once per step when an audit of this validator needs it
        let mut challenge_window: Option<u64> = None;
        let ids: Vec<U256> = self
            .batches
            .values()
            .filter(|b| b.sealed)
            .map(|b| b.id)
            .collect();
        for id in ids {
            let batch = self.batches[&id].clone();
            let leaves = batch.leaves();
            let mut later = false;
            for (i, task_id) in batch.task_ids.iter().enumerate() {
                if !auditable(batch.codes[i]) || self.judged.contains(task_id) {
                    continue;
                }
                let drawn = match self.audit().auditOf(id, *task_id).call().await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(task = %task_id, error = %e, "auditOf failed; retrying on a later step");
                        later = true;
                        continue;
                    }
                };
                if !drawn.audited {
                    continue;
                }
                let task = match self.tm().getTask(*task_id).call().await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(task = %task_id, error = %e, "getTask failed; retrying on a later step");
                        later = true;
                        continue;
                    }
                };
                if drawn.validator != self.me {
                    self.judged.insert(*task_id, task.deadline);
                    self.others.push((
                        task.deadline,
                        OthersAudit {
                            batch_id: id,
                            task_id: *task_id,
                            output_hash: batch.hashes[i],
                            proof: merkle::proof(&leaves, i),
                            validator: drawn.validator,
                        },
                    ));
                    continue;
                }
                if !(task.status == 2 || task.status == 3) || now > task.deadline {
                    self.judged.insert(*task_id, task.deadline);
                    tracing::debug!(task = %task_id, status = task.status, "audited task no longer open; verdict skipped");
                    continue;
                }
                let window = match challenge_window {
                    Some(w) => w,
                    None => match self.tm().challengeWindow().call().await {
                        Ok(w) => *challenge_window.insert(w),
                        Err(e) => {
                            tracing::warn!(task = %task_id, error = %e, "challengeWindow failed; retrying on a later step");
                            later = true;
                            continue;
                        }
                    },
                };
                let clock = AuditClock {
                    now,
                    deadline: task.deadline,
                    window,
                };
                match self
                    .judge(
                        *task_id,
                        task.modelId,
                        batch.block,
                        &batch.outputs[i],
                        batch.hashes[i],
                        batch.codes[i],
                        clock,
                    )
                    .await
                {
                    Ok((own_hash, matches, quality)) => {
                        let verdict = Verdict {
                            taskId: *task_id,
                            batchId: id,
                            workerOutputHash: batch.hashes[i],
                            validatorOutputHash: own_hash,
                            qualityPpm: protocol::verdict::verdict_quality(matches, quality),
                            matches,
                            deadline: task.deadline,
                        };
                        let sig = sign_verdict(
                            &self.signer,
                            &verdict,
                            self.chain_id,
                            self.deployment.audit_manager,
                        )?;
                        self.judged.insert(*task_id, task.deadline);
                        tracing::info!(task = %task_id, batch = %id, matches, quality_ppm = quality, "audited");
                        out.push(Signed {
                            verdict,
                            signature: Bytes::from(signature_bytes(&sig).to_vec()),
                            proof: merkle::proof(&leaves, i),
                        });
                    }
                    Err(e) if retry_later(&e) => {
                        tracing::warn!(task = %task_id, batch = %id, secs_left = clock.left(), error = %format!("{e:#}"), "audit postponed: no verdict yet");
                        later = true;
                    }
                    Err(e) => {
                        self.judged.insert(*task_id, task.deadline);
                        tracing::warn!(task = %task_id, error = %format!("{e:#}"), "cannot audit this task; no verdict signed")
                    }
                }
            }
            if !later {
                done.push(id);
            }
        }
        for id in done {
            self.batches.remove(&id);
        }
        Ok(out)
    }

    /// Re-executes a task (unless a TEST-ONLY mode says otherwise) and compares with the worker's
    /// published output, or, for a committed input fault (`worker_code` 1-3), checks that its own
    /// run fails with the same code. Returns (own output hash, matches, quality ppm), or a
    /// [`RetryLater`] error while an off-chain payload is unavailable (see [`fetch_published`];
    /// `clock` says how long it may wait).
    #[allow(clippy::too_many_arguments)]
    async fn judge(
        &mut self,
        task_id: U256,
        model_id: u32,
        commit_block: u64,
        worker_output: &Bytes,
        worker_hash: B256,
        worker_code: u16,
        clock: AuditClock,
    ) -> Result<(B256, bool, u32)> {
        match self.opts.mode {
            AuditMode::RubberStamp => return Ok((worker_hash, true, 1_000_000)),
            AuditMode::FalseAccuse => return Ok((keccak256(worker_hash), false, 0)),
            AuditMode::Honest => {}
        }
        let input = self
            .input_of(task_id, commit_block)
            .await
            .map_err(|e| RetryLater(format!("{e:#}")))?
            .ok_or_else(|| anyhow!("no TaskSubmitted event for task {task_id}"))?;
        // The validator must see the input to judge; an input it cannot fetch is its problem
        // (no verdict), not the worker's: while the store is unavailable the audit waits (until
        // its deadline), a missing or invalid input gives it up.
        let input = match blobstore::BlobRef::decode(&input) {
            None => input,
            Some(r) => {
                let r = r.map_err(|e| anyhow!("task {task_id} input: {e}"))?;
                match self.blobs.fetch(&r).await {
                    Ok(bytes) => bytes,
                    Err(e) if e.is_transient() => {
                        return Err(RetryLater(format!(
                            "task {task_id} input: blob store unavailable: {e}"
                        ))
                        .into())
                    }
                    Err(e) => return Err(anyhow!("task {task_id} input: {e}")),
                }
            }
        };
        let judge = self.model(model_id).await?;
        if worker_code != 0 {
            let own = tokio::task::spawn_blocking(move || {
                let mut j = judge
                    .lock()
                    .map_err(|_| anyhow!("model session poisoned"))?;
                anyhow::Ok(j.run_raw(&input))
            })
            .await
            .map_err(|e| anyhow!("inference crashed: {e}"))??;
            return failure_verdict(own, worker_code, worker_hash);
        }
        // A published output that is missing, malformed or not what the worker committed to is
        // a failed result; one the blob store cannot serve for now waits (see fetch_published).
        let worker_output = self.published_bytes(task_id, worker_output, clock).await?;
        let worker_output = &worker_output;
        if keccak256(worker_output) != worker_hash {
            // the published bytes are not what the worker committed to
            let own = run_blocking(judge, input, None).await?.1;
            return Ok((keccak256(&own), false, 0));
        }
        let claimed = worker_output.to_vec();
        let (v, own) = run_blocking(judge, input, Some(claimed)).await?;
        // A check that accepts without producing an output (teacher-forced) attests the
        // worker's own hash; a rejection carries the validator's full re-execution.
        let own_hash = if own.is_empty() {
            worker_hash
        } else {
            keccak256(&own)
        };
        Ok((own_hash, v.matches, v.quality_ppm))
    }

    /// [`fetch_published`] with this validator's blob client.
    async fn published_bytes(
        &mut self,
        task_id: U256,
        published: &Bytes,
        clock: AuditClock,
    ) -> Result<Bytes, RetryLater> {
        fetch_published(&mut self.blobs, task_id, published, clock).await
    }

    /// The clock of a task's audit: now, the end of its challenge window, the window's length.
    async fn task_clock(&self, task_id: U256) -> Result<AuditClock> {
        let task = self.tm().getTask(task_id).call().await.context("getTask")?;
        let window = self
            .tm()
            .challengeWindow()
            .call()
            .await
            .context("challengeWindow")?;
        Ok(AuditClock {
            now: self.now().await?,
            deadline: task.deadline,
            window,
        })
    }

    async fn model(&mut self, id: u32) -> Result<Arc<Mutex<Judge>>> {
        // the node not answering is no reason to give an audit up (`RetryLater`)
        let m = IModelRegistry::new(self.deployment.model_registry, &self.provider)
            .getModel(id)
            .call()
            .await
            .map_err(|e| RetryLater(format!("getModel({id}): {e}")))?;
        if let Some((sha, model)) = self.models.get(&id) {
            if *sha == m.sha256Hash {
                return Ok(model.clone());
            }
        }
        let rule = CompareRule::from_onchain(m.rule, m.tolerance)
            .map_err(|e| anyhow!("model {id}: {e}"))?;
        let (cache, runtime, threads) =
            (self.cache.clone(), self.runtime.clone(), self.opts.threads);
        let (uri, sha) = (m.uri.clone(), m.sha256Hash.0);
        let judge = tokio::task::spawn_blocking(move || -> Result<Judge> {
            let bundle = cache
                .fetch(&uri, sha)
                .map_err(|e| anyhow!("model {id} ({uri}): {e}"))?;
            let threads = (threads > 0).then_some(threads);
            if bundle.manifest.kind == Kind::Tensor {
                let path = bundle
                    .part("model")
                    .map_err(|e| anyhow!("model {id}: {e}"))?;
                let model = Model::load(&runtime, path, Device::Cpu, threads)
                    .map_err(|e| anyhow!("model {id}: {e}"))?;
                return Ok(Judge::Tensor(model, rule));
            }
            let opts = LoadOptions {
                device: Device::Cpu,
                threads,
                max_input_bytes: usize::MAX,
            };
            let runner = inference::kinds::load(&runtime, &bundle, opts)
                .map_err(|e| anyhow!("model {id}: {e}"))?;
            Ok(Judge::Kind(runner))
        })
        .await
        .map_err(|e| anyhow!("model loader crashed: {e}"))??;
        let judge = Arc::new(Mutex::new(judge));
        self.models.insert(id, (m.sha256Hash, judge.clone()));
        Ok(judge)
    }

    /// The task's input from its TaskSubmitted event, searched backwards from the commit block.
    async fn input_of(&self, task_id: U256, hint_block: u64) -> Result<Option<Vec<u8>>> {
        let input = protocol::logs::task_input(
            &self.provider,
            self.deployment.task_manager,
            self.deployment.start_block,
            task_id,
            hint_block,
        )
        .await
        .with_context(|| format!("eth_getLogs TaskSubmitted of task {task_id}"))?;
        Ok(input.map(|b| b.to_vec()))
    }

    /// Posts verdicts in transactions of at most `max_verdicts_per_tx`; a batch that reverts is
    /// retried one verdict at a time so one stale verdict does not sink the others.
    async fn post(&mut self, signed: Vec<Signed>) {
        for chunk in signed.chunks(self.opts.max_verdicts_per_tx.max(1)) {
            if self.post_chunk(chunk).await.is_err() && chunk.len() > 1 {
                for one in chunk {
                    let _ = self.post_chunk(std::slice::from_ref(one)).await;
                }
            }
        }
    }

    async fn post_chunk(&mut self, chunk: &[Signed]) -> Result<(), ()> {
        let verdicts: Vec<_> = chunk.iter().map(|s| s.verdict.to_call()).collect();
        let sigs: Vec<Bytes> = chunk.iter().map(|s| s.signature.clone()).collect();
        let proofs: Vec<Vec<B256>> = chunk.iter().map(|s| s.proof.clone()).collect();
        let tasks: Vec<String> = chunk.iter().map(|s| s.verdict.taskId.to_string()).collect();
        let sent = send_padded!(
            self.audit(),
            submitVerdicts(verdicts, sigs, proofs),
            200_000
        );
        if sent.is_ok() {
            crate::crash::point("verdicts-sent");
        }
        let receipt = match sent {
            Ok(p) => match p
                .with_timeout(Some(Duration::from_secs(60)))
                .with_timeout(Some(RECEIPT_TIMEOUT))
                .get_receipt()
                .await
            {
                Ok(r) if r.status() => r,
                Ok(r) => {
                    tracing::warn!(tx = %r.transaction_hash, ?tasks, "submitVerdicts reverted");
                    return Err(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?tasks, "submitVerdicts: no receipt");
                    return Err(());
                }
            },
            Err(e) => {
                tracing::warn!(error = %describe(&e), ?tasks, "submitVerdicts refused");
                return Err(());
            }
        };
        let mismatches = chunk.iter().filter(|s| !s.verdict.matches).count() as u64;
        if let Ok(mut s) = self.stats.lock() {
            s.verdicts += chunk.len() as u64;
            s.mismatches += mismatches;
        }
        tracing::info!(verdicts = chunk.len(), mismatches, tx = %receipt.transaction_hash, ?tasks, "verdicts posted");
        Ok(())
    }

    /// Reports the others' audits whose challenge window closed without a verdict.
    async fn report_misses(&mut self, now: u64) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.others)
            .into_iter()
            .partition(|(deadline, _)| now > *deadline);
        self.others = later;
        for (_, a) in due {
            let audit = self.audit();
            let call =
                audit.reportMissedAudit(a.batch_id, a.task_id, a.output_hash, a.proof.clone());
            // a verdict landed (AlreadyJudged) or another validator reported it first: nothing to do
            if let Err(e) = call.call().await {
                tracing::debug!(task = %a.task_id, reason = %describe(&e), "no missed audit to report");
                continue;
            }
            match send_padded!(call, 100_000) {
                Ok(p) => match p.with_timeout(Some(RECEIPT_TIMEOUT)).get_receipt().await {
                    Ok(r) if r.status() => {
                        tracing::warn!(task = %a.task_id, validator = %a.validator, tx = %r.transaction_hash, "validator missed its audit deadline: reported")
                    }
                    Ok(r) => {
                        tracing::debug!(task = %a.task_id, tx = %r.transaction_hash, "reportMissedAudit reverted")
                    }
                    Err(e) => {
                        tracing::warn!(task = %a.task_id, error = %e, "reportMissedAudit: no receipt")
                    }
                },
                Err(e) => {
                    tracing::debug!(task = %a.task_id, error = %describe(&e), "reportMissedAudit refused")
                }
            }
        }
    }

    /// Draws the quorum of disputes whose randomness exists now, votes in the disputes this
    /// validator was drawn for, and resolves those whose deadline passed.
    async fn handle_disputes(&mut self, head: u64, now: u64) -> Result<()> {
        let ids: Vec<U256> = self.disputes.keys().copied().collect();
        for id in ids {
            let d = self.disputes[&id].clone();
            let state = self
                .audit()
                .auditRecord(id)
                .call()
                .await
                .context("auditRecord")?
                .state;
            if state != 2 {
                self.disputes.remove(&id);
                continue;
            }
            if !d.drawn {
                if head >= d.quorum_block + 2 {
                    self.draw_quorum(id).await;
                }
                if now <= d.deadline {
                    continue;
                }
            }
            if d.member && !d.voted && now <= d.deadline {
                // a vote postponed (a payload unavailable for now) is tried again next step
                if self.vote(id, now, d.deadline).await {
                    if let Some(x) = self.disputes.get_mut(&id) {
                        x.voted = true;
                    }
                }
                continue;
            }
            if now > d.deadline {
                match send_padded!(self.audit(), resolveDispute(d.task_id), 600_000) {
                    Ok(p) => {
                        if let Ok(r) = p.with_timeout(Some(RECEIPT_TIMEOUT)).get_receipt().await {
                            if r.status() {
                                self.stats.lock().map(|mut s| s.resolved += 1).ok();
                                tracing::info!(task = %id, tx = %r.transaction_hash, "dispute resolved");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(task = %id, error = %describe(&e), "resolveDispute refused")
                    }
                }
            }
        }
        Ok(())
    }

    /// Draws a dispute's quorum; another validator may have drawn it first (refused: ignored).
    async fn draw_quorum(&mut self, task_id: U256) {
        match send_padded!(self.audit(), drawQuorum(task_id), 300_000) {
            Ok(p) => match p.with_timeout(Some(RECEIPT_TIMEOUT)).get_receipt().await {
                Ok(r) if r.status() => {
                    tracing::info!(task = %task_id, tx = %r.transaction_hash, "dispute quorum drawn")
                }
                Ok(r) => {
                    tracing::debug!(task = %task_id, tx = %r.transaction_hash, "drawQuorum reverted")
                }
                Err(e) => tracing::warn!(task = %task_id, error = %e, "drawQuorum: no receipt"),
            },
            Err(e) => tracing::debug!(task = %task_id, error = %describe(&e), "drawQuorum refused"),
        }
    }

    /// Re-executes a disputed task and votes. False when the vote is postponed because a payload
    /// is unavailable for now (the blob store down, with time left before `deadline`).
    async fn vote(&mut self, task_id: U256, now: u64, deadline: u64) -> bool {
        let outcome = async {
            let task = self.tm().getTask(task_id).call().await.context("getTask")?;
            let rec = self
                .audit()
                .auditRecord(task_id)
                .call()
                .await
                .context("auditRecord")?;
            let batch_id = U256::from(rec.batchId);
            let (batch_block, output) = self.published_output(batch_id, task_id).await?;
            let window = self
                .audit()
                .params()
                .call()
                .await
                .context("params")?
                .disputeWindow;
            let clock = AuditClock {
                now,
                deadline,
                window: u64::from(window),
            };
            let (own, matches, _) = self
                .judge(
                    task_id,
                    task.modelId,
                    batch_block,
                    &output,
                    rec.workerOutputHash,
                    task.code,
                    clock,
                )
                .await?;
            // A rubber stamp votes "no fraud"; a false accuser votes "fraud".
            anyhow::Ok((own, !matches))
        }
        .await;
        let (own, fraud) = match outcome {
            Ok(x) => x,
            Err(e) if retry_later(&e) => {
                tracing::warn!(task = %task_id, secs_left = deadline.saturating_sub(now), error = %format!("{e:#}"), "dispute vote postponed");
                return false;
            }
            Err(e) => {
                tracing::warn!(task = %task_id, error = %format!("{e:#}"), "cannot re-execute the disputed task; not voting");
                return true;
            }
        };
        match send_padded!(self.audit(), vote(task_id, fraud, own), 600_000) {
            Ok(p) => match p.with_timeout(Some(RECEIPT_TIMEOUT)).get_receipt().await {
                Ok(r) if r.status() => {
                    self.stats.lock().map(|mut s| s.votes += 1).ok();
                    tracing::info!(task = %task_id, fraud, tx = %r.transaction_hash, "dispute vote cast");
                }
                Ok(r) => tracing::warn!(task = %task_id, tx = %r.transaction_hash, "vote reverted"),
                Err(e) => tracing::warn!(task = %task_id, error = %e, "vote: no receipt"),
            },
            Err(e) => tracing::warn!(task = %task_id, error = %describe(&e), "vote refused"),
        }
        true
    }

    /// The worker's published output of `task_id` from its batch's ResultsCommitted event.
    async fn published_output(&self, batch_id: U256, task_id: U256) -> Result<(u64, Bytes)> {
        let info = self
            .tm()
            .batchInfo(batch_id)
            .call()
            .await
            .context("batchInfo")?;
        let block = info.commitBlock;
        let filter = Filter::new()
            .address(self.deployment.task_manager)
            .event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH)
            .topic1(B256::from(batch_id))
            .from_block(block)
            .to_block(block);
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .context("eth_getLogs ResultsCommitted")?;
        for log in logs {
            if let Ok(ev) = log.log_decode::<ITaskManager::ResultsCommitted>() {
                let d = ev.inner.data;
                if let Some(i) = d.taskIds.iter().position(|t| *t == task_id) {
                    return Ok((block, d.outputs[i].clone()));
                }
            }
        }
        Err(anyhow!(
            "task {task_id} not found in batch {batch_id}'s ResultsCommitted event"
        ))
    }
}

/// The audits this validator is done with (its verdict signed or given up, or another
/// validator's audit, watched for a missed deadline), by task, with the task's deadline. A batch
/// whose logs are read again (a step that fails after reading its range reads it again) skips
/// them, so no verdict is signed twice. Each is forgotten once its deadline has passed, so the set
/// holds the audits of open tasks rather than every task the validator has seen since it started:
/// a batch read again after that finds the task past its deadline and signs nothing
/// (`judge_sealed` checks it before judging), and a missed audit is reported only after a dry run
/// of the report succeeds (`report_misses`), so watching it twice reports it once.
#[derive(Debug, Default)]
struct Judged(HashMap<U256, u64>);

impl Judged {
    fn insert(&mut self, task: U256, deadline: u64) {
        self.0.insert(task, deadline);
    }

    fn contains(&self, task: &U256) -> bool {
        self.0.contains_key(task)
    }

    /// Forgets the audits whose task's deadline is before `now` (chain time): the ones
    /// `judge_sealed` would skip as no longer open (`now > deadline`).
    fn forget_ended(&mut self, now: u64) {
        self.0.retain(|_, deadline| *deadline >= now);
    }
}

/// Whether a committed code is judged at all: results (0) and input faults (1-3). A worker-side
/// failure pays the worker nothing, so there is nothing to audit.
fn auditable(code: u16) -> bool {
    code == 0 || protocol::codes::is_input_fault_code(code)
}

/// The verdict on a committed input fault from the validator's own run of the task: it matches
/// only when the run fails with the same code (the worker's message hash is attested then). A run
/// that succeeds, or fails with another code, is a mismatch (a dispute, where the quorum re-runs
/// it the same way) carrying the validator's output hash (or its own failure code's hash).
/// A run that fails on the validator's side (its model unavailable, a runtime error) judges
/// nothing: no verdict.
fn failure_verdict(
    own: std::result::Result<Vec<u8>, inference::InferenceError>,
    worker_code: u16,
    worker_hash: B256,
) -> Result<(B256, bool, u32)> {
    match own {
        Ok(output) => Ok((keccak256(&output), false, 0)),
        Err(e) if e.kind().code() == worker_code => Ok((worker_hash, true, 1_000_000)),
        Err(e) if protocol::codes::is_input_fault_code(e.kind().code()) => {
            Ok((keccak256(e.kind().as_str().as_bytes()), false, 0))
        }
        Err(e) => Err(anyhow!(
            "own run failed on this validator's side ({}): {e}",
            e.kind()
        )),
    }
}

fn decoded(e: &alloy::contract::Error) -> Option<IAuditManager::IAuditManagerErrors> {
    e.as_decoded_interface_error::<IAuditManager::IAuditManagerErrors>()
}

fn describe_tm(e: &alloy::contract::Error) -> String {
    match e.as_decoded_interface_error::<ITaskManager::ITaskManagerErrors>() {
        Some(err) => format!("reverted: {err:?}"),
        None => e.to_string(),
    }
}

fn describe(e: &alloy::contract::Error) -> String {
    match decoded(e) {
        Some(err) => format!("reverted: {err:?}"),
        None => e.to_string(),
    }
}

/// How this validator judges one model: a `tensor` bundle re-executes and compares by the
/// registered on-chain rule; every other kind judges by its own rule ([`Runner::verify`]).
pub enum Judge {
    /// Raw safetensors graph and the registry's compare rule.
    Tensor(Model, CompareRule),
    /// A bundle of another kind.
    Kind(Box<dyn Runner>),
}

impl Judge {
    /// The validator's own output for `input` (what a canary expects).
    pub fn run(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        self.run_raw(input).map_err(|e| anyhow!("inference: {e}"))
    }

    /// The validator's own run, keeping the error's protocol class.
    pub fn run_raw(&mut self, input: &[u8]) -> Result<Vec<u8>, inference::InferenceError> {
        match self {
            Judge::Tensor(m, _) => m.run(input),
            Judge::Kind(r) => r.run(input),
        }
    }

    /// Judges `claimed` for `input`; `own` is the validator's output when it already has it.
    pub fn check(
        &mut self,
        input: &[u8],
        claimed: &[u8],
        own: Option<&[u8]>,
    ) -> Result<inference::Verdict> {
        match self {
            Judge::Tensor(m, rule) => {
                let own = match own {
                    Some(o) => o.to_vec(),
                    None => m.run(input).map_err(|e| anyhow!("inference: {e}"))?,
                };
                compare(rule, claimed, &own).map_err(|e| anyhow!("compare: {e}"))
            }
            Judge::Kind(r) => match own {
                Some(o)
                    if r.kind() != Kind::TextGeneration && r.kind() != Kind::SpeechRecognition =>
                {
                    r.compare(claimed, o)
                }
                _ => r.verify(input, claimed),
            }
            .map_err(|e| anyhow!("verify: {e}")),
        }
    }
}

/// Runs the judge off the async runtime: with `claimed`, its verdict and (on a mismatch, or
/// for tensor models) the validator's own output; without, a plain re-execution.
async fn run_blocking(
    judge: Arc<Mutex<Judge>>,
    input: Vec<u8>,
    claimed: Option<Vec<u8>>,
) -> Result<(inference::Verdict, Vec<u8>)> {
    tokio::task::spawn_blocking(move || {
        let mut j = judge
            .lock()
            .map_err(|_| anyhow!("model session poisoned"))?;
        let Some(claimed) = claimed else {
            let own = j.run(&input)?;
            let v = inference::Verdict {
                matches: false,
                quality_ppm: 0,
                reason: "published output does not match the committed hash".into(),
            };
            return Ok((v, own));
        };
        if let Judge::Tensor(..) = &*j {
            let own = j.run(&input)?;
            let v = j.check(&input, &claimed, Some(&own))?;
            return Ok((v, own));
        }
        let v = j.check(&input, &claimed, None)?;
        // A rejected answer is settled by a dispute: record the full re-execution's hash.
        let own = if v.matches {
            Vec::new()
        } else {
            j.run(&input)?
        };
        Ok((v, own))
    })
    .await
    .map_err(|e| anyhow!("inference crashed: {e}"))?
}

#[cfg(test)]
mod judged_tests {
    use super::*;

    #[test]
    fn an_audit_is_remembered_until_its_deadline_has_passed() {
        let mut j = Judged::default();
        j.insert(U256::from(1), 100);
        j.insert(U256::from(2), 200);
        // at its deadline a task is still open (judge_sealed skips only `now > deadline`)
        j.forget_ended(100);
        assert!(j.contains(&U256::from(1)) && j.contains(&U256::from(2)));
        j.forget_ended(101);
        assert!(!j.contains(&U256::from(1)), "past its deadline");
        assert!(j.contains(&U256::from(2)), "still open");
        j.forget_ended(201);
        assert!(!j.contains(&U256::from(2)));
        assert!(j.0.is_empty());
    }

    #[test]
    fn a_long_run_keeps_only_the_open_tasks_audits() {
        // a task a second, each open for 60 s: the set stays at a minute's worth of tasks
        let mut j = Judged::default();
        for now in 0..10_000u64 {
            j.forget_ended(now);
            j.insert(U256::from(now), now + 60);
            assert!(j.0.len() <= 61, "{} audits kept at {now}", j.0.len());
        }
    }
}

#[cfg(test)]
mod failure_tests {
    use super::*;
    use inference::InferenceError;

    #[test]
    fn an_input_fault_matches_only_the_same_code_reproduced() {
        let worker_hash = keccak256(b"input_decode: not safetensors");
        // the validator's run fails the same way: the worker's failure is attested
        let v =
            failure_verdict(Err(InferenceError::InputDecode("x".into())), 1, worker_hash).unwrap();
        assert_eq!(v, (worker_hash, true, 1_000_000));
        // it runs fine: the failure was false, the verdict carries the validator's output
        let v = failure_verdict(Ok(b"real output".to_vec()), 1, worker_hash).unwrap();
        assert_eq!(v, (keccak256(b"real output"), false, 0));
        // another input fault: a mismatch too
        let v =
            failure_verdict(Err(InferenceError::InputDecode("x".into())), 2, worker_hash).unwrap();
        assert!(!v.1);
        assert_ne!(v.0, worker_hash);
        // the validator's own problem judges nothing
        let e = failure_verdict(Err(InferenceError::Runtime("oom".into())), 1, worker_hash)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("validator's side") && e.contains("runtime"),
            "{e}"
        );
    }

    #[test]
    fn only_results_and_input_faults_are_audited() {
        assert!(auditable(0));
        for code in 1..=3 {
            assert!(auditable(code), "{code}");
        }
        for code in [4, 5, 6, 7, 8, 9, u16::MAX] {
            assert!(!auditable(code), "{code}");
        }
    }
}

#[cfg(test)]
mod node_down_tests {
    use super::*;
    use alloy::providers::ProviderBuilder;

    /// An auditor whose chain node refuses every connection (nothing listens on its port).
    fn auditor_with_node_down(models_dir: &std::path::Path) -> Auditor {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let provider = ProviderBuilder::new()
            .connect_http(format!("http://127.0.0.1:{port}").parse().unwrap())
            .erased();
        let zero = Address::ZERO;
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "chainId": 31337, "startBlock": 0, "token": zero, "staking": zero,
            "modelRegistry": zero, "taskManager": zero, "treasury": zero,
            "validatorPool": zero, "settlement": zero, "auditManager": zero,
        }))
        .unwrap();
        let opts = AuditOptions {
            mode: AuditMode::Honest,
            models_dir: models_dir.to_path_buf(),
            ort_lib: None,
            threads: 1,
            max_verdicts_per_tx: 8,
            blob_timeout: Duration::from_secs(1),
            max_blob_bytes: 1 << 20,
            poll: Duration::from_secs(1),
            canary: None,
        };
        Auditor::unjoined(
            provider,
            PrivateKeySigner::random(),
            31337,
            deployment,
            opts,
        )
        .expect("ONNX Runtime (ORT_DYLIB_PATH) and the model cache")
    }

    #[tokio::test]
    async fn a_node_that_does_not_answer_postpones_the_audit_rather_than_giving_it_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = auditor_with_node_down(dir.path());
        // the model's record
        let e = a
            .model(1)
            .await
            .err()
            .expect("no node to read the model from");
        assert!(retry_later(&e), "{e:#}");
        assert!(format!("{e:#}").contains("getModel(1)"), "{e:#}");
        // the task's input log (the first thing an audit reads)
        let clock = AuditClock {
            now: 100,
            deadline: 200,
            window: 100,
        };
        let e = a
            .judge(U256::from(7), 1, 5, &Bytes::new(), B256::ZERO, 0, clock)
            .await
            .expect_err("no node to read the input from");
        assert!(retry_later(&e), "{e:#}");
        assert!(
            format!("{e:#}").contains("eth_getLogs TaskSubmitted of task 7"),
            "{e:#}"
        );
    }
}

#[cfg(test)]
mod blob_outage_tests {
    use super::*;
    use blobstore::service::{router, AppState};
    use blobstore::{BlobError, BlobRef, Store};
    use std::net::SocketAddr;

    fn status(code: u16) -> BlobError {
        BlobError::Status {
            location: "http://store/blobs/x".into(),
            code,
            detail: String::new(),
        }
    }

    fn refused() -> BlobError {
        BlobError::Unreachable {
            location: "http://store/blobs/x".into(),
            detail: "connection refused".into(),
        }
    }

    /// 600 s challenge window (the deployed default), `left` seconds before its end.
    fn clock(left: u64) -> AuditClock {
        AuditClock {
            now: 10_000,
            deadline: 10_000 + left,
            window: 600,
        }
    }

    #[test]
    fn an_outage_waits_until_the_deadline_is_close() {
        let timeout = BlobError::Timeout {
            location: "http://store/blobs/x".into(),
            after: Duration::from_secs(30),
        };
        for err in [refused(), timeout, status(500), status(503), status(429)] {
            // plenty of time: no verdict yet
            assert_eq!(unfetched(&err, &clock(600)), Unfetched::Wait, "{err}");
            assert_eq!(unfetched(&err, &clock(151)), Unfetched::Wait, "{err}");
            // the last quarter of the window: judged failed
            assert_eq!(
                unfetched(&err, &clock(150)),
                Unfetched::FailedAtDeadline,
                "{err}"
            );
            assert_eq!(
                unfetched(&err, &clock(0)),
                Unfetched::FailedAtDeadline,
                "{err}"
            );
            // past the deadline (a slow step)
            let late = AuditClock {
                now: 20_000,
                ..clock(0)
            };
            assert_eq!(unfetched(&err, &late), Unfetched::FailedAtDeadline, "{err}");
        }
    }

    #[test]
    fn a_short_window_keeps_a_fixed_margin() {
        // 60 s window: a quarter is 15 s, but the verdict still needs a fetch and a transaction
        let short = |left: u64| AuditClock {
            now: 100,
            deadline: 100 + left,
            window: 60,
        };
        assert_eq!(
            unfetched(&refused(), &short(60)),
            Unfetched::FailedAtDeadline
        );
        // a 1 h window waits until its last quarter (15 min)
        let hour = |left: u64| AuditClock {
            now: 100,
            deadline: 100 + left,
            window: 3600,
        };
        assert_eq!(unfetched(&refused(), &hour(901)), Unfetched::Wait);
        assert_eq!(
            unfetched(&refused(), &hour(900)),
            Unfetched::FailedAtDeadline
        );
        // a 4 min window: the quarter and the margin are the same 60 s
        let four = |left: u64| AuditClock {
            now: 100,
            deadline: 100 + left,
            window: 240,
        };
        assert_eq!(unfetched(&refused(), &four(61)), Unfetched::Wait);
        assert_eq!(
            unfetched(&refused(), &four(60)),
            Unfetched::FailedAtDeadline
        );
    }

    #[test]
    fn a_missing_or_wrong_output_fails_at_once() {
        let permanent = [
            status(404),
            status(403),
            BlobError::HashMismatch {
                location: "http://store/blobs/x".into(),
                expected: [0; 32],
                actual: [1; 32],
            },
            BlobError::TooLarge {
                location: "http://store/blobs/x".into(),
                size: 2,
                max: 1,
            },
            BlobError::Envelope("cut short".into()),
        ];
        for err in permanent {
            assert_eq!(unfetched(&err, &clock(600)), Unfetched::Failed, "{err}");
            assert_eq!(unfetched(&err, &clock(0)), Unfetched::Failed, "{err}");
        }
    }

    #[test]
    fn stores_are_told_apart_by_origin() {
        assert_eq!(
            origin("http://127.0.0.1:8700/blobs/ab"),
            "http://127.0.0.1:8700"
        );
        assert_eq!(
            origin("https://store.example/blobs/ab"),
            "https://store.example"
        );
        assert_eq!(origin("http://store.example"), "http://store.example");
    }

    #[test]
    fn retry_later_survives_context() {
        let e = anyhow::Error::from(RetryLater("task 1 input: refused".into()))
            .context("auditing task 1");
        assert!(retry_later(&e));
        assert!(
            format!("{e:#}").contains("judged again on a later step"),
            "{e:#}"
        );
        assert!(!retry_later(&anyhow!("model 1: not found")));
    }

    fn free_addr() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    fn published(addr: SocketAddr, sha256: [u8; 32]) -> Bytes {
        Bytes::from(
            BlobRef {
                sha256,
                url: format!("http://{addr}/blobs/{}", hex(sha256)),
            }
            .encode(),
        )
    }

    fn hex(sha256: [u8; 32]) -> String {
        sha256.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn client() -> blobstore::Client {
        blobstore::Client::new(Duration::from_secs(5), 1 << 20).unwrap()
    }

    /// The blob store down for a while, against the real service: no verdict while the audit
    /// has time, the output once the store is back; failed only close to the deadline.
    #[tokio::test]
    async fn a_worker_output_behind_an_outage_is_not_judged_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let output = b"the worker's long answer".to_vec();
        let sha = store.put(output.clone().into()).await.unwrap();
        let addr = free_addr();
        let reference = published(addr, sha);
        let task = U256::from(7);
        let mut blobs = Blobs::new(client());

        // the store is down: no verdict, with time left ...
        let err = fetch_published(&mut blobs, task, &reference, clock(600))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("task 7"), "{err}");
        // ... judged failed (no bytes) in the last quarter of the window
        let got = fetch_published(&mut blobs, task, &reference, clock(100))
            .await
            .unwrap();
        assert!(got.is_empty());

        // back up on the same address: a later step gets the output
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let app = router(AppState {
            store,
            public_url: format!("http://{addr}"),
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        // (within the step that found it down, the store is not asked again)
        let err = fetch_published(&mut blobs, task, &reference, clock(600))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not tried again"), "{err}");
        blobs.new_step();
        let got = fetch_published(&mut blobs, task, &reference, clock(600))
            .await
            .unwrap();
        assert_eq!(got.to_vec(), output);

        // a blob the store does not have is judged failed at once, whatever the time left
        let t = std::time::Instant::now();
        let got = fetch_published(&mut blobs, task, &published(addr, [9; 32]), clock(600))
            .await
            .unwrap();
        assert!(got.is_empty());
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        // a malformed reference too; an inline output is itself
        let mut cut = reference.to_vec();
        cut.truncate(20);
        let got = fetch_published(&mut blobs, task, &Bytes::from(cut), clock(600))
            .await
            .unwrap();
        assert!(got.is_empty());
        let inline = Bytes::from_static(b"7");
        let got = fetch_published(&mut blobs, task, &inline, clock(600))
            .await
            .unwrap();
        assert_eq!(got, inline);
    }
}
