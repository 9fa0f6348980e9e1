//! `dn stake | unstake | withdraw | balance`: the Staking contract (stake per role, an
//! unbonding queue that stays slashable until withdrawn) and the wallet's DN.

use alloy::primitives::U256;
use alloy::providers::Provider;
use anyhow::{bail, Context, Result};
use protocol::bindings::{DNToken, IStaking, ITaskManager};
use serde_json::json;

use crate::chain::{self, progress, transact, Contract};
use crate::cli::{BalanceArgs, Role, StakeArgs, UnstakeArgs, WalletArgs};
use crate::output::{amount_json, duration_words, relative, Report};
use crate::units::format_dn;

async fn now(p: &alloy::providers::DynProvider) -> u64 {
    p.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .ok()
        .flatten()
        .map(|b| b.header.timestamp)
        .unwrap_or_default()
}

/// `dn stake`
pub async fn stake(a: StakeArgs) -> Result<Report> {
    if a.amount.is_zero() {
        bail!("AMOUNT is 0");
    }
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let d = w.deployment.clone();
    let staking = IStaking::new(d.staking, &w.provider);
    let role = a.role.id();
    let current = staking
        .stakeOf(w.me, role)
        .call()
        .await
        .context("reading Staking.stakeOf")?;
    let minimum = staking
        .minStake(role)
        .call()
        .await
        .context("reading Staking.minStake")?;
    if current + a.amount < minimum {
        bail!(
            "a {} stake must be at least {} DN; {} + {} DN is {} DN",
            a.role.name(),
            format_dn(minimum),
            format_dn(current),
            format_dn(a.amount),
            format_dn(current + a.amount)
        );
    }
    let approve_tx = chain::ensure_allowance(&w, d.staking, "Staking contract", a.amount).await?;
    progress(&format!(
        "staking {} DN as a {}",
        format_dn(a.amount),
        a.role.name()
    ));
    let receipt = transact(
        staking.stake(role, a.amount),
        w.me,
        &format!("stake({}, {} DN)", a.role.name(), format_dn(a.amount)),
        Contract::Staking,
    )
    .await?;
    let new_stake = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<IStaking::Staked>().ok())
        .map(|l| l.inner.data.newStake)
        .unwrap_or(current + a.amount);
    Ok(Report::new(
        format!(
            "staked {} DN as a {}: stake now {} DN\n  tx {}",
            format_dn(a.amount),
            a.role.name(),
            format_dn(new_stake),
            receipt.transaction_hash
        ),
        json!({
            "account": w.me.to_checksum(None),
            "role": a.role.name(),
            "amount": amount_json(a.amount),
            "stake": amount_json(new_stake),
            "transactions": {
                "approve": approve_tx.map(|h| h.to_string()),
                "stake": receipt.transaction_hash.to_string(),
            },
        }),
    ))
}

/// `dn unstake`
pub async fn unstake(a: UnstakeArgs) -> Result<Report> {
    if a.amount.is_zero() {
        bail!("AMOUNT is 0");
    }
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let staking = IStaking::new(w.deployment.staking, &w.provider);
    let role = a.role.id();
    let current = staking
        .stakeOf(w.me, role)
        .call()
        .await
        .context("reading Staking.stakeOf")?;
    if a.amount > current {
        bail!(
            "{} has {} DN staked as a {}, less than {} DN",
            w.me,
            format_dn(current),
            a.role.name(),
            format_dn(a.amount)
        );
    }
    let minimum = staking
        .minStake(role)
        .call()
        .await
        .context("reading Staking.minStake")?;
    let remaining = current - a.amount;
    if !remaining.is_zero() && remaining < minimum {
        bail!(
            "unstaking {} DN would leave {} DN of {} stake, under the {} DN minimum: unstake all {} DN or at most {} DN",
            format_dn(a.amount),
            format_dn(remaining),
            a.role.name(),
            format_dn(minimum),
            format_dn(current),
            format_dn(current.saturating_sub(minimum))
        );
    }
    let receipt = transact(
        staking.requestUnstake(role, a.amount),
        w.me,
        &format!(
            "requestUnstake({}, {} DN)",
            a.role.name(),
            format_dn(a.amount)
        ),
        Contract::Staking,
    )
    .await?;
    let ev = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<IStaking::UnstakeRequested>().ok())
        .map(|l| l.inner.data)
        .context("the receipt has no UnstakeRequested event")?;
    let now = now(&w.provider).await;
    Ok(Report::new(
        format!(
            "unbonding {} DN of {} stake: withdrawable at {} ({}; `dn withdraw`), slashable until then; stake now {} DN\n  tx {}",
            format_dn(a.amount),
            a.role.name(),
            ev.releaseAt,
            relative(ev.releaseAt, now),
            format_dn(ev.newStake),
            receipt.transaction_hash
        ),
        json!({
            "account": w.me.to_checksum(None),
            "role": a.role.name(),
            "amount": amount_json(a.amount),
            "stake": amount_json(ev.newStake),
            "release_at": ev.releaseAt,
            "tx": receipt.transaction_hash.to_string(),
        }),
    ))
}

/// `dn withdraw`
pub async fn withdraw(a: WalletArgs) -> Result<Report> {
    let w = chain::wallet(&a.rpc, &a.key).await?;
    let staking = IStaking::new(w.deployment.staking, &w.provider);
    let queue = staking
        .unbondingsOf(w.me)
        .call()
        .await
        .context("reading Staking.unbondingsOf")?;
    let now = now(&w.provider).await;
    if queue.is_empty() {
        bail!(
            "{} has nothing unbonding (`dn unstake AMOUNT` starts it)",
            w.me
        );
    }
    if !queue.iter().any(|u| u.releaseAt <= now) {
        let next = queue.iter().map(|u| u.releaseAt).min().unwrap_or_default();
        bail!(
            "nothing to withdraw yet: the first of {} unbonding entr{} is released at {next} (in {})",
            queue.len(),
            if queue.len() == 1 { "y" } else { "ies" },
            duration_words(next.saturating_sub(now))
        );
    }
    let receipt = transact(staking.withdraw(), w.me, "withdraw()", Contract::Staking).await?;
    let amount = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<IStaking::Withdrawn>().ok())
        .map(|l| l.inner.data.amount)
        .unwrap_or_default();
    let left = queue.iter().filter(|u| u.releaseAt > now).count();
    Ok(Report::new(
        format!(
            "withdrew {} DN ({left} unbonding entr{} left)\n  tx {}",
            format_dn(amount),
            if left == 1 { "y" } else { "ies" },
            receipt.transaction_hash
        ),
        json!({
            "account": w.me.to_checksum(None),
            "amount": amount_json(amount),
            "still_unbonding": left,
            "tx": receipt.transaction_hash.to_string(),
        }),
    ))
}

/// `dn balance`
pub async fn balance(a: BalanceArgs) -> Result<Report> {
    let (provider, deployment, who) = match a.address {
        Some(addr) => {
            let r = chain::reader(&a.wallet.rpc).await?;
            (r.provider, r.deployment, addr)
        }
        None => {
            let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
            (w.provider, w.deployment, w.me)
        }
    };
    let token = DNToken::new(deployment.token, &provider);
    let staking = IStaking::new(deployment.staking, &provider);
    let tm = ITaskManager::new(deployment.task_manager, &provider);
    let dn = token
        .balanceOf(who)
        .call()
        .await
        .context("reading DNToken.balanceOf")?;
    let eth = provider
        .get_balance(who)
        .await
        .context("reading the ETH balance")?;
    let worker = staking
        .stakeOf(who, Role::Worker.id())
        .call()
        .await
        .context("reading Staking.stakeOf")?;
    let validator = staking
        .stakeOf(who, Role::Validator.id())
        .call()
        .await
        .context("reading Staking.stakeOf")?;
    let queue = staking
        .unbondingsOf(who)
        .call()
        .await
        .context("reading Staking.unbondingsOf")?;
    let payout = tm
        .payoutOf(who)
        .call()
        .await
        .context("reading TaskManager.payoutOf")?;
    let now = now(&provider).await;
    let unbonding: U256 = queue.iter().map(|u| U256::from(u.amount)).sum();
    let mut text = format!(
        "{who}\n  DN               {}\n  ETH (gas)        {}\n  worker stake     {}\n  validator stake  {}\n  unbonding        {}\n  payout           {} (TaskManager.payoutOf)",
        format_dn(dn),
        format_dn(eth),
        format_dn(worker),
        format_dn(validator),
        format_dn(unbonding),
        format_dn(payout)
    );
    for u in &queue {
        text.push_str(&format!(
            "\n    {} DN ({}) released at {} ({})",
            format_dn(U256::from(u.amount)),
            if u.role == Role::Validator.id() {
                "validator"
            } else {
                "worker"
            },
            u.releaseAt,
            relative(u.releaseAt, now)
        ));
    }
    let entries: Vec<_> = queue
        .iter()
        .map(|u| {
            json!({
                "role": if u.role == Role::Validator.id() { "validator" } else { "worker" },
                "amount": amount_json(U256::from(u.amount)),
                "release_at": u.releaseAt,
                "withdrawable": u.releaseAt <= now,
            })
        })
        .collect();
    Ok(Report::new(
        text,
        json!({
            "address": who.to_checksum(None),
            "dn": amount_json(dn),
            "eth": {"eth": format_dn(eth), "wei": eth.to_string()},
            "stake": {"worker": amount_json(worker), "validator": amount_json(validator)},
            "unbonding": amount_json(unbonding),
            "unbondings": entries,
            "payout": amount_json(payout),
        }),
    ))
}
