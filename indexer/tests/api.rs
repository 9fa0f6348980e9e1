//! The REST API through `tower::ServiceExt::oneshot` on a database filled by the real ingestion
//! code: shapes, decoding, pagination, filters, errors and the OpenAPI document.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use indexer::api::{router, AppState};
use serde_json::Value;
use std::sync::atomic::Ordering;
use tower::ServiceExt;

struct Api {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let state = api_state(filled(dir.path()).await);
    Api { state, _dir: dir }
}

impl Api {
    async fn get_raw(&self, uri: &str) -> (StatusCode, String, Vec<u8>) {
        let res = router(self.state.clone())
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec();
        (status, ct, body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, ct, body) = self.get_raw(uri).await;
        assert!(
            ct.starts_with("application/json"),
            "{uri}: content-type {ct}"
        );
        (
            status,
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}")),
        )
    }

    async fn ok(&self, uri: &str) -> Value {
        let (status, v) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {v}");
        v
    }

    /// Asserts a 4xx JSON error whose detail mentions `needle`.
    async fn error(&self, uri: &str, status: StatusCode, needle: &str) {
        let (s, v) = self.get(uri).await;
        assert_eq!(s, status, "{uri}: {v}");
        assert!(v["error"].is_string(), "{uri}: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(needle),
            "{uri}: detail {detail:?} should mention {needle:?}"
        );
    }
}

#[tokio::test]
async fn health_reports_progress() {
    let api = api().await;
    let v = api.ok("/health").await;
    assert_eq!(v["chain_id"], CHAIN);
    assert_eq!(v["indexed_block"], 7);
    assert_eq!(v["status"], "starting", "head unknown until the first poll");
    api.state.sync.head.store(9, Ordering::Relaxed);
    let v = api.ok("/health").await;
    assert_eq!(v["head_block"], 9);
    assert_eq!(v["blocks_behind"], 2);
    assert_eq!(v["status"], "ok");
    api.state.sync.head.store(100, Ordering::Relaxed);
    assert_eq!(api.ok("/health").await["status"], "syncing");
}

#[tokio::test]
async fn models_list_and_detail() {
    let api = api().await;
    let v = api.ok("/models").await;
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["developer"], DEV.to_checksum(None));
    assert_eq!(models[0]["compare_rule"]["name"], "argmax");
    assert_eq!(models[0]["status"], "active");
    let m = api.ok("/models/1").await;
    assert_eq!(m["price_per_call"], dn(2).to_string());
    assert_eq!(m["workers"].as_array().unwrap().len(), 1);
    assert_eq!(m["workers"][0]["worker"], W1.to_checksum(None));
    assert_eq!(m["tasks"]["total"], 3);
    assert_eq!(m["tasks"]["finalized"], 2);
    assert_eq!(m["tasks"]["committed"], 1);
    api.error("/models/2", StatusCode::NOT_FOUND, "no model 2")
        .await;
    api.error("/models/abc", StatusCode::BAD_REQUEST, "`id`")
        .await;
}

#[tokio::test]
async fn nodes_list_and_detail() {
    let api = api().await;
    let v = api.ok("/nodes").await;
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{v}");
    let w1 = api.ok(&format!("/nodes/{}", W1)).await;
    assert_eq!(w1["address"], W1.to_checksum(None));
    assert_eq!(w1["tasks"]["committed"], 3);
    assert_eq!(w1["recent_tasks"].as_array().unwrap().len(), 3);
    assert_eq!(w1["recent_tasks"][0]["task_id"], "3", "newest first");
    // Lower-case addresses are accepted; the answer is checksummed.
    let w2 = api
        .ok(&format!("/nodes/{}", format!("{W2:?}").to_lowercase()))
        .await;
    assert_eq!(w2["address"], W2.to_checksum(None));
    assert_eq!(
        w2["jailed"], true,
        "jailed until after the newest indexed block"
    );
    api.error("/nodes/0x1234", StatusCode::BAD_REQUEST, "`address`")
        .await;
    api.error(
        &format!("/nodes/{}", USER),
        StatusCode::NOT_FOUND,
        "no node",
    )
    .await;
}

#[tokio::test]
async fn task_detail_decodes_tensors_and_shows_the_audit_trail() {
    let api = api().await;
    let t = api.ok("/tasks/1").await;
    assert_eq!(t["status"], "finalized");
    assert_eq!(t["submitter"], USER.to_checksum(None));
    assert_eq!(t["code"]["name"], "ok");
    let input = &t["input"]["decoded"]["input"];
    assert_eq!(input["dtype"], "F32");
    assert_eq!(input["shape"], serde_json::json!([1, 64]));
    assert_eq!(input["values"][1], 2.0);
    assert_eq!(t["output"]["decoded"]["label"]["values"][0], 7);
    assert_eq!(t["output_hash"], t["output"]["keccak256"]);
    assert_eq!(
        t["fee_split"]["worker"],
        (dn(16) / alloy::primitives::U256::from(10)).to_string()
    );
    assert_eq!(t["latency_secs"], 12);
    let kinds: Vec<&str> = t["audit_trail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["submitted", "assigned", "committed", "finalized"]);
    assert_eq!(t["audit_trail"][1]["time"], time_of(3));

    // Undecodable input and output fall back to hex with the reason; the failure code is named.
    let t = api.ok("/tasks/2").await;
    assert_eq!(t["code"]["name"], "input_decode");
    assert_eq!(t["code"]["value"], 1);
    assert_eq!(
        t["input"]["hex"],
        format!("0x{}", hex::encode(b"not a tensor"))
    );
    assert!(t["input"]["decode_error"].is_string(), "{t}");
    assert!(t["output"]["decode_error"].is_string(), "{t}");
    assert_eq!(
        t["fee_split"]["refund"],
        (dn(19) / alloy::primitives::U256::from(10)).to_string()
    );

    // A missed task shows the miss and the new worker.
    let t = api.ok("/tasks/3").await;
    assert_eq!(t["status"], "committed");
    assert_eq!(t["misses"], 1);
    assert_eq!(t["worker"], W1.to_checksum(None));
    assert!(t["fee_split"].is_null());
    let kinds: Vec<&str> = t["audit_trail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["submitted", "assigned", "missed", "assigned", "committed"]
    );
    assert_eq!(t["audit_trail"][2]["worker"], W2.to_checksum(None));
}

#[tokio::test]
async fn task_list_pages_by_id_and_filters() {
    let api = api().await;
    let page = api.ok("/tasks?limit=2").await;
    let ids: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["3", "2"]);
    assert_eq!(page["next_cursor"], "2");
    let page = api.ok("/tasks?limit=2&cursor=2").await;
    let ids: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1"]);
    assert!(page["next_cursor"].is_null());
    // List entries are summaries (no tensors).
    assert!(page["tasks"][0].get("input").is_none());

    assert_eq!(api.ok("/tasks").await["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(
        api.ok("/tasks?status=finalized").await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.ok("/tasks?status=refunded").await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        api.ok(&format!("/tasks?worker={W1}")).await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        api.ok(&format!("/tasks?worker={W2}")).await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        api.ok("/tasks?model=1&status=committed").await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.ok("/tasks?model=9").await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// An API whose database holds the fixture's blocks 1 to 3 only (the test indexes the rest), the
/// database and the fixture.
async fn api_at_block_3() -> (Api, indexer::db::Db, Vec<BlockLogs>) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let history = history();
    index(&db, &history, 1, 3).await;
    let api = Api {
        state: api_state(db.clone()),
        _dir: dir,
    };
    (api, db, history)
}

/// `GET /tasks` keeps each page by the indexed block it was read at (`indexer::cache`): every
/// stored range and every rollback shows at once, and a page read again at the same block is the
/// kept one.
#[tokio::test]
async fn task_pages_follow_every_indexed_range_and_rollback() {
    let (api, db, history) = api_at_block_3().await;
    let uncached = || async {
        let f = indexer::query::TaskFilter {
            status: None,
            worker: None,
            model: None,
            limit: 50,
            cursor: None,
        };
        to_json(indexer::query::tasks(db.pool(), &f).await.unwrap())
    };
    let early = api.ok("/tasks?limit=50").await;
    assert_eq!(early, uncached().await);
    assert_eq!(api.state.pages.len(), 1, "the page is kept");
    assert_eq!(api.ok("/tasks?limit=50").await, early, "and served again");
    assert_eq!(api.ok("/tasks").await, early, "the default limit is 50");

    index(&db, &history, 4, 7).await;
    let late = api.ok("/tasks?limit=50").await;
    assert_ne!(late, early, "the fixture's later blocks change the tasks");
    assert_eq!(late, uncached().await, "a new range shows at once");
    assert_eq!(api.state.pages.len(), 1, "pages of the old block dropped");

    db.rollback_to(CHAIN, &contracts(), Some(block(3)))
        .await
        .unwrap();
    assert_eq!(
        api.ok("/tasks?limit=50").await,
        early,
        "a rollback shows at once"
    );
    // a filtered page is its own entry
    let w2 = api.ok(&format!("/tasks?worker={W2}")).await;
    assert_ne!(w2, early);
    assert_eq!(api.state.pages.len(), 2);
}

/// `GET /nodes/{addr}` keeps each node's record by the indexed block it was read at, as the task
/// pages are kept: a new range or a rollback shows at once, an unknown node is not kept.
#[tokio::test]
async fn node_records_follow_every_indexed_range_and_rollback() {
    let (api, db, history) = api_at_block_3().await;
    let uri = format!("/nodes/{W1}");
    let uncached = || async { to_json(indexer::query::node(db.pool(), W1).await.unwrap()) };
    let early = api.ok(&uri).await;
    assert_eq!(early, uncached().await);
    assert_eq!(api.state.pages.len(), 1, "the record is kept");
    assert_eq!(api.ok(&uri).await, early, "and served again");

    index(&db, &history, 4, 7).await;
    let late = api.ok(&uri).await;
    assert_ne!(late, early, "the fixture's later blocks change the node");
    assert_eq!(late, uncached().await, "a new range shows at once");
    assert_eq!(api.state.pages.len(), 1, "records of the old block dropped");

    db.rollback_to(CHAIN, &contracts(), Some(block(3)))
        .await
        .unwrap();
    assert_eq!(api.ok(&uri).await, early, "a rollback shows at once");

    // an unknown node is a 404, and nothing is kept for it
    let unknown = "0x00000000000000000000000000000000000000aa";
    api.error(
        &format!("/nodes/{unknown}"),
        StatusCode::NOT_FOUND,
        "no node",
    )
    .await;
    assert_eq!(api.state.pages.len(), 1);
    // a task page is kept beside the node's record
    api.ok("/tasks?limit=50").await;
    assert_eq!(api.state.pages.len(), 2);
    assert_eq!(api.ok(&uri).await, early);
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let api = api().await;
    api.error("/tasks?limit=abc", StatusCode::BAD_REQUEST, "`limit`")
        .await;
    api.error("/tasks?limit=0", StatusCode::BAD_REQUEST, "`limit`")
        .await;
    api.error("/tasks?limit=501", StatusCode::BAD_REQUEST, "`limit`")
        .await;
    api.error("/tasks?status=done", StatusCode::BAD_REQUEST, "`status`")
        .await;
    api.error(
        "/tasks?worker=0xnothex",
        StatusCode::BAD_REQUEST,
        "`worker`",
    )
    .await;
    api.error("/tasks?model=-1", StatusCode::BAD_REQUEST, "`model`")
        .await;
    api.error("/tasks?cursor=x", StatusCode::BAD_REQUEST, "`cursor`")
        .await;
    api.error("/tasks?limt=5", StatusCode::BAD_REQUEST, "`limt`")
        .await;
    api.error("/tasks/abc", StatusCode::BAD_REQUEST, "`id`")
        .await;
    api.error("/tasks/-3", StatusCode::BAD_REQUEST, "`id`")
        .await;
    api.error("/tasks/999", StatusCode::NOT_FOUND, "no task 999")
        .await;
    api.error("/no/such/route", StatusCode::NOT_FOUND, "/no/such/route")
        .await;
    let (_, v) = api.get("/tasks?limit=abc").await;
    assert_eq!(v["error"], "bad_request");
}

/// Integers the OpenAPI document allows (any non-negative integer) are accepted whatever their
/// size: an id or epoch past i64 finds nothing (404), a cursor past every id pages from the top,
/// an offset past every row is an empty page.
#[tokio::test]
async fn huge_integers_are_accepted_not_refused() {
    let api = api().await;
    let (status, all) = api.get("/tasks").await;
    assert_eq!(status, StatusCode::OK);
    let (status, top) = api.get("/tasks?cursor=200000000000000000000").await;
    assert_eq!(status, StatusCode::OK, "{top}");
    assert_eq!(top["tasks"], all["tasks"]);
    api.error(
        "/tasks/99999999999999999999999",
        StatusCode::NOT_FOUND,
        "no task",
    )
    .await;
    for uri in [
        "/epochs/18446744073709551616",
        "/epochs/9223372036854775808",
    ] {
        let (status, v) = api.get(uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {v}");
    }
    let (status, v) = api.get("/audits?offset=99999999999999999999").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["audits"].as_array().unwrap().len(), 0);
    // still refused: signs, letters, empty
    api.error("/tasks?cursor=-1", StatusCode::BAD_REQUEST, "`cursor`")
        .await;
    api.error("/epochs/1e3", StatusCode::BAD_REQUEST, "`n`")
        .await;
    api.error("/audits?offset=", StatusCode::BAD_REQUEST, "`offset`")
        .await;
}

/// The limits answer in the API's JSON error shape: a slow handler hits the deadline (503), a
/// long URI is refused (414), an announced large body is refused (413), and one client over its
/// rate gets 429 with retry-after while a well-behaved pace is served.
#[tokio::test]
async fn limits_refuse_with_json_errors() {
    use indexer::limits::{apply, Limits};
    use std::time::Duration;
    let slow = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/fast", axum::routing::get(|| async { "ok" }));
    let limits = Limits {
        per_ip_per_sec: 5,
        timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let app = apply(slow, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let http = reqwest::Client::new();
    let json_error = |r: reqwest::Response| async move {
        let status = r.status();
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{status}: {ct}");
        (status, r.json::<Value>().await.unwrap())
    };
    let (status, v) = json_error(
        http.get(format!("http://{addr}/slow"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE.as_u16());
    assert_eq!(v["error"], "timeout");
    let long = format!("http://{addr}/fast?q={}", "a".repeat(5000));
    let (status, v) = json_error(http.get(long).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG.as_u16());
    assert_eq!(v["error"], "uri_too_long");
    assert!(v["detail"].as_str().unwrap().contains("4096"), "{v}");
    let (status, v) = json_error(
        http.get(format!("http://{addr}/fast"))
            .body(vec![b'x'; 64 * 1024])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE.as_u16());
    assert_eq!(v["error"], "too_large");
    // a burst of 40 from one address: the first ones pass, then 429 with retry-after
    let mut limited = None;
    let mut served = 0;
    for _ in 0..40 {
        let r = http
            .get(format!("http://{addr}/fast"))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS.as_u16() {
            assert!(r.headers().get("retry-after").is_some());
            limited = Some(json_error(r).await.1);
            break;
        }
        served += 1;
    }
    let v = limited.expect("40 requests at once from one address are rate limited");
    assert_eq!(v["error"], "rate_limited");
    assert!(
        served >= 5,
        "the burst allowance is served first ({served})"
    );
}

#[tokio::test]
async fn openapi_documents_every_route_and_only_those() {
    let api = api().await;
    let doc = api.ok("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        serde_json::to_value(indexer::openapi::document()).unwrap(),
        "the served document is the derived one"
    );
    // Every $ref points at a schema that exists.
    fn refs(v: &Value, doc: &Value) {
        match v {
            Value::Object(o) => {
                if o.contains_key("$ref") {
                    resolve(doc, v);
                }
                o.values().for_each(|x| refs(x, doc));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, doc)),
            _ => {}
        }
    }
    refs(&doc, &doc);
    let documented: std::collections::BTreeSet<String> =
        doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed: std::collections::BTreeSet<String> = indexer::api::routes()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(documented, routed);
    assert!(
        documented.contains("/epochs/{n}/model-status/{id}"),
        "the model status route is routed and documented"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert_eq!(
            item.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["get"],
            "{path}: only GET is routed"
        );
        let op = &item["get"];
        assert!(
            op["summary"].is_string() && op["responses"]["200"].is_object(),
            "{path}"
        );
        // The API's limits answer on every route, with the Error body.
        for code in ["414", "429", "503"] {
            assert_eq!(
                op["responses"][code]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{path}: {code}"
            );
        }
        // Every {param} of the path is declared as a path parameter.
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(|c| c == '{' || c == '}');
            let declared = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true);
            assert!(declared, "{path}: {name} not declared");
        }
    }
    // Every query parameter /tasks accepts is documented, with the bounds the handler checks.
    let params = doc["paths"]["/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["status", "worker", "model", "limit", "cursor"]);
    assert_eq!(params[3]["schema"]["maximum"], indexer::api::MAX_LIMIT);
    assert_eq!(params[3]["schema"]["minimum"], 1);
    assert_eq!(params[2]["schema"]["maximum"], u32::MAX);
    assert_eq!(
        resolve(&doc, &params[0]["schema"])["enum"],
        serde_json::json!(indexer::query::TASK_STATUSES)
    );
    let audits = doc["paths"]["/audits"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert_eq!(audits[2]["name"], "limit");
    assert_eq!(audits[2]["schema"]["maximum"], indexer::api::MAX_LIMIT);
    let role = &doc["paths"]["/leaderboard"]["get"]["parameters"][0];
    assert_eq!(role["required"], true);
    assert_eq!(
        resolve(&doc, &role["schema"])["enum"],
        serde_json::json!(indexer::epoch_query::LEADERBOARD_ROLES)
    );
    let model_id = &doc["paths"]["/models/{id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(model_id["maximum"], u32::MAX);
}

/// The schema of a type as utoipa derives it from the Rust type.
fn derived<T: utoipa::PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap()
}

#[tokio::test]
async fn openapi_response_schemas_are_derived_from_the_response_types() {
    use indexer::query;
    use utoipa::ToSchema;
    let api = api().await;
    let doc = api.ok("/openapi.json").await;
    let body = |path: &str| {
        doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            .clone()
    };
    let component = |name: &str| format!("#/components/schemas/{name}");
    assert_eq!(body("/tasks")["$ref"], component(&query::TaskPage::name()));
    assert_eq!(body("/tasks/{id}")["$ref"], component(&query::Task::name()));
    assert_eq!(
        body("/nodes/{address}")["$ref"],
        component(&query::Node::name())
    );
    // The components are the schemas of the Rust types, exactly.
    let s = &doc["components"]["schemas"];
    assert_eq!(s["TaskPage"], derived::<query::TaskPage>());
    assert_eq!(s["TaskSummary"], derived::<query::TaskSummary>());
    assert_eq!(s["Task"], derived::<query::Task>());
    assert_eq!(s["Node"], derived::<query::Node>());
    assert_eq!(s["NodeSummary"], derived::<query::NodeSummary>());
    assert_eq!(s["Slash"], derived::<indexer::audit_query::Slash>());
    assert_eq!(s["Error"], derived::<indexer::api::ErrorBody>());
    // They list the structs' fields: a page of tasks and a node as served have exactly the
    // documented properties (a field added to a struct is served, so it must be documented).
    let (page, required) = properties(&doc, &body("/tasks"));
    assert_eq!(
        keys(&page),
        ["tasks", "next_cursor"].map(String::from).into(),
        "the fields of query::TaskPage"
    );
    assert_eq!(required, ["tasks"]);
    let served = api.ok("/tasks?limit=2").await;
    assert_eq!(
        keys(&served),
        keys(&page),
        "GET /tasks serves the documented fields"
    );
    let (summary, _) = properties(&doc, &page["tasks"]["items"]);
    assert_eq!(keys(&served["tasks"][0]), keys(&summary));
    let w1 = format!("/nodes/{}", W1.to_checksum(None));
    let node = api.ok(&w1).await;
    let (documented, _) = properties(&doc, &body("/nodes/{address}"));
    assert_eq!(keys(&node), keys(&documented), "GET {w1}");
    for field in [
        "address",
        "worker_stake",
        "unbondings",
        "slashes",
        "audits",
        "recent_tasks",
    ] {
        assert!(documented[field].is_object(), "Node.{field}");
    }
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn every_served_field_is_documented() {
    let mut api = api().await;
    api.state.deployment = Some(deployment());
    let doc = api.ok("/openapi.json").await;
    let w1 = W1.to_checksum(None);
    for (route, uri) in [
        ("/health", "/health".to_string()),
        ("/models", "/models".into()),
        ("/models/{id}", "/models/1".into()),
        ("/nodes", "/nodes".into()),
        ("/nodes/{address}", format!("/nodes/{w1}")),
        (
            "/nodes/{address}",
            format!("/nodes/{}", W2.to_checksum(None)),
        ),
        ("/nodes/{address}/trust", format!("/nodes/{w1}/trust")),
        ("/tasks", "/tasks".into()),
        ("/tasks/{id}", "/tasks/1".into()),
        ("/tasks/{id}", "/tasks/2".into()),
        ("/tasks/{id}", "/tasks/3".into()),
        ("/audits", "/audits".into()),
        ("/epochs", "/epochs".into()),
        ("/leaderboard", "/leaderboard?role=worker".into()),
        ("/deployment.json", "/deployment.json".into()),
    ] {
        assert_documented(
            &doc,
            &response_schema(&doc, route),
            &api.ok(&uri).await,
            &uri,
        );
    }
    let (status, v) = api.get("/tasks?bogus=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error =
        &doc["paths"]["/tasks"]["get"]["responses"]["400"]["content"]["application/json"]["schema"];
    assert_documented(&doc, error, &v, "/tasks?bogus=1");
    assert!(
        resolve(&doc, &doc["components"]["schemas"]["ErrorKind"])["enum"]
            .as_array()
            .unwrap()
            .contains(&v["error"])
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let api = api().await;
    metrics::counter!("indexer_events_total", "event" => "TaskSubmitted").increment(3);
    metrics::gauge!("indexer_indexed_block").set(7.0);
    let (status, ct, body) = api.get_raw("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("indexer_events_total{event=\"TaskSubmitted\"}"),
        "{text}"
    );
    assert!(text.contains("indexer_indexed_block 7"), "{text}");
}

#[tokio::test]
async fn web_dir_is_served_at_the_root() {
    let mut api = api().await;
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<h1>stake</h1>").unwrap();
    api.state.web_dir = Some(web.path().to_path_buf());
    let (status, _, body) = api.get_raw("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"<h1>stake</h1>");
    // API routes still win over files.
    assert_eq!(
        api.ok("/models").await["models"].as_array().unwrap().len(),
        1
    );
}
