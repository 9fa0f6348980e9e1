//! Chain access of one worker: its assignments and their inputs, task and model views, and
//! transactions signed locally, so a commit's hash is journaled before it is broadcast.

use crate::engine::ModelInfo;
use alloy::consensus::TxEnvelope;
use alloy::eips::eip2718::Encodable2718;
use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use alloy::transports::{RpcError, TransportErrorKind};
use anyhow::{anyhow, Context, Result};
use protocol::bindings::TaskStatus;
use protocol::bindings::{IModelRegistry, IStaking, ITaskManager, ROLE_WORKER};
use protocol::Deployment;
use std::time::Duration;

/// Blocks per eth_getLogs request (public endpoints cap the range).
use protocol::logs::LOG_CHUNK;

/// One TaskAssigned log naming this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Task.
    pub task_id: U256,
    /// Block of the log.
    pub block: u64,
}

/// A task as the chain sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// Task.
    pub id: U256,
    /// Model.
    pub model_id: u32,
    /// Assigned worker.
    pub worker: Address,
    /// Who submitted (and paid for) it.
    pub submitter: Address,
    /// Status (None if the contract returned an unknown value).
    pub status: Option<TaskStatus>,
    /// Response deadline while assigned, end of the challenge window after commit.
    pub deadline: u64,
    /// While drawing: the anchor block of its draw.
    pub draw_block: u64,
}

/// How often a transaction waited on is checked for having been dropped.
const DROPPED_CHECK: Duration = Duration::from_secs(2);

/// Why a transaction could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The node answered that the call reverts (decoded when possible): retrying will not help.
    #[error("{0}")]
    Revert(String),
    /// The node could not be asked.
    #[error("{0:#}")]
    Rpc(anyhow::Error),
}

/// A locally signed transaction.
pub struct SignedTx {
    /// Its hash (known before broadcast).
    pub hash: B256,
    raw: Vec<u8>,
}

/// The worker's view of the deployment.
#[derive(Clone)]
pub struct Chain {
    provider: DynProvider,
    wallet: EthereumWallet,
    /// This worker.
    pub me: Address,
    /// Chain id.
    pub chain_id: u64,
    /// Deployed contracts.
    pub deployment: Deployment,
}

impl Chain {
    /// Wraps a read-only provider; transactions are signed with `signer` here.
    pub fn new(
        provider: DynProvider,
        signer: PrivateKeySigner,
        chain_id: u64,
        deployment: Deployment,
    ) -> Self {
        let me = signer.address();
        Self {
            provider,
            wallet: EthereumWallet::from(signer),
            me,
            chain_id,
            deployment,
        }
    }

    /// The read provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn tm(&self) -> ITaskManager::ITaskManagerInstance<&DynProvider> {
        ITaskManager::new(self.deployment.task_manager, &self.provider)
    }

    /// Latest block number.
    pub async fn head(&self) -> Result<u64> {
        self.provider
            .get_block_number()
            .await
            .context("eth_blockNumber")
    }

    /// Timestamp of the latest block (the clock deadlines are checked against).
    pub async fn now(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .context("eth_getBlockByNumber(latest)")?
            .ok_or_else(|| anyhow!("the RPC returned no latest block"))?;
        Ok(block.header.timestamp)
    }

    /// TaskManager logs matching `filter` in `[from, to]`, oldest first, in LOG_CHUNK ranges.
    async fn task_logs(&self, filter: Filter, from: u64, to: u64, what: &str) -> Result<Vec<Log>> {
        let filter = filter.address(self.deployment.task_manager);
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(LOG_CHUNK - 1));
            let chunk = filter.clone().from_block(start).to_block(end);
            out.extend(
                self.provider
                    .get_logs(&chunk)
                    .await
                    .with_context(|| format!("eth_getLogs {what} blocks {start}..={end}"))?,
            );
            start = end + 1;
        }
        Ok(out)
    }

    /// TaskAssigned logs for this worker in `[from, to]`, oldest first.
    pub async fn assignments(&self, from: u64, to: u64) -> Result<Vec<Assignment>> {
        let filter = Filter::new()
            .event_signature(ITaskManager::TaskAssigned::SIGNATURE_HASH)
            .topic2(self.me.into_word());
        let mut out = Vec::new();
        for log in self.task_logs(filter, from, to, "TaskAssigned").await? {
            let block = log.block_number.unwrap_or(to);
            match log.log_decode::<ITaskManager::TaskAssigned>() {
                Ok(ev) if ev.inner.data.worker == self.me => out.push(Assignment {
                    task_id: ev.inner.data.taskId,
                    block,
                }),
                Ok(_) => {}
                Err(e) => tracing::warn!(block, error = %e, "undecodable TaskAssigned log skipped"),
            }
        }
        Ok(out)
    }

    /// Tasks in `[from, to]` that wait for their worker to be drawn, with their anchor block:
    /// submissions to one of `models` (anchored on their own block) and tasks re-anchored by
    /// `AssignmentDeferred` (after a miss, or when nobody drew them in time), of any model.
    pub async fn draws(&self, from: u64, to: u64, models: &[u32]) -> Result<Vec<(U256, u64)>> {
        let filter = Filter::new().event_signature(vec![
            ITaskManager::TaskSubmitted::SIGNATURE_HASH,
            ITaskManager::AssignmentDeferred::SIGNATURE_HASH,
        ]);
        let mut out = Vec::new();
        for log in self.task_logs(filter, from, to, "TaskSubmitted").await? {
            let block = log.block_number.unwrap_or(to);
            if let Ok(ev) = log.log_decode::<ITaskManager::TaskSubmitted>() {
                if models.contains(&ev.inner.data.modelId) {
                    out.push((ev.inner.data.taskId, block));
                }
            } else if let Ok(ev) = log.log_decode::<ITaskManager::AssignmentDeferred>() {
                out.push((ev.inner.data.taskId, ev.inner.data.drawBlock));
            }
        }
        Ok(out)
    }

    /// An `assignTasks` transaction.
    pub fn assign_tx(&self, ids: Vec<U256>) -> TransactionRequest {
        self.call_tx(
            self.deployment.task_manager,
            ITaskManager::assignTasksCall { taskIds: ids }.abi_encode(),
        )
    }

    /// The input of a task from its TaskSubmitted event: first in `hint_block` (submission and
    /// assignment share a transaction), then backwards to the deployment's start block.
    pub async fn input_of(&self, task_id: U256, hint_block: u64) -> Result<Option<Bytes>> {
        protocol::logs::task_input(
            &self.provider,
            self.deployment.task_manager,
            self.deployment.start_block,
            task_id,
            hint_block,
        )
        .await
        .with_context(|| format!("eth_getLogs TaskSubmitted of task {task_id}"))
    }

    /// `getTask`. A task the contract refuses (`UnknownTask`: its submission is not on the chain,
    /// e.g. a reorg dropped the block that held it) has status `None`, so that every caller lets
    /// it go instead of retrying it for ever.
    pub async fn task(&self, id: U256) -> Result<TaskInfo> {
        let t = match self.tm().getTask(id).call().await {
            Ok(t) => t,
            Err(e) if e.as_revert_data().is_some() => {
                tracing::warn!(task = %id, "the chain does not know this task (its submission was dropped, e.g. by a reorg)");
                return Ok(TaskInfo {
                    id,
                    model_id: 0,
                    worker: Address::ZERO,
                    submitter: Address::ZERO,
                    status: Some(TaskStatus::None),
                    deadline: 0,
                    draw_block: 0,
                });
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("getTask({id})"))),
        };
        Ok(TaskInfo {
            id,
            model_id: t.modelId,
            worker: t.worker,
            submitter: t.submitter,
            status: TaskStatus::from_u8(t.status),
            deadline: t.deadline,
            draw_block: t.drawBlock,
        })
    }

    /// `getModel`.
    pub async fn model(&self, id: u32) -> Result<ModelInfo> {
        let m = IModelRegistry::new(self.deployment.model_registry, &self.provider)
            .getModel(id)
            .call()
            .await
            .with_context(|| format!("getModel({id})"))?;
        Ok(ModelInfo {
            id,
            sha256: m.sha256Hash,
            uri: m.uri,
        })
    }

    /// The contract's cap on tasks per commitBatch.
    pub async fn max_batch(&self) -> Result<u64> {
        let m = self.tm().maxBatch().call().await.context("maxBatch()")?;
        Ok(m.try_into().unwrap_or(u64::MAX))
    }

    /// `payoutOf(me)`.
    pub async fn payout(&self) -> Result<U256> {
        self.tm().payoutOf(self.me).call().await.context("payoutOf")
    }

    /// `None` when this worker may take tasks, else why not (with the exact shortfall).
    pub async fn ineligibility(&self) -> Result<Option<String>> {
        let staking = IStaking::new(self.deployment.staking, &self.provider);
        if staking
            .isEligible(self.me, ROLE_WORKER)
            .call()
            .await
            .context("isEligible")?
        {
            return Ok(None);
        }
        let stake = staking
            .stakeOf(self.me, ROLE_WORKER)
            .call()
            .await
            .context("stakeOf")?;
        let min = staking
            .minStake(ROLE_WORKER)
            .call()
            .await
            .context("minStake")?;
        if stake < min {
            return Ok(Some(format!(
                "worker stake {} DN is below the minimum {} DN: stake {} DN more (IStaking.stake(0, amount)) to receive tasks",
                protocol::format_dn(stake),
                protocol::format_dn(min),
                protocol::format_dn(min - stake)
            )));
        }
        let until = staking
            .jailedUntil(self.me)
            .call()
            .await
            .context("jailedUntil")?;
        Ok(Some(format!(
            "worker is jailed until unix time {until} (missed deadline); no tasks until then"
        )))
    }

    /// Models this worker serves.
    pub async fn models_of_me(&self) -> Result<Vec<u32>> {
        IModelRegistry::new(self.deployment.model_registry, &self.provider)
            .modelsOf(self.me)
            .call()
            .await
            .context("modelsOf")
    }

    /// True when this worker is eligible (staked, not jailed) but carries no sortition weight in
    /// one of its models: a jail zeroes the weights and nothing restores them when it ends.
    pub async fn weight_lost(&self) -> Result<bool> {
        if self.ineligibility().await?.is_some() {
            return Ok(false);
        }
        let registry = IModelRegistry::new(self.deployment.model_registry, &self.provider);
        for model in self.models_of_me().await? {
            if registry
                .weightOf(model, self.me)
                .call()
                .await
                .context("weightOf")?
                .is_zero()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A `syncWorker(me)` transaction (recomputes this worker's weight in all its models).
    pub fn sync_worker_tx(&self) -> TransactionRequest {
        self.call_tx(
            self.deployment.model_registry,
            IModelRegistry::syncWorkerCall { worker: self.me }.abi_encode(),
        )
    }

    /// A `commitBatch` transaction.
    pub fn commit_batch_tx(
        &self,
        ids: Vec<U256>,
        hashes: Vec<B256>,
        codes: Vec<u16>,
        outputs: Vec<Bytes>,
    ) -> TransactionRequest {
        let call = ITaskManager::commitBatchCall {
            taskIds: ids,
            outputHashes: hashes,
            codes,
            outputs,
        };
        self.call_tx(self.deployment.task_manager, call.abi_encode())
    }

    /// A `finalizeBatch` transaction.
    pub fn finalize_batch_tx(&self, ids: Vec<U256>) -> TransactionRequest {
        self.call_tx(
            self.deployment.task_manager,
            ITaskManager::finalizeBatchCall { taskIds: ids }.abi_encode(),
        )
    }

    /// A `reassign` transaction (a task whose worker missed its response deadline).
    pub fn reassign_tx(&self, id: U256) -> TransactionRequest {
        self.call_tx(
            self.deployment.task_manager,
            ITaskManager::reassignCall { taskId: id }.abi_encode(),
        )
    }

    /// A `withdrawPayout` transaction.
    pub fn withdraw_tx(&self) -> TransactionRequest {
        self.call_tx(
            self.deployment.task_manager,
            ITaskManager::withdrawPayoutCall {}.abi_encode(),
        )
    }

    /// An `optIn` transaction.
    pub fn opt_in_tx(&self, model_id: u32) -> TransactionRequest {
        self.call_tx(
            self.deployment.model_registry,
            IModelRegistry::optInCall { modelId: model_id }.abi_encode(),
        )
    }

    /// A transaction from this wallet calling `to` with `data`.
    pub fn call_tx(&self, to: Address, data: Vec<u8>) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(self.me)
            .with_to(to)
            .with_input(data)
    }

    /// Fills nonce, gas and fees and signs. A revert shows up here (gas estimation), decoded
    /// to the contract's error name when possible.
    pub async fn sign(&self, tx: TransactionRequest) -> Result<SignedTx, SignError> {
        let nonce = self
            .provider
            .get_transaction_count(self.me)
            .pending()
            .await
            .context("eth_getTransactionCount")
            .map_err(SignError::Rpc)?;
        let gas = self.provider.estimate_gas(tx.clone()).await.map_err(|e| {
            // Only a revert is final; "insufficient funds" and the like are retried.
            let reverted = e.as_error_resp().is_some_and(|p| {
                p.as_revert_data().is_some() || p.message.to_lowercase().contains("revert")
            });
            if reverted {
                SignError::Revert(describe_rpc_error(&e))
            } else {
                SignError::Rpc(anyhow::Error::new(e).context("eth_estimateGas"))
            }
        })?;
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .context("fee estimation")
            .map_err(SignError::Rpc)?;
        let tx = tx
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas.saturating_mul(6) / 5)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope: TxEnvelope = tx
            .build(&self.wallet)
            .await
            .map_err(|e| SignError::Rpc(anyhow!("signing: {e}")))?;
        Ok(SignedTx {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718(),
        })
    }

    /// Broadcasts a signed transaction ("already known" counts as sent).
    pub async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        match self.provider.send_raw_transaction(&tx.raw).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().to_lowercase().contains("already known") => Ok(()),
            Err(e) => Err(anyhow!(
                "eth_sendRawTransaction {}: {}",
                tx.hash,
                describe_rpc_error(&e)
            )),
        }
    }

    /// The receipt, if mined.
    pub async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>> {
        self.provider
            .get_transaction_receipt(hash)
            .await
            .with_context(|| format!("receipt of {hash}"))
    }

    /// Whether the node knows the transaction (pending or mined).
    pub async fn tx_known(&self, hash: B256) -> Result<bool> {
        Ok(self
            .provider
            .get_transaction_by_hash(hash)
            .await
            .with_context(|| format!("transaction {hash}"))?
            .is_some())
    }

    /// Polls for the receipt up to `timeout`. Gives up early (`None`) once the node has not
    /// known the transaction at two checks [`DROPPED_CHECK`] apart: it was mined in a block a
    /// reorg dropped (or evicted from the pool), so no receipt is coming and the caller re-checks
    /// its tasks instead of waiting out the timeout.
    pub async fn wait_receipt(
        &self,
        hash: B256,
        timeout: Duration,
    ) -> Result<Option<TransactionReceipt>> {
        let started = std::time::Instant::now();
        let mut last_check = started;
        let mut unknown_once = false;
        loop {
            if let Some(r) = self.receipt(hash).await? {
                return Ok(Some(r));
            }
            if started.elapsed() >= timeout {
                return Ok(None);
            }
            if last_check.elapsed() >= DROPPED_CHECK {
                last_check = std::time::Instant::now();
                if self.tx_known(hash).await? {
                    unknown_once = false;
                } else if unknown_once {
                    tracing::warn!(tx = %hash, "transaction dropped (unknown to the node: a reorg removed its block, or the pool evicted it)");
                    return Ok(None);
                } else {
                    unknown_once = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sign, broadcast and wait (for the simple transactions: opt-in, finalize, withdraw).
    pub async fn send_and_wait(
        &self,
        what: &str,
        tx: TransactionRequest,
    ) -> Result<TransactionReceipt> {
        let signed = self.sign(tx).await.map_err(|e| match e {
            SignError::Rpc(e) => e.context(what.to_string()),
            SignError::Revert(r) => anyhow!("{what}: {r}"),
        })?;
        self.broadcast(&signed)
            .await
            .with_context(|| what.to_string())?;
        crate::crash::point(what);
        let receipt = self
            .wait_receipt(signed.hash, Duration::from_secs(120))
            .await?
            .ok_or_else(|| anyhow!("{what}: transaction {} not mined within 120s", signed.hash))?;
        if !receipt.status() {
            return Err(anyhow!("{what}: transaction {} reverted", signed.hash));
        }
        Ok(receipt)
    }
}

/// A readable RPC error: the contract's custom error when the node returned revert data.
pub fn describe_rpc_error(e: &RpcError<TransportErrorKind>) -> String {
    if let Some(payload) = e.as_error_resp() {
        if let Some(err) = payload.as_decoded_interface_error::<ITaskManager::ITaskManagerErrors>()
        {
            return format!("reverted: {err:?}");
        }
        if let Some(err) =
            payload.as_decoded_interface_error::<IModelRegistry::IModelRegistryErrors>()
        {
            return format!("reverted: {err:?}");
        }
    }
    e.to_string()
}

/// Whether an error chain is an RPC transport failure (node down, timeout) rather than a
/// contract answer.
pub fn is_transport_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<RpcError<TransportErrorKind>>()
            .is_some_and(|r| matches!(r, RpcError::Transport(_)))
            || c.downcast_ref::<alloy::contract::Error>().is_some_and(|r| {
                matches!(
                    r,
                    alloy::contract::Error::TransportError(RpcError::Transport(_))
                )
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::providers::ext::AnvilApi;
    use devnet::{Devnet, DevnetConfig};

    /// A transaction the node drops (as a reorg removing its block does) ends the wait for its
    /// receipt within a few checks, not at the timeout: the worker re-checks its tasks while
    /// their response window is still open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_transaction_ends_the_wait_for_its_receipt_early() {
        let net = Devnet::start(DevnetConfig::default())
            .await
            .expect("devnet");
        let admin = net.provider(&net.deployer);
        let chain = Chain::new(
            net.provider(&net.user),
            net.workers[0].clone(),
            net.chain_id,
            net.deployment.clone(),
        );
        // not mined: it stays in the pool until dropped
        admin.anvil_set_auto_mine(false).await.unwrap();
        admin.anvil_set_interval_mining(0).await.unwrap();
        let tx = chain
            .sign(TransactionRequest::default().with_to(net.user.address()))
            .await
            .unwrap();
        chain.broadcast(&tx).await.unwrap();
        assert!(chain.tx_known(tx.hash).await.unwrap());
        admin.anvil_drop_transaction(tx.hash).await.unwrap();
        let timeout = Duration::from_secs(120);
        let started = std::time::Instant::now();
        let receipt = chain.wait_receipt(tx.hash, timeout).await.unwrap();
        assert!(receipt.is_none());
        assert!(
            started.elapsed() < timeout / 4,
            "gave up after {:?}, not early",
            started.elapsed()
        );
        // a transaction the node keeps is waited on (and mined once mining resumes)
        let kept = chain
            .sign(TransactionRequest::default().with_to(net.user.address()))
            .await
            .unwrap();
        chain.broadcast(&kept).await.unwrap();
        let miner = {
            let admin = admin.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(6)).await;
                admin.anvil_set_interval_mining(1).await.unwrap();
            })
        };
        let mined = chain.wait_receipt(kept.hash, timeout).await.unwrap();
        assert!(
            mined.is_some_and(|r| r.status()),
            "a kept transaction is mined"
        );
        miner.await.unwrap();
    }
}
