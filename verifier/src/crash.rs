//! Crash injection for the chaos tests only: `DN_VERIFIER_CRASH_AFTER=verdicts-sent|report-sent`
//! aborts the process right after that transaction is broadcast (before its receipt is seen or
//! anything is recorded), the way a power cut would. Unset, it does nothing.

use std::sync::atomic::{AtomicBool, Ordering};

/// Environment variable naming the crash point.
pub const ENV: &str = "DN_VERIFIER_CRASH_AFTER";

static FIRED: AtomicBool = AtomicBool::new(false);

/// Aborts (no destructors, no flushing) if the tests asked to crash at `stage`; only the first
/// time per process.
pub fn point(stage: &str) {
    if std::env::var(ENV).is_ok_and(|v| v == stage) && !FIRED.swap(true, Ordering::SeqCst) {
        eprintln!("{ENV}={stage}: aborting now (test crash injection)");
        std::process::abort();
    }
}
