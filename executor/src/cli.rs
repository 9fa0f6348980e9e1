//! Command-line flags of the worker node (foundry's names for the wallet and RPC flags) and the
//! defaults that depend on the environment (model cache and journal locations).

use alloy::primitives::Address;
use clap::{Parser, ValueEnum};
use protocol::rpc::RpcArgs;
use protocol::wallet::KeyArgs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// DeepNode worker node: runs the ONNX models of the tasks assigned to this wallet and commits
/// the results on-chain in batches, then finalizes them and withdraws the earned fees.
#[derive(Debug, Parser)]
#[command(name = "executor", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub rpc: RpcArgs,

    #[command(flatten)]
    pub key: KeyArgs,

    /// Model cache: downloaded .onnx files, verified against the sha256 registered on-chain
    /// [default: $XDG_CACHE_HOME/deepnode/models or ~/.cache/deepnode/models].
    #[arg(long, value_name = "DIR", env = "DN_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Where models run: `auto` uses CUDA when available and falls back to the CPU.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,

    /// ONNX Runtime shared library (libonnxruntime.so.1.31.1) [default: ORT_DYLIB_PATH, then
    /// .deps/onnxruntime/ of the source checkout, where `make setup` installs it].
    #[arg(long, value_name = "FILE", env = "ORT_DYLIB_PATH")]
    pub ort_lib: Option<PathBuf>,

    /// Intra-op threads ONNX Runtime may use per model (0 = ONNX Runtime's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Crash-safety journal (JSON lines) [default: journal-<chainId>-<address>.jsonl next to the
    /// models directory].
    #[arg(long, value_name = "FILE", env = "DN_JOURNAL")]
    pub journal: Option<PathBuf>,

    /// Most tasks per commitBatch transaction (also capped by the contract's maxBatch).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch_size: u32,

    /// How long to keep gathering new assignments into a batch before running it (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub batch_wait_ms: u64,

    /// How often to look for new assignments (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub poll_interval_ms: u64,

    /// Largest task input this worker runs (bytes), inline or fetched from a blob reference;
    /// larger inputs are committed as input_too_large without being decoded (on-chain inline
    /// inputs are capped by the TaskManager at 64 KiB anyway).
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20)]
    pub max_input_bytes: usize,

    /// Blob store for off-chain payloads (the `blobstore` service's base URL, e.g.
    /// http://127.0.0.1:8700): outputs over --inline-output-bytes are published there and
    /// committed by reference [default: every output inline].
    #[arg(long, value_name = "URL", env = "DN_BLOB_STORE")]
    pub blob_store: Option<String>,

    /// Outputs up to this size are committed inline; larger ones go to --blob-store.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub inline_output_bytes: usize,

    /// How long fetching one referenced input (or publishing an output) may take, retries
    /// included: while the blob store is unavailable (refused, timed out, HTTP 5xx/429) the fetch
    /// is retried with backoff; an input not fetched in time, or missing, too large or not
    /// matching its hash, is committed as input_unavailable (the user is refunded). A batch's
    /// inputs are fetched concurrently, so a batch waits at most this long.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub blob_timeout_secs: u64,

    /// Most models kept loaded at once; loading one more unloads the least recently used
    /// (bounds memory when serving a large catalogue).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_loaded_models: u32,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9101) [default: off].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Do not finalize own tasks after the challenge window nor withdraw payouts.
    #[arg(long)]
    pub no_finalize: bool,

    /// How often to finalize own tasks whose challenge window has passed and withdraw the
    /// payout (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub finalize_interval_secs: u64,

    /// Do not stream text-generation tokens to the gateway named in a task's `stream_to` field
    /// (the answer then reaches the caller when it is committed).
    #[arg(long)]
    pub no_stream_tokens: bool,

    /// Stream tokens only to these origins (scheme://host[:port], repeatable), e.g.
    /// https://gateway.example.org [default: any http(s) URL a task names]. A task's submitter
    /// chooses `stream_to`, so an operator with private services on its network should list the
    /// gateways it serves here.
    #[arg(long = "stream-allow", value_name = "ORIGIN", num_args = 1.., value_parser = crate::stream::parse_origin)]
    pub stream_allow: Vec<String>,

    /// Opt in to these models at start (ModelRegistry.optIn) unless already opted in.
    #[arg(long = "opt-in", value_name = "MODEL_ID", num_args = 1..)]
    pub opt_in: Vec<u32>,

    /// Sentinel mode: the planter wallet's key (hex; better via the env var). The planter holds
    /// AuditManager's PLANTER_ROLE (Deploy.s.sol grants it to DN_SENTINEL_PLANTER) and ETH for
    /// gas. With --sentinel-submitter-key's wallet submitting a task of --sentinel-model every
    /// --sentinel-interval-secs, this executor commits a wrong result on --sentinel-rate of those
    /// drawn to itself, after the planter planted the true answer's commitment, and reveals it
    /// once the verdict is on-chain: a validator that approved it without re-executing is slashed
    /// as lazy.
    #[arg(long, value_name = "HEX", env = "DN_SENTINEL_PRIVATE_KEY", hide_env_values = true,
          requires_all = ["sentinel_submitter_key", "sentinel_model", "sentinel_inputs"])]
    pub sentinel_key: Option<String>,

    /// Sentinel mode: the key of the wallet that submits the sentinel's tasks (hex; better via the
    /// env var): DN for their fees, ETH for gas, no stake, and no visible link to the planter or
    /// to this worker, so validators cannot tell its tasks from users'.
    #[arg(
        long,
        value_name = "HEX",
        env = "DN_SENTINEL_SUBMITTER_KEY",
        hide_env_values = true,
        requires = "sentinel_key"
    )]
    pub sentinel_submitter_key: Option<String>,

    /// Model of the sentinel's tasks (this worker must serve it, e.g. with --opt-in).
    #[arg(long, value_name = "ID", requires = "sentinel_key")]
    pub sentinel_model: Option<u32>,

    /// Directory of inputs for the sentinel's tasks (*.safetensors for tensor models; *.json,
    /// *.txt, *.png, *.jpg, *.wav for the other kinds), used in name order.
    #[arg(long, value_name = "DIR", requires = "sentinel_key")]
    pub sentinel_inputs: Option<PathBuf>,

    /// Seconds between the sentinel's tasks.
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub sentinel_interval_secs: u64,

    /// Share of the sentinel's tasks drawn to this worker that become forced errors (0 to 1).
    #[arg(long, value_name = "FRACTION", default_value_t = crate::sentinel::DEFAULT_SENTINEL_RATE,
          value_parser = crate::sentinel::parse_rate)]
    pub sentinel_rate: f64,

    /// TEST-ONLY, hidden from --help: commit wrong results on about this fraction of tasks (0 to
    /// 1; 0 = honest), to show that validators catch cheaters. A task is cheated iff
    /// `uint256(keccak256(abi.encode(uint256 taskId, bytes32 salt))) % 1e18 < rate * 1e18`
    /// (salt = `bytes32(uint256(--test-cheat-seed))`); a cheated task skips inference and commits,
    /// with code 0, the model's output tensors filled with pseudo-random values.
    #[arg(
        long,
        value_name = "FRACTION",
        default_value_t = 0.0,
        value_parser = crate::cheat::parse_cheat_rate,
        allow_negative_numbers = true,
        hide = true
    )]
    pub test_cheat_rate: f64,

    /// TEST-ONLY, hidden from --help: the seed of `--test-cheat-rate`'s task selection and fake
    /// outputs.
    #[arg(long, value_name = "SEED", default_value_t = 0, hide = true)]
    pub test_cheat_seed: u64,

    /// TEST-ONLY, hidden from --help: cheated tasks commit failure code 1 (`input_decode`) without
    /// running the model (a lazy worker, finding M-4) instead of a counterfeit output.
    #[arg(long, hide = true)]
    pub test_cheat_fail: bool,

    /// TEST-ONLY, hidden from --help: stream upper-cased tokens to the gateway while committing
    /// the honest answer (a worker whose stream is not its commitment).
    #[arg(long, hide = true)]
    pub test_cheat_stream: bool,

    /// TEST-ONLY, hidden from --help: append each cheated task id (decimal, one per line) to this
    /// file once its result is journaled [default: not written].
    #[arg(long, value_name = "PATH", hide = true)]
    pub test_cheat_log: Option<PathBuf>,

    /// More logs (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Logs as JSON lines.
    #[arg(long)]
    pub json_logs: bool,
}

/// `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CUDA when available, else CPU.
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA only (fails if unavailable).
    Cuda,
}

impl From<DeviceArg> for inference::Device {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Auto => inference::Device::Auto,
            DeviceArg::Cpu => inference::Device::Cpu,
            DeviceArg::Cuda => inference::Device::Cuda,
        }
    }
}

impl Cli {
    /// Log verbosity for `protocol::telemetry::init`.
    pub fn verbosity(&self) -> i8 {
        if self.quiet {
            -1
        } else {
            self.verbose.min(2) as i8
        }
    }

    /// The model cache directory (flag or the XDG default).
    pub fn models_dir(&self) -> Result<PathBuf, String> {
        if let Some(d) = &self.models_dir {
            return Ok(d.clone());
        }
        default_models_dir(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
    }

    /// The journal file (flag, or derived from the models directory, chain and address).
    pub fn journal_path(&self, models_dir: &Path, chain_id: u64, worker: Address) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| default_journal(models_dir, chain_id, worker))
    }
}

/// `$XDG_CACHE_HOME/deepnode/models`, else `$HOME/.cache/deepnode/models`.
pub fn default_models_dir(
    xdg_cache: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf, String> {
    if let Some(x) = xdg_cache.filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("deepnode/models"));
    }
    if let Some(h) = home.filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h).join(".cache/deepnode/models"));
    }
    Err("--models-dir: neither XDG_CACHE_HOME nor HOME is set; pass --models-dir".into())
}

/// `<models_dir>/../journal-<chainId>-<address>.jsonl`: one journal per wallet and chain, so two
/// workers (or one worker on two chains) never share one.
pub fn default_journal(models_dir: &Path, chain_id: u64, worker: Address) -> PathBuf {
    let dir = models_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(models_dir);
    dir.join(format!("journal-{chain_id}-{worker:#x}.jsonl"))
}

/// Creates the models directory or fails naming it.
pub fn ensure_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--models-dir {}: cannot create it: {e}", dir.display()))?;
    // A directory we cannot write into fails at the first download otherwise.
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| format!("--models-dir {}: not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent_and_documents_every_flag() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--rpc-url",
            "--private-key",
            "--keystore",
            "--password-file",
            "--deployment",
            "--models-dir",
            "--device",
            "--journal",
            "--batch-size",
            "--batch-wait-ms",
            "--poll-interval-ms",
            "--max-input-bytes",
            "--blob-store",
            "--inline-output-bytes",
            "--blob-timeout-secs",
            "--max-loaded-models",
            "--metrics-listen",
            "--no-finalize",
            "--opt-in",
            "--json-logs",
            "--sentinel-key",
            "--sentinel-submitter-key",
            "--sentinel-model",
            "--sentinel-inputs",
            "--sentinel-interval-secs",
            "--sentinel-rate",
        ] {
            assert!(help.contains(flag), "--help lacks {flag}");
        }
    }

    /// Sentinel mode needs its planter, its submitter, a model and inputs together; the rate is a
    /// fraction and the default interval 600 s.
    #[test]
    fn sentinel_flags_come_together() {
        let base = ["executor", "--private-key", "0x01"];
        let parse = |extra: &[&str]| {
            let mut a: Vec<&str> = base.to_vec();
            a.extend_from_slice(extra);
            Cli::try_parse_from(a)
        };
        let e = parse(&["--sentinel-key", "0x02"]).unwrap_err().to_string();
        assert!(e.contains("--sentinel-submitter-key"), "{e}");
        assert!(parse(&["--sentinel-model", "1"]).is_err());
        let full = [
            "--sentinel-key",
            "0x02",
            "--sentinel-submitter-key",
            "0x03",
            "--sentinel-model",
            "1",
            "--sentinel-inputs",
            "/tmp",
        ];
        let cli = parse(&full).unwrap();
        assert_eq!(cli.sentinel_interval_secs, 600);
        assert_eq!(cli.sentinel_rate, crate::sentinel::DEFAULT_SENTINEL_RATE);
        let mut bad = full.to_vec();
        bad.extend_from_slice(&["--sentinel-rate", "2"]);
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("fraction in [0, 1]"), "{e}");
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["executor", "--private-key", "0x01"]).unwrap();
        assert_eq!(cli.batch_size, 32);
        assert_eq!(cli.batch_wait_ms, 500);
        assert_eq!(cli.poll_interval_ms, 1000);
        assert_eq!(cli.max_input_bytes, 32 << 20);
        assert_eq!(cli.inline_output_bytes, 1024);
        assert!(cli.blob_store.is_none());
        assert_eq!(cli.device, DeviceArg::Auto);
        assert!(cli.metrics_listen.is_none());
        assert!(!cli.no_finalize);
        assert_eq!(cli.verbosity(), 0);
        assert_eq!(cli.test_cheat_rate, 0.0);
        assert_eq!(cli.test_cheat_seed, 0);
        assert!(cli.test_cheat_log.is_none());
    }

    #[test]
    fn test_cheat_flags_are_hidden_parsed_and_range_checked() {
        let help = Cli::command().render_long_help().to_string();
        assert!(!help.contains("--test-cheat"), "{help}");
        let cli = Cli::try_parse_from([
            "executor",
            "--test-cheat-rate",
            "0.25",
            "--test-cheat-seed",
            "7",
            "--test-cheat-log",
            "/tmp/x/cheats.txt",
        ])
        .unwrap();
        assert_eq!(cli.test_cheat_rate, 0.25);
        assert_eq!(cli.test_cheat_seed, 7);
        assert_eq!(
            cli.test_cheat_log.as_deref(),
            Some(Path::new("/tmp/x/cheats.txt"))
        );
        for bad in ["1.5", "-0.1", "NaN", "nan", "inf", "x"] {
            let e = Cli::try_parse_from(["executor", "--test-cheat-rate", bad])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("--test-cheat-rate") && e.contains("[0, 1]"),
                "{bad}: {e}"
            );
        }
        assert!(Cli::try_parse_from(["executor", "--test-cheat-seed", "-1"]).is_err());
    }

    #[test]
    fn parses_flags() {
        let cli = Cli::try_parse_from([
            "executor",
            "--device",
            "cpu",
            "--batch-size",
            "8",
            "--metrics-listen",
            "127.0.0.1:9101",
            "--opt-in",
            "1",
            "2",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.device, DeviceArg::Cpu);
        assert_eq!(cli.batch_size, 8);
        assert_eq!(cli.opt_in, vec![1, 2]);
        assert_eq!(cli.metrics_listen.unwrap().port(), 9101);
        assert_eq!(cli.verbosity(), 2);
        assert!(Cli::try_parse_from(["executor", "--batch-size", "0"]).is_err());
        assert!(Cli::try_parse_from(["executor", "--device", "tpu"]).is_err());
        assert_eq!(
            Cli::try_parse_from(["executor", "-q"]).unwrap().verbosity(),
            -1
        );
    }

    #[test]
    fn default_dirs() {
        let d = default_models_dir(Some("/x/cache".into()), Some("/home/u".into())).unwrap();
        assert_eq!(d, PathBuf::from("/x/cache/deepnode/models"));
        let d = default_models_dir(None, Some("/home/u".into())).unwrap();
        assert_eq!(d, PathBuf::from("/home/u/.cache/deepnode/models"));
        assert!(default_models_dir(None, None)
            .unwrap_err()
            .contains("--models-dir"));
        let a: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap();
        let j = default_journal(Path::new("/home/u/.cache/deepnode/models"), 31337, a);
        assert_eq!(
            j,
            PathBuf::from("/home/u/.cache/deepnode/journal-31337-0x70997970c51812dc3a010c7d01b50e0d17dc79c8.jsonl")
        );
    }

    #[test]
    fn uncreatable_models_dir_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = ensure_dir(&file.join("models")).unwrap_err();
        assert!(
            e.contains("--models-dir") && e.contains("file/models"),
            "{e}"
        );
        ensure_dir(&dir.path().join("a/b")).unwrap();
    }
}
