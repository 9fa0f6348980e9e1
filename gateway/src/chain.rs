//! Paying for tasks and reading their answers: the gateway's wallet submits (one transaction per
//! request, every input of a request in one `submitTasks`), then the task is followed until its
//! worker commits, and the committed output is fetched (inline or from the blob store) and
//! checked against the committed hash.

use crate::error::ApiError;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use protocol::bindings::{DNToken, IAuditManager, ITaskManager};
use protocol::Deployment;
use std::time::{Duration, Instant};

/// Task statuses (ITaskManager.TaskStatus).
pub mod status {
    /// Worker drawn, running.
    pub const ASSIGNED: u8 = 1;
    /// Result committed, in its challenge window.
    pub const COMMITTED: u8 = 2;
    /// Failure code committed.
    pub const FAILED: u8 = 3;
    /// Paid out.
    pub const FINALIZED: u8 = 4;
    /// Fee returned to the submitter.
    pub const REFUNDED: u8 = 5;
    /// Held by a dispute.
    pub const DISPUTED: u8 = 6;
    /// Waiting for its worker draw.
    pub const DRAWING: u8 = 7;

    /// The status's name in answers.
    pub fn name(s: u8) -> &'static str {
        match s {
            ASSIGNED => "assigned",
            COMMITTED => "committed",
            FAILED => "failed",
            FINALIZED => "finalized",
            REFUNDED => "refunded",
            DISPUTED => "disputed",
            DRAWING => "drawing",
            _ => "unknown",
        }
    }
}

/// What a worker committed for one task.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The task.
    pub task_id: U256,
    /// Its worker.
    pub worker: Address,
    /// Fee escrowed for it.
    pub fee: U256,
    /// 0, or the worker's failure code.
    pub code: u16,
    /// The output bytes (a failure's message on failure).
    pub output: Vec<u8>,
    /// keccak256(output) equals the committed hash (false: the published bytes were not what
    /// the worker committed to; the caller should not trust them).
    pub verified: bool,
    /// The commit transaction.
    pub commit_tx: B256,
    /// The commit batch, the committed output hash and the batch's Merkle leaves (what a
    /// challenge proves).
    pub batch_id: U256,
    /// Committed output hash.
    pub output_hash: B256,
    leaves: Vec<B256>,
    index: usize,
}

/// Inputs above this go to the blob store and are submitted by reference (the TaskManager caps
/// inline inputs at 64 KiB).
pub const INLINE_MAX: usize = 32 * 1024;

/// Most inputs one `submitTasks` transaction carries.
pub const MAX_INPUTS_PER_TX: usize = 64;

/// Submitted task ids and the block they were submitted in.
type Submitted = Result<(Vec<U256>, u64), ApiError>;

/// One request's inputs waiting for the next submission.
struct Pending {
    model_id: u32,
    max_fee: U256,
    inputs: Vec<Vec<u8>>,
    reply: tokio::sync::oneshot::Sender<Submitted>,
}

/// The gateway's view of the chain: a provider signing with its wallet.
pub struct Chain {
    provider: DynProvider,
    deployment: Deployment,
    me: Address,
    /// One transaction at a time (the wallet's nonces).
    submit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    queue: tokio::sync::mpsc::UnboundedSender<Pending>,
    blobs: blobstore::Client,
    blob_store: Option<String>,
    poll: Duration,
    chain_id: u64,
}

impl Chain {
    /// A chain view over a wallet provider for `me`. Concurrent calls to the same model are
    /// batched: requests that arrive within `batch_window` of each other, or while the previous
    /// submission is in flight, go out in one `submitTasks` (must run inside a tokio runtime).
    pub fn new(
        provider: DynProvider,
        deployment: Deployment,
        me: Address,
        blobs: blobstore::Client,
        batch_window: Duration,
    ) -> Self {
        let submit_lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let (queue, rx) = tokio::sync::mpsc::unbounded_channel();
        let submitter = Submitter {
            provider: provider.clone(),
            task_manager: deployment.task_manager,
            lock: submit_lock.clone(),
        };
        tokio::spawn(submitter.run(rx, batch_window));
        Self {
            provider,
            deployment,
            me,
            submit_lock,
            queue,
            blobs,
            blob_store: None,
            poll: Duration::from_millis(250),
            chain_id: protocol::DEVNET_CHAIN_ID,
        }
    }

    /// The chain id (streams' signatures are bound to it) [default: the devnet's].
    pub fn with_chain_id(mut self, chain_id: u64) -> Self {
        self.chain_id = chain_id;
        self
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// What the chain refunded this wallet for `task_id` once it settled (`None` while it has
    /// not): a refunded task's TaskRefunded amount, a finalized one's TaskFinalized refund.
    pub async fn refund_of(&self, task_id: U256, from_block: u64) -> anyhow::Result<Option<U256>> {
        let t = self.tm().getTask(task_id).call().await?;
        let event = match t.status {
            status::FINALIZED => ITaskManager::TaskFinalized::SIGNATURE_HASH,
            status::REFUNDED => ITaskManager::TaskRefunded::SIGNATURE_HASH,
            _ => return Ok(None),
        };
        let filter = Filter::new()
            .address(self.deployment.task_manager)
            .event_signature(event)
            .topic1(B256::from(task_id))
            .from_block(from_block);
        for log in self.provider.get_logs(&filter).await? {
            if let Ok(e) = log.log_decode::<ITaskManager::TaskFinalized>() {
                return Ok(Some(e.inner.data.refund));
            }
            if let Ok(e) = log.log_decode::<ITaskManager::TaskRefunded>() {
                return Ok(Some(e.inner.data.amount));
            }
        }
        anyhow::bail!(
            "task {task_id} is settled but its event is not found from block {from_block}"
        )
    }

    /// The worker assigned to `task_id` (zero while none is).
    pub async fn worker_of(&self, task_id: U256) -> Result<Address, ApiError> {
        Ok(self
            .tm()
            .getTask(task_id)
            .call()
            .await
            .map_err(|e| ApiError::internal(format!("getTask({task_id}): {e}")))?
            .worker)
    }

    /// Challenges a committed answer (the gateway is its submitter): approves the bond, dry-runs
    /// `AuditManager.challenge` with the answer's Merkle proof, then sends it. Returns the
    /// transaction hash, or why it was not sent (e.g. an audit already judged the task).
    pub async fn challenge(&self, a: &Answer) -> Result<B256, String> {
        let audit = IAuditManager::new(self.deployment.audit_manager, &self.provider);
        let proof = protocol::merkle::proof(&a.leaves, a.index);
        let bond = audit
            .params()
            .call()
            .await
            .map_err(|e| format!("AuditManager.params: {e}"))?
            .challengeBond;
        let _turn = self.submit_lock.lock().await;
        if bond > 0 {
            let r = DNToken::new(self.deployment.token, &self.provider)
                .approve(self.deployment.audit_manager, U256::from(bond))
                .send()
                .await
                .map_err(|e| format!("approving the challenge bond: {e}"))?
                .with_timeout(Some(Duration::from_secs(60)))
                .get_receipt()
                .await
                .map_err(|e| format!("approving the challenge bond: {e}"))?;
            if !r.status() {
                return Err(format!(
                    "approving the challenge bond reverted (tx {})",
                    r.transaction_hash
                ));
            }
        }
        let call = audit.challenge(a.task_id, a.batch_id, a.output_hash, proof);
        if let Err(e) = call.call().await {
            use IAuditManager::IAuditManagerErrors as E;
            return Err(match e.as_decoded_interface_error::<E>() {
                Some(err) => format!("AuditManager refused the challenge: {err:?}"),
                None => format!("AuditManager.challenge: {e}"),
            });
        }
        let r = call
            .send()
            .await
            .map_err(|e| format!("challenge: {e}"))?
            .with_timeout(Some(Duration::from_secs(60)))
            .get_receipt()
            .await
            .map_err(|e| format!("challenge receipt: {e}"))?;
        if !r.status() {
            return Err(format!("challenge reverted (tx {})", r.transaction_hash));
        }
        Ok(r.transaction_hash)
    }

    /// Large inputs go to the blob store at `url` (a `blobstore` service) by reference.
    pub fn with_blob_store(mut self, url: Option<String>) -> Self {
        self.blob_store = url;
        self
    }

    /// The input as submitted: inline up to [`INLINE_MAX`], else stored in the blob store and
    /// replaced by its reference (a 422 naming the size when no store is configured).
    pub async fn submittable(&self, input: Vec<u8>, param: &str) -> Result<Vec<u8>, ApiError> {
        if input.len() <= INLINE_MAX {
            return Ok(input);
        }
        let Some(url) = &self.blob_store else {
            return Err(ApiError::invalid(
                param,
                format!(
                    "the input is {} bytes; this gateway submits at most {INLINE_MAX} inline and has no blob store (--blob-store) for larger ones",
                    input.len()
                ),
            ));
        };
        let r =
            self.blobs.put(url, input).await.map_err(|e| {
                ApiError::internal(format!("storing the input in the blob store: {e}"))
            })?;
        Ok(r.encode())
    }

    /// The gateway's address.
    pub fn address(&self) -> Address {
        self.me
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn tm(&self) -> ITaskManager::ITaskManagerInstance<&DynProvider> {
        ITaskManager::new(self.deployment.task_manager, &self.provider)
    }

    /// Lets the TaskManager pull fees from the wallet (once; a large allowance).
    pub async fn ensure_allowance(&self) -> anyhow::Result<()> {
        let token = DNToken::new(self.deployment.token, &self.provider);
        let have = token
            .allowance(self.me, self.deployment.task_manager)
            .call()
            .await?;
        if have >= U256::from(u128::MAX) {
            return Ok(());
        }
        let _turn = self.submit_lock.lock().await;
        let r = token
            .approve(self.deployment.task_manager, U256::MAX)
            .send()
            .await?
            .get_receipt()
            .await?;
        anyhow::ensure!(r.status(), "approve reverted (tx {})", r.transaction_hash);
        tracing::info!(tx = %r.transaction_hash, "TaskManager may pull fees from the gateway's wallet");
        Ok(())
    }

    /// Submits `inputs` to `model_id` paying at most `max_fee` each (batched with concurrent
    /// requests for the same model); returns the task ids and the block they were submitted in.
    pub async fn submit(
        &self,
        model_id: u32,
        inputs: Vec<Vec<u8>>,
        max_fee: U256,
    ) -> Result<(Vec<U256>, u64), ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send(Pending {
                model_id,
                max_fee,
                inputs,
                reply,
            })
            .map_err(|_| ApiError::internal("the submission queue is closed"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the submission was dropped"))?
    }

    /// Waits until `task_id`'s worker commits (or `deadline` passes), then reads the committed
    /// output from the commit event, fetching a blob reference from its store.
    pub async fn wait(
        &self,
        task_id: U256,
        from_block: u64,
        deadline: Instant,
    ) -> Result<Answer, ApiError> {
        let tm = self.tm();
        // Polls that saw the task committed but found no commit event yet: a node can answer a
        // call at a new block before its logs are queryable (seen once on anvil in the demo), so
        // the event is looked for again, a few polls at most.
        let mut unseen_commits = 0;
        loop {
            let t = tm
                .getTask(task_id)
                .call()
                .await
                .map_err(|e| ApiError::internal(format!("getTask({task_id}): {e}")))?;
            match t.status {
                status::COMMITTED | status::FAILED | status::FINALIZED | status::DISPUTED => {
                    match self
                        .find_commit(task_id, t.worker, t.fee, from_block)
                        .await?
                    {
                        Some(a) => return Ok(a),
                        None if unseen_commits < COMMIT_EVENT_POLLS => unseen_commits += 1,
                        None => return Err(no_commit_event(task_id, t.worker)),
                    }
                }
                status::REFUNDED => {
                    // refunded without a commit (nobody eligible, or a fraud judged already)
                    return match self.committed(task_id, t.worker, t.fee, from_block).await {
                        Ok(a) => Ok(a),
                        Err(_) => Err(ApiError::timeout(format!(
                            "task {task_id} was refunded before any worker answered"
                        ))),
                    };
                }
                _ => {}
            }
            if Instant::now() >= deadline && unseen_commits == 0 {
                return Err(ApiError::timeout(format!(
                    "task {task_id} has no answer yet (status {}); it stays on-chain: GET /v1/tasks/{task_id} follows it, and the fee is refunded if its worker misses the deadline",
                    status::name(t.status)
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// The committed answer of `task_id` by `worker`, from its ResultsCommitted event.
    pub async fn committed(
        &self,
        task_id: U256,
        worker: Address,
        fee: U256,
        from_block: u64,
    ) -> Result<Answer, ApiError> {
        self.find_commit(task_id, worker, fee, from_block)
            .await?
            .ok_or_else(|| no_commit_event(task_id, worker))
    }

    /// [`Chain::committed`], `None` when no ResultsCommitted event of `worker` holds the task.
    async fn find_commit(
        &self,
        task_id: U256,
        worker: Address,
        fee: U256,
        from_block: u64,
    ) -> Result<Option<Answer>, ApiError> {
        let filter = Filter::new()
            .address(self.deployment.task_manager)
            .event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH)
            .topic2(worker.into_word())
            .from_block(from_block);
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(|e| ApiError::internal(format!("eth_getLogs ResultsCommitted: {e}")))?;
        for log in logs.iter().rev() {
            let Ok(ev) = log.log_decode::<ITaskManager::ResultsCommitted>() else {
                continue;
            };
            let d = &ev.inner.data;
            let Some(i) = d.taskIds.iter().position(|t| *t == task_id) else {
                continue;
            };
            let published = d.outputs.get(i).cloned().unwrap_or_default().to_vec();
            let hash = d.outputHashes.get(i).copied().unwrap_or_default();
            let output =
                match blobstore::BlobRef::decode(&published) {
                    None => published,
                    Some(Err(e)) => format!("malformed blob reference: {e}").into_bytes(),
                    Some(Ok(r)) => self.blobs.fetch(&r).await.map_err(|e| {
                        ApiError::internal(format!("output of task {task_id}: {e}"))
                    })?,
                };
            let leaves = d
                .taskIds
                .iter()
                .zip(&d.outputHashes)
                .zip(&d.codes)
                .map(|((t, h), c)| protocol::merkle::leaf_hash(*t, *h, *c))
                .collect();
            return Ok(Some(Answer {
                task_id,
                worker,
                fee,
                code: d.codes.get(i).copied().unwrap_or_default(),
                verified: keccak256(&output) == hash,
                output,
                commit_tx: log.transaction_hash.unwrap_or_default(),
                batch_id: d.batchId,
                output_hash: hash,
                leaves,
                index: i,
            }));
        }
        Ok(None)
    }
}

/// How many polls [`Chain::wait`] looks again for the commit event of a task seen committed.
const COMMIT_EVENT_POLLS: u32 = 20;

fn no_commit_event(task_id: U256, worker: Address) -> ApiError {
    ApiError::internal(format!(
        "task {task_id}: no ResultsCommitted event of {worker} holds it"
    ))
}

/// Sends the queued requests: the batching loop behind [`Chain::submit`].
struct Submitter {
    provider: DynProvider,
    task_manager: Address,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Submitter {
    async fn run(self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Pending>, window: Duration) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let until = tokio::time::Instant::now() + window;
            while let Ok(Some(p)) = tokio::time::timeout_at(until, rx.recv()).await {
                batch.push(p);
            }
            // and whatever queued meanwhile
            while let Ok(p) = rx.try_recv() {
                batch.push(p);
            }
            // one group per (model, fee), in arrival order
            let mut groups: Vec<Vec<Pending>> = Vec::new();
            for p in batch {
                match groups.iter_mut().find(|g| {
                    g[0].model_id == p.model_id
                        && g[0].max_fee == p.max_fee
                        && g.iter().map(|x| x.inputs.len()).sum::<usize>() + p.inputs.len()
                            <= MAX_INPUTS_PER_TX
                }) {
                    Some(g) => g.push(p),
                    None => groups.push(vec![p]),
                }
            }
            for group in groups {
                self.send_group(group).await;
            }
        }
    }

    /// One transaction for the group; when it is refused and the group holds several requests,
    /// each is sent alone so one request's bad input cannot fail the others.
    async fn send_group(&self, group: Vec<Pending>) {
        let (model_id, max_fee) = (group[0].model_id, group[0].max_fee);
        let inputs: Vec<Vec<u8>> = group.iter().flat_map(|p| p.inputs.clone()).collect();
        match self.send(model_id, inputs, max_fee).await {
            Ok((ids, block)) => {
                let mut ids = ids.into_iter();
                for p in group {
                    let mine: Vec<U256> = ids.by_ref().take(p.inputs.len()).collect();
                    let _ = p.reply.send(Ok((mine, block)));
                }
            }
            Err(e) if group.len() == 1 => {
                let _ = group.into_iter().next().expect("one").reply.send(Err(e));
            }
            Err(_) => {
                for p in group {
                    let r = self.send(p.model_id, p.inputs, p.max_fee).await;
                    let _ = p.reply.send(r);
                }
            }
        }
    }

    async fn send(&self, model_id: u32, inputs: Vec<Vec<u8>>, max_fee: U256) -> Submitted {
        let n = inputs.len();
        let inputs: Vec<Bytes> = inputs.into_iter().map(Bytes::from).collect();
        let _turn = self.lock.lock().await;
        let tm = ITaskManager::new(self.task_manager, &self.provider);
        let call = tm.submitTasks(model_id, inputs, max_fee);
        // a dry run first: a revert becomes the error a client understands, and costs no gas
        if let Err(e) = call.call().await {
            return Err(submit_error(&e));
        }
        let pending = call
            .send()
            .await
            .map_err(|e| ApiError::internal(format!("submitTasks: {e}")))?;
        let receipt = pending
            .with_timeout(Some(Duration::from_secs(60)))
            .get_receipt()
            .await
            .map_err(|e| ApiError::internal(format!("submitTasks receipt: {e}")))?;
        if !receipt.status() {
            return Err(ApiError::internal(format!(
                "submitTasks reverted (tx {})",
                receipt.transaction_hash
            )));
        }
        let ids: Vec<U256> = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|l| l.log_decode::<ITaskManager::TaskSubmitted>().ok())
            .map(|l| l.inner.data.taskId)
            .collect();
        if ids.len() != n {
            return Err(ApiError::internal(format!(
                "submitTasks: {} TaskSubmitted events for {n} inputs (tx {})",
                ids.len(),
                receipt.transaction_hash
            )));
        }
        let block = receipt.block_number.unwrap_or_default();
        tracing::info!(model = model_id, tasks = ?ids, tx = %receipt.transaction_hash, "submitted");
        Ok((ids, block))
    }
}

/// The client-facing error of a refused submission.
fn submit_error(e: &alloy::contract::Error) -> ApiError {
    use ITaskManager::ITaskManagerErrors as E;
    if let Some(err) = e.as_decoded_interface_error::<E>() {
        return match err {
            E::NoEligibleWorker(x) => ApiError::no_worker(format!(
                "no worker serves model {} now; try again later",
                x.modelId
            )),
            E::InputTooLarge(x) => ApiError::invalid(
                "input",
                format!(
                    "the input is {} bytes; the network takes at most {} per task",
                    x.size, x.max
                ),
            ),
            E::EmptyInput(_) => ApiError::invalid("input", "the input is empty"),
            E::ModelNotActive(x) => ApiError::delisted(&format!("deepnode/{}", x.modelId)),
            other => ApiError::internal(format!("submitTasks refused: {other:?}")),
        };
    }
    if let Some(err) = e.as_decoded_interface_error::<DNToken::DNTokenErrors>() {
        return ApiError::payment(format!("the gateway's wallet cannot pay the fee: {err:?}"));
    }
    ApiError::internal(format!("submitTasks: {e}"))
}
