//! The validation layer against adversaries, end to end: a real anvil, the forge-deployed
//! contracts, executor and verifier processes running the digits model through ONNX Runtime.
//! - a cheating executor is caught by audits, slashed, and its users refunded; honest workers
//!   and validators are never slashed;
//! - a lazy executor that "fails" good inputs is convicted the same way, while a real input
//!   fault is reproduced by the verifier and pays the worker its processing share;
//! - a validator that signs false mismatches is outvoted by the quorum and slashed;
//! - a rubber-stamping validator approves a planted forced error and is slashed as lazy;
//! - the sentinel service (`executor --sentinel-key`) plants forced errors on its own tasks by
//!   itself: the lazy validator is slashed, the honest one rejects them and costs it nothing;
//! - replayed, forged, wrong-signer and late verdicts are refused by the contract.

use alloy::primitives::{keccak256, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use anyhow::{Context, Result};
use devnet::{key_hex, Devnet, DevnetConfig};
use protocol::bindings::{IAuditManager, IStaking, ITaskManager};
use protocol::verdict::{sign_verdict, signature_bytes, Verdict};
use std::time::{Duration, Instant};

mod common;
use common::*;

fn inputs(n: usize) -> Vec<Vec<u8>> {
    let samples = devnet::digits::heldout().unwrap();
    samples[..n]
        .iter()
        .map(|s| devnet::digits::encode_input(&s.pixels).unwrap())
        .collect()
}
/// How long the verifiers may take to join the audit draw after they start.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

fn audit_all() -> DevnetConfig {
    DevnetConfig {
        workers: 3,
        validators: 4,
        challenge_window: 40,
        response_window: 60,
        audit_p0_wad: Some(WAD),
        audit_p_min_wad: Some(WAD),
        dispute_window: Some(30),
        quorum: Some(3),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheater_is_caught_slashed_and_users_refunded_while_honest_nodes_keep_their_stake(
) -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(audit_all()).await?;
    let cheat_log = net.work_dir.join("cheated.txt");
    let mut procs = Procs(Vec::new());
    for i in 0..net.validators.len() {
        procs.0.push(verifier(&net, i, "honest"));
    }
    procs.0.push(executor(
        &net,
        0,
        &[
            "--test-cheat-rate".into(),
            "0.5".into(),
            "--test-cheat-log".into(),
            cheat_log.display().to_string(),
        ],
    ));
    for i in 1..net.workers.len() {
        procs.0.push(executor(&net, i, &[]));
    }
    // the verifiers join the audit draw before any result is committed
    let all: Vec<usize> = (0..net.validators.len()).collect();
    net.wait_validators_joined(&all, JOIN_TIMEOUT).await?;
    // The cheater cheats on the task ids its seed picks (half of them); which ids sortition draws
    // for it is chance, so rounds of 24 tasks go on until it has cheated at least once (a round
    // without a cheat happens about once in a hundred runs).
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    let mut cheated: Vec<U256> = Vec::new();
    for round in 1..=4 {
        let batch = net.submit_inputs(net.model_id, &inputs(24), 8).await?;
        match wait_settled(&net, &batch, Duration::from_secs(240)).await {
            Ok(s) => statuses.extend(s),
            Err(e) => panic!(
                "{e}\n{}\n{}",
                logs_of(&net, "verifier"),
                logs_of(&net, "executor")
            ),
        }
        ids.extend(batch);
        cheated = std::fs::read_to_string(&cheat_log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        if !cheated.is_empty() {
            break;
        }
        eprintln!("round {round}: no cheat among the cheater's draws; another round");
    }
    let cheater = net.workers[0].address();
    let p = net.provider(&net.user);
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    let mut refunded = Vec::new();
    for (id, s) in ids.iter().zip(&statuses) {
        if *s == 5 {
            refunded.push(*id);
            assert_eq!(
                tm.getTask(*id).call().await?.worker,
                cheater,
                "only the cheater's tasks are refunded"
            );
        }
    }
    assert!(
        !cheated.is_empty(),
        "the cheater cheated on some of its tasks\n{}",
        logs_of(&net, "executor")
    );
    for id in &refunded {
        assert!(
            cheated.contains(id),
            "refunded task {id} was one the cheater cheated on"
        );
    }
    // Every task is audited (p = 1) and a faked int64 label never equals the real class, so every
    // cheat is caught.
    assert_eq!(
        refunded.len(),
        cheated.len(),
        "caught {refunded:?} of cheated {cheated:?}"
    );
    let slashed = slashes(&net).await?;
    let fraud: Vec<_> = slashed
        .iter()
        .filter(|s| s.0 == cheater && s.2 == 1)
        .collect();
    assert_eq!(
        fraud.len(),
        refunded.len(),
        "one fraud slash per caught task: {slashed:?}"
    );
    assert!(
        slashed.iter().all(|s| s.0 == cheater),
        "nobody but the cheater is slashed: {slashed:?}"
    );
    let staking = IStaking::new(net.deployment.staking, &p);
    let stake = staking.stakeOf(cheater, 0).call().await?;
    // each proven fraud takes half of what is left (fraudSlashBps 5000)
    let initial = U256::from(net.config.worker_stake_dn) * U256::from(protocol::DN);
    assert_eq!(
        stake,
        initial >> fraud.len(),
        "stake after {} frauds",
        fraud.len()
    );
    for w in &net.workers[1..] {
        assert_eq!(
            staking.stakeOf(w.address(), 0).call().await?,
            U256::from(net.config.worker_stake_dn) * U256::from(protocol::DN),
            "honest worker keeps its full stake"
        );
    }
    // every caught task has a mismatch verdict and a Fraud resolution
    let resolved =
        events::<IAuditManager::DisputeResolved>(&net, net.deployment.audit_manager).await?;
    for id in &refunded {
        assert!(
            resolved.iter().any(|r| r.taskId == *id && r.outcome == 3),
            "task {id} resolved as fraud"
        );
    }
    let verdicts =
        events::<IAuditManager::VerdictAccepted>(&net, net.deployment.audit_manager).await?;
    let committed_ok = ids.len(); // every task was committed with code 0 and audited (p = 1)
    assert_eq!(
        verdicts.len(),
        committed_ok,
        "one verdict per task: {verdicts:?}"
    );
    drop(procs);
    Ok(())
}

/// Finding M-4, end to end: a lazy worker that commits `input_decode` for good inputs without
/// running them is audited like any worker (the verifiers re-run the task, get a result, and the
/// quorum convicts it), while a real input fault (bytes that are no tensor document) is
/// reproduced by the verifier, passes, and pays the worker its processing share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_worker_failing_good_inputs_is_convicted_and_a_real_input_fault_passes() -> Result<()>
{
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(DevnetConfig {
        workers: 2,
        ..audit_all()
    })
    .await?;
    let cheat_log = net.work_dir.join("lazy.txt");
    let mut procs = Procs(Vec::new());
    for i in 0..net.validators.len() {
        procs.0.push(verifier(&net, i, "honest"));
    }
    // it fails every task it is drawn for: at a rate of 0.5 (a fixed set of about half the task
    // ids) the draw could give it none of the good inputs it would fail, and did once (2026-12-03)
    procs.0.push(executor(
        &net,
        0,
        &[
            "--test-cheat-rate".into(),
            "1".into(),
            "--test-cheat-fail".into(),
            "--test-cheat-log".into(),
            cheat_log.display().to_string(),
        ],
    ));
    procs.0.push(executor(&net, 1, &[]));
    let all: Vec<usize> = (0..net.validators.len()).collect();
    net.wait_validators_joined(&all, JOIN_TIMEOUT).await?;
    let mut batch = inputs(10);
    batch.push(b"these bytes are no safetensors document".to_vec());
    batch.push(b"neither are these".to_vec());
    let ids = net.submit_inputs(net.model_id, &batch, 12).await?;
    let bad: Vec<U256> = ids[10..].to_vec();
    let statuses = match wait_settled(&net, &ids, Duration::from_secs(240)).await {
        Ok(s) => s,
        Err(e) => panic!(
            "{e}\n{}\n{}",
            logs_of(&net, "verifier"),
            logs_of(&net, "executor")
        ),
    };
    let lazy = net.workers[0].address();
    let cheated: Vec<U256> = std::fs::read_to_string(&cheat_log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let good_cheated: Vec<U256> = cheated
        .iter()
        .copied()
        .filter(|id| !bad.contains(id))
        .collect();
    let p = net.provider(&net.user);
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    let refunded: Vec<U256> = ids
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| **s == 5)
        .map(|(id, _)| *id)
        .collect();
    for id in &refunded {
        assert_eq!(tm.getTask(*id).call().await?.worker, lazy);
    }
    let mut want = good_cheated.clone();
    want.sort();
    let mut got = refunded.clone();
    got.sort();
    // a worker whose trust fell to 0 after its first conviction is drawn no more, so the lazy
    // worker may have served only some tasks; every good input it "failed" is caught
    assert!(
        !good_cheated.is_empty(),
        "the lazy worker failed no good input: cheated {cheated:?}"
    );
    assert_eq!(
        got, want,
        "refunded = the good inputs the lazy worker failed"
    );
    let resolved =
        events::<IAuditManager::DisputeResolved>(&net, net.deployment.audit_manager).await?;
    for id in &refunded {
        assert!(
            resolved.iter().any(|r| r.taskId == *id && r.outcome == 3),
            "task {id} resolved as fraud: {resolved:?}"
        );
    }
    let slashed = slashes(&net).await?;
    assert!(
        slashed.iter().any(|s| s.0 == lazy && s.2 == 1),
        "the lazy worker is slashed for fraud: {slashed:?}"
    );
    assert!(
        slashed.iter().all(|s| s.0 == lazy),
        "nobody else is slashed: {slashed:?}"
    );
    // the real input faults: committed as code 1, reproduced by the verifier, paid 10%
    let verdicts =
        events::<IAuditManager::VerdictAccepted>(&net, net.deployment.audit_manager).await?;
    let finalized =
        events::<ITaskManager::TaskFinalized>(&net, net.deployment.task_manager).await?;
    for id in &bad {
        let t = tm.getTask(*id).call().await?;
        assert_eq!(t.status, 4, "input fault {id} finalized");
        assert_eq!(t.code, 1, "input fault {id} committed as input_decode");
        assert!(
            verdicts.iter().any(|v| v.taskId == *id && v.matches),
            "input fault {id} audited and reproduced: {verdicts:?}"
        );
        let f = finalized
            .iter()
            .find(|f| f.taskId == *id)
            .expect("TaskFinalized");
        assert_eq!(f.code, 1);
        assert_eq!(f.workerFee, t.fee / U256::from(10), "processing share");
        assert_eq!(f.refund, t.fee - f.workerFee);
    }
    drop(procs);
    Ok(())
}

/// Starts validators `0..liars` as TEST-ONLY false accusers, the others honest, and an honest
/// executor per worker; returns once every validator has joined the audit draw.
async fn false_accusers_and_honest_nodes(net: &Devnet, liars: usize) -> Result<Procs> {
    let mut procs = Procs(Vec::new());
    for i in 0..net.validators.len() {
        let mode = if i < liars { "false-accuse" } else { "honest" };
        procs.0.push(verifier(net, i, mode));
    }
    for i in 0..net.workers.len() {
        procs.0.push(executor(net, i, &[]));
    }
    let all: Vec<usize> = (0..net.validators.len()).collect();
    net.wait_validators_joined(&all, JOIN_TIMEOUT).await?;
    Ok(procs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_signing_false_mismatches_is_outvoted_and_slashed() -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(audit_all()).await?;
    let procs = false_accusers_and_honest_nodes(&net, 1).await?;
    let liar = net.validators[0].address();
    let admin = net.provider(&net.deployer);
    let am = IAuditManager::new(net.deployment.audit_manager, &admin);
    // The auditor of each task is a stake-weighted draw (the liar holds 1/4): keep submitting
    // rounds until the liar has been drawn at least once, so that the test cannot pass vacuously
    // nor fail on an unlucky draw; every draw of the liar must then become a dispute.
    let mut liar_draws = 0usize;
    let mut audited = 0usize;
    for round in 0..4 {
        let ids = net.submit_inputs(net.model_id, &inputs(8), 8).await?;
        let statuses = match wait_settled(&net, &ids, Duration::from_secs(240)).await {
            Ok(s) => s,
            Err(e) => panic!("round {round}: {e}\n{}", logs_of(&net, "verifier")),
        };
        assert!(
            statuses.iter().all(|s| *s == 4),
            "every honest result is paid: {statuses:?}"
        );
        for c in events::<ITaskManager::ResultsCommitted>(&net, net.deployment.task_manager).await?
        {
            for id in c.taskIds.iter().filter(|id| ids.contains(id)) {
                let d = am.auditOf(c.batchId, *id).call().await?;
                audited += usize::from(d.audited);
                liar_draws += usize::from(d.audited && d.validator == liar);
            }
        }
        if liar_draws > 0 {
            break;
        }
    }
    assert!(
        audited >= 8,
        "audit rate 1: every task is audited ({audited})"
    );
    assert!(liar_draws > 0, "the liar was drawn in 32 audits");
    let slashed = slashes(&net).await?;
    let disputes =
        events::<IAuditManager::DisputeOpened>(&net, net.deployment.audit_manager).await?;
    assert_eq!(
        disputes.len(),
        liar_draws,
        "every audit drawn to the liar became its accusation"
    );
    assert!(disputes.iter().all(|d| d.accuser == liar));
    let false_acc: Vec<_> = slashed.iter().filter(|s| s.0 == liar && s.2 == 2).collect();
    assert_eq!(
        false_acc.len(),
        disputes.len(),
        "slashed once per false accusation: {slashed:?}"
    );
    assert!(
        slashed.iter().all(|s| s.0 == liar),
        "only the liar is slashed: {slashed:?}"
    );
    drop(procs);
    Ok(())
}

/// Issue 14, section 3: a quorum member that votes with a losing minority loses
/// `minoritySlashBps` (10%) of its validator stake. Two false accusers among five validators:
/// each one's accusations seat the other in the quorum now and then (the accuser and the worker
/// are never seated), where it votes Fraud against two honest members and is outvoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_member_voting_with_the_losing_minority_is_slashed() -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(DevnetConfig {
        workers: 2,
        validators: 5,
        ..audit_all()
    })
    .await?;
    let procs = false_accusers_and_honest_nodes(&net, 2).await?;
    let liars = [net.validators[0].address(), net.validators[1].address()];
    // Rounds until a liar has voted in the other's dispute (the deploy's 5 seats exceed the four
    // validators other than the accuser, so each dispute seats the other liar).
    let mut minority_votes = Vec::new();
    for round in 0..6 {
        let ids = net.submit_inputs(net.model_id, &inputs(8), 8).await?;
        let statuses = match wait_settled(&net, &ids, Duration::from_secs(240)).await {
            Ok(s) => s,
            Err(e) => panic!("round {round}: {e}\n{}", logs_of(&net, "verifier")),
        };
        assert!(
            statuses.iter().all(|s| *s == 4),
            "every honest result is paid: {statuses:?}"
        );
        let votes =
            events::<IAuditManager::DisputeVoted>(&net, net.deployment.audit_manager).await?;
        minority_votes = votes
            .into_iter()
            .filter(|v| liars.contains(&v.validator) && v.fraud)
            .collect();
        if !minority_votes.is_empty() {
            break;
        }
    }
    assert!(
        !minority_votes.is_empty(),
        "no liar was seated in the other's quorum in 48 audited tasks"
    );
    let resolved =
        events::<IAuditManager::DisputeResolved>(&net, net.deployment.audit_manager).await?;
    let slashed = slashes(&net).await?;
    for v in &minority_votes {
        let r = resolved
            .iter()
            .find(|r| r.taskId == v.taskId)
            .unwrap_or_else(|| panic!("dispute over task {} never resolved", v.taskId));
        assert!(
            r.honestVotes > r.fraudVotes,
            "the honest majority wins: {} fraud vs {} honest",
            r.fraudVotes,
            r.honestVotes
        );
    }
    // Reason 5 (minority vote), role 1 (validator), once per losing vote of a liar.
    let minority: Vec<_> = slashed.iter().filter(|s| s.2 == 5).collect();
    assert_eq!(
        minority.len(),
        minority_votes.len(),
        "one minority slash per losing vote: {slashed:?}"
    );
    assert!(minority
        .iter()
        .all(|s| liars.contains(&s.0) && s.1 == 1 && s.3 > U256::ZERO));
    assert!(
        slashed.iter().all(|s| liars.contains(&s.0)),
        "no honest validator or worker is slashed: {slashed:?}"
    );
    drop(procs);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rubber_stamp_validator_approves_a_forced_error_and_is_slashed() -> Result<()> {
    let _turn = SERIAL.lock().await;
    // One worker (the sentinel, driven by this test) and one lazy validator.
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        validators: 1,
        challenge_window: 60,
        audit_p0_wad: Some(WAD),
        audit_p_min_wad: Some(WAD),
        ..Default::default()
    })
    .await?;
    // The planter is the devnet user: it submits its own tasks, served by its registered sentinel.
    let admin = net.provider(&net.deployer);
    let sentinel = &net.workers[0];
    let sp = net.provider(sentinel);
    let planter = net.provider(&net.user);
    let audit_admin = IAuditManager::new(net.deployment.audit_manager, &admin);
    let planter_role = keccak256("PLANTER_ROLE");
    // the admin's grant goes through the admin timelock (delay 0 on the devnet)
    let grant = Roles::grantRoleCall {
        role: planter_role,
        account: net.user.address(),
    };
    net.admin_call(
        net.deployment.audit_manager,
        alloy::sol_types::SolCall::abi_encode(&grant).into(),
    )
    .await?;
    assert!(
        Roles::new(net.deployment.audit_manager, &admin)
            .hasRole(planter_role, net.user.address())
            .call()
            .await?,
        "PLANTER_ROLE granted through the timelock"
    );
    let sa = IAuditManager::new(net.deployment.audit_manager, &planter);

    let procs = Procs(vec![verifier(&net, 0, "rubber-stamp")]);
    net.wait_validators_joined(&[0], JOIN_TIMEOUT).await?;
    let ids = net.submit_inputs(net.model_id, &inputs(2), 2).await?;
    // no executor runs: the test plays the sentinel, so it draws the workers itself
    net.assign(&ids).await?;

    // The sentinel knows the true answer (it runs the model), plants its commitment, then commits
    // a wrong output for task 0 and the true one for task 1.
    let rt = inference::Runtime::init(None)?;
    let mut model = inference::Model::load(
        &rt,
        devnet::digits::model_path(),
        inference::Device::Cpu,
        Some(1),
    )?;
    let input0 = inputs(2);
    let true0 = model.run(&input0[0])?;
    let true1 = model.run(&input0[1])?;
    let true_hash = keccak256(&true0);
    let salt = B256::repeat_byte(7);
    let commitment = keccak256((ids[0], true_hash, salt).abi_encode());
    sa.plantForcedError(commitment)
        .send()
        .await?
        .get_receipt()
        .await?;
    let wrong_label = (devnet::digits::decode_label(&true0).unwrap() + 1) % 10;
    let wrong = forged_output(&true0, wrong_label)?;
    let tm = ITaskManager::new(net.deployment.task_manager, &sp);
    let outputs = vec![Bytes::from(wrong.clone()), Bytes::from(true1.clone())];
    let r = tm
        .commitBatch(
            ids.clone(),
            vec![keccak256(&wrong), keccak256(&true1)],
            vec![0, 0],
            outputs,
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(r.status());

    // the lazy verifier seals and approves both
    let start = Instant::now();
    let lazy = net.validators[0].address();
    loop {
        let rec = audit_admin.auditRecord(ids[0]).call().await?;
        if rec.state == 1 {
            assert_eq!(rec.accuser, lazy);
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!(
                "no verdict on the forced error: {}",
                logs_of(&net, "verifier")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let stake_before = IStaking::new(net.deployment.staking, &admin)
        .stakeOf(lazy, 1)
        .call()
        .await?;
    // the task's submitter (the planter itself here) and its worker consent to the reveal
    let consent = |signer: &PrivateKeySigner| -> Result<Bytes> {
        let sig = protocol::verdict::forced_error_consent(
            signer,
            net.chain_id,
            net.deployment.audit_manager,
            ids[0],
            net.user.address(),
        )?;
        Ok(Bytes::from(sig.to_vec()))
    };
    let r = sa
        .revealForcedError(
            ids[0],
            true_hash,
            salt,
            consent(&net.user)?,
            consent(sentinel)?,
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(r.status(), "reveal succeeds");
    let slashed = slashes(&net).await?;
    assert_eq!(slashed.len(), 1, "{slashed:?}");
    assert_eq!(
        (slashed[0].0, slashed[0].1, slashed[0].2),
        (lazy, 1, 3),
        "lazy validator slashed"
    );
    let stake_after = IStaking::new(net.deployment.staking, &admin)
        .stakeOf(lazy, 1)
        .call()
        .await?;
    assert_eq!(stake_before - stake_after, slashed[0].3);
    assert_eq!(
        audit_admin.auditRecord(ids[0]).call().await?.state,
        6,
        "ForcedError"
    );
    drop(procs);

    // Verdict abuse against the live contract. The verifier is stopped; the sentinel commits a
    // third task, and this test signs verdicts for it with known keys.
    let more = net.submit_inputs(net.model_id, &inputs(3)[2..], 1).await?;
    net.assign(&more).await?;
    let out2 = model.run(&inputs(3)[2])?;
    let h2 = keccak256(&out2);
    let r = tm
        .commitBatch(
            more.clone(),
            vec![h2],
            vec![0],
            vec![Bytes::from(out2.clone())],
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    let batch_id = r
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<ITaskManager::ResultsCommitted>().ok())
        .map(|l| l.inner.data.batchId)
        .context("ResultsCommitted")?;
    net.advance_time(1).await?;
    net.advance_time(1).await?;
    audit_admin
        .sealBatch(batch_id)
        .send()
        .await?
        .get_receipt()
        .await?;
    let drawn = audit_admin.auditOf(batch_id, more[0]).call().await?;
    assert!(drawn.audited && drawn.validator == lazy);
    let now = admin
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .unwrap()
        .header
        .timestamp;
    let good = Verdict {
        taskId: more[0],
        batchId: batch_id,
        workerOutputHash: h2,
        validatorOutputHash: h2,
        qualityPpm: 1_000_000,
        matches: true,
        deadline: now + 600,
    };
    let submit = |v: Verdict, key: &PrivateKeySigner| {
        let sig = sign_verdict(key, &v, net.chain_id, net.deployment.audit_manager).unwrap();
        let onchain = v.to_call();
        let am = IAuditManager::new(net.deployment.audit_manager, admin.clone());
        async move {
            // a single commit: the root is the leaf, the proof is empty
            am.submitVerdicts(
                vec![onchain],
                vec![Bytes::from(signature_bytes(&sig).to_vec())],
                vec![vec![]],
            )
            .send()
            .await
        }
    };
    let refused = |r: Result<_, alloy::contract::Error>| match r {
        Ok(_) => panic!("verdict accepted"),
        Err(e) => e
            .as_decoded_interface_error::<IAuditManager::IAuditManagerErrors>()
            .unwrap_or_else(|| panic!("undecoded error {e}")),
    };
    use IAuditManager::IAuditManagerErrors as E;
    let stranger = PrivateKeySigner::random();
    assert!(
        matches!(
            refused(submit(good.clone(), &stranger).await),
            E::WrongSigner(_)
        ),
        "forged signature"
    );
    assert!(
        matches!(
            refused(submit(good.clone(), &net.deployer).await),
            E::WrongSigner(_)
        ),
        "wrong signer"
    );
    let mut late = good.clone();
    late.deadline = now - 1;
    assert!(
        matches!(
            refused(submit(late, &net.validators[0]).await),
            E::VerdictExpired(_)
        ),
        "late verdict"
    );
    let ok = submit(good.clone(), &net.validators[0])
        .await?
        .get_receipt()
        .await?;
    assert!(ok.status(), "the drawn validator's verdict is accepted");
    assert!(
        matches!(
            refused(submit(good.clone(), &net.validators[0]).await),
            E::AlreadyJudged(_)
        ),
        "replay"
    );
    let mut other_task = good.clone();
    other_task.taskId = ids[1];
    assert!(
        matches!(
            refused(submit(other_task, &net.validators[0]).await),
            E::AlreadyJudged(_) | E::TaskNotOpen(_) | E::NotInBatch(_) | E::WrongBatch(_)
        ),
        "a verdict moved to another task"
    );
    Ok(())
}

/// The digits model's output with a different label and one-hot probabilities for it.
fn forged_output(real: &[u8], label: i64) -> Result<Vec<u8>> {
    let st = safetensors::SafeTensors::deserialize(real).context("real output")?;
    let probs = st.tensor("probabilities").context("probabilities")?;
    let n = probs.shape().iter().product::<usize>();
    let mut p = vec![0f32; n];
    p[label as usize] = 1.0;
    let pb: Vec<u8> = p.iter().flat_map(|x| x.to_le_bytes()).collect();
    let lb = label.to_le_bytes();
    let pv =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, probs.shape().to_vec(), &pb)?;
    let lv = safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1], &lb)?;
    Ok(safetensors::serialize(
        [("label", lv), ("probabilities", pv)],
        None,
    )?)
}

alloy::sol! {
    #[sol(rpc)]
    contract Roles {
        function grantRole(bytes32 role, address account) external;
        function hasRole(bytes32 role, address account) external view returns (bool);
    }
}

/// Issue 14, lazy validators: the sentinel service (`executor --sentinel-key`), with nothing
/// driven by the test, plants forced errors on its submitter's tasks. Its planter got
/// PLANTER_ROLE from the deploy script. A rubber-stamping validator approves one and is slashed as lazy
/// (reason 3); an honest validator rejects them, and the reveal closes the dispute without
/// slashing the sentinel worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentinel_service_catches_a_lazy_validator_and_an_honest_one_costs_it_nothing(
) -> Result<()> {
    let _turn = SERIAL.lock().await;
    // three unlinked wallets: the planter (PLANTER_ROLE from the deploy script), the submitter
    // (DN for fees) and the staked sentinel worker
    let planter = PrivateKeySigner::random();
    let submitter = PrivateKeySigner::random();
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        validators: 2,
        challenge_window: 60,
        audit_p0_wad: Some(WAD),
        audit_p_min_wad: Some(WAD),
        sentinel_planter: Some(planter.address()),
        ..Default::default()
    })
    .await?;
    fund_wallet(&net, planter.address(), 0).await?;
    fund_wallet(&net, submitter.address(), 100).await?;
    let dir = net.work_dir.join("sentinel-inputs");
    std::fs::create_dir_all(&dir)?;
    for (i, input) in inputs(3).iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.safetensors")), input)?;
    }
    let mut procs = Procs(vec![
        verifier(&net, 0, "rubber-stamp"),
        verifier(&net, 1, "honest"),
    ]);
    net.wait_validators_joined(&[0, 1], JOIN_TIMEOUT).await?;
    procs.0.push(executor_with(
        &net,
        0,
        &[
            "--sentinel-model".into(),
            net.model_id.to_string(),
            "--sentinel-inputs".into(),
            dir.display().to_string(),
            "--sentinel-interval-secs".into(),
            "2".into(),
            "--sentinel-rate".into(),
            "1".into(),
        ],
        &[
            ("DN_SENTINEL_PRIVATE_KEY", key_hex(&planter)),
            ("DN_SENTINEL_SUBMITTER_KEY", key_hex(&submitter)),
        ],
    ));
    let (lazy, honest) = (net.validators[0].address(), net.validators[1].address());
    let start = Instant::now();
    let revealed = loop {
        let revealed =
            events::<IAuditManager::ForcedErrorRevealed>(&net, net.deployment.audit_manager)
                .await?;
        let caught = revealed.iter().any(|r| r.caughtLazy && r.validator == lazy);
        let rejected = revealed
            .iter()
            .any(|r| !r.caughtLazy && r.validator == honest);
        if caught && rejected {
            break revealed;
        }
        if start.elapsed() > Duration::from_secs(180) {
            panic!(
                "the sentinel did not see both verdicts: {revealed:?}\n{}",
                logs_of(&net, "executor")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // every revealed forced error is the submitter's task, served by the sentinel
    let tm = ITaskManager::new(net.deployment.task_manager, net.provider(&net.user));
    for r in &revealed {
        let t = tm.getTask(r.taskId).call().await?;
        assert_eq!(t.submitter, submitter.address());
        assert_eq!(t.worker, net.workers[0].address());
        assert_eq!(r.caughtLazy, r.validator == lazy, "{r:?}");
    }
    let slashed = slashes(&net).await?;
    let lazy_slashes = slashed.iter().filter(|s| s.0 == lazy).count();
    assert_eq!(
        lazy_slashes,
        revealed.iter().filter(|r| r.caughtLazy).count(),
        "one lazy slash per approved forced error: {slashed:?}"
    );
    assert!(
        slashed.iter().all(|s| s.0 == lazy && s.1 == 1 && s.2 == 3),
        "only the lazy validator is slashed, as lazy (role 1, reason 3): {slashed:?}"
    );
    drop(procs);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_from_an_unlinked_wallet_catches_a_cheater_through_a_challenge() -> Result<()> {
    let _turn = SERIAL.lock().await;
    // Random audits off: only the canary path can catch the (always cheating) worker.
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        validators: 4,
        challenge_window: 40,
        audit_p0_wad: Some(0),
        audit_p_min_wad: Some(0),
        dispute_window: Some(30),
        quorum: Some(3),
        ..Default::default()
    })
    .await?;
    // The canary wallet: DN for fees and the bond, no stake, no link to the validator.
    let canary = PrivateKeySigner::random();
    let admin = net.provider(&net.deployer);
    fund_wallet(&net, canary.address(), 100).await?;
    let dir = net.work_dir.join("canary-inputs");
    std::fs::create_dir_all(&dir)?;
    for (i, input) in inputs(2).iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.safetensors")), input)?;
    }
    let mut procs = Procs(Vec::new());
    procs.0.push(verifier_with(
        &net,
        0,
        "honest",
        &[
            "--canary-model".into(),
            net.model_id.to_string(),
            "--canary-inputs".into(),
            dir.display().to_string(),
            "--canary-interval-secs".into(),
            "3".into(),
        ],
        &[("DN_CANARY_PRIVATE_KEY", key_hex(&canary))],
    ));
    for i in 1..net.validators.len() {
        procs.0.push(verifier(&net, i, "honest"));
    }
    let all: Vec<usize> = (0..net.validators.len()).collect();
    net.wait_validators_joined(&all, JOIN_TIMEOUT).await?;
    procs
        .0
        .push(executor(&net, 0, &["--test-cheat-rate".into(), "1".into()]));

    let cheater = net.workers[0].address();
    let start = Instant::now();
    let (report, resolved) = loop {
        let reports =
            events::<IAuditManager::CanaryReported>(&net, net.deployment.audit_manager).await?;
        let resolved =
            events::<IAuditManager::DisputeResolved>(&net, net.deployment.audit_manager).await?;
        if let Some(r) = reports.iter().find(|r| !r.matches) {
            if let Some(d) = resolved.iter().find(|d| d.taskId == r.taskId) {
                break (r.clone(), d.clone());
            }
        }
        if start.elapsed() > Duration::from_secs(150) {
            panic!(
                "no caught canary yet: reports {reports:?}\n{}",
                logs_of(&net, "verifier")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(report.worker, cheater);
    assert_eq!(
        report.validator,
        net.validators[0].address(),
        "the validator reports its canary"
    );
    assert_eq!(resolved.outcome, 3, "the quorum finds fraud");
    let opened = events::<IAuditManager::DisputeOpened>(&net, net.deployment.audit_manager).await?;
    let d = opened
        .iter()
        .find(|d| d.taskId == report.taskId)
        .expect("dispute opened");
    assert_eq!(
        d.accuser,
        canary.address(),
        "the canary wallet challenged as the task's submitter"
    );
    assert_eq!(d.opener, 1, "a user challenge");
    let tm = ITaskManager::new(net.deployment.task_manager, &admin);
    let task = tm.getTask(report.taskId).call().await?;
    assert_eq!(task.submitter, canary.address());
    assert_eq!(task.status, 5, "refunded");
    let slashed = slashes(&net).await?;
    assert!(
        slashed.iter().any(|s| s.0 == cheater && s.2 == 1),
        "{slashed:?}"
    );
    assert!(slashed.iter().all(|s| s.0 == cheater), "{slashed:?}");
    // the bond came back with the bounty, and the fee is refunded as a payout
    assert_eq!(tm.payoutOf(canary.address()).call().await?, task.fee);
    drop(procs);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_never_audits_is_reported_for_its_missed_deadlines() -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        validators: 2,
        challenge_window: 12,
        audit_p0_wad: Some(WAD),
        audit_p_min_wad: Some(WAD),
        ..Default::default()
    })
    .await?;
    // validator 1 joins the draw but runs no verifier; validator 0 audits and watches
    let idle = &net.validators[1];
    IAuditManager::new(net.deployment.audit_manager, net.provider(idle))
        .joinValidators()
        .send()
        .await?
        .get_receipt()
        .await?;
    let procs = Procs(vec![verifier(&net, 0, "honest"), executor(&net, 0, &[])]);
    net.wait_validators_joined(&[0, 1], JOIN_TIMEOUT).await?;
    let ids = net.submit_inputs(net.model_id, &inputs(12), 12).await?;
    if let Err(e) = wait_settled(&net, &ids, Duration::from_secs(120)).await {
        panic!("{e}\n{}", logs_of(&net, "verifier"));
    }
    let audit = IAuditManager::new(net.deployment.audit_manager, net.provider(&net.user));
    let start = Instant::now();
    // every task ends Passed (the working validator's verdict) or Missed (the idle one's draw)
    loop {
        let mut states = Vec::new();
        for id in &ids {
            let rec = audit.auditRecord(*id).call().await?;
            states.push((rec.state, rec.accuser));
        }
        if states.iter().all(|(s, _)| *s != 0) {
            let missed = states.iter().filter(|(s, _)| *s == 7).count();
            assert!(
                missed > 0,
                "the idle validator was drawn for some audits: {states:?}"
            );
            for (state, who) in &states {
                match state {
                    1 => assert_eq!(*who, net.validators[0].address()),
                    7 => assert_eq!(*who, idle.address()),
                    other => panic!("unexpected audit state {other}: {states:?}"),
                }
            }
            let misses =
                events::<IAuditManager::DeadlineMissed>(&net, net.deployment.audit_manager).await?;
            assert_eq!(misses.len(), missed);
            assert!(misses
                .iter()
                .all(|m| m.validator == idle.address() && m.kind == 0));
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!(
                "misses not reported: {states:?}\n{}",
                logs_of(&net, "verifier")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(procs);
    Ok(())
}
