//! Task inputs and outputs as people read them: the canonical safetensors bytes decoded by the
//! inference crate (the same code the workers run), or the reason they could not be decoded.

use serde_json::Value;

/// `{"<tensor>": {"dtype", "shape", "values"}}`, or the decode error as one line.
pub fn describe(bytes: &[u8]) -> Result<Value, String> {
    inference::tensor::describe(bytes).map_err(|e| e.to_string())
}
