//! `executor`: the DeepNode worker node. Follows this wallet's task assignments, runs the ONNX
//! models, commits results in batches (crash-safe journal), finalizes and withdraws payouts.

mod chain;
mod cheat;
mod cli;
mod crash;
mod engine;
mod journal;
mod metrics;
mod outcome;
mod payload;
mod sentinel;
mod stream;
mod worker;

use anyhow::{Context, Result};
use clap::Parser;
use cli::Cli;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    protocol::telemetry::init(cli.verbosity(), cli.json_logs);
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
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Local configuration first: a bad flag should not wait on the network.
    let signer = cli.key.signer()?;
    let me = signer.address();
    let models_dir = cli.models_dir().map_err(anyhow::Error::msg)?;
    cli::ensure_dir(&models_dir).map_err(anyhow::Error::msg)?;
    let cheater = cheat::Cheater::new(
        cli.test_cheat_rate,
        cli.test_cheat_seed,
        cli.test_cheat_fail,
        cli.test_cheat_log.as_deref(),
    )?;
    if let Some(c) = &cheater {
        tracing::warn!(
            rate = c.rate(),
            seed = c.seed(),
            log = ?cli.test_cheat_log,
            "TEST-ONLY: this executor cheats on about {}% of tasks (--test-cheat-rate): they skip inference and commit {}; never run this on a real network",
            c.percent(),
            if c.fails() { "failure code 1 (input_decode)" } else { "pseudo-random outputs" }
        );
    }

    let sentinel_inputs = match &cli.sentinel_inputs {
        Some(dir) => {
            protocol::task_inputs::read_dir(dir, "--sentinel-inputs").map_err(anyhow::Error::msg)?
        }
        None => Vec::new(),
    };

    let (provider, chain_id) = cli.rpc.connect().await?;
    protocol::wallet::refuse_dev_key_off_devnet(&signer, chain_id)?;
    let deployment = cli.rpc.load_deployment(chain_id)?;
    let sentinel = match (&cli.sentinel_key, &cli.sentinel_submitter_key) {
        (Some(planter_key), Some(submitter_key)) => Some(sentinel::Sentinel::new(
            sentinel::SentinelConfig {
                planter_key: planter_key.clone(),
                submitter_key: submitter_key.clone(),
                model_id: cli.sentinel_model.unwrap_or_default(),
                inputs: sentinel_inputs,
                interval: Duration::from_secs(cli.sentinel_interval_secs),
                rate: cli.sentinel_rate,
            },
            signer.clone(),
            provider.clone(),
            chain_id,
            deployment.clone(),
        )?),
        _ => None,
    };
    let chain = chain::Chain::new(provider, signer, chain_id, deployment);

    let journal_path = cli.journal_path(&models_dir, chain_id, me);
    let (journal, replay) = journal::Journal::open(&journal_path)?;
    if replay.dropped_partial_line {
        tracing::warn!(journal = %journal_path.display(), "the journal's last line was cut by a crash and was dropped");
    }

    if let Some(why) = chain.ineligibility().await? {
        tracing::warn!("{why}");
    }
    let max_batch = chain.max_batch().await?;
    let engine = engine::Engine::new(
        cli.ort_lib.as_deref(),
        models_dir.clone(),
        cli.device.into(),
        cli.threads,
        cli.max_input_bytes,
    )?
    .with_max_loaded(cli.max_loaded_models as usize);

    if !cli.opt_in.is_empty() {
        let serving = chain.models_of_me().await?;
        for model_id in &cli.opt_in {
            if serving.contains(model_id) {
                continue;
            }
            chain
                .send_and_wait(
                    &format!("--opt-in {model_id}: optIn"),
                    chain.opt_in_tx(*model_id),
                )
                .await?;
            tracing::info!(model_id, "opted in");
        }
    }

    if let Some(s) = &sentinel {
        s.check_role().await?;
    }

    if let Some(addr) = cli.metrics_listen {
        let handle = metrics::install()?;
        let bound = metrics::serve(addr, handle).await?;
        tracing::info!(url = %format!("http://{bound}/metrics"), "metrics server listening");
    }

    let cfg = worker::Config {
        batch_size: cli.batch_size as usize,
        batch_wait: Duration::from_millis(cli.batch_wait_ms),
        poll: Duration::from_millis(cli.poll_interval_ms),
        finalize: !cli.no_finalize,
        finalize_interval: Duration::from_secs(cli.finalize_interval_secs.max(1)),
    };
    let task_manager = chain.deployment.task_manager;
    let payloads = payload::Payloads::new(
        cli.blob_store.clone(),
        Duration::from_secs(cli.blob_timeout_secs),
        cli.max_input_bytes as u64,
        cli.inline_output_bytes,
    )?;
    let streamer = if cli.no_stream_tokens {
        None
    } else {
        if cli.test_cheat_stream {
            tracing::warn!("TEST-ONLY: this executor streams tokens that differ from what it commits (--test-cheat-stream); never run this on a real network");
        }
        Some(
            stream::Streamer::new(
                cli.key.signer()?,
                chain_id,
                task_manager,
                cli.stream_allow.clone(),
            )?
            .lying(cli.test_cheat_stream),
        )
    };
    let w = worker::Worker::new(chain, engine, journal, cfg, max_batch)
        .with_cheater(cheater)
        .with_payloads(payloads)
        .with_streamer(streamer)
        .with_sentinel(sentinel);
    let (to_commit, pending, to_finalize) = w.backlog();
    tracing::info!(
        worker = %w.worker(),
        chain_id,
        %task_manager,
        rpc = %cli.rpc.redacted_url(),
        journal = %journal_path.display(),
        models_dir = %models_dir.display(),
        to_commit,
        pending,
        to_finalize,
        "executor started"
    );
    w.run(shutdown_signal()).await.context("executor stopped")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
