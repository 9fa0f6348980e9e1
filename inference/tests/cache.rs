//! The model cache: fetch by path, file:// and http:// (a real socket served by the test),
//! verification by sha256, reuse, limits, and never a half-written file.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;
use inference::{sha256, Device, FailureKind, InferenceError, Model, ModelCache};

/// A tiny HTTP/1.1 server: `GET /model.onnx` gets `body`, anything else 404. Counts requests.
struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
}

fn serve(body: Vec<u8>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let (status, payload): (&str, &[u8]) = if request_line.starts_with("GET /model.onnx ") {
                ("200 OK", &body)
            } else {
                ("404 Not Found", b"not found")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(payload);
        }
    });
    Server { url, hits }
}

fn model_bytes() -> (Vec<u8>, [u8; 32]) {
    let bytes = std::fs::read(digits_model()).unwrap();
    let hash = sha256(&bytes);
    (bytes, hash)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn fetch_over_http_then_reuse_the_cache() {
    let (bytes, hash) = model_bytes();
    let server = serve(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path().join("models")).unwrap();
    let uri = format!("{}/model.onnx", server.url);

    let path = cache.fetch(&uri, hash).unwrap();
    assert_eq!(path, cache.path_for(&hash));
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("{}.onnx", hex::encode(hash))
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // Second fetch: served from the cache, no request.
    assert_eq!(cache.fetch(&uri, hash).unwrap(), path);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        files_in(cache.dir()),
        vec![format!("{}.onnx", hex::encode(hash))]
    );

    // And the fetched model runs.
    let rt = runtime();
    let mut model = Model::load_verified(&rt, &path, hash, Device::Cpu, None).unwrap();
    let mut original = Model::load(&rt, digits_model(), Device::Cpu, None).unwrap();
    let input = digit_input(&heldout().pixels[0]);
    assert_eq!(model.run(&input).unwrap(), original.run(&input).unwrap());
}

#[test]
fn http_corrupted_model_is_rejected_and_not_cached() {
    let (mut bytes, hash) = model_bytes();
    bytes[100] ^= 0xff;
    let server = serve(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path()).unwrap();
    let uri = format!("{}/model.onnx", server.url);
    let err = cache.fetch(&uri, hash).unwrap_err();
    match &err {
        InferenceError::HashMismatch {
            uri: u,
            expected,
            actual,
        } => {
            assert_eq!(u, &uri);
            assert_eq!(expected, &hex::encode(hash));
            assert_eq!(actual, &hex::encode(sha256(&bytes)));
        }
        other => panic!("expected HashMismatch, got {other}"),
    }
    assert_eq!(err.kind(), FailureKind::ModelHashMismatch);
    assert!(
        files_in(cache.dir()).is_empty(),
        "left files behind: {:?}",
        files_in(cache.dir())
    );
}

#[test]
fn http_errors_name_the_uri() {
    let (bytes, hash) = model_bytes();
    let server = serve(bytes);
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path()).unwrap();
    let uri = format!("{}/nope.onnx", server.url);
    let err = cache.fetch(&uri, hash).unwrap_err();
    assert!(
        matches!(&err, InferenceError::Fetch { uri: u, reason } if u == &uri && reason.contains("404")),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::ModelUnavailable);

    // Nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = cache
        .fetch(&format!("http://127.0.0.1:{port}/model.onnx"), hash)
        .unwrap_err();
    assert!(matches!(err, InferenceError::Fetch { .. }), "{err}");
    assert!(files_in(cache.dir()).is_empty());
}

#[test]
fn size_limit_applies_to_http_and_files() {
    let (bytes, hash) = model_bytes();
    let server = serve(bytes);
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path())
        .unwrap()
        .with_max_model_bytes(1000);
    let err = cache
        .fetch(&format!("{}/model.onnx", server.url), hash)
        .unwrap_err();
    assert!(err.to_string().contains("1000"), "{err}");
    let err = cache
        .fetch(digits_model().to_str().unwrap(), hash)
        .unwrap_err();
    assert!(
        matches!(&err, InferenceError::Fetch { reason, .. } if reason.contains("1000")),
        "{err}"
    );
    assert!(
        files_in(cache.dir()).is_empty(),
        "{:?}",
        files_in(cache.dir())
    );
}

#[test]
fn fetch_plain_path_and_file_uri() {
    let (bytes, hash) = model_bytes();
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path()).unwrap();
    let model = digits_model().canonicalize().unwrap();
    let p1 = cache.fetch(model.to_str().unwrap(), hash).unwrap();
    std::fs::remove_file(&p1).unwrap();
    let p2 = cache
        .fetch(&format!("file://{}", model.display()), hash)
        .unwrap();
    assert_eq!(p1, p2);
    assert_eq!(std::fs::read(&p2).unwrap(), bytes);

    // A valid cached copy is used whatever the URI says; a missing one needs a usable URI.
    assert_eq!(cache.fetch("ipfs://bafy/model.onnx", hash).unwrap(), p2);
    std::fs::remove_file(&p2).unwrap();
    let err = cache.fetch("ipfs://bafy/model.onnx", hash).unwrap_err();
    assert!(err.to_string().contains("unsupported URI scheme"), "{err}");
    let err = cache.fetch("/definitely/not/here.onnx", hash).unwrap_err();
    assert!(
        err.to_string().contains("/definitely/not/here.onnx"),
        "{err}"
    );
}

#[test]
fn a_corrupted_cached_file_is_replaced() {
    let (bytes, hash) = model_bytes();
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path()).unwrap();
    std::fs::write(cache.path_for(&hash), b"tampered").unwrap();
    let path = cache.fetch(digits_model().to_str().unwrap(), hash).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
}

#[test]
fn a_local_copy_with_another_hash_is_rejected() {
    let (mut bytes, hash) = model_bytes();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.onnx");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    let cache = ModelCache::new(dir.path().join("cache")).unwrap();
    let err = cache.fetch(copy.to_str().unwrap(), hash).unwrap_err();
    assert_eq!(err.kind(), FailureKind::ModelHashMismatch, "{err}");
    assert!(!cache.path_for(&hash).exists());
    assert!(files_in(cache.dir()).is_empty());
}

#[test]
fn cache_dir_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = ModelCache::new(file.join("models")).unwrap_err();
    assert!(
        matches!(&err, InferenceError::CacheDir { dir, .. } if dir == &file.join("models")),
        "{err}"
    );
    assert!(err.to_string().contains("a-file/models"), "{err}");
}
