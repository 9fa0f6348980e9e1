//! Limits of the public REST API, so one client cannot exhaust it: a per-IP rate limit
//! (`tower_governor`), a longest URI (query strings included), a largest body and a deadline on
//! every request (`tower-http`). Each refusal is the API's JSON error (`{"error", "detail"}`):
//! 429 `rate_limited` (with `retry-after`), 414 `uri_too_long`, 413 `too_large`, 503 `timeout`.

use crate::api::{ErrorBody, ErrorKind};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

/// What the API accepts from one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per second per client IP, sustained (0: no limit); bursts up to twice as many.
    pub per_ip_per_sec: u32,
    /// Longest request URI (path and query), bytes.
    pub max_uri_bytes: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_ip_per_sec: 200,
            max_uri_bytes: 4096,
            max_body_bytes: 16 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `router` behind `limits`. The rate limit keys on the peer address: serve the result with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn apply(router: Router, limits: Limits) -> Router {
    let max_uri = limits.max_uri_bytes;
    let mut r =
        router
            .layer(tower_http::limit::RequestBodyLimitLayer::new(
                limits.max_body_bytes,
            ))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                limits.timeout,
            ))
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let len = req.uri().to_string().len();
                    async move {
                        if len > max_uri {
                            return error(
                        StatusCode::URI_TOO_LONG,
                        ErrorKind::UriTooLong,
                        format!("the request URI is {len} bytes; at most {max_uri} are accepted"),
                    );
                        }
                        next.run(req).await
                    }
                },
            ));
    if limits.per_ip_per_sec > 0 {
        let config = GovernorConfigBuilder::default()
            .per_millisecond((1000 / u64::from(limits.per_ip_per_sec)).max(1))
            .burst_size(limits.per_ip_per_sec.saturating_mul(2))
            .finish()
            .expect("a positive rate and burst");
        let config = Arc::new(config);
        // forget clients that have been quiet a while, so the table does not grow for ever
        let limiter = config.limiter().clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                limiter.retain_recent();
            }
        });
        r = r.layer(GovernorLayer::new(config));
    }
    r.layer(axum::middleware::from_fn(json_errors))
}

fn error(status: StatusCode, error: ErrorKind, detail: String) -> Response {
    (status, Json(ErrorBody { error, detail })).into_response()
}

/// Gives the layers' own refusals (plain text or empty bodies) the API's JSON error shape.
async fn json_errors(req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        return r;
    }
    let (kind, detail) = match r.status() {
        StatusCode::TOO_MANY_REQUESTS => {
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("1")
                .to_string();
            (
                ErrorKind::RateLimited,
                format!("too many requests from this address; retry in {wait} s"),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            (ErrorKind::TooLarge, "the request body is too large".into())
        }
        StatusCode::SERVICE_UNAVAILABLE => (
            ErrorKind::Timeout,
            "the request took too long and was abandoned".into(),
        ),
        _ => return r,
    };
    let (mut parts, _) = r.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&ErrorBody {
        error: kind,
        detail,
    })
    .expect("JSON");
    Response::from_parts(parts, Body::from(body))
}
