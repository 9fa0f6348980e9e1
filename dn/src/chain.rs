//! Connecting to the chain (`--rpc-url`, the deployment file, the wallet) and sending
//! transactions: each one is dry-run first (`eth_call`), so a refusal becomes an error naming the
//! contract's custom error instead of a gas-estimation failure, then sent and awaited.

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolInterface;
use anyhow::{anyhow, Context, Result};
use protocol::bindings::{
    DNToken, IAuditManager, IModelRegistry, ISettlement, IStaking, ITaskManager,
};
use protocol::rpc::RpcArgs;
use protocol::wallet::{refuse_dev_key_off_devnet, KeyArgs};
use protocol::Deployment;
use std::time::Duration;

use crate::units::format_dn;

/// How long a sent transaction may wait for its receipt.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A read-only view of one deployment.
pub struct Reader {
    /// The provider.
    pub provider: DynProvider,
    /// Contract addresses.
    pub deployment: Deployment,
}

/// A view that signs with the user's key.
pub struct Wallet {
    /// Provider signing with the key.
    pub provider: DynProvider,
    /// Contract addresses.
    pub deployment: Deployment,
    /// The key's address.
    pub me: Address,
}

/// Connects read-only and loads the deployment of the chain `--rpc-url` serves.
pub async fn reader(rpc: &RpcArgs) -> Result<Reader> {
    let (provider, chain_id) = rpc.connect().await?;
    let deployment = rpc.load_deployment(chain_id)?;
    Ok(Reader {
        provider,
        deployment,
    })
}

/// Connects with the key of `key` (refusing anvil's public keys off a devnet) and loads the
/// deployment.
pub async fn wallet(rpc: &RpcArgs, key: &KeyArgs) -> Result<Wallet> {
    let signer = key.signer()?;
    let me = signer.address();
    let (provider, chain_id) = rpc.connect_with_wallet(signer.clone()).await?;
    refuse_dev_key_off_devnet(&signer, chain_id)?;
    let deployment = rpc.load_deployment(chain_id)?;
    Ok(Wallet {
        provider,
        deployment,
        me,
    })
}

/// The contracts whose custom errors a revert is decoded against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// DNToken (ERC-20 errors).
    Token,
    /// Staking.
    Staking,
    /// ModelRegistry.
    Registry,
    /// TaskManager.
    TaskManager,
    /// AuditManager.
    AuditManager,
    /// Settlement.
    Settlement,
}

impl Contract {
    const ALL: [Contract; 6] = [
        Contract::TaskManager,
        Contract::Registry,
        Contract::Staking,
        Contract::AuditManager,
        Contract::Settlement,
        Contract::Token,
    ];

    /// The contract's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Contract::Token => "DNToken",
            Contract::Staking => "Staking",
            Contract::Registry => "ModelRegistry",
            Contract::TaskManager => "TaskManager",
            Contract::AuditManager => "AuditManager",
            Contract::Settlement => "Settlement",
        }
    }

    fn decode(self, data: &[u8]) -> Option<String> {
        fn as_text<E: SolInterface + std::fmt::Debug>(data: &[u8]) -> Option<String> {
            E::abi_decode(data)
                .ok()
                .map(|e| tidy_error(&format!("{e:?}")))
        }
        match self {
            Contract::Token => as_text::<DNToken::DNTokenErrors>(data),
            Contract::Staking => as_text::<IStaking::IStakingErrors>(data),
            Contract::Registry => as_text::<IModelRegistry::IModelRegistryErrors>(data),
            Contract::TaskManager => as_text::<ITaskManager::ITaskManagerErrors>(data),
            Contract::AuditManager => as_text::<IAuditManager::IAuditManagerErrors>(data),
            Contract::Settlement => as_text::<ISettlement::ISettlementErrors>(data),
        }
    }
}

/// `NotModelDeveloper(NotModelDeveloper { modelId: 1, .. })` (an error enum's Debug) becomes
/// `NotModelDeveloper { modelId: 1, .. }`; `EmptyInput(EmptyInput)` becomes `EmptyInput`.
pub fn tidy_error(debug: &str) -> String {
    if let Some((name, rest)) = debug.split_once('(') {
        if let Some(inner) = rest.strip_suffix(')') {
            if inner == name || inner.starts_with(&format!("{name} {{")) {
                return inner.to_string();
            }
        }
    }
    debug.to_string()
}

/// The revert data of a failed call, decoded: `(contract whose error it is, error)`, trying
/// `first` before the others; `Error(string)` and panics as text; unknown data as hex.
pub fn decode_revert(data: &[u8], first: Contract) -> (Option<Contract>, String) {
    let order = std::iter::once(first).chain(Contract::ALL.into_iter().filter(|c| *c != first));
    for c in order {
        if let Some(text) = c.decode(data) {
            return (Some(c), text);
        }
    }
    if data.is_empty() {
        return (None, "reverted without a reason".into());
    }
    if let Some(reason) = alloy::sol_types::decode_revert_reason(data) {
        if !reason.is_empty() {
            return (None, reason);
        }
    }
    (
        None,
        format!("reverted with data {}", Bytes::from(data.to_vec())),
    )
}

/// The error of a refused `what` (e.g. `ModelRegistry.setPrice`) on `contract`: the decoded
/// revert when the node returned one, else the transport error.
pub fn refused(e: &alloy::contract::Error, what: &str, contract: Contract) -> anyhow::Error {
    match e.as_revert_data() {
        Some(data) => {
            let (by, text) = decode_revert(&data, contract);
            let who = by.unwrap_or(contract).name();
            if by.is_some_and(|b| b != contract) {
                anyhow!("{who} refused {what}: {text}")
            } else {
                anyhow!("{} refused {what}: {text}", contract.name())
            }
        }
        None => anyhow!("{what}: {}", one_line(&e.to_string())),
    }
}

/// A message on one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Dry-runs `call` from `from` (a refusal becomes [`refused`]), sends it and waits for a
/// successful receipt. `what` names the call in messages (`TaskManager.submitTask`).
pub async fn transact<P, D>(
    call: CallBuilder<P, D>,
    from: Address,
    what: &str,
    contract: Contract,
) -> Result<TransactionReceipt>
where
    P: Provider,
    D: CallDecoder,
{
    let call = call.from(from);
    if let Err(e) = call.call().await {
        return Err(refused(&e, what, contract));
    }
    let pending = call.send().await.map_err(|e| refused(&e, what, contract))?;
    let hash = *pending.tx_hash();
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .with_context(|| format!("{what}: waiting for the receipt of {hash}"))?;
    if !receipt.status() {
        anyhow::bail!("{what} reverted on-chain (tx {hash})");
    }
    Ok(receipt)
}

/// Makes sure `spender` may pull `amount` DN from the wallet: approves exactly `amount` when
/// the allowance is short (progress on stderr). Returns the approval's transaction, if one was
/// needed.
pub async fn ensure_allowance(
    w: &Wallet,
    spender: Address,
    spender_name: &str,
    amount: U256,
) -> Result<Option<B256>> {
    if amount.is_zero() {
        return Ok(None);
    }
    let token = DNToken::new(w.deployment.token, &w.provider);
    let have = token
        .allowance(w.me, spender)
        .call()
        .await
        .context("reading the DN allowance")?;
    if have >= amount {
        return Ok(None);
    }
    let balance = token
        .balanceOf(w.me)
        .call()
        .await
        .context("reading the DN balance")?;
    if balance < amount {
        anyhow::bail!(
            "{} holds {} DN, less than the {} DN the {spender_name} needs",
            w.me,
            format_dn(balance),
            format_dn(amount)
        );
    }
    progress(&format!(
        "approving {} DN for the {spender_name}",
        format_dn(amount)
    ));
    let r = transact(
        token.approve(spender, amount),
        w.me,
        "DNToken.approve",
        Contract::Token,
    )
    .await?;
    Ok(Some(r.transaction_hash))
}

/// The chain's time: the latest block's timestamp.
pub async fn now(provider: &DynProvider) -> Result<u64> {
    Ok(provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .context("reading the latest block")?
        .ok_or_else(|| anyhow!("the node has no latest block"))?
        .header
        .timestamp)
}

/// A progress line on stderr (stdout carries only the result).
pub fn progress(msg: &str) {
    eprintln!("{msg}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError;

    #[test]
    fn tidies_error_debug() {
        assert_eq!(
            tidy_error("NotModelDeveloper(NotModelDeveloper { modelId: 1, caller: 0x00 })"),
            "NotModelDeveloper { modelId: 1, caller: 0x00 }"
        );
        assert_eq!(tidy_error("EmptyInput(EmptyInput)"), "EmptyInput");
        assert_eq!(tidy_error("plain"), "plain");
    }

    #[test]
    fn decodes_custom_errors_by_contract() {
        let data = IModelRegistry::NotModelDeveloper {
            modelId: 7,
            caller: Address::repeat_byte(1),
        }
        .abi_encode();
        let (by, text) = decode_revert(&data, Contract::Registry);
        assert_eq!(by, Some(Contract::Registry));
        assert!(text.starts_with("NotModelDeveloper {"), "{text}");
        assert!(text.contains("modelId: 7"), "{text}");
        // an error of another contract (the token, under a stake call) is still named
        let data = DNToken::ERC20InsufficientBalance {
            sender: Address::ZERO,
            balance: U256::from(1),
            needed: U256::from(2),
        }
        .abi_encode();
        let (by, text) = decode_revert(&data, Contract::Staking);
        assert_eq!(by, Some(Contract::Token));
        assert!(text.starts_with("ERC20InsufficientBalance"), "{text}");
        let (by, text) = decode_revert(&[0xde, 0xad, 0xbe, 0xef], Contract::Staking);
        assert_eq!(by, None);
        assert!(text.contains("0xdeadbeef"), "{text}");
        assert_eq!(
            decode_revert(&[], Contract::Token).1,
            "reverted without a reason"
        );
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
