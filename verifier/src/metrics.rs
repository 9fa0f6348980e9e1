//! Prometheus metrics of the verifier, served at `/metrics` when `--metrics-listen` is given
//! (otherwise the `metrics` macros are no-ops). The follow loop adds the indexer's metrics.

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;

/// Epoch reports signed by this verifier.
pub const REPORTS_SIGNED: &str = "verifier_reports_signed_total";
/// Epoch reports posted by this verifier.
pub const REPORTS_POSTED: &str = "verifier_reports_posted_total";
/// Epochs whose on-chain report differs from the one this verifier computed.
pub const REPORTS_DISAGREED: &str = "verifier_reports_disagreed_total";
/// Epoch reports this verifier vetoed (roots it did not compute, inside the veto window).
pub const REPORTS_VETOED: &str = "verifier_reports_vetoed_total";
/// refreshTrust transactions sent.
pub const TRUST_REFRESHED: &str = "verifier_trust_refreshed_total";
/// applyModelStatus transactions sent.
pub const MODEL_STATUS_APPLIED: &str = "verifier_model_status_applied_total";
/// Failed settlement steps (RPC outages and the like; retried).
pub const STEP_ERRORS: &str = "verifier_step_errors_total";
/// Probe tasks submitted by the prober (`--probe-key`).
pub const PROBES_SUBMITTED: &str = "verifier_probes_submitted_total";
/// Probe wallets revealed by the prober (`revealProbes`).
pub const PROBE_REVEALS: &str = "verifier_probe_reveals_total";
/// Failed prober steps (RPC outages, funding shortfalls and the like; retried).
pub const PROBE_ERRORS: &str = "verifier_probe_errors_total";
/// Last epoch handled.
pub const LAST_EPOCH: &str = "verifier_last_epoch";
/// Gas used by the last postReport of this verifier.
pub const POST_GAS: &str = "verifier_post_report_gas";

/// Installs the global recorder.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    metrics::describe_counter!(REPORTS_SIGNED, "Epoch reports signed by this verifier");
    metrics::describe_counter!(REPORTS_POSTED, "Epoch reports posted by this verifier");
    metrics::describe_counter!(
        REPORTS_DISAGREED,
        "Epochs reported on-chain with roots this verifier did not compute"
    );
    metrics::describe_counter!(
        REPORTS_VETOED,
        "Epoch reports vetoed by this verifier (roots it did not compute)"
    );
    metrics::describe_counter!(TRUST_REFRESHED, "refreshTrust transactions sent");
    metrics::describe_counter!(MODEL_STATUS_APPLIED, "applyModelStatus transactions sent");
    metrics::describe_counter!(STEP_ERRORS, "Failed settlement steps (retried)");
    metrics::describe_counter!(PROBES_SUBMITTED, "Probe tasks submitted by the prober");
    metrics::describe_counter!(PROBE_REVEALS, "Probe wallets revealed by the prober");
    metrics::describe_counter!(PROBE_ERRORS, "Failed prober steps (retried)");
    metrics::describe_gauge!(LAST_EPOCH, "Last epoch handled");
    metrics::describe_gauge!(POST_GAS, "Gas used by the last postReport");
    Ok(handle)
}

/// Binds `addr` (failing fast, naming the flag) and serves `/metrics` in the background.
pub async fn serve(addr: SocketAddr, handle: PrometheusHandle) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let app = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(local)
}
