//! The digits model shipped in models/digits: held-out labelled images and the canonical
//! input encoding (safetensors, one f32 tensor "input" of shape [1, 64]).

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::PathBuf;

/// Compute units charged per call of the digits MLP (registered on-chain).
pub const COMPUTE_UNITS: u32 = 10;
/// `IModelRegistry.CompareRule.Argmax`: validators compare the predicted class.
pub const COMPARE_RULE: u8 = 2;

/// One labelled held-out image.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    /// Index in scikit-learn's digits dataset.
    pub index: usize,
    /// 64 pixel intensities, 0..16.
    pub pixels: Vec<f32>,
    /// True digit.
    pub label: i64,
}

/// models/digits/digits.onnx
pub fn model_path() -> PathBuf {
    crate::workspace_root().join("models/digits/digits.onnx")
}

/// The held-out sample (never seen in training).
pub fn heldout() -> Result<Vec<Sample>> {
    let path = crate::workspace_root().join("models/digits/heldout.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Canonical task input for one image.
pub fn encode_input(pixels: &[f32]) -> Result<Vec<u8>> {
    let bytes: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![1, pixels.len()],
        &bytes,
    )
    .context("building input tensor")?;
    Ok(safetensors::serialize([("input", view)], None)?)
}

/// The predicted digit in a committed output (tensor "label", int64).
pub fn decode_label(output: &[u8]) -> Option<i64> {
    let st = safetensors::SafeTensors::deserialize(output).ok()?;
    let t = st.tensor("label").ok()?;
    let d = t.data();
    if t.dtype() != safetensors::Dtype::I64 || d.len() < 8 {
        return None;
    }
    Some(i64::from_le_bytes(d[..8].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_round_trips_and_label_decodes() {
        let px: Vec<f32> = (0..64).map(|i| (i % 17) as f32).collect();
        let enc = encode_input(&px).unwrap();
        let st = safetensors::SafeTensors::deserialize(&enc).unwrap();
        let t = st.tensor("input").unwrap();
        assert_eq!(t.shape(), &[1, 64]);
        assert_eq!(t.data().len(), 256);
        let label = 7i64.to_le_bytes();
        let v =
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1], &label).unwrap();
        let out = safetensors::serialize([("label", v)], None).unwrap();
        assert_eq!(decode_label(&out), Some(7));
        assert_eq!(decode_label(b"garbage"), None);
    }
}
