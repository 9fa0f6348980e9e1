//! The validation layer on a real SQLite file filled by the real ingestion code: every
//! AuditManager event kind (plus TaskHeld / TaskReleased and the audit layer's slashes) lands in
//! its table, `/tasks/{id}` shows the audit record, `/nodes/{address}` the audit counts and
//! slashes, `/audits` lists verdicts, `/models/{id}` the canary accuracy, and a reorg removes
//! them all.

mod common;

use alloy::primitives::{address, keccak256, Address, Bytes, B256, U256};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use indexer::api::{router, AppState, SyncStatus};
use indexer::db::Db;
use indexer::query;
use protocol::bindings::{
    IAuditManager as A, IModelRegistry as M, IStaking as S, ITaskManager as T,
};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

const VAL_B: Address = address!("0x976EA74026E726554dB657fA54763abd0C3a0aa9");
const VAL_C: Address = address!("0x14dC79964da2C08b23698B3D3cc7Ca32193d9955");
const LAST: u64 = 12;

fn h(n: u8) -> B256 {
    B256::repeat_byte(n)
}

fn tx(tag: &str) -> B256 {
    keccak256(tag.as_bytes())
}

/// `history()` (blocks 1..=7) plus the audit layer (blocks 8..=12):
/// - 8: three validators join; a forced error is planted; task 3's batch (2) is sealed; tasks
///   4 (W2), 5 (a canary submitted by VAL, W1), 6, 7 and 8 (W1) are submitted and assigned;
/// - 9: W2 commits batch 3 [4], W1 batch 4 [5, 6, 7, 8]; VAL's verdict passes task 3 (0.95);
/// - 10: batches 3 (full) and 4 sealed; VAL's mismatch on 4 and VAL_C's on 6 hold the tasks and
///   open disputes; VAL reports canary 5 wrong; VAL_B approves task 8 (a planted error);
/// - 11: the quorum finds fraud on 4 (W2 slashed, submitter refunded); VAL votes 6 honest;
///   a second canary report of 5 (ignored: the first counts);
/// - 12: 6 is cleared (VAL_B missed its vote, VAL_C slashed for a false accusation); VAL_B
///   missed task 7's audit; the forced error 8 is revealed (VAL_B slashed as lazy); a verdict
///   on a task the indexer never saw (999).
fn audit_history() -> Vec<BlockLogs> {
    let mut blocks = history();
    let mut b8 = BlockLogs::new(8);
    for (v, w) in [(VAL, 5000), (VAL_B, 3000), (VAL_C, 2000)] {
        b8.push(
            AM,
            A::ValidatorJoined {
                validator: v,
                weight: dn(w),
            },
        );
    }
    b8.push(
        AM,
        A::ForcedErrorPlanted {
            commitment: h(0xfe),
            planter: DEV,
        },
    )
    .push(
        AM,
        A::BatchSealed {
            batchId: U256::from(2),
            worker: W1,
            randomness: h(0x33),
            pWad: 300_000_000_000_000_000,
            full: false,
        },
    );
    for (id, submitter, worker) in [
        (4u64, USER, W2),
        (5, VAL, W1),
        (6, USER, W1),
        (7, USER, W1),
        (8, USER, W1),
    ] {
        b8.push(
            TM,
            T::TaskSubmitted {
                taskId: U256::from(id),
                submitter,
                modelId: 1,
                fee: dn(2),
                input: digit_input(id as f32).into(),
            },
        )
        .push(
            TM,
            T::TaskAssigned {
                taskId: U256::from(id),
                worker,
                deadline: time_of(8) + 60,
            },
        );
    }

    let mut b9 = BlockLogs::new(9);
    let out = label_output(1);
    for (batch, worker, ids) in [(3u64, W2, vec![4u64]), (4, W1, vec![5, 6, 7, 8])] {
        b9.push(
            TM,
            T::ResultsCommitted {
                batchId: U256::from(batch),
                worker,
                root: h(batch as u8),
                taskIds: ids.iter().map(|t| U256::from(*t)).collect(),
                outputHashes: ids.iter().map(|t| h(0x40 + *t as u8)).collect(),
                codes: ids.iter().map(|_| 0u16).collect(),
                outputs: ids.iter().map(|_| Bytes::from(out.clone())).collect(),
            },
        );
    }
    b9.push(
        AM,
        A::VerdictAccepted {
            taskId: U256::from(3),
            batchId: U256::from(2),
            validator: VAL,
            worker: W1,
            workerOutputHash: h(0x43),
            validatorOutputHash: h(0x43),
            qualityPpm: 950_000,
            matches: true,
        },
    );

    let mut b10 = BlockLogs::new(10);
    for (batch, worker, p, full) in [
        (3u64, W2, 1_000_000_000_000_000_000u64, true),
        (4, W1, 300_000_000_000_000_000, false),
    ] {
        b10.push(
            AM,
            A::BatchSealed {
                batchId: U256::from(batch),
                worker,
                randomness: h(0x30 + batch as u8),
                pWad: p,
                full,
            },
        );
    }
    for (task, batch, accuser, worker, members) in [
        (4u64, 3u64, VAL, W2, vec![VAL_B, VAL_C]),
        (6, 4, VAL_C, W1, vec![VAL, VAL_B]),
    ] {
        let t = tx(&format!("verdict {task}"));
        b10.push_tx(
            AM,
            A::VerdictAccepted {
                taskId: U256::from(task),
                batchId: U256::from(batch),
                validator: accuser,
                worker,
                workerOutputHash: h(0x40 + task as u8),
                validatorOutputHash: h(0x99),
                qualityPpm: 0,
                matches: false,
            },
            t,
        )
        .push_tx(
            TM,
            T::TaskHeld {
                taskId: U256::from(task),
            },
            t,
        )
        .push_tx(
            AM,
            A::DisputeOpened {
                taskId: U256::from(task),
                worker,
                accuser,
                opener: 0,
                quorumBlock: 10,
                deadline: time_of(10) + 300,
            },
            t,
        )
        .push(
            AM,
            A::QuorumDrawn {
                taskId: U256::from(task),
                members,
                deadline: time_of(10) + 600,
            },
        );
    }
    b10.push(
        AM,
        A::CanaryReported {
            taskId: U256::from(5),
            worker: W1,
            modelId: 1,
            validator: VAL,
            expectedOutputHash: h(0x55),
            matches: false,
            qualityPpm: 0,
        },
    )
    .push(
        AM,
        A::VerdictAccepted {
            taskId: U256::from(8),
            batchId: U256::from(4),
            validator: VAL_B,
            worker: W1,
            workerOutputHash: h(0x48),
            validatorOutputHash: h(0x48),
            qualityPpm: 1_000_000,
            matches: true,
        },
    );

    let mut b11 = BlockLogs::new(11);
    b11.push(
        AM,
        A::DisputeVoted {
            taskId: U256::from(4),
            validator: VAL_B,
            fraud: true,
            outputHash: h(0x99),
        },
    );
    let t = tx("resolve 4");
    b11.push_tx(
        AM,
        A::DisputeVoted {
            taskId: U256::from(4),
            validator: VAL_C,
            fraud: true,
            outputHash: h(0x99),
        },
        t,
    )
    .push_tx(
        AM,
        A::DisputeResolved {
            taskId: U256::from(4),
            outcome: 3,
            fraudVotes: 2,
            honestVotes: 0,
        },
        t,
    )
    .push_tx(
        TM,
        T::TaskReleased {
            taskId: U256::from(4),
            fraud: true,
        },
        t,
    )
    .push_tx(
        TM,
        T::TaskRefunded {
            taskId: U256::from(4),
            submitter: USER,
            amount: dn(2),
        },
        t,
    )
    .push_tx(
        STAKING,
        S::Slashed {
            account: W2,
            role: 0,
            reason: 1,
            amount: dn(50),
            beneficiary: VAL,
            rewarded: dn(25),
            burned: dn(25),
        },
        t,
    )
    .push_tx(
        REG,
        M::TrustWeightSet {
            worker: W2,
            trustWad: U256::ZERO,
        },
        t,
    );
    b11.push(
        AM,
        A::DisputeVoted {
            taskId: U256::from(6),
            validator: VAL,
            fraud: false,
            outputHash: h(0x46),
        },
    )
    .push(
        AM,
        A::CanaryReported {
            taskId: U256::from(5),
            worker: W1,
            modelId: 1,
            validator: VAL,
            expectedOutputHash: h(0x55),
            matches: true,
            qualityPpm: 1_000_000,
        },
    );

    let mut b12 = BlockLogs::new(12);
    let t = tx("resolve 6");
    b12.push_tx(
        AM,
        A::DisputeResolved {
            taskId: U256::from(6),
            outcome: 4,
            fraudVotes: 0,
            honestVotes: 1,
        },
        t,
    )
    .push_tx(
        AM,
        A::DeadlineMissed {
            taskId: U256::from(6),
            validator: VAL_B,
            kind: 1,
        },
        t,
    )
    .push_tx(
        TM,
        T::TaskReleased {
            taskId: U256::from(6),
            fraud: false,
        },
        t,
    )
    .push_tx(
        STAKING,
        S::Slashed {
            account: VAL_C,
            role: 1,
            reason: 2,
            amount: dn(10),
            beneficiary: W1,
            rewarded: dn(5),
            burned: dn(5),
        },
        t,
    );
    b12.push(
        AM,
        A::DeadlineMissed {
            taskId: U256::from(7),
            validator: VAL_B,
            kind: 0,
        },
    );
    let t = tx("reveal 8");
    b12.push_tx(
        AM,
        A::ForcedErrorRevealed {
            taskId: U256::from(8),
            validator: VAL_B,
            caughtLazy: true,
        },
        t,
    )
    .push_tx(
        STAKING,
        S::Slashed {
            account: VAL_B,
            role: 1,
            reason: 3,
            amount: dn(20),
            beneficiary: DEV,
            rewarded: dn(10),
            burned: dn(10),
        },
        t,
    );
    b12.push(
        AM,
        A::VerdictAccepted {
            taskId: U256::from(999),
            batchId: U256::from(77),
            validator: VAL,
            worker: W2,
            workerOutputHash: h(0x77),
            validatorOutputHash: h(0x77),
            qualityPpm: 1_000_000,
            matches: true,
        },
    );
    blocks.extend([b8, b9, b10, b11, b12]);
    blocks
}

async fn filled_audits(dir: &std::path::Path, to: u64) -> Db {
    let db = open(dir).await;
    index(&db, &audit_history(), 1, to).await;
    db
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

fn api(db: Db) -> AppState {
    AppState {
        db,
        chain_id: CHAIN,
        confirmations: 2,
        sync: Arc::new(SyncStatus::default()),
        metrics: None,
        web_dir: None,
        deployment: Some(deployment()),
        pages: Default::default(),
    }
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    let res = router(state.clone())
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn ok(state: &AppState, uri: &str) -> Value {
    let (s, v) = get(state, uri).await;
    assert_eq!(s, StatusCode::OK, "{uri}: {v}");
    v
}

async fn error(state: &AppState, uri: &str, status: StatusCode, needle: &str) {
    let (s, v) = get(state, uri).await;
    assert_eq!(s, status, "{uri}: {v}");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "{uri}: {detail:?} lacks {needle:?}"
    );
}

fn cs(a: Address) -> String {
    a.to_checksum(None)
}

#[tokio::test]
async fn every_audit_event_kind_lands_in_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled_audits(dir.path(), LAST).await;
    for (table, n) in [
        ("audit_validators", 3),
        ("batch_seals", 3),
        ("verdicts", 5),
        ("disputes", 2),
        ("dispute_votes", 3),
        ("deadline_misses", 2),
        ("forced_errors", 1),
        ("canaries", 2),
        ("first_canaries", 1),
        ("slashes", 4),
    ] {
        assert_eq!(
            count(&db, &format!("SELECT COUNT(*) FROM {table}")).await,
            n,
            "{table}"
        );
    }
    let events = query::event_counts(db.pool()).await.unwrap();
    for (name, n) in [
        ("ValidatorJoined", 3),
        ("ForcedErrorPlanted", 1),
        ("BatchSealed", 3),
        ("VerdictAccepted", 5),
        ("DisputeOpened", 2),
        ("QuorumDrawn", 2),
        ("DisputeVoted", 3),
        ("DisputeResolved", 2),
        ("DeadlineMissed", 2),
        ("ForcedErrorRevealed", 1),
        ("CanaryReported", 2),
        ("TaskHeld", 2),
        ("TaskReleased", 2),
    ] {
        assert!(
            events.contains(&(name.to_string(), n)),
            "{name} x{n}: {events:?}"
        );
    }
    // The stored JSON of an audit event is decoded by name.
    let json: String = sqlx::query_scalar(
        "SELECT json FROM events WHERE name = 'QuorumDrawn' ORDER BY block_number, log_index LIMIT 1",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["taskId"], "4");
    assert_eq!(v["members"][0], cs(VAL_B));
    // Slashes of the audit layer name their task; the older one (outside it) does not.
    let linked: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT account, task_id FROM slashes ORDER BY block_number, log_index")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        linked,
        vec![
            (cs(W2), None),
            (cs(W2), Some(4)),
            (cs(VAL_C), Some(6)),
            (cs(VAL_B), Some(8)),
        ]
    );
}

#[tokio::test]
async fn a_held_task_is_disputed_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let state = api(filled_audits(dir.path(), 10).await);
    let t4 = ok(&state, "/tasks/4").await;
    assert_eq!(t4["status"], "disputed");
    assert_eq!(t4["audit"]["state"], "disputed");
    assert_eq!(t4["audit"]["dispute"]["outcome"], "open");
    assert_eq!(t4["audit"]["dispute"]["outcome_value"], Value::Null);
    assert_eq!(t4["audit"]["dispute"]["resolved"], Value::Null);
    let page = ok(&state, "/tasks?status=disputed").await;
    let ids: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["6", "4"]);
    let m = ok(&state, "/models/1").await;
    assert_eq!(m["tasks"]["disputed"], 2);
}

#[tokio::test]
async fn task_detail_shows_its_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let state = api(filled_audits(dir.path(), LAST).await);

    // Passed: the verdict, the batch's seal.
    let t3 = ok(&state, "/tasks/3").await;
    let a = &t3["audit"];
    assert_eq!(a["state"], "passed");
    assert_eq!(a["seal"]["batch_id"], "2");
    assert_eq!(a["seal"]["p_wad"], "300000000000000000");
    assert_eq!(a["seal"]["full"], false);
    assert_eq!(a["verdicts"].as_array().unwrap().len(), 1);
    assert_eq!(a["verdicts"][0]["validator"], cs(VAL));
    assert_eq!(a["verdicts"][0]["quality_ppm"], 950_000);
    assert_eq!(a["verdicts"][0]["quality"], 0.95);
    assert_eq!(a["verdicts"][0]["matches"], true);
    assert_eq!(a["verdicts"][0]["block"], 9);
    assert_eq!(a["dispute"], Value::Null);
    assert_eq!(a["canary"], Value::Null);
    assert_eq!(a["votes"], serde_json::json!([]));
    assert_eq!(a["misses"], serde_json::json!([]));

    // Fraud: refunded, the quorum's votes, the worker's slash.
    let t4 = ok(&state, "/tasks/4").await;
    assert_eq!(t4["status"], "refunded");
    let a = &t4["audit"];
    assert_eq!(a["state"], "fraud");
    assert_eq!(a["seal"]["full"], true);
    assert_eq!(a["verdicts"][0]["matches"], false);
    let d = &a["dispute"];
    assert_eq!(d["worker"], cs(W2));
    assert_eq!(d["accuser"], cs(VAL));
    assert_eq!(d["opener"], "validator");
    assert_eq!(d["members"], serde_json::json!([cs(VAL_B), cs(VAL_C)]));
    assert_eq!(d["outcome"], "fraud");
    assert_eq!(d["outcome_value"], 3);
    assert_eq!(
        (d["fraud_votes"].clone(), d["honest_votes"].clone()),
        (2.into(), 0.into())
    );
    assert_eq!(d["opened"]["block"], 10);
    assert_eq!(d["resolved"]["block"], 11);
    assert_eq!(d["resolved"]["tx"], tx("resolve 4").to_string());
    assert_eq!(a["votes"].as_array().unwrap().len(), 2);
    assert_eq!(a["votes"][0]["validator"], cs(VAL_B));
    assert_eq!(a["votes"][0]["fraud"], true);
    assert_eq!(a["slashes"].as_array().unwrap().len(), 1);
    assert_eq!(a["slashes"][0]["reason_name"], "fraud");
    assert_eq!(a["slashes"][0]["task_id"], "4");
    let kinds: Vec<&str> = t4["audit_trail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "submitted",
            "assigned",
            "committed",
            "verdict",
            "held",
            "dispute_opened",
            "quorum_drawn",
            "dispute_vote",
            "dispute_vote",
            "dispute_resolved",
            "released",
            "refunded"
        ]
    );

    // Canary: the first report counts, not the later correction.
    let t5 = ok(&state, "/tasks/5").await;
    let c = &t5["audit"]["canary"];
    assert_eq!(c["validator"], cs(VAL));
    assert_eq!(c["worker"], cs(W1));
    assert_eq!(c["model_id"], 1);
    assert_eq!(c["matches"], false);
    assert_eq!(c["block"], 10);
    assert_eq!(t5["audit"]["state"], "none");

    // Cleared: back to committed, the absentee's miss, the accuser's slash.
    let t6 = ok(&state, "/tasks/6").await;
    assert_eq!(t6["status"], "committed");
    let a = &t6["audit"];
    assert_eq!(a["state"], "cleared");
    assert_eq!(a["dispute"]["outcome"], "cleared");
    assert_eq!(a["dispute"]["honest_votes"], 1);
    assert_eq!(a["misses"][0]["validator"], cs(VAL_B));
    assert_eq!(a["misses"][0]["kind"], "dispute_vote");
    assert_eq!(a["misses"][0]["kind_value"], 1);
    assert_eq!(a["slashes"][0]["reason_name"], "false_accusation");
    assert_eq!(a["slashes"][0]["beneficiary"], cs(W1));

    // Missed audit.
    let t7 = ok(&state, "/tasks/7").await;
    assert_eq!(t7["audit"]["state"], "missed");
    assert_eq!(t7["audit"]["misses"][0]["kind"], "verdict");

    // Forced error approved by a lazy validator.
    let t8 = ok(&state, "/tasks/8").await;
    let a = &t8["audit"];
    assert_eq!(a["state"], "forced_error");
    assert_eq!(a["forced_error"]["validator"], cs(VAL_B));
    assert_eq!(a["forced_error"]["caught_lazy"], true);
    assert_eq!(a["slashes"][0]["reason_name"], "lazy_validator");

    // A task without any audit has an empty record; a batch never sealed has no seal.
    let t1 = ok(&state, "/tasks/1").await;
    assert_eq!(t1["audit"]["state"], "none");
    assert_eq!(t1["audit"]["seal"], Value::Null);
    assert_eq!(t1["audit"]["verdicts"], serde_json::json!([]));

    // Audit rows of a task the indexer never saw do not make it exist.
    error(&state, "/tasks/999", StatusCode::NOT_FOUND, "no task 999").await;
    error(&state, "/tasks/abc", StatusCode::BAD_REQUEST, "`id`").await;
}

#[tokio::test]
async fn node_detail_shows_audit_counts_and_slashes() {
    let dir = tempfile::tempdir().unwrap();
    let state = api(filled_audits(dir.path(), LAST).await);
    let n = |v: &Value, k: &str| v["audits"][k].as_i64().unwrap();

    let w1 = ok(&state, &format!("/nodes/{W1}")).await;
    for (k, want) in [
        ("audited", 3),
        ("passed", 2),
        ("failed", 1),
        ("challenged", 0),
        ("fraud_proven", 0),
        ("cleared", 1),
        ("canaries", 1),
        ("canaries_passed", 0),
        ("verdicts_signed", 0),
    ] {
        assert_eq!(n(&w1, k), want, "W1 {k}");
    }
    assert_eq!(w1["audits"]["validator_weight"], Value::Null);

    let w2 = ok(&state, &format!("/nodes/{W2}")).await;
    assert_eq!(n(&w2, "audited"), 2, "task 4 and the unknown task 999");
    assert_eq!(n(&w2, "failed"), 1);
    assert_eq!(n(&w2, "fraud_proven"), 1);
    let slashes = w2["slashes"].as_array().unwrap();
    assert_eq!(slashes.len(), 2);
    assert_eq!(slashes[1]["reason"], 1);
    assert_eq!(slashes[1]["reason_name"], "fraud");
    assert_eq!(slashes[1]["role"], "worker");
    assert_eq!(slashes[1]["amount"], dn(50).to_string());
    assert_eq!(slashes[1]["beneficiary"], cs(VAL));
    assert_eq!(slashes[1]["rewarded"], dn(25).to_string());
    assert_eq!(slashes[1]["burned"], dn(25).to_string());
    assert_eq!(slashes[1]["block"], 11);
    assert_eq!(slashes[1]["tx"], tx("resolve 4").to_string());
    assert_eq!(slashes[1]["task_id"], "4");
    assert_eq!(slashes[0]["task_id"], Value::Null);
    assert_eq!(w2["trust_wad"], "0", "TrustWeightSet after the fraud");

    let val = ok(&state, &format!("/nodes/{VAL}")).await;
    assert_eq!(n(&val, "verdicts_signed"), 3);
    assert_eq!(n(&val, "dispute_votes"), 1);
    assert_eq!(n(&val, "false_accusations"), 0);
    assert_eq!(val["audits"]["validator_weight"], dn(5000).to_string());

    let vb = ok(&state, &format!("/nodes/{VAL_B}")).await;
    for (k, want) in [
        ("verdicts_signed", 1),
        ("dispute_votes", 1),
        ("missed_audits", 1),
        ("missed_votes", 1),
        ("lazy_caught", 1),
    ] {
        assert_eq!(n(&vb, k), want, "VAL_B {k}");
    }
    assert_eq!(vb["slashes"][0]["reason_name"], "lazy_validator");
    assert_eq!(vb["slashes"][0]["role"], "validator");

    let vc = ok(&state, &format!("/nodes/{VAL_C}")).await;
    assert_eq!(n(&vc, "false_accusations"), 1);
    assert_eq!(n(&vc, "verdicts_signed"), 1);
    assert_eq!(vc["slashes"][0]["reason"], 2);
    assert_eq!(vc["slashes"][0]["reason_name"], "false_accusation");
    // The slash is taken from the validator stake (none was indexed for VAL_C: stays 0).
    assert_eq!(vc["slashed"], dn(10).to_string());
}

#[tokio::test]
async fn audits_route_lists_verdicts_with_their_dispute_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let state = api(filled_audits(dir.path(), LAST).await);
    let v = ok(&state, "/audits").await;
    assert_eq!(v["total"], 5);
    assert_eq!(
        (v["limit"].clone(), v["offset"].clone()),
        (50.into(), 0.into())
    );
    let ids: Vec<&str> = v["audits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["999", "8", "6", "4", "3"], "newest first");
    let a = v["audits"].as_array().unwrap();
    assert_eq!(a[2]["dispute"]["outcome"], "cleared");
    assert_eq!(a[3]["dispute"]["outcome"], "fraud");
    assert_eq!(a[3]["dispute"]["fraud_votes"], 2);
    assert_eq!(a[3]["dispute"]["resolved_block"], 11);
    assert_eq!(a[4]["dispute"], Value::Null);
    assert_eq!(a[4]["worker"], cs(W1));

    let w1 = ok(&state, &format!("/audits?worker={W1}")).await;
    assert_eq!(w1["total"], 3);
    let val = ok(
        &state,
        &format!("/audits?validator={}", format!("{VAL:?}").to_lowercase()),
    )
    .await;
    assert_eq!(val["total"], 3);
    let page = ok(&state, "/audits?limit=1&offset=2").await;
    assert_eq!(page["audits"].as_array().unwrap().len(), 1);
    assert_eq!(page["audits"][0]["task_id"], "6");
    assert_eq!(page["total"], 5);
    let past = ok(&state, "/audits?offset=10").await;
    assert_eq!(past["audits"], serde_json::json!([]));

    for (uri, param) in [
        ("/audits?limit=0", "`limit`"),
        ("/audits?limit=501", "`limit`"),
        ("/audits?offset=-1", "`offset`"),
        ("/audits?offset=x", "`offset`"),
        ("/audits?worker=0x12", "`worker`"),
        ("/audits?validator=nope", "`validator`"),
        ("/audits?task=3", "`task`"),
    ] {
        error(&state, uri, StatusCode::BAD_REQUEST, param).await;
    }
}

#[tokio::test]
async fn model_detail_shows_canary_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let before = api(filled_audits(dir.path(), 9).await);
    let m = ok(&before, "/models/1").await;
    assert_eq!(m["canary_accuracy"], Value::Null, "no canary report yet");
    assert_eq!(m["canaries"]["reports"], 0);
    let dir = tempfile::tempdir().unwrap();
    let state = api(filled_audits(dir.path(), LAST).await);
    let m = ok(&state, "/models/1").await;
    assert_eq!(m["canary_accuracy"], 0.0, "one report, wrong");
    assert_eq!(m["canaries"]["reports"], 1);
    assert_eq!(m["canaries"]["matches"], 0);
}

#[tokio::test]
async fn openapi_documents_the_audit_fields() {
    let dir = tempfile::tempdir().unwrap();
    let state = api(filled_audits(dir.path(), 1).await);
    let doc = ok(&state, "/openapi.json").await;
    let s = &doc["components"]["schemas"];
    for k in ["verdicts", "dispute", "votes", "canary", "misses", "state"] {
        assert!(s["TaskAudit"]["properties"][k].is_object(), "TaskAudit.{k}");
    }
    assert_eq!(
        properties(&doc, &s["Task"]).0["audit"]["$ref"],
        "#/components/schemas/TaskAudit"
    );
    for k in [
        "audited",
        "passed",
        "failed",
        "fraud_proven",
        "missed_audits",
        "verdicts_signed",
        "false_accusations",
    ] {
        assert!(
            s["NodeAudits"]["properties"][k].is_object(),
            "NodeAudits.{k}"
        );
    }
    assert!(s["Slash"]["properties"]["reason_name"].is_object());
    assert!(properties(&doc, &s["Model"]).0["canary_accuracy"].is_object());
    assert!(s["EpochNode"]["properties"]["audits"].is_object());
    let params: Vec<&str> = doc["paths"]["/audits"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["worker", "validator", "limit", "offset"]);
    // Every $ref points at a schema that exists.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r);
                }
                o.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(s[name].is_object(), "dangling {r}");
    }
    // Every field the routes serve from the validation layer's records is documented.
    let full_dir = tempfile::tempdir().unwrap();
    let state = api(filled_audits(full_dir.path(), LAST).await);
    let mut uris: Vec<(&str, String)> = (1..=8)
        .map(|id| ("/tasks/{id}", format!("/tasks/{id}")))
        .collect();
    for a in [W1, W2, VAL, VAL_B, VAL_C] {
        uris.push((
            "/nodes/{address}",
            format!("/nodes/{}", a.to_checksum(None)),
        ));
    }
    uris.push(("/audits", "/audits".into()));
    uris.push(("/models/1", "/models/1".into()));
    let mut served = 0;
    for (route, uri) in uris {
        let route = if route == "/models/1" {
            "/models/{id}"
        } else {
            route
        };
        let (status, v) = get(&state, &uri).await;
        if status == StatusCode::NOT_FOUND {
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{uri}: {v}");
        assert_documented(&doc, &response_schema(&doc, route), &v, &uri);
        served += 1;
    }
    assert!(served >= 10, "{served} responses checked");
}

/// Everything the audit layer shows through the API, to compare database states.
async fn snapshot(db: &Db) -> Value {
    let pool = db.pool();
    let mut tasks = Vec::new();
    for id in 1..=8 {
        tasks.push(query::task(pool, id).await.unwrap());
    }
    let mut nodes = Vec::new();
    for a in [W1, W2, VAL, VAL_B, VAL_C] {
        nodes.push(query::node(pool, a).await.unwrap());
    }
    serde_json::json!({
        "tasks": tasks,
        "nodes": nodes,
        "model": query::model(pool, 1).await.unwrap(),
        "audits": indexer::audit_query::audits(pool, &indexer::audit_query::AuditFilter { limit: 100, ..Default::default() }).await.unwrap(),
        "events": query::event_counts(pool).await.unwrap(),
    })
}

#[tokio::test]
async fn a_reorg_removes_the_audit_rows_and_replays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled_audits(dir.path(), LAST).await;
    let at10_dir = tempfile::tempdir().unwrap();
    let at10 = filled_audits(at10_dir.path(), 10).await;

    db.rollback_to(CHAIN, &contracts(), Some(block(10)))
        .await
        .unwrap();
    assert_eq!(snapshot(&db).await, snapshot(&at10).await);
    for (table, n) in [
        ("verdicts", 4),
        ("disputes WHERE outcome IS NOT NULL", 0),
        ("dispute_votes", 0),
        ("deadline_misses", 0),
        ("forced_errors", 0),
        ("canaries", 1),
        ("slashes", 1),
    ] {
        assert_eq!(
            count(&db, &format!("SELECT COUNT(*) FROM {table}")).await,
            n,
            "{table} after the rollback to block 10"
        );
    }
    let t4 = to_json(query::task(db.pool(), 4).await.unwrap().unwrap());
    assert_eq!(
        t4["status"], "disputed",
        "the release of block 11 is undone"
    );

    // Back to before the audit layer: every audit row is gone.
    db.rollback_to(CHAIN, &contracts(), Some(block(8)))
        .await
        .unwrap();
    for table in [
        "verdicts",
        "disputes",
        "dispute_votes",
        "deadline_misses",
        "forced_errors",
        "canaries",
    ] {
        assert_eq!(
            count(&db, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM batch_seals").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_validators").await, 3);

    // Re-indexing the canonical blocks gives the full state back.
    index(&db, &audit_history(), 9, LAST).await;
    let full_dir = tempfile::tempdir().unwrap();
    let full = filled_audits(full_dir.path(), LAST).await;
    assert_eq!(snapshot(&db).await, snapshot(&full).await);
}

#[tokio::test]
async fn a_database_filled_without_the_audit_manager_is_indexed_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled_audits(dir.path(), LAST).await;
    // What an older indexer left: no audit_manager in the deployment binding.
    sqlx::query("DELETE FROM meta WHERE key = 'audit_manager'")
        .execute(db.pool())
        .await
        .unwrap();
    db.bind_deployment(&deployment()).await.unwrap();
    assert_eq!(db.cursor(CHAIN).await.unwrap(), None);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM events").await, 0);
    index(&db, &audit_history(), 1, LAST).await;
    let full_dir = tempfile::tempdir().unwrap();
    let full = filled_audits(full_dir.path(), LAST).await;
    assert_eq!(snapshot(&db).await, snapshot(&full).await);
    // Binding again changes nothing.
    db.bind_deployment(&deployment()).await.unwrap();
    assert_eq!(db.cursor(CHAIN).await.unwrap().unwrap().number, LAST);
}
