//! Errors of the inference crate, and the small [`FailureKind`] that the executor maps to the
//! on-chain failure codes.

use std::path::PathBuf;

use crate::{tensor::DType, Device};

/// Everything that can go wrong between a model URI and an output.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The ONNX Runtime shared library is not where we looked.
    #[error("ONNX Runtime library not found at {}: run `make deps-ort` (or set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1)", path.display())]
    RuntimeMissing {
        /// Where we looked.
        path: PathBuf,
    },
    /// The library exists but could not be loaded or initialised.
    #[error("could not load ONNX Runtime from {}: {reason}", path.display())]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// What ONNX Runtime or the loader said.
        reason: String,
    },
    /// The requested execution provider cannot be used.
    #[error("device {device} unavailable: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        device: Device,
        /// Why it cannot be used.
        reason: String,
    },
    /// The model cache directory could not be created or written.
    #[error("model cache directory {}: {reason}", dir.display())]
    CacheDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The model bytes could not be fetched.
    #[error("could not fetch model from {uri}: {reason}")]
    Fetch {
        /// The model URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The model bytes do not have the registered sha256.
    #[error("model from {uri} has sha256 {actual}, expected {expected}")]
    HashMismatch {
        /// Where the bytes came from.
        uri: String,
        /// The registered hash, hex.
        expected: String,
        /// The hash of the bytes we got, hex.
        actual: String,
    },
    /// ONNX Runtime could not load the model, or the model's signature is not supported.
    #[error("could not load model {}: {reason}", path.display())]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The input is larger than this model accepts.
    #[error("input of {size} bytes exceeds the limit of {max} bytes")]
    InputTooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit ([`crate::Model::set_max_input_bytes`]).
        max: usize,
    },
    /// The input bytes are not a valid safetensors document of supported dtypes.
    #[error("input does not decode: {0}")]
    InputDecode(String),
    /// The input's tensor names do not match the model's inputs.
    #[error("input has tensors {got:?}, the model takes {expected:?}")]
    InputTensors {
        /// The model's input names.
        expected: Vec<String>,
        /// The names in the input.
        got: Vec<String>,
    },
    /// An input tensor has the wrong dtype.
    #[error("input tensor {tensor:?} has dtype {got}, the model expects {expected}")]
    InputDtype {
        /// The tensor name.
        tensor: String,
        /// What the model takes.
        expected: DType,
        /// What the input holds.
        got: DType,
    },
    /// An input tensor has the wrong shape.
    #[error("input tensor {tensor:?} has shape {got:?}, the model expects {expected:?} (-1: any size >= 1)")]
    InputShape {
        /// The tensor name.
        tensor: String,
        /// The model's shape, -1 for dynamic dimensions.
        expected: Vec<i64>,
        /// The input's shape.
        got: Vec<usize>,
    },
    /// ONNX Runtime failed while running the model, or returned something we cannot encode.
    #[error("ONNX Runtime run failed: {0}")]
    Runtime(String),
    /// Tensors could not be encoded as safetensors.
    #[error("could not encode tensors: {0}")]
    Encode(String),
    /// A bundle manifest is malformed or its parameters do not fit its kind.
    #[error("invalid bundle: {reason}")]
    BundleInvalid {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A part of a bundle is missing, cannot be fetched, or does not match its sha256.
    #[error("bundle part {part:?}: {reason}")]
    BundlePart {
        /// The part's role (`model`, `tokenizer`, ...).
        part: String,
        /// What is wrong.
        reason: String,
    },
    /// The task input is not what the model's kind takes (bad UTF-8 or JSON, an image or audio
    /// that does not decode, a prompt longer than the context...).
    #[error("{0}")]
    InputInvalid(String),
}

/// The class of a failure, as the protocol sees it (one on-chain failure code each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Input bytes are not valid safetensors of supported dtypes.
    InputDecode,
    /// Input tensor names, count or shapes do not match the model.
    InputShape,
    /// Input tensor dtype does not match the model.
    InputDtype,
    /// Input is larger than the worker accepts.
    InputTooLarge,
    /// Model bytes do not match the registered sha256.
    ModelHashMismatch,
    /// Model could not be fetched or loaded (also: runtime library or device missing).
    ModelUnavailable,
    /// ONNX Runtime failed while running the model.
    Runtime,
}

impl FailureKind {
    /// snake_case name, the same as the protocol's failure code names.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::InputDecode => "input_decode",
            FailureKind::InputShape => "input_shape",
            FailureKind::InputDtype => "input_dtype",
            FailureKind::InputTooLarge => "input_too_large",
            FailureKind::ModelHashMismatch => "model_hash_mismatch",
            FailureKind::ModelUnavailable => "model_unavailable",
            FailureKind::Runtime => "runtime",
        }
    }

    /// The protocol's on-chain failure code of this class (`protocol::codes::FailureCode`).
    pub fn code(self) -> u16 {
        match self {
            FailureKind::InputDecode => 1,
            FailureKind::InputShape => 2,
            FailureKind::InputDtype => 3,
            FailureKind::InputTooLarge => 4,
            FailureKind::ModelHashMismatch => 5,
            FailureKind::ModelUnavailable => 6,
            FailureKind::Runtime => 7,
        }
    }

    /// True for failures caused by the task's input (the user's fault, not the worker's).
    pub fn is_input_fault(self) -> bool {
        matches!(
            self,
            FailureKind::InputDecode
                | FailureKind::InputShape
                | FailureKind::InputDtype
                | FailureKind::InputTooLarge
        )
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl InferenceError {
    /// The protocol class of this error.
    pub fn kind(&self) -> FailureKind {
        match self {
            InferenceError::InputDecode(_) => FailureKind::InputDecode,
            InferenceError::InputTensors { .. } | InferenceError::InputShape { .. } => {
                FailureKind::InputShape
            }
            InferenceError::InputDtype { .. } => FailureKind::InputDtype,
            InferenceError::InputTooLarge { .. } => FailureKind::InputTooLarge,
            InferenceError::InputInvalid(_) => FailureKind::InputDecode,
            InferenceError::HashMismatch { .. } => FailureKind::ModelHashMismatch,
            InferenceError::BundlePart { reason, .. } if reason.contains("has sha256") => {
                FailureKind::ModelHashMismatch
            }
            InferenceError::BundleInvalid { .. } | InferenceError::BundlePart { .. } => {
                FailureKind::ModelUnavailable
            }
            InferenceError::RuntimeMissing { .. }
            | InferenceError::RuntimeLoad { .. }
            | InferenceError::DeviceUnavailable { .. }
            | InferenceError::CacheDir { .. }
            | InferenceError::Fetch { .. }
            | InferenceError::ModelLoad { .. } => FailureKind::ModelUnavailable,
            InferenceError::Runtime(_) | InferenceError::Encode(_) => FailureKind::Runtime,
        }
    }
}
