//! The REST API: a `Router` built by [`router`] (tests drive it with `oneshot`, no socket), one
//! error type rendered as `{"error", "detail"}`, and strict parameter parsing that names the
//! parameter at fault.

use crate::db::Db;
use crate::{audit_query, epoch_query, openapi, query, schema};
use alloy::primitives::Address;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::path::ParameterIn;
use utoipa::{IntoParams, ToSchema};

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
    /// Serialized `GET /tasks` and `GET /nodes/{addr}` pages of the last indexed block
    /// ([`crate::cache`]).
    pub pages: Arc<crate::cache::PageCache>,
}

/// What went wrong, in the `error` field of every error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: a parameter is malformed or unknown (the detail names it).
    BadRequest,
    /// 404: no such object or route.
    NotFound,
    /// 500: the database failed.
    Internal,
    /// 429: this client IP is over its request rate.
    RateLimited,
    /// 414: the request URI is too long.
    UriTooLong,
    /// 413: the request body is too large.
    TooLarge,
    /// 503: the request took longer than the server's timeout.
    Timeout,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorKind,
    /// What was wrong, in words (naming the parameter at fault).
    pub detail: String,
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

    fn kind(&self) -> ErrorKind {
        match self.status {
            StatusCode::BAD_REQUEST => ErrorKind::BadRequest,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
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
        let body = ErrorBody {
            error: self.kind(),
            detail: self.detail,
        };
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

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

/// The addresses of the deployment being indexed, as `script/Deploy.s.sol` writes them
/// (`protocol::Deployment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentDoc {
    chain_id: u64,
    /// Block the deployment started at (indexing starts here).
    start_block: u64,
    /// DN token.
    #[schema(value_type = schema::Address)]
    token: Address,
    #[schema(value_type = schema::Address)]
    staking: Address,
    #[schema(value_type = schema::Address)]
    model_registry: Address,
    #[schema(value_type = schema::Address)]
    task_manager: Address,
    #[schema(value_type = schema::Address)]
    treasury: Address,
    #[schema(value_type = schema::Address)]
    validator_pool: Address,
    #[schema(value_type = schema::Address)]
    settlement: Address,
    #[schema(value_type = schema::Address)]
    audit_manager: Address,
    /// The TimelockController holding every admin role (zero in files written before the admin
    /// moved behind a timelock).
    #[schema(value_type = schema::Address)]
    admin_timelock: Address,
    /// ProbeRegistry: probe emission switch and revealed probe wallets (zero in files written
    /// before it was deployed).
    #[schema(value_type = schema::Address)]
    probe_registry: Address,
}

impl From<&protocol::Deployment> for DeploymentDoc {
    fn from(d: &protocol::Deployment) -> Self {
        // every field, named: a field added to the deployment fails to compile here until it is
        // served (and so documented) too
        let protocol::Deployment {
            chain_id,
            start_block,
            token,
            staking,
            model_registry,
            task_manager,
            treasury,
            validator_pool,
            settlement,
            audit_manager,
            admin_timelock,
            probe_registry,
        } = *d;
        Self {
            chain_id,
            start_block,
            token,
            staking,
            model_registry,
            task_manager,
            treasury,
            validator_pool,
            settlement,
            audit_manager,
            admin_timelock,
            probe_registry,
        }
    }
}

/// The deployment being indexed.
///
/// Chain id, start block and contract addresses, as written by script/Deploy.s.sol.
#[utoipa::path(get, path = "/deployment.json", tag = "meta", responses(
    (status = 200, description = "deployment", body = DeploymentDoc),
    (status = 404, description = "this indexer was started without a deployment", body = ErrorBody),
))]
async fn deployment_doc(State(state): State<AppState>) -> ApiResult<DeploymentDoc> {
    state
        .deployment
        .as_ref()
        .map(|d| Json(DeploymentDoc::from(d)))
        .ok_or_else(|| {
            ApiError::not_found("this indexer was started without a deployment".to_string())
        })
}

async fn not_found_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {} (see /openapi.json)", uri.path()))
}

/// Rejects parameters the route does not know, naming them (a typo is not silently ignored).
/// `P`: the route's documented query parameters.
fn only_params<P: IntoParams>(q: &HashMap<String, String>) -> Result<(), ApiError> {
    if q.is_empty() {
        return Ok(());
    }
    let allowed: Vec<String> = P::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .map(|p| p.name)
        .collect();
    match q.keys().find(|k| !allowed.contains(k)) {
        Some(k) => Err(ApiError::bad_param(
            k,
            format!("unknown parameter (allowed: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The query parameters of routes without any.
struct NoParams;

impl IntoParams for NoParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        Vec::new()
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

/// Whether the indexer keeps up with the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// No block indexed or no head seen yet.
    Starting,
    /// At most `confirmations + 2` blocks behind the head.
    Ok,
    /// Further behind.
    Syncing,
}

/// Indexer progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    status: HealthStatus,
    chain_id: u64,
    /// Newest indexed block (null before the first).
    indexed_block: Option<u64>,
    /// Newest chain head seen (null before the first poll).
    head_block: Option<u64>,
    blocks_behind: Option<u64>,
    /// Blocks the indexer stays behind the head.
    confirmations: u64,
    /// RPC errors since start.
    rpc_errors: u64,
    /// Whether this process follows the chain into the database (it holds the writer lock);
    /// false: another indexer sharing the PostgreSQL database does, and this one serves what it
    /// writes (it takes over if that one stops).
    writer: bool,
}

/// Indexer progress: chain id, indexed block, head block, blocks behind.
#[utoipa::path(get, path = "/health", tag = "meta", responses(
    (status = 200, description = "progress", body = Health),
))]
async fn health(State(s): State<AppState>) -> ApiResult<Health> {
    let cursor = s.db.cursor(s.chain_id).await?;
    let indexed = cursor.map(|c| c.number);
    let head = s.sync.head.load(Ordering::Relaxed);
    let head_opt = (head > 0).then_some(head);
    let behind = match (head_opt, indexed) {
        (Some(h), Some(i)) => Some(h.saturating_sub(i)),
        _ => None,
    };
    let status = match behind {
        None => HealthStatus::Starting,
        Some(b) if b <= s.confirmations + 2 => HealthStatus::Ok,
        Some(_) => HealthStatus::Syncing,
    };
    Ok(Json(Health {
        status,
        chain_id: s.chain_id,
        indexed_block: indexed,
        head_block: head_opt,
        blocks_behind: behind,
        confirmations: s.confirmations,
        rpc_errors: s.sync.rpc_errors.load(Ordering::Relaxed),
        writer: s.sync.writer.load(Ordering::Relaxed),
    }))
}

/// Every registered model.
#[utoipa::path(get, path = "/models", tag = "models", responses(
    (status = 200, description = "models", body = query::ModelList),
    (status = 400, description = "an unknown query parameter (the detail names it)", body = ErrorBody),
))]
async fn list_models(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<query::ModelList> {
    only_params::<NoParams>(&q)?;
    Ok(Json(query::models(s.db.pool()).await?))
}

/// One model with its workers, price, usage counts and measured quality.
#[utoipa::path(get, path = "/models/{id}", tag = "models",
    params(("id" = i64, Path, description = "model id", minimum = 0, maximum = 4294967295_u64)),
    responses(
        (status = 200, description = "model", body = query::Model),
        (status = 400, description = "the id is not a number in 0..=4294967295", body = ErrorBody),
        (status = 404, description = "no such model", body = ErrorBody),
    ))]
async fn get_model(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<query::Model> {
    let id = parse_u32("id", &id)?;
    query::model(s.db.pool(), id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no model {id}")))
}

/// Every worker and validator seen on-chain.
#[utoipa::path(get, path = "/nodes", tag = "nodes", responses(
    (status = 200, description = "nodes", body = query::NodeList),
    (status = 400, description = "an unknown query parameter (the detail names it)", body = ErrorBody),
))]
async fn list_nodes(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<query::NodeList> {
    only_params::<NoParams>(&q)?;
    Ok(Json(query::nodes(s.db.pool()).await?))
}

/// One node: stakes, unbondings, jail, slashes, audit record, task stats and recent tasks.
#[utoipa::path(get, path = "/nodes/{address}", tag = "nodes",
    params(("address" = schema::Address, Path, description = "node address")),
    responses(
        (status = 200, description = "node", body = query::Node),
        (status = 400, description = "the address is malformed", body = ErrorBody),
        (status = 404, description = "no such node", body = ErrorBody),
    ))]
async fn get_node(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<Response, ApiError> {
    let a = parse_address("address", &address)?;
    kept_or_read(&s, format!("node:{a}"), || async {
        let (node, at) = query::node_at(s.db.pool(), s.chain_id, a).await?;
        let node = node.ok_or_else(|| ApiError::not_found(format!("no node {a}")))?;
        Ok((json_bytes(&node, "the node")?, at))
    })
    .await
}

/// The response of `key` at the last indexed block: the kept bytes when it was read there already
/// ([`crate::cache`]), else what `read` returns (the body and the cursor it was read at, in one
/// read transaction), kept for the next request.
async fn kept_or_read<F, Fut>(s: &AppState, key: String, read: F) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<
        Output = Result<(axum::body::Bytes, Option<chainstore::db::BlockRef>), ApiError>,
    >,
{
    let cached = chainstore::db::read_cursor(s.db.pool(), s.chain_id)
        .await?
        .and_then(|c| s.pages.get(&key, cache_at(&c)));
    let body = match cached {
        Some(body) => body,
        None => {
            let (body, at) = read().await?;
            if let Some(c) = at {
                s.pages.put(key, cache_at(&c), body.clone());
            }
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A response body of `value` as JSON.
fn json_bytes<T: serde::Serialize>(value: &T, what: &str) -> Result<axum::body::Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(axum::body::Bytes::from)
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: format!("encoding {what}: {e}"),
        })
}

/// Query parameters of `GET /tasks`, parsed.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct TaskQuery {
    /// Only tasks in this state.
    #[param(value_type = Option<query::TaskStatus>)]
    status: Option<String>,
    /// Only tasks assigned to this worker.
    #[param(value_type = Option<schema::Address>)]
    worker: Option<Address>,
    /// Only tasks of this model id.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295_u64)]
    model: Option<u32>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page: tasks with a smaller id.
    #[param(value_type = Option<schema::Decimal>)]
    cursor: Option<i64>,
}

impl TaskQuery {
    fn parse(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        only_params::<Self>(q)?;
        let mut out = Self::default();
        if let Some(st) = q.get("status") {
            if !query::TASK_STATUSES.contains(&st.as_str()) {
                return Err(ApiError::bad_param(
                    "status",
                    format!("`{st}` is not one of {}", query::TASK_STATUSES.join(", ")),
                ));
            }
            out.status = Some(st.clone());
        }
        if let Some(w) = q.get("worker") {
            out.worker = Some(parse_address("worker", w)?);
        }
        if let Some(m) = q.get("model") {
            out.model = Some(parse_u32("model", m)?);
        }
        if let Some(l) = q.get("limit") {
            out.limit = Some(parse_limit(l)?);
        }
        if let Some(c) = q.get("cursor") {
            out.cursor = Some(parse_task_id("cursor", c)?);
        }
        Ok(out)
    }
}

/// Tasks, newest first, with keyset pagination by task id.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(TaskQuery), responses(
    (status = 200, description = "a page of tasks", body = query::TaskPage),
    (status = 400, description = "a parameter is malformed or unknown (the detail names it)", body = ErrorBody),
))]
async fn list_tasks(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = TaskQuery::parse(&q)?;
    let f = query::TaskFilter {
        status: q.status,
        worker: q.worker,
        model: q.model,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT),
        cursor: q.cursor,
    };
    kept_or_read(&s, format!("tasks:{f:?}"), || async {
        let (page, at) = query::tasks_at(s.db.pool(), s.chain_id, &f).await?;
        Ok((json_bytes(&page, "the page")?, at))
    })
    .await
}

fn cache_at(c: &chainstore::db::BlockRef) -> crate::cache::At {
    crate::cache::At {
        number: c.number,
        hash: c.hash,
    }
}

/// One task with its decoded payloads, trail of events and audit record.
///
/// Decoded input and output tensors (and the content of blobs kept in this indexer's blob
/// store), hashes, failure code, fee split, latency, the task's trail of events and its audit
/// record (verdicts, dispute and votes, canary report, validators' missed deadlines).
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = schema::NonNegativeInteger, Path, description = "task id")),
    responses(
        (status = 200, description = "task", body = query::Task),
        (status = 400, description = "the id is not a non-negative integer", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
    ))]
async fn get_task(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<query::Task> {
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

/// Query parameters of `GET /audits`, parsed.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only verdicts on this worker's results.
    #[param(value_type = Option<schema::Address>)]
    worker: Option<Address>,
    /// Only verdicts signed by this validator.
    #[param(value_type = Option<schema::Address>)]
    validator: Option<Address>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Verdicts to skip.
    #[param(value_type = Option<schema::NonNegativeInteger>)]
    offset: Option<u64>,
}

impl AuditQuery {
    fn parse(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        only_params::<Self>(q)?;
        let mut out = Self::default();
        if let Some(w) = q.get("worker") {
            out.worker = Some(parse_address("worker", w)?);
        }
        if let Some(v) = q.get("validator") {
            out.validator = Some(parse_address("validator", v)?);
        }
        if let Some(l) = q.get("limit") {
            out.limit = Some(parse_limit(l)?);
        }
        if let Some(o) = q.get("offset") {
            out.offset = Some(saturating_nonneg(o).map(|o| o as u64).ok_or_else(|| {
                ApiError::bad_param("offset", format!("`{o}` is not a non-negative integer"))
            })?);
        }
        Ok(out)
    }
}

/// Verdicts of drawn validators, newest first, each with the outcome of the dispute it opened.
#[utoipa::path(get, path = "/audits", tag = "audits", params(AuditQuery), responses(
    (status = 200, description = "a page of verdicts", body = audit_query::AuditPage),
    (status = 400, description = "a parameter is malformed or unknown (the detail names it)", body = ErrorBody),
))]
async fn list_audits(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<audit_query::AuditPage> {
    let q = AuditQuery::parse(&q)?;
    let f = audit_query::AuditFilter {
        worker: q.worker.map(|w| w.to_checksum(None)),
        validator: q.validator.map(|v| v.to_checksum(None)),
        limit: q.limit.unwrap_or(DEFAULT_LIMIT),
        offset: q.offset.unwrap_or(0),
    };
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

/// Computed epochs, newest first.
///
/// Report roots, totals, budget, whether the report was posted on-chain, claimed totals.
#[utoipa::path(get, path = "/epochs", tag = "epochs", responses(
    (status = 200, description = "epochs", body = epoch_query::EpochList),
    (status = 400, description = "an unknown query parameter (the detail names it)", body = ErrorBody),
))]
async fn list_epochs(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<epoch_query::EpochList> {
    only_params::<NoParams>(&q)?;
    Ok(Json(epoch_query::epochs(s.db.pool()).await?))
}

/// One computed epoch with its per-worker, validator and model tables.
///
/// The report validators sign, pools and totals, and the per-worker table (rates, quality,
/// trust, PoWR score, reward), validators and models.
#[utoipa::path(get, path = "/epochs/{n}", tag = "epochs",
    params(("n" = schema::NonNegativeInteger, Path, description = "epoch number")),
    responses(
        (status = 200, description = "epoch", body = epoch_query::Epoch),
        (status = 400, description = "n is not a non-negative integer", body = ErrorBody),
        (status = 404, description = "the epoch is not computed (yet)", body = ErrorBody),
    ))]
async fn get_epoch(
    State(s): State<AppState>,
    Path(n): Path<String>,
) -> ApiResult<epoch_query::Epoch> {
    let n = parse_epoch("n", &n)?;
    epoch_query::epoch(s.db.pool(), n)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("epoch {n} is not computed (yet)")))
}

/// An account's reward of an epoch with its Merkle proof (for Settlement.claim).
///
/// Also whether it was claimed, and in which transaction.
#[utoipa::path(get, path = "/epochs/{n}/rewards/{address}", tag = "epochs",
    params(
        ("n" = schema::NonNegativeInteger, Path, description = "epoch number"),
        ("address" = schema::Address, Path, description = "account"),
    ),
    responses(
        (status = 200, description = "reward", body = epoch_query::Reward),
        (status = 400, description = "a parameter is malformed (the detail names it)", body = ErrorBody),
        (status = 404, description = "no reward for the account in the epoch", body = ErrorBody),
    ))]
async fn get_reward(
    State(s): State<AppState>,
    Path((n, address)): Path<(String, String)>,
) -> ApiResult<epoch_query::Reward> {
    let n = parse_epoch("n", &n)?;
    let a = parse_address("address", &address)?;
    epoch_query::reward(s.db.pool(), n, a)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no reward for {a} in epoch {n}")))
}

/// A model's leaf of an epoch report's model status tree, with its Merkle proof.
///
/// The arguments of Settlement.applyModelStatus, and whether it was applied; only models whose
/// status the report sets have a leaf.
#[utoipa::path(get, path = "/epochs/{n}/model-status/{id}", tag = "epochs",
    params(
        ("n" = schema::NonNegativeInteger, Path, description = "epoch number"),
        ("id" = i64, Path, description = "model id", minimum = 0, maximum = 4294967295_u64),
    ),
    responses(
        (status = 200, description = "model status leaf", body = epoch_query::ModelStatusProof),
        (status = 400, description = "a parameter is malformed (the detail names it)", body = ErrorBody),
        (status = 404, description = "the epoch is not computed, or the model has no leaf in its report", body = ErrorBody),
    ))]
async fn get_model_status(
    State(s): State<AppState>,
    Path((n, id)): Path<(String, String)>,
) -> ApiResult<epoch_query::ModelStatusProof> {
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

/// A node's trust history per epoch.
///
/// Each epoch's trust with its four components (completion, accuracy, uptime, speed) and the
/// epoch quality, and the last trust refreshed on-chain.
#[utoipa::path(get, path = "/nodes/{address}/trust", tag = "nodes",
    params(("address" = schema::Address, Path, description = "node address")),
    responses(
        (status = 200, description = "trust history", body = epoch_query::NodeTrust),
        (status = 400, description = "the address is malformed", body = ErrorBody),
        (status = 404, description = "no such node", body = ErrorBody),
    ))]
async fn get_node_trust(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> ApiResult<epoch_query::NodeTrust> {
    let a = parse_address("address", &address)?;
    epoch_query::node_trust(s.db.pool(), a)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no node {a}")))
}

/// Query parameters of `GET /leaderboard`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
struct LeaderboardQuery {
    /// Which leaderboard.
    #[param(value_type = epoch_query::LeaderboardRole)]
    role: String,
}

impl LeaderboardQuery {
    fn parse(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        only_params::<Self>(q)?;
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
        Ok(Self { role: role.clone() })
    }
}

/// Workers, validators or models ranked over all computed epochs.
///
/// Workers by rewards, then trust; validators by rewards; models by quality x usage (the
/// compute units of each epoch weighted by the model's measured quality in it).
#[utoipa::path(get, path = "/leaderboard", tag = "epochs", params(LeaderboardQuery), responses(
    (status = 200, description = "leaderboard", body = epoch_query::Leaderboard),
    (status = 400, description = "role is missing or not a leaderboard, or a parameter is unknown", body = ErrorBody),
))]
async fn get_leaderboard(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<epoch_query::Leaderboard> {
    let q = LeaderboardQuery::parse(&q)?;
    Ok(Json(epoch_query::leaderboard(s.db.pool(), &q.role).await?))
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses(
    (status = 200, description = "OpenAPI 3.1 document", body = Object),
))]
async fn openapi_doc() -> Response {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    let body = DOC.get_or_init(|| {
        serde_json::to_vec(&openapi::document()).expect("the OpenAPI document serializes")
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.as_slice(),
    )
        .into_response()
}

/// Prometheus metrics.
///
/// Indexed block, head block, blocks behind, events indexed by name, RPC errors.
#[utoipa::path(get, path = "/metrics", tag = "meta", responses(
    (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
))]
async fn metrics_text(State(s): State<AppState>) -> Response {
    let body = s
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
