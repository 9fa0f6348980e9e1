//! Sentinel mode (`--sentinel-key`): this executor also plants forced errors, the protocol's
//! check on lazy validators (issue 14, DESIGN.md "Forced errors").
//!
//! Three wallets take part, none linked to another on-chain before a reveal: the planter
//! (`--sentinel-key`, AuditManager's `PLANTER_ROLE`, granted by Deploy.s.sol to
//! `DN_SENTINEL_PLANTER`; gas only), the submitter (`--sentinel-submitter-key`; DN for fees, gas,
//! no stake) and this worker. Every `--sentinel-interval-secs` the submitter submits a task of
//! `--sentinel-model`. It goes through the chain's worker draw like any other; when it is drawn to
//! this worker, the worker runs it honestly, and on `--sentinel-rate` of them journals a salt,
//! has the planter plant `keccak256(abi.encode(taskId, trueHash, salt))` (`plantForcedError`,
//! mined before the commit), and commits a counterfeit result instead (the model's declared
//! outputs filled with pseudo-random values, which every kind's rule rejects). As soon as the
//! drawn validator's verdict is on-chain the worker reveals it (`revealForcedError` with the
//! submitter's and its own EIP-712 consent `ForcedError(taskId, planter)`): a validator that
//! approved the wrong result did not re-execute and is slashed (`lazySlashBps` of its stake, the
//! bounty to the planter); one that rejected it has its dispute closed without slashing this
//! worker. A reveal needs both consents, so no user's task and no honest worker's result can be
//! declared a forced error. Validators cannot tell the sentinel's tasks from users' until a
//! reveal links the submitter and this worker to the planter: rotate the submitter then (and the
//! worker now and then). A task that is not audited pays its fee from the submitter to this
//! worker: the sentinel's cost is gas plus the fees' protocol share.

use crate::chain::{is_transport_error, Chain, TaskInfo};
use crate::journal::Planted;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolValue};
use anyhow::{anyhow, Context, Result};
use protocol::bindings::audit_admin::AuditManager;
use protocol::bindings::{DNToken, IAuditManager, IModelRegistry, ITaskManager, TaskStatus};
use protocol::verdict::forced_error_consent;
use protocol::Deployment;
use std::time::{Duration, Instant};

/// Default share of the sentinel's own tasks, drawn to itself, that become forced errors.
pub const DEFAULT_SENTINEL_RATE: f64 = 0.5;

/// `AuditManager.AuditState` values the reveal reads.
const AUDIT_NONE: u8 = 0;
const AUDIT_PASSED: u8 = 1;
const AUDIT_DISPUTED: u8 = 2;
const AUDIT_FRAUD: u8 = 3;

/// clap value parser of `--sentinel-rate`: a fraction in `[0, 1]`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("--sentinel-rate must be a fraction in [0, 1], got {s:?}: {e}"))?;
    if !rate.is_finite() || !(0.0..=1.0).contains(&rate) {
        return Err(format!(
            "--sentinel-rate must be a fraction in [0, 1], got {s:?}"
        ));
    }
    Ok(rate)
}

/// What became of one planted forced error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevealOutcome {
    /// No verdict yet: look again later.
    Waiting,
    /// Revealed after an approval: the validator was slashed as lazy.
    CaughtLazy(Address),
    /// Revealed after a rejection: the dispute was closed, nobody slashed.
    Rejected(Address),
    /// Nothing to reveal (never audited, or the audit ended otherwise); the reason.
    Done(&'static str),
}

/// What a sentinel is set up with (from the CLI).
pub struct SentinelConfig {
    /// The planter's key (`PLANTER_ROLE`).
    pub planter_key: String,
    /// The submitter's key.
    pub submitter_key: String,
    /// Model of its tasks.
    pub model_id: u32,
    /// Their inputs, used in turn.
    pub inputs: Vec<Vec<u8>>,
    /// Time between two tasks.
    pub interval: Duration,
    /// Share of its tasks drawn to this worker that become forced errors.
    pub rate: f64,
}

/// The sentinel: the planter's and the submitter's wallets, and this worker's key for its consent.
pub struct Sentinel {
    planter: Chain,
    submitter: Chain,
    submitter_signer: PrivateKeySigner,
    worker_signer: PrivateKeySigner,
    model_id: u32,
    inputs: Vec<Vec<u8>>,
    interval: Duration,
    rate: f64,
    next_submit: Instant,
    next_input: usize,
    /// The submission in flight (its own wallet and nonces: it never holds up the worker).
    submitting: Option<tokio::task::JoinHandle<Result<()>>>,
}

fn signer_of(key: &str, what: &str, chain_id: u64) -> Result<PrivateKeySigner> {
    let signer: PrivateKeySigner = key
        .trim()
        .parse()
        .map_err(|_| anyhow!("{what}: not a 32-byte hex private key"))?;
    protocol::wallet::refuse_dev_key_off_devnet(&signer, chain_id)?;
    Ok(signer)
}

impl Sentinel {
    /// A sentinel for `worker_signer`'s worker. Refuses keys that are not keys, and wallets that
    /// would link the sentinel's tasks to a staked node (the three must differ).
    pub fn new(
        cfg: SentinelConfig,
        worker_signer: PrivateKeySigner,
        provider: DynProvider,
        chain_id: u64,
        deployment: Deployment,
    ) -> Result<Self> {
        let planter = signer_of(
            &cfg.planter_key,
            "--sentinel-key / DN_SENTINEL_PRIVATE_KEY",
            chain_id,
        )?;
        let submitter = signer_of(
            &cfg.submitter_key,
            "--sentinel-submitter-key / DN_SENTINEL_SUBMITTER_KEY",
            chain_id,
        )?;
        let worker = worker_signer.address();
        if planter.address() == worker
            || submitter.address() == worker
            || planter.address() == submitter.address()
        {
            anyhow::bail!("--sentinel-key, --sentinel-submitter-key and the worker's key must be three different wallets (validators must not be able to link the sentinel's tasks to the planter or to a staked node)");
        }
        Ok(Self {
            planter: Chain::new(provider.clone(), planter, chain_id, deployment.clone()),
            submitter: Chain::new(provider, submitter.clone(), chain_id, deployment),
            submitter_signer: submitter,
            worker_signer,
            model_id: cfg.model_id,
            inputs: cfg.inputs,
            interval: cfg.interval,
            rate: cfg.rate,
            next_submit: Instant::now(),
            next_input: 0,
            submitting: None,
        })
    }

    /// Checks that the planter holds `PLANTER_ROLE` (a clear error otherwise).
    pub async fn check_role(&self) -> Result<()> {
        let audit = AuditManager::new(
            self.planter.deployment.audit_manager,
            self.planter.provider(),
        );
        let role = audit
            .PLANTER_ROLE()
            .call()
            .await
            .context("AuditManager.PLANTER_ROLE()")?;
        if !audit
            .hasRole(role, self.planter.me)
            .call()
            .await
            .context("AuditManager.hasRole")?
        {
            anyhow::bail!(
                "--sentinel-key: the planter {} lacks AuditManager's PLANTER_ROLE (Deploy.s.sol grants it to DN_SENTINEL_PLANTER; later, the admin timelock does)",
                self.planter.me
            );
        }
        tracing::info!(planter = %self.planter.me, submitter = %self.submitter.me, model = self.model_id, rate = self.rate, interval_secs = self.interval.as_secs(), "sentinel on: forced errors are planted on the submitter's tasks drawn to this worker");
        Ok(())
    }

    /// Starts the submitter's next task when one is due and the previous one is done (it runs
    /// on its own: the submitter's transactions never hold up the worker's).
    pub async fn submit_due(&mut self) {
        if let Some(h) = self.submitting.take() {
            if !h.is_finished() {
                self.submitting = Some(h);
                return;
            }
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "sentinel task not submitted; retrying at the next interval")
                }
                Err(e) => tracing::warn!(error = %e, "sentinel submission crashed"),
            }
        }
        if Instant::now() < self.next_submit || self.inputs.is_empty() {
            return;
        }
        self.next_submit = Instant::now() + self.interval;
        let input = self.inputs[self.next_input % self.inputs.len()].clone();
        self.next_input += 1;
        self.submitting = Some(tokio::spawn(submit(
            self.submitter.clone(),
            self.model_id,
            input,
        )));
    }

    /// Whether this task, about to be run by this worker, becomes a forced error: the planter's
    /// own task, picked with `--sentinel-rate` (unpredictably: validators must not know which).
    pub fn picks(&self, t: &TaskInfo) -> bool {
        t.submitter == self.submitter.me && rand::random::<f64>() < self.rate
    }

    /// Plants `p`'s commitment and waits until it is mined (before the commit that follows).
    /// `Ok(false)`: the contract refused it (the role was revoked): commit the true result.
    pub async fn plant(&self, p: &Planted) -> Result<bool> {
        let call = IAuditManager::plantForcedErrorCall {
            commitment: commitment(p),
        };
        match self
            .planter
            .send_and_wait(
                "plantForcedError",
                self.planter
                    .call_tx(self.planter.deployment.audit_manager, call.abi_encode()),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_transport_error(&e) => Err(e),
            Err(e) => {
                tracing::warn!(task = %p.task_id, error = %format!("{e:#}"), "could not plant the forced error; committing the true result");
                Ok(false)
            }
        }
    }

    /// Reveals `p` once a verdict on it exists, sending from `worker` (this worker's wallet).
    pub async fn reveal(&self, worker: &Chain, p: &Planted) -> Result<RevealOutcome> {
        let am = self.planter.deployment.audit_manager;
        let rec = IAuditManager::new(am, self.planter.provider())
            .auditRecord(p.task_id)
            .call()
            .await
            .with_context(|| format!("auditRecord({})", p.task_id))?;
        match rec.state {
            AUDIT_PASSED | AUDIT_DISPUTED => {
                let consent = |signer: &PrivateKeySigner| {
                    forced_error_consent(signer, worker.chain_id, am, p.task_id, self.planter.me)
                        .map(|b| Bytes::from(b.to_vec()))
                        .context("signing the forced error's consent")
                };
                let call = IAuditManager::revealForcedErrorCall {
                    taskId: p.task_id,
                    trueOutputHash: p.true_hash,
                    salt: p.salt,
                    submitterSignature: consent(&self.submitter_signer)?,
                    workerSignature: consent(&self.worker_signer)?,
                };
                match worker
                    .send_and_wait("revealForcedError", worker.call_tx(am, call.abi_encode()))
                    .await
                {
                    Ok(_) if rec.state == AUDIT_PASSED => {
                        Ok(RevealOutcome::CaughtLazy(rec.accuser))
                    }
                    Ok(_) => Ok(RevealOutcome::Rejected(rec.accuser)),
                    Err(e) if is_transport_error(&e) => Err(e),
                    Err(e) => {
                        tracing::warn!(task = %p.task_id, error = %format!("{e:#}"), "revealForcedError refused");
                        Ok(RevealOutcome::Done("the reveal was refused"))
                    }
                }
            }
            AUDIT_NONE => match worker.task(p.task_id).await?.status {
                Some(TaskStatus::Finalized | TaskStatus::Refunded) => {
                    Ok(RevealOutcome::Done("not audited"))
                }
                Some(TaskStatus::None) => Ok(RevealOutcome::Done(
                    "the task is gone from the chain (a reorg dropped its submission)",
                )),
                _ => Ok(RevealOutcome::Waiting),
            },
            AUDIT_FRAUD => Ok(RevealOutcome::Done(
                "the quorum judged it before the reveal (too late)",
            )),
            _ => Ok(RevealOutcome::Done(
                "the audit ended without a verdict to reveal",
            )),
        }
    }
}

/// `keccak256(abi.encode(uint256 taskId, bytes32 trueOutputHash, bytes32 salt))`, the commitment
/// `AuditManager.revealForcedError` recomputes.
pub fn commitment(p: &Planted) -> B256 {
    keccak256((p.task_id, p.true_hash, p.salt).abi_encode())
}

/// A fresh random salt.
pub fn salt() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}

/// One sentinel task from the submitter: approve the model's price, then `submitTask`.
async fn submit(submitter: Chain, model_id: u32, input: Vec<u8>) -> Result<()> {
    let d = &submitter.deployment;
    let price = IModelRegistry::new(d.model_registry, submitter.provider())
        .getModel(model_id)
        .call()
        .await
        .with_context(|| format!("getModel({model_id})"))?
        .pricePerCall;
    let price = U256::from(price);
    if !price.is_zero() {
        let approve = DNToken::approveCall {
            spender: d.task_manager,
            value: price,
        };
        submitter
            .send_and_wait(
                "sentinel: approve the fee",
                submitter.call_tx(d.token, approve.abi_encode()),
            )
            .await?;
    }
    let call = ITaskManager::submitTaskCall {
        modelId: model_id,
        input: Bytes::from(input),
        maxFee: price,
    };
    let r = submitter
        .send_and_wait(
            "sentinel: submitTask",
            submitter.call_tx(d.task_manager, call.abi_encode()),
        )
        .await?;
    let id = r
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<ITaskManager::TaskSubmitted>().ok())
        .map(|l| l.inner.data.taskId);
    tracing::debug!(task = ?id, model = model_id, "sentinel task submitted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_is_the_contracts_abi_encoding() {
        let p = Planted {
            task_id: U256::from(7),
            true_hash: B256::repeat_byte(1),
            salt: B256::repeat_byte(2),
        };
        let mut buf = Vec::new();
        buf.extend_from_slice(&U256::from(7).to_be_bytes::<32>());
        buf.extend_from_slice(&[1; 32]);
        buf.extend_from_slice(&[2; 32]);
        assert_eq!(commitment(&p), keccak256(&buf));
        assert_ne!(salt(), salt(), "salts are random");
    }

    #[test]
    fn the_three_wallets_must_differ_and_keys_must_be_keys() {
        use alloy::providers::Provider;
        let provider = alloy::providers::ProviderBuilder::new()
            .connect_http("http://127.0.0.1:9".parse().unwrap())
            .erased();
        let worker: PrivateKeySigner =
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
                .parse()
                .unwrap();
        let cfg = |planter: &str, submitter: &str| SentinelConfig {
            planter_key: planter.into(),
            submitter_key: submitter.into(),
            model_id: 1,
            inputs: vec![b"x".to_vec()],
            interval: Duration::from_secs(1),
            rate: 1.0,
        };
        let new = |c: SentinelConfig| {
            Sentinel::new(
                c,
                worker.clone(),
                provider.clone(),
                31337,
                Deployment {
                    chain_id: 31337,
                    start_block: 0,
                    token: Address::ZERO,
                    staking: Address::ZERO,
                    model_registry: Address::ZERO,
                    task_manager: Address::ZERO,
                    treasury: Address::ZERO,
                    validator_pool: Address::ZERO,
                    settlement: Address::ZERO,
                    audit_manager: Address::ZERO,
                    admin_timelock: Address::ZERO,
                    probe_registry: Address::ZERO,
                },
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        let k1 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
        let k2 = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
        let w = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        assert!(new(cfg(k1, k1)).contains("three different wallets"));
        assert!(new(cfg(k1, w)).contains("three different wallets"));
        assert!(new(cfg("nope", k2)).contains("--sentinel-key"));
        assert!(new(cfg(k1, "nope")).contains("--sentinel-submitter-key"));
        assert_eq!(new(cfg(k1, k2)), "", "three distinct wallets are accepted");
    }

    #[test]
    fn the_rate_is_a_fraction() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        for bad in ["-0.1", "1.5", "NaN", "inf", "half"] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("--sentinel-rate"), "{e}");
        }
    }
}
