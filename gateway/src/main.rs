//! `gateway`: serves DeepNode through OpenAI's HTTP API, paying per call from its wallet.

use anyhow::{Context, Result};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// OpenAI-compatible gateway to DeepNode. Apps and agents call it with any OpenAI client
/// (`base_url = http://HOST:PORT/v1`); it submits each call as a paid task from its wallet,
/// waits for the worker's committed answer and returns it with its on-chain task id.
/// `gateway keys ...` manages the API keys of `--keys-db`.
#[derive(Debug, Parser)]
#[command(name = "gateway", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Create, list or revoke API keys (each with a budget and a per-minute limit).
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Debug, clap::Subcommand)]
enum KeysCmd {
    /// Creates a key and prints it (once: the database keeps only its sha256).
    Create {
        /// The keys database (created if missing).
        #[arg(long, value_name = "FILE", env = "DN_GATEWAY_KEYS_DB")]
        db: PathBuf,
        /// A label for the key (unique).
        #[arg(long)]
        name: String,
        /// Most the key may spend, in DN (decimals allowed).
        #[arg(long, value_name = "DN")]
        budget: String,
        /// Requests per minute (0: no limit).
        #[arg(long, value_name = "N", default_value_t = 60)]
        rate_per_minute: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists the keys with their budget and spending (never the keys themselves).
    List {
        /// The keys database.
        #[arg(long, value_name = "FILE", env = "DN_GATEWAY_KEYS_DB")]
        db: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revokes the key with this name.
    Revoke {
        /// The keys database.
        #[arg(long, value_name = "FILE", env = "DN_GATEWAY_KEYS_DB")]
        db: PathBuf,
        /// The key's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, clap::Args)]
struct Serve {
    /// Require an API key (`Authorization: Bearer <key>`) on every /v1 request and charge each
    /// call to it, from this database (`gateway keys create` makes keys). Without it anyone who
    /// reaches the gateway spends its wallet.
    #[arg(long, value_name = "FILE", env = "DN_GATEWAY_KEYS_DB")]
    keys_db: Option<PathBuf>,
    #[command(flatten)]
    rpc: protocol::rpc::RpcArgs,
    #[command(flatten)]
    key: protocol::wallet::KeyArgs,
    /// Address to serve the API on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Directory caching model manifests (only manifests are fetched, never weights).
    #[arg(long, value_name = "DIR", default_value = ".gateway-cache")]
    cache_dir: PathBuf,
    /// Seconds a call waits for its answer before answering 504 (the task stays on-chain and is
    /// refunded if its worker misses its deadline).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    task_timeout_secs: u64,
    /// Milliseconds a call waits for concurrent calls to the same model, so they are paid in
    /// one `submitTasks` transaction (calls arriving while one is in flight join the next).
    #[arg(long, value_name = "MS", default_value_t = 25)]
    batch_window_ms: u64,
    /// Blob store (a `blobstore` service URL) for inputs over 32 KiB, such as audio and images;
    /// without it such inputs are refused with 422.
    #[arg(long, value_name = "URL", env = "DN_BLOB_STORE")]
    blob_store: Option<String>,
    /// The indexer's REST API (e.g. http://127.0.0.1:8080): aliases such as deepnode/auto-chat
    /// route by its measured model quality (without it: price and latency only).
    #[arg(long, value_name = "URL", env = "DN_INDEXER_URL")]
    indexer_url: Option<String>,
    /// Routing: weight of measured quality.
    #[arg(long, value_name = "W", default_value_t = 0.6)]
    route_quality: f64,
    /// Routing: weight of price (cheapest = 1).
    #[arg(long, value_name = "W", default_value_t = 0.2)]
    route_price: f64,
    /// Routing: weight of latency measured here (fastest = 1).
    #[arg(long, value_name = "W", default_value_t = 0.2)]
    route_latency: f64,
    /// Routing: share of calls sent to a uniformly drawn model (exploration).
    #[arg(long, value_name = "SHARE", default_value_t = 0.1)]
    route_explore: f64,
    /// Routing: seed the exploration draws, so that a sequence of routed calls is reproducible
    /// (experiments, tests) [default: fresh randomness].
    #[arg(long, value_name = "N")]
    route_seed: Option<u64>,
    /// Routing: score multiplier of a model in Probation.
    #[arg(long, value_name = "F", default_value_t = 0.5)]
    route_probation: f64,
    /// The URL workers reach this gateway at, to stream chat tokens while they generate
    /// (`stream: true` calls name `<URL>/streams/<nonce>` in their task) [default: http://
    /// and the --listen address, 127.0.0.1 for an unspecified one].
    #[arg(long, value_name = "URL", env = "DN_GATEWAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Do not ask workers to stream tokens: a streaming call gets its text once it is committed.
    #[arg(long)]
    no_worker_streams: bool,
    /// Do not challenge a task whose worker streamed tokens that are not its committed answer
    /// (the caller is told either way; a challenge costs the bond when the commit is right).
    #[arg(long)]
    no_challenge_stream_mismatch: bool,
    /// With --keys-db: how often to credit on-chain refunds (failed, missed or fraudulent tasks)
    /// back to the keys that paid for them, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    refund_poll_secs: u64,
    /// Seconds allowed to fetch a worker's off-chain output from its blob store.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    blob_timeout_secs: u64,
    /// More logs (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Logs as JSON lines.
    #[arg(long)]
    json_logs: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    protocol::telemetry::init(cli.serve.verbose.min(2) as i8, cli.serve.json_logs);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.cmd {
        Some(Cmd::Keys(k)) => runtime.block_on(keys(k)),
        None => runtime.block_on(run(cli.serve)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn keys(cmd: KeysCmd) -> Result<()> {
    use gateway::keys::Keys;
    match cmd {
        KeysCmd::Create {
            db,
            name,
            budget,
            rate_per_minute,
            json,
        } => {
            let wei = alloy::primitives::utils::parse_ether(budget.trim())
                .map_err(|e| anyhow::anyhow!("--budget {budget:?} is not an amount of DN: {e}"))?;
            let key = Keys::open(&db)
                .await?
                .create(&name, wei, rate_per_minute)
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"name": name, "key": key, "budget_wei": wei.to_string(), "rate_per_minute": rate_per_minute})
                );
            } else {
                println!("{key}");
                eprintln!("key `{name}`: budget {budget} DN, {rate_per_minute} requests/minute; shown once, keep it");
            }
        }
        KeysCmd::List { db, json } => {
            let keys = Keys::open(&db).await?.list().await?;
            if json {
                println!("{}", serde_json::to_string(&keys)?);
            } else {
                println!(
                    "{:<20} {:>26} {:>26} {:>6} revoked",
                    "name", "budget (wei)", "spent (wei)", "rpm"
                );
                for k in keys {
                    println!(
                        "{:<20} {:>26} {:>26} {:>6} {}",
                        k.name, k.budget_wei, k.spent_wei, k.rate_per_minute, k.revoked
                    );
                }
            }
        }
        KeysCmd::Revoke { db, name } => {
            if !Keys::open(&db).await?.revoke(&name).await? {
                anyhow::bail!("no key named `{name}` in {}", db.display());
            }
            eprintln!("key `{name}` revoked");
        }
    }
    Ok(())
}

async fn run(cli: Serve) -> Result<()> {
    for (flag, v, max) in [
        ("--route-quality", cli.route_quality, f64::MAX),
        ("--route-price", cli.route_price, f64::MAX),
        ("--route-latency", cli.route_latency, f64::MAX),
        ("--route-explore", cli.route_explore, 1.0),
        ("--route-probation", cli.route_probation, 1.0),
    ] {
        if !(0.0..=max).contains(&v) {
            anyhow::bail!("{flag} {v}: must be between 0 and {max}");
        }
    }
    let signer = cli.key.signer()?;
    let me = signer.address();
    let cache = inference::ModelCache::new(&cli.cache_dir)
        .with_context(|| format!("--cache-dir {}", cli.cache_dir.display()))?;
    let blobs = blobstore::Client::new(Duration::from_secs(cli.blob_timeout_secs.max(1)), 64 << 20)
        .context("blob client")?;
    let (provider, chain_id) = cli.rpc.connect_with_wallet(signer.clone()).await?;
    protocol::wallet::refuse_dev_key_off_devnet(&signer, chain_id)?;
    let deployment = cli.rpc.load_deployment(chain_id)?;
    let chain = gateway::chain::Chain::new(
        provider.clone(),
        deployment.clone(),
        me,
        blobs,
        Duration::from_millis(cli.batch_window_ms),
    )
    .with_blob_store(cli.blob_store.clone())
    .with_chain_id(chain_id);
    chain
        .ensure_allowance()
        .await
        .context("approving the TaskManager to take fees from the gateway's wallet")?;
    let catalogue = gateway::models::Catalogue::new(provider, deployment.model_registry, cache);
    let keys = match &cli.keys_db {
        Some(path) => Some(gateway::keys::Keys::open(path).await?),
        None => None,
    };
    if keys.is_none() {
        tracing::warn!("no --keys-db: every caller that reaches this gateway spends its wallet");
    }
    let mut state = gateway::AppState::new(
        chain,
        catalogue,
        Duration::from_secs(cli.task_timeout_secs.max(1)),
    );
    state.keys = keys;
    state.indexer = cli.indexer_url.clone();
    state.routing = gateway::routing::Weights {
        quality: cli.route_quality,
        price: cli.route_price,
        latency: cli.route_latency,
        explore: cli.route_explore,
        probation: cli.route_probation,
    };
    if let Some(u) = &cli.public_url {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            anyhow::bail!("--public-url {u:?}: must be an http:// or https:// URL");
        }
    }
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("--listen {}", cli.listen))?;
    let addr = listener.local_addr()?;
    if !cli.no_worker_streams {
        state.public_url = Some(cli.public_url.clone().unwrap_or_else(|| {
            let mut a = addr;
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{a}")
        }));
    }
    state.challenge_mismatch = !cli.no_challenge_stream_mismatch;
    state.route_rng = cli
        .route_seed
        .map(|seed| std::sync::Mutex::new(rand::SeedableRng::seed_from_u64(seed)));
    let state = Arc::new(state);
    if state.keys.is_some() {
        tokio::spawn(gateway::keys::reconcile(
            state.clone(),
            Duration::from_secs(cli.refund_poll_secs),
        ));
    }
    tracing::info!(wallet = %me, chain_id, "gateway serving");
    println!("gateway: http://{addr}");
    axum::serve(listener, gateway::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}
