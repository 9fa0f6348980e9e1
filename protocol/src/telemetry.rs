//! Structured logs for every service: quiet by default (warnings, plus our crates at `info`
//! when asked with -v), `RUST_LOG` overrides, JSON lines with `--json-logs`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbosity`: -1 quiet (errors), 0 default (warn, our crates
/// info), 1 debug for our crates, 2+ trace.
pub fn init(verbosity: i8, json: bool) {
    let ours = [
        "protocol",
        "inference",
        "executor",
        "indexer",
        "verifier",
        "devnet",
        "gateway",
    ];
    let level = match verbosity {
        i8::MIN..=-1 => "error",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let base = if verbosity < 0 { "error" } else { "warn" };
    let default = std::iter::once(base.to_string())
        .chain(ours.iter().map(|c| format!("{c}={level}")))
        .collect::<Vec<_>>()
        .join(",");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
