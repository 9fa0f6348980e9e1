//! The settlement loop: once an epoch has ended and a block at or after its end is confirmed in
//! this verifier's database, compute the epoch's report, sign it, post it with enough
//! co-signatures, apply the model statuses the report sets (natural selection of models), then
//! refresh every node's trust weight. All progress is on-chain or in the database, so a restart
//! or an RPC outage never loses the place.

use crate::cosign::{self, ReportJson, SignedReport};
use crate::metrics as m;
use crate::store::Store;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::DynProvider;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use anyhow::anyhow;
use chainstore::db::Db;
use chainstore::epochs::{compute_epoch, EpochConfig, EpochError, EpochOutcome};
use protocol::bindings::{IModelRegistry, ISettlement};
use protocol::powr::{report_digest, EpochReport};
use protocol::{format_dn, Deployment};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Longest wait between retries of a failing step.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a sent transaction may take to be mined before the step is retried.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Retrying cannot help (the Rust and Solidity digests disagree): the verifier stops.
    #[error("{0:#}")]
    Fatal(anyhow::Error),
    /// An RPC outage, a revert that may pass later, a busy database: retried with backoff.
    #[error("{0:#}")]
    Retry(anyhow::Error),
}

fn retry<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> StepError {
    let what = what.into();
    move |e| StepError::Retry(anyhow!("{what}: {e}"))
}

/// Settings of the loop (from the command line).
#[derive(Debug, Clone)]
pub struct Options {
    /// Only sign and print.
    pub no_post: bool,
    /// Where signatures are shared with co-signers.
    pub signatures_dir: Option<PathBuf>,
    /// Refresh trust weights after a report is posted.
    pub refresh_trust: bool,
    /// Stop once this epoch is handled.
    pub stop_after: Option<u64>,
    /// Wait between ticks once caught up.
    pub poll: Duration,
}

/// One epoch's line on stdout.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochLine {
    /// Epoch number.
    pub epoch: u64,
    /// The report this verifier computed.
    pub report: ReportJson,
    /// Its EIP-712 digest.
    pub digest: B256,
    /// This verifier's address.
    pub signer: Address,
    /// This verifier's signature (None when the epoch was already reported before it signed).
    pub signature: Option<Bytes>,
    /// Transaction that posted the report, when this verifier posted it.
    pub posted_tx: Option<B256>,
    /// Gas that transaction used.
    pub post_gas_used: Option<u64>,
    /// Signers of the posted report (ascending), when this verifier posted it.
    pub signers: Vec<Address>,
}

enum Handled {
    Done,
    Waiting,
}

/// The report as the Settlement binding takes it.
pub fn to_sol(r: &EpochReport) -> ISettlement::EpochReport {
    ISettlement::EpochReport {
        epoch: r.epoch,
        rewardsRoot: r.rewardsRoot,
        trustRoot: r.trustRoot,
        totalRewards: r.totalRewards,
        modelStatusHash: r.modelStatusHash,
    }
}

fn protocol_status_name(status: u8) -> &'static str {
    protocol::model_selection::status_name(status)
}

fn decoded_settlement_error(e: &alloy::contract::Error) -> Option<ISettlement::ISettlementErrors> {
    e.as_decoded_interface_error::<ISettlement::ISettlementErrors>()
}

/// How one proof transaction (applyModelStatus, refreshTrust) ended.
enum ProofTx {
    /// Mined and successful.
    Mined(B256),
    /// A newer report made the proof stale: stop sending this report's proofs.
    Stale,
    /// Reverted for another reason (logged): go on with the next proof.
    Skipped,
}

/// Waits for a sent proof transaction. `what` names it in logs and errors (e.g.
/// "refreshTrust of 0x.. for epoch 3"); `is_stale` recognises the contract's stale-proof error.
/// Transport failures are returned for a retry of the step.
async fn finish_proof_tx(
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
    what: &str,
    is_stale: fn(&ISettlement::ISettlementErrors) -> bool,
) -> Result<ProofTx, StepError> {
    let pending = match sent {
        Ok(p) => p,
        Err(err) => {
            return match decoded_settlement_error(&err) {
                Some(e) if is_stale(&e) => {
                    tracing::info!("{what}: a newer report was posted; stopping");
                    Ok(ProofTx::Stale)
                }
                Some(other) => {
                    tracing::warn!("{what} reverted: {other:?}");
                    Ok(ProofTx::Skipped)
                }
                None => Err(StepError::Retry(anyhow!("{what}: {err}"))),
            }
        }
    };
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(retry(format!("{what}: waiting for the receipt")))?;
    if !receipt.status() {
        tracing::warn!(tx = %receipt.transaction_hash, "{what} reverted");
        return Ok(ProofTx::Skipped);
    }
    Ok(ProofTx::Mined(receipt.transaction_hash))
}

fn describe(e: &alloy::contract::Error) -> String {
    match decoded_settlement_error(e) {
        Some(err) => format!("reverted: {err:?}"),
        None => e.to_string(),
    }
}

/// The validator's connection: a provider that signs with its key, on a chain, for a deployment.
pub struct Node {
    /// Provider with the validator's wallet.
    pub provider: DynProvider,
    /// The validator's key (signs reports).
    pub signer: PrivateKeySigner,
    /// Chain id of the provider.
    pub chain_id: u64,
    /// The contracts.
    pub deployment: Deployment,
}

/// Settles epochs one after the other.
pub struct Settler {
    provider: DynProvider,
    signer: PrivateKeySigner,
    chain_id: u64,
    deployment: Deployment,
    db: Db,
    store: Store,
    cfg: EpochConfig,
    opts: Options,
    digest_checked: bool,
    next_epoch: u64,
    waiting_logged: Option<u64>,
    /// An epoch whose line is already printed, handled again until its report's veto window closes.
    printed: Option<u64>,
    /// (epoch, postedAt) of the last report this verifier vetoed: once per posting.
    vetoed: Option<(u64, u64)>,
    /// The last epoch computed, kept while it is handled again.
    computed: Option<(u64, EpochOutcome)>,
}

impl Settler {
    /// A settler that resumes where the chain (and, with --no-post, its database) says it
    /// stopped. The latest reported epoch is handled again, to finish its trust refresh.
    pub async fn new(
        node: Node,
        db: Db,
        store: Store,
        cfg: EpochConfig,
        opts: Options,
    ) -> anyhow::Result<Self> {
        let Node {
            provider,
            signer,
            chain_id,
            deployment,
        } = node;
        let settlement = ISettlement::new(deployment.settlement, &provider);
        let latest = settlement
            .latestEpoch()
            .call()
            .await
            .map_err(|e| anyhow!("Settlement.latestEpoch: {e}"))?;
        let from_chain = if latest.exists { latest.epoch } else { 0 };
        let from_store = if opts.no_post {
            store.last_signed_epoch().await?.map(|e| e + 1)
        } else {
            None
        };
        let next_epoch = from_chain.max(from_store.unwrap_or(0));
        Ok(Self {
            provider,
            signer,
            chain_id,
            deployment,
            db,
            store,
            cfg,
            opts,
            digest_checked: false,
            next_epoch,
            waiting_logged: None,
            printed: None,
            vetoed: None,
            computed: None,
        })
    }

    /// The next epoch this settler will handle.
    pub fn next_epoch(&self) -> u64 {
        self.next_epoch
    }

    fn me(&self) -> Address {
        self.signer.address()
    }

    fn settlement(&self) -> ISettlement::ISettlementInstance<&DynProvider> {
        ISettlement::new(self.deployment.settlement, &self.provider)
    }

    /// Runs until `shutdown`, `--stop-after-epoch`, or a fatal error.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut backoff = self.opts.poll;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let step = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                step = self.tick() => step,
            };
            let wait = match step {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    backoff = self.opts.poll;
                    self.opts.poll
                }
                Err(StepError::Fatal(e)) => return Err(e),
                Err(StepError::Retry(e)) => {
                    metrics::counter!(m::STEP_ERRORS).increment(1);
                    tracing::warn!(epoch = self.next_epoch, error = %format!("{e:#}"),
                        retry_in_ms = backoff.as_millis() as u64, "settlement step failed; retrying");
                    let w = backoff;
                    backoff = (backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                    w
                }
            };
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn epoch_end(&self, epoch: u64) -> Result<u64, StepError> {
        self.cfg
            .bounds(epoch)
            .map(|(_, end)| end)
            .map_err(|e| StepError::Fatal(anyhow!("epoch {epoch}: {e}")))
    }

    /// Handles every epoch that is ready. `Ok(true)`: `--stop-after-epoch` reached.
    pub async fn tick(&mut self) -> Result<bool, StepError> {
        if self.opts.stop_after.is_some_and(|s| s < self.next_epoch) {
            return Ok(true);
        }
        let Some(cursor) = self
            .db
            .cursor(self.chain_id)
            .await
            .map_err(retry("reading the cursor"))?
        else {
            return Ok(false);
        };
        loop {
            let e = self.next_epoch;
            if cursor.timestamp < self.epoch_end(e)? {
                return Ok(false);
            }
            let next_ready = cursor.timestamp >= self.epoch_end(e + 1)?;
            match self.handle(e, next_ready).await? {
                Handled::Waiting => return Ok(false),
                Handled::Done => {
                    metrics::gauge!(m::LAST_EPOCH).set(e as f64);
                    self.next_epoch = e + 1;
                    if self.opts.stop_after == Some(e) {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Checks once that `protocol::powr::report_digest` is what the contract verifies.
    async fn check_digest(&mut self, report: &EpochReport, digest: B256) -> Result<(), StepError> {
        if self.digest_checked {
            return Ok(());
        }
        let on_chain = self
            .settlement()
            .reportDigest(to_sol(report))
            .call()
            .await
            .map_err(retry("Settlement.reportDigest"))?;
        if on_chain != digest {
            return Err(StepError::Fatal(anyhow!(
                "EIP-712 digest mismatch for epoch {}: protocol::powr::report_digest gives {digest} but \
                 Settlement {}.reportDigest gives {on_chain} (chain {}); the Rust and Solidity report \
                 encodings disagree, so no signature of this verifier would be accepted: refusing to sign",
                report.epoch,
                self.deployment.settlement,
                self.chain_id
            )));
        }
        self.digest_checked = true;
        Ok(())
    }

    async fn sign(&self, report: &EpochReport, digest: B256) -> Result<SignedReport, StepError> {
        let sig = self
            .signer
            .sign_hash_sync(&digest)
            .map_err(|e| StepError::Fatal(anyhow!("signing the report digest: {e}")))?;
        let signed = SignedReport {
            epoch: report.epoch,
            report: report.into(),
            digest,
            signer: self.me(),
            signature: Bytes::from(sig.as_bytes().to_vec()),
        };
        self.store
            .save_signed(&signed)
            .await
            .map_err(retry("storing the signature"))?;
        metrics::counter!(m::REPORTS_SIGNED).increment(1);
        Ok(signed)
    }

    async fn handle(&mut self, e: u64, next_ready: bool) -> Result<Handled, StepError> {
        // an epoch waiting for its report's veto window is handled again at every poll: compute
        // it once (its facts are confirmed, so the outcome cannot change)
        let cached = self.computed.take().filter(|(ce, _)| *ce == e);
        let computed = match cached {
            Some((_, out)) => Ok(out),
            None => compute_epoch(&self.db, &self.cfg, e).await,
        };
        let outcome = match computed {
            Ok(out) => {
                self.computed = Some((e, out.clone()));
                out
            }
            // Deadlines of the epoch's assignments may run past its end: wait for them.
            Err(EpochError::NotReady { .. }) => {
                tracing::debug!(epoch = e, "epoch facts not yet confirmed");
                return Ok(Handled::Waiting);
            }
            Err(err) => return Err(StepError::Retry(anyhow!("computing epoch {e}: {err}"))),
        };
        // Refresh trust only for the newest ready epoch (proofs of older ones go stale at once).
        let refresh = self.opts.refresh_trust && (!next_ready || self.opts.stop_after == Some(e));
        let report = outcome.report.clone();
        let digest = report_digest(&report, self.chain_id, self.deployment.settlement);
        self.check_digest(&report, digest).await?;

        let record = self
            .settlement()
            .epochRecord(e)
            .call()
            .await
            .map_err(retry(format!("Settlement.epochRecord({e})")))?;
        if record.postedAt != 0 {
            let agrees = record.rewardsRoot == report.rewardsRoot
                && record.trustRoot == report.trustRoot
                && record.modelStatusHash == report.modelStatusHash
                && U256::from(record.totalRewards) == report.totalRewards;
            let in_veto_window = self.in_veto_window(e).await?;
            if in_veto_window && !agrees && !self.opts.no_post {
                // a report this verifier did not compute: veto it while it cannot pay yet; once
                // validators holding 1/3 of the signing stake did, it is discarded and the next
                // pass posts this verifier's report
                self.veto(e, &record, &report).await?;
                return Ok(Handled::Waiting);
            }
            if in_veto_window && agrees {
                // claims, trust and model status proofs open when the window closes
                return Ok(Handled::Waiting);
            }
            if agrees {
                tracing::info!(
                    epoch = e,
                    "epoch already reported on-chain, with the roots this verifier computed"
                );
                if !self.opts.no_post {
                    self.apply_model_statuses(e, &outcome).await?;
                }
                if refresh && !self.opts.no_post {
                    self.refresh_trust(e, &outcome).await?;
                }
            } else {
                metrics::counter!(m::REPORTS_DISAGREED).increment(1);
                tracing::warn!(
                    epoch = e,
                    on_chain_rewards_root = %record.rewardsRoot,
                    on_chain_trust_root = %record.trustRoot,
                    rewards_root = %report.rewardsRoot,
                    trust_root = %report.trustRoot,
                    "epoch was reported on-chain with roots this verifier did not compute"
                );
            }
            if self.printed == Some(e) {
                return Ok(Handled::Done);
            }
            self.print(&EpochLine {
                epoch: e,
                report: (&report).into(),
                digest,
                signer: self.me(),
                signature: None,
                posted_tx: None,
                post_gas_used: None,
                signers: Vec::new(),
            });
            return Ok(Handled::Done);
        }

        let signed = match self
            .store
            .signed(e)
            .await
            .map_err(retry("reading stored signatures"))?
        {
            Some(s) if s.digest == digest && s.signer == self.me() => s,
            Some(s) if s.signer == self.me() => {
                // signing two different reports of one epoch is slashable by anyone holding both
                // signatures (Settlement.reportEquivocation): never do it
                metrics::counter!(m::REPORTS_DISAGREED).increment(1);
                tracing::error!(epoch = e, signed_digest = %s.digest, digest = %digest,
                    "this verifier already signed a different report of this epoch (a reorg deeper than \
                     --confirmations?); refusing to sign a second one, which would be slashed as an \
                     equivocation. The epoch is left to the other validators");
                return Ok(Handled::Done);
            }
            // a signature stored under another key: this key has signed nothing for the epoch
            Some(_) => self.sign(&report, digest).await?,
            None => self.sign(&report, digest).await?,
        };
        if let Some(dir) = &self.opts.signatures_dir {
            cosign::write(dir, &signed).map_err(retry(format!(
                "--signatures-dir {}: writing the signature",
                dir.display()
            )))?;
        }
        if self.opts.no_post {
            tracing::info!(
                epoch = e,
                rewards_root = %report.rewardsRoot,
                trust_root = %report.trustRoot,
                total_rewards = %format_dn(report.totalRewards),
                digest = %digest,
                "epoch report signed (--no-post)"
            );
            self.print(&EpochLine {
                epoch: e,
                report: (&report).into(),
                digest,
                signer: self.me(),
                signature: Some(signed.signature.clone()),
                posted_tx: None,
                post_gas_used: None,
                signers: Vec::new(),
            });
            return Ok(Handled::Done);
        }

        let Some(signatures) = self.collect_quorum(e, digest, &signed).await? else {
            return Ok(Handled::Waiting);
        };
        let signers: Vec<Address> = signatures.keys().copied().collect();
        let posted = self.post(&report, &signatures).await?;
        let (posted_tx, gas) = match posted {
            Some((tx, gas)) => {
                self.store
                    .save_posted(e, tx)
                    .await
                    .map_err(retry("recording the posted report"))?;
                (Some(tx), Some(gas))
            }
            None => (None, None),
        };
        tracing::info!(
            epoch = e,
            rewards_root = %report.rewardsRoot,
            trust_root = %report.trustRoot,
            total_rewards = %format_dn(report.totalRewards),
            posted_tx = %posted_tx.map(|t| t.to_string()).unwrap_or_else(|| "by another validator".into()),
            gas_used = gas.unwrap_or_default(),
            signers = signers.len(),
            "epoch report posted"
        );
        self.print(&EpochLine {
            epoch: e,
            report: (&report).into(),
            digest,
            signer: self.me(),
            signature: Some(signed.signature.clone()),
            posted_tx,
            post_gas_used: gas,
            signers: if posted_tx.is_some() {
                signers
            } else {
                Vec::new()
            },
        });
        if self.in_veto_window(e).await? {
            // the next passes wait for the window, then apply statuses and trust
            self.printed = Some(e);
            return Ok(Handled::Waiting);
        }
        self.apply_model_statuses(e, &outcome).await?;
        if refresh {
            self.refresh_trust(e, &outcome).await?;
        }
        Ok(Handled::Done)
    }

    /// Whether `e`'s posted report is still inside its veto window (chain time).
    async fn in_veto_window(&self, e: u64) -> Result<bool, StepError> {
        let opens_at: u64 = self
            .settlement()
            .claimsOpenAt(e)
            .call()
            .await
            .map_err(retry(format!("Settlement.claimsOpenAt({e})")))?
            .saturating_to();
        if opens_at == 0 {
            return Ok(false);
        }
        let now = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(retry("reading the latest block"))?
            .ok_or_else(|| StepError::Retry(anyhow!("the node has no latest block")))?
            .header
            .timestamp;
        Ok(now < opens_at)
    }

    /// Vetoes `e`'s posted report (`record`), which differs from `report`, once.
    async fn veto(
        &mut self,
        e: u64,
        record: &ISettlement::EpochRecord,
        report: &EpochReport,
    ) -> Result<(), StepError> {
        if self.vetoed == Some((e, record.postedAt)) {
            return Ok(());
        }
        self.vetoed = Some((e, record.postedAt));
        metrics::counter!(m::REPORTS_DISAGREED).increment(1);
        // the veto names the posted report, so a late one cannot land on a report posted since
        let posted = ISettlement::EpochReport {
            epoch: e,
            rewardsRoot: record.rewardsRoot,
            trustRoot: record.trustRoot,
            totalRewards: U256::from(record.totalRewards),
            modelStatusHash: record.modelStatusHash,
        };
        let sent = self.settlement().vetoReport(posted).send().await;
        let what = format!("vetoReport of epoch {e}");
        let outcome = finish_proof_tx(sent, &what, |err| {
            matches!(
                err,
                ISettlement::ISettlementErrors::AlreadyVetoed(_)
                    | ISettlement::ISettlementErrors::NotThePostedReport(_)
                    | ISettlement::ISettlementErrors::VetoWindowClosed(_)
                    | ISettlement::ISettlementErrors::EpochNotReported(_)
            )
        })
        .await?;
        if let ProofTx::Mined(tx) = outcome {
            metrics::counter!(m::REPORTS_VETOED).increment(1);
            tracing::warn!(
                epoch = e,
                on_chain_rewards_root = %record.rewardsRoot,
                rewards_root = %report.rewardsRoot,
                tx = %tx,
                "vetoed an epoch report with roots this verifier did not compute"
            );
        }
        Ok(())
    }

    fn print(&self, line: &EpochLine) {
        match serde_json::to_string(line) {
            Ok(json) => println!("{json}"),
            Err(e) => tracing::error!(error = %e, "printing the epoch line"),
        }
    }

    /// This verifier's signature plus the co-signers' from `--signatures-dir`, when their
    /// validator stake reaches 2/3 of the total; None (and one log line) otherwise.
    async fn collect_quorum(
        &mut self,
        e: u64,
        digest: B256,
        own: &SignedReport,
    ) -> Result<Option<BTreeMap<Address, Bytes>>, StepError> {
        let mut candidates = BTreeMap::new();
        candidates.insert(own.signer, own.signature.clone());
        let first_look = self.waiting_logged != Some(e);
        if let Some(dir) = &self.opts.signatures_dir {
            let found = cosign::read_epoch(dir, e, digest).map_err(retry(format!(
                "--signatures-dir {}: reading",
                dir.display()
            )))?;
            if first_look {
                for (path, why) in &found.rejected {
                    tracing::warn!(epoch = e, file = %path.display(), "ignoring co-signature: {why}");
                }
            }
            candidates.extend(found.valid);
        }
        // the stake Settlement counts: active when the epoch ended and still active (finding M-3)
        let settlement = self.settlement();
        let total = settlement
            .signingTotal(e)
            .call()
            .await
            .map_err(retry("Settlement.signingTotal"))?;
        let mut signed_stake = U256::ZERO;
        let mut signatures = BTreeMap::new();
        for (signer, sig) in candidates {
            let stake = settlement
                .signingStake(signer, e)
                .call()
                .await
                .map_err(retry("Settlement.signingStake"))?;
            if stake.is_zero() {
                if first_look {
                    tracing::warn!(epoch = e, %signer, "ignoring co-signature of an address without validator stake when the epoch ended (or none left now)");
                }
                continue;
            }
            signed_stake += stake;
            signatures.insert(signer, sig);
        }
        if cosign::has_quorum(signed_stake, total) {
            return Ok(Some(signatures));
        }
        if first_look {
            tracing::info!(
                epoch = e,
                signers = signatures.len(),
                signed_stake = %format_dn(signed_stake),
                total_validator_stake = %format_dn(total),
                "waiting for co-signatures holding 2/3 of the validator stake{}",
                if self.opts.signatures_dir.is_none() { " (pass --signatures-dir to share them)" } else { "" }
            );
            self.waiting_logged = Some(e);
        }
        Ok(None)
    }

    /// Posts the report. `None`: another validator posted it first.
    async fn post(
        &self,
        report: &EpochReport,
        signatures: &BTreeMap<Address, Bytes>,
    ) -> Result<Option<(B256, u64)>, StepError> {
        let e = report.epoch;
        let settlement = self.settlement();
        let call = settlement.postReport(to_sol(report), cosign::ordered(signatures));
        let pending = match call.send().await {
            Ok(p) => {
                crate::crash::point("report-sent");
                p
            }
            Err(err) => {
                if let Some(ISettlement::ISettlementErrors::EpochAlreadyReported(_)) =
                    decoded_settlement_error(&err)
                {
                    return Ok(None);
                }
                return Err(StepError::Retry(anyhow!(
                    "postReport of epoch {e}: {}",
                    describe(&err)
                )));
            }
        };
        let receipt = pending
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .map_err(retry(format!(
                "postReport of epoch {e}: waiting for the receipt"
            )))?;
        if !receipt.status() {
            return Err(StepError::Retry(anyhow!(
                "postReport of epoch {e}: transaction {} reverted",
                receipt.transaction_hash
            )));
        }
        metrics::counter!(m::REPORTS_POSTED).increment(1);
        metrics::gauge!(m::POST_GAS).set(receipt.gas_used as f64);
        Ok(Some((receipt.transaction_hash, receipt.gas_used)))
    }

    /// Applies every leaf of `e`'s model status tree with `Settlement.applyModelStatus`, skipping
    /// models whose registry status already equals the leaf (so a retry or a restart sends only
    /// what is missing). Only the latest report's proofs are accepted on-chain: nothing is sent
    /// when `e` is not the latest reported epoch.
    async fn apply_model_statuses(&self, e: u64, outcome: &EpochOutcome) -> Result<(), StepError> {
        let leaves = outcome.model_status.entries();
        if leaves.is_empty() {
            return Ok(());
        }
        let settlement = self.settlement();
        let latest = settlement
            .latestEpoch()
            .call()
            .await
            .map_err(retry("Settlement.latestEpoch"))?;
        if !latest.exists || latest.epoch != e {
            tracing::debug!(
                epoch = e,
                latest = latest.epoch,
                "not the latest report: its model statuses can no longer be applied"
            );
            return Ok(());
        }
        let registry = IModelRegistry::new(self.deployment.model_registry, &self.provider);
        let mut applied = 0usize;
        for &(model_id, status) in leaves {
            let current = registry
                .getModel(model_id)
                .call()
                .await
                .map_err(retry(format!("ModelRegistry.getModel({model_id})")))?
                .status;
            if current == status {
                continue;
            }
            let Some((_, proof)) = outcome.model_status.proof(model_id) else {
                continue;
            };
            let sent = settlement
                .applyModelStatus(e, model_id, status, proof)
                .send()
                .await;
            let what =
                format!("applyModelStatus of model {model_id} (status {status}) for epoch {e}");
            let tx = match finish_proof_tx(sent, &what, |err| {
                matches!(
                    err,
                    ISettlement::ISettlementErrors::StaleModelStatusProof(_)
                )
            })
            .await?
            {
                ProofTx::Mined(tx) => tx,
                ProofTx::Stale => break,
                ProofTx::Skipped => continue,
            };
            metrics::counter!(m::MODEL_STATUS_APPLIED).increment(1);
            tracing::info!(
                epoch = e,
                model_id,
                from = protocol_status_name(current),
                to = protocol_status_name(status),
                tx = %tx,
                "model status applied"
            );
            applied += 1;
        }
        tracing::info!(
            epoch = e,
            leaves = leaves.len(),
            applied,
            "model statuses of the report applied"
        );
        Ok(())
    }

    /// Sets every node's trust weight from its leaf of `e`'s trust tree, skipping nodes already
    /// refreshed for `e` (so a retry after a failure sends only what is missing). Only the latest
    /// report's proofs are accepted on-chain.
    async fn refresh_trust(&self, e: u64, outcome: &EpochOutcome) -> Result<(), StepError> {
        let settlement = self.settlement();
        let latest = settlement
            .latestEpoch()
            .call()
            .await
            .map_err(retry("Settlement.latestEpoch"))?;
        if !latest.exists || latest.epoch != e {
            tracing::debug!(
                epoch = e,
                latest = latest.epoch,
                "not the latest report: no trust refresh"
            );
            return Ok(());
        }
        let mut refreshed = 0usize;
        let nodes = outcome.trust.entries().len();
        for (node, _) in outcome.trust.entries() {
            let last = settlement
                .lastTrustRefresh(*node)
                .call()
                .await
                .map_err(retry("Settlement.lastTrustRefresh"))?;
            if last.refreshed && last.epoch >= e {
                continue;
            }
            let Some((trust_wad, proof)) = outcome.trust.proof(*node) else {
                continue;
            };
            let sent = settlement
                .refreshTrust(e, *node, trust_wad, proof)
                .send()
                .await;
            let what = format!("refreshTrust of {node} for epoch {e}");
            match finish_proof_tx(sent, &what, |err| {
                matches!(err, ISettlement::ISettlementErrors::StaleTrustProof(_))
            })
            .await?
            {
                ProofTx::Mined(_) => {}
                ProofTx::Stale => break,
                ProofTx::Skipped => continue,
            }
            metrics::counter!(m::TRUST_REFRESHED).increment(1);
            tracing::debug!(epoch = e, %node, trust_wad = %trust_wad, "trust refreshed");
            refreshed += 1;
        }
        tracing::info!(epoch = e, nodes, refreshed, "trust weights refreshed");
        Ok(())
    }
}
