//! Property and scenario tests of the trust and PoWR formulas (`protocol::powr`): random
//! populations from a seeded generator (reproducible), plus the behaviours issue 5 asks for.

use alloy::primitives::{Address, U256};
use protocol::merkle;
use protocol::powr::*;

/// SplitMix64: a tiny, stable, seeded generator (the same numbers on every machine and version).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi]`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn address(&mut self) -> Address {
        let mut b = [0u8; 20];
        for chunk in b.chunks_mut(8) {
            let n = self.next().to_be_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
        Address::from(b)
    }
    fn budget(&mut self) -> U256 {
        // Up to ~1e27 wei (1e9 DN), sometimes tiny.
        match self.range(0, 3) {
            0 => U256::from(self.range(0, 1000)),
            _ => U256::from(self.next()) * U256::from(self.range(1, 1_000_000_000)),
        }
    }
}

const CASES: usize = 300;

fn wad(x: f64) -> u64 {
    (x * WAD as f64) as u64
}

fn as_f(x: u64) -> f64 {
    x as f64 / WAD as f64
}

fn random_facts(rng: &mut Rng) -> NodeEpochFacts {
    let assigned = rng.range(0, 200);
    let on_time = rng.range(0, assigned);
    let audited = rng.range(0, on_time);
    let passed = rng.range(0, audited);
    let quality_sum_ppm = rng.range(0, passed * PPM);
    let window = rng.range(1, 12) as u32;
    let n_lat = rng.range(0, on_time.min(50));
    NodeEpochFacts {
        assigned,
        on_time,
        audited,
        passed,
        quality_sum_ppm,
        heartbeat_epochs_in_window: rng.range(0, u64::from(window)) as u32,
        window,
        latencies_secs: (0..n_lat).map(|_| rng.range(0, 200) as u32).collect(),
        response_window_secs: rng.range(1, 180) as u32,
        slashed: rng.range(0, 30) == 0,
    }
}

/// Facts of a worker that answers every task on time with latency `latency`, passes every audit
/// with quality `quality_ppm`, and sent a heartbeat in every epoch of the window.
fn good_facts(tasks: u64, audited: u64, quality_ppm: u64, latency: u32) -> NodeEpochFacts {
    NodeEpochFacts {
        assigned: tasks,
        on_time: tasks,
        audited,
        passed: audited,
        quality_sum_ppm: audited * quality_ppm,
        heartbeat_epochs_in_window: 6,
        window: 6,
        latencies_secs: vec![latency; tasks as usize],
        response_window_secs: 120,
        slashed: false,
    }
}

#[test]
fn rewards_sum_exactly_to_the_budget() {
    let mut rng = Rng(1);
    for case in 0..CASES {
        let n = rng.range(1, 60) as usize;
        let scores: Vec<(Address, u128)> = (0..n)
            .map(|_| {
                let s = match rng.range(0, 4) {
                    0 => 0,
                    1 => u128::from(rng.range(1, 10)),
                    _ => u128::from(rng.next()) * u128::from(rng.range(1, 1 << 40)),
                };
                (rng.address(), s)
            })
            .collect();
        let budget = rng.budget();
        let rewards = split_budget(budget, &scores).unwrap();
        let sum: U256 = rewards.iter().map(|r| r.1).sum();
        if scores.iter().all(|s| s.1 == 0) {
            assert_eq!(sum, U256::ZERO, "case {case}");
        } else {
            assert_eq!(sum, budget, "case {case}: rewards must sum to the budget");
        }
        // Same accounts, same order, and each within 1 wei of the exact proportional share.
        let total: U256 = scores.iter().map(|s| U256::from(s.1)).sum();
        for ((a, s), (b, r)) in scores.iter().zip(&rewards) {
            assert_eq!(a, b);
            if !total.is_zero() {
                let floor = budget * U256::from(*s) / total;
                assert!(
                    *r == floor || *r == floor + U256::from(1),
                    "case {case}: {r} vs floor {floor}"
                );
            }
        }
        // The rewards tree carries exactly the budget and proves every account.
        let tree = AccountTree::rewards(&merge_rewards([rewards.as_slice()])).unwrap();
        assert_eq!(tree.total(), sum);
        for (a, r) in rewards.iter().filter(|r| !r.1.is_zero()) {
            let (v, proof) = tree.proof(*a).unwrap();
            assert_eq!(v, *r);
            assert!(merkle::verify(&proof, tree.root(), account_leaf(*a, v)));
        }
    }
}

#[test]
fn rewards_are_monotone_in_quality_at_equal_compute() {
    let mut rng = Rng(2);
    for case in 0..CASES {
        let n = rng.range(2, 30) as usize;
        // Every worker does the same tasks (same compute units), all audited; only quality differs.
        let compute: Vec<u32> = (0..rng.range(1, 40))
            .map(|_| rng.range(1, 1000) as u32)
            .collect();
        let trust = TrustState {
            trust_wad: rng.range(1, WAD),
            zero_epochs_left: 0,
        };
        let workers: Vec<(Address, u64)> =
            (0..n).map(|_| (rng.address(), rng.range(0, PPM))).collect();
        let scores: Vec<(Address, u128)> = workers
            .iter()
            .map(|(a, q)| {
                let tasks: Vec<FinalizedTask> = compute
                    .iter()
                    .map(|cu| FinalizedTask {
                        compute_units: *cu,
                        verdict_quality_ppm: Some(*q as u32),
                    })
                    .collect();
                (*a, powr_score(&tasks, 0, trust.trust_wad))
            })
            .collect();
        let budget = rng.budget();
        let rewards = split_budget(budget, &scores).unwrap();
        for i in 0..n {
            for j in 0..n {
                let (qi, qj) = (workers[i].1, workers[j].1);
                let (ri, rj) = (rewards[i].1, rewards[j].1);
                if qi > qj {
                    assert!(
                        ri >= rj,
                        "case {case}: quality {qi} > {qj} but reward {ri} < {rj}"
                    );
                } else if qi == qj {
                    assert!(
                        ri.abs_diff(rj) <= U256::from(1),
                        "case {case}: equal quality, {ri} vs {rj}"
                    );
                }
            }
        }
    }
}

#[test]
fn rewards_are_monotone_in_trust_at_equal_work() {
    let mut rng = Rng(3);
    for case in 0..CASES {
        let tasks: Vec<FinalizedTask> = (0..rng.range(1, 20))
            .map(|_| FinalizedTask {
                compute_units: rng.range(1, 500) as u32,
                verdict_quality_ppm: None,
            })
            .collect();
        let accuracy = rng.range(0, WAD);
        let (t1, t2) = (rng.range(0, WAD), rng.range(0, WAD));
        let (lo, hi) = (t1.min(t2), t1.max(t2));
        assert!(
            powr_score(&tasks, accuracy, lo) <= powr_score(&tasks, accuracy, hi),
            "case {case}"
        );
    }
}

#[test]
fn rates_quality_and_trust_stay_in_the_unit_interval() {
    let mut rng = Rng(4);
    let params = PowrParams::default();
    for case in 0..CASES {
        let mut state: Option<TrustState> = None;
        for epoch in 0..20 {
            let facts = random_facts(&mut rng);
            let e = evaluate_node(state, &facts, &params).unwrap();
            for r in [
                e.rates.completion,
                e.rates.accuracy,
                e.rates.uptime,
                e.rates.speed,
                e.quality_wad,
            ] {
                assert!(r <= WAD, "case {case} epoch {epoch}: {r} > 1");
            }
            assert!(
                e.trust.trust_wad <= WAD,
                "case {case} epoch {epoch}: trust {}",
                e.trust.trust_wad
            );
            assert!(e.trust.zero_epochs_left <= params.slash_zero_epochs);
            if facts.slashed {
                assert_eq!(e.trust.trust_wad, 0);
            }
            // The f64 formula agrees with the fixed-point one.
            let r = e.rates;
            let want = as_f(r.completion).powf(0.3)
                * as_f(r.accuracy).powf(0.4)
                * as_f(r.uptime).powf(0.15)
                * as_f(r.speed).powf(0.15);
            assert!(
                (as_f(e.quality_wad) - want).abs() < 1e-9,
                "case {case}: q {} vs {want}",
                e.quality_wad
            );
            state = Some(e.trust);
        }
    }
}

/// The seed's example (DESIGN.md): two workers serve the same tasks. `careful` returns good
/// results promptly; `burner` burns more hardware (it runs a heavier variant credited 1.5x the
/// compute units, and answers slower) but returns worse results. The careful worker earns more,
/// every epoch and in total.
#[test]
fn better_quality_earns_more_reward_than_more_compute() {
    let params = PowrParams::default();
    let careful = Address::repeat_byte(0xca);
    let burner = Address::repeat_byte(0xb0);
    let budget = U256::from(1_000u64) * U256::from(WAD);
    let (tasks, audited) = (100u64, 20u64);
    let (mut t_careful, mut t_burner) = (None, None);
    let (mut total_careful, mut total_burner) = (U256::ZERO, U256::ZERO);
    for epoch in 0..8 {
        let careful_facts = good_facts(tasks, audited, PPM, 20);
        // 11 of 20 audits pass (quality 1.0), 9 fail (quality 0).
        let burner_facts = NodeEpochFacts {
            passed: 11,
            quality_sum_ppm: 11 * PPM,
            ..good_facts(tasks, audited, PPM, 60)
        };
        let c = evaluate_node(t_careful, &careful_facts, &params).unwrap();
        let b = evaluate_node(t_burner, &burner_facts, &params).unwrap();
        let careful_tasks: Vec<_> = (0..tasks)
            .map(|i| FinalizedTask {
                compute_units: 100,
                verdict_quality_ppm: (i < audited).then_some(PPM as u32),
            })
            .collect();
        let burner_tasks: Vec<_> = (0..tasks)
            .map(|i| FinalizedTask {
                compute_units: 150,
                verdict_quality_ppm: (i < audited).then_some(if i < 11 { PPM as u32 } else { 0 }),
            })
            .collect();
        let scores = [
            (
                careful,
                powr_score(&careful_tasks, c.rates.accuracy, c.trust.trust_wad),
            ),
            (
                burner,
                powr_score(&burner_tasks, b.rates.accuracy, b.trust.trust_wad),
            ),
        ];
        let burner_compute: u64 = burner_tasks
            .iter()
            .map(|t| u64::from(t.compute_units))
            .sum();
        let careful_compute: u64 = careful_tasks
            .iter()
            .map(|t| u64::from(t.compute_units))
            .sum();
        assert!(burner_compute > careful_compute);
        let rewards = split_budget(budget, &scores).unwrap();
        assert!(
            rewards[0].1 > rewards[1].1,
            "epoch {epoch}: careful earned {} <= burner {} (trust {} vs {})",
            rewards[0].1,
            rewards[1].1,
            c.trust.trust_wad,
            b.trust.trust_wad
        );
        assert_eq!(rewards[0].1 + rewards[1].1, budget);
        total_careful += rewards[0].1;
        total_burner += rewards[1].1;
        t_careful = Some(c.trust);
        t_burner = Some(b.trust);
    }
    // Over the run the careful worker earns about 1.5x what the burner does.
    assert!(
        total_careful * U256::from(10) > total_burner * U256::from(14),
        "{total_careful} vs {total_burner}"
    );
}

/// Sortition share of `a` against `b` at equal stake (weight = stake x trust).
fn share(a: u64, b: u64) -> f64 {
    as_f(a) / (as_f(a) + as_f(b))
}

#[test]
fn missing_deadlines_loses_trust_within_a_few_epochs_and_recovers_slowly() {
    let params = PowrParams::default();
    let good = good_facts(20, 4, PPM, 20);
    let (mut worker, mut peer) = (None, None);
    for _ in 0..30 {
        worker = Some(evaluate_node(worker, &good, &params).unwrap().trust);
        peer = Some(evaluate_node(peer, &good, &params).unwrap().trust);
    }
    let (worker0, peer0) = (worker.unwrap(), peer.unwrap());
    let established = worker0.trust_wad;
    assert!(established > wad(0.85), "steady trust {established}");
    assert!((share(worker0.trust_wad, peer0.trust_wad) - 0.5).abs() < 1e-9);

    // The worker goes dark: misses every deadline, heartbeats drop out of the window.
    let bad_epochs = 3;
    let mut w = worker0;
    for k in 1..=bad_epochs {
        let missed = NodeEpochFacts {
            assigned: 20,
            on_time: 0,
            audited: 0,
            passed: 0,
            quality_sum_ppm: 0,
            heartbeat_epochs_in_window: 6 - k,
            window: 6,
            latencies_secs: vec![],
            response_window_secs: 120,
            slashed: false,
        };
        w = evaluate_node(Some(w), &missed, &params).unwrap().trust;
    }
    let fallen = w.trust_wad;
    assert!(
        fallen < wad(0.65),
        "after {bad_epochs} bad epochs trust is still {}",
        as_f(fallen)
    );
    assert!(established - fallen > wad(0.25));
    // It now gets clearly fewer tasks than its peer, and more audits.
    assert!(
        share(fallen, peer0.trust_wad) < 0.42,
        "share {}",
        share(fallen, peer0.trust_wad)
    );
    assert!(audit_rate_wad(fallen, &params) > audit_rate_wad(established, &params));

    // Behaving again: trust climbs, but slower than it fell (uptime window and the 0.8 memory).
    let mut epochs_to_recover = 0;
    let mut k = 0u32;
    while w.trust_wad < established - wad(0.05) {
        k += 1;
        let back = NodeEpochFacts {
            heartbeat_epochs_in_window: (3 + k).min(6),
            ..good.clone()
        };
        let next = evaluate_node(Some(w), &back, &params).unwrap().trust;
        assert!(
            next.trust_wad >= w.trust_wad,
            "recovery must not go backwards"
        );
        assert!(
            next.trust_wad - w.trust_wad <= wad(0.2),
            "a single epoch moves trust by at most 0.2"
        );
        w = next;
        epochs_to_recover += 1;
        assert!(epochs_to_recover < 100, "never recovered");
    }
    assert!(
        epochs_to_recover >= 2 * bad_epochs,
        "recovered in {epochs_to_recover} epochs after losing trust in {bad_epochs}"
    );
}

#[test]
fn a_fresh_address_starts_low() {
    let params = PowrParams::default();
    let fresh = TrustState::new_node(&params);
    assert_eq!(fresh.trust_wad, wad(0.2));
    // Even a perfect first epoch leaves it far below an established node: no whitewashing by
    // re-registering under a new address.
    let perfect = good_facts(50, 10, PPM, 0);
    let first = evaluate_node(None, &perfect, &params).unwrap();
    assert!(
        first.trust.trust_wad < wad(0.4),
        "{}",
        first.trust.trust_wad
    );
    let mut veteran = None;
    for _ in 0..20 {
        veteran = Some(evaluate_node(veteran, &perfect, &params).unwrap().trust);
    }
    assert!(veteran.unwrap().trust_wad > 2 * first.trust.trust_wad);
    // It is audited more often than the veteran.
    assert!(
        audit_rate_wad(first.trust.trust_wad, &params)
            > audit_rate_wad(veteran.unwrap().trust_wad, &params)
    );
    // No data at all is not a perfect record.
    let idle = NodeEpochFacts {
        window: 1,
        heartbeat_epochs_in_window: 1,
        response_window_secs: 120,
        ..Default::default()
    };
    let e = evaluate_node(None, &idle, &params).unwrap();
    assert!(e.quality_wad < wad(0.7) && e.trust.trust_wad < wad(0.4));
}

#[test]
fn a_slashed_node_drops_to_zero_for_k_epochs_then_restarts_at_the_new_node_trust() {
    let params = PowrParams::default();
    let perfect = good_facts(50, 10, PPM, 0);
    let mut s = None;
    for _ in 0..20 {
        s = Some(evaluate_node(s, &perfect, &params).unwrap().trust);
    }
    assert!(s.unwrap().trust_wad > wad(0.8));
    let slashed = evaluate_node(
        s,
        &NodeEpochFacts {
            slashed: true,
            ..perfect.clone()
        },
        &params,
    )
    .unwrap();
    assert_eq!(slashed.trust.trust_wad, 0);
    let tasks = [FinalizedTask {
        compute_units: 100,
        verdict_quality_ppm: Some(PPM as u32),
    }];
    assert_eq!(
        powr_score(&tasks, WAD, slashed.trust.trust_wad),
        0,
        "a slashed node earns nothing"
    );
    let mut t = slashed.trust;
    for k in 1..params.slash_zero_epochs {
        t = evaluate_node(Some(t), &perfect, &params).unwrap().trust;
        assert_eq!(
            t.trust_wad, 0,
            "epoch {k} after the slash: perfect work does not lift the pin"
        );
    }
    // The epoch after the pin starts again from the new-node trust
    // (`epoch::compute` gives an idle node the new-node trust itself); a node that works starts
    // from it: keep x 0.2 + (1 - keep) x q
    for (quality, want) in [(WAD, wad(0.36)), (0, wad(0.16))] {
        let back = next_trust(Some(t), quality, false, &params);
        assert_eq!(back.zero_epochs_left, 0);
        assert!(
            back.trust_wad.abs_diff(want) <= 1,
            "first epoch after the pin (quality {quality}): {}",
            back.trust_wad
        );
    }
    // A new slash while pinned restarts the pin.
    let again = next_trust(
        Some(TrustState {
            trust_wad: 0,
            zero_epochs_left: 1,
        }),
        WAD,
        true,
        &params,
    );
    assert_eq!(
        again,
        TrustState {
            trust_wad: 0,
            zero_epochs_left: params.slash_zero_epochs
        }
    );
}

#[test]
fn report_is_independent_of_input_order() {
    let mut rng = Rng(5);
    for _ in 0..50 {
        let n = rng.range(1, 40) as usize;
        let rewards: Vec<(Address, U256)> = (0..n)
            .map(|_| (rng.address(), U256::from(rng.range(0, 1 << 50))))
            .collect();
        let trust: Vec<(Address, u64)> = rewards
            .iter()
            .map(|(a, _)| (*a, rng.range(0, WAD)))
            .collect();
        let mut rev_rewards = rewards.clone();
        rev_rewards.reverse();
        let mut rev_trust = trust.clone();
        rev_trust.reverse();
        let status = alloy::primitives::keccak256(b"statuses");
        let a = build_report(
            7,
            &AccountTree::rewards(&rewards).unwrap(),
            &AccountTree::trust(&trust).unwrap(),
            status,
        );
        let b = build_report(
            7,
            &AccountTree::rewards(&rev_rewards).unwrap(),
            &AccountTree::trust(&rev_trust).unwrap(),
            status,
        );
        assert_eq!(a, b);
        let settlement = rng.address();
        assert_eq!(
            report_digest(&a, 31337, settlement),
            report_digest(&b, 31337, settlement)
        );
        assert_ne!(
            report_digest(&a, 31337, settlement),
            report_digest(&a, 1, settlement)
        );
    }
}

/// The indexer's epoch at the scale the README quotes: 1,000 nodes, 10,000 tasks, both trees.
#[test]
fn an_epoch_of_10k_tasks_and_1k_nodes_computes_quickly() {
    let mut rng = Rng(6);
    let params = PowrParams::default();
    let start = std::time::Instant::now();
    let mut scores = Vec::new();
    let mut trust = Vec::new();
    for _ in 0..1000 {
        let facts = random_facts(&mut rng);
        let e = evaluate_node(
            Some(TrustState {
                trust_wad: rng.range(0, WAD),
                zero_epochs_left: 0,
            }),
            &facts,
            &params,
        )
        .unwrap();
        let tasks: Vec<_> = (0..10)
            .map(|_| FinalizedTask {
                compute_units: rng.range(1, 100) as u32,
                verdict_quality_ppm: (rng.range(0, 4) == 0).then(|| rng.range(0, PPM) as u32),
            })
            .collect();
        let a = rng.address();
        scores.push((a, powr_score(&tasks, e.rates.accuracy, e.trust.trust_wad)));
        trust.push((a, e.trust.trust_wad));
    }
    let budget = U256::from(1_000_000u64) * U256::from(WAD);
    let rewards = split_budget(budget, &scores).unwrap();
    let rtree = AccountTree::rewards(&rewards).unwrap();
    let ttree = AccountTree::trust(&trust).unwrap();
    let report = build_report(1, &rtree, &ttree, Default::default());
    let proofs = rewards.iter().filter_map(|(a, _)| rtree.proof(*a)).count();
    let elapsed = start.elapsed();
    println!("epoch of 10,000 tasks / 1,000 nodes: {elapsed:?} ({proofs} proofs)");
    assert_eq!(report.totalRewards, budget);
    assert!(elapsed.as_secs_f64() < 5.0, "took {elapsed:?}");
}
