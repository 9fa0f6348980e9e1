//! The client against real sockets: the service router, servers that lie, stall or send too
//! much, and the `blobstore` binary itself.

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use blobstore::service::{router, AppState};
use blobstore::{sha256, BlobError, BlobRef, Client, Store};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Serves `app` on a free local port; the server lives as long as the test's runtime.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn blob_service(dir: &std::path::Path) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let app = router(AppState {
        store: Store::local(dir).unwrap().with_max_bytes(1 << 20),
        public_url: base.clone(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn client() -> Client {
    Client::new(Duration::from_secs(5), 1 << 20).unwrap()
}

#[tokio::test]
async fn put_then_fetch_through_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let base = blob_service(dir.path()).await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let blob = client().put(&base, data.clone()).await.unwrap();
    assert_eq!(blob.sha256, sha256(&data));
    assert_eq!(blob.url, format!("{base}/blobs/{}", blob.hex()));

    // What goes on-chain, and back.
    let envelope = blob.encode();
    let decoded = BlobRef::decode(&envelope).unwrap().unwrap();
    assert_eq!(client().fetch(&decoded).await.unwrap(), data);

    // An envelope without a URL is fetched from the configured service.
    let bare = BlobRef {
        sha256: blob.sha256,
        url: String::new(),
    };
    assert!(matches!(
        client().fetch(&bare).await,
        Err(BlobError::Envelope(_))
    ));
    let with_base = client().with_base_url(&base);
    assert_eq!(with_base.fetch(&bare).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_blocking_code() {
    let dir = tempfile::tempdir().unwrap();
    let base = blob_service(dir.path()).await;
    let blob = client().put(&base, b"tensor bytes".to_vec()).await.unwrap();
    let c = client();
    // The documented way for the (blocking) inference code.
    let got = tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(c.fetch(&blob))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got, b"tensor bytes");
}

#[tokio::test]
async fn lying_server_is_caught() {
    let base = serve(Router::new().route("/{*path}", get(|| async { "other bytes" }))).await;
    let blob = BlobRef {
        sha256: sha256(b"the real payload"),
        url: format!("{base}/blobs/whatever"),
    };
    let err = client().fetch(&blob).await.unwrap_err();
    match &err {
        BlobError::HashMismatch {
            location,
            expected,
            actual,
        } => {
            assert_eq!(location, &blob.url);
            assert_eq!(expected, &blob.sha256);
            assert_eq!(actual, &sha256(b"other bytes"));
        }
        other => panic!("expected HashMismatch, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&blob.url) && msg.contains("sha256 mismatch"),
        "{msg}"
    );
}

#[tokio::test]
async fn stalled_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            held.push(sock); // accept, never answer
        }
    });
    let c = Client::new(Duration::from_millis(300), 1 << 20).unwrap();
    let blob = BlobRef {
        sha256: [0; 32],
        url: format!("http://{addr}/blobs/x"),
    };
    let t = Instant::now();
    let err = c.fetch(&blob).await.unwrap_err();
    assert!(matches!(err, BlobError::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(err.to_string().contains(&blob.url), "{err}");
}

#[tokio::test]
async fn stalled_body_times_out() {
    // Headers arrive, then the body stops halfway.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let c = Client::new(Duration::from_millis(400), 1 << 20).unwrap();
    let blob = BlobRef {
        sha256: [0; 32],
        url: format!("http://{addr}/b"),
    };
    let err = c.fetch(&blob).await.unwrap_err();
    assert!(matches!(err, BlobError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn too_large_is_refused_before_and_while_reading() {
    let big = vec![7u8; 5000];
    let announced = big.clone();
    let app = Router::new()
        .route("/sized", get(move || async move { announced }))
        .route(
            "/chunked",
            get(|| async {
                // No Content-Length: the cap must be enforced by counting.
                let chunks = (0..1000).map(|_| Ok::<_, std::io::Error>(vec![7u8; 1000]));
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    let base = serve(app).await;
    let c = Client::new(Duration::from_secs(5), 1000).unwrap();
    let sha = sha256(&big);
    let err = c
        .fetch(&BlobRef {
            sha256: sha,
            url: format!("{base}/sized"),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::TooLarge {
                size: 5000,
                max: 1000,
                ..
            }
        ),
        "{err}"
    );
    let err = c
        .fetch(&BlobRef {
            sha256: sha,
            url: format!("{base}/chunked"),
        })
        .await
        .unwrap_err();
    match err {
        // Stops at the first chunk that crosses the cap, far before the 1 MB it would send.
        BlobError::TooLarge {
            size,
            max: 1000,
            ref location,
        } => {
            assert!(size <= 2000, "read {size} bytes");
            assert!(location.ends_with("/chunked"));
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    // The client also refuses to upload what it would refuse to fetch.
    let err = c.put(&base, big).await.unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn http_errors_and_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let base = blob_service(dir.path()).await;
    let missing = BlobRef {
        sha256: [1; 32],
        url: format!("{base}/blobs/{}", hex::encode([1u8; 32])),
    };
    match client().fetch(&missing).await.unwrap_err() {
        BlobError::Status {
            code,
            detail,
            location,
        } => {
            assert_eq!(code, 404);
            assert!(detail.contains("not_found"), "{detail}");
            assert_eq!(location, missing.url);
        }
        other => panic!("expected Status, got {other}"),
    }

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gone = BlobRef {
        sha256: [1; 32],
        url: format!("http://{closed}/blobs/x"),
    };
    let err = client().fetch(&gone).await.unwrap_err();
    assert!(matches!(err, BlobError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&gone.url), "{err}");
}

/// A local address nothing listens on (yet): bound, then released.
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn fetch_until_waits_for_the_store_to_come_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap().with_max_bytes(1 << 20);
    let data = b"payload stored before the outage".to_vec();
    let sha = store.put(data.clone().into()).await.unwrap();
    let addr = free_addr();
    let blob = BlobRef {
        sha256: sha,
        url: format!("http://{addr}/blobs/{}", hex::encode(sha)),
    };
    // The store is down: a plain fetch fails at once, and transiently.
    let err = client().fetch(&blob).await.unwrap_err();
    assert!(matches!(err, BlobError::Unreachable { .. }), "{err}");
    assert!(err.is_transient(), "{err}");
    // It comes back 1.5 s later, on the same address.
    let app = router(AppState {
        store,
        public_url: format!("http://{addr}"),
    });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    let t = Instant::now();
    let got = client()
        .fetch_until(&blob, t + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got, data);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[tokio::test]
async fn fetch_until_retries_server_errors() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = Router::new().route(
        "/{*path}",
        get(move || {
            let seen = seen.clone();
            async move {
                // two 503s (an overloaded or restarting store), then the bytes
                if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err((axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy"))
                } else {
                    Ok("the payload")
                }
            }
        }),
    );
    let base = serve(app).await;
    let blob = BlobRef {
        sha256: sha256(b"the payload"),
        url: format!("{base}/blobs/x"),
    };
    let got = client()
        .fetch_until(&blob, Instant::now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got, b"the payload");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn fetch_until_returns_a_permanent_failure_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = blob_service(dir.path()).await;
    let missing = BlobRef {
        sha256: [1; 32],
        url: format!("{base}/blobs/{}", hex::encode([1u8; 32])),
    };
    let t = Instant::now();
    let err = client()
        .fetch_until(&missing, t + Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Status { code: 404, .. }), "{err}");
    assert!(!err.is_transient(), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // Bytes that are not the blob asked for: no retry either.
    let lying = serve(Router::new().route("/{*path}", get(|| async { "other bytes" }))).await;
    let wrong = BlobRef {
        sha256: sha256(b"the real payload"),
        url: format!("{lying}/blobs/x"),
    };
    let t = Instant::now();
    let err = client()
        .fetch_until(&wrong, t + Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::HashMismatch { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // A URL no request can be sent to is a malformed reference, not an outage.
    let bad_url = BlobRef {
        sha256: [1; 32],
        url: "http://[::1/blobs/x".into(),
    };
    let t = Instant::now();
    let err = client()
        .fetch_until(&bad_url, t + Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Envelope(_)), "{err}");
    assert!(err.to_string().contains("malformed URL"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[tokio::test]
async fn fetch_until_gives_up_at_the_deadline() {
    // Nothing ever listens: the last transient error, once the deadline passed.
    let gone = BlobRef {
        sha256: [1; 32],
        url: format!("http://{}/blobs/x", free_addr()),
    };
    let t = Instant::now();
    let err = client()
        .fetch_until(&gone, t + Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Unreachable { .. }), "{err}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(8),
        "{took:?}"
    );

    // A server that never answers: the attempt is cut at the deadline, not at the client's
    // own (longer) timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            held.push(sock);
        }
    });
    let slow = Client::new(Duration::from_secs(60), 1 << 20).unwrap();
    let stalled = BlobRef {
        sha256: [0; 32],
        url: format!("http://{addr}/blobs/x"),
    };
    let t = Instant::now();
    let err = slow
        .fetch_until(&stalled, t + Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains(&stalled.url), "{err}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

/// Kills the child on drop so a failed assertion never leaks a server.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_blobstore"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--max-blob-bytes",
                "1000",
                "--dir",
            ])
            .arg(dir.path().join("store"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("blobstore: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    assert_ne!(addr.port(), 0);

    let blob = client().put(&base, b"hello".to_vec()).await.unwrap();
    assert_eq!(blob.url, format!("{base}/blobs/{}", blob.hex()));
    assert_eq!(client().fetch(&blob).await.unwrap(), b"hello");

    // HEAD on the wire keeps the blob's length; uploads over --max-blob-bytes get 413.
    let http = reqwest::Client::new();
    let head = http.head(&blob.url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "5");
    let resp = http
        .put(format!("{base}/blobs"))
        .body(vec![0u8; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["error"], "too_large");
    let resp = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn help_explains_the_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_blobstore"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--dir",
        "--s3-bucket",
        "--s3-endpoint",
        "--s3-region",
        "--s3-access-key-id",
        "--s3-secret-access-key",
        "--s3-allow-http",
        "--public-url",
        "--max-blob-bytes",
        "--json-logs",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
