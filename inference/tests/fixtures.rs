//! Corners of `Model` on hand-made graphs (models/fixtures/make_fixtures.py): several inputs,
//! outputs without a batch dimension, a fixed batch dimension, int64 and bool tensors.

mod common;

use std::path::PathBuf;

use common::runtime;
use inference::{tensor, DType, Device, FailureKind, InferenceError, Model, Tensor};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/fixtures")
        .join(name)
}

fn pair(a: &[f32], b: &[f32]) -> Vec<u8> {
    let rows = a.len() / 3;
    tensor::encode(&[
        ("a", Tensor::from_f32(vec![rows, 3], a).unwrap()),
        ("b", Tensor::from_f32(vec![rows, 3], b).unwrap()),
    ])
    .unwrap()
}

#[test]
fn two_inputs_and_an_unbatched_output() {
    let rt = runtime();
    let mut model = Model::load(&rt, fixture("two_inputs.onnx"), Device::Cpu, None).unwrap();
    assert_eq!(
        model
            .inputs()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(model.inputs()[0].shape, vec![-1, 3]);

    let x = pair(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]);
    let out = tensor::decode(&model.run(&x).unwrap()).unwrap();
    assert_eq!(out[0].0, "sum");
    assert_eq!(out[0].1.to_f32().unwrap(), vec![11.0, 22.0, 33.0]);
    assert_eq!(out[1].0, "total");
    assert_eq!(out[1].1.shape, Vec::<usize>::new());
    assert_eq!(out[1].1.to_f32().unwrap(), vec![6.0]);

    // `total` has no batch dimension, so a batch must not be merged: each task keeps its own total.
    let y = pair(&[1.0; 6], &[0.0; 6]);
    let batch = model.run_batch(&[&x, &y, b"junk"]);
    assert_eq!(batch[0].as_ref().unwrap(), &model.run(&x).unwrap());
    assert_eq!(batch[1].as_ref().unwrap(), &model.run(&y).unwrap());
    assert_eq!(
        batch[2].as_ref().unwrap_err().kind(),
        FailureKind::InputDecode
    );

    // Only one of the two inputs.
    let only_a =
        tensor::encode(&[("a", Tensor::from_f32(vec![1, 3], &[0.0; 3]).unwrap())]).unwrap();
    let err = model.run(&only_a).unwrap_err();
    assert!(
        matches!(&err, InferenceError::InputTensors { expected, got } if expected == &["a", "b"] && got == &["a"]),
        "{err}"
    );
}

#[test]
fn fixed_batch_int64_and_bool() {
    let rt = runtime();
    let mut model = Model::load(&rt, fixture("fixed_batch.onnx"), Device::Cpu, None).unwrap();
    assert_eq!(model.inputs()[0].dtype, DType::I64);
    assert_eq!(model.inputs()[0].shape, vec![1, 2]);
    let x =
        |v: [i64; 2]| tensor::encode(&[("x", Tensor::from_i64(vec![1, 2], &v).unwrap())]).unwrap();

    let out = tensor::decode(&model.run(&x([-1, 3])).unwrap()).unwrap();
    assert_eq!(out[0].0, "doubled");
    assert_eq!(out[0].1.to_i64().unwrap(), vec![-2, 6]);
    assert_eq!(out[1].0, "positive");
    assert_eq!(out[1].1.dtype, DType::Bool);
    assert_eq!(out[1].1.data, vec![0, 1]);
    let described = tensor::describe(&model.run(&x([-1, 3])).unwrap()).unwrap();
    assert_eq!(
        described["positive"]["values"],
        serde_json::json!([false, true])
    );

    // A batch of fixed-size tasks runs task by task with the same results.
    let inputs = [x([1, 2]), x([-5, 0]), x([7, -7])];
    let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    let batch = model.run_batch(&refs);
    for (input, result) in inputs.iter().zip(batch) {
        assert_eq!(result.unwrap(), model.run(input).unwrap());
    }

    // Two rows do not fit a fixed batch of one.
    let two_rows =
        tensor::encode(&[("x", Tensor::from_i64(vec![2, 2], &[1, 2, 3, 4]).unwrap())]).unwrap();
    let err = model.run(&two_rows).unwrap_err();
    assert!(matches!(err, InferenceError::InputShape { .. }), "{err}");
}
