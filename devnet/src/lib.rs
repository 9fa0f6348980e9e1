//! A real local DeepNode network for the demo and the end-to-end tests: anvil, the contracts
//! deployed by `forge script script/Deploy.s.sol`, funded and staked workers and validators,
//! and the digits model registered with the workers opted in.
//!
//! Nothing here is mocked: the same deploy script and contracts serve a testnet.

pub mod catalogue;
pub mod chaos;
pub mod chart;
pub mod digits;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{bail, Context, Result};
use protocol::bindings::{
    DNToken, IAuditManager, IModelRegistry, IStaking, ITaskManager, ROLE_VALIDATOR, ROLE_WORKER,
};
use protocol::wallet::ANVIL_DEV_KEYS;
use protocol::{Deployment, DN};
use sha2::Digest;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Knobs of a devnet; the defaults are the demo's.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Number of staked workers (anvil keys 1..).
    pub workers: usize,
    /// Number of staked validators (after the workers).
    pub validators: usize,
    /// Seconds a worker has to commit (TaskManager.responseWindow).
    pub response_window: u64,
    /// Seconds before an unchallenged result finalizes (TaskManager.challengeWindow).
    pub challenge_window: u64,
    /// Block interval once the setup is done (0 = mine only on transactions).
    pub block_time: u64,
    /// DN each worker stakes.
    pub worker_stake_dn: u64,
    /// DN each validator stakes.
    pub validator_stake_dn: u64,
    /// Price per call of the digits model in wei.
    pub model_price_wei: U256,
    /// Directory for the devnet's files (deployment copy, logs, journals, DB, model cache).
    pub work_dir: Option<PathBuf>,
    /// Register the digits model and opt the workers in.
    pub register_digits: bool,
    /// Settlement epoch length in seconds (Deploy.s.sol's DN_EPOCH_LENGTH; None: the
    /// environment's value or the script's default).
    pub epoch_length: Option<u64>,
    /// Seconds a worker that missed a deadline is jailed (DN_JAIL_DURATION; None as above).
    pub jail_duration: Option<u64>,
    /// DN emitted in epoch 0 (DN_INITIAL_EMISSION; None as above).
    pub initial_emission_dn: Option<u64>,
    /// Audit rate base p0 and floor pMin in WAD (DN_AUDIT_P0 / DN_AUDIT_P_MIN; None: the script's
    /// defaults 0.3 and 0.02). 1e18 for both audits every task.
    pub audit_p0_wad: Option<u64>,
    /// See `audit_p0_wad`.
    pub audit_p_min_wad: Option<u64>,
    /// Seconds a dispute quorum has to vote (DN_DISPUTE_WINDOW; None: 300).
    pub dispute_window: Option<u64>,
    /// Dispute quorum size (DN_QUORUM; None: the deploy script's 5, which a devnet of four or
    /// fewer validators fills with every validator but the accuser).
    pub quorum: Option<u8>,
    /// Seconds before an epoch's end its report signing stake is read (DN_ACTIVATION_DELAY).
    /// The deploy script's default is the whole epoch (stake in place when it began); the devnet's
    /// is 0 (the epoch's end), because its validators stake after genesis, during epoch 0.
    pub activation_delay: u64,
    /// Seconds a posted epoch report can be vetoed before claims open (DN_VETO_WINDOW; the
    /// devnet's default 0 opens claims at once).
    pub veto_window: u64,
    /// The sentinel's planter wallet, granted AuditManager's PLANTER_ROLE by the deploy script
    /// (DN_SENTINEL_PLANTER; None: no planter).
    pub sentinel_planter: Option<Address>,
    /// Probe emission (issue 14): the deploy script grants ProbeRegistry's PROBER_ROLE to a
    /// dedicated anvil account (`Devnet::prober`, the first index after the developer) and switches
    /// probe emission on (DN_PROBER, DN_PROBE_EMISSION=true); the prober gets 1,000 DN for probe
    /// fees. False: DN_PROBE_EMISSION=false and no prober (the pre-probe rules, which tests of
    /// rewards for users' tasks use; the deploy script's own default is on).
    pub probe: bool,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            workers: 3,
            validators: 1,
            response_window: 60,
            challenge_window: 6,
            block_time: 1,
            worker_stake_dn: 1_000,
            validator_stake_dn: 5_000,
            model_price_wei: U256::from(DN),
            work_dir: None,
            register_digits: true,
            epoch_length: None,
            jail_duration: None,
            initial_emission_dn: None,
            audit_p0_wad: None,
            audit_p_min_wad: None,
            dispute_window: None,
            quorum: None,
            activation_delay: 0,
            veto_window: 0,
            sentinel_planter: None,
            probe: false,
        }
    }
}

/// Seconds `forge script script/Deploy.s.sol` may take on a devnet.
const DEPLOY_TIMEOUT_SECS: u64 = 300;

/// A running devnet. Dropping it stops anvil.
pub struct Devnet {
    anvil: Child,
    /// JSON-RPC URL of anvil.
    pub rpc_url: String,
    /// Chain id (31337).
    pub chain_id: u64,
    /// Deployed addresses.
    pub deployment: Deployment,
    /// Copy of the deployment file inside `work_dir` (pass it as `--deployment`).
    pub deployment_path: PathBuf,
    /// Deployer / admin (anvil key 0).
    pub deployer: PrivateKeySigner,
    /// Staked workers.
    pub workers: Vec<PrivateKeySigner>,
    /// Staked validators.
    pub validators: Vec<PrivateKeySigner>,
    /// Account that submits tasks (funded, allowance granted).
    pub user: PrivateKeySigner,
    /// Developer of the digits model.
    pub developer: PrivateKeySigner,
    /// The prober, holding ProbeRegistry's PROBER_ROLE (`DevnetConfig::probe`; None without it): an
    /// anvil account no other devnet role uses (the index after the developer's), with anvil's ETH
    /// and no DN.
    pub prober: Option<PrivateKeySigner>,
    /// The digits model id (0 when not registered).
    pub model_id: u32,
    /// Files of this devnet.
    pub work_dir: PathBuf,
    /// Config it was started with.
    pub config: DevnetConfig,
    _tmp: Option<TempDirGuard>,
}

/// Removes a directory on drop.
struct TempDirGuard(PathBuf);
impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let pgid = self.anvil.id();
        // `kill -s KILL -- -PGID`: the explicit form; procps 4.0 misparses `kill -KILL -PGID`.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.anvil.kill();
        let _ = self.anvil.wait();
    }
}

/// One `submitTasks` of `inputs` to `model` at `price` each, from `provider`'s wallet (it must
/// have approved the fees); the new task ids, in order.
pub async fn submit_tasks(
    provider: &DynProvider,
    task_manager: Address,
    model: u32,
    price: U256,
    inputs: &[Vec<u8>],
) -> Result<Vec<U256>> {
    let tm = ITaskManager::new(task_manager, provider);
    let bytes: Vec<Bytes> = inputs.iter().map(|b| b.clone().into()).collect();
    let call = tm.submitTasks(model, bytes, price);
    let estimate = call.estimate_gas().await?;
    // bounded: a transaction dropped by a reorg is never mined
    let receipt = call
        .gas(estimate * 3 / 2)
        .send()
        .await?
        .with_timeout(Some(Duration::from_secs(60)))
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("submitTasks reverted in tx {}", receipt.transaction_hash);
    }
    Ok(receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<ITaskManager::TaskSubmitted>().ok())
        .map(|l| l.inner.data.taskId)
        .collect())
}

/// The flags of an executor on a devnet, after `--rpc-url` and `--deployment`: its model cache
/// and journal in `dir`, the CPU, and test-friendly polling (the end-to-end tests and the chaos
/// harness run it this way).
pub fn executor_args(dir: &Path) -> Vec<String> {
    [
        "--models-dir",
        &dir.join("models").display().to_string(),
        "--journal",
        &dir.join("journal.jsonl").display().to_string(),
        "--device",
        "cpu",
        "--poll-interval-ms",
        "300",
        "--finalize-interval-secs",
        "2",
    ]
    .map(String::from)
    .to_vec()
}

/// The flags of a verifier on a devnet, after `--rpc-url` and `--deployment`: its database and
/// model cache in `dir`, one confirmation, test-friendly polling.
pub fn verifier_args(dir: &Path) -> Vec<String> {
    [
        "--db",
        &dir.join("verifier.sqlite").display().to_string(),
        "--models-dir",
        &dir.join("models").display().to_string(),
        "--confirmations",
        "1",
        "--poll-interval-ms",
        "300",
    ]
    .map(String::from)
    .to_vec()
}

/// The repository root (where foundry.toml and node_modules live).
pub fn workspace_root() -> PathBuf {
    if let Ok(dir) = std::env::var("DN_WORKSPACE") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// A tool installed by `npm ci` (forge, anvil, cast). Prefers the native binary inside the
/// platform package over the `.bin` node wrapper: killing the wrapper would orphan the real
/// process (an anvil that keeps mining after its test ended).
pub fn npm_bin(name: &str) -> PathBuf {
    let root = workspace_root().join("node_modules");
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let native = root.join(format!("@foundry-rs/{name}-linux-{arch}/bin/{name}"));
    if native.exists() {
        native
    } else {
        root.join(".bin").join(name)
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free local port")?;
    Ok(l.local_addr()?.port())
}

/// Signer of anvil's key `i`.
pub fn anvil_signer(i: usize) -> PrivateKeySigner {
    ANVIL_DEV_KEYS[i].parse().expect("anvil keys are valid")
}

/// Hex of a signer's private key (to pass to a child process through its environment).
pub fn key_hex(s: &PrivateKeySigner) -> String {
    format!("0x{}", hex::encode(s.to_bytes()))
}

/// sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<B256> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(B256::from_slice(&sha2::Sha256::digest(&bytes)))
}

impl Devnet {
    /// Starts anvil, deploys, funds and stakes. Progress goes to stderr via `tracing`.
    pub async fn start(config: DevnetConfig) -> Result<Devnet> {
        // deployer, user, developer and (with `probe`) the prober besides workers and validators
        let others = 3 + usize::from(config.probe);
        if config.workers + config.validators + others > ANVIL_DEV_KEYS.len() {
            bail!(
                "at most {} workers + validators on a devnet",
                ANVIL_DEV_KEYS.len() - others
            );
        }
        let root = workspace_root();
        let anvil_bin = npm_bin("anvil");
        if !anvil_bin.exists() {
            bail!(
                "{} not found: run `make setup` (npm ci) first",
                anvil_bin.display()
            );
        }
        let (work_dir, tmp) = match &config.work_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "deepnode-devnet-{}-{}",
                    std::process::id(),
                    free_port()?
                ));
                (d.clone(), Some(TempDirGuard(d)))
            }
        };
        std::fs::create_dir_all(&work_dir)
            .with_context(|| format!("creating {}", work_dir.display()))?;

        let port = free_port()?;
        let rpc_url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(work_dir.join("anvil.log"))?;
        // Own process group, so Drop can stop anvil and anything it spawned.
        let anvil = Command::new(&anvil_bin)
            .process_group(0)
            .args([
                "--port",
                &port.to_string(),
                "--chain-id",
                "31337",
                "--accounts",
                &ANVIL_DEV_KEYS.len().to_string(),
            ])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", anvil_bin.display()))?;
        let deployer = anvil_signer(0);
        let mut devnet = Devnet {
            anvil,
            rpc_url: rpc_url.clone(),
            chain_id: protocol::DEVNET_CHAIN_ID,
            deployment: placeholder_deployment(),
            deployment_path: work_dir.join("deployment.json"),
            deployer: deployer.clone(),
            workers: (1..=config.workers).map(anvil_signer).collect(),
            validators: (config.workers + 1..=config.workers + config.validators)
                .map(anvil_signer)
                .collect(),
            user: anvil_signer(config.workers + config.validators + 1),
            developer: anvil_signer(config.workers + config.validators + 2),
            prober: config
                .probe
                .then(|| anvil_signer(config.workers + config.validators + 3)),
            model_id: 0,
            work_dir,
            config: config.clone(),
            _tmp: tmp,
        };
        devnet.wait_for_rpc().await?;
        tracing::info!(%rpc_url, "anvil is up");
        devnet.deploy(&root)?;
        devnet.setup_accounts().await?;
        if config.register_digits {
            devnet.model_id = devnet.register_model(&digits::model_path(), None).await?;
        }
        if config.block_time > 0 {
            let p = devnet.provider(&devnet.deployer);
            p.anvil_set_interval_mining(config.block_time).await?;
        }
        Ok(devnet)
    }

    async fn wait_for_rpc(&mut self) -> Result<()> {
        let started = Instant::now();
        let p = ProviderBuilder::new().connect_http(self.rpc_url.parse()?);
        loop {
            if p.get_chain_id().await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.anvil.try_wait()? {
                bail!(
                    "anvil exited with {status}; see {}",
                    self.work_dir.join("anvil.log").display()
                );
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("anvil did not answer on {} within 30s", self.rpc_url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn deploy(&mut self, root: &Path) -> Result<()> {
        // forge writes deployments/<chainId>.json and broadcast/ in the repo: serialize deploys of
        // concurrent devnets (parallel tests) with a file lock, then keep a private copy.
        std::fs::create_dir_all(root.join("deployments"))?;
        let lock = std::fs::File::create(root.join("deployments/.deploy.lock"))?;
        lock.lock().context("locking deployments/.deploy.lock")?;
        // `timeout`: a broadcast that never completes must fail the test run with forge's output,
        // not hang it
        let mut forge = Command::new("timeout");
        forge
            .arg(DEPLOY_TIMEOUT_SECS.to_string())
            .arg(npm_bin("forge"));
        if let Some(len) = self.config.epoch_length {
            forge.env("DN_EPOCH_LENGTH", len.to_string());
        }
        if let Some(jail) = self.config.jail_duration {
            forge.env("DN_JAIL_DURATION", jail.to_string());
        }
        if let Some(dn) = self.config.initial_emission_dn {
            forge.env(
                "DN_INITIAL_EMISSION",
                (U256::from(dn) * U256::from(DN)).to_string(),
            );
        }
        for (var, value) in [
            (
                "DN_AUDIT_P0",
                self.config.audit_p0_wad.map(|v| v.to_string()),
            ),
            (
                "DN_AUDIT_P_MIN",
                self.config.audit_p_min_wad.map(|v| v.to_string()),
            ),
            (
                "DN_DISPUTE_WINDOW",
                self.config.dispute_window.map(|v| v.to_string()),
            ),
            ("DN_QUORUM", self.config.quorum.map(|v| v.to_string())),
            (
                "DN_SENTINEL_PLANTER",
                self.config.sentinel_planter.map(|a| a.to_string()),
            ),
        ] {
            if let Some(v) = value {
                forge.env(var, v);
            }
        }
        // always explicit: the deploy script's default is probe emission on
        match &self.prober {
            Some(prober) => forge
                .env("DN_PROBER", prober.address().to_string())
                .env("DN_PROBE_EMISSION", "true"),
            None => forge.env("DN_PROBE_EMISSION", "false"),
        };
        let out = forge
            .current_dir(root)
            .args([
                "script",
                "script/Deploy.s.sol",
                "--rpc-url",
                &self.rpc_url,
                "--broadcast",
                // one transaction at a time, each after the previous one's receipt: forge's
                // default concurrent broadcast once left all but the first transaction unmined on
                // anvil, with forge polling receipts forever
                "--slow",
                "--private-key",
            ])
            .arg(key_hex(&self.deployer))
            .env(
                "DN_RESPONSE_WINDOW",
                self.config.response_window.to_string(),
            )
            .env(
                "DN_CHALLENGE_WINDOW",
                self.config.challenge_window.to_string(),
            )
            .env("DN_UNBONDING_PERIOD", "3600")
            .env(
                "DN_ACTIVATION_DELAY",
                self.config.activation_delay.to_string(),
            )
            .env("DN_VETO_WINDOW", self.config.veto_window.to_string())
            // the admin timelock without a delay, so tests and the demo can change parameters at once
            // (through schedule + execute all the same); a real chain's deploy refuses under a day
            .env("DN_ADMIN_DELAY", "0")
            .output()
            .context("running forge script script/Deploy.s.sol")?;
        if !out.status.success() {
            bail!(
                "forge script failed ({}; exit status 124 = not done within {DEPLOY_TIMEOUT_SECS} s):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let file = root.join(Deployment::default_path(self.chain_id));
        let deployment = Deployment::load_for_chain(&file, self.chain_id)?;
        std::fs::copy(&file, &self.deployment_path)?;
        drop(lock);
        tracing::info!(task_manager = %deployment.task_manager, "contracts deployed");
        self.deployment = deployment;
        Ok(())
    }

    /// Runs one admin call (`data` to `target`) the only way the deployment allows: scheduled on
    /// the admin timelock by the deployer (its proposer) and executed (the devnet's delay is 0).
    pub async fn admin_call(&self, target: Address, data: Bytes) -> Result<()> {
        use protocol::bindings::timelock::TimelockController;
        let admin = self.provider(&self.deployer);
        let timelock = TimelockController::new(self.deployment.admin_timelock, &admin);
        let delay = timelock.getMinDelay().call().await?;
        if delay != U256::ZERO {
            bail!("admin_call: the timelock's delay is {delay} s, not the devnet's 0");
        }
        // a fresh salt per call: the same call may be made twice
        let salt = B256::from(U256::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos(),
        ));
        let receipt = timelock
            .schedule(
                target,
                U256::ZERO,
                data.clone(),
                B256::ZERO,
                salt,
                U256::ZERO,
            )
            .send()
            .await?
            .get_receipt()
            .await?;
        if !receipt.status() {
            bail!(
                "timelock schedule reverted (tx {})",
                receipt.transaction_hash
            );
        }
        let receipt = timelock
            .execute(target, U256::ZERO, data, B256::ZERO, salt)
            .send()
            .await?
            .get_receipt()
            .await?;
        if !receipt.status() {
            bail!(
                "timelock execute reverted (tx {})",
                receipt.transaction_hash
            );
        }
        Ok(())
    }

    /// A provider that signs with `signer`.
    pub fn provider(&self, signer: &PrivateKeySigner) -> DynProvider {
        protocol::rpc::wallet_builder()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(self.rpc_url.parse().expect("devnet URL is valid"))
            .erased()
    }

    async fn setup_accounts(&self) -> Result<()> {
        let d = &self.deployment;
        let admin = self.provider(&self.deployer);
        let token = DNToken::new(d.token, &admin);
        let dn = |n: u64| U256::from(n) * U256::from(DN);
        // Fund everyone from the deployer.
        let mut funded: Vec<(Address, U256)> = Vec::new();
        for w in &self.workers {
            funded.push((w.address(), dn(self.config.worker_stake_dn + 1_000)));
        }
        for v in &self.validators {
            funded.push((v.address(), dn(self.config.validator_stake_dn + 1_000)));
        }
        funded.push((self.user.address(), dn(100_000)));
        funded.push((self.developer.address(), dn(1_000)));
        if let Some(prober) = &self.prober {
            // the probe tasks' fees (the prober funds each epoch's probe wallet from them)
            funded.push((prober.address(), dn(1_000)));
        }
        for (to, amount) in funded {
            token
                .transfer(to, amount)
                .send()
                .await?
                .get_receipt()
                .await?;
        }
        for (signers, role, stake) in [
            (&self.workers, ROLE_WORKER, dn(self.config.worker_stake_dn)),
            (
                &self.validators,
                ROLE_VALIDATOR,
                dn(self.config.validator_stake_dn),
            ),
        ] {
            for s in signers.iter() {
                let p = self.provider(s);
                DNToken::new(d.token, &p)
                    .approve(d.staking, stake)
                    .send()
                    .await?
                    .get_receipt()
                    .await?;
                let r = IStaking::new(d.staking, &p)
                    .stake(role, stake)
                    .send()
                    .await?
                    .get_receipt()
                    .await?;
                if !r.status() {
                    bail!(
                        "staking for {} reverted (tx {}, gas used {})",
                        s.address(),
                        r.transaction_hash,
                        r.gas_used
                    );
                }
            }
        }
        let user = self.provider(&self.user);
        DNToken::new(d.token, &user)
            .approve(d.task_manager, U256::MAX)
            .send()
            .await?
            .get_receipt()
            .await?;
        tracing::info!(
            workers = self.workers.len(),
            validators = self.validators.len(),
            "accounts funded and staked"
        );
        Ok(())
    }

    /// Registers an ONNX model (by `file://` URI) from the developer account and opts every
    /// worker in. `sha256` overrides the registered hash (to test a mismatching file).
    pub async fn register_model(&self, onnx: &Path, sha256: Option<B256>) -> Result<u32> {
        let hash = match sha256 {
            Some(h) => h,
            None => sha256_file(onnx)?,
        };
        let abs = onnx
            .canonicalize()
            .with_context(|| format!("model file {}", onnx.display()))?;
        let uri = format!("file://{}", abs.display());
        let price = self.config.model_price_wei;
        self.register(
            hash,
            uri,
            price,
            digits::COMPUTE_UNITS,
            digits::COMPARE_RULE,
        )
        .await
    }

    /// Registers the bundle in `dir` (its `manifest.json`, by `file://` URI) at `price_wei` per
    /// call, with the manifest's compute units, and opts every worker in. The on-chain compare
    /// rule is the manifest's `verify.rule` for `tensor` bundles and 0 (exact bytes, unused:
    /// validators judge by the kind's own rule) for every other kind.
    pub async fn register_bundle(&self, dir: &Path, price_wei: U256) -> Result<u32> {
        let (hash, uri) = catalogue::manifest_ref(dir)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
        let units = manifest["compute_units"]
            .as_u64()
            .and_then(|u| u32::try_from(u).ok())
            .context("manifest compute_units")?;
        let rule = if manifest["kind"] == "tensor" {
            manifest["verify"]["rule"].as_u64().unwrap_or(0) as u8
        } else {
            0
        };
        self.register(hash, uri, price_wei, units, rule).await
    }

    async fn register(
        &self,
        hash: B256,
        uri: String,
        price_wei: U256,
        compute_units: u32,
        rule: u8,
    ) -> Result<u32> {
        let d = &self.deployment;
        let dev = self.provider(&self.developer);
        let registry = IModelRegistry::new(d.model_registry, &dev);
        let bond = registry.listingBond().call().await?;
        if bond > U256::ZERO {
            DNToken::new(d.token, &dev)
                .approve(d.model_registry, bond)
                .send()
                .await?
                .get_receipt()
                .await?;
        }
        let price: alloy::primitives::Uint<96, 2> = alloy::primitives::Uint::from(price_wei);
        let receipt = registry
            .registerModel(hash, uri, price, compute_units, rule, 0, 0)
            .send()
            .await?
            .get_receipt()
            .await?;
        let model_id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<IModelRegistry::ModelRegistered>().ok())
            .map(|l| l.inner.data.modelId)
            .context("ModelRegistered event missing from the registration receipt")?;
        // every worker's optIn in flight at once (one key each), then their receipts; a worker
        // that can no longer serve (slashed below the minimum stake) is left out
        let mut pending = Vec::new();
        for w in &self.workers {
            let p = self.provider(w);
            let registry = IModelRegistry::new(d.model_registry, &p);
            let call = registry.optIn(model_id);
            if let Err(e) = call.call().await {
                tracing::warn!(worker = %w.address(), model_id, error = %e, "worker cannot opt in; left out");
                continue;
            }
            // the worker's executor signs with the same key (its commits): a nonce it took first
            // is retried with a fresh one once its transaction is mined
            let mut tries = 0;
            let tx = loop {
                match call.send().await {
                    Ok(tx) => break tx,
                    Err(e) if tries < 20 && nonce_taken(&e.to_string()) => {
                        tries += 1;
                        tracing::debug!(worker = %w.address(), error = %e, "optIn nonce taken by the worker's executor; retrying");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            pending.push((w.address(), tx));
        }
        for (worker, tx) in pending {
            if !tx.get_receipt().await?.status() {
                bail!("optIn of {worker} reverted");
            }
        }
        tracing::info!(model_id, "model registered, workers opted in");
        Ok(model_id)
    }

    /// Submits digit images as tasks from the user account, in batches of `batch` per
    /// transaction; returns the task ids in order.
    pub async fn submit_inputs(
        &self,
        model_id: u32,
        inputs: &[Vec<u8>],
        batch: usize,
    ) -> Result<Vec<U256>> {
        let p = self.provider(&self.user);
        let mut ids = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(batch.max(1)) {
            ids.extend(
                submit_tasks(
                    &p,
                    self.deployment.task_manager,
                    model_id,
                    self.config.model_price_wei,
                    chunk,
                )
                .await?,
            );
        }
        Ok(ids)
    }

    /// Every `E` event `address` emitted since the deployment, decoded, in chain order.
    pub async fn events<E: alloy::sol_types::SolEvent>(&self, address: Address) -> Result<Vec<E>> {
        let logs = self
            .provider(&self.user)
            .get_logs(
                &alloy::rpc::types::Filter::new()
                    .address(address)
                    .event_signature(E::SIGNATURE_HASH)
                    .from_block(self.deployment.start_block),
            )
            .await?;
        Ok(logs
            .iter()
            .filter_map(|l| l.log_decode::<E>().ok())
            .map(|l| l.inner.data)
            .collect())
    }

    /// Waits until each validator in `which` (indices into `validators`) is in the audit draw
    /// (draw weight > 0; its verifier joins at start). Every draw uses the weights frozen at the
    /// block that anchors it (a batch's commit block), so a result committed before a validator
    /// joined is never audited by it: submit only once the validators that should audit it are in.
    pub async fn wait_validators_joined(&self, which: &[usize], timeout: Duration) -> Result<()> {
        let p = self.provider(&self.deployer);
        let am = IAuditManager::new(self.deployment.audit_manager, &p);
        let started = Instant::now();
        loop {
            let mut missing = Vec::new();
            for &i in which {
                let v = self.validators[i].address();
                if am.validatorWeight(v).call().await?.is_zero() {
                    missing.push(v);
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!(
                    "validators {missing:?} not in the audit draw after {}s (did their verifiers start? see their logs in {})",
                    timeout.as_secs(),
                    self.work_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Draws the workers of `ids` now, as the executors would: mines two blocks (the draw uses
    /// the hash of the block after the submission's) and calls `assignTasks` from the deployer.
    /// For tests that play the worker themselves (no executor running).
    pub async fn assign(&self, ids: &[U256]) -> Result<()> {
        let p = self.provider(&self.deployer);
        p.anvil_mine(Some(2), None).await?;
        let tm = ITaskManager::new(self.deployment.task_manager, &p);
        for chunk in ids.chunks(64) {
            let call = tm.assignTasks(chunk.to_vec());
            let estimate = call.estimate_gas().await?;
            let receipt = call
                .gas(estimate * 3 / 2)
                .send()
                .await?
                .get_receipt()
                .await?;
            if !receipt.status() {
                bail!("assignTasks reverted in tx {}", receipt.transaction_hash);
            }
        }
        Ok(())
    }

    /// Moves the chain clock forward and mines a block.
    pub async fn advance_time(&self, secs: u64) -> Result<()> {
        let p = self.provider(&self.deployer);
        p.anvil_increase_time(secs).await?;
        p.anvil_mine(Some(1), None).await?;
        Ok(())
    }
}

fn placeholder_deployment() -> Deployment {
    Deployment {
        chain_id: 0,
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
    }
}

/// Starts the `blobstore` binary at `bin` on a free port with its blobs under `dir` (stderr to
/// `log`) and returns the process and its base URL, once it says it is listening.
pub fn spawn_blobstore(
    bin: &Path,
    dir: &Path,
    log: &Path,
) -> Result<(std::process::Child, String)> {
    use std::io::BufRead;
    let log = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
    let mut child = std::process::Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(log))
        .stdin(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("blobstore stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            if let Some(url) = line.strip_prefix("blobstore: listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(url) => Ok((child, url)),
        Err(_) => {
            let _ = child.kill();
            bail!("blobstore did not report listening within 30 s")
        }
    }
}

/// Whether a node refused a transaction because another one from the same key holds its nonce.
fn nonce_taken(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    [
        "replacement transaction underpriced",
        "nonce too low",
        "already known",
    ]
    .iter()
    .any(|m| e.contains(m))
}

#[cfg(test)]
mod nonce_taken_tests {
    use super::nonce_taken;

    #[test]
    fn a_nonce_held_by_another_transaction_is_told_apart_from_other_errors() {
        assert!(nonce_taken("server returned an error response: error code -32003: replacement transaction underpriced"));
        assert!(nonce_taken("Nonce too low"));
        assert!(!nonce_taken("execution reverted: not staked"));
        assert!(!nonce_taken("connection refused"));
    }
}
