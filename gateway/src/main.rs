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
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
struct Cli {
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
    protocol::telemetry::init(cli.verbose.min(2) as i8, cli.json_logs);
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
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
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
    .with_blob_store(cli.blob_store.clone());
    chain
        .ensure_allowance()
        .await
        .context("approving the TaskManager to take fees from the gateway's wallet")?;
    let catalogue = gateway::models::Catalogue::new(provider, deployment.model_registry, cache);
    let state = Arc::new(gateway::AppState {
        chain,
        catalogue,
        task_timeout: Duration::from_secs(cli.task_timeout_secs.max(1)),
    });
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("--listen {}", cli.listen))?;
    let addr = listener.local_addr()?;
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
