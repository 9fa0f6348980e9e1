//! DeepNode inference: loads ONNX models by content hash, runs them on ONNX Runtime (CUDA
//! execution provider with CPU fallback), and speaks canonical safetensors tensors.
//!
//! - [`Runtime`]: the ONNX Runtime shared library loaded once per process (`make deps-ort`).
//! - [`ModelCache`]: fetch model bytes by URI, verified by sha256 before use.
//! - [`Model`]: one session; validates task inputs, runs single tasks or batches.
//! - [`tensor`]: the canonical encoding (safetensors bytes) of task inputs and outputs.
//! - [`compare`](mod@compare): the rules validators use to judge a worker's output.
#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!(
    "the canonical tensor encoding is little-endian; big-endian hosts are not supported"
);

pub mod bundle;
mod cache;
pub mod compare;
mod error;
pub mod kinds;
mod model;
mod runtime;
pub mod tensor;

pub use bundle::{Bundle, BundleCache, Kind, Manifest};
pub use cache::{ModelCache, DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_MODEL_BYTES};
pub use compare::{compare, CompareError, CompareRule, Verdict};
pub use error::{FailureKind, InferenceError};
pub use kinds::{LoadOptions, Runner};
pub use model::{
    session_from_bytes, session_from_file, Model, TensorSpec, DEFAULT_MAX_INPUT_BYTES,
};
pub use runtime::{
    default_library_path, Device, ParseDeviceError, Provider, Runtime, ORT_DYLIB_PATH_ENV,
    ORT_LIBRARY_FILE,
};
pub use tensor::{DType, Tensor};

/// sha256 of `bytes`, the hash a model is registered under.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Parses a 64-digit hex sha256 (an optional `0x` prefix is accepted).
pub fn parse_sha256(hex_str: &str) -> Result<[u8; 32], InferenceError> {
    let s = hex_str.strip_prefix("0x").unwrap_or(hex_str);
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| {
        InferenceError::InputDecode(format!("sha256 {hex_str:?} is not 64 hex digits: {e}"))
    })?;
    Ok(out)
}
