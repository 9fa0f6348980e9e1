//! Command line of the `verifier` binary: foundry's key and RPC flags (shared with the executor)
//! plus the settlement settings. Checked locally before anything touches the network.

use alloy::primitives::Address;
use protocol::rpc::RpcArgs;
use protocol::wallet::KeyArgs;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `verifier`: a DeepNode validator's epoch settlement.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "verifier",
    version,
    about = "DeepNode validator: compute, sign and post each epoch's PoWR report, then refresh trust weights",
    long_about = "Indexes the DeepNode contracts into its own SQLite database (the same code as the \
        indexer, without the REST server). When an epoch has ended and its last block is \
        --confirmations deep, it computes the epoch's PoWR report (rewards and trust Merkle roots) \
        with the protocol's formulas, signs its EIP-712 digest with the validator key and posts it \
        to the Settlement contract once signatures holding >= 2/3 of the validator stake are at hand \
        (its own, plus co-signers' from --signatures-dir). After a report is posted it refreshes \
        every node's sortition trust weight with a Merkle proof. Each epoch prints one JSON line \
        {epoch, report, digest, signer, signature, postedTx} on stdout; logs go to stderr. \
        With --probe-key it also runs the protocol's prober: each epoch, probe tasks from a fresh \
        wallet derived from --probe-seed, revealed (ProbeRegistry.revealProbes) once the epoch \
        has ended."
)]
pub struct Args {
    /// RPC endpoint and deployment file.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// The validator's key (must hold validator stake).
    #[command(flatten)]
    pub key: KeyArgs,
    /// This verifier's own database: an SQLite file (created if missing) [default:
    /// verifier-<address>.sqlite], or a PostgreSQL URL (postgres://user:password@host/db).
    /// A verifier never reads another service's database: it indexes the chain itself.
    #[arg(long, value_name = "FILE|URL", env = "DN_VERIFIER_DB")]
    pub db: Option<String>,
    /// Only blocks at or below head - N are indexed, and an epoch is settled only once a block at
    /// or after its end is that deep.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub confirmations: u64,
    /// Milliseconds between polls of the chain head once caught up.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub poll_interval_ms: u64,
    /// Largest block range of one eth_getLogs request (halved automatically when refused).
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_blocks: u64,
    /// Only sign and print each report (and write the signature to --signatures-dir); never send
    /// a transaction.
    #[arg(long)]
    pub no_post: bool,
    /// Directory shared with co-signing validators: this verifier writes its signature of each
    /// epoch there as `epoch-<N>-<signer>.json` ({epoch, report, digest, signer, signature}) and
    /// reads the others' from there, posting once the signers hold >= 2/3 of the validator stake.
    #[arg(long, value_name = "DIR", env = "DN_SIGNATURES_DIR")]
    pub signatures_dir: Option<PathBuf>,
    /// After a report is posted, set every node's sortition trust weight from its leaf of the
    /// report's trust tree (one refreshTrust transaction per node not yet refreshed).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refresh_trust: bool,
    /// Audit sampled results: seal committed batches, re-execute the tasks this validator is drawn
    /// for, post signed verdicts, and vote in the disputes it is drawn for. `false` only settles
    /// epochs (a validator that is drawn but does not audit is recorded as missing its deadline).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub audit: bool,
    /// Model cache for re-execution: .onnx files verified against their on-chain sha256
    /// [default: $XDG_CACHE_HOME/deepnode/models or ~/.cache/deepnode/models].
    #[arg(long, value_name = "DIR", env = "DN_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// ONNX Runtime shared library [default: ORT_DYLIB_PATH, then the checkout's .deps/onnxruntime/].
    #[arg(long, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads ONNX Runtime may use per model (0 = its default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// How long one fetch of an off-chain payload (a task's input or a worker's published
    /// output) may take. While the blob store is unavailable (refused, timed out, HTTP 5xx/429)
    /// the audit gives no verdict and fetches again on later steps; a worker output still
    /// unavailable in the last quarter of the challenge window (at least its last 60 s) is
    /// judged failed, as is a missing, malformed or hash-mismatched one at once.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub blob_timeout_secs: u64,
    /// Largest off-chain payload fetched (bytes); a larger worker output is judged failed.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_blob_bytes: u64,
    /// Most verdicts per submitVerdicts transaction.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub max_verdicts_per_tx: u64,
    /// Canary wallet key (hex; better via the env var): known-answer tasks are submitted from
    /// this address, which should hold DN for their fees and challenge bonds but no stake, so
    /// workers cannot tell its tasks from users'. Enables canaries with --canary-model and
    /// --canary-inputs.
    #[arg(long, value_name = "HEX", env = "DN_CANARY_PRIVATE_KEY", hide_env_values = true,
          requires_all = ["canary_model", "canary_inputs"])]
    pub canary_key: Option<String>,
    /// Model the canary tasks are for.
    #[arg(long, value_name = "ID", requires = "canary_key")]
    pub canary_model: Option<u32>,
    /// Directory of task inputs for the canaries (*.safetensors for tensor models; *.json, *.txt,
    /// *.png, *.jpg, *.wav for the other kinds), used in name order.
    #[arg(long, value_name = "DIR", requires = "canary_key")]
    pub canary_inputs: Option<PathBuf>,
    /// Seconds between canary tasks.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub canary_interval_secs: u64,
    /// Prober key (hex; better via the env var): runs the protocol's prober in this process,
    /// alongside the settlement (probe emission, see the README's "Economics"). This wallet must
    /// hold ProbeRegistry's PROBER_ROLE (checked at start); it reveals each epoch's probe wallet
    /// once the epoch has ended (so it needs ETH for gas) and, with --probe-funding key, funds the
    /// per-epoch wallets with DN (the tasks' fees) and ETH (their gas). Not the validator's key nor
    /// the canary's. Requires --probe-seed, --probe-model and --probe-inputs. Known limit of
    /// --probe-funding key: the funding transfers link the epoch wallets to this key on-chain
    /// (fine on a devnet; a production prober uses --probe-funding external).
    #[arg(long, value_name = "HEX", env = "DN_PROBE_PRIVATE_KEY", hide_env_values = true,
          requires_all = ["probe_seed", "probe_model", "probe_inputs"])]
    pub probe_key: Option<crate::probe::Secret>,
    /// Secret 32 bytes (64 hex digits; better via the env var) from which the prober derives the
    /// fresh submitter wallet of every epoch: keccak256(seed || chain id || epoch), chain id and
    /// epoch as 8-byte big-endian integers. Keep it secret and keep it the same across restarts:
    /// whoever knows it can tell probe tasks from users' tasks.
    #[arg(
        long,
        value_name = "HEX32",
        env = "DN_PROBE_SEED",
        hide_env_values = true,
        requires = "probe_key"
    )]
    pub probe_seed: Option<crate::probe::Secret>,
    /// Catalogue model to probe (repeat the flag, or a comma-separated list in the env var); each
    /// must exist and not be delisted. Probe tasks go to the models in turn, at each model's
    /// pricePerCall.
    #[arg(
        long,
        value_name = "ID",
        env = "DN_PROBE_MODELS",
        value_delimiter = ',',
        requires = "probe_key"
    )]
    pub probe_model: Vec<u32>,
    /// Directory of task inputs for the probes (*.safetensors for tensor models; *.json, *.txt,
    /// *.png, *.jpg, *.wav for the other kinds), used in turn in name order.
    #[arg(
        long,
        value_name = "DIR",
        env = "DN_PROBE_INPUTS",
        requires = "probe_key"
    )]
    pub probe_inputs: Option<PathBuf>,
    /// Probe tasks per epoch, spread over it: task k of N is submitted once chain time reaches
    /// epoch start + k x epoch length / (N + 1), moved by a secret offset (from --probe-seed) of
    /// less than half that spacing, so probes have no fixed place in the epoch. A task missed
    /// while the prober was down is caught up while its epoch runs.
    #[arg(long, value_name = "N", env = "DN_PROBE_TASKS_PER_EPOCH",
          default_value_t = crate::probe::DEFAULT_TASKS_PER_EPOCH,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub probe_tasks_per_epoch: u32,
    /// ETH (for gas) an epoch wallet is topped up to from the probe key, when it holds less than
    /// half of it.
    #[arg(long, value_name = "ETH", env = "DN_PROBE_GAS_ETH",
          default_value = crate::probe::DEFAULT_GAS_ETH, value_parser = crate::probe::parse_eth)]
    pub probe_gas_eth: alloy::primitives::U256,
    /// Who funds the per-epoch probe wallets. `key`: the prober tops each epoch wallet up from the
    /// probe key (simple; links the wallets to the prober on-chain: fine for devnets and tests).
    /// `external`: the prober never sends funds to an epoch wallet: an operator funds each epoch's
    /// wallet in advance (DN for its probes' fees, ETH for its gas) through a route not linked to
    /// the prober (list them with --probe-print-wallets); a wallet short of DN or ETH when a probe
    /// is due is skipped with a warning naming the wallet, the epoch and the amounts missing, and
    /// retried at the next poll.
    #[arg(long, value_name = "MODE", env = "DN_PROBE_FUNDING", value_enum,
          default_value_t = crate::probe::ProbeFunding::Key, requires = "probe_key")]
    pub probe_funding: crate::probe::ProbeFunding,
    /// Print the probe wallets of N epochs, from the one running at the chain head, and exit
    /// instead of running the verifier: one line `epoch <E> wallet <0xADDR> from <START> to <END>
    /// [needs <DN> DN]` each (unix seconds, chain clock; `needs`: --probe-tasks-per-epoch x the
    /// highest pricePerCall among the --probe-model, when readable), for an operator funding them
    /// with --probe-funding external. Reads the chain only; needs no validator key, and never
    /// prints the seed or a key.
    #[arg(long, value_name = "N", requires_all = ["probe_key", "probe_seed"],
          value_parser = clap::value_parser!(u64).range(1..=crate::probe::MAX_PRINT_WALLETS))]
    pub probe_print_wallets: Option<u64>,
    /// With --probe-print-wallets: print one JSON array of {epoch, wallet, start, end, needs}
    /// instead of lines.
    #[arg(long, requires = "probe_print_wallets")]
    pub json: bool,
    /// TEST-ONLY: `rubber-stamp` approves every audit without re-executing (a lazy validator);
    /// `false-accuse` calls every audited result a mismatch. Both lose stake: for tests and demos.
    #[arg(long, value_enum, default_value_t = crate::audit::AuditMode::Honest, hide = true)]
    pub test_audit_mode: crate::audit::AuditMode,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Exit (status 0) once this epoch has been handled: signed with --no-post, posted (or found
    /// posted) otherwise. For scripts and tests; by default the verifier runs until SIGINT/SIGTERM.
    #[arg(long, value_name = "EPOCH")]
    pub stop_after_epoch: Option<u64>,
    /// Print what this verifier's database says about EPOCH and exit, without following the
    /// chain: one JSON object with the rules' version, the epoch's facts
    /// (`protocol::epoch::EpochFacts`), the state carried in from the epoch before (trust and
    /// model statuses) and the report they give. Two validators whose roots differ diff these
    /// to find the fact they disagree on. The database must already be indexed past the epoch.
    #[arg(long, value_name = "EPOCH", conflicts_with = "stop_after_epoch")]
    pub print_facts: Option<u64>,
    /// More logs (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Errors only.
    #[arg(short, long)]
    pub quiet: bool,
    /// Logs as JSON lines.
    #[arg(long)]
    pub json_logs: bool,
}

impl Args {
    /// Verbosity for `protocol::telemetry::init`.
    pub fn verbosity(&self) -> i8 {
        if self.quiet {
            -1
        } else {
            i8::try_from(self.verbose).unwrap_or(i8::MAX)
        }
    }

    /// `--models-dir`, or `$XDG_CACHE_HOME/deepnode/models`, or `~/.cache/deepnode/models`.
    pub fn models_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.models_dir {
            return Ok(d.clone());
        }
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return Ok(PathBuf::from(x).join("deepnode/models"));
        }
        match std::env::var_os("HOME").filter(|x| !x.is_empty()) {
            Some(h) => Ok(PathBuf::from(h).join(".cache/deepnode/models")),
            None => {
                anyhow::bail!("--models-dir: not given and neither XDG_CACHE_HOME nor HOME is set")
            }
        }
    }

    /// The canary inputs: every task input file of --canary-inputs, in name order
    /// (`protocol::task_inputs`).
    pub fn canary_inputs(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        let Some(dir) = &self.canary_inputs else {
            return Ok(Vec::new());
        };
        protocol::task_inputs::read_dir(dir, "--canary-inputs").map_err(anyhow::Error::msg)
    }

    /// The prober's settings (None without --probe-key), checked locally: the key and the seed
    /// parse (errors never repeat them), the inputs directory holds task inputs.
    pub fn probe_config(&self) -> anyhow::Result<Option<crate::probe::ProbeConfig>> {
        let Some(key) = &self.probe_key else {
            return Ok(None);
        };
        let key: alloy::signers::local::PrivateKeySigner =
            key.expose().trim().parse().map_err(|_| {
                anyhow::anyhow!("--probe-key / DN_PROBE_PRIVATE_KEY: not a 32-byte hex private key")
            })?;
        let seed = self.parsed_probe_seed()?;
        if self.probe_model.is_empty() {
            anyhow::bail!(
                "--probe-model: required with --probe-key (the catalogue models to probe)"
            );
        }
        let dir = self
            .probe_inputs
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("--probe-inputs: required with --probe-key"))?;
        let inputs =
            protocol::task_inputs::read_dir(dir, "--probe-inputs").map_err(anyhow::Error::msg)?;
        Ok(Some(crate::probe::ProbeConfig {
            key,
            seed,
            models: self.probe_model.clone(),
            inputs,
            tasks_per_epoch: self.probe_tasks_per_epoch,
            gas_wei: self.probe_gas_eth,
            funding: self.probe_funding,
            poll: std::time::Duration::from_millis(self.poll_interval_ms),
        }))
    }

    /// `--probe-seed`, parsed (the error never repeats it).
    pub fn parsed_probe_seed(&self) -> anyhow::Result<crate::probe::ProbeSeed> {
        let seed = self.probe_seed.as_ref().ok_or_else(|| {
            anyhow::anyhow!("--probe-seed / DN_PROBE_SEED: required with --probe-key")
        })?;
        crate::probe::ProbeSeed::parse(seed.expose()).map_err(anyhow::Error::msg)
    }

    /// `--db`, or `verifier-<address>.sqlite` in the working directory.
    pub fn db_spec(&self, me: Address) -> String {
        self.db
            .clone()
            .unwrap_or_else(|| format!("verifier-{}.sqlite", me.to_string().to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_refresh_trust_switch() {
        let a = Args::try_parse_from(["verifier"]).unwrap();
        assert!(a.refresh_trust && !a.no_post);
        assert_eq!(a.confirmations, 2);
        let me: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap();
        assert_eq!(
            a.db_spec(me),
            "verifier-0x70997970c51812dc3a010c7d01b50e0d17dc79c8.sqlite"
        );
        let a = Args::try_parse_from(["verifier", "--refresh-trust", "false"]).unwrap();
        assert!(!a.refresh_trust);
        let a = Args::try_parse_from(["verifier", "--refresh-trust"]).unwrap();
        assert!(a.refresh_trust);
        assert!(Args::try_parse_from(["verifier", "--poll-interval-ms", "0"]).is_err());
    }

    #[test]
    fn probe_flags_come_together_and_are_checked_locally() {
        // a key alone, or a seed without a key, is refused by clap
        let e = Args::try_parse_from(["verifier", "--probe-key", "0x01"]).unwrap_err();
        assert!(e.to_string().contains("--probe-seed"), "{e}");
        assert!(Args::try_parse_from(["verifier", "--probe-model", "1"]).is_err());
        let a = Args::try_parse_from(["verifier"]).unwrap();
        assert!(a.probe_config().unwrap().is_none());
        assert_eq!(a.probe_tasks_per_epoch, 4);
        assert_eq!(
            a.probe_gas_eth,
            alloy::primitives::U256::from(50_000_000_000_000_000u64)
        );
        let dir = tempfile::tempdir().unwrap();
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        let seed = "11".repeat(32);
        let parse = |key: &str, seed: &str| {
            Args::try_parse_from([
                "verifier",
                "--probe-key",
                key,
                "--probe-seed",
                seed,
                "--probe-model",
                "1",
                "--probe-model",
                "2",
                "--probe-inputs",
                dir.path().to_str().unwrap(),
                "--probe-tasks-per-epoch",
                "3",
            ])
            .unwrap()
        };
        let e = parse(key, &seed).probe_config().unwrap_err().to_string();
        assert!(
            e.contains("--probe-inputs") && e.contains("no task inputs"),
            "{e}"
        );
        std::fs::write(dir.path().join("a.safetensors"), b"first").unwrap();
        let c = parse(key, &seed).probe_config().unwrap().unwrap();
        assert_eq!(c.models, vec![1, 2]);
        assert_eq!(c.inputs, vec![b"first".to_vec()]);
        assert_eq!(c.tasks_per_epoch, 3);
        let e = parse(key, "0x1234").probe_config().unwrap_err().to_string();
        assert!(e.contains("--probe-seed"), "{e}");
        let e = parse("0xnot-a-key", &seed)
            .probe_config()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--probe-key") && !e.contains("not-a-key"), "{e}");
        // secrets never show in Debug
        let dbg = format!("{:?}", parse(key, &seed));
        assert!(!dbg.contains(&seed) && !dbg.contains(&key[2..]), "{dbg}");
        assert!(Args::try_parse_from([
            "verifier",
            "--probe-key",
            key,
            "--probe-seed",
            &seed,
            "--probe-model",
            "1",
            "--probe-inputs",
            "/x",
            "--probe-gas-eth",
            "lots",
        ])
        .is_err());
    }

    #[test]
    fn probe_funding_and_print_wallets_flags_are_checked_by_clap() {
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        let seed = "11".repeat(32);
        let with = |extra: &[&str]| {
            let mut v = vec![
                "verifier",
                "--probe-key",
                key,
                "--probe-seed",
                &seed,
                "--probe-model",
                "1",
                "--probe-inputs",
                "/x",
            ];
            v.extend_from_slice(extra);
            Args::try_parse_from(v)
        };
        let a = with(&[]).unwrap();
        assert_eq!(a.probe_funding, crate::probe::ProbeFunding::Key);
        assert_eq!(a.probe_print_wallets, None);
        let a = with(&["--probe-funding", "external"]).unwrap();
        assert_eq!(a.probe_funding, crate::probe::ProbeFunding::External);
        let e = with(&["--probe-funding", "bogus"]).unwrap_err().to_string();
        assert!(
            e.contains("bogus")
                && e.contains("--probe-funding")
                && e.contains("possible values")
                && e.contains("key")
                && e.contains("external"),
            "{e}"
        );
        // needs the prober's flags
        assert!(Args::try_parse_from(["verifier", "--probe-funding", "external"]).is_err());
        let a = with(&["--probe-print-wallets", "3", "--json"]).unwrap();
        assert_eq!(a.probe_print_wallets, Some(3));
        assert!(a.json);
        assert!(with(&["--probe-print-wallets", "1000"]).is_ok());
        for bad in ["0", "1001", "many"] {
            let e = with(&["--probe-print-wallets", bad])
                .unwrap_err()
                .to_string();
            assert!(e.contains("--probe-print-wallets"), "{bad}: {e}");
        }
        assert!(Args::try_parse_from(["verifier", "--probe-print-wallets", "3"]).is_err());
        assert!(
            with(&["--json"]).is_err(),
            "--json only with --probe-print-wallets"
        );
    }

    #[test]
    fn canary_flags_come_together_and_inputs_are_checked() {
        // a key alone, or model/inputs without a key, is refused by clap
        let e = Args::try_parse_from(["verifier", "--canary-key", "0x01"]).unwrap_err();
        assert!(e.to_string().contains("--canary-model"), "{e}");
        assert!(Args::try_parse_from(["verifier", "--canary-model", "1"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let a = Args::try_parse_from([
            "verifier",
            "--canary-key",
            "0x01",
            "--canary-model",
            "1",
            "--canary-inputs",
            dir.path().to_str().unwrap(),
        ])
        .unwrap();
        let e = a.canary_inputs().unwrap_err().to_string();
        assert!(e.contains("no task inputs (*.safetensors, *.json"), "{e}");
        std::fs::write(dir.path().join("b.safetensors"), b"second").unwrap();
        std::fs::write(dir.path().join("a.safetensors"), b"first").unwrap();
        std::fs::write(dir.path().join("c.wav"), b"third").unwrap();
        std::fs::write(dir.path().join("notes.md"), b"ignored").unwrap();
        assert_eq!(
            a.canary_inputs().unwrap(),
            vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
        );
        let missing = Args::try_parse_from([
            "verifier",
            "--canary-key",
            "0x01",
            "--canary-model",
            "1",
            "--canary-inputs",
            "/nonexistent/canaries",
        ])
        .unwrap();
        let e = missing.canary_inputs().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/canaries"), "{e}");
    }
}
