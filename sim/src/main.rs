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
    /// Worlds (seeds) averaged per strategy. 24 by default: a cheap model wrong on 0.1% of
    /// tasks is caught about 0.05 times per world, so fewer worlds leave its line to chance.
    #[arg(long, default_value_t = 24)]
    runs: u64,
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
    let e = Economy {
        epochs: a.epochs,
        warmup: a.warmup,
        runs: a.runs,
        honest_workers: a.workers,
        tasks_per_epoch: a.tasks,
        sentinel_forced_errors: a.sentinel_forced_errors,
        ..Economy::default()
    };
    eprintln!(
        "sim: {} honest workers x {} DN, {} validators x {} DN, {} tasks/epoch at {} DN ({} compute units, cost {} DN), emission {} DN/epoch; {} epochs ({} warm-up) x {} worlds",
        e.honest_workers, e.worker_stake, e.validators, e.validator_stake, e.tasks_per_epoch,
        e.price, e.units, e.compute_cost, e.emission, e.epochs, e.warmup, e.runs
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
