//! The REST API fuzzed from its own OpenAPI document by Schemathesis (a property-based API fuzzer
//! from PyPI, pinned in indexer/requirements-fuzz.txt, installed by tools/setup-schemathesis.sh):
//! the indexer serves a database filled by the real ingestion code behind its production limits,
//! and Schemathesis generates requests for every documented operation (valid ones and ones the
//! schema forbids) and checks every response: no 5xx, a documented status code, content type and
//! body schema, schema-valid requests accepted and invalid ones refused.

mod common;

use common::*;
use indexer::api::router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_conforms_to_its_openapi_document_under_schemathesis() {
    let st = repo().join(".deps/schemathesis-venv/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run tools/setup-schemathesis.sh (make test does)",
        st.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let state = api_state(filled(dir.path()).await);
    // the production stack, with the per-IP limit off: the fuzzer is one client sending
    // thousands of requests, and a 429 would hide what it is looking for
    let app = indexer::limits::apply(
        router(state),
        indexer::limits::Limits {
            per_ip_per_sec: 0,
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let report = dir.path().join("junit.xml");
    let mut cmd = tokio::process::Command::new(&st);
    cmd.arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args([
            "--checks",
            "all",
            // /metrics answers Prometheus text, the document says so; no operation needs auth
            "--exclude-checks",
            "ignored_auth",
            "--max-examples",
            "60",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",
            "--suppress-health-check",
            "all",
            "--report",
            "junit",
            "--report-junit-path",
        ])
        .arg(&report)
        // its example database (.schemathesis/) goes to the temporary directory, not the repo
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .expect("schemathesis finished within 10 minutes")
        .expect("schemathesis ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // one summary on the test's output, whatever the result
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("passed") || l.contains("failed") || l.contains("error"))
        .collect();
    eprintln!("schemathesis: {}", summary.join(" | "));
    assert!(
        out.status.success(),
        "schemathesis found responses that break the OpenAPI document:\n{stdout}\n{stderr}"
    );
    let operations = stdout.matches("GET /").count();
    assert!(operations > 0, "no operation was tested:\n{stdout}");
}
