//! DeepNode indexer: runs the chain store (the `chainstore` crate: follows the TaskManager,
//! ModelRegistry, Staking, Settlement and AuditManager events of a deployment into SQLite,
//! backfill then poll, confirmation depth, reorg rollback, and computes each epoch's trust and
//! PoWR rewards) and serves it over a REST API with an OpenAPI document and Prometheus metrics.
//! Its own modules are the REST side; the store's are re-exported under their old paths.
#![warn(missing_docs)]

pub mod api;
pub mod audit_query;
pub mod blobs;
pub mod cache;
pub use chainstore::{audit, db, epochs, follow, ingest, model_selection};
pub mod epoch_query;
pub mod limits;
pub mod openapi;
pub mod query;
pub mod schema;
pub mod tensor;

use anyhow::Context;
use api::{AppState, SyncStatus};
use db::Db;
use follow::{FollowConfig, Follower};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Command line of the `indexer` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "indexer",
    version,
    about = "Follow a DeepNode deployment's contract events into SQLite and serve them over REST",
    long_about = "Follows the TaskManager, ModelRegistry, Staking, Settlement and AuditManager events \
        of a DeepNode deployment into a SQLite database (backfill from the deployment's start block, then poll; only blocks \
        at least --confirmations deep; reorgs rolled back) and serves tasks, models and nodes over a \
        REST API (with audits, disputes and slashes). The OpenAPI document is at /openapi.json, Prometheus metrics at /metrics."
)]
pub struct Args {
    /// RPC endpoint and deployment file.
    #[command(flatten)]
    pub rpc: protocol::rpc::RpcArgs,
    /// Database: an SQLite file (created if missing) or sqlite:// URL, or a PostgreSQL URL
    /// (postgres://user:password@host:port/database; the database must exist). Several indexers
    /// may serve one PostgreSQL database (README, "Scale out on PostgreSQL").
    #[arg(
        long,
        value_name = "FILE|URL",
        env = "DN_INDEXER_DB",
        default_value = "indexer.sqlite"
    )]
    pub db: String,
    /// Address the REST API listens on (port 0 picks a free port).
    #[arg(
        long,
        value_name = "ADDR",
        env = "DN_INDEXER_LISTEN",
        default_value = "127.0.0.1:8645"
    )]
    pub listen: SocketAddr,
    /// Only blocks at or below head - N are indexed, so short reorgs never reach the database.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub confirmations: u64,
    /// Milliseconds between polls of the chain head once caught up.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval_ms: u64,
    /// Largest block range of one eth_getLogs request (halved automatically when refused).
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_blocks: u64,
    /// Directory of static files served at / (e.g. the staking page).
    #[arg(long, value_name = "DIR")]
    pub web_dir: Option<PathBuf>,
    /// Requests per second each client IP may make to the REST API, sustained (bursts up to
    /// twice as many); 0 turns the limit off. Over it: 429 with retry-after.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub rate_limit_per_ip: u32,
    /// Seconds one REST request may take before it is abandoned with 503.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Blob store of off-chain task payloads (its base URL): `GET /tasks/{id}` shows the content
    /// of the inputs and outputs kept there. Other URLs named by tasks are never fetched.
    #[arg(long, value_name = "URL", env = "DN_BLOB_STORE")]
    pub blob_store: Option<String>,
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
}

/// The process-wide Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                None
            }
        })
        .clone()
}

/// A running indexer: the REST server and the follow loop.
pub struct Running {
    /// Address the API listens on.
    pub addr: SocketAddr,
    /// The database (tests inspect it).
    pub db: Db,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    follower: JoinHandle<()>,
}

impl Running {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops both tasks gracefully and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.follower.await.context("follow loop panicked")?;
        self.server
            .await
            .context("REST server panicked")?
            .context("REST server failed")?;
        Ok(())
    }
}

/// Checks every setting (RPC reachable, deployment file, database writable, listen address
/// free), then starts the follow loop and the REST server. Each failure is one line naming the
/// setting.
pub async fn start(args: Args) -> anyhow::Result<Running> {
    let (provider, chain_id) = args.rpc.connect().await?;
    let deployment = args.rpc.load_deployment(chain_id)?;
    if let Some(dir) = &args.web_dir {
        if !dir.is_dir() {
            anyhow::bail!("--web-dir {}: not a directory", dir.display());
        }
    }
    let epoch_cfg = epochs::EpochConfig::load(&provider, &deployment)
        .await
        .with_context(|| format!("--deployment: settlement {}", deployment.settlement))?;
    let db = Db::open(&args.db).await?;
    db.bind_deployment(&deployment).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen {}: cannot bind", args.listen))?;
    let addr = listener
        .local_addr()
        .context("--listen: no local address")?;

    let sync = Arc::new(SyncStatus::default());
    let (shutdown, rx) = watch::channel(false);
    let follower = Follower::new(
        provider,
        db.clone(),
        &deployment,
        FollowConfig {
            confirmations: args.confirmations,
            poll_interval: Duration::from_millis(args.poll_interval_ms),
            batch_blocks: args.batch_blocks,
        },
        sync.clone(),
    )
    .with_epochs(epoch_cfg);
    let follower = tokio::spawn(follower.run(rx.clone()));
    blobs::configure(args.blob_store.as_deref()).context("--blob-store")?;
    let state = AppState {
        db: db.clone(),
        chain_id,
        confirmations: args.confirmations,
        sync,
        metrics: metrics_handle(),
        web_dir: args.web_dir.clone(),
        deployment: Some(deployment.clone()),
        pages: Default::default(),
    };
    let app = limits::apply(
        api::router(state),
        limits::Limits {
            per_ip_per_sec: args.rate_limit_per_ip,
            timeout: Duration::from_secs(args.request_timeout_secs),
            ..Default::default()
        },
    );
    let mut server_rx = rx;
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_rx.wait_for(|stop| *stop).await;
        })
        .await
    });
    tracing::info!(
        url = %format!("http://{addr}"),
        chain_id,
        task_manager = %deployment.task_manager,
        start_block = deployment.start_block,
        db = %db::redacted(&args.db),
        "indexer listening on http://{addr}"
    );
    Ok(Running {
        addr,
        db,
        shutdown,
        server,
        follower,
    })
}
