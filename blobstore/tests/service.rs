//! The HTTP service through `oneshot` (no socket): every route, every refusal, JSON errors.

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use blobstore::service::{router, AppState};
use blobstore::{sha256, Store};
use serde_json::Value;
use tower::ServiceExt;

fn app(dir: &std::path::Path, max: u64) -> Router {
    let store = Store::local(dir).unwrap().with_max_bytes(max);
    router(AppState {
        store,
        public_url: "http://blobs.example:8700".into(),
    })
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Body,
) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    // As on the wire: a body of known size comes with its Content-Length.
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(len) = axum::body::HttpBody::size_hint(&body).exact() {
        req = req.header(header::CONTENT_LENGTH, len);
    }
    let req = req.body(body).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, headers, body.to_vec())
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

fn assert_error(body: &[u8], kind: &str, detail_has: &str) {
    let v = json(body);
    assert_eq!(v["error"], kind, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains(detail_has),
        "{detail:?} lacks {detail_has:?}"
    );
}

#[tokio::test]
async fn put_get_head_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), 1024);
    let data = b"thirty seconds of audio".to_vec();
    let hex = hex::encode(sha256(&data));

    let (status, _, body) = call(&app, Method::PUT, "/blobs", Body::from(data.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let v = json(&body);
    assert_eq!(v["sha256"], hex);
    assert_eq!(v["size"], data.len());
    assert_eq!(v["url"], format!("http://blobs.example:8700/blobs/{hex}"));

    // Idempotent, and POST is accepted too.
    let (status, _, _) = call(&app, Method::POST, "/blobs", Body::from(data.clone())).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, headers, body) =
        call(&app, Method::GET, &format!("/blobs/{hex}"), Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(headers[header::ETAG], format!("\"{hex}\""));

    let upper = hex.to_uppercase();
    let (status, _, body) =
        call(&app, Method::GET, &format!("/blobs/{upper}"), Body::empty()).await;
    assert_eq!((status, body), (StatusCode::OK, data.clone()));

    let (status, headers, body) =
        call(&app, Method::HEAD, &format!("/blobs/{hex}"), Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        data.len().to_string().as_str()
    );
    assert_eq!(headers[header::ETAG], format!("\"{hex}\""));

    let (status, _, body) = call(&app, Method::GET, "/health", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["status"], "ok");
}

#[tokio::test]
async fn missing_blob_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), 1024);
    let hex = hex::encode([3u8; 32]);
    let (status, _, body) = call(&app, Method::GET, &format!("/blobs/{hex}"), Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found", &hex);
    let (status, _, _) = call(&app, Method::HEAD, &format!("/blobs/{hex}"), Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_hash_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), 1024);
    for (method, uri) in [
        (Method::GET, "/blobs/not-a-hash"),
        (Method::GET, &format!("/blobs/{}", "ab".repeat(31))[..]),
        (Method::PUT, &format!("/blobs/{}", "zz".repeat(32))[..]),
        (Method::HEAD, "/blobs/1234"),
    ] {
        let (status, _, body) = call(&app, method.clone(), uri, Body::from("x")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}");
        if method != Method::HEAD {
            assert_error(&body, "bad_hash", "64 hex digits");
        }
    }
}

#[tokio::test]
async fn oversize_upload_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), 16);
    // Announced by Content-Length.
    let (status, _, body) = call(&app, Method::PUT, "/blobs", Body::from(vec![1u8; 17])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "too_large", "17 bytes is over the limit of 16");
    // Streamed without a length: cut off while reading.
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![2u8; 8]));
    let stream = Body::from_stream(futures_util::stream::iter(chunks));
    let (status, _, body) = call(&app, Method::PUT, "/blobs", stream).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "too_large", "limit of 16");
    // Exactly at the limit is fine.
    let (status, _, _) = call(&app, Method::PUT, "/blobs", Body::from(vec![1u8; 16])).await;
    assert_eq!(status, StatusCode::CREATED);
    // Named uploads are capped too.
    let big = vec![5u8; 17];
    let uri = format!("/blobs/{}", hex::encode(sha256(&big)));
    let (status, _, _) = call(&app, Method::PUT, &uri, Body::from(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn named_upload_must_match_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), 1024);
    let data = b"a long answer".to_vec();
    let hex = hex::encode(sha256(&data));
    let (status, _, body) = call(
        &app,
        Method::PUT,
        &format!("/blobs/{hex}"),
        Body::from(data.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(json(&body)["sha256"], hex);

    let other = hex::encode(sha256(b"something else"));
    let (status, _, body) = call(
        &app,
        Method::PUT,
        &format!("/blobs/{other}"),
        Body::from(data),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(
        &body,
        "hash_mismatch",
        &format!("expected {other}, got {hex}"),
    );
    let (status, _, _) = call(&app, Method::GET, &format!("/blobs/{other}"), Body::empty()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused upload is not stored"
    );
}

#[tokio::test]
async fn corrupt_stored_blob_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), 1024);
    let data = b"model output".to_vec();
    let hex = hex::encode(sha256(&data));
    let (status, _, _) = call(&app, Method::PUT, "/blobs", Body::from(data.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    std::fs::write(dir.path().join("blobs").join(&hex), b"bit rot").unwrap();
    let (status, _, body) = call(&app, Method::GET, &format!("/blobs/{hex}"), Body::empty()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_error(&body, "corrupt_blob", "sha256 mismatch");
    // Uploading the right bytes again repairs it.
    let (status, _, _) = call(&app, Method::PUT, "/blobs", Body::from(data.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, body) = call(&app, Method::GET, &format!("/blobs/{hex}"), Body::empty()).await;
    assert_eq!((status, body), (StatusCode::OK, data));
}
