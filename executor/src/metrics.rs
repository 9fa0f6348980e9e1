//! Prometheus metrics of the worker, served at `/metrics` by a small axum server when
//! `--metrics-listen` is given (otherwise the `metrics` macros are no-ops).

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;

/// Tasks run (successfully or not).
pub const TASKS_RUN: &str = "tasks_run_total";
/// Tasks committed with a failure code, labelled `code`.
pub const TASKS_FAILED: &str = "tasks_failed_total";
/// Seconds from seeing an assignment to its commit receipt.
pub const COMMIT_LATENCY: &str = "commit_latency_seconds";
/// RPC failures of the main loop.
pub const RPC_ERRORS: &str = "rpc_errors_total";
/// Chain head minus the last block whose assignments were handled.
pub const BLOCKS_BEHIND: &str = "blocks_behind";
/// Tasks committed on-chain.
pub const TASKS_COMMITTED: &str = "tasks_committed_total";
/// Tasks finalized by this worker.
pub const TASKS_FINALIZED: &str = "tasks_finalized_total";
/// Tasks run, labelled `kind` (text-generation, ocr, ...) and `code` (ok or the failure code).
pub const TASKS_BY_KIND: &str = "tasks_by_kind_total";
/// Inference seconds per task (a batch's time divided by its size), labelled `kind`.
pub const INFERENCE_SECONDS: &str = "inference_seconds";
/// Models loaded now (at most --max-loaded-models).
pub const MODELS_LOADED: &str = "models_loaded";

/// Installs the global recorder.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(COMMIT_LATENCY.to_string()),
            &[0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full(INFERENCE_SECONDS.to_string()),
            &[
                0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        )?
        .install_recorder()?;
    metrics::describe_counter!(
        TASKS_RUN,
        "Tasks run by this worker (success or failure code)"
    );
    metrics::describe_counter!(TASKS_FAILED, "Tasks committed with a failure code, by code");
    metrics::describe_histogram!(
        COMMIT_LATENCY,
        metrics::Unit::Seconds,
        "Assignment seen to commit receipt"
    );
    metrics::describe_counter!(RPC_ERRORS, "RPC errors of the main loop");
    metrics::describe_gauge!(BLOCKS_BEHIND, "Chain head minus the last handled block");
    metrics::describe_counter!(TASKS_COMMITTED, "Tasks committed on-chain");
    metrics::describe_counter!(TASKS_BY_KIND, "Tasks run, by kind and outcome code");
    metrics::describe_histogram!(
        INFERENCE_SECONDS,
        metrics::Unit::Seconds,
        "Inference time per task, by kind"
    );
    metrics::describe_gauge!(MODELS_LOADED, "Models loaded (LRU, --max-loaded-models)");
    metrics::describe_counter!(TASKS_FINALIZED, "Tasks finalized by this worker");
    Ok(handle)
}

/// `GET /metrics` in the Prometheus text format.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route("/metrics", get(move || std::future::ready(handle.render())))
}

/// Binds `addr` (failing fast, naming it) and serves the router in the background.
pub async fn serve(addr: SocketAddr, handle: PrometheusHandle) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: {e}"))?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(handle)).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(local)
}
