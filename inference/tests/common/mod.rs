//! Shared helpers for the inference integration tests: the real ONNX Runtime, the committed
//! digits model and its held-out set.
#![allow(dead_code)]

use std::path::PathBuf;

use inference::{tensor, Runtime, Tensor};

pub fn digits_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/digits")
}

pub fn digits_model() -> PathBuf {
    digits_dir().join("digits.onnx")
}

/// The runtime from ORT_DYLIB_PATH or `.deps/` (run `make deps-ort` first).
pub fn runtime() -> Runtime {
    Runtime::init(None).expect("ONNX Runtime must be installed: run `make deps-ort`")
}

pub struct Heldout {
    pub pixels: Vec<Vec<f32>>,
    pub labels: Vec<i64>,
}

pub fn heldout() -> Heldout {
    let text = std::fs::read_to_string(digits_dir().join("heldout.json")).unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut h = Heldout {
        pixels: vec![],
        labels: vec![],
    };
    for item in items {
        let px: Vec<f32> = item["pixels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(px.len(), 64);
        h.pixels.push(px);
        h.labels.push(item["label"].as_i64().unwrap());
    }
    h
}

/// One digits task input: safetensors with `input` f32 [1, 64].
pub fn digit_input(pixels: &[f32]) -> Vec<u8> {
    tensor::encode(&[(
        "input",
        Tensor::from_f32(vec![1, pixels.len()], pixels).unwrap(),
    )])
    .unwrap()
}

pub fn predicted_label(output: &[u8]) -> i64 {
    let out = tensor::decode(output).unwrap();
    let (_, label) = out
        .iter()
        .find(|(n, _)| n == "label")
        .expect("label output");
    label.to_i64().unwrap()[0]
}
