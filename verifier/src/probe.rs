//! The prober (`--probe-key`): submits the protocol's probe tasks and reveals their wallets after
//! each epoch (probe emission, economics issue 14; README "Economics" and the PoWR section's
//! "probe emission" bullet).
//!
//! When `ProbeRegistry.probeEmission()` is on, an epoch's workers' and developers' pools pay only
//! for probe tasks: tasks whose submitter the prober (`PROBER_ROLE`) revealed with
//! `revealProbes(epoch, [submitter])` for the epoch they were submitted in, once that epoch had
//! ended, in a block no later than `end - 1 + responseWindow` (counted in the epoch each is
//! finalized in). Workers must not be able to tell a
//! probe from a user's task before the reveal, and a revealed wallet is known for good, so every
//! epoch has its own submitter wallet:
//!
//! - **wallet of epoch `e`**: the secp256k1 key `keccak256(seed || chain_id || e)` (`seed` the 32
//!   bytes of `--probe-seed`, `chain_id` and `e` as 8-byte big-endian integers); in the
//!   negligible case that this is not a valid scalar, `keccak256(seed || chain_id || e || c)` for
//!   `c = 1, 2, ...` (8-byte big-endian) until one is ([`epoch_signer`]). The seed is the
//!   prober's only state: whoever knows it knows every probe wallet, past and future.
//! - **schedule**: `--probe-tasks-per-epoch` `N` tasks, slot `k` (1..=N) due at chain time
//!   `start + k * epoch_length / (N + 1)`, moved by a secret offset of less than half the spacing
//!   derived from the seed ([`slot_times`]: probes have no fixed place in the epoch, and a
//!   restart finds the same schedule); slot `k` of epoch `e` uses model
//!   `(e * N + k - 1) mod |models|` and input `(e * N + k - 1) mod |inputs|` (round robin over
//!   `--probe-model` and the files of `--probe-inputs`), at the model's `pricePerCall`. A slot
//!   missed while the prober was down is caught up, one per poll, as long as its epoch runs; a
//!   slot of an epoch that has ended is never submitted (its wallet would show up in the next).
//! - **funding** (`--probe-funding`): with `key` (the default), before a submission the epoch's
//!   wallet is topped up from the probe key with the DN of the epoch's remaining tasks and, when it
//!   holds less than half of `--probe-gas-eth`, ETH up to `--probe-gas-eth`. With `external` the
//!   prober never sends funds to an epoch wallet: an operator funds each epoch's wallet in advance
//!   through a route not linked to the prober (`--probe-print-wallets N` lists the coming epochs'
//!   wallets, their time spans and the DN each needs at most); a wallet holding no ETH, or less DN
//!   than the slot's fee, when a probe is due is skipped with a warning naming the wallet, the
//!   epoch and the amounts missing (the step fails, nothing is submitted or revealed, and
//!   `verifier_probe_errors_total` counts it), and retried on the following polls. Either way the
//!   wallet then approves the TaskManager for the remaining fees (a transaction of the wallet
//!   itself, which links it to nothing) and submits `submitTasks(model, [input], price)`.
//! - **reveal**: once chain time reaches an epoch's end, the prober reveals the epoch's wallet from
//!   the probe key (`revealProbes(epoch, [wallet])`), only if the wallet submitted a task (its
//!   nonce is > 0 and a `TaskSubmitted` log names it as submitter) and only if it is not revealed
//!   yet (`isProbeSubmitter`). Everything it decides is read from the chain, so a restart neither
//!   reveals twice nor reveals an epoch without probes; at start it looks back over the epochs
//!   whose reveal could still count (the response window) and two more. A reveal mined after
//!   `end - 1 + responseWindow` is logged as a warning: the epoch computation does not count it.
//!   The prober polls every `--poll-interval-ms`, well within a response window.
//! - **sweep**: after an epoch is settled (revealed, or found without probes), the DN and then the
//!   ETH left in its wallet go back to the probe key (best effort: a failure is a warning; the ETH
//!   transfer's fee cap margin stays, a few gwei times 21,000), in both funding modes: by then the
//!   wallet is public, or it submitted nothing there was to hide.
//!
//! What it is trusted with, and the known limit:
//! - the prober could reveal a colluding wallet (whose self-paid tasks would then earn emission),
//!   like any role holder: `PROBER_ROLE` is granted and revoked through the admin timelock, and
//!   every reveal is a public event;
//! - **funding links**: with `--probe-funding key`, DN and ETH go straight from the probe key to
//!   each epoch's wallet, so a worker that follows the funds recognises probes before the reveal:
//!   fit for devnets and tests only. `--probe-funding external` removes the on-chain link the
//!   prober itself creates (before a reveal the probe key sends nothing to, and receives nothing
//!   from, an epoch wallet); what remains is the operator's route, which must link the wallets
//!   neither to the prober nor to one another (e.g. DN and ETH bought on an exchange and withdrawn
//!   straight to each fresh address): this service cannot check that;
//! - the probe key is not the validator's key (their transactions would race for nonces), and its
//!   tasks are audited like any other (grading probes against labels is not built).

use crate::metrics as m;
use alloy::eips::BlockNumberOrTag;
use alloy::network::TransactionBuilder;
use alloy::primitives::utils::{format_ether, parse_ether};
use alloy::primitives::{keccak256, Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use anyhow::{anyhow, bail, Context, Result};
use chainstore::epochs::EpochConfig;
use protocol::bindings::{DNToken, IModelRegistry, IProbeRegistry, ITaskManager};
use protocol::rpc::RpcArgs;
use protocol::{format_dn, Deployment};
use std::time::Duration;
use tokio::sync::watch;

alloy::sol! {
    /// OpenZeppelin's AccessControl role check (ProbeRegistry's interface omits it).
    #[sol(rpc)]
    interface IAccessControl {
        function hasRole(bytes32 role, address account) external view returns (bool);
    }
}

/// Default `--probe-tasks-per-epoch`.
pub const DEFAULT_TASKS_PER_EPOCH: u32 = 4;
/// Default `--probe-gas-eth`.
pub const DEFAULT_GAS_ETH: &str = "0.05";
/// Most epochs `--probe-print-wallets` lists.
pub const MAX_PRINT_WALLETS: u64 = 1000;

/// How the epoch wallets get their DN and ETH (`--probe-funding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeFunding {
    /// The prober tops each epoch wallet up from the probe key (links the wallets to it on-chain).
    #[default]
    Key,
    /// The prober never sends funds to an epoch wallet: an operator funds them in advance through
    /// a route not linked to the prober.
    External,
}

/// `IModelRegistry.ModelStatus.Delisted`.
const MODEL_DELISTED: u8 = 2;
/// How long a transaction's receipt is awaited.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest block range of one `eth_getLogs` request.
const LOG_CHUNK_BLOCKS: u64 = 2000;
/// Ended epochs looked at when the prober starts, besides those within a response window.
const REVEAL_LOOKBACK_EPOCHS: u64 = 2;
/// Longest wait between two steps after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A secret from the command line (`--probe-key`, `--probe-seed`): never printed, not even by
/// `Debug`, and parsed (with errors that do not echo it) only when the prober is set up.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// The 32-byte secret the epoch wallets are derived from (`--probe-seed`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeSeed([u8; 32]);

impl std::fmt::Debug for ProbeSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeSeed(<redacted>)")
    }
}

impl ProbeSeed {
    /// Parses 64 hex digits (optionally `0x`-prefixed); the error never repeats the input.
    pub fn parse(s: &str) -> Result<Self, String> {
        const FLAG: &str = "--probe-seed / DN_PROBE_SEED";
        let hex_digits = s.trim();
        let hex_digits = hex_digits.strip_prefix("0x").unwrap_or(hex_digits);
        if hex_digits.len() != 64 {
            return Err(format!(
                "{FLAG}: expected 32 bytes as 64 hex digits (optionally 0x-prefixed), got {} characters",
                hex_digits.len()
            ));
        }
        let mut seed = [0u8; 32];
        alloy::hex::decode_to_slice(hex_digits, &mut seed)
            .map_err(|_| format!("{FLAG}: not hexadecimal"))?;
        if seed == [0u8; 32] {
            return Err(format!(
                "{FLAG}: the all-zero seed is not a secret; use 32 random bytes (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(Self(seed))
    }
}

/// clap value parser of `--probe-gas-eth`: a decimal amount of ether.
pub fn parse_eth(s: &str) -> Result<U256, String> {
    let wei = parse_ether(s.trim()).map_err(|e| {
        format!("--probe-gas-eth must be an amount of ETH such as 0.05, got {s:?}: {e}")
    })?;
    if wei.is_zero() {
        return Err("--probe-gas-eth must be more than 0: the epoch wallets pay gas".into());
    }
    Ok(wei)
}

/// The wallet of `epoch` (see the module docs): `keccak256(seed || chain_id || epoch [|| c])`.
pub fn epoch_signer(seed: &ProbeSeed, chain_id: u64, epoch: u64) -> PrivateKeySigner {
    let mut buf = Vec::with_capacity(56);
    buf.extend_from_slice(&seed.0);
    buf.extend_from_slice(&chain_id.to_be_bytes());
    buf.extend_from_slice(&epoch.to_be_bytes());
    let base = buf.len();
    let mut counter = 0u64;
    loop {
        if let Ok(signer) = PrivateKeySigner::from_bytes(&keccak256(&buf)) {
            return signer;
        }
        // zero or >= the group order: probability about 2^-128 per try
        counter += 1;
        buf.truncate(base);
        buf.extend_from_slice(&counter.to_be_bytes());
    }
}

/// Chain times at which the `n` slots of `epoch`, `[start, start + length)`, are due, in order:
/// slot `k` (1..=n) at `start + k * length / (n + 1)`, moved by a secret offset in
/// `[-s/2, s/2)` (`s = length / (n + 1)`, the spacing; the offset is
/// `keccak256(seed || chain_id || epoch || k) mod s`, minus `s/2`), so workers cannot tell probes
/// by their place in the epoch while a restarted prober finds the same schedule.
pub fn slot_times(
    seed: &ProbeSeed,
    chain_id: u64,
    epoch: u64,
    start: u64,
    length: u64,
    n: u32,
) -> Vec<u64> {
    let spacing = u128::from(length) / (u128::from(n) + 1);
    (1..=u64::from(n))
        .map(|k| {
            let center =
                u128::from(start) + u128::from(length) * u128::from(k) / (u128::from(n) + 1);
            let t = if spacing >= 2 {
                let mut buf = Vec::with_capacity(56 + 8);
                buf.extend_from_slice(&seed.0);
                buf.extend_from_slice(&chain_id.to_be_bytes());
                buf.extend_from_slice(&epoch.to_be_bytes());
                buf.extend_from_slice(&k.to_be_bytes());
                let h = keccak256(&buf);
                let mut low = [0u8; 16];
                low.copy_from_slice(&h[16..]);
                center - spacing / 2 + u128::from_be_bytes(low) % spacing
            } else {
                center
            };
            u64::try_from(t).unwrap_or(u64::MAX)
        })
        .collect()
}

/// Model and input index of slot `slot` (0-based) of `epoch`: round robin over both lists.
pub fn slot_pick(
    epoch: u64,
    slot: u32,
    tasks_per_epoch: u32,
    models: usize,
    inputs: usize,
) -> (usize, usize) {
    let i = u128::from(epoch) * u128::from(tasks_per_epoch) + u128::from(slot);
    let at = |len: usize| usize::try_from(i % len.max(1) as u128).unwrap_or(0);
    (at(models), at(inputs))
}

/// One coming epoch's wallet, as `--probe-print-wallets` lists it: what an operator funding the
/// wallets in advance (`--probe-funding external`) needs to know, and nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletLine {
    /// The epoch.
    pub epoch: u64,
    /// Its submitter wallet ([`epoch_signer`]'s address).
    pub wallet: Address,
    /// First second of the epoch (unix time, chain clock).
    pub start: u64,
    /// End of the epoch (exclusive).
    pub end: u64,
    /// DN (wei) the wallet needs at most for the epoch's probes: tasks per epoch x the highest
    /// `pricePerCall` among the listed `--probe-model`s (None when a price could not be read).
    pub needs: Option<U256>,
}

impl std::fmt::Display for WalletLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "epoch {} wallet {} from {} to {}",
            self.epoch, self.wallet, self.start, self.end
        )?;
        if let Some(n) = self.needs {
            write!(f, " needs {} DN", format_dn(n))?;
        }
        Ok(())
    }
}

impl WalletLine {
    /// `{epoch, wallet, start, end, needs}` (`needs` in DN as a decimal string, or null).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "epoch": self.epoch,
            "wallet": self.wallet.to_string(),
            "start": self.start,
            "end": self.end,
            "needs": self.needs.map(format_dn),
        })
    }
}

/// The wallets of epochs `first .. first + count` on `chain_id`, with their time spans.
pub fn wallet_lines(
    seed: &ProbeSeed,
    chain_id: u64,
    epochs: &EpochConfig,
    first: u64,
    count: u64,
    needs: Option<U256>,
) -> Result<Vec<WalletLine>> {
    (0..count)
        .map(|i| {
            let epoch = first
                .checked_add(i)
                .ok_or_else(|| anyhow!("epoch {first} + {i} overflows"))?;
            let (start, end) = epochs.bounds(epoch)?;
            Ok(WalletLine {
                epoch,
                wallet: epoch_signer(seed, chain_id, epoch).address(),
                start,
                end,
                needs,
            })
        })
        .collect()
}

/// `--probe-print-wallets N`: the wallets of the `count` epochs from the one running at the chain
/// head (epoch 0 before genesis), read-only (no key is used, nothing is sent), with what each
/// needs at most (`tasks_per_epoch` x the highest `pricePerCall` among the listed `models`).
pub async fn epoch_wallets(
    rpc: &RpcArgs,
    seed: &ProbeSeed,
    models: &[u32],
    tasks_per_epoch: u32,
    count: u64,
) -> Result<Vec<WalletLine>> {
    if !(1..=MAX_PRINT_WALLETS).contains(&count) {
        bail!("--probe-print-wallets: between 1 and {MAX_PRINT_WALLETS} epochs, got {count}");
    }
    let (provider, chain_id) = rpc.connect().await?;
    let deployment = rpc.load_deployment(chain_id)?;
    let epochs = EpochConfig::load(&provider, &deployment)
        .await
        .context("reading the epoch parameters from the contracts")?;
    let now = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .context("reading the latest block")?
        .ok_or_else(|| anyhow!("the node has no latest block"))?
        .header
        .timestamp;
    let first = epochs.epoch_at(now).unwrap_or(0);
    let mr = IModelRegistry::new(deployment.model_registry, &provider);
    let mut highest: Option<U256> = None;
    let mut readable = !models.is_empty();
    for &id in models {
        match mr.getModel(id).call().await {
            Ok(m) if m.status != MODEL_DELISTED => {
                let p = U256::from(m.pricePerCall);
                highest = Some(highest.map_or(p, |h| h.max(p)));
            }
            Ok(_) => tracing::warn!(model = id, "--probe-model {id} is delisted: not probed"),
            Err(e) => {
                tracing::warn!(model = id, error = %e, "--probe-model {id}: cannot read its price");
                readable = false;
            }
        }
    }
    let needs = highest
        .filter(|_| readable)
        .map(|h| h * U256::from(tasks_per_epoch));
    wallet_lines(seed, chain_id, &epochs, first, count, needs)
}

/// What the prober is set up with (from the CLI, `Args::probe_config`).
pub struct ProbeConfig {
    /// The PROBER_ROLE holder: reveals, and funds the epoch wallets.
    pub key: PrivateKeySigner,
    /// Secret the epoch wallets derive from.
    pub seed: ProbeSeed,
    /// Catalogue models probed (distinct, in the given order).
    pub models: Vec<u32>,
    /// Task inputs, used in turn.
    pub inputs: Vec<Vec<u8>>,
    /// Tasks per epoch.
    pub tasks_per_epoch: u32,
    /// ETH an epoch wallet is topped up to, in wei (`ProbeFunding::Key`).
    pub gas_wei: U256,
    /// Who funds the epoch wallets.
    pub funding: ProbeFunding,
    /// Time between two steps.
    pub poll: Duration,
}

impl std::fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeConfig")
            .field("prober", &self.key.address())
            .field("seed", &self.seed)
            .field("models", &self.models)
            .field("inputs", &self.inputs.len())
            .field("tasks_per_epoch", &self.tasks_per_epoch)
            .field("gas_wei", &self.gas_wei)
            .field("funding", &self.funding)
            .field("poll", &self.poll)
            .finish()
    }
}

/// What one [`Prober::step`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The epoch running at the chain head (None before genesis).
    pub epoch: Option<u64>,
    /// Probe tasks submitted.
    pub submitted: u32,
    /// Epochs revealed.
    pub revealed: Vec<u64>,
}

/// The wallet of the epoch being probed.
struct EpochWallet {
    epoch: u64,
    address: Address,
    provider: DynProvider,
    /// Slots of the epoch already submitted (read from the chain when first touched).
    submitted: u32,
}

/// The prober: the probe key's connection and the schedule.
pub struct Prober {
    rpc: RpcArgs,
    provider: DynProvider,
    me: Address,
    chain_id: u64,
    deployment: Deployment,
    epochs: EpochConfig,
    response_window: u64,
    seed: ProbeSeed,
    models: Vec<u32>,
    inputs: Vec<Vec<u8>>,
    tasks_per_epoch: u32,
    gas_wei: U256,
    funding: ProbeFunding,
    poll: Duration,
    current: Option<EpochWallet>,
    /// Epochs before this one are settled (revealed, or nothing to reveal).
    reveal_from: Option<u64>,
}

impl Prober {
    /// Connects with the probe key and checks it can work: a probe registry in the deployment,
    /// the key holds `PROBER_ROLE`, every model exists and is not delisted. Logs whether probe
    /// emission is on (a warning when off: probes then earn nothing extra).
    pub async fn start(cfg: ProbeConfig, rpc: &RpcArgs) -> Result<Self> {
        if cfg.inputs.is_empty() {
            bail!("--probe-inputs: no task inputs");
        }
        if cfg.models.is_empty() {
            bail!("--probe-model: give at least one model to probe");
        }
        if cfg.tasks_per_epoch == 0 {
            bail!("--probe-tasks-per-epoch must be at least 1");
        }
        let me = cfg.key.address();
        let (provider, chain_id) = rpc.connect_with_wallet(cfg.key.clone()).await?;
        protocol::wallet::refuse_dev_key_off_devnet(&cfg.key, chain_id)
            .context("--probe-key / DN_PROBE_PRIVATE_KEY")?;
        let deployment = rpc.load_deployment(chain_id)?;
        if deployment.probe_registry == Address::ZERO {
            bail!("--probe-key: the deployment names no ProbeRegistry (probeRegistry): redeploy with script/Deploy.s.sol, or run without the prober");
        }
        let registry = IProbeRegistry::new(deployment.probe_registry, &provider);
        let role = registry
            .PROBER_ROLE()
            .call()
            .await
            .context("ProbeRegistry.PROBER_ROLE()")?;
        let holds = IAccessControl::new(deployment.probe_registry, &provider)
            .hasRole(role, me)
            .call()
            .await
            .context("ProbeRegistry.hasRole")?;
        if !holds {
            bail!(
                "--probe-key: the prober {me} lacks ProbeRegistry's PROBER_ROLE ({role}) in ProbeRegistry {} on chain {chain_id}: it could not reveal its probe wallets (Deploy.s.sol grants the role to DN_PROBER; later, the admin timelock does)",
                deployment.probe_registry
            );
        }
        let emission = registry
            .probeEmission()
            .call()
            .await
            .context("ProbeRegistry.probeEmission()")?;
        let mut models: Vec<u32> = Vec::new();
        for id in cfg.models {
            if !models.contains(&id) {
                models.push(id);
            }
        }
        let mr = IModelRegistry::new(deployment.model_registry, &provider);
        let mut cost = U256::ZERO;
        for &id in &models {
            let model = mr.getModel(id).call().await.map_err(|e| {
                if e.as_revert_data().is_some() {
                    anyhow!(
                        "--probe-model {id}: no such model in ModelRegistry {}",
                        deployment.model_registry
                    )
                } else {
                    anyhow!("--probe-model {id}: ModelRegistry.getModel: {e}")
                }
            })?;
            if model.status == MODEL_DELISTED {
                bail!("--probe-model {id}: the model is delisted (probe only the catalogue's listed models)");
            }
            cost = cost.max(U256::from(model.pricePerCall));
        }
        let epochs = EpochConfig::load(&provider, &deployment)
            .await
            .context("reading the epoch parameters from the contracts")?;
        let response_window = u64::from(epochs.response_window_secs);
        let prober = Self {
            rpc: rpc.clone(),
            provider,
            me,
            chain_id,
            deployment,
            epochs,
            response_window,
            seed: cfg.seed,
            models,
            inputs: cfg.inputs,
            tasks_per_epoch: cfg.tasks_per_epoch,
            gas_wei: cfg.gas_wei,
            funding: cfg.funding,
            poll: cfg.poll,
            current: None,
            reveal_from: None,
        };
        let per_epoch = cost * U256::from(prober.tasks_per_epoch);
        match prober.funding {
            ProbeFunding::Key => {
                let balance = DNToken::new(prober.deployment.token, &prober.provider)
                    .balanceOf(me)
                    .call()
                    .await
                    .context("DNToken.balanceOf(prober)")?;
                if balance < per_epoch {
                    tracing::warn!(prober = %me, balance = %format_dn(balance), per_epoch = %format_dn(per_epoch),
                        "the probe key holds less DN than one epoch of probes costs: fund it, or epochs go unprobed");
                }
            }
            ProbeFunding::External => {
                tracing::info!(per_epoch = %format_dn(per_epoch),
                    "external funding: the prober sends no funds to its epoch wallets (fund them in advance, see --probe-print-wallets)");
            }
        }
        if emission {
            tracing::info!("probe emission is on: the workers' and developers' pools pay for revealed probe tasks only");
        } else {
            tracing::warn!("probe emission is off (ProbeRegistry.probeEmission): the epochs pay for every task and probes earn nothing extra");
        }
        tracing::info!(
            prober = %me,
            registry = %prober.deployment.probe_registry,
            models = ?prober.models,
            inputs = prober.inputs.len(),
            tasks_per_epoch = prober.tasks_per_epoch,
            gas_eth = %format_ether(prober.gas_wei),
            funding = ?prober.funding,
            response_window_secs = prober.response_window,
            "prober started"
        );
        Ok(prober)
    }

    /// The probe key's address.
    pub fn address(&self) -> Address {
        self.me
    }

    /// The wallet of `epoch` on this chain.
    pub fn epoch_wallet(&self, epoch: u64) -> Address {
        epoch_signer(&self.seed, self.chain_id, epoch).address()
    }

    /// Steps every `--poll-interval-ms` until `stop` turns true; a failed step is logged and
    /// retried with backoff (nothing it does is lost: the next step reads the chain again).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let mut backoff = self.poll;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let step = tokio::select! {
                _ = stop.changed() => return Ok(()),
                step = self.step() => step,
            };
            let wait = match step {
                Ok(_) => {
                    backoff = self.poll;
                    self.poll
                }
                Err(e) => {
                    metrics::counter!(m::PROBE_ERRORS).increment(1);
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64,
                        "prober step failed; retrying");
                    let w = backoff;
                    // a quarter of the response window at most: a reveal must not wait out its window
                    let cap = MAX_BACKOFF
                        .min(Duration::from_secs(self.response_window / 4))
                        .max(Duration::from_secs(1));
                    backoff = (backoff * 2).clamp(Duration::from_millis(100), cap);
                    w
                }
            };
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass: reveals the ended epochs not settled yet (oldest first), then submits the
    /// running epoch's next due slot.
    pub async fn step(&mut self) -> Result<StepOutcome> {
        let now = self.chain_time().await?;
        let mut out = StepOutcome {
            epoch: self.epochs.epoch_at(now),
            ..StepOutcome::default()
        };
        let Some(current) = out.epoch else {
            return Ok(out);
        };
        let lookback = REVEAL_LOOKBACK_EPOCHS
            + self
                .response_window
                .div_ceil(self.epochs.epoch_length.max(1));
        let from = *self
            .reveal_from
            .get_or_insert(current.saturating_sub(lookback));
        for e in from..current {
            if self.settle(e).await? {
                out.revealed.push(e);
            }
            self.reveal_from = Some(e + 1);
        }
        out.submitted = self.submit_due(current, now).await?;
        Ok(out)
    }

    /// Reveals ended epoch `e`'s wallet unless it is revealed already or submitted nothing, then
    /// sweeps its DN and ETH back. `Ok(true)`: revealed now.
    async fn settle(&mut self, e: u64) -> Result<bool> {
        let signer = epoch_signer(&self.seed, self.chain_id, e);
        let wallet = signer.address();
        let registry = IProbeRegistry::new(self.deployment.probe_registry, &self.provider);
        let revealed = registry
            .isProbeSubmitter(e, wallet)
            .call()
            .await
            .with_context(|| format!("ProbeRegistry.isProbeSubmitter({e})"))?;
        let mut did_reveal = false;
        if revealed {
            tracing::debug!(epoch = e, wallet = %wallet, "probe wallet already revealed");
        } else if self.submitted_in(e, wallet).await? {
            let (_, end) = self.epochs.bounds(e)?;
            let receipt = match registry.revealProbes(e, vec![wallet]).send().await {
                Ok(pending) => pending
                    .with_timeout(Some(RECEIPT_TIMEOUT))
                    .get_receipt()
                    .await
                    .with_context(|| format!("revealProbes({e}): waiting for the receipt"))?,
                Err(err) => {
                    match err.as_decoded_interface_error::<IProbeRegistry::IProbeRegistryErrors>() {
                        Some(IProbeRegistry::IProbeRegistryErrors::AlreadyRevealed(_)) => {
                            tracing::info!(epoch = e, wallet = %wallet, "probe wallet revealed meanwhile");
                            return Ok(false);
                        }
                        Some(other) => bail!("revealProbes({e}) reverted: {other:?}"),
                        None => return Err(anyhow!(err).context(format!("revealProbes({e})"))),
                    }
                }
            };
            if !receipt.status() {
                bail!(
                    "revealProbes({e}) reverted in tx {}",
                    receipt.transaction_hash
                );
            }
            let at = self.receipt_time(&receipt).await?;
            let counts_until = end - 1 + self.response_window;
            metrics::counter!(m::PROBE_REVEALS).increment(1);
            if at > counts_until {
                tracing::warn!(epoch = e, wallet = %wallet, block_time = at, counts_until,
                    tx = %receipt.transaction_hash,
                    "probe wallet revealed too late: the epoch computation does not count reveals after end - 1 + responseWindow, so these probes earn nothing");
            } else {
                tracing::info!(epoch = e, wallet = %wallet, block_time = at, counts_until,
                    tx = %receipt.transaction_hash, "probe wallet revealed");
            }
            did_reveal = true;
        } else {
            tracing::debug!(epoch = e, wallet = %wallet, "no probe submitted in this epoch: nothing to reveal");
        }
        if self.current.as_ref().is_some_and(|w| w.epoch <= e) {
            self.current = None;
        }
        self.sweep(e, signer).await;
        Ok(did_reveal)
    }

    /// Whether `wallet` (of epoch `e`) submitted a task: its nonce and its `TaskSubmitted` logs.
    async fn submitted_in(&self, e: u64, wallet: Address) -> Result<bool> {
        if let Some(w) = self.current.as_ref().filter(|w| w.epoch == e) {
            if w.submitted > 0 {
                return Ok(true);
            }
        }
        Ok(self.count_submitted(e, wallet).await? > 0)
    }

    /// `TaskSubmitted` logs naming `wallet` as submitter since epoch `e` began (0 without a
    /// transaction from it).
    async fn count_submitted(&self, e: u64, wallet: Address) -> Result<u32> {
        let nonce = self
            .provider
            .get_transaction_count(wallet)
            .await
            .context("reading the epoch wallet's nonce")?;
        if nonce == 0 {
            return Ok(0);
        }
        let (start, _) = self.epochs.bounds(e)?;
        let latest = self
            .provider
            .get_block_number()
            .await
            .context("reading the chain head")?;
        let mut from = self.first_block_at_or_after(start, latest).await?;
        let mut n = 0u32;
        while from <= latest {
            let to = latest.min(from + LOG_CHUNK_BLOCKS - 1);
            let logs = self
                .provider
                .get_logs(
                    &Filter::new()
                        .address(self.deployment.task_manager)
                        .event_signature(ITaskManager::TaskSubmitted::SIGNATURE_HASH)
                        .topic2(wallet.into_word())
                        .from_block(from)
                        .to_block(to),
                )
                .await
                .with_context(|| {
                    format!("eth_getLogs TaskSubmitted of {wallet}, blocks {from}..={to}")
                })?;
            n = n.saturating_add(u32::try_from(logs.len()).unwrap_or(u32::MAX));
            from = to + 1;
        }
        Ok(n)
    }

    /// The first block (from the deployment's) whose time is >= `t`, or `latest + 1` if none.
    async fn first_block_at_or_after(&self, t: u64, latest: u64) -> Result<u64> {
        let (mut lo, mut hi) = (self.deployment.start_block.min(latest), latest + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.block_time(mid).await? >= t {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// Submits the running epoch's next due slot, if any; returns the tasks submitted (0 or 1).
    async fn submit_due(&mut self, epoch: u64, now: u64) -> Result<u32> {
        let (start, end) = self.epochs.bounds(epoch)?;
        if now >= end {
            return Ok(0);
        }
        let slots = slot_times(
            &self.seed,
            self.chain_id,
            epoch,
            start,
            self.epochs.epoch_length,
            self.tasks_per_epoch,
        );
        let due = u32::try_from(slots.iter().filter(|&&t| t <= now).count()).unwrap_or(u32::MAX);
        if due == 0 {
            return Ok(0);
        }
        if self.current.as_ref().is_none_or(|w| w.epoch != epoch) {
            let signer = epoch_signer(&self.seed, self.chain_id, epoch);
            let address = signer.address();
            let submitted = self.count_submitted(epoch, address).await?;
            let (provider, _) = self.rpc.connect_with_wallet(signer).await?;
            tracing::info!(epoch, wallet = %address, already_submitted = submitted, "probing a new epoch");
            self.current = Some(EpochWallet {
                epoch,
                address,
                provider,
                submitted,
            });
        }
        let (slot, wallet, wallet_provider) = match &self.current {
            Some(w) if w.submitted < due && w.submitted < self.tasks_per_epoch => {
                (w.submitted, w.address, w.provider.clone())
            }
            _ => return Ok(0),
        };
        // this slot's model and the price of every remaining slot
        let mr = IModelRegistry::new(self.deployment.model_registry, &self.provider);
        let mut prices = Vec::new();
        for &id in &self.models {
            let model = mr
                .getModel(id)
                .call()
                .await
                .with_context(|| format!("ModelRegistry.getModel({id})"))?;
            prices.push((model.status != MODEL_DELISTED).then(|| U256::from(model.pricePerCall)));
        }
        let pick = |s: u32| -> Option<(usize, usize)> {
            let (mi, ii) = slot_pick(
                epoch,
                s,
                self.tasks_per_epoch,
                self.models.len(),
                self.inputs.len(),
            );
            // a delisted model's slot goes to the next listed one
            (0..self.models.len())
                .map(|d| (mi + d) % self.models.len())
                .find(|&i| prices[i].is_some())
                .map(|i| (i, ii))
        };
        let Some((mi, ii)) = pick(slot) else {
            bail!("every --probe-model is delisted now: nothing to probe");
        };
        let remaining: U256 = (slot..self.tasks_per_epoch)
            .filter_map(|s| pick(s).and_then(|(i, _)| prices[i]))
            .fold(U256::ZERO, |a, p| a + p);
        let price = prices[mi].unwrap_or_default();
        let model_id = self.models[mi];
        self.fund(epoch, wallet, &wallet_provider, remaining, price)
            .await?;
        let tm = ITaskManager::new(self.deployment.task_manager, &wallet_provider);
        let receipt = tm
            .submitTasks(model_id, vec![Bytes::from(self.inputs[ii].clone())], price)
            .send()
            .await
            .map_err(|e| anyhow!("submitTasks from the epoch wallet: {}", describe_tm(&e)))?
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .context("submitTasks: waiting for the receipt")?;
        if !receipt.status() {
            bail!("submitTasks reverted in tx {}", receipt.transaction_hash);
        }
        let task = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<ITaskManager::TaskSubmitted>().ok())
            .map(|l| l.inner.data.taskId);
        if let Some(w) = self.current.as_mut() {
            w.submitted += 1;
        }
        metrics::counter!(m::PROBES_SUBMITTED).increment(1);
        tracing::info!(epoch, slot = slot + 1, of = self.tasks_per_epoch, task = ?task, model = model_id,
            fee = %format_dn(price), "probe task submitted");
        Ok(1)
    }

    /// Makes `wallet` (of `epoch`) ready to pay `price` for the due slot. `ProbeFunding::Key`: tops
    /// it up from the probe key, ETH to `--probe-gas-eth` when below half of it, DN to `remaining`
    /// (the epoch's remaining fees). `ProbeFunding::External`: sends nothing, and fails (naming the
    /// epoch, the wallet and what it lacks) when the wallet holds no ETH or less DN than `price`.
    /// Then approves the TaskManager for the remaining fees when the allowance is below `price`.
    async fn fund(
        &self,
        epoch: u64,
        wallet: Address,
        wallet_provider: &DynProvider,
        remaining: U256,
        price: U256,
    ) -> Result<()> {
        let d = &self.deployment;
        let eth = self
            .provider
            .get_balance(wallet)
            .await
            .context("reading the epoch wallet's ETH balance")?;
        match self.funding {
            ProbeFunding::Key => self.fund_from_key(wallet, eth, remaining).await?,
            ProbeFunding::External => {
                let dn = DNToken::new(d.token, &self.provider)
                    .balanceOf(wallet)
                    .call()
                    .await
                    .context("reading the epoch wallet's DN balance")?;
                if eth.is_zero() || dn < price {
                    let mut missing = Vec::new();
                    if dn < remaining {
                        missing.push(format!("{} DN", format_dn(remaining - dn)));
                    }
                    if eth.is_zero() {
                        missing.push("ETH for gas".to_string());
                    }
                    bail!(
                        "epoch {epoch}: the epoch wallet {wallet} holds {} DN of the {} DN its remaining probes need and {} ETH (missing: {}); probe skipped, retried at the next poll. --probe-funding external: fund it through a route not linked to the prober",
                        format_dn(dn),
                        format_dn(remaining),
                        format_ether(eth),
                        missing.join(" and ")
                    );
                }
                if dn < remaining {
                    tracing::warn!(epoch, wallet = %wallet, held = %format_dn(dn), needed = %format_dn(remaining),
                        missing = %format_dn(remaining - dn),
                        "the epoch wallet holds less DN than the epoch's remaining probes need: later probes wait for more (--probe-funding external)");
                }
            }
        }
        let wallet_token = DNToken::new(d.token, wallet_provider);
        let allowance = wallet_token
            .allowance(wallet, d.task_manager)
            .call()
            .await
            .context("reading the epoch wallet's allowance")?;
        if allowance < price {
            let r = wallet_token
                .approve(d.task_manager, remaining.max(price))
                .send()
                .await
                .map_err(|e| anyhow!("approving the TaskManager from the epoch wallet: {e}"))?
                .with_timeout(Some(RECEIPT_TIMEOUT))
                .get_receipt()
                .await
                .context("approve: waiting for the receipt")?;
            if !r.status() {
                bail!(
                    "approve from the epoch wallet reverted in tx {}",
                    r.transaction_hash
                );
            }
        }
        Ok(())
    }

    /// `ProbeFunding::Key`: sends `wallet` (holding `eth`) ETH up to `--probe-gas-eth` when it
    /// holds less than half of it, and DN up to `remaining`, from the probe key.
    async fn fund_from_key(&self, wallet: Address, eth: U256, remaining: U256) -> Result<()> {
        let d = &self.deployment;
        if eth < self.gas_wei / U256::from(2) {
            let amount = self.gas_wei - eth;
            let tx = TransactionRequest::default()
                .with_to(wallet)
                .with_value(amount);
            let r = self
                .provider
                .send_transaction(tx)
                .await
                .context("funding the epoch wallet with ETH")?
                .with_timeout(Some(RECEIPT_TIMEOUT))
                .get_receipt()
                .await
                .context("funding the epoch wallet with ETH: waiting for the receipt")?;
            if !r.status() {
                bail!(
                    "funding the epoch wallet with ETH reverted in tx {}",
                    r.transaction_hash
                );
            }
            tracing::debug!(wallet = %wallet, eth = %format_ether(amount), "epoch wallet funded with ETH");
        }
        let token = DNToken::new(d.token, &self.provider);
        let dn = token
            .balanceOf(wallet)
            .call()
            .await
            .context("reading the epoch wallet's DN balance")?;
        if dn < remaining {
            let amount = remaining - dn;
            let r = token
                .transfer(wallet, amount)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "funding the epoch wallet with {} DN from the probe key {}: {e}",
                        format_dn(amount),
                        self.me
                    )
                })?
                .with_timeout(Some(RECEIPT_TIMEOUT))
                .get_receipt()
                .await
                .context("funding the epoch wallet with DN: waiting for the receipt")?;
            if !r.status() {
                bail!(
                    "funding the epoch wallet with DN reverted in tx {}",
                    r.transaction_hash
                );
            }
            tracing::debug!(wallet = %wallet, dn = %format_dn(amount), "epoch wallet funded with DN");
        }
        Ok(())
    }

    /// Sends the DN, then the ETH, left in ended epoch `e`'s wallet back to the probe key (best
    /// effort: a failure is a warning).
    ///
    /// Also with `ProbeFunding::External`: the sweep runs only once `e` is settled, when the
    /// wallet is revealed (the link to the prober is public anyway) or submitted no task (there
    /// is no probe to recognise), so it gives nothing away; the operator's DN and ETH are not
    /// stranded, epoch after epoch.
    async fn sweep(&self, e: u64, signer: PrivateKeySigner) {
        let wallet = signer.address();
        let result: Result<()> = async {
            if self.provider.get_balance(wallet).await.context("eth_getBalance")?.is_zero() {
                return Ok(()); // never funded with gas: nothing to pay a transfer with
            }
            let (p, _) = self.rpc.connect_with_wallet(signer).await?;
            let token = DNToken::new(self.deployment.token, &p);
            let left = token.balanceOf(wallet).call().await.context("DNToken.balanceOf")?;
            if !left.is_zero() {
                let r = token
                    .transfer(self.me, left)
                    .send()
                    .await
                    .map_err(|e| anyhow!("DN transfer: {e}"))?
                    .with_timeout(Some(RECEIPT_TIMEOUT))
                    .get_receipt()
                    .await?;
                if !r.status() {
                    bail!("DN transfer reverted in tx {}", r.transaction_hash);
                }
                tracing::info!(epoch = e, wallet = %wallet, dn = %format_dn(left), "leftover DN swept back to the probe key");
            }
            self.sweep_eth(e, wallet, &p).await
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(epoch = e, wallet = %wallet, error = %format!("{err:#}"), "could not sweep the epoch wallet's leftovers");
        }
    }

    /// Sends `wallet`'s ETH back to the probe key less the transfer's fee at its fee cap: a
    /// plain transfer uses exactly 21,000 gas, so what stays is the cap's margin over the fee
    /// actually charged (a few gwei times 21,000). Nothing when the ETH would not pay the fee.
    async fn sweep_eth(&self, e: u64, wallet: Address, p: &impl Provider) -> Result<()> {
        const TRANSFER_GAS: u64 = 21_000;
        let eth = p.get_balance(wallet).await.context("eth_getBalance")?;
        let fees = p
            .estimate_eip1559_fees()
            .await
            .context("estimating the transfer's fee")?;
        let cap = U256::from(TRANSFER_GAS) * U256::from(fees.max_fee_per_gas);
        if eth <= cap {
            return Ok(());
        }
        let amount = eth - cap;
        let tx = TransactionRequest::default()
            .with_to(self.me)
            .with_value(amount)
            .with_gas_limit(TRANSFER_GAS)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let r = p
            .send_transaction(tx)
            .await
            .map_err(|e| anyhow!("ETH transfer: {e}"))?
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await?;
        if !r.status() {
            bail!("ETH transfer reverted in tx {}", r.transaction_hash);
        }
        tracing::info!(epoch = e, wallet = %wallet, eth = %format_ether(amount), "leftover ETH swept back to the probe key");
        Ok(())
    }

    async fn chain_time(&self) -> Result<u64> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .context("reading the latest block")?
            .ok_or_else(|| anyhow!("the node has no latest block"))?
            .header
            .timestamp)
    }

    async fn block_time(&self, n: u64) -> Result<u64> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(n))
            .await
            .with_context(|| format!("reading block {n}"))?
            .ok_or_else(|| anyhow!("the node has no block {n}"))?
            .header
            .timestamp)
    }

    async fn receipt_time(&self, r: &TransactionReceipt) -> Result<u64> {
        match r.block_number {
            Some(n) => self.block_time(n).await,
            None => self.chain_time().await,
        }
    }
}

fn describe_tm(e: &alloy::contract::Error) -> String {
    match e.as_decoded_interface_error::<ITaskManager::ITaskManagerErrors>() {
        Some(err) => format!("reverted: {err:?}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> ProbeSeed {
        ProbeSeed::parse(&format!("0x{}", "ab".repeat(32))).unwrap()
    }

    #[test]
    fn the_epoch_wallet_is_the_documented_hash_and_differs_per_epoch_and_chain() {
        let s = seed();
        let mut pre = vec![0xab; 32];
        pre.extend_from_slice(&31337u64.to_be_bytes());
        pre.extend_from_slice(&7u64.to_be_bytes());
        let expected = PrivateKeySigner::from_bytes(&keccak256(&pre)).unwrap();
        assert_eq!(epoch_signer(&s, 31337, 7).address(), expected.address());
        assert_eq!(
            epoch_signer(&s, 31337, 7).address(),
            epoch_signer(&s, 31337, 7).address()
        );
        assert_ne!(
            epoch_signer(&s, 31337, 7).address(),
            epoch_signer(&s, 31337, 8).address()
        );
        assert_ne!(
            epoch_signer(&s, 31337, 7).address(),
            epoch_signer(&s, 1, 7).address()
        );
        let other = ProbeSeed::parse(&"cd".repeat(32)).unwrap();
        assert_ne!(
            epoch_signer(&s, 31337, 7).address(),
            epoch_signer(&other, 31337, 7).address()
        );
    }

    #[test]
    fn bad_seeds_are_refused_without_echoing_them() {
        for bad in [
            "",
            "0x1234",
            &"zz".repeat(32),
            &"00".repeat(32),
            &"ab".repeat(33),
        ] {
            let e = ProbeSeed::parse(bad).unwrap_err();
            assert!(e.contains("--probe-seed"), "{e}");
            if bad.len() > 8 {
                assert!(!e.contains(bad), "the error repeats the seed: {e}");
            }
        }
        assert_eq!(format!("{:?}", seed()), "ProbeSeed(<redacted>)");
        assert_eq!(
            format!("{:?}", "x".parse::<Secret>().unwrap()),
            "<redacted>"
        );
    }

    #[test]
    fn slots_spread_over_the_epoch_and_picks_go_round_robin() {
        let s = seed();
        // spacing 1: no room for an offset
        assert_eq!(slot_times(&s, 1, 0, 100, 5, 4), vec![101, 102, 103, 104]);
        for epoch in 0..50 {
            for (len, n) in [(20, 4), (20, 2), (3600, 10), (7, 1), (100, 99)] {
                let t = slot_times(&s, 31337, epoch, 1000, len, n);
                assert_eq!(t.len(), n as usize);
                assert!(
                    t.windows(2).all(|w| w[0] < w[1]),
                    "in order: {t:?} ({len}, {n})"
                );
                assert!(
                    t[0] > 1000 && t[t.len() - 1] < 1000 + len,
                    "inside the epoch: {t:?}"
                );
                let spacing = len / (u64::from(n) + 1);
                for (k, t) in t.iter().enumerate() {
                    let center = 1000 + len * (k as u64 + 1) / (u64::from(n) + 1);
                    assert!(t + spacing / 2 >= center && *t < center + spacing.div_ceil(2));
                }
            }
        }
        assert_eq!(
            slot_times(&s, 31337, 3, 0, 3600, 4),
            slot_times(&s, 31337, 3, 0, 3600, 4),
            "the same schedule after a restart"
        );
        assert_ne!(
            slot_times(&s, 31337, 3, 0, 3600, 4),
            slot_times(&s, 31337, 4, 0, 3600, 4),
            "another epoch, other offsets"
        );
        assert_eq!(slot_pick(0, 0, 4, 2, 3), (0, 0));
        assert_eq!(slot_pick(0, 3, 4, 2, 3), (1, 0));
        assert_eq!(slot_pick(1, 0, 4, 2, 3), (0, 1));
        assert_eq!(slot_pick(u64::MAX, u32::MAX, u32::MAX, 1, 1), (0, 0));
    }

    #[test]
    fn a_wallet_line_shows_the_address_and_span_and_needs_only_when_known() {
        let s = seed();
        let wallet = epoch_signer(&s, 31337, 7).address();
        let mut l = WalletLine {
            epoch: 7,
            wallet,
            start: 140,
            end: 160,
            needs: None,
        };
        assert_eq!(
            l.to_string(),
            format!("epoch 7 wallet {wallet} from 140 to 160")
        );
        assert_eq!(l.to_json()["needs"], serde_json::Value::Null);
        l.needs =
            Some(U256::from(3u64) * U256::from(10u64).pow(U256::from(18u64)) / U256::from(2u64));
        assert_eq!(
            l.to_string(),
            format!("epoch 7 wallet {wallet} from 140 to 160 needs 1.5 DN")
        );
        let json = l.to_json();
        assert_eq!(json["wallet"], wallet.to_string());
        assert_eq!(
            (json["start"].as_u64(), json["end"].as_u64()),
            (Some(140), Some(160))
        );
        assert_eq!(json["needs"], "1.5");
        let all = format!("{l} {json}").to_lowercase();
        assert!(!all.contains(&"ab".repeat(32)), "the seed: {all}");
    }

    #[test]
    fn gas_eth_is_an_amount_of_ether() {
        assert_eq!(
            parse_eth("0.05").unwrap(),
            U256::from(50_000_000_000_000_000u64)
        );
        assert!(parse_eth("lots").unwrap_err().contains("--probe-gas-eth"));
        assert!(parse_eth("0").unwrap_err().contains("more than 0"));
    }
}
