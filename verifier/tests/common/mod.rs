//! Helpers shared by the verifier's end-to-end tests.
#![allow(dead_code)]

use alloy::signers::local::PrivateKeySigner;
use devnet::{key_hex, Devnet};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub fn label_output(label: i64) -> Vec<u8> {
    let bytes = label.to_le_bytes();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1], &bytes).unwrap();
    safetensors::serialize([("label", view)], None).unwrap()
}

/// Runs the verifier binary to completion (2 minutes at most); returns (success, stdout, stderr).
pub async fn verifier(
    devnet: &Devnet,
    key: Option<&PrivateKeySigner>,
    db: &Path,
    extra: &[&str],
) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_verifier"));
    let defaults = [
        ("--rpc-url", devnet.rpc_url.as_str()),
        ("--deployment", devnet.deployment_path.to_str().unwrap()),
        ("--db", db.to_str().unwrap()),
        ("--confirmations", "1"),
        ("--poll-interval-ms", "200"),
    ];
    for (flag, value) in defaults {
        // A flag given in `extra` replaces the default (clap refuses a flag twice).
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra)
        .env_remove("DN_PRIVATE_KEY")
        .env_remove("ETH_KEYSTORE")
        .env_remove("ETH_RPC_URL")
        .env_remove("DN_SIGNATURES_DIR")
        .env("RUST_LOG", "warn,verifier=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(k) = key {
        cmd.env("DN_PRIVATE_KEY", key_hex(k));
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("verifier finished within 2 minutes")
        .expect("verifier ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        strip_ansi(&String::from_utf8_lossy(&out.stderr)),
    )
}

/// The logs without terminal colour codes (`ESC [ ... m`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The JSON line printed for `epoch`.
pub fn line_of(stdout: &str, epoch: u64) -> Value {
    stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["epoch"].as_u64() == Some(epoch))
        .unwrap_or_else(|| panic!("no line for epoch {epoch} in:\n{stdout}"))
}
