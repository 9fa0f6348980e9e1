//! One error type for the shared plumbing: each variant names the setting or file that was wrong.

use std::path::PathBuf;

/// Errors of the shared plumbing (configuration, keys, RPC).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The deployment file is missing or unreadable.
    #[error("deployment file {path}: {reason} (deploy with `forge script script/Deploy.s.sol --rpc-url $RPC --broadcast` or pass --deployment)")]
    Deployment {
        /// File that was read.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The deployment file is for another chain than the RPC endpoint.
    #[error(
        "deployment file {path} is for chain {file_chain}, but --rpc-url serves chain {rpc_chain}"
    )]
    ChainMismatch {
        /// File that was read.
        path: PathBuf,
        /// Chain id in the file.
        file_chain: u64,
        /// Chain id of the RPC.
        rpc_chain: u64,
    },
    /// The RPC URL is missing or malformed.
    #[error("--rpc-url / ETH_RPC_URL: {0}")]
    RpcUrl(String),
    /// The RPC endpoint did not answer.
    #[error("RPC {url} unreachable: {reason}")]
    RpcUnreachable {
        /// Endpoint (credentials stripped).
        url: String,
        /// Underlying error.
        reason: String,
    },
    /// No key, or a key that could not be loaded.
    #[error("{0}")]
    Key(String),
    /// A well-known development key used on a public chain.
    #[error("refusing to start: {address} is one of anvil's public development keys and chain id {chain_id} is not a local devnet (31337); use your own key")]
    DevKeyOnPublicChain {
        /// The signer address.
        address: alloy::primitives::Address,
        /// The chain id of the RPC.
        chain_id: u64,
    },
}
