//! Trust weights and PoWR (Proof of Worthy Results) settlement: the pure, integer-only formulas
//! every validator runs over an epoch's facts, so all of them sign the same epoch report.
//!
//! Fixed point: rates, qualities, trust and audit rates are WAD (`1e18` = 1.0) in `u64`; verdict
//! qualities are ppm (`1e6` = 1.0, as `TaskFinalized.quality`); token amounts are wei in `U256`.
//! Every division rounds toward zero (floor for the non-negative values it is applied to), and
//! no floating point is used, so results are identical on every machine. The fractional powers
//! of the epoch quality go through a fixed-point `log2` / `exp2` pair (see [`log2_wad`],
//! [`exp2_wad`]) that is accurate to about `1e-16`.
//!
//! Formulas (`../shared/DESIGN.md`, "Formulas"):
//! - rates: completion `c = (on_time+1)/(assigned+2)`, accuracy `a = (Σ verdict quality + 1) /
//!   (audited + 2)` over the epoch (a pass of quality 1.0 counts 1, a failed audit 0; the epoch
//!   computation, `crate::epoch`, replaces it with `(quality + 1) / (audited + 1)` over the
//!   worker's decayed audit record, `crate::epoch::AuditRecord`), uptime `u = heartbeat
//!   epochs / window`, speed `s = clamp(1 - p50 / responseWindow, 0, 1)`, `0.5` with no commits;
//! - epoch quality `q = c^0.3 · a^0.4 · u^0.15 · s^0.15`;
//! - trust `T_e = 0.8·T_{e-1} + 0.2·q`, `T_0 = 0.2`, a slash zeroes it for `K` epochs;
//! - PoWR score `S_i = Σ_tasks computeUnits · quality · T_i`, worker rewards `budget · S_i / ΣS`
//!   with largest-remainder rounding (they sum to the budget exactly);
//! - validator reliability `r = (done + 1) / (done + missed + 2)` (verdicts and dispute votes
//!   posted vs. deadlines missed), validator reward weight `stake · r` (0 when slashed as a
//!   validator);
//! - audit rate `p_i = max(p_min, p_0 · (1 - T_i))`;
//! - emission budget `E(e) = min(E_0 · decay^e, cap - supply)` (same steps as `Settlement.sol`);
//! - Merkle leaves `keccak256(bytes.concat(keccak256(abi.encode(address, uint256))))`, sorted by
//!   address, tree shape of [`crate::merkle`], verifiable with OpenZeppelin `MerkleProof`.

use std::collections::BTreeMap;

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::sol_types::{Eip712Domain, SolStruct, SolValue};

use crate::merkle;

/// 1.0 in WAD fixed point.
pub const WAD: u64 = 1_000_000_000_000_000_000;
/// 1.0 in ppm (the unit of `TaskFinalized.quality` and verdict scores).
pub const PPM: u64 = 1_000_000;
/// `ln(2)` in WAD, rounded down.
const LN2_WAD: u128 = 693_147_180_559_945_309;
const WAD128: u128 = WAD as u128;

/// Errors of the PoWR computation: each names the input that was inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowrError {
    /// A count that must not exceed another does (e.g. `on_time > assigned`).
    #[error("inconsistent epoch facts: {field} = {value} exceeds {limit_name} = {limit}")]
    Inconsistent {
        /// Field that is too large.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Name of the bound.
        limit_name: &'static str,
        /// The bound.
        limit: u64,
    },
    /// A divisor that must be positive is zero.
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// A parameter is outside its range.
    #[error("invalid PoWR parameter {name} = {value}: {why}")]
    Param {
        /// Parameter name.
        name: &'static str,
        /// Its value.
        value: u128,
        /// The rule it breaks.
        why: &'static str,
    },
    /// The same account appears twice where accounts must be unique.
    #[error("account {0} appears twice")]
    DuplicateAccount(Address),
    /// An intermediate product overflowed 256 bits.
    #[error("overflow computing {0}")]
    Overflow(&'static str),
}

// ------------------------------------------------------------------ parameters

/// Protocol parameters of the trust and reward formulas (defaults from DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PowrParams {
    /// Exponents of `c, a, u, s` in the epoch quality, per mille; they sum to 1000.
    pub quality_exponents_permille: [u32; 4],
    /// Share of the previous trust kept each epoch (WAD): 0.8.
    pub trust_keep_wad: u64,
    /// Trust of an address never seen before (WAD): 0.2.
    pub initial_trust_wad: u64,
    /// Epochs a slashed node's trust stays at 0, counting the epoch of the slash: 4.
    pub slash_zero_epochs: u32,
    /// Audit rate of a node with trust 0 (WAD): 0.3.
    pub audit_base_wad: u64,
    /// Audit rate floor (WAD): 0.02, see [`min_audit_rate_wad`].
    pub audit_min_wad: u64,
}

impl Default for PowrParams {
    fn default() -> Self {
        Self {
            quality_exponents_permille: [300, 400, 150, 150],
            trust_keep_wad: WAD / 10 * 8,
            initial_trust_wad: WAD / 10 * 2,
            slash_zero_epochs: 4,
            audit_base_wad: WAD / 10 * 3,
            audit_min_wad: WAD / 100 * 2,
        }
    }
}

impl PowrParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), PowrError> {
        let sum: u32 = self.quality_exponents_permille.iter().sum();
        if sum != 1000 {
            return Err(PowrError::Param {
                name: "quality_exponents_permille",
                value: u128::from(sum),
                why: "exponents must sum to 1000 per mille",
            });
        }
        for (name, v) in [
            ("trust_keep_wad", self.trust_keep_wad),
            ("initial_trust_wad", self.initial_trust_wad),
            ("audit_base_wad", self.audit_base_wad),
            ("audit_min_wad", self.audit_min_wad),
        ] {
            if v > WAD {
                return Err(PowrError::Param {
                    name,
                    value: u128::from(v),
                    why: "must be <= 1e18 (1.0)",
                });
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ rates

/// What the chain says about one node in one epoch (gathered by the indexer from events).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeEpochFacts {
    /// Tasks assigned to the node whose deadline fell in the epoch.
    pub assigned: u64,
    /// Of those, committed before the deadline.
    pub on_time: u64,
    /// Of its commits, how many were audited (verdict posted).
    pub audited: u64,
    /// Audits the node passed.
    pub passed: u64,
    /// Sum of the quality scores (ppm) of the passed audits; at most `passed * 1e6`.
    pub quality_sum_ppm: u64,
    /// Epochs of the last `window` with a heartbeat or an on-time commit.
    pub heartbeat_epochs_in_window: u32,
    /// Length `W` of the uptime window, in epochs (> 0).
    pub window: u32,
    /// Seconds from assignment to commit of each on-time commit.
    pub latencies_secs: Vec<u32>,
    /// TaskManager's response window in seconds (> 0).
    pub response_window_secs: u32,
    /// A fraud of this node was proven (slashed) during the epoch.
    pub slashed: bool,
}

/// The four per-epoch rates of a node, each in WAD (`[0, 1e18]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    /// `(on_time + 1) / (assigned + 2)`.
    pub completion: u64,
    /// `(quality_sum + 1) / (audited + 2)`, quality in units of 1.0.
    pub accuracy: u64,
    /// `heartbeat_epochs_in_window / window`.
    pub uptime: u64,
    /// `clamp(1 - p50 / response_window, 0, 1)`; 0.5 without any commit.
    pub speed: u64,
}

fn check_le(
    field: &'static str,
    value: u64,
    limit_name: &'static str,
    limit: u64,
) -> Result<(), PowrError> {
    if value > limit {
        return Err(PowrError::Inconsistent {
            field,
            value,
            limit_name,
            limit,
        });
    }
    Ok(())
}

/// `num * WAD / den`, floored; callers guarantee `num <= den` so it fits `u64`.
fn ratio_wad(num: u128, den: u128) -> u64 {
    // num <= den, so the quotient is <= WAD < u64::MAX.
    (num * WAD128 / den) as u64
}

impl NodeEpochFacts {
    /// The node's Beta-posterior rates for the epoch. Rounding: each rate is floored to WAD.
    /// The p50 latency is the lower median (element `(n-1)/2` of the sorted latencies).
    pub fn rates(&self) -> Result<Rates, PowrError> {
        check_le("on_time", self.on_time, "assigned", self.assigned)?;
        check_le("passed", self.passed, "audited", self.audited)?;
        let max_quality = self
            .passed
            .checked_mul(PPM)
            .ok_or(PowrError::Overflow("passed * 1e6"))?;
        check_le(
            "quality_sum_ppm",
            self.quality_sum_ppm,
            "passed * 1e6",
            max_quality,
        )?;
        if self.window == 0 {
            return Err(PowrError::Zero("window"));
        }
        check_le(
            "heartbeat_epochs_in_window",
            u64::from(self.heartbeat_epochs_in_window),
            "window",
            u64::from(self.window),
        )?;
        if self.response_window_secs == 0 {
            return Err(PowrError::Zero("response_window_secs"));
        }

        let completion = ratio_wad(u128::from(self.on_time) + 1, u128::from(self.assigned) + 2);
        let ppm = u128::from(PPM);
        let accuracy = ratio_wad(
            u128::from(self.quality_sum_ppm) + ppm,
            (u128::from(self.audited) + 2) * ppm,
        );
        let uptime = ratio_wad(
            u128::from(self.heartbeat_epochs_in_window),
            u128::from(self.window),
        );
        let speed = match p50(&self.latencies_secs) {
            None => WAD / 2,
            Some(p) if p >= self.response_window_secs => 0,
            Some(p) => {
                let rw = u128::from(self.response_window_secs);
                ratio_wad(rw - u128::from(p), rw)
            }
        };
        Ok(Rates {
            completion,
            accuracy,
            uptime,
            speed,
        })
    }
}

/// Lower median; `None` for no samples.
fn p50(samples: &[u32]) -> Option<u32> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    Some(sorted[(sorted.len() - 1) / 2])
}

// ------------------------------------------------------------------ fixed-point log2 / exp2

/// `log2(x / 1e18) * 1e18` for `x > 0`, by the binary-digit method (normalize into `[1, 2)`
/// by exact shifts, then square 60 times reading one bit each). Truncation of each squaring
/// makes the result at most ~`1e-17` too low. Returns `None` for `x == 0`.
pub fn log2_wad(x: u128) -> Option<i128> {
    if x == 0 {
        return None;
    }
    // Integer part: shift x into [WAD, 2*WAD); both shift directions are exact or floor.
    let mut y = x;
    let mut int_part: i128 = 0;
    while y < WAD128 {
        y <<= 1;
        int_part -= 1;
    }
    while y >= 2 * WAD128 {
        y >>= 1;
        int_part += 1;
    }
    let mut result = int_part * WAD128 as i128;
    let mut delta = WAD128 / 2;
    while delta > 0 {
        // y < 2e18, so y*y < 4e36 < u128::MAX.
        y = y * y / WAD128;
        if y >= 2 * WAD128 {
            result += delta as i128;
            y >>= 1;
        }
        delta >>= 1;
    }
    Some(result)
}

/// `2^(y / 1e18) * 1e18` for `y <= 0` (positive `y` is clamped to 0, giving 1.0). Splits
/// `-y = k + f` (`k` integer, `f` in `[0,1)`), evaluates `e^(-f ln 2)` by its Taylor series in
/// WAD (terms floored, summed until a term is 0), then shifts right by `k` (floor).
pub fn exp2_wad(y: i128) -> u128 {
    if y >= 0 {
        return WAD128;
    }
    let neg = y.unsigned_abs();
    let k = neg / WAD128;
    if k >= 64 {
        return 0;
    }
    let f = neg % WAD128;
    let z = f * LN2_WAD / WAD128; // in [0, ln 2)
    let mut sum: i128 = WAD128 as i128;
    let mut term: u128 = WAD128;
    let mut n: u128 = 1;
    while term > 0 {
        term = term * z / WAD128 / n;
        if n % 2 == 1 {
            sum -= term as i128;
        } else {
            sum += term as i128;
        }
        n += 1;
    }
    // e^-z > 0.5 for z < ln 2, so sum is positive.
    (sum.max(0) as u128) >> k
}

/// Epoch quality `q = Π r_i^(w_i/1000)` in WAD: 0 when any rate with a positive exponent is 0,
/// otherwise `exp2(Σ w_i·log2(r_i) / 1000)` (the sum divided with truncation toward zero),
/// capped at 1.0.
pub fn epoch_quality(rates: &Rates, params: &PowrParams) -> u64 {
    let rs = [rates.completion, rates.accuracy, rates.uptime, rates.speed];
    let mut exponent: i128 = 0;
    for (r, w) in rs.iter().zip(params.quality_exponents_permille) {
        if w == 0 {
            continue;
        }
        match log2_wad(u128::from(*r)) {
            None => return 0,
            Some(l) => exponent += l * i128::from(w),
        }
    }
    let q = exp2_wad(exponent / 1000);
    q.min(WAD128) as u64
}

// ------------------------------------------------------------------ trust

/// A node's trust after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustState {
    /// Trust weight in WAD, `[0, 1e18]` (the value of its `trustRoot` leaf).
    pub trust_wad: u64,
    /// Epochs still to pass before the pin of a slash ends: while it is above 1 the trust stays
    /// 0; the epoch that brings it from 1 to 0 gives the node the new-node trust back.
    pub zero_epochs_left: u32,
}

impl TrustState {
    /// The state of an address never seen before: `T_0 = 0.2`, so a fresh address (including a
    /// re-registered cheater) starts low and must earn weight.
    pub fn new_node(params: &PowrParams) -> Self {
        Self {
            trust_wad: params.initial_trust_wad,
            zero_epochs_left: 0,
        }
    }
}

/// One trust step. A slash this epoch sets trust to 0 for this epoch and the next `K - 1`;
/// while pinned, the epoch's quality is ignored. The epoch after the pin starts again from the
/// new-node trust `T_0` (its history is gone, as if it came back under a new address; from 0 an
/// idle node would never be drawn again, so it would never earn its trust back, and its best
/// move would be a new address; [`crate::epoch::compute`] gives an idle node `T_0` itself).
/// Otherwise `T = (keep·T_prev + (1-keep)·q)`, floored to WAD (a convex combination, so it
/// stays in `[0, 1]`).
pub fn next_trust(
    prev: Option<TrustState>,
    quality_wad: u64,
    slashed: bool,
    params: &PowrParams,
) -> TrustState {
    let prev = prev.unwrap_or_else(|| TrustState::new_node(params));
    if slashed {
        return TrustState {
            trust_wad: 0,
            zero_epochs_left: params.slash_zero_epochs,
        };
    }
    if prev.zero_epochs_left > 1 {
        return TrustState {
            trust_wad: 0,
            zero_epochs_left: prev.zero_epochs_left - 1,
        };
    }
    let prev = if prev.zero_epochs_left == 1 {
        TrustState::new_node(params)
    } else {
        prev
    };
    let keep = u128::from(params.trust_keep_wad);
    let t = (keep * u128::from(prev.trust_wad)
        + (WAD128 - keep) * u128::from(quality_wad.min(WAD)))
        / WAD128;
    TrustState {
        trust_wad: t as u64,
        zero_epochs_left: 0,
    }
}

/// Everything computed for a node at an epoch boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeEpoch {
    /// The four rates.
    pub rates: Rates,
    /// Epoch quality `q` (WAD).
    pub quality_wad: u64,
    /// Trust after the epoch.
    pub trust: TrustState,
}

/// Rates, quality and trust of a node for one epoch; `prev` is `None` for a node never seen.
pub fn evaluate_node(
    prev: Option<TrustState>,
    facts: &NodeEpochFacts,
    params: &PowrParams,
) -> Result<NodeEpoch, PowrError> {
    let rates = facts.rates()?;
    let quality_wad = epoch_quality(&rates, params);
    let trust = next_trust(prev, quality_wad, facts.slashed, params);
    Ok(NodeEpoch {
        rates,
        quality_wad,
        trust,
    })
}

// ------------------------------------------------------------------ PoWR scores and rewards

/// A finalized task of the worker in the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalizedTask {
    /// `computeUnits` of the model (from `TaskFinalized`).
    pub compute_units: u32,
    /// The verdict's quality score (ppm) when the task was audited; `None` otherwise.
    pub verdict_quality_ppm: Option<u32>,
}

/// PoWR score `S = floor(Σ computeUnits · quality_ppm · T / 1e18)`, in compute-unit·ppm.
/// `quality_ppm` is the verdict's score (capped at 1e6) for audited tasks and the worker's
/// accuracy estimate `floor(accuracy / 1e12)` otherwise. Use the trust after this epoch's
/// update ([`NodeEpoch::trust`]), so a node slashed this epoch scores 0.
pub fn powr_score(tasks: &[FinalizedTask], accuracy_wad: u64, trust_wad: u64) -> u128 {
    let estimate = u128::from(accuracy_wad.min(WAD) / (WAD / PPM));
    let work: u128 = tasks
        .iter()
        .map(|t| {
            let q = t
                .verdict_quality_ppm
                .map_or(estimate, |v| u128::from(v).min(u128::from(PPM)));
            u128::from(t.compute_units) * q
        })
        .sum();
    // work <= 2^32 * 2^20 per task; product with trust (<= 2^60) in 256 bits.
    let s = U256::from(work) * U256::from(trust_wad.min(WAD)) / U256::from(WAD);
    s.saturating_to::<u128>()
}

/// Splits `budget` in proportion to `scores`: each account gets `floor(budget·S_i/ΣS)`, then the
/// leftover wei (fewer than the number of accounts) go one each to the largest remainders
/// `budget·S_i mod ΣS` (ties: smaller address first). The result, in input order, sums to
/// `budget` exactly unless every score is 0 (then everything is 0). A larger score never gets
/// less. Accounts must be unique.
pub fn split_budget(
    budget: U256,
    scores: &[(Address, u128)],
) -> Result<Vec<(Address, U256)>, PowrError> {
    let mut seen = std::collections::BTreeSet::new();
    for (a, _) in scores {
        if !seen.insert(*a) {
            return Err(PowrError::DuplicateAccount(*a));
        }
    }
    let total: U256 = scores.iter().map(|(_, s)| U256::from(*s)).sum();
    if total.is_zero() {
        return Ok(scores.iter().map(|(a, _)| (*a, U256::ZERO)).collect());
    }
    let mut out = Vec::with_capacity(scores.len());
    let mut rems = Vec::with_capacity(scores.len());
    let mut given = U256::ZERO;
    for (i, (a, s)) in scores.iter().enumerate() {
        let p = budget
            .checked_mul(U256::from(*s))
            .ok_or(PowrError::Overflow("budget * score"))?;
        let base = p / total;
        given += base;
        out.push((*a, base));
        rems.push((p % total, *a, i));
    }
    let leftover: usize = (budget - given).saturating_to(); // < scores.len()
    rems.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    for (_, _, i) in rems.into_iter().take(leftover) {
        out[i].1 += U256::from(1u8);
    }
    Ok(out)
}

/// Adds up several reward lists (worker, validator, developer pools) into one amount per
/// account, sorted by address, zero amounts dropped: the entries of an epoch's rewards tree.
pub fn merge_rewards<'a, I>(lists: I) -> Vec<(Address, U256)>
where
    I: IntoIterator<Item = &'a [(Address, U256)]>,
{
    let mut acc: BTreeMap<Address, U256> = BTreeMap::new();
    for list in lists {
        for (a, v) in list {
            *acc.entry(*a).or_default() += *v;
        }
    }
    acc.into_iter().filter(|(_, v)| !v.is_zero()).collect()
}

// ------------------------------------------------------------------ validator rewards

/// A validator's reliability in an epoch, `r = (done + 1) / (done + missed + 2)` in WAD
/// (floored): the Beta-posterior rate of the deadlines it met, `done` being the verdicts it
/// signed and the dispute votes it cast, `missed` the audit and vote deadlines it let pass
/// (`DeadlineMissed`). A validator without either keeps the prior 0.5.
pub fn validator_reliability_wad(done: u64, missed: u64) -> u64 {
    let num = u128::from(done) + 1;
    // done + 1 <= done + missed + 2, so the ratio is below 1.0.
    ratio_wad(num, num + u128::from(missed) + 1)
}

/// A validator's share weight in the validators' pool: `floor(stake · r / 1e18)` (in wei), 0 when
/// it was slashed as a validator in the epoch (false accusation or lazy approval). Saturates at
/// `u128::MAX`, far above any stake the token cap allows.
pub fn validator_weight(stake: U256, reliability_wad: u64, slashed: bool) -> u128 {
    if slashed {
        return 0;
    }
    let w = stake.saturating_mul(U256::from(reliability_wad.min(WAD))) / U256::from(WAD);
    w.saturating_to::<u128>()
}

// ------------------------------------------------------------------ audit rate

/// `p_i = max(p_min, p_0 · (1 - T_i))` in WAD (floored).
pub fn audit_rate_wad(trust_wad: u64, params: &PowrParams) -> u64 {
    let distrust = u128::from(WAD - trust_wad.min(WAD));
    let p = (u128::from(params.audit_base_wad) * distrust / WAD128) as u64;
    p.max(params.audit_min_wad)
}

/// Smallest audit rate (WAD) for which cheating has negative expected value (Proof of
/// Sampling): `p·slash > (1-p)·cost_saved`, i.e. `p > cost/(slash+cost)`. A caught cheat loses
/// `AuditManager.fraudSlashBps` (50%) of its stake, at least 50 DN at the 100 DN minimum worker
/// stake, plus the refunded fee (1 DN on the devnet); the cost it saves is at most that fee. So
/// `slash = 51 DN`, `cost = 1 DN`: the bound is 1/52 = 0.0192 and the default `p_min = 0.02` meets
/// it (a worker staking more than the minimum loses more, which widens the margin).
pub fn min_audit_rate_wad(slash: U256, cost_saved: U256) -> Result<u64, PowrError> {
    let den = slash
        .checked_add(cost_saved)
        .ok_or(PowrError::Overflow("slash + cost"))?;
    if den.is_zero() {
        return Err(PowrError::Zero("slash + cost_saved"));
    }
    let num = cost_saved
        .checked_mul(U256::from(WAD))
        .ok_or(PowrError::Overflow("cost * 1e18"))?;
    Ok((num / den).saturating_to::<u64>() + 1)
}

// ------------------------------------------------------------------ emission schedule

/// `decay^epoch` in WAD by square-and-multiply, every product floored (`x*y/1e18`) in the same
/// order as `Settlement._decayFactor`, so Rust and Solidity agree to the wei.
pub fn decay_factor_wad(decay_wad: U256, epoch: u64) -> U256 {
    let wad = U256::from(WAD);
    let mut result = wad;
    let mut base = decay_wad;
    let mut n = epoch;
    while n > 0 {
        if n & 1 == 1 {
            result = result * base / wad;
        }
        n >>= 1;
        if n > 0 {
            base = base * base / wad;
        }
    }
    result
}

/// Emission budget of an epoch: `min(initial · decay^epoch / 1e18, cap_room)` where `cap_room`
/// is `cap - totalSupply` of the token (as `Settlement.epochBudget`). `decay_wad <= 1e18`.
pub fn epoch_budget(initial: U256, decay_wad: U256, epoch: u64, cap_room: U256) -> U256 {
    let b = initial * decay_factor_wad(decay_wad, epoch) / U256::from(WAD);
    b.min(cap_room)
}

// ------------------------------------------------------------------ Merkle trees of the report

/// Leaf of the rewards tree (`(account, amount)`) and of the trust tree (`(node, trustWad)`):
/// `keccak256(bytes.concat(keccak256(abi.encode(address, uint256))))`, as OpenZeppelin's
/// StandardMerkleTree and `Settlement.sol`.
pub fn account_leaf(account: Address, value: U256) -> B256 {
    keccak256(keccak256((account, value).abi_encode()))
}

/// A Merkle tree over `(address, uint256)` leaves sorted by address (so every validator builds
/// the same root), in the shape of [`crate::merkle::batch_root`] (pairs hashed sorted, an odd
/// last node promoted). All levels are kept, so a proof costs O(log n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTree {
    entries: Vec<(Address, U256)>,
    levels: Vec<Vec<B256>>,
}

impl AccountTree {
    /// Rewards tree: accounts with a zero amount get no leaf (nothing to claim).
    pub fn rewards(entries: &[(Address, U256)]) -> Result<Self, PowrError> {
        let nonzero: Vec<_> = entries
            .iter()
            .copied()
            .filter(|(_, v)| !v.is_zero())
            .collect();
        Self::build(nonzero)
    }

    /// Trust tree: every node, zero trust included (so a fallen trust can be proven too).
    pub fn trust(entries: &[(Address, u64)]) -> Result<Self, PowrError> {
        Self::build(entries.iter().map(|(a, t)| (*a, U256::from(*t))).collect())
    }

    fn build(mut entries: Vec<(Address, U256)>) -> Result<Self, PowrError> {
        entries.sort_by_key(|e| e.0);
        for w in entries.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(PowrError::DuplicateAccount(w[0].0));
            }
        }
        let mut levels = vec![entries
            .iter()
            .map(|(a, v)| account_leaf(*a, *v))
            .collect::<Vec<_>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = levels
                .last()
                .map(|l| merkle::next_level(l))
                .unwrap_or_default();
            levels.push(next);
        }
        Ok(Self { entries, levels })
    }

    /// The root (zero for an empty tree).
    pub fn root(&self) -> B256 {
        self.levels
            .last()
            .and_then(|l| l.first().copied())
            .unwrap_or(B256::ZERO)
    }

    /// Entries in leaf order (ascending address).
    pub fn entries(&self) -> &[(Address, U256)] {
        &self.entries
    }

    /// Sum of the values (the report's `totalRewards` for a rewards tree).
    pub fn total(&self) -> U256 {
        self.entries.iter().map(|(_, v)| *v).sum()
    }

    /// The account's value and its proof (siblings bottom-up, as `MerkleProof.verify` takes).
    pub fn proof(&self, account: Address) -> Option<(U256, Vec<B256>)> {
        let mut index = self.entries.binary_search_by_key(&account, |e| e.0).ok()?;
        let value = self.entries[index].1;
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len().saturating_sub(1)] {
            if let Some(s) = level.get(index ^ 1) {
                proof.push(*s);
            }
            index /= 2;
        }
        Some((value, proof))
    }
}

// ------------------------------------------------------------------ the signed report

alloy::sol! {
    /// The report validators sign each epoch (EIP-712, domain "DeepNode Settlement" / "1").
    #[derive(Debug, PartialEq, Eq)]
    struct EpochReport {
        uint64 epoch;
        bytes32 rewardsRoot;
        bytes32 trustRoot;
        uint256 totalRewards;
        bytes32 modelStatusHash;
    }
}

/// EIP-712 domain of the Settlement contract at `settlement` on `chain_id`.
pub fn report_domain(chain_id: u64, settlement: Address) -> Eip712Domain {
    alloy::sol_types::eip712_domain! {
        name: "DeepNode Settlement",
        version: "1",
        chain_id: chain_id,
        verifying_contract: settlement,
    }
}

/// The digest a validator signs for `report` (what `Settlement.reportDigest` returns).
pub fn report_digest(report: &EpochReport, chain_id: u64, settlement: Address) -> B256 {
    report.eip712_signing_hash(&report_domain(chain_id, settlement))
}

/// The report of `epoch` over its two trees; `totalRewards` is the rewards tree's total.
pub fn build_report(
    epoch: u64,
    rewards: &AccountTree,
    trust: &AccountTree,
    model_status_hash: B256,
) -> EpochReport {
    EpochReport {
        epoch,
        rewardsRoot: rewards.root(),
        trustRoot: trust.root(),
        totalRewards: rewards.total(),
        modelStatusHash: model_status_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: u64) -> f64 {
        x as f64 / WAD as f64
    }

    #[test]
    fn log2_and_exp2_match_f64() {
        for x in [
            1u128,
            7,
            1_000,
            123_456_789,
            WAD128 / 3,
            WAD128 / 2,
            WAD128 - 1,
            WAD128,
            3 * WAD128,
        ] {
            let got = log2_wad(x).unwrap() as f64 / 1e18;
            let want = (x as f64 / 1e18).log2();
            assert!((got - want).abs() < 1e-12, "log2({x}) = {got}, want {want}");
        }
        assert_eq!(log2_wad(0), None);
        assert_eq!(log2_wad(WAD128), Some(0));
        assert_eq!(log2_wad(WAD128 / 2), Some(-(WAD128 as i128)));
        for y in [
            0i128,
            -1,
            -(WAD128 as i128) / 7,
            -(WAD128 as i128),
            -5 * WAD128 as i128 - 12345,
        ] {
            let got = exp2_wad(y) as f64 / 1e18;
            let want = (y as f64 / 1e18).exp2();
            assert!((got - want).abs() < 1e-15, "exp2({y}) = {got}, want {want}");
        }
        assert_eq!(exp2_wad(0), WAD128);
        assert_eq!(exp2_wad(-(WAD128 as i128)), WAD128 / 2);
        assert_eq!(exp2_wad(-100 * WAD128 as i128), 0);
    }

    #[test]
    fn quality_matches_f64_formula() {
        let p = PowrParams::default();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) % WAD + 1
        };
        for _ in 0..500 {
            let r = Rates {
                completion: next(),
                accuracy: next(),
                uptime: next(),
                speed: next(),
            };
            let want = f(r.completion).powf(0.3)
                * f(r.accuracy).powf(0.4)
                * f(r.uptime).powf(0.15)
                * f(r.speed).powf(0.15);
            let got = f(epoch_quality(&r, &p));
            assert!((got - want).abs() < 1e-9, "{r:?}: {got} vs {want}");
        }
    }

    #[test]
    fn exact_vectors() {
        let p = PowrParams::default();
        let facts = NodeEpochFacts {
            assigned: 10,
            on_time: 9,
            audited: 2,
            passed: 2,
            quality_sum_ppm: 1_800_000,
            heartbeat_epochs_in_window: 5,
            window: 6,
            latencies_secs: vec![30, 10, 20, 90],
            response_window_secs: 120,
            slashed: false,
        };
        let r = facts.rates().unwrap();
        // 10/12, 2.8/4, 5/6, 1 - 20/120
        assert_eq!(r.completion, 833_333_333_333_333_333);
        assert_eq!(r.accuracy, 700_000_000_000_000_000);
        assert_eq!(r.uptime, 833_333_333_333_333_333);
        assert_eq!(r.speed, 833_333_333_333_333_333);
        let q = epoch_quality(&r, &p);
        let want = (10.0f64 / 12.0).powf(0.6) * 0.7f64.powf(0.4);
        assert!((f(q) - want).abs() < 1e-12);
        // The integer result is pinned so a change of rounding shows up as a failing test.
        assert_eq!(q, 777_195_841_856_657_153, "q = {q}");
        let t = next_trust(None, q, false, &p);
        assert_eq!(
            t.trust_wad,
            (8 * 200_000_000_000_000_000u128 + 2 * q as u128) as u64 / 10
        );
        // All-perfect rates give q = 1 exactly.
        let one = Rates {
            completion: WAD,
            accuracy: WAD,
            uptime: WAD,
            speed: WAD,
        };
        assert_eq!(epoch_quality(&one, &p), WAD);
        // A zero rate gives q = 0.
        assert_eq!(epoch_quality(&Rates { speed: 0, ..one }, &p), 0);
    }

    #[test]
    fn rates_reject_inconsistent_facts() {
        let ok = NodeEpochFacts {
            window: 1,
            response_window_secs: 1,
            ..Default::default()
        };
        assert_eq!(ok.rates().unwrap().completion, WAD / 2);
        assert_eq!(ok.rates().unwrap().speed, WAD / 2);
        let bad = NodeEpochFacts {
            assigned: 1,
            on_time: 2,
            ..ok.clone()
        };
        assert!(matches!(
            bad.rates(),
            Err(PowrError::Inconsistent {
                field: "on_time",
                ..
            })
        ));
        let bad = NodeEpochFacts {
            audited: 1,
            passed: 1,
            quality_sum_ppm: 1_000_001,
            ..ok.clone()
        };
        assert!(matches!(
            bad.rates(),
            Err(PowrError::Inconsistent {
                field: "quality_sum_ppm",
                ..
            })
        ));
        let bad = NodeEpochFacts {
            window: 0,
            ..ok.clone()
        };
        assert_eq!(bad.rates(), Err(PowrError::Zero("window")));
        let bad = NodeEpochFacts {
            heartbeat_epochs_in_window: 2,
            ..ok.clone()
        };
        assert!(matches!(
            bad.rates(),
            Err(PowrError::Inconsistent {
                field: "heartbeat_epochs_in_window",
                ..
            })
        ));
        let bad = NodeEpochFacts {
            response_window_secs: 0,
            ..ok
        };
        assert_eq!(bad.rates(), Err(PowrError::Zero("response_window_secs")));
    }

    #[test]
    fn split_budget_vectors() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        let c = Address::repeat_byte(3);
        // 10 wei over three equal scores: 3 each, the leftover wei goes to the smallest address.
        let r = split_budget(U256::from(10), &[(c, 5), (b, 5), (a, 5)]).unwrap();
        assert_eq!(
            r,
            vec![(c, U256::from(3)), (b, U256::from(3)), (a, U256::from(4))]
        );
        // 100 over 1:2 -> 33.33 / 66.67: the larger remainder (b) gets the wei.
        let r = split_budget(U256::from(100), &[(a, 1), (b, 2)]).unwrap();
        assert_eq!(r, vec![(a, U256::from(33)), (b, U256::from(67))]);
        assert_eq!(
            split_budget(U256::from(5), &[(a, 0)]).unwrap(),
            vec![(a, U256::ZERO)]
        );
        assert_eq!(
            split_budget(U256::from(5), &[(a, 1), (a, 2)]),
            Err(PowrError::DuplicateAccount(a))
        );
    }

    #[test]
    fn validator_reliability_is_a_beta_posterior() {
        // The prior without any record, as the other rates.
        assert_eq!(validator_reliability_wad(0, 0), WAD / 2);
        // 4 done, none missed: 5/6; 1 done, 3 missed: 2/6.
        assert_eq!(validator_reliability_wad(4, 0), 833_333_333_333_333_333);
        assert_eq!(validator_reliability_wad(1, 3), 333_333_333_333_333_333);
        assert_eq!(validator_reliability_wad(0, 2), WAD / 4);
        assert_eq!(validator_reliability_wad(3, 1), 666_666_666_666_666_666);
        assert_eq!(validator_reliability_wad(8, 0), 900_000_000_000_000_000);
        // Monotone: more work raises it, more misses lower it; it stays in (0, 1).
        for done in 0..20u64 {
            for missed in 0..20u64 {
                let r = validator_reliability_wad(done, missed);
                assert!(r > 0 && r < WAD, "{done} {missed}: {r}");
                assert!(validator_reliability_wad(done + 1, missed) > r);
                assert!(validator_reliability_wad(done, missed + 1) < r);
                let want = (done as f64 + 1.0) / (done as f64 + missed as f64 + 2.0);
                assert!((f(r) - want).abs() < 1e-15, "{done} {missed}");
            }
        }
        // No overflow at the extremes.
        assert_eq!(validator_reliability_wad(u64::MAX, 0), WAD - 1);
        assert_eq!(validator_reliability_wad(0, u64::MAX), 0);
        // (2^64) / (2^65): exactly one half
        assert_eq!(validator_reliability_wad(u64::MAX, u64::MAX), WAD / 2);
    }

    #[test]
    fn validator_weight_is_stake_times_reliability() {
        let dn = U256::from(WAD);
        let stake = U256::from(5000u64) * dn;
        // 0.5 for an idle validator: half its stake, so idle validators split by stake.
        assert_eq!(
            validator_weight(stake, validator_reliability_wad(0, 0), false),
            2500 * u128::from(WAD)
        );
        // floor(stake * r / 1e18)
        let r = validator_reliability_wad(1, 3);
        assert_eq!(
            validator_weight(stake, r, false),
            5000 * u128::from(r),
            "whole-DN stake: exact"
        );
        assert_eq!(validator_weight(U256::from(7u8), WAD / 2, false), 3);
        // Slashed as a validator in the epoch: nothing, whatever its record.
        assert_eq!(validator_weight(stake, WAD - 1, true), 0);
        // Reliability above 1.0 is capped; huge stakes saturate instead of wrapping.
        assert_eq!(
            validator_weight(stake, 2 * WAD, false),
            5000 * u128::from(WAD)
        );
        assert_eq!(validator_weight(U256::MAX, WAD, false), u128::MAX);
        assert_eq!(validator_weight(U256::ZERO, WAD / 2, false), 0);
        // Equal stakes: the reliable validator gets the larger share of the pool, and the split
        // still sums to the pool exactly.
        let (a, b, c) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        let weights = [
            (
                a,
                validator_weight(stake, validator_reliability_wad(4, 0), false),
            ),
            (
                b,
                validator_weight(stake, validator_reliability_wad(1, 3), false),
            ),
            (
                c,
                validator_weight(stake, validator_reliability_wad(9, 0), true),
            ),
        ];
        let pool = U256::from(200u64) * dn + U256::from(1u8);
        let r = split_budget(pool, &weights).unwrap();
        assert!(r[0].1 > r[1].1);
        assert_eq!(r[2].1, U256::ZERO);
        assert_eq!(r.iter().map(|(_, v)| *v).sum::<U256>(), pool);
        // 5/6 : 2/6, so b gets 2/7 of the pool
        let share = r[1].1.to::<u128>() as f64 / pool.to::<u128>() as f64;
        assert!((share - 2.0 / 7.0).abs() < 1e-12, "{share}");
    }

    /// Probability that a worker cheating on `cheated` tasks is audited on at least one of them.
    fn predicted_detection(p: f64, cheated: u32) -> f64 {
        1.0 - (1.0 - p).powi(cheated as i32)
    }

    #[test]
    fn detection_after_100_tasks_matches_the_formula() {
        // A worker cheats on 10 of 100 tasks. Each task's audit is drawn as AuditManager draws it
        // (`Verdicts.isAudited(auditSeed(randomness, taskId), p)`), with a fresh post-commit
        // randomness per simulated run; detection = at least one cheated task audited.
        use crate::verdict::{audit_seed, is_audited};
        let params = PowrParams::default();
        let runs = 4000u64;
        println!("trust  p      predicted  measured  (10 of 100 tasks cheated, {runs} runs)");
        for trust in [params.initial_trust_wad, WAD / 2, WAD / 10 * 9, WAD] {
            let p_wad = audit_rate_wad(trust, &params);
            let p = p_wad as f64 / WAD as f64;
            let mut detected = 0u64;
            for run in 0..runs {
                let randomness = alloy::primitives::keccak256(run.to_be_bytes());
                let caught = (0..10u64)
                    .any(|t| is_audited(audit_seed(randomness, U256::from(t * 10)), p_wad));
                detected += u64::from(caught);
            }
            let measured = detected as f64 / runs as f64;
            let predicted = predicted_detection(p, 10);
            let sigma = (predicted * (1.0 - predicted) / runs as f64).sqrt();
            println!(
                "{:.2}   {p:.3}  {predicted:.4}     {measured:.4}",
                trust as f64 / WAD as f64
            );
            assert!(
                (measured - predicted).abs() <= 4.0 * sigma + 1e-9,
                "trust {trust}: measured {measured} vs predicted {predicted} (sigma {sigma})"
            );
        }
        // the figures quoted in the README
        assert!((predicted_detection(0.24, 10) - 0.9357).abs() < 1e-4);
        assert!((predicted_detection(0.02, 10) - 0.1829).abs() < 1e-4);
    }

    #[test]
    fn audit_rates() {
        let p = PowrParams::default();
        assert_eq!(audit_rate_wad(0, &p), 300_000_000_000_000_000);
        assert_eq!(
            audit_rate_wad(p.initial_trust_wad, &p),
            240_000_000_000_000_000
        );
        assert_eq!(audit_rate_wad(WAD, &p), p.audit_min_wad);
        // half of the 100 DN minimum stake + the refunded 1 DN fee; cost saved <= the fee
        let slash = U256::from(51u64) * U256::from(WAD);
        let cost = U256::from(WAD);
        let min = min_audit_rate_wad(slash, cost).unwrap();
        assert!(
            p.audit_min_wad >= min,
            "default p_min {} below the PoS bound {min}",
            p.audit_min_wad
        );
        // The bound is strict: p*slash > (1-p)*cost holds at min and fails just below.
        let holds = |p: u64| U256::from(p) * slash > U256::from(WAD - p) * cost;
        assert!(holds(min) && !holds(min - 1));
        assert!(p.validate().is_ok());
        assert!(PowrParams {
            quality_exponents_permille: [1, 1, 1, 1],
            ..p
        }
        .validate()
        .is_err());
        assert!(PowrParams {
            trust_keep_wad: WAD + 1,
            ..p
        }
        .validate()
        .is_err());
    }

    #[test]
    fn emission_schedule_vectors() {
        let e0 = U256::from(1_000_000u64) * U256::from(WAD);
        let decay = U256::from(990_000_000_000_000_000u64);
        let big = U256::MAX;
        assert_eq!(epoch_budget(e0, decay, 0, big), e0);
        assert_eq!(
            epoch_budget(e0, decay, 1, big),
            U256::from(990_000u64) * U256::from(WAD)
        );
        assert_eq!(
            epoch_budget(e0, decay, 2, big),
            U256::from(980_100u64) * U256::from(WAD)
        );
        // Pinned values, also asserted in test/Settlement.t.sol (Rust and Solidity agree).
        assert_eq!(
            epoch_budget(e0, decay, 100, big).to_string(),
            "366032341273229501000000"
        );
        assert_eq!(
            epoch_budget(e0, decay, 1000, big).to_string(),
            "43171247410658000000"
        );
        let f100 = 0.99f64.powi(100) * 1e6;
        assert!((epoch_budget(e0, decay, 100, big).to::<u128>() as f64 / 1e18 - f100).abs() < 1e-6);
        assert_eq!(epoch_budget(e0, decay, 5, U256::from(7u8)), U256::from(7u8));
    }

    #[test]
    fn account_tree_proofs_verify_with_oz_semantics() {
        for n in [0usize, 1, 2, 3, 7, 16, 33] {
            let entries: Vec<_> = (0..n)
                .map(|i| {
                    (
                        Address::with_last_byte((n - i) as u8),
                        U256::from(i * 10 + 1),
                    )
                })
                .collect();
            let tree = AccountTree::rewards(&entries).unwrap();
            let leaves: Vec<_> = tree
                .entries()
                .iter()
                .map(|(a, v)| account_leaf(*a, *v))
                .collect();
            assert_eq!(tree.root(), merkle::batch_root(&leaves));
            for (a, v) in &entries {
                let (got, proof) = tree.proof(*a).unwrap();
                assert_eq!(got, *v);
                assert!(merkle::verify(&proof, tree.root(), account_leaf(*a, *v)));
                assert!(
                    !merkle::verify(&proof, tree.root(), account_leaf(*a, *v + U256::from(1)))
                        || n == 0
                );
            }
            assert!(tree.proof(Address::repeat_byte(0xee)).is_none());
        }
        let dup = [
            (Address::ZERO, U256::from(1)),
            (Address::ZERO, U256::from(2)),
        ];
        assert_eq!(
            AccountTree::rewards(&dup),
            Err(PowrError::DuplicateAccount(Address::ZERO))
        );
        // Zero rewards get no leaf.
        let t = AccountTree::rewards(&[(Address::ZERO, U256::ZERO)]).unwrap();
        assert_eq!(t.root(), B256::ZERO);
    }
}

#[cfg(test)]
mod cross_vectors {
    //! Values pinned on both sides: test/Settlement.t.sol posts a report with these roots, claims
    //! and refreshes trust with these proofs, and checks this digest (`test_RustVectors_*`).
    use super::*;

    fn b(s: &str) -> B256 {
        s.parse().expect("hex literal")
    }

    #[test]
    fn vectors_shared_with_settlement_t_sol() {
        let dn = U256::from(WAD);
        let entries = [
            (Address::with_last_byte(3), U256::from(30u8) * dn),
            (Address::with_last_byte(1), U256::from(10u8) * dn),
            (Address::with_last_byte(2), U256::from(20u8) * dn),
        ];
        let tree = AccountTree::rewards(&entries).unwrap();
        assert_eq!(
            tree.root(),
            b("0x12ae5dbbf75239908770ccf1c8a750e6314305c77bd87dabb6a6cf4095976bae")
        );
        assert_eq!(
            tree.proof(Address::with_last_byte(1)).unwrap().1,
            vec![
                b("0x5fe88c4ea7879a3788ec22729bad85e3051f0eb54192b3f17f21355efaac33f3"),
                b("0xbd94b0b4aa588aa3029bee1d07393ba3ea8552c123b43ec2005a073b22403d31"),
            ]
        );
        assert_eq!(
            tree.proof(Address::with_last_byte(3)).unwrap().1,
            vec![b(
                "0x6a2f6ebc81a0f86a8d6e26c8ff31e227ef65c6742705992362d2dd7a3b3bf423"
            )]
        );
        let trust = AccountTree::trust(&[
            (Address::with_last_byte(1), WAD / 2),
            (Address::with_last_byte(2), 0),
        ])
        .unwrap();
        assert_eq!(
            trust.root(),
            b("0x41e4aa3a2b58994e696c249d2368f1ddeab540011361bc41a0e600b1f93fb541")
        );
        assert_eq!(
            trust.proof(Address::with_last_byte(1)).unwrap().1,
            vec![account_leaf(Address::with_last_byte(2), U256::ZERO)]
        );
        let report = build_report(3, &tree, &trust, keccak256(b"models"));
        assert_eq!(report.totalRewards, U256::from(60u8) * dn);
        let at: Address = "0x5e77100000000000000000000000000000000001"
            .parse()
            .unwrap();
        assert_eq!(
            report_digest(&report, 31337, at),
            b("0x7534df4dae217176673f849aa4a265fff3a082a283ba4aafe1b9a0f852a4f6a4")
        );
    }
}

// ------------------------------------------------------------------ model status tree

/// `IModelRegistry.ModelStatus.Active`: takes tasks.
pub const MODEL_ACTIVE: u8 = 0;
/// `IModelRegistry.ModelStatus.Probation`: still takes tasks (its traffic share follows quality).
pub const MODEL_PROBATION: u8 = 1;
/// `IModelRegistry.ModelStatus.Delisted`: takes no new tasks.
pub const MODEL_DELISTED: u8 = 2;

/// Leaf of the model status tree (the report's `modelStatusHash`):
/// `keccak256(bytes.concat(keccak256(abi.encode(uint32 modelId, uint8 status))))`, as
/// `Settlement.applyModelStatus` verifies it.
pub fn model_status_leaf(model_id: u32, status: u8) -> B256 {
    // abi.encode pads uint32 and uint8 to one 32-byte word each, as it does two uint256
    keccak256(keccak256(
        (U256::from(model_id), U256::from(status)).abi_encode(),
    ))
}

/// The model statuses an epoch report sets: `(modelId, status)` leaves sorted by ascending
/// `modelId`, in the shape of [`crate::merkle::batch_root`] (pairs hashed sorted, an odd last node
/// promoted). The root is zero when no model changes status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatusTree {
    entries: Vec<(u32, u8)>,
    leaves: Vec<B256>,
}

impl ModelStatusTree {
    /// Builds the tree; a model listed twice or a status above [`MODEL_DELISTED`] is an error.
    pub fn new(entries: &[(u32, u8)]) -> Result<Self, PowrError> {
        let mut entries = entries.to_vec();
        entries.sort_by_key(|e| e.0);
        for w in entries.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(PowrError::Param {
                    name: "modelId",
                    value: u128::from(w[0].0),
                    why: "appears twice in the model status tree",
                });
            }
        }
        if let Some((_, s)) = entries.iter().find(|(_, s)| *s > MODEL_DELISTED) {
            return Err(PowrError::Param {
                name: "model status",
                value: u128::from(*s),
                why: "must be 0 (Active), 1 (Probation) or 2 (Delisted)",
            });
        }
        let leaves = entries
            .iter()
            .map(|(m, s)| model_status_leaf(*m, *s))
            .collect();
        Ok(Self { entries, leaves })
    }

    /// The root, the report's `modelStatusHash` (zero for no entries).
    pub fn root(&self) -> B256 {
        merkle::batch_root(&self.leaves)
    }

    /// Entries in leaf order (ascending `modelId`).
    pub fn entries(&self) -> &[(u32, u8)] {
        &self.entries
    }

    /// The model's status and its proof (siblings bottom-up, as `applyModelStatus` takes).
    pub fn proof(&self, model_id: u32) -> Option<(u8, Vec<B256>)> {
        let index = self.entries.binary_search_by_key(&model_id, |e| e.0).ok()?;
        Some((self.entries[index].1, merkle::proof(&self.leaves, index)))
    }
}

#[cfg(test)]
mod model_status_vectors {
    //! Pinned on both sides: test/ModelSelection.t.sol posts a report with this root and applies
    //! these proofs (`test_RustVectors_ModelStatusApplies`).
    use super::*;

    #[test]
    fn model_status_tree_proofs_and_errors() {
        for n in [0u32, 1, 2, 3, 5, 8] {
            let entries: Vec<_> = (0..n).map(|i| (n - i, (i % 3) as u8)).collect();
            let tree = ModelStatusTree::new(&entries).unwrap();
            assert!(tree.entries().windows(2).all(|w| w[0].0 < w[1].0));
            for (m, s) in &entries {
                let (got, proof) = tree.proof(*m).unwrap();
                assert_eq!(got, *s);
                assert!(merkle::verify(
                    &proof,
                    tree.root(),
                    model_status_leaf(*m, *s)
                ));
                assert!(!merkle::verify(
                    &proof,
                    tree.root(),
                    model_status_leaf(*m, (*s + 1) % 3)
                ));
            }
            assert!(tree.proof(999).is_none());
        }
        assert_eq!(ModelStatusTree::new(&[]).unwrap().root(), B256::ZERO);
        assert!(matches!(
            ModelStatusTree::new(&[(1, 1), (1, 2)]),
            Err(PowrError::Param {
                name: "modelId",
                value: 1,
                ..
            })
        ));
        assert!(matches!(
            ModelStatusTree::new(&[(1, 3)]),
            Err(PowrError::Param {
                name: "model status",
                value: 3,
                ..
            })
        ));
    }

    #[test]
    fn vectors_shared_with_model_selection_t_sol() {
        // abi.encode(uint32 7, uint8 2): two big-endian 32-byte words
        let mut enc = [0u8; 64];
        enc[31] = 7;
        enc[63] = 2;
        assert_eq!(model_status_leaf(7, 2), keccak256(keccak256(enc)));
        let tree =
            ModelStatusTree::new(&[(3, MODEL_ACTIVE), (1, MODEL_PROBATION), (2, MODEL_DELISTED)])
                .unwrap();
        let b = |h: &str| -> B256 { h.parse().expect("hex literal") };
        assert_eq!(
            tree.root(),
            b("0x6ab4118f9dee52d1a6f259079e9e4400f014b1593af5676ccde0d5127132beea")
        );
        assert_eq!(
            tree.proof(1).unwrap(),
            (
                MODEL_PROBATION,
                vec![
                    b("0xd70731c4fc4bf9cd8fc2be4d898bd67fd357eb0135035bf4500364b4c42c4fa5"),
                    b("0x048605503187722f63911ca26b8cca1d0a2afc10509c8be7f963371fec52b188"),
                ]
            )
        );
        assert_eq!(
            tree.proof(2).unwrap(),
            (
                MODEL_DELISTED,
                vec![
                    b("0x66b32740ad8041bcc3b909c72d7e1afe60094ec55e3cde329b4b3a28501d826c"),
                    b("0x048605503187722f63911ca26b8cca1d0a2afc10509c8be7f963371fec52b188"),
                ]
            )
        );
        assert_eq!(
            tree.proof(3).unwrap(),
            (
                MODEL_ACTIVE,
                vec![b(
                    "0x187f03e04350d550bdb6dc4f254c9c39010e13105af2211afe76d9b718c132c3"
                )]
            )
        );
        assert_eq!(
            model_status_leaf(1, MODEL_PROBATION),
            b("0x66b32740ad8041bcc3b909c72d7e1afe60094ec55e3cde329b4b3a28501d826c")
        );
    }
}
