//! `sim`: runs every attack strategy through the real epoch computation and prints, for each,
//! the adversary's profit per epoch against the same capital played honestly:
//! `sim: <strategy> <profit> DN/epoch vs honest <honest> DN/epoch (<ok|PROFITABLE>)`.

use clap::Parser;
use sim::{strategies, Economy};

/// DeepNode economics simulation (protocol::epoch::compute over simulated populations).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Epochs per world (the first --warmup are not measured).
    #[arg(long, default_value_t = 24)]
    epochs: u64,
    /// Epochs before measuring.
    #[arg(long, default_value_t = 8)]
    warmup: u64,
    /// Worlds (seeds) averaged per strategy.
    #[arg(long, default_value_t = 24)]
    runs: u64,
    /// Worlds averaged for the strategies whose losses come from rare catches (cheap-model-99.9%,
    /// lazy-worker-1%: about 0.03 and 0.3 catches per world), each against the honest play of
    /// the same worlds (at least --runs).
    #[arg(long, default_value_t = 240)]
    rare_runs: u64,
    /// Disable probe emission (the rules before formula version 4: every paid task earns
    /// emission), to see the attacks it stops.
    #[arg(long)]
    no_probe_emission: bool,
    /// Share of the catalogue model's tasks that the prober submits.
    #[arg(long, default_value_t = Economy::default().probe_share)]
    probe_share: f64,
    /// Honest workers in the population.
    #[arg(long, default_value_t = 100)]
    workers: usize,
    /// Paid tasks per epoch.
    #[arg(long, default_value_t = 10_000)]
    tasks: u64,
    /// Forced errors the sentinels plant per epoch, network-wide (0: no sentinel runs).
    #[arg(long, default_value_t = Economy::default().sentinel_forced_errors)]
    sentinel_forced_errors: f64,
    /// One JSON object per strategy instead of the lines.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 when a strategy is profitable.
    #[arg(long)]
    strict: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.warmup >= a.epochs {
        anyhow::bail!(
            "--warmup ({}) must be below --epochs ({})",
            a.warmup,
            a.epochs
        );
    }
    if a.runs == 0 || a.workers == 0 || a.tasks == 0 {
        anyhow::bail!("--runs, --workers and --tasks must be positive");
    }
    if !a.sentinel_forced_errors.is_finite() || a.sentinel_forced_errors < 0.0 {
        anyhow::bail!(
            "--sentinel-forced-errors must be a number >= 0, got {}",
            a.sentinel_forced_errors
        );
    }
    if !(a.probe_share > 0.0 && a.probe_share <= 1.0) {
        anyhow::bail!("--probe-share must be in (0, 1], got {}", a.probe_share);
    }
    let e = Economy {
        epochs: a.epochs,
        warmup: a.warmup,
        runs: a.runs,
        rare_runs: a.rare_runs,
        probe_emission: !a.no_probe_emission,
        probe_share: a.probe_share,
        honest_workers: a.workers,
        tasks_per_epoch: a.tasks,
        sentinel_forced_errors: a.sentinel_forced_errors,
        ..Economy::default()
    };
    eprintln!(
        "sim: {} honest workers x {} DN, {} validators x {} DN, {} tasks/epoch at {} DN ({} compute units, cost {} DN), emission {} DN/epoch ({}); {} epochs ({} warm-up) x {} worlds ({} for rare catches)",
        e.honest_workers, e.worker_stake, e.validators, e.validator_stake, e.tasks_per_epoch,
        e.price, e.units, e.compute_cost, e.emission,
        if e.probe_emission {
            format!("probe emission: {}% of the tasks are the prober's", e.probe_share * 100.0)
        } else {
            "probe emission off".to_string()
        },
        e.epochs, e.warmup, e.runs, e.rare_runs.max(e.runs)
    );
    let out = strategies(&e);
    let mut profitable = 0;
    for o in &out {
        if a.json {
            println!("{}", serde_json::to_string(o)?);
        } else {
            println!("{}", o.line());
        }
        if !o.ok() {
            profitable += 1;
        }
    }
    eprintln!(
        "sim: {} strategies, {} profitable at these parameters",
        out.len(),
        profitable
    );
    if a.strict && profitable > 0 {
        std::process::exit(1);
    }
    Ok(())
}
