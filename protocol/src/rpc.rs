//! RPC access shared by every service: HTTP with a per-request timeout under a retry layer with
//! backoff, so a flaky endpoint is retried a bounded number of times and then reported.

use crate::{Deployment, ProtocolError};
use alloy::network::Ethereum;
use alloy::network::EthereumWallet;
use alloy::providers::fillers::{
    ChainIdFiller, FillerControlFlow, GasFillable, GasFiller, JoinFill, NonceFiller,
    SimpleNonceManager, TxFiller,
};
use alloy::providers::{DynProvider, Provider, ProviderBuilder, SendableTx};
use alloy::rpc::client::ClientBuilder;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::layers::RetryBackoffLayer;
use alloy::transports::TransportResult;
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

/// Fillers of [`wallet_builder`]: gas estimate with headroom, pending-count nonce, chain id.
pub type WalletFillers = JoinFill<
    JoinFill<
        JoinFill<alloy::providers::Identity, HeadroomGasFiller>,
        NonceFiller<SimpleNonceManager>,
    >,
    ChainIdFiller,
>;

/// Gas limit sent for an estimate: 20% more plus 50,000.
///
/// An estimate is exact for the state and block it was simulated in, and a transaction is mined
/// in a later block. Staking's validator stake history is keyed by block timestamp: a stake
/// estimated while the pending block still has the last checkpoint's timestamp updates that
/// checkpoint in the simulation, but pushes a new one when mined a second later (two fresh
/// storage slots, about 44,000 gas more), and the exact estimate runs out of gas. The unused part
/// of a limit is not charged.
pub fn gas_with_headroom(estimate: u64) -> u64 {
    estimate.saturating_add(estimate / 5).saturating_add(50_000)
}

/// alloy's [`GasFiller`] (fees and the estimate) with [`gas_with_headroom`] applied to the gas
/// limit when it was estimated; a limit the caller set is sent as it is.
#[derive(Clone, Debug, Default)]
pub struct HeadroomGasFiller(GasFiller);

impl TxFiller<Ethereum> for HeadroomGasFiller {
    /// The inner filler's values, and whether the gas limit was estimated.
    type Fillable = (GasFillable, bool);

    fn status(&self, tx: &TransactionRequest) -> FillerControlFlow {
        TxFiller::<Ethereum>::status(&self.0, tx)
    }

    fn fill_sync(&self, _tx: &mut SendableTx<Ethereum>) {}

    async fn prepare<P: Provider<Ethereum>>(
        &self,
        provider: &P,
        tx: &TransactionRequest,
    ) -> TransportResult<Self::Fillable> {
        let estimated = tx.gas.is_none();
        Ok((self.0.prepare(provider, tx).await?, estimated))
    }

    async fn fill(
        &self,
        (fillable, estimated): Self::Fillable,
        tx: SendableTx<Ethereum>,
    ) -> TransportResult<SendableTx<Ethereum>> {
        let fillable = match fillable {
            GasFillable::Legacy {
                gas_limit,
                gas_price,
            } if estimated => GasFillable::Legacy {
                gas_limit: gas_with_headroom(gas_limit),
                gas_price,
            },
            GasFillable::Eip1559 {
                gas_limit,
                estimate,
            } if estimated => GasFillable::Eip1559 {
                gas_limit: gas_with_headroom(gas_limit),
                estimate,
            },
            other => other,
        };
        self.0.fill(fillable, tx).await
    }
}

/// The filler stack of every provider that sends transactions: gas estimation with headroom
/// ([`gas_with_headroom`]), the chain id, and the nonce read from the node's pending count for
/// each transaction.
///
/// alloy's default (cached) nonce manager prepares the nonce concurrently with the gas estimate
/// and keeps it even when the estimate fails (a call that would revert), so the next transaction
/// gets a nonce with a gap before it and waits in the pool forever. Reading the pending count
/// each time costs one request per transaction and cannot leave a gap; two sends racing from one
/// key can collide, which the node refuses with an error the sender sees and retries.
pub fn wallet_builder() -> ProviderBuilder<alloy::providers::Identity, WalletFillers> {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .filler(HeadroomGasFiller::default())
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

    async fn filled_gas(fillable: GasFillable, estimated: bool) -> u64 {
        let tx = HeadroomGasFiller::default()
            .fill(
                (fillable, estimated),
                SendableTx::Builder(TransactionRequest::default()),
            )
            .await
            .unwrap();
        tx.as_builder().unwrap().gas.unwrap()
    }

    #[tokio::test]
    async fn estimated_gas_gets_headroom_and_a_set_limit_is_kept() {
        let fees = alloy::providers::utils::Eip1559Estimation {
            max_fee_per_gas: 2,
            max_priority_fee_per_gas: 1,
        };
        let eip1559 = |gas_limit| GasFillable::Eip1559 {
            gas_limit,
            estimate: fees,
        };
        // 136,712 is the devnet's stake estimate simulated in the old second: the mined stake
        // needed ~159,000 and reverted out of gas
        assert_eq!(filled_gas(eip1559(136_712), true).await, 214_054);
        assert!(gas_with_headroom(136_712) > 159_000 + 20_000);
        assert_eq!(filled_gas(eip1559(136_712), false).await, 136_712);
        let legacy = GasFillable::Legacy {
            gas_limit: 1_000_000,
            gas_price: 1,
        };
        assert_eq!(filled_gas(legacy, true).await, 1_250_000);
        assert_eq!(gas_with_headroom(u64::MAX), u64::MAX);
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
