//! The S3 backend against a real S3-compatible server: moto_server from `.deps/s3-venv`
//! (created by `tools/setup-s3.sh`), started on a free port for this test.

use axum::body::Bytes;
use blobstore::service::{router, AppState};
use blobstore::{sha256, BlobError, Client, S3Config, Store};
use object_store::{ObjectStoreExt, PutPayload};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "deepnode-blobs";

/// A moto_server process, killed on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    async fn start() -> Moto {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = root.join(".deps/s3-venv/bin/moto_server");
        assert!(
            bin.is_file(),
            "{} is missing: run tools/setup-s3.sh (creates .deps/s3-venv with the pinned moto[server])",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let t = Instant::now();
        loop {
            if http.get(&moto.endpoint).send().await.is_ok() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "moto_server did not answer on {}",
                moto.endpoint
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // CreateBucket is a plain PUT on the bucket (moto does not check signatures).
        let resp = http
            .put(format!("{}/{BUCKET}", moto.endpoint))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "create bucket: {}",
            resp.status()
        );
        moto
    }

    fn config(&self) -> S3Config {
        S3Config {
            bucket: BUCKET.into(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            allow_http: true,
        }
    }
}

#[tokio::test]
async fn s3_store_and_service() {
    let moto = Moto::start().await;
    let store = Store::s3(&moto.config()).unwrap().with_max_bytes(1 << 20);

    // Store: put, idempotent put, get, head, exists, missing.
    let data = Bytes::from((0..100_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>());
    let sha = store.put(data.clone()).await.unwrap();
    assert_eq!(sha, sha256(&data));
    assert_eq!(store.put(data.clone()).await.unwrap(), sha);
    assert_eq!(store.get(&sha).await.unwrap(), data);
    assert_eq!(store.head(&sha).await.unwrap(), Some(data.len() as u64));
    assert!(store.exists(&sha).await.unwrap());
    let missing = [4u8; 32];
    assert!(!store.exists(&missing).await.unwrap());
    assert!(matches!(
        store.get(&missing).await,
        Err(BlobError::NotFound { .. })
    ));

    // The object really sits at blobs/<hex> in the bucket.
    let raw = store
        .backend()
        .get(&format!("blobs/{}", hex::encode(sha)).as_str().into())
        .await
        .unwrap();
    assert_eq!(raw.bytes().await.unwrap(), data);

    // A foreign writer replaces the object: reads refuse it.
    store
        .backend()
        .put(&Store::key(&sha), PutPayload::from_static(b"swapped"))
        .await
        .unwrap();
    match store.get(&sha).await.unwrap_err() {
        BlobError::HashMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, sha);
            assert_eq!(actual, sha256(b"swapped"));
        }
        other => panic!("expected HashMismatch, got {other}"),
    }

    // The HTTP service over the S3 store, through the client.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(AppState {
        store: store.clone(),
        public_url: base.clone(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::new(Duration::from_secs(10), 1 << 20).unwrap();
    let blob = client
        .put(&base, b"an image, in S3".to_vec())
        .await
        .unwrap();
    assert_eq!(client.fetch(&blob).await.unwrap(), b"an image, in S3");
    assert!(store.exists(&blob.sha256).await.unwrap());
}

#[tokio::test]
async fn s3_wrong_bucket_names_it() {
    let moto = Moto::start().await;
    let mut cfg = moto.config();
    cfg.bucket = "no-such-bucket".into();
    let store = Store::s3(&cfg).unwrap();
    let err = store.put(Bytes::from_static(b"x")).await.unwrap_err();
    assert!(
        matches!(err, BlobError::Backend { .. }),
        "a missing bucket is a backend failure, not a missing blob: {err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("blobs/") && msg.contains("no-such-bucket"),
        "{msg}"
    );
}
