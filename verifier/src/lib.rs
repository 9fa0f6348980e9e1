//! DeepNode verifier (validator node), epoch settlement: an independent follower of the
//! contracts (the `chainstore` crate's `Db` + `Follower`, shared with the indexer; no REST
//! server) that computes each epoch's PoWR report with the protocol's formulas, signs its
//! EIP-712 digest, posts it with co-signatures holding >= 2/3 of the validator stake and
//! refreshes the nodes' trust weights. With `--probe-key` the same process also runs the
//! protocol's prober ([`probe`]): probe tasks from a fresh wallet each epoch, revealed after it.
#![warn(missing_docs)]

pub mod audit;
pub mod cli;
pub mod cosign;
pub mod crash;
pub mod metrics;
pub mod probe;
pub mod settle;
pub mod store;

pub use cli::Args;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use anyhow::Context;
use chainstore::db::Db;
use chainstore::epochs::EpochConfig;
use chainstore::follow::SyncStatus;
use chainstore::follow::{FollowConfig, Follower};
use protocol::bindings::{IStaking, ROLE_VALIDATOR};
use protocol::{format_dn, Deployment};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Refuses a key without validator stake; warns when the stake is below the minimum.
pub async fn check_validator(
    provider: &DynProvider,
    deployment: &Deployment,
    chain_id: u64,
    me: Address,
) -> anyhow::Result<()> {
    let staking = IStaking::new(deployment.staking, provider);
    let stake = staking
        .stakeOf(me, ROLE_VALIDATOR)
        .call()
        .await
        .context("Staking.stakeOf")?;
    let min = staking
        .minStake(ROLE_VALIDATOR)
        .call()
        .await
        .context("Staking.minStake")?;
    if stake.is_zero() {
        anyhow::bail!(
            "--private-key/--keystore: {me} is not a validator: it has no validator stake in Staking {} on chain {chain_id} \
             (its signatures would be rejected); use a staked validator's key, or stake at least {} DN as a validator first",
            deployment.staking,
            format_dn(min)
        );
    }
    if stake < min {
        tracing::warn!(
            validator = %me,
            stake = %format_dn(stake),
            minimum = %format_dn(min),
            shortfall = %format_dn(min - stake),
            "validator stake is below the minimum: stake {} DN more",
            format_dn(min - stake)
        );
    }
    Ok(())
}

/// What `--print-facts` prints: the rules' version, the facts of `epoch`, the state carried into
/// it and the report they give (each validator's own, from its database).
pub async fn facts_json(
    db: &Db,
    cfg: &EpochConfig,
    epoch: u64,
) -> Result<serde_json::Value, chainstore::epochs::EpochError> {
    let facts = chainstore::epochs::gather_facts(db, cfg, epoch).await?;
    let carried = chainstore::epochs::carried_into(db, cfg, epoch).await?;
    // the report from exactly what is printed, so the dump is all a diff needs
    let report = protocol::epoch::compute(&facts, &carried)
        .map_err(|e| chainstore::epochs::EpochError::Corrupt(format!("epoch {epoch}: {e}")))?
        .report;
    Ok(serde_json::json!({
        "epoch": epoch,
        "formula_version": protocol::epoch::FORMULA_VERSION,
        "report": cosign::ReportJson::from(&report),
        "facts": facts,
        "carried": carried,
    }))
}

/// `--probe-print-wallets N`: prints the probe wallets of N epochs from the running one (lines,
/// or one JSON array with `--json`) on stdout; never the seed nor a key.
async fn print_probe_wallets(args: &Args, count: u64) -> anyhow::Result<()> {
    let seed = args.parsed_probe_seed()?;
    let lines = probe::epoch_wallets(
        &args.rpc,
        &seed,
        &args.probe_model,
        args.probe_tasks_per_epoch,
        count,
    )
    .await
    .context("--probe-print-wallets")?;
    if args.json {
        let all: Vec<serde_json::Value> = lines.iter().map(probe::WalletLine::to_json).collect();
        println!("{}", serde_json::Value::Array(all));
    } else {
        for l in &lines {
            println!("{l}");
        }
    }
    Ok(())
}

/// Checks every setting (key, signatures directory, RPC, deployment, validator stake, database,
/// the prober's role and models with `--probe-key`), each failure one line naming it; then follows
/// the chain and settles epochs (and probes, with `--probe-key`) until `shutdown` resolves,
/// `--stop-after-epoch` is reached, or a fatal error. With `--probe-print-wallets` it only lists
/// the coming probe wallets and returns, before any of that.
pub async fn run(args: Args, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    if let Some(count) = args.probe_print_wallets {
        // A read-only listing for the operator: no validator key, database or prober needed.
        return print_probe_wallets(&args, count).await;
    }
    // Local configuration first: a bad flag should not wait on the network.
    let signer = args.key.signer()?;
    let me = signer.address();
    let probe_config = args.probe_config()?;
    if let Some(p) = &probe_config {
        if p.key.address() == me {
            anyhow::bail!("--probe-key: use a wallet other than the validator's (their transactions would race for nonces, and the prober's wallet funds the probes)");
        }
        let canary = args.canary_key.as_deref().and_then(|k| {
            k.trim()
                .trim_start_matches("0x")
                .parse::<alloy::signers::local::PrivateKeySigner>()
                .ok()
        });
        if canary.is_some_and(|c| c.address() == p.key.address()) {
            anyhow::bail!("--probe-key: use a wallet other than the canary's");
        }
    }
    if let Some(dir) = &args.signatures_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--signatures-dir {}: cannot create it", dir.display()))?;
        let probe = dir.join(format!(".probe-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .with_context(|| format!("--signatures-dir {}: not writable", dir.display()))?;
        let _ = std::fs::remove_file(&probe);
    }

    let (provider, chain_id) = args.rpc.connect_with_wallet(signer.clone()).await?;
    protocol::wallet::refuse_dev_key_off_devnet(&signer, chain_id)?;
    let deployment = args.rpc.load_deployment(chain_id)?;
    check_validator(&provider, &deployment, chain_id, me).await?;

    let db_spec = args.db_spec(me);
    let db = Db::open(&db_spec).await?;
    db.bind_deployment(&deployment).await?;
    let store = store::Store::open(db.pool()).await.with_context(|| {
        format!(
            "--db {}: creating the verifier's table",
            chainstore::db::redacted(&db_spec)
        )
    })?;
    let cfg = EpochConfig::load(&provider, &deployment)
        .await
        .context("reading the epoch parameters from the contracts")?;
    if let Some(epoch) = args.print_facts {
        let v = facts_json(&db, &cfg, epoch).await.with_context(|| {
            format!(
                "--print-facts {epoch} (--db {})",
                chainstore::db::redacted(&db_spec)
            )
        })?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }

    // The prober runs alongside the settlement (its own task, its own key and nonces); a prober
    // that cannot work (no PROBER_ROLE, unknown model) stops the verifier at start.
    let prober = match probe_config {
        Some(c) => Some(
            probe::Prober::start(c, &args.rpc)
                .await
                .context("starting the prober (--probe-key)")?,
        ),
        None => None,
    };

    if let Some(addr) = args.metrics_listen {
        let handle = metrics::install()?;
        let bound = metrics::serve(addr, handle).await?;
        tracing::info!(url = %format!("http://{bound}/metrics"), "metrics server listening");
    }

    let poll = Duration::from_millis(args.poll_interval_ms);
    let (stop, stop_rx) = watch::channel(false);
    let follower = Follower::new(
        provider.clone(),
        db.clone(),
        &deployment,
        FollowConfig {
            confirmations: args.confirmations,
            poll_interval: poll,
            batch_blocks: args.batch_blocks,
        },
        Arc::new(SyncStatus::default()),
    )
    // The follower also stores each computed epoch, so the next one starts from its trust.
    .with_epochs(cfg.clone());
    let follow = tokio::spawn(follower.run(stop_rx.clone()));
    let prober = prober.map(|p| tokio::spawn(p.run(stop_rx.clone())));
    let canary = match &args.canary_key {
        None => None,
        Some(key) => {
            let canary_signer: alloy::signers::local::PrivateKeySigner =
                key.trim().trim_start_matches("0x").parse().map_err(|_| {
                    anyhow::anyhow!(
                        "--canary-key / DN_CANARY_PRIVATE_KEY: not a 32-byte hex private key"
                    )
                })?;
            if canary_signer.address() == me {
                anyhow::bail!("--canary-key: use a wallet other than the validator's, or workers can tell canaries apart");
            }
            let inputs = args.canary_inputs()?;
            let (canary_provider, _) = args.rpc.connect_with_wallet(canary_signer.clone()).await?;
            Some(audit::CanaryOptions {
                provider: canary_provider,
                signer: canary_signer,
                model_id: args.canary_model.unwrap_or_default(),
                inputs,
                interval: Duration::from_secs(args.canary_interval_secs),
            })
        }
    };
    let auditor = if args.audit {
        let a = audit::Auditor::new(
            provider.clone(),
            signer.clone(),
            chain_id,
            deployment.clone(),
            audit::AuditOptions {
                mode: args.test_audit_mode,
                models_dir: args.models_dir()?,
                ort_lib: args.ort_lib.clone(),
                threads: args.threads,
                max_verdicts_per_tx: args.max_verdicts_per_tx as usize,
                blob_timeout: Duration::from_secs(args.blob_timeout_secs),
                max_blob_bytes: args.max_blob_bytes,
                poll,
                canary,
            },
        )
        .await
        .context("starting the audit loop")?;
        Some(tokio::spawn(a.run(stop_rx.clone())))
    } else {
        None
    };
    let settler = settle::Settler::new(
        settle::Node {
            provider,
            signer,
            chain_id,
            deployment: deployment.clone(),
        },
        db,
        store,
        cfg,
        settle::Options {
            no_post: args.no_post,
            signatures_dir: args.signatures_dir.clone(),
            refresh_trust: args.refresh_trust,
            stop_after: args.stop_after_epoch,
            poll,
        },
    )
    .await?;
    tracing::info!(
        validator = %me,
        chain_id,
        settlement = %deployment.settlement,
        rpc = %args.rpc.redacted_url(),
        db = %chainstore::db::redacted(&db_spec),
        next_epoch = settler.next_epoch(),
        no_post = args.no_post,
        "verifier started"
    );
    let result = tokio::select! {
        r = settler.run(stop_rx) => r,
        _ = shutdown => Ok(()),
    };
    let _ = stop.send(true);
    if let Some(a) = auditor {
        match a.await {
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "audit loop failed"),
            Err(_) => tracing::error!("audit loop panicked"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(p) = prober {
        match p.await {
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "prober failed"),
            Err(_) => tracing::error!("prober panicked"),
            Ok(Ok(())) => {}
        }
    }
    if follow.await.is_err() {
        tracing::error!("follow loop panicked");
    }
    result
}
