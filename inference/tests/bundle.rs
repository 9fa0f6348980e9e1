//! Model bundles: the committed digits bundle loads and runs through the `tensor` kind; a
//! manifest or part that is malformed, missing or does not match its hash fails with an error
//! naming it (and the failure class the executor commits).

mod common;

use std::path::Path;

use inference::{
    bundle::Manifest, kinds, tensor, Bundle, BundleCache, FailureKind, InferenceError, Kind,
    LoadOptions, ModelCache, Tensor,
};

fn copy_digits_bundle(to: &Path) {
    for f in ["manifest.json", "digits.onnx"] {
        std::fs::copy(common::digits_dir().join(f), to.join(f)).unwrap();
    }
}

fn manifest_sha(dir: &Path) -> [u8; 32] {
    inference::sha256(&std::fs::read(dir.join("manifest.json")).unwrap())
}

fn digits_input() -> Vec<u8> {
    let h = common::heldout();
    tensor::encode(&[(
        "input",
        Tensor::from_f32(vec![1, 64], &h.pixels[0]).unwrap(),
    )])
    .unwrap()
}

#[test]
fn digits_bundle_is_canonical_and_runs_as_a_tensor_kind() {
    let dir = common::digits_dir();
    let bundle = Bundle::open_dir(&dir).unwrap();
    assert_eq!(bundle.manifest.kind, Kind::Tensor);
    assert_eq!(bundle.manifest.name, "digits-mlp");
    let bytes = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(
        bundle.manifest.canonical_bytes(),
        bytes,
        "the committed manifest must be in canonical form"
    );
    let mut runner = kinds::load(&common::runtime(), &bundle, LoadOptions::default()).unwrap();
    let input = digits_input();
    let out = runner.run(&input).unwrap();
    // exactly what the graph gives when run directly
    let mut direct = inference::Model::load(
        &common::runtime(),
        common::digits_model(),
        inference::Device::Cpu,
        None,
    )
    .unwrap();
    assert_eq!(out, direct.run(&input).unwrap());
    assert!(tensor::decode(&out)
        .unwrap()
        .iter()
        .any(|(n, _)| n == "label"));
    // the manifest's rule is argmax: the honest output passes, a different label does not
    let v = runner.verify(&input, &out).unwrap();
    assert!(v.matches, "{}", v.reason);
}

#[test]
fn fetch_by_uri_verifies_manifest_and_parts_and_caches_them() {
    let src = tempfile::tempdir().unwrap();
    copy_digits_bundle(src.path());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BundleCache::new(ModelCache::new(cache_dir.path()).unwrap());
    let uri = format!("file://{}/manifest.json", src.path().display());
    let sha = manifest_sha(src.path());
    let b = cache.fetch(&uri, sha).unwrap();
    assert_eq!(b.sha256, sha);
    let part = b.part("model").unwrap();
    assert!(
        part.starts_with(cache_dir.path()),
        "parts live in the cache"
    );
    // cached: works with the source gone
    drop(src);
    let again = cache.fetch(&uri, sha).unwrap();
    assert_eq!(again.part("model").unwrap(), part);
}

#[test]
fn a_part_that_does_not_match_its_hash_is_refused_naming_it() {
    let src = tempfile::tempdir().unwrap();
    copy_digits_bundle(src.path());
    let mut onnx = std::fs::read(src.path().join("digits.onnx")).unwrap();
    let last = onnx.len() - 1;
    onnx[last] ^= 1;
    std::fs::write(src.path().join("digits.onnx"), onnx).unwrap();
    let cache = BundleCache::new(ModelCache::new(tempfile::tempdir().unwrap().keep()).unwrap());
    let uri = format!("file://{}/manifest.json", src.path().display());
    let err = cache.fetch(&uri, manifest_sha(src.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("part \"model\""), "{msg}");
    assert!(msg.contains("has sha256"), "{msg}");
    assert_eq!(err.kind(), FailureKind::ModelHashMismatch);
    // the same through open_dir
    let err = Bundle::open_dir(src.path()).unwrap_err().to_string();
    assert!(
        err.contains("\"model\"") && err.contains("the manifest says"),
        "{err}"
    );
}

#[test]
fn a_missing_part_is_refused_naming_it() {
    let src = tempfile::tempdir().unwrap();
    copy_digits_bundle(src.path());
    std::fs::remove_file(src.path().join("digits.onnx")).unwrap();
    let cache = BundleCache::new(ModelCache::new(tempfile::tempdir().unwrap().keep()).unwrap());
    let uri = format!("file://{}/manifest.json", src.path().display());
    let err = cache.fetch(&uri, manifest_sha(src.path())).unwrap_err();
    assert!(
        matches!(&err, InferenceError::BundlePart { part, .. } if part == "model"),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::ModelUnavailable);
    // a runner asking for a role the manifest lacks names it
    let b = Bundle::open_dir(&common::digits_dir()).unwrap();
    let err = b.part("tokenizer").unwrap_err().to_string();
    assert!(
        err.contains("no part \"tokenizer\"") && err.contains("model"),
        "{err}"
    );
}

#[test]
fn the_manifest_itself_must_match_the_registered_hash() {
    let src = tempfile::tempdir().unwrap();
    copy_digits_bundle(src.path());
    let cache = BundleCache::new(ModelCache::new(tempfile::tempdir().unwrap().keep()).unwrap());
    let uri = format!("file://{}/manifest.json", src.path().display());
    let err = cache.fetch(&uri, [7u8; 32]).unwrap_err();
    assert_eq!(err.kind(), FailureKind::ModelHashMismatch, "{err}");
}

#[test]
fn malformed_manifests_are_refused_naming_the_field() {
    let cases: [(&str, &str); 5] = [
        ("{\"format\":", "not a valid bundle manifest"),
        (
            r#"{"format":"other/9","name":"x","kind":"tensor","compute_units":1,"parts":{}}"#,
            "format \"other/9\"",
        ),
        (
            r#"{"format":"deepnode-bundle/1","name":"x","kind":"telepathy","compute_units":1,"parts":{}}"#,
            "unknown variant `telepathy`",
        ),
        (
            r#"{"format":"deepnode-bundle/1","name":"x","kind":"ocr","compute_units":1,"parts":{"model":{"path":"../etc/passwd","sha256":"00","bytes":1}}}"#,
            "plain file name",
        ),
        (
            r#"{"format":"deepnode-bundle/1","name":"x","kind":"ocr","compute_units":0,"parts":{}}"#,
            "compute_units is 0",
        ),
    ];
    for (json, want) in cases {
        let err = Manifest::parse(json.as_bytes()).unwrap_err();
        assert!(matches!(err, InferenceError::BundleInvalid { .. }), "{err}");
        assert!(err.to_string().contains(want), "{json}: {err}");
    }
}

#[test]
fn a_raw_onnx_registration_is_a_one_part_tensor_bundle() {
    let src = tempfile::tempdir().unwrap();
    copy_digits_bundle(src.path());
    let onnx = std::fs::read(src.path().join("digits.onnx")).unwrap();
    let cache = BundleCache::new(ModelCache::new(tempfile::tempdir().unwrap().keep()).unwrap());
    let uri = format!("file://{}/digits.onnx", src.path().display());
    let b = cache.fetch(&uri, inference::sha256(&onnx)).unwrap();
    assert_eq!(b.manifest.kind, Kind::Tensor);
    let mut runner = kinds::load(&common::runtime(), &b, LoadOptions::default()).unwrap();
    assert!(runner.run(&digits_input()).is_ok());
}
