//! Crash injection for the end-to-end tests only: `DN_EXECUTOR_CRASH_AFTER=computed|submitted`
//! aborts the process at that point of the first batch, the way a power cut would.

use std::sync::atomic::{AtomicBool, Ordering};

/// Environment variable naming the crash point.
pub const ENV: &str = "DN_EXECUTOR_CRASH_AFTER";

static FIRED: AtomicBool = AtomicBool::new(false);

/// Aborts (no destructors, no flushing) if the tests asked to crash at `stage`; only the first
/// time per process.
pub fn point(stage: &str) {
    if std::env::var(ENV).is_ok_and(|v| v == stage) && !FIRED.swap(true, Ordering::SeqCst) {
        eprintln!("{ENV}={stage}: aborting now (test crash injection)");
        std::process::abort();
    }
}
