//! The REST API: a `Router` built by [`router`] (tests drive it with `oneshot`, no socket), one
//! error type rendered as `{"error", "detail"}`, and strict parameter parsing that names the
//! parameter at fault.

use crate::db::Db;
use crate::{audit_query, epoch_query, openapi, query};
use alloy::primitives::Address;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Default page size of `GET /tasks` and `GET /audits`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest `limit` accepted by `GET /tasks` and `GET /audits`.
pub const MAX_LIMIT: u32 = 500;

/// What the follow loop shares with the API (defined with the follow loop).
pub use chainstore::follow::SyncStatus;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Chain being indexed.
    pub chain_id: u64,
    /// Blocks the indexer stays behind the head.
    pub confirmations: u64,
    /// Progress of the follow loop.
    pub sync: Arc<SyncStatus>,
    /// Prometheus registry to render at `/metrics` (None: metrics disabled).
    pub metrics: Option<PrometheusHandle>,
    /// Static files served at `/` (the staking page).
    pub web_dir: Option<PathBuf>,
    /// The deployment being indexed, served at `/deployment.json` (the staking page reads the
    /// contract addresses from it).
    pub deployment: Option<protocol::Deployment>,
}

/// An API error: HTTP status plus `{"error": <kind>, "detail": <what was wrong>}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    /// 400 naming the parameter.
    pub fn bad_param(name: &str, why: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            detail: format!("parameter `{name}`: {why}"),
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            detail: what.into(),
        }
    }

    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            _ => "internal",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database query failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: format!("database: {e}"),
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        tracing::error!(error = %e, "database query failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.kind(), "detail": self.detail})),
        )
            .into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// Every route of the API with its handler; [`router`] mounts them and the OpenAPI test checks
/// that each one is documented.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/health", get(health)),
        ("/models", get(list_models)),
        ("/models/{id}", get(get_model)),
        ("/nodes", get(list_nodes)),
        ("/nodes/{address}", get(get_node)),
        ("/tasks", get(list_tasks)),
        ("/tasks/{id}", get(get_task)),
        ("/audits", get(list_audits)),
        ("/epochs", get(list_epochs)),
        ("/epochs/{n}", get(get_epoch)),
        ("/epochs/{n}/rewards/{address}", get(get_reward)),
        ("/epochs/{n}/model-status/{id}", get(get_model_status)),
        ("/nodes/{address}/trust", get(get_node_trust)),
        ("/leaderboard", get(get_leaderboard)),
        ("/openapi.json", get(openapi_doc)),
        ("/deployment.json", get(deployment_doc)),
        ("/metrics", get(metrics_text)),
    ]
}

/// The API router over `state`. Unknown paths answer a JSON 404 unless `web_dir` is set, in
/// which case its files are served.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (path, route) in routes() {
        r = r.route(path, route);
    }
    let r = match &state.web_dir {
        Some(dir) => r.fallback_service(
            tower_http::services::ServeDir::new(dir).append_index_html_on_directories(true),
        ),
        None => r.fallback(not_found_route),
    };
    r.with_state(state)
        .layer(tower_http::cors::CorsLayer::permissive())
}

async fn deployment_doc(
    State(state): State<AppState>,
) -> Result<Json<protocol::Deployment>, ApiError> {
    state.deployment.clone().map(Json).ok_or_else(|| {
        ApiError::not_found("this indexer was started without a deployment".to_string())
    })
}

async fn not_found_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {} (see /openapi.json)", uri.path()))
}

/// Rejects parameters the route does not know, naming them (a typo is not silently ignored).
fn only_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_param(
            k,
            format!("unknown parameter (allowed: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn parse_address(name: &str, raw: &str) -> Result<Address, ApiError> {
    raw.parse::<Address>().map_err(|_| {
        ApiError::bad_param(
            name,
            format!("`{raw}` is not a 0x-prefixed 20-byte hex address"),
        )
    })
}

fn parse_u32(name: &str, raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>().map_err(|_| {
        ApiError::bad_param(name, format!("`{raw}` is not a number in 0..=4294967295"))
    })
}

/// A non-negative decimal integer of any size, saturated at `i64::MAX` (the database's ids and
/// epochs are below it, so a larger one finds nothing, or everything for a cursor); `None` for
/// anything else.
fn saturating_nonneg(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(raw.parse::<i64>().unwrap_or(i64::MAX))
}

fn parse_task_id(name: &str, raw: &str) -> Result<i64, ApiError> {
    saturating_nonneg(raw).ok_or_else(|| {
        ApiError::bad_param(
            name,
            format!("`{raw}` is not a task id (a non-negative integer)"),
        )
    })
}

async fn health(State(s): State<AppState>) -> ApiResult {
    let cursor = s.db.cursor(s.chain_id).await?;
    let indexed = cursor.map(|c| c.number);
    let head = s.sync.head.load(Ordering::Relaxed);
    let head_opt = (head > 0).then_some(head);
    let behind = match (head_opt, indexed) {
        (Some(h), Some(i)) => Some(h.saturating_sub(i)),
        _ => None,
    };
    let status = match behind {
        None => "starting",
        Some(b) if b <= s.confirmations + 2 => "ok",
        Some(_) => "syncing",
    };
    Ok(Json(json!({
        "status": status,
        "chain_id": s.chain_id,
        "indexed_block": indexed,
        "head_block": head_opt,
        "blocks_behind": behind,
        "confirmations": s.confirmations,
        "rpc_errors": s.sync.rpc_errors.load(Ordering::Relaxed),
    })))
}

async fn list_models(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    only_params(&q, &[])?;
    Ok(Json(query::models(s.db.pool()).await?))
}

async fn get_model(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_u32("id", &id)?;
    query::model(s.db.pool(), id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no model {id}")))
}

async fn list_nodes(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    only_params(&q, &[])?;
    Ok(Json(query::nodes(s.db.pool()).await?))
}

async fn get_node(State(s): State<AppState>, Path(address): Path<String>) -> ApiResult {
    let a = parse_address("address", &address)?;
    query::node(s.db.pool(), a)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no node {a}")))
}

async fn list_tasks(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    only_params(&q, &["status", "worker", "model", "limit", "cursor"])?;
    let mut f = query::TaskFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    if let Some(st) = q.get("status") {
        if !query::TASK_STATUSES.contains(&st.as_str()) {
            return Err(ApiError::bad_param(
                "status",
                format!("`{st}` is not one of {}", query::TASK_STATUSES.join(", ")),
            ));
        }
        f.status = Some(st.clone());
    }
    if let Some(w) = q.get("worker") {
        f.worker = Some(parse_address("worker", w)?);
    }
    if let Some(m) = q.get("model") {
        f.model = Some(parse_u32("model", m)?);
    }
    if let Some(l) = q.get("limit") {
        f.limit = parse_limit(l)?;
    }
    if let Some(c) = q.get("cursor") {
        f.cursor = Some(parse_task_id("cursor", c)?);
    }
    Ok(Json(query::tasks(s.db.pool(), &f).await?))
}

async fn get_task(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_task_id("id", &id)?;
    let mut task = query::task(s.db.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    crate::blobs::attach_contents(&mut task).await;
    Ok(Json(task))
}

fn parse_limit(raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| {
            ApiError::bad_param(
                "limit",
                format!("`{raw}` is not a number in 1..={MAX_LIMIT}"),
            )
        })
}

async fn list_audits(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    only_params(&q, &["worker", "validator", "limit", "offset"])?;
    let mut f = audit_query::AuditFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    if let Some(w) = q.get("worker") {
        f.worker = Some(parse_address("worker", w)?.to_checksum(None));
    }
    if let Some(v) = q.get("validator") {
        f.validator = Some(parse_address("validator", v)?.to_checksum(None));
    }
    if let Some(l) = q.get("limit") {
        f.limit = parse_limit(l)?;
    }
    if let Some(o) = q.get("offset") {
        f.offset = saturating_nonneg(o).map(|o| o as u64).ok_or_else(|| {
            ApiError::bad_param("offset", format!("`{o}` is not a non-negative integer"))
        })?;
    }
    Ok(Json(audit_query::audits(s.db.pool(), &f).await?))
}

fn parse_epoch(name: &str, raw: &str) -> Result<i64, ApiError> {
    saturating_nonneg(raw).ok_or_else(|| {
        ApiError::bad_param(
            name,
            format!("`{raw}` is not an epoch number (a non-negative integer)"),
        )
    })
}

async fn list_epochs(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    only_params(&q, &[])?;
    Ok(Json(epoch_query::epochs(s.db.pool()).await?))
}

async fn get_epoch(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    let n = parse_epoch("n", &n)?;
    epoch_query::epoch(s.db.pool(), n)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("epoch {n} is not computed (yet)")))
}

async fn get_reward(
    State(s): State<AppState>,
    Path((n, address)): Path<(String, String)>,
) -> ApiResult {
    let n = parse_epoch("n", &n)?;
    let a = parse_address("address", &address)?;
    epoch_query::reward(s.db.pool(), n, a)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no reward for {a} in epoch {n}")))
}

async fn get_model_status(
    State(s): State<AppState>,
    Path((n, id)): Path<(String, String)>,
) -> ApiResult {
    let n = parse_epoch("n", &n)?;
    let id = parse_u32("id", &id)?;
    match epoch_query::model_status(s.db.pool(), n, id).await? {
        epoch_query::ModelStatusLeaf::Leaf(v) => Ok(Json(v)),
        epoch_query::ModelStatusLeaf::NoEpoch => Err(ApiError::not_found(format!(
            "epoch {n} is not computed (yet)"
        ))),
        epoch_query::ModelStatusLeaf::NoLeaf => Err(ApiError::not_found(format!(
            "model {id} has no status change in epoch {n}'s report"
        ))),
    }
}

async fn get_node_trust(State(s): State<AppState>, Path(address): Path<String>) -> ApiResult {
    let a = parse_address("address", &address)?;
    epoch_query::node_trust(s.db.pool(), a)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no node {a}")))
}

async fn get_leaderboard(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    only_params(&q, &["role"])?;
    let roles = epoch_query::LEADERBOARD_ROLES.join(", ");
    let role = q
        .get("role")
        .ok_or_else(|| ApiError::bad_param("role", format!("missing (one of {roles})")))?;
    if !epoch_query::LEADERBOARD_ROLES.contains(&role.as_str()) {
        return Err(ApiError::bad_param(
            "role",
            format!("`{role}` is not one of {roles}"),
        ));
    }
    Ok(Json(epoch_query::leaderboard(s.db.pool(), role).await?))
}

async fn openapi_doc() -> Json<Value> {
    Json(openapi::document())
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    let body = s
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
