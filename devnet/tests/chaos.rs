//! The short chaos suite in `make test` (issue 16): one fault of each family (a process crash:
//! the executor with its commit in flight; the RPC unreachable; a reorg of depth 3 under an
//! indexer at 0 confirmations; the blob store down; a corrupted journal line),
//! each on a fresh devnet under load, must lose nothing, and the verifier's epoch reports must
//! equal the indexer's; and the checks themselves can fail (a recovery deadline that leaves no
//! time reports the open tasks as stuck). `make chaos` runs every fault at full length.

use devnet::chaos::{run_fault, Fault, Timing};
use std::path::PathBuf;
use std::time::Duration;

/// Each test runs a devnet and four services under load: on two cores they take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn bin_dir() -> PathBuf {
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_deepnode-chaos"));
    let dir = chaos.parent().expect("bin dir").to_path_buf();
    for b in ["executor", "verifier", "indexer", "blobstore"] {
        assert!(
            dir.join(b).exists(),
            "{b} not built (cargo test --workspace builds it)"
        );
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fault_of_each_family_loses_nothing() {
    let _turn = SERIAL.lock().await;
    let dir = bin_dir();
    for f in [
        Fault::KillExecutorInCommit,
        Fault::RpcDown,
        Fault::Reorg {
            depth: 3,
            confirmations: 0,
        },
        Fault::BlobDown,
        Fault::CorruptJournal,
    ] {
        let r = run_fault(f, Timing::short(f), &dir)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", f.name(Timing::short(f).down)));
        println!("{}", r.line());
        assert!(r.tasks > 0, "the load submitted tasks: {r:?}");
        assert!(r.epochs_checked > 0, "an epoch report was compared: {r:?}");
        assert!(r.clean(), "{}", r.line());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_deadline_with_no_time_reports_stuck_tasks() {
    let _turn = SERIAL.lock().await;
    let f = Fault::KillVerifier;
    let timing = Timing {
        recovery_limit: Duration::ZERO,
        ..Timing::short(f)
    };
    let r = run_fault(f, timing, &bin_dir()).await.expect("run");
    // tasks submitted in the last seconds are still in their challenge window
    assert!(r.stuck > 0, "{r:?}");
    assert!(!r.clean());
    assert!(
        r.line().contains(&format!("stuck {}", r.stuck)),
        "{}",
        r.line()
    );
}
