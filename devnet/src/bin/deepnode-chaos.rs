//! `deepnode-chaos` (`make chaos`): kills, crash points, RPC and blob store outages, reorgs, a
//! full disk and a corrupted journal injected into a live
//! devnet under load, one fault at a time, each followed by the checks that nothing was lost
//! (see `devnet::chaos`). Prints one line per fault:
//! `chaos: <fault>: <N> tasks, lost 0, stuck 0, double commits 0, events missing 0, extra 0, recovered in <s> s`.

use clap::Parser;
use devnet::chaos::{run_fault, Fault, Timing};

/// Fault injection on a live devnet (anvil, two executors, a verifier, the indexer).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Faults to run, comma-separated: executor, executor-commit, executor-finalize, indexer,
    /// verifier, verifier-verdicts, verifier-report, rpc, rpc-slow, rpc-errors, reorg (all four:
    /// depth 1 and 3, indexer at 0 and 2 confirmations; reorg-1, reorg-3 for two), blob,
    /// disk-full (needs root: it mounts a tmpfs), journal [default: all].
    #[arg(long, value_delimiter = ',', value_parser = Fault::parse)]
    faults: Vec<Vec<Fault>>,
    /// The short version `make test` runs (faults of 3 s, the RPC down 15 s instead of 60 s, a
    /// slow or erroring RPC and the blob store 10 s instead of 30 s).
    #[arg(long)]
    short: bool,
    /// One JSON object per fault instead of the lines.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    protocol::telemetry::init(0, false);
    let bin_dir = match std::env::current_exe() {
        Ok(p) => p.parent().map(|d| d.to_path_buf()).unwrap_or_default(),
        Err(e) => {
            eprintln!("error: locating the executor, verifier and indexer binaries: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let faults = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults.concat()
    };
    let mut failed = 0;
    for f in faults {
        let timing = if args.short {
            Timing::short(f)
        } else {
            Timing::full(f)
        };
        eprintln!("==> {} (a fresh devnet under load)", f.name(timing.down));
        match run_fault(f, timing, &bin_dir).await {
            Ok(r) => {
                if args.json {
                    println!("{}", serde_json::to_string(&r).unwrap_or_default());
                } else {
                    println!("{}", r.line());
                }
                if !r.clean() {
                    failed += 1;
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", f.name(timing.down));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("chaos: {failed} fault(s) lost something or could not run");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
