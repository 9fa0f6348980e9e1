//! RPC access shared by every service: HTTP with a per-request timeout under a retry layer with
//! backoff, so a flaky endpoint is retried a bounded number of times and then reported.

use crate::{Deployment, ProtocolError};
use alloy::network::EthereumWallet;
use alloy::providers::fillers::{
    ChainIdFiller, GasFiller, JoinFill, NonceFiller, SimpleNonceManager,
};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::ClientBuilder;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::layers::RetryBackoffLayer;
use alloy::transports::{RpcError, TransportErrorKind};
use std::path::PathBuf;
use std::time::Duration;

/// RPC and deployment flags, shared by executor, verifier and indexer (foundry's names).
#[derive(Debug, Clone, clap::Args)]
pub struct RpcArgs {
    /// JSON-RPC endpoint of the chain (http or https).
    #[arg(long = "rpc-url", env = "ETH_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Seconds before one RPC request is abandoned (then retried).
    #[arg(long = "rpc-timeout", value_name = "SECS", default_value_t = 10)]
    pub rpc_timeout: u64,
    /// Retries of a failed RPC request (with backoff) before the error is reported.
    #[arg(long = "rpc-retries", value_name = "N", default_value_t = 5)]
    pub rpc_retries: u32,
    /// Deployment file written by script/Deploy.s.sol (default: deployments/{chainId}.json).
    #[arg(long = "deployment", value_name = "FILE", env = "DN_DEPLOYMENT")]
    pub deployment: Option<PathBuf>,
}

impl RpcArgs {
    /// Args for a URL with default timeouts (tests, the demo).
    pub fn for_url(url: &str) -> Self {
        Self {
            rpc_url: Some(url.to_string()),
            rpc_timeout: 10,
            rpc_retries: 5,
            deployment: None,
        }
    }

    fn url(&self) -> Result<url::Url, ProtocolError> {
        let raw = self.rpc_url.as_deref().ok_or_else(|| {
            ProtocolError::RpcUrl("not set (pass --rpc-url or set ETH_RPC_URL)".into())
        })?;
        let url: url::Url = raw
            .parse()
            .map_err(|e| ProtocolError::RpcUrl(format!("`{raw}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ProtocolError::RpcUrl(format!(
                "`{raw}`: only http(s) endpoints are supported"
            )));
        }
        Ok(url)
    }

    /// The URL with any credentials removed, for logs and errors.
    pub fn redacted_url(&self) -> String {
        match self.url() {
            Ok(mut u) => {
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.to_string()
            }
            Err(_) => "<invalid>".into(),
        }
    }

    fn client(&self) -> Result<alloy::rpc::client::RpcClient, ProtocolError> {
        let url = self.url()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(self.rpc_timeout.max(1)))
            .connect_timeout(Duration::from_secs(self.rpc_timeout.clamp(1, 5)))
            .build()
            .map_err(|e| ProtocolError::RpcUrl(format!("HTTP client: {e}")))?;
        // The default policy only retries rate limits; connection failures and timeouts of a
        // flaky endpoint are transient too.
        let policy = alloy::transports::layers::RateLimitRetryPolicy::default().or(
            |e: &RpcError<TransportErrorKind>| {
                matches!(e, RpcError::Transport(TransportErrorKind::Custom(_)))
                    || matches!(e, RpcError::Transport(TransportErrorKind::BackendGone))
            },
        );
        let retry = RetryBackoffLayer::new_with_policy(self.rpc_retries, 300, u64::MAX, policy);
        Ok(ClientBuilder::default()
            .layer(retry)
            .http_with_client(http, url))
    }

    /// Read-only provider and the chain id it serves (one round trip proves it answers).
    pub async fn connect(&self) -> Result<(DynProvider, u64), ProtocolError> {
        let provider = ProviderBuilder::new()
            .connect_client(self.client()?)
            .erased();
        let chain = self.chain_id(&provider).await?;
        Ok((provider, chain))
    }

    /// Provider that signs and sends transactions with `signer`.
    pub async fn connect_with_wallet(
        &self,
        signer: PrivateKeySigner,
    ) -> Result<(DynProvider, u64), ProtocolError> {
        let provider = wallet_builder()
            .wallet(EthereumWallet::from(signer))
            .connect_client(self.client()?)
            .erased();
        let chain = self.chain_id(&provider).await?;
        Ok((provider, chain))
    }

    async fn chain_id(&self, provider: &DynProvider) -> Result<u64, ProtocolError> {
        provider
            .get_chain_id()
            .await
            .map_err(|e| ProtocolError::RpcUnreachable {
                url: self.redacted_url(),
                reason: e.to_string(),
            })
    }

    /// The deployment file for `chain_id` (`--deployment` or `deployments/<chainId>.json`),
    /// checked against the chain.
    pub fn load_deployment(&self, chain_id: u64) -> Result<Deployment, ProtocolError> {
        let path = self
            .deployment
            .clone()
            .unwrap_or_else(|| Deployment::default_path(chain_id));
        Deployment::load_for_chain(&path, chain_id)
    }
}

/// Fillers of [`wallet_builder`]: gas estimate, pending-count nonce, chain id.
pub type WalletFillers = JoinFill<
    JoinFill<JoinFill<alloy::providers::Identity, GasFiller>, NonceFiller<SimpleNonceManager>>,
    ChainIdFiller,
>;

/// The filler stack of every provider that sends transactions: gas estimation, the chain id, and
/// the nonce read from the node's pending count for each transaction.
///
/// alloy's default (cached) nonce manager prepares the nonce concurrently with the gas estimate
/// and keeps it even when the estimate fails (a call that would revert), so the next transaction
/// gets a nonce with a gap before it and waits in the pool forever. Reading the pending count
/// each time costs one request per transaction and cannot leave a gap; two sends racing from one
/// key can collide, which the node refuses with an error the sender sees and retries.
pub fn wallet_builder() -> ProviderBuilder<alloy::providers::Identity, WalletFillers> {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_name_the_flag() {
        let mut a = RpcArgs::for_url("not a url");
        assert!(a.client().unwrap_err().to_string().contains("--rpc-url"));
        a.rpc_url = Some("ws://127.0.0.1:1".into());
        assert!(a.client().unwrap_err().to_string().contains("only http"));
        a.rpc_url = None;
        assert!(a.client().unwrap_err().to_string().contains("ETH_RPC_URL"));
    }

    #[test]
    fn redacts_credentials() {
        let a = RpcArgs::for_url("https://user:secret@rpc.example.org/v1");
        assert!(!a.redacted_url().contains("secret"));
    }

    #[tokio::test]
    async fn unreachable_rpc_is_reported_after_bounded_retries() {
        // Port 9 (discard) on loopback: nothing listens, connection refused.
        let mut a = RpcArgs::for_url("http://127.0.0.1:9");
        a.rpc_retries = 2;
        a.rpc_timeout = 1;
        let started = std::time::Instant::now();
        let e = a.connect().await.unwrap_err().to_string();
        assert!(
            e.contains("unreachable") && e.contains("127.0.0.1:9"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
