//! The HTTP service: a `Router` built by [`router`] (tests drive it with `oneshot`), one error
//! type rendered as `{"error", "detail"}`, and the command line of the `blobstore` binary.

use crate::client::{blob_url, Stored};
use crate::store::{S3Config, Store, DEFAULT_MAX_BYTES};
use crate::{envelope, BlobError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the `blobstore` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "blobstore",
    version,
    about = "Serve DeepNode task payloads (images, audio, long answers) by sha256",
    long_about = "Content-addressed blob store for DeepNode task payloads too large for the chain. \
        Clients PUT bytes and get back their sha256 and a GET URL; the chain only carries an \
        envelope (magic, sha256, URL). Every read is re-hashed, so the store never serves bytes \
        that do not match their address. Blobs live in a local directory (--dir) or an \
        S3-compatible bucket (--s3-bucket). Prints `blobstore: listening on http://ADDR` on \
        stdout once ready; stops gracefully on SIGINT/SIGTERM."
)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// Directory for blobs (created if missing). Ignored when --s3-bucket is given.
    #[arg(long, value_name = "DIR", default_value = "./blobs")]
    pub dir: PathBuf,
    /// Keep blobs in this S3 bucket (which must exist) instead of --dir.
    #[arg(long, value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 endpoint URL for S3-compatible services (MinIO, R2, moto); omit for AWS.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(
        long,
        value_name = "REGION",
        env = "AWS_REGION",
        default_value = "us-east-1"
    )]
    pub s3_region: String,
    /// S3 access key id (without one, the AWS instance credentials are used).
    #[arg(
        long,
        value_name = "ID",
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key.
    #[arg(
        long,
        value_name = "SECRET",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// Allow a plain http:// S3 endpoint (local test servers only).
    #[arg(long, env = "AWS_ALLOW_HTTP")]
    pub s3_allow_http: bool,
    /// Base URL written into upload answers (`<URL>/blobs/<sha256>`): the address other
    /// machines reach this service at. Default: http://<listen address>.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Largest blob accepted or served, in bytes; larger uploads get 413 before being read.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    pub max_blob_bytes: u64,
    /// Logs as JSON lines (on stderr). RUST_LOG sets the level (default info).
    #[arg(long)]
    pub json_logs: bool,
}

impl Args {
    /// The store these flags select, with the size limit applied.
    pub fn store(&self) -> Result<Store, BlobError> {
        let store = match &self.s3_bucket {
            Some(bucket) => Store::s3(&S3Config {
                bucket: bucket.clone(),
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
                allow_http: self.s3_allow_http,
            })?,
            None => Store::local(&self.dir)?,
        };
        Ok(store.with_max_bytes(self.max_blob_bytes))
    }

    /// --public-url, or `http://<addr>` of the bound socket.
    pub fn public_url(&self, addr: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{addr}"),
        }
    }
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Where blobs live; its `max_bytes` is also the request body limit.
    pub store: Store,
    /// Base of the URLs handed out (`<public_url>/blobs/<sha256>`).
    pub public_url: String,
}

/// An API error: HTTP status plus `{"error": <kind>, "detail": <what was wrong>}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        let (status, kind) = match &e {
            BlobError::BadHash(_) => (StatusCode::BAD_REQUEST, "bad_hash"),
            BlobError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            BlobError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            // Only uploads reach here with a mismatch; a corrupt stored blob is mapped by `get_blob`.
            BlobError::HashMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"),
            _ => {
                tracing::error!(error = %e, "storage backend failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        Self::new(status, kind, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.kind, "detail": self.detail})),
        )
            .into_response()
    }
}

/// The routes: `PUT /blobs`, `PUT|GET|HEAD /blobs/{sha256}`, `GET /health`. Request bodies over
/// the store's limit are refused while streaming in (never buffered whole).
pub fn router(state: AppState) -> Router {
    let limit = usize::try_from(state.store.max_bytes()).unwrap_or(usize::MAX);
    Router::new()
        .route("/health", get(health))
        .route("/blobs", put(put_blob).post(put_blob))
        .route(
            "/blobs/{sha256}",
            get(get_blob).head(head_blob).put(put_named_blob),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The upload body, or 413 as our JSON error. Content-Length is checked first so an announced
/// oversize body is refused without reading a byte of it.
fn body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let max = state.store.max_bytes();
    let too_large = |size: &str| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body{size} is over the limit of {max} bytes (--max-blob-bytes)"),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = announced.filter(|&len| len > max) {
        return Err(too_large(&format!(" of {len} bytes")));
    }
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large("")
        } else {
            ApiError::new(e.status(), "bad_request", e.body_text())
        }
    })
}

fn stored(state: &AppState, sha256: [u8; 32], size: usize) -> Response {
    let answer = Stored {
        sha256: hex::encode(sha256),
        size: size as u64,
        url: blob_url(&state.public_url, &sha256),
    };
    tracing::info!(sha256 = %answer.sha256, size, "blob stored");
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn put_blob(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(&state, &headers, bytes)?;
    let size = bytes.len();
    let sha = state.store.put(bytes).await?;
    Ok(stored(&state, sha, size))
}

async fn put_named_blob(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let sha = envelope::parse_sha256(&sha256)?;
    let bytes = body(&state, &headers, bytes)?;
    let size = bytes.len();
    state.store.put_expecting(sha, bytes).await?;
    Ok(stored(&state, sha, size))
}

fn blob_headers(sha: &[u8; 32], size: u64) -> [(header::HeaderName, HeaderValue); 3] {
    let etag = HeaderValue::from_str(&format!("\"{}\"", hex::encode(sha)))
        .expect("quoted hex is a valid header value");
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (header::ETAG, etag),
        (header::CONTENT_LENGTH, HeaderValue::from(size)),
    ]
}

async fn get_blob(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    let sha = envelope::parse_sha256(&sha256)?;
    match state.store.get(&sha).await {
        Ok(bytes) => Ok((blob_headers(&sha, bytes.len() as u64), bytes).into_response()),
        Err(e @ BlobError::HashMismatch { .. }) => {
            tracing::error!(error = %e, "stored blob is corrupt; refusing to serve it");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_blob",
                e.to_string(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn head_blob(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    let sha = envelope::parse_sha256(&sha256)?;
    match state.store.head(&sha).await? {
        Some(size) => Ok((blob_headers(&sha, size), ()).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("blobs/{sha256}: no such blob"),
        )),
    }
}
