//! `dn rewards claim`: every reported epoch's reward of the wallet, with the indexer's Merkle
//! proofs (`GET /epochs`, `GET /epochs/{n}/rewards/{address}`), through `Settlement.claim`. The
//! chain decides what is claimable: an epoch counts once its report is posted
//! (`epochRecord(n).postedAt != 0`) and its veto window has closed (`claimsOpenAt(n)`), until
//! `isClaimed(n, account)`.

use alloy::primitives::{Address, B256, U256};
use anyhow::{anyhow, bail, Context, Result};
use protocol::bindings::ISettlement;
use serde_json::{json, Value};

use crate::chain::{self, progress, transact, Contract};
use crate::cli::ClaimArgs;
use crate::indexer::Indexer;
use crate::output::{amount_json, Report};
use crate::units::format_dn;

/// The epochs of an indexer `GET /epochs` answer (`{"epochs": [{"epoch": n, ...}]}`, newest
/// first), ascending.
pub fn epochs_of(list: &Value) -> Result<Vec<u64>> {
    let arr = list["epochs"]
        .as_array()
        .ok_or_else(|| anyhow!("the indexer's /epochs answer has no `epochs` list"))?;
    let mut out = arr
        .iter()
        .map(|e| {
            e["epoch"]
                .as_u64()
                .ok_or_else(|| anyhow!("the indexer's /epochs answer has an entry without `epoch`"))
        })
        .collect::<Result<Vec<u64>>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A reward leaf with its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    /// Wei.
    pub amount: U256,
    /// Sibling hashes, bottom up.
    pub proof: Vec<B256>,
}

/// The reward of an indexer `GET /epochs/{n}/rewards/{address}` answer
/// (`{"epoch", "account", "amount": "<wei>", "proof": ["0x.."], ...}`), checked to be `account`'s
/// in `epoch`.
pub fn reward_of(v: &Value, epoch: u64, account: Address) -> Result<Reward> {
    let bad = |what: &str| anyhow!("the indexer's reward of {account} in epoch {epoch}: {what}");
    if v["epoch"].as_u64() != Some(epoch) {
        return Err(bad(&format!("it is for epoch {}", v["epoch"])));
    }
    let who: Address = v["account"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no valid `account`"))?;
    if who != account {
        return Err(bad(&format!("it is for {who}")));
    }
    let amount: U256 = v["amount"]
        .as_str()
        .and_then(|s| U256::from_str_radix(s, 10).ok())
        .ok_or_else(|| bad("`amount` is not a decimal wei string"))?;
    let proof = v["proof"]
        .as_array()
        .ok_or_else(|| bad("no `proof` list"))?
        .iter()
        .map(|p| p.as_str().and_then(|s| s.parse::<B256>().ok()))
        .collect::<Option<Vec<B256>>>()
        .ok_or_else(|| bad("`proof` holds something that is not a 32-byte hash"))?;
    Ok(Reward { amount, proof })
}

/// `dn rewards claim`
pub async fn claim(a: ClaimArgs) -> Result<Report> {
    let idx = Indexer::new(&a.indexer_url)?;
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let settlement = ISettlement::new(w.deployment.settlement, &w.provider);
    let only = a.epoch;
    let epochs = match only {
        Some(n) => vec![n],
        None => {
            let list = idx
                .get("/epochs")
                .await?
                .ok_or_else(|| anyhow!("the indexer at {} has no /epochs", a.indexer_url))?;
            epochs_of(&list)?
        }
    };
    let me = w.me;
    let mut claimed = Vec::new();
    let mut skipped = Vec::new();
    let mut total = U256::ZERO;
    for epoch in epochs {
        let skip = |reason: String| -> Result<Value> {
            if only.is_some() {
                bail!("epoch {epoch}: {reason}");
            }
            Ok(json!({"epoch": epoch, "reason": reason}))
        };
        let record = settlement
            .epochRecord(epoch)
            .call()
            .await
            .with_context(|| format!("reading Settlement.epochRecord({epoch})"))?;
        if record.postedAt == 0 {
            skipped.push(skip("its report is not posted on-chain yet".into())?);
            continue;
        }
        let opens_at: u64 = settlement
            .claimsOpenAt(epoch)
            .call()
            .await
            .with_context(|| format!("reading Settlement.claimsOpenAt({epoch})"))?
            .saturating_to();
        let now = chain::now(&w.provider).await?;
        if now < opens_at {
            skipped.push(skip(format!(
                "its report can still be vetoed for {} s (claims open at unix time {opens_at})",
                opens_at - now
            ))?);
            continue;
        }
        if settlement
            .isClaimed(epoch, me)
            .call()
            .await
            .with_context(|| format!("reading Settlement.isClaimed({epoch})"))?
        {
            skipped.push(skip(format!("{me} already claimed it"))?);
            continue;
        }
        let Some(v) = idx.get(&format!("/epochs/{epoch}/rewards/{me}")).await? else {
            skipped.push(skip(format!("no reward for {me}"))?);
            continue;
        };
        let reward = reward_of(&v, epoch, me)?;
        let leaf = protocol::powr::account_leaf(me, reward.amount);
        if !protocol::merkle::verify(&reward.proof, record.rewardsRoot, leaf) {
            bail!(
                "epoch {epoch}: the indexer's proof of {} DN does not match the posted rewards root {} (the indexer computed another report)",
                format_dn(reward.amount),
                record.rewardsRoot
            );
        }
        progress(&format!(
            "epoch {epoch}: claiming {} DN",
            format_dn(reward.amount)
        ));
        let receipt = transact(
            settlement.claim(epoch, me, reward.amount, reward.proof.clone()),
            me,
            &format!("claim(epoch {epoch})"),
            Contract::Settlement,
        )
        .await?;
        total += reward.amount;
        claimed.push(json!({
            "epoch": epoch,
            "amount": amount_json(reward.amount),
            "tx": receipt.transaction_hash.to_string(),
        }));
    }
    let mut text = String::new();
    for c in &claimed {
        text.push_str(&format!(
            "epoch {}: claimed {} DN (tx {})\n",
            c["epoch"],
            c["amount"]["dn"].as_str().unwrap_or_default(),
            c["tx"].as_str().unwrap_or_default()
        ));
    }
    if claimed.is_empty() {
        text.push_str(&format!(
            "nothing to claim for {me} ({} epoch(s) looked at)",
            skipped.len()
        ));
    } else {
        text.push_str(&format!("total {} DN", format_dn(total)));
    }
    Ok(Report::new(
        text,
        json!({
            "account": me.to_checksum(None),
            "claimed": claimed,
            "skipped": skipped,
            "total": amount_json(total),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_epoch_list() {
        // the shape of indexer/src/epoch_query.rs `epochs`: newest first
        let v = json!({"epochs": [
            {"epoch": 2, "posted": false, "on_chain": {"posted": false}},
            {"epoch": 1, "posted": true},
            {"epoch": 0, "posted": true},
        ]});
        assert_eq!(epochs_of(&v).unwrap(), vec![0, 1, 2]);
        assert_eq!(
            epochs_of(&json!({"epochs": []})).unwrap(),
            Vec::<u64>::new()
        );
        assert!(epochs_of(&json!({"nope": 1})).is_err());
        assert!(epochs_of(&json!({"epochs": [{"n": 1}]})).is_err());
    }

    #[test]
    fn reads_a_reward_and_its_proof_which_verifies() {
        let me: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap();
        let other: Address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
            .parse()
            .unwrap();
        let amount = U256::from(1_234_000_000_000_000_000u128);
        let leaves = vec![
            protocol::powr::account_leaf(me, amount),
            protocol::powr::account_leaf(other, U256::from(5)),
        ];
        let root = protocol::merkle::batch_root(&leaves);
        let proof = protocol::merkle::proof(&leaves, 0);
        // the shape of indexer/src/epoch_query.rs `reward`
        let v = json!({
            "epoch": 3,
            "account": me.to_checksum(None),
            "amount": amount.to_string(),
            "proof": proof.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "rewards_root": root.to_string(),
            "parts": {"worker": amount.to_string(), "validator": "0", "developer": "0"},
            "claimed": false,
            "claim_tx": null,
        });
        let r = reward_of(&v, 3, me).unwrap();
        assert_eq!(r.amount, amount);
        assert!(protocol::merkle::verify(
            &r.proof,
            root,
            protocol::powr::account_leaf(me, r.amount)
        ));
        let e = reward_of(&v, 4, me).unwrap_err().to_string();
        assert!(e.contains("epoch"), "{e}");
        let e = reward_of(&v, 3, other).unwrap_err().to_string();
        assert!(e.contains("it is for"), "{e}");
        let mut bad = v.clone();
        bad["amount"] = json!("1.5");
        assert!(reward_of(&bad, 3, me)
            .unwrap_err()
            .to_string()
            .contains("amount"));
        let mut bad = v.clone();
        bad["proof"] = json!(["0x12"]);
        assert!(reward_of(&bad, 3, me)
            .unwrap_err()
            .to_string()
            .contains("proof"));
    }
}
