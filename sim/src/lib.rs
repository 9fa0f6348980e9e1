//! DeepNode's economics simulation. A population of honest workers and validators, plus one
//! adversary playing a strategy, live through many epochs; each epoch's facts are generated from
//! what the agents did (tasks drawn by stake x trust, results audited at the trust-dependent rate,
//! frauds slashed) and run through `protocol::epoch::compute`, the same code the indexer and the
//! verifier run, so the rewards and trust are the real rules'. The adversary's profit per epoch
//! (emission + fees - compute cost - stake lost - fees paid) is compared with what the same
//! capital earns played honestly in the same world (same seed).
//!
//! What happens on-chain is modelled with the contracts' default parameters ([`Economy`]), each
//! named after the constant or parameter it mirrors; what happens in the epoch computation is not
//! modelled at all: it is run.

use alloy::primitives::{Address, U256};
use protocol::epoch::{
    compute, Carried, EpochFacts, ModelFacts, ModelUsage, ValidatorAudits, WorkerFacts,
};
use protocol::powr::{self, PowrParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// 1 DN in wei.
const DN: u128 = 1_000_000_000_000_000_000;

fn wei(dn: f64) -> U256 {
    U256::from((dn.max(0.0) * 1e6) as u128) * U256::from(DN / 1_000_000)
}

fn dn(wei: U256) -> f64 {
    let whole = wei / U256::from(DN);
    let rest = wei % U256::from(DN);
    whole.saturating_to::<u128>() as f64 + rest.saturating_to::<u128>() as f64 / DN as f64
}

/// The world's parameters: the contracts' and deploy script's defaults, and the costs of the
/// agents (assumptions, printed with the results).
#[derive(Debug, Clone)]
pub struct Economy {
    /// Emission per epoch, DN (`DN_INITIAL_EMISSION`; decay ignored over the horizon).
    pub emission: f64,
    /// Honest workers.
    pub honest_workers: usize,
    /// Stake of each honest worker, DN.
    pub worker_stake: f64,
    /// Honest validators.
    pub validators: usize,
    /// Stake of each validator, DN.
    pub validator_stake: f64,
    /// Paid tasks per epoch on the honest model.
    pub tasks_per_epoch: u64,
    /// Price of the honest model per call, DN.
    pub price: f64,
    /// Compute units of the honest model per call.
    pub units: u32,
    /// An honest worker's cost to run one task, DN (hardware, power).
    pub compute_cost: f64,
    /// Worker's share of a fee (`TaskManager` fee split 1000/7500/1000/500: 75%).
    pub worker_fee_share: f64,
    /// Developer's share of a fee (10%).
    pub developer_fee_share: f64,
    /// Share of a caught cheater's slashable stake taken per fraud (`fraudSlashBps` 5000).
    pub fraud_slash: f64,
    /// Share of an accuser's stake slashed when the quorum clears the result
    /// (`falseAccusationSlashBps` 2000).
    pub false_accusation_slash: f64,
    /// Share of a slash paid to the other party (`rewardBps` 5000).
    pub slash_reward: f64,
    /// Share of a minority quorum voter's stake slashed (`minoritySlashBps` 1000).
    pub minority_slash: f64,
    /// Dispute quorum seats (the deploy's `DN_QUORUM` 5).
    pub quorum: u32,
    /// Share of an approving validator's slashable stake taken when a forced error it approved
    /// is revealed (`lazySlashBps` 5000).
    pub lazy_slash: f64,
    /// Forced errors the sentinels plant per epoch, network-wide (`executor --sentinel-key`:
    /// a task every `--sentinel-interval-secs`, `--sentinel-rate` of those drawn to a sentinel
    /// worker). Each is audited at the sentinel worker's audit rate, counted here at its floor
    /// `p_min` (a trusted sentinel), by a validator drawn by stake.
    pub sentinel_forced_errors: f64,
    /// Response window, seconds (`DN_RESPONSE_WINDOW` 120).
    pub response_window: u32,
    /// An honest worker's latency, seconds.
    pub latency: u32,
    /// Probe emission (`ProbeRegistry.probeEmission`, formula version 4): the workers' and
    /// developers' pools pay for the prober's tasks only.
    pub probe_emission: bool,
    /// Share of the paid tasks of the catalogue model that the prober submits (from wallets it
    /// reveals after the epoch; workers cannot tell them from users' tasks).
    pub probe_share: f64,
    /// Trust and audit-rate parameters.
    pub params: PowrParams,
    /// Epochs simulated; the first `warmup` are not measured.
    pub epochs: u64,
    /// Epochs before measuring (trust settles).
    pub warmup: u64,
    /// Independent runs averaged.
    pub runs: u64,
    /// Runs averaged for the strategies whose losses come from rare events (a cheap model wrong
    /// on 0.1% of its tasks, a worker lazy on 1%: caught about 0.03 and 0.3 times per world),
    /// against the honest play of the same worlds.
    pub rare_runs: u64,
}

impl Default for Economy {
    fn default() -> Self {
        Economy {
            emission: 1_000_000.0,
            honest_workers: 100,
            worker_stake: 1_000.0,
            validators: 10,
            validator_stake: 10_000.0,
            tasks_per_epoch: 10_000,
            price: 1.0,
            units: 10,
            compute_cost: 0.5,
            worker_fee_share: 0.75,
            developer_fee_share: 0.10,
            fraud_slash: 0.5,
            false_accusation_slash: 0.2,
            slash_reward: 0.5,
            minority_slash: 0.1,
            quorum: 5,
            lazy_slash: 0.5,
            sentinel_forced_errors: 24.0,
            response_window: 120,
            latency: 10,
            probe_emission: true,
            probe_share: 0.1,
            params: PowrParams::default(),
            epochs: 24,
            warmup: 8,
            runs: 24,
            rare_runs: 240,
        }
    }
}

/// How the adversary's worker behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Play {
    /// Runs every task with the real model.
    Honest,
    /// Returns a random output on this share of its tasks (saving their compute).
    Lazy(f64),
    /// Runs a cheaper model (this share of its cost) that matches the real one on this share of
    /// tasks; a mismatch is a fraud when audited.
    Cheap {
        /// Share of tasks whose output matches.
        matches: f64,
        /// Its cost per task, as a share of the real model's.
        cost: f64,
    },
    /// Lazy on every task, and a fresh address (fresh stake, new-node trust) after each fraud.
    Whitewash,
    /// Lazy on every task, with colluding validators holding this share of the validator stake
    /// who clear its frauds when they are the majority of a dispute quorum.
    Collude(f64),
}

/// One simulated epoch's figures of the adversary (DN).
#[derive(Debug, Clone, Copy, Default)]
struct Ledger {
    emission: f64,
    fees: f64,
    cost: f64,
    slashed: f64,
    paid: f64,
}

impl Ledger {
    fn profit(&self) -> f64 {
        self.emission + self.fees - self.cost - self.slashed - self.paid
    }
}

struct Worker {
    address: Address,
    stake: f64,
    cost: f64,
    latency: u32,
    /// Quality of its honest results (ppm).
    quality_ppm: u32,
}

/// The adversary's setup.
#[derive(Debug, Clone, Copy)]
pub struct Adversary {
    /// Its worker's behaviour.
    pub play: Play,
    /// Its worker's stake, DN.
    pub stake: f64,
    /// Its latency, seconds.
    pub latency: u32,
    /// Quality of its honest results (ppm).
    pub quality_ppm: u32,
    /// Self-dealing: `(tasks, units, price)`: tasks it pays per epoch to its own model (`units`
    /// compute units, `price` DN per call, served only by its own worker; it is the developer,
    /// so the worker's and developer's fee shares come back to it). The prober does not probe
    /// its model (not in the catalogue), so none of these tasks is a probe.
    pub wash: Option<(u64, u32, f64)>,
    /// A rival model world: the adversary is also the developer of a second model sharing the
    /// traffic with the honest one; `Some(k)`: it pays `k` tasks of the rival model per epoch
    /// and rates each 0 (`Some(0)`: it only competes).
    pub rival: Option<u64>,
}

impl Adversary {
    /// An honest worker with the population's stake.
    pub fn honest(e: &Economy) -> Self {
        Adversary {
            play: Play::Honest,
            stake: e.worker_stake,
            latency: e.latency,
            quality_ppm: 1_000_000,
            wash: None,
            rival: None,
        }
    }
}

const HONEST_MODEL: u32 = 1;
const WASH_MODEL: u32 = 2;
const RIVAL_MODEL: u32 = 3;
const ADVERSARY: Address = Address::repeat_byte(0xad);

fn addr(tag: u8, i: usize) -> Address {
    let mut a = [0u8; 20];
    a[0] = tag;
    a[12..20].copy_from_slice(&(i as u64).to_be_bytes());
    Address::from(a)
}

/// Expected colluding seats of a quorum whose colluders are not a majority.
pub fn colluders_outvoted(f: f64, seats: u32) -> f64 {
    let need = seats / 2 + 1;
    let p = |k: u32| binomial(seats, k) * f.powi(k as i32) * (1.0 - f).powi((seats - k) as i32);
    let minority: f64 = (0..need).map(p).sum();
    if minority <= 0.0 {
        return 0.0;
    }
    (0..need).map(|k| f64::from(k) * p(k)).sum::<f64>() / minority
}

/// Probability that colluders holding `f` of the stake are a strict majority of `seats` drawn.
pub fn collusion_majority(f: f64, seats: u32) -> f64 {
    let need = seats / 2 + 1;
    (need..=seats)
        .map(|k| binomial(seats, k) * f.powi(k as i32) * (1.0 - f).powi((seats - k) as i32))
        .sum()
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// What the adversary got, averaged over the measured epochs of one world.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Profit, DN per epoch.
    pub profit: f64,
    /// Emission received, DN per epoch.
    pub emission: f64,
    /// Tasks its worker was drawn for per epoch.
    pub tasks: f64,
    /// Emission of the first honest validator, DN per epoch.
    pub validator_emission: f64,
    /// Audits it performed per epoch.
    pub validator_audits: f64,
}

/// Runs one world and returns what the adversary got per measured epoch.
pub fn run(e: &Economy, adv: &Adversary, seed: u64) -> Figures {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut workers: Vec<Worker> = (0..e.honest_workers)
        .map(|i| Worker {
            address: addr(0x10, i),
            stake: e.worker_stake,
            cost: e.compute_cost,
            latency: e.latency,
            quality_ppm: 1_000_000,
        })
        .collect();
    let mut me = Worker {
        address: ADVERSARY,
        stake: adv.stake,
        cost: e.compute_cost,
        latency: adv.latency,
        quality_ppm: adv.quality_ppm,
    };
    let mut fresh_addresses = 0usize;
    let validators: Vec<Address> = (0..e.validators).map(|i| addr(0x20, i)).collect();
    let developer = addr(0x30, 0);
    let mut carried = Carried::default();
    let mut total = Figures::default();
    let mut history: BTreeMap<Address, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    for epoch in 0..e.epochs {
        let mut facts = EpochFacts {
            epoch,
            start_time: epoch * 1000,
            end_time: (epoch + 1) * 1000,
            facts_until: (epoch + 1) * 1000,
            budget: wei(e.emission),
            response_window_secs: e.response_window,
            params: e.params,
            ..Default::default()
        };
        let trust_of = |a: &Address| {
            carried
                .trust
                .get(a)
                .map_or(e.params.initial_trust_wad, |t| t.trust_wad)
        };
        // Sortition: tasks by stake x trust.
        let weights: Vec<f64> = workers
            .iter()
            .chain(std::iter::once(&me))
            .map(|w| w.stake * trust_of(&w.address) as f64)
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut ledger = Ledger::default();
        let mut honest_units = 0u64;
        let mut probe_units = 0u64;
        let mut audits = 0u64;
        let mut my_tasks = 0u64;
        let n_workers = workers.len();
        for (i, w) in workers
            .iter_mut()
            .chain(std::iter::once(&mut me))
            .enumerate()
        {
            let is_me = i == n_workers;
            let expected = e.tasks_per_epoch as f64 * weights[i] / sum.max(1.0);
            let mut n = expected.floor() as u64;
            if rng.gen::<f64>() < expected - expected.floor() {
                n += 1;
            }
            // the adversary is an established worker: honest while trust settles, then it
            // turns to its strategy (its losses from then on are measured)
            let play = if is_me && epoch >= e.warmup {
                adv.play
            } else {
                Play::Honest
            };
            let p_audit =
                powr::audit_rate_wad(trust_of(&w.address), &e.params) as f64 / powr::WAD as f64;
            let mut f = WorkerFacts::default();
            let (mut caught, mut cleared) = (0u64, 0u64);
            let mut computed = 0.0;
            for _ in 0..n {
                let probe = rng.gen::<f64>() < e.probe_share;
                // one draw per task whatever the play, so that a world played honestly and the
                // same world played with a strategy see the same draws until a strategy's
                // choice changes what follows (paired worlds: the difference is the strategy's)
                let u = rng.gen::<f64>();
                let (bad, cost) = match play {
                    Play::Honest => (false, w.cost),
                    Play::Lazy(r) => {
                        let bad = u < r;
                        (bad, if bad { 0.0 } else { w.cost })
                    }
                    Play::Cheap { matches, cost } => (u >= matches, w.cost * cost),
                    Play::Whitewash | Play::Collude(_) => (true, 0.0),
                };
                computed += cost;
                f.assigned += 1;
                f.on_time += 1;
                f.latencies.push(w.latency);
                if probe {
                    f.probe_assigned += 1;
                    f.probe_on_time += 1;
                    f.probe_latencies.push(w.latency);
                }
                let audited = rng.gen::<f64>() < p_audit;
                if audited {
                    audits += 1;
                    f.audited += 1;
                }
                if audited && bad {
                    let clears = match play {
                        Play::Collude(share) => {
                            rng.gen::<f64>() < collusion_majority(share, e.quorum)
                        }
                        _ => false,
                    };
                    if clears {
                        // the quorum upholds the result: a pass of quality 1.0, and the
                        // accuser's false-accusation slash partly paid to the worker
                        cleared += 1;
                        f.passed += 1;
                        f.quality_sum_ppm += 1_000_000;
                        f.finalized.push((e.units, Some(1_000_000), 1_000_000));
                        if probe {
                            f.probes.push((e.units, Some(1_000_000), 1_000_000));
                            probe_units += u64::from(e.units);
                        }
                        f.tasks_finalized += 1;
                        f.compute_units += u64::from(e.units);
                    } else {
                        // proven fraud: refunded, slashed, trust pinned at 0
                        caught += 1;
                    }
                    continue;
                }
                let judged = if audited {
                    f.passed += 1;
                    f.quality_sum_ppm += u64::from(w.quality_ppm);
                    Some(w.quality_ppm)
                } else {
                    None
                };
                f.finalized.push((e.units, judged, 1_000_000));
                if probe {
                    f.probes.push((e.units, judged, 1_000_000));
                    probe_units += u64::from(e.units);
                }
                f.tasks_finalized += 1;
                f.compute_units += u64::from(e.units);
            }
            if caught > 0 {
                f.fraud = true;
                facts.slashed.insert(w.address);
            }
            let (active, commits) = history.entry(w.address).or_default();
            if n > 0 {
                active.push(epoch);
                commits.push(epoch);
            }
            let window = u64::from(
                protocol::epoch::DEFAULT_UPTIME_WINDOW
                    .min(u32::try_from(epoch + 1).unwrap_or(u32::MAX)),
            );
            f.active_epochs = active
                .iter()
                .copied()
                .filter(|x| *x + window > epoch)
                .collect();
            f.commit_epochs = commits
                .iter()
                .copied()
                .filter(|x| *x + window > epoch)
                .collect();
            honest_units += f.compute_units;
            facts.tasks_assigned += f.assigned;
            facts.tasks_finalized += f.tasks_finalized;
            let lost = w.stake * (1.0 - (1.0 - e.fraud_slash).powi(caught as i32));
            if is_me {
                my_tasks = n;
                ledger.fees += f.tasks_finalized as f64 * e.price * e.worker_fee_share;
                ledger.cost += computed;
                ledger.slashed += lost;
                if let Play::Collude(share) = play {
                    // cleared disputes pay the worker part of the honest accuser's slash
                    ledger.fees += cleared as f64
                        * e.validator_stake
                        * e.false_accusation_slash
                        * e.slash_reward;
                    // when the fraud stands, colluders seated in the quorum voted against the
                    // majority and lose the minority share of their stake
                    ledger.slashed += caught as f64
                        * colluders_outvoted(share, e.quorum)
                        * e.validator_stake
                        * e.minority_slash;
                }
            }
            w.stake -= lost;
            facts.staked_workers.insert(w.address);
            facts.workers.insert(w.address, f);
        }
        if let Some(attack) = adv.rival {
            // two models share the traffic while the honest one is listed; honest users rate
            // each a little (2 ratings of 90 per epoch)
            let listed =
                carried.models.get(&HONEST_MODEL).copied().unwrap_or(0) < powr::MODEL_DELISTED;
            let share = if listed { 0.5 } else { 0.0 };
            let rival_tasks = (facts.tasks_finalized as f64 * share) as u64;
            let rival_units = (honest_units as f64 * share) as u64;
            let rival_probe_units = (probe_units as f64 * share) as u64;
            let zeros = if epoch >= e.warmup && listed {
                attack
            } else {
                0
            };
            for (model, dev, tasks, units, probed, extra) in [
                (
                    HONEST_MODEL,
                    developer,
                    rival_tasks,
                    rival_units,
                    rival_probe_units,
                    zeros,
                ),
                (
                    RIVAL_MODEL,
                    ADVERSARY,
                    facts.tasks_finalized - rival_tasks,
                    honest_units - rival_units,
                    probe_units - rival_probe_units,
                    0,
                ),
            ] {
                if tasks > 0 {
                    facts.model_usage.insert(
                        model,
                        ModelUsage {
                            developer: dev,
                            tasks_finalized: tasks,
                            compute_units: units,
                            probe_compute_units: probed,
                        },
                    );
                }
                facts.models.insert(
                    model,
                    ModelFacts {
                        chain_status: carried.models.get(&model).copied().unwrap_or(0),
                        changed_in_epoch: false,
                        ratings: 2 + extra,
                        score_sum: 180,
                        canaries: 0,
                        canary_matches: 0,
                    },
                );
                if dev == ADVERSARY {
                    ledger.fees += tasks as f64 * e.price * e.developer_fee_share;
                }
            }
            // the attack's tasks: paid, rated 0 (their fees go to the rival)
            ledger.paid += zeros as f64 * e.price;
        } else {
            facts.model_usage.insert(
                HONEST_MODEL,
                ModelUsage {
                    developer,
                    tasks_finalized: facts.tasks_finalized,
                    compute_units: honest_units,
                    probe_compute_units: probe_units,
                },
            );
            facts.models.insert(HONEST_MODEL, ModelFacts::default());
        }
        // Self-dealing: the adversary's own model, served by its own worker only.
        if let Some((tasks, units, price)) = adv.wash.filter(|_| epoch >= e.warmup) {
            let f = facts.workers.entry(ADVERSARY).or_default();
            for _ in 0..tasks {
                f.assigned += 1;
                f.on_time += 1;
                f.latencies.push(1);
                f.finalized.push((units, None, 1_000_000));
                f.tasks_finalized += 1;
                f.compute_units += u64::from(units);
            }
            facts.model_usage.insert(
                WASH_MODEL,
                ModelUsage {
                    developer: ADVERSARY,
                    tasks_finalized: tasks,
                    compute_units: tasks * u64::from(units),
                    probe_compute_units: 0,
                },
            );
            facts.models.insert(WASH_MODEL, ModelFacts::default());
            // it pays the fees and gets the worker's and developer's shares back (the
            // validators' and protocol's shares are lost); running its own trivial tasks costs
            // nothing worth counting
            ledger.paid += tasks as f64 * price;
            ledger.fees += tasks as f64 * price * (e.worker_fee_share + e.developer_fee_share);
        }
        facts.probe_emission = e.probe_emission;
        for (i, v) in validators.iter().enumerate() {
            facts.validator_stake.insert(*v, wei(e.validator_stake));
            let share =
                audits / e.validators as u64 + u64::from((i as u64) < audits % e.validators as u64);
            facts.validator_audits.insert(
                *v,
                ValidatorAudits {
                    done: share,
                    missed: 0,
                    slashed: false,
                },
            );
        }
        let out = compute(&facts, &carried).expect("simulated facts are consistent");
        let (w, v, d) = out.reward_parts(me.address);
        ledger.emission = dn(w + v + d);
        carried = out.carried();
        if matches!(adv.play, Play::Whitewash) && facts.slashed.contains(&me.address) {
            // a fresh address with fresh stake: what was slashed is gone, the rest moves
            fresh_addresses += 1;
            me.address = addr(0xae, fresh_addresses);
            me.stake = adv.stake;
        }
        if epoch >= e.warmup {
            total.profit += ledger.profit();
            total.emission += ledger.emission;
            total.tasks += my_tasks as f64;
            total.validator_emission += dn(out.reward_parts(validators[0]).1);
            total.validator_audits += (audits / e.validators as u64) as f64;
        }
    }
    let n = (e.epochs - e.warmup) as f64;
    Figures {
        profit: total.profit / n,
        emission: total.emission / n,
        tasks: total.tasks / n,
        validator_emission: total.validator_emission / n,
        validator_audits: total.validator_audits / n,
    }
}

/// [`run`] averaged over `e.runs` worlds (seeds 1000..).
pub fn average(e: &Economy, adv: &Adversary) -> Figures {
    let mut t = Figures::default();
    for s in 0..e.runs {
        let r = run(e, adv, 1000 + s);
        t.profit += r.profit;
        t.emission += r.emission;
        t.tasks += r.tasks;
        t.validator_emission += r.validator_emission;
        t.validator_audits += r.validator_audits;
    }
    let n = e.runs as f64;
    Figures {
        profit: t.profit / n,
        emission: t.emission / n,
        tasks: t.tasks / n,
        validator_emission: t.validator_emission / n,
        validator_audits: t.validator_audits / n,
    }
}

/// One strategy's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// Strategy name.
    pub strategy: String,
    /// The adversary's profit, DN per epoch.
    pub profit: f64,
    /// The same capital played honestly, DN per epoch.
    pub honest: f64,
    /// What the comparison rests on.
    pub note: String,
}

impl Outcome {
    /// Whether the attack loses against honest play.
    pub fn ok(&self) -> bool {
        self.profit <= self.honest
    }

    /// The line `make sim` prints.
    pub fn line(&self) -> String {
        format!(
            "sim: {} {:.1} DN/epoch vs honest {:.1} DN/epoch ({})",
            self.strategy,
            self.profit,
            self.honest,
            if self.ok() { "ok" } else { "PROFITABLE" }
        )
    }
}

/// A lazy validator's expected profit per epoch against the same validator re-executing, and the
/// forced errors per epoch at which laziness breaks even. With equal stakes it audits forced
/// errors at `λ = sentinel_forced_errors · p_min / validators` per epoch; with `k ~ Poisson(λ)`
/// caught, it keeps its epoch reward with probability `e^-λ` and loses
/// `stake · (1 - E[(1 - lazy_slash)^k]) = stake · (1 - e^(-λ · lazy_slash))`.
pub fn lazy_validator(e: &Economy) -> (f64, f64, f64) {
    let v = average(e, &Adversary::honest(e));
    let p_min = e.params.audit_min_wad as f64 / powr::WAD as f64;
    let lazy = |forced: f64| {
        let lambda = forced * p_min / e.validators as f64;
        v.validator_emission * (-lambda).exp()
            - e.validator_stake * (1.0 - (-lambda * e.lazy_slash).exp())
    };
    let honest = v.validator_emission - v.validator_audits * e.compute_cost;
    // bisection: laziness pays below the break-even and loses above it
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while lazy(hi) > honest && hi < 1e9 {
        hi *= 2.0;
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if lazy(mid) > honest {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lazy(e.sentinel_forced_errors), honest, hi)
}

/// Every strategy at `e`'s parameters.
pub fn strategies(e: &Economy) -> Vec<Outcome> {
    let honest = Adversary::honest(e);
    let base = average(e, &honest).profit;
    let rare = Economy {
        runs: e.rare_runs.max(e.runs),
        ..e.clone()
    };
    let rare_base = average(&rare, &honest).profit;
    let mut out = Vec::new();
    let mut worker = |name: &str, play: Play, note: &str| {
        let rare_events = matches!(play, Play::Lazy(r) if r < 0.05)
            || matches!(play, Play::Cheap { matches, .. } if matches > 0.995);
        let (world, honest_profit) = if rare_events {
            (&rare, rare_base)
        } else {
            (e, base)
        };
        let profit = average(world, &Adversary { play, ..honest }).profit;
        out.push(Outcome {
            strategy: name.into(),
            profit,
            honest: honest_profit,
            note: if rare_events {
                format!("{note}; {} worlds (rare catches)", world.runs)
            } else {
                note.into()
            },
        });
    };
    for (name, r) in [
        ("lazy-worker-1%", 0.01),
        ("lazy-worker-10%", 0.10),
        ("lazy-worker-100%", 1.0),
    ] {
        worker(
            name,
            Play::Lazy(r),
            "random outputs on a share of tasks; caught with the audit rate p = max(pMin, p0(1-T)), 50% stake slashed per fraud",
        );
    }
    for (name, m) in [
        ("cheap-model-90%", 0.90),
        ("cheap-model-99%", 0.99),
        ("cheap-model-99.9%", 0.999),
    ] {
        worker(
            name,
            Play::Cheap {
                matches: m,
                cost: 0.2,
            },
            "a model costing 20% that matches on a share of tasks; a mismatch is a fraud when audited",
        );
    }
    worker(
        "whitewashing",
        Play::Whitewash,
        "lazy on every task; after each fraud a fresh address with fresh stake (new-node trust 0.2)",
    );
    for (name, f) in [
        ("dispute-collusion-1/4", 0.25),
        ("dispute-collusion-1/3", 1.0 / 3.0),
    ] {
        worker(
            name,
            Play::Collude(f),
            "a lazy worker whose validators clear its frauds when they are a majority of the dispute quorum (5 seats)",
        );
    }
    // Self-dealing: its own model served by its own worker, on top of honest work: 10 tasks
    // per epoch at price 0 and 4,294,967,295 compute units, and 1,000 tasks at honest-looking
    // terms (1 DN, 10 units).
    for (name, wash, note) in [
        (
            "wash-trading",
            (10, u32::MAX, 0.0),
            "its own model at price 0 with u32::MAX compute units, 10 self-paid tasks per epoch, on top of honest work; probe emission pays the prober's tasks only",
        ),
        (
            "wash-trading-priced",
            (1_000, e.units, e.price),
            "its own model at the honest terms (1 DN, 10 units), 1,000 self-paid tasks per epoch, on top of honest work: each loses the validators' and protocol's 15% and earns no emission",
        ),
    ] {
        let profit = average(
            e,
            &Adversary {
                wash: Some(wash),
                ..honest
            },
        )
        .profit;
        out.push(Outcome {
            strategy: name.into(),
            profit,
            honest: base,
            note: note.into(),
        });
    }
    // Rating attack: a competing developer pays 5 tasks of the rival model per epoch and rates
    // each 0, against the same developer only competing.
    let compete = average(
        e,
        &Adversary {
            rival: Some(0),
            ..honest
        },
    )
    .profit;
    let attack = average(
        e,
        &Adversary {
            rival: Some(5),
            ..honest
        },
    )
    .profit;
    out.push(Outcome {
        strategy: "rating-attack".into(),
        profit: attack,
        honest: compete,
        note: "a competing developer pays 5 tasks of the rival model per epoch and rates them 0 (honest users: 2 ratings of 90); ratings alone reach Probation only (traffic unchanged), delisting needs failed canaries".into(),
    });
    // Lazy validator: approves without re-executing (saves the re-execution, as much as the
    // worker's compute). A forced error it audits is revealed and slashes `lazy_slash` of its
    // stake, and a slashed validator's weight in the epoch's pool is 0 (its emission is lost).
    let (profit, honest, break_even) = lazy_validator(e);
    out.push(Outcome {
        strategy: "lazy-validator".into(),
        profit,
        honest,
        note: format!(
            "approves every result without re-executing it; the sentinels plant {} forced errors per epoch (audited at p_min, drawn by stake), each approved one slashes {}% of its stake and voids its epoch's reward; break-even at {:.2} forced errors per epoch",
            e.sentinel_forced_errors,
            e.lazy_slash * 100.0,
            break_even
        ),
    });
    // Report takeover: a flash stake of twice the validator set, added during the epoch, signs
    // nothing (signing stake is read when the epoch began, Settlement.activationDelay) and a
    // false report of a 2/3 majority is vetoed by an honest third: the attacker gets nothing;
    // the same stake as an honest validator earns its share of the validators' 20% pool.
    let stake = 2.0 * e.validators as f64 * e.validator_stake + 1.0;
    let honest_validator =
        e.emission * 0.2 * stake / (stake + e.validators as f64 * e.validator_stake);
    out.push(Outcome {
        strategy: "report-takeover".into(),
        profit: 0.0,
        honest: honest_validator,
        note: "flash stake of 2x the validator set: signing stake is read at the epoch's start (activationDelay), a false 2/3 report is vetoed by 1/3".into(),
    });
    // Big stake vs quality: DN per 100 tasks of a 100,000-DN slow worker of quality 0.9 against
    // a 100-DN fast, perfect one, in the same world.
    let per_task = |stake: f64, latency: u32, q: u32| {
        let a = Adversary {
            play: Play::Honest,
            stake,
            latency,
            quality_ppm: q,
            wash: None,
            rival: None,
        };
        let r = average(e, &a);
        r.emission / r.tasks.max(1e-9) * 100.0
    };
    let big = per_task(100_000.0, e.response_window * 9 / 10, 900_000);
    let small = per_task(100.0, 1, 1_000_000);
    out.push(Outcome {
        strategy: "big-stake-vs-quality".into(),
        profit: big,
        honest: small,
        note: "emission per 100 tasks: 100,000-DN slow worker of quality 0.9 vs a 100-DN fast perfect one".into(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Economy {
        Economy {
            honest_workers: 20,
            tasks_per_epoch: 2_000,
            epochs: 10,
            warmup: 4,
            runs: 2,
            ..Economy::default()
        }
    }

    #[test]
    fn quorum_odds_are_binomial() {
        assert!((collusion_majority(1.0 / 3.0, 3) - 7.0 / 27.0).abs() < 1e-12);
        assert!((collusion_majority(0.25, 3) - 10.0 / 64.0).abs() < 1e-12);
        assert_eq!(collusion_majority(0.0, 3), 0.0);
        // the deploy's 5 seats: 3, 4 or 5 colluding members
        assert!((collusion_majority(1.0 / 3.0, 5) - 51.0 / 243.0).abs() < 1e-12);
        assert!(collusion_majority(1.0 / 3.0, 5) < collusion_majority(1.0 / 3.0, 3));
        // not a majority: 0 or 1 colluding seat of 3
        let f: f64 = 0.25;
        let p0 = (1.0 - f).powi(3);
        let p1 = 3.0 * f * (1.0 - f).powi(2);
        assert!((colluders_outvoted(f, 3) - p1 / (p0 + p1)).abs() < 1e-12);
    }

    /// Issue 14, lazy validators: without forced errors approving blindly pays (it saves the
    /// re-execution); the sentinels' default rate makes it lose, with margin over the break-even.
    #[test]
    fn forced_errors_make_a_lazy_validator_lose() {
        let e = small();
        let (lazy, honest, break_even) = lazy_validator(&Economy {
            sentinel_forced_errors: 0.0,
            ..e.clone()
        });
        assert!(lazy > honest, "no sentinel: lazy {lazy} vs honest {honest}");
        let (lazy, honest, at) = lazy_validator(&e);
        assert_eq!(at.to_bits(), break_even.to_bits());
        assert!(lazy < honest, "sentinels: lazy {lazy} vs honest {honest}");
        assert!(
            e.sentinel_forced_errors > 2.0 * break_even,
            "default {} vs break-even {break_even}",
            e.sentinel_forced_errors
        );
    }

    #[test]
    fn a_world_is_a_function_of_its_seed() {
        let e = small();
        let a = Adversary::honest(&e);
        let (x, y) = (run(&e, &a, 7), run(&e, &a, 7));
        assert_eq!(x.profit.to_bits(), y.profit.to_bits());
        assert!(x.tasks > 0.0 && x.emission > 0.0);
    }

    #[test]
    fn an_always_lazy_worker_loses_against_honest_play() {
        let e = small();
        let honest = average(&e, &Adversary::honest(&e)).profit;
        let lazy = average(
            &e,
            &Adversary {
                play: Play::Lazy(1.0),
                ..Adversary::honest(&e)
            },
        )
        .profit;
        assert!(honest > 0.0, "honest work pays: {honest}");
        assert!(lazy < honest, "lazy {lazy} vs honest {honest}");
    }

    #[test]
    fn without_probe_emission_self_dealing_takes_most_of_the_emission() {
        // the finding of issue 14, reproduced under the rules before formula version 4
        let e = Economy {
            probe_emission: false,
            ..small()
        };
        let wash = average(
            &e,
            &Adversary {
                wash: Some((10, u32::MAX, 0.0)),
                ..Adversary::honest(&e)
            },
        );
        assert!(
            wash.emission > 0.5 * e.emission,
            "self-dealing earned {} of {}",
            wash.emission,
            e.emission
        );
    }

    #[test]
    fn with_probe_emission_self_dealing_loses_against_honest_play() {
        let e = small();
        let honest = average(&e, &Adversary::honest(&e));
        for wash in [(10, u32::MAX, 0.0), (200, e.units, e.price)] {
            let w = average(
                &e,
                &Adversary {
                    wash: Some(wash),
                    ..Adversary::honest(&e)
                },
            );
            assert!(
                w.emission < 0.05 * e.emission,
                "{wash:?}: self-dealing earned {} of {}",
                w.emission,
                e.emission
            );
            assert!(
                w.profit <= honest.profit,
                "{wash:?}: self-dealing {} vs honest {}",
                w.profit,
                honest.profit
            );
        }
    }

    #[test]
    fn per_task_a_small_perfect_worker_earns_more_than_a_big_slow_one() {
        // issue 14's big-stake-vs-quality: with a per-epoch 0.5 accuracy prior the small
        // worker's few audits ranked it below a 1000x larger worker of quality 0.9
        // with probe emission a small worker is evaluated only in epochs with a probe (about one
        // an epoch here), so its trust settles over more epochs and its emission is noisier
        let e = Economy {
            epochs: 20,
            warmup: 10,
            runs: 8,
            ..small()
        };
        let per_task = |stake: f64, latency: u32, q: u32| {
            let r = average(
                &e,
                &Adversary {
                    stake,
                    latency,
                    quality_ppm: q,
                    ..Adversary::honest(&e)
                },
            );
            r.emission / r.tasks.max(1e-9)
        };
        let big = per_task(100_000.0, e.response_window * 9 / 10, 900_000);
        let small = per_task(100.0, 1, 1_000_000);
        assert!(big < small, "big {big} vs small {small} per task");
    }

    #[test]
    fn five_zero_ratings_an_epoch_keep_a_rival_on_probation_and_do_not_pay() {
        // issue 14's rating attack: it paid (101,783 vs 57,596 DN/epoch) while ratings alone
        // could delist; now they reach Probation only
        let e = small();
        let compete = average(
            &e,
            &Adversary {
                rival: Some(0),
                ..Adversary::honest(&e)
            },
        );
        let attack = average(
            &e,
            &Adversary {
                rival: Some(5),
                ..Adversary::honest(&e)
            },
        );
        assert!(
            attack.profit < compete.profit,
            "attack {} vs compete {}",
            attack.profit,
            compete.profit
        );
    }
}
