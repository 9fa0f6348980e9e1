//! Crash injection for the end-to-end and chaos tests only:
//! `DN_EXECUTOR_CRASH_AFTER=computed|submitted` aborts the process at that point of the first
//! batch, and `=finalizeBatch` (or `withdraw`, `optIn`: any transaction sent by
//! `Chain::send_and_wait`, by its name) right after that transaction is broadcast, the way a power
//! cut would. Unset, it does nothing.

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
