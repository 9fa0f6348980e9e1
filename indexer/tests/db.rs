//! The store on a real SQLite file: migrations, deployment binding, one transaction per range,
//! idempotent re-indexing, restart-resume and reorg rollback with replay.

mod common;

use alloy::primitives::Address;
use common::*;
use indexer::db::{Db, DbError};
use indexer::query;
use serde_json::Value;

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&chainstore::sql::numbered(&format!(
        "SELECT COUNT(*) FROM {table}"
    )))
    .fetch_one(db.pool())
    .await
    .unwrap()
}

/// Everything the API can show, to compare database states.
async fn snapshot(db: &Db) -> Value {
    let pool = db.pool();
    let mut tasks = Vec::new();
    for id in 1..=3 {
        tasks.push(query::task(pool, id).await.unwrap());
    }
    serde_json::json!({
        "models": query::models(pool).await.unwrap(),
        "model": query::model(pool, 1).await.unwrap(),
        "nodes": query::nodes(pool).await.unwrap(),
        "w1": query::node(pool, W1).await.unwrap(),
        "w2": query::node(pool, W2).await.unwrap(),
        "tasks": tasks,
        "events": query::event_counts(pool).await.unwrap(),
    })
}

#[tokio::test]
async fn open_creates_the_file_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite");
    let db = Db::open(path.to_str().unwrap()).await.unwrap();
    assert!(path.exists());
    assert_eq!(db.cursor(CHAIN).await.unwrap(), None);
    drop(db);
    // sqlite:// URLs work too, and migrations are not re-applied.
    let url = format!("sqlite://{}?mode=rwc", path.display());
    Db::open(&url).await.unwrap();
    // a file name with the characters a URL gives a meaning to is still that file
    let odd = dir.path().join("odd name?#%.sqlite");
    Db::open(odd.to_str().unwrap()).await.unwrap();
    assert!(odd.exists());
}

#[tokio::test]
async fn an_unreachable_postgres_server_names_the_flag_but_not_the_password() {
    let port = devnet_free_port();
    let e = Db::open(&format!("postgres://dn:hunter2@127.0.0.1:{port}/deepnode"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "--db postgres://dn:***@127.0.0.1:{port}/deepnode: "
        )),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}

/// A local port nothing listens on.
fn devnet_free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn unwritable_db_path_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/x.sqlite");
    let e = Db::open(missing.to_str().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--db ") && e.contains("does not exist"),
        "{e}"
    );
}

#[tokio::test]
async fn a_database_of_another_deployment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let mut other = deployment();
    other.task_manager = W1;
    let e = db.bind_deployment(&other).await.unwrap_err();
    assert!(
        matches!(e, DbError::OtherDeployment { ref key, .. } if key == "task_manager"),
        "{e}"
    );
    assert!(e.to_string().contains("--db"), "{e}");
    // The same deployment binds again.
    db.bind_deployment(&deployment()).await.unwrap();
}

/// A database that followed a deployment without a probe registry (files written before it have
/// none) is indexed again from the start once the deployment names one; a different probe
/// registry afterwards is another deployment.
#[tokio::test]
async fn a_probe_registry_added_to_the_deployment_reindexes_and_then_binds() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&db_spec(dir.path(), "p.sqlite")).await.unwrap();
    let mut without = deployment();
    without.probe_registry = Address::ZERO;
    db.bind_deployment(&without).await.unwrap();
    index(&db, &history(), 1, 3).await;
    assert!(db.cursor(CHAIN).await.unwrap().is_some());
    db.bind_deployment(&without).await.unwrap();
    assert!(
        db.cursor(CHAIN).await.unwrap().is_some(),
        "same deployment: kept"
    );

    db.bind_deployment(&deployment()).await.unwrap();
    assert!(
        db.cursor(CHAIN).await.unwrap().is_none(),
        "indexed again from the start block"
    );
    assert_eq!(count(&db, "tasks").await, 0);
    db.bind_deployment(&deployment()).await.unwrap();
    let mut other = deployment();
    other.probe_registry = W1;
    let e = db.bind_deployment(&other).await.unwrap_err();
    assert!(
        matches!(e, DbError::OtherDeployment { ref key, .. } if key == "probe_registry"),
        "{e}"
    );
}

#[tokio::test]
async fn a_range_is_stored_with_its_cursor_and_derived_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let names = index(&db, &history(), 1, 3).await;
    assert_eq!(names.iter().filter(|n| **n == "TaskSubmitted").count(), 3);
    assert_eq!(names.iter().filter(|n| **n == "Staked").count(), 3);
    let c = db.cursor(CHAIN).await.unwrap().unwrap();
    assert_eq!((c.number, c.hash), (3, block(3).hash));
    assert_eq!(count(&db, "tasks").await, 3);
    assert_eq!(count(&db, "models").await, 1);
    assert_eq!(count(&db, "model_workers").await, 2);
    let t1 = to_json(query::task(db.pool(), 1).await.unwrap().unwrap());
    assert_eq!(t1["status"], "assigned");
    assert_eq!(t1["worker"], W1.to_checksum(None));
    let m = to_json(query::model(db.pool(), 1).await.unwrap().unwrap());
    assert_eq!(
        m["price_per_call"],
        dn(2).to_string(),
        "ModelPriceChanged applied"
    );
}

#[tokio::test]
async fn indexing_a_range_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path()).await;
    let before = snapshot(&db).await;
    let events = count(&db, "events").await;
    let again = index(&db, &history(), 1, 7).await;
    assert!(
        again.is_empty(),
        "no event is new the second time: {again:?}"
    );
    assert_eq!(count(&db, "events").await, events);
    // 3 submitted + 4 assigned + 1 missed + 3 committed + 2 finalized.
    assert_eq!(count(&db, "task_events").await, 13);
    assert_eq!(snapshot(&db).await, before);
}

#[tokio::test]
async fn restart_resumes_at_the_cursor_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let h = history();
    let db = open(dir.path()).await;
    index(&db, &h, 1, 4).await;
    drop(db);

    // A new process opens the same file and continues after the cursor.
    let db = open(dir.path()).await;
    let c = db.cursor(CHAIN).await.unwrap().unwrap();
    assert_eq!(c.number, 4);
    index(&db, &h, c.number + 1, 7).await;

    let reference_dir = tempfile::tempdir().unwrap();
    let reference = filled(reference_dir.path()).await;
    assert_eq!(snapshot(&db).await, snapshot(&reference).await);
    assert_eq!(
        count(&db, "events").await,
        count(&reference, "events").await
    );
}

#[tokio::test]
async fn stakes_unbondings_slashes_and_jail_follow_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path()).await;
    let w2 = to_json(query::node(db.pool(), W2).await.unwrap().unwrap());
    // 1000 staked, 400 + 100 unbonding -> 500 active; a 700 slash takes the 500, then (like
    // Staking.slash) the newest unbonding (100) and 100 of the older one.
    assert_eq!(w2["worker_stake"], "0");
    assert_eq!(w2["slashed"], dn(700).to_string());
    assert_eq!(w2["unbondings"][0]["amount"], dn(400).to_string());
    assert_eq!(w2["unbondings"][0]["remaining"], dn(300).to_string());
    assert_eq!(w2["unbondings"][0]["status"], "pending");
    assert_eq!(w2["unbondings"][1]["remaining"], "0");
    assert_eq!(w2["unbondings"][1]["status"], "slashed");
    assert_eq!(w2["unbondings"][1]["closed_block"], 6);
    assert_eq!(w2["slashes"][0]["reason"], 1);
    assert_eq!(w2["slashes"][0]["reason_name"], "fraud");
    assert_eq!(w2["slashes"][0]["beneficiary"], USER.to_checksum(None));
    assert_eq!(w2["jailed_until"], time_of(6) + 600);
    assert_eq!(w2["tasks"]["missed"], 1);
    assert_eq!(w2["models"].as_array().unwrap().len(), 0, "opted out");
    let w1 = to_json(query::node(db.pool(), W1).await.unwrap().unwrap());
    assert_eq!(w1["worker_stake"], dn(900).to_string());
    assert_eq!(w1["unbondings"][0]["status"], "withdrawn");
    assert_eq!(w1["unbondings"][0]["closed_block"], 7);
    assert_eq!(w1["trust_wad"], dn(1).to_string());
    assert_eq!(
        w1["earned"],
        (dn(1) * alloy::primitives::U256::from(17) / alloy::primitives::U256::from(10)).to_string()
    );
    assert_eq!(w1["tasks"]["assigned"], 3);
    assert_eq!(w1["tasks"]["committed"], 3);
    assert_eq!(w1["tasks"]["failed"], 1);
    assert_eq!(w1["tasks"]["finalized"], 2);
    let val = to_json(query::node(db.pool(), VAL).await.unwrap().unwrap());
    assert_eq!(val["validator_stake"], dn(5000).to_string());
    let m = to_json(query::model(db.pool(), 1).await.unwrap().unwrap());
    assert_eq!(
        m["royalties"],
        (dn(1) / alloy::primitives::U256::from(10)).to_string()
    );
    assert_eq!(m["worker_count"], 1);
}

#[tokio::test]
async fn rollback_drops_the_forked_blocks_and_replays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let h = history();
    let db = filled(dir.path()).await;

    // The state after block 4, computed directly.
    let at4_dir = tempfile::tempdir().unwrap();
    let at4 = open(at4_dir.path()).await;
    index(&at4, &h, 1, 4).await;

    let dropped = db
        .rollback_to(CHAIN, &contracts(), Some(block(4)))
        .await
        .unwrap();
    assert_eq!(dropped, 2 + 7 + 3, "events of blocks 5, 6 and 7");
    assert_eq!(db.cursor(CHAIN).await.unwrap().unwrap().number, 4);
    assert_eq!(snapshot(&db).await, snapshot(&at4).await);
    let t1 = to_json(query::task(db.pool(), 1).await.unwrap().unwrap());
    assert_eq!(t1["status"], "committed", "finalization of block 5 undone");
    assert_eq!(
        db.known_blocks(100, 10)
            .await
            .unwrap()
            .first()
            .map(|b| b.number),
        Some(4)
    );

    // Re-indexing the (here: same) canonical blocks gives the full state back.
    index(&db, &h, 5, 7).await;
    let full_dir = tempfile::tempdir().unwrap();
    let full = filled(full_dir.path()).await;
    assert_eq!(snapshot(&db).await, snapshot(&full).await);

    // A fork below every known block re-indexes from scratch.
    db.rollback_to(CHAIN, &contracts(), None).await.unwrap();
    assert_eq!(db.cursor(CHAIN).await.unwrap(), None);
    assert_eq!(count(&db, "events").await, 0);
    assert_eq!(count(&db, "tasks").await, 0);
    assert_eq!(count(&db, "nodes").await, 0);
}

#[tokio::test]
async fn unknown_logs_are_kept_raw() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path()).await;
    let counts = query::event_counts(db.pool()).await.unwrap();
    assert!(counts.contains(&("Unknown".to_string(), 1)), "{counts:?}");
    assert!(
        counts.contains(&("ResultsCommitted".to_string(), 2)),
        "{counts:?}"
    );
}
