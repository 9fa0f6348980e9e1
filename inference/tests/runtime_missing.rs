//! A missing ONNX Runtime library is a clear error, and a later call can still succeed.
//! Its own test binary (own process): the library can be loaded only once per process.

mod common;

use std::path::Path;

use inference::{FailureKind, InferenceError, Runtime};

#[test]
fn missing_library_says_what_to_run_then_retry_works() {
    let missing = Path::new("/nonexistent/deepnode/libonnxruntime.so.1.31.1");
    let err = Runtime::init(Some(missing)).unwrap_err();
    assert!(
        matches!(&err, InferenceError::RuntimeMissing { path } if path == missing),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/deepnode/libonnxruntime.so.1.31.1"),
        "{msg}"
    );
    assert!(msg.contains("make deps-ort"), "{msg}");
    assert_eq!(err.kind(), FailureKind::ModelUnavailable);

    // A file that is not a shared library: a load error naming it.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"not an ELF file").unwrap();
    let err = Runtime::init(Some(&fake)).unwrap_err();
    assert!(
        matches!(&err, InferenceError::RuntimeLoad { path, .. } if path == &fake),
        "{err}"
    );

    // The failures left nothing behind: the real library still loads.
    let rt = common::runtime();
    assert!(rt.library().is_file());
}
