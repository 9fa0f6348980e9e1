//! DeepNode shared core: contract bindings generated from the forge artifacts, the deployment
//! file, key and RPC handling shared by every service, failure codes and the batch Merkle tree.
//!
//! Everything validators must agree on lives here as pure functions, so the executor, verifier
//! and indexer compute the same bytes.
#![warn(missing_docs)]

pub mod bindings;
pub mod codes;
pub mod deployment;
pub mod epoch;
pub mod error;
pub mod logs;
pub mod merkle;
pub mod model_selection;
pub mod powr;
pub mod rpc;
pub mod stream;
pub mod task_inputs;
pub mod telemetry;
pub mod verdict;
pub mod wallet;

pub use deployment::Deployment;
pub use error::ProtocolError;

use alloy::primitives::{keccak256, B256};

/// The output hash a worker commits: keccak256 of the canonical (safetensors) output bytes,
/// or of the UTF-8 error message when it commits a failure code.
pub fn output_hash(output: &[u8]) -> B256 {
    keccak256(output)
}

/// Chain id of a local anvil devnet; anvil's well-known keys are only accepted there.
pub const DEVNET_CHAIN_ID: u64 = 31337;

/// 1 DN in wei (18 decimals).
pub const DN: u128 = 1_000_000_000_000_000_000;

/// Formats a wei amount as DN with up to 6 decimals (e.g. `12.5 DN`).
pub fn format_dn(wei: alloy::primitives::U256) -> String {
    let dn = alloy::primitives::U256::from(DN);
    let whole = wei / dn;
    let frac = (wei % dn) / alloy::primitives::U256::from(1_000_000_000_000u64);
    let frac = format!("{:06}", frac.to::<u64>());
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{whole}")
    } else {
        format!("{whole}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;

    #[test]
    fn formats_dn_amounts() {
        assert_eq!(format_dn(U256::from(DN) * U256::from(12u8)), "12");
        assert_eq!(format_dn(U256::from(DN / 2)), "0.5");
        assert_eq!(
            format_dn(U256::from(1_234_567_000_000_000_000u128)),
            "1.234567"
        );
        assert_eq!(format_dn(U256::ZERO), "0");
    }

    #[test]
    fn output_hash_is_keccak() {
        assert_eq!(
            output_hash(b""),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
                .parse::<B256>()
                .unwrap()
        );
    }
}
