//! The digits model through the real ONNX Runtime: accuracy, batching, input validation,
//! devices and determinism.

mod common;

use common::*;
use inference::{tensor, DType, Device, FailureKind, InferenceError, Model, Provider, Tensor};

#[test]
fn accuracy_matches_what_python_onnxruntime_measured() {
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(digits_dir().join("metrics.json")).unwrap())
            .unwrap();
    let rt = runtime();
    let mut model = Model::load(&rt, digits_model(), Device::Cpu, None).unwrap();
    let h = heldout();
    let correct = h
        .pixels
        .iter()
        .zip(&h.labels)
        .filter(|(px, &label)| predicted_label(&model.run(&digit_input(px)).unwrap()) == label)
        .count();
    assert_eq!(h.labels.len() as u64, metrics["total"].as_u64().unwrap());
    assert_eq!(correct as u64, metrics["correct"].as_u64().unwrap());
    let acc = correct as f64 / h.labels.len() as f64;
    assert!((acc - metrics["heldout_accuracy"].as_f64().unwrap()).abs() < 1e-12);
    assert!(
        acc > 0.9,
        "a digits MLP should be > 90% accurate, got {acc}"
    );
}

#[test]
fn model_reports_its_signature_and_provider() {
    let rt = runtime();
    let model = Model::load(&rt, digits_model(), Device::Cpu, Some(1)).unwrap();
    assert_eq!(model.inputs().len(), 1);
    assert_eq!(model.inputs()[0].name, "input");
    assert_eq!(model.inputs()[0].dtype, DType::F32);
    assert_eq!(model.inputs()[0].shape, vec![-1, 64]);
    assert_eq!(model.output_names(), ["label", "probabilities"]);
    assert_eq!(model.provider(), Provider::Cpu);
    assert_eq!(model.max_input_bytes(), inference::DEFAULT_MAX_INPUT_BYTES);
}

#[test]
fn output_is_canonical_and_deterministic() {
    let rt = runtime();
    let mut model = Model::load(&rt, digits_model(), Device::Cpu, None).unwrap();
    let h = heldout();
    let input = digit_input(&h.pixels[0]);
    let a = model.run(&input).unwrap();
    let b = model.run(&input).unwrap();
    assert_eq!(a, b);
    // A second session gives the same bytes too.
    let mut other = Model::load(&rt, digits_model(), Device::Cpu, Some(1)).unwrap();
    assert_eq!(other.run(&input).unwrap(), a);
    let out = tensor::decode(&a).unwrap();
    assert_eq!(out[0].0, "label");
    assert_eq!(out[0].1.shape, vec![1]);
    assert_eq!(out[1].0, "probabilities");
    assert_eq!(out[1].1.dtype, DType::F32);
    assert_eq!(out[1].1.shape, vec![1, 10]);
    let p = out[1].1.to_f32().unwrap();
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    // Re-encoding the decoded output is byte-identical: the encoding is canonical.
    assert_eq!(tensor::encode(&out).unwrap(), a);
    let described = tensor::describe(&a).unwrap();
    assert_eq!(
        described["label"]["values"][0],
        out[0].1.to_i64().unwrap()[0]
    );
}

#[test]
fn batch_equals_single_byte_for_byte() {
    let rt = runtime();
    let mut model = Model::load(&rt, digits_model(), Device::Cpu, None).unwrap();
    let h = heldout();
    let inputs: Vec<Vec<u8>> = h.pixels.iter().map(|px| digit_input(px)).collect();
    let singles: Vec<Vec<u8>> = inputs.iter().map(|i| model.run(i).unwrap()).collect();
    let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    for chunk in [1usize, 7, 64, refs.len()] {
        let mut batched = Vec::new();
        for part in refs.chunks(chunk) {
            batched.extend(model.run_batch(part).into_iter().map(Result::unwrap));
        }
        assert_eq!(batched, singles, "batch size {chunk}");
    }
    // A task holding several rows is fine too, and its rows match the single-row runs.
    let rows: Vec<f32> = h.pixels[..3].concat();
    let three =
        tensor::encode(&[("input", Tensor::from_f32(vec![3, 64], &rows).unwrap())]).unwrap();
    let out = model.run(&three).unwrap();
    let labels = tensor::decode(&out).unwrap()[0].1.to_i64().unwrap();
    let one_by_one: Vec<i64> = singles[..3].iter().map(|o| predicted_label(o)).collect();
    assert_eq!(labels, one_by_one);
    let mixed = model.run_batch(&[&three, &inputs[3], &three]);
    assert_eq!(mixed[0].as_ref().unwrap(), &out);
    assert_eq!(mixed[1].as_ref().unwrap(), &singles[3]);
    assert_eq!(mixed[2].as_ref().unwrap(), &out);
}

#[test]
fn batch_isolates_bad_inputs() {
    let rt = runtime();
    let mut model = Model::load(&rt, digits_model(), Device::Cpu, None).unwrap();
    let h = heldout();
    let good0 = digit_input(&h.pixels[0]);
    let good1 = digit_input(&h.pixels[1]);
    let wrong_shape =
        tensor::encode(&[("input", Tensor::from_f32(vec![1, 63], &[0.0; 63]).unwrap())]).unwrap();
    let results = model.run_batch(&[&good0, b"garbage", &good1, &wrong_shape]);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap(), &model.run(&good0).unwrap());
    assert_eq!(
        results[1].as_ref().unwrap_err().kind(),
        FailureKind::InputDecode
    );
    assert_eq!(results[2].as_ref().unwrap(), &model.run(&good1).unwrap());
    assert_eq!(
        results[3].as_ref().unwrap_err().kind(),
        FailureKind::InputShape
    );
    assert!(model.run_batch(&[]).is_empty());
}

#[test]
fn bad_inputs_get_distinct_errors() {
    let rt = runtime();
    let mut model = Model::load(&rt, digits_model(), Device::Cpu, None).unwrap();
    let px = [1.0f32; 64];

    let err = model
        .run(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::InputDecode, "{err}");
    let err = model.run(&[]).unwrap_err();
    assert!(matches!(err, InferenceError::InputDecode(_)), "{err}");

    let wrong_name =
        tensor::encode(&[("pixels", Tensor::from_f32(vec![1, 64], &px).unwrap())]).unwrap();
    let err = model.run(&wrong_name).unwrap_err();
    assert!(
        matches!(&err, InferenceError::InputTensors { got, .. } if got == &["pixels"]),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::InputShape);
    assert!(
        err.to_string().contains("pixels") && err.to_string().contains("input"),
        "{err}"
    );

    let two = tensor::encode(&[
        ("input", Tensor::from_f32(vec![1, 64], &px).unwrap()),
        ("extra", Tensor::from_f32(vec![1], &[0.0]).unwrap()),
    ])
    .unwrap();
    assert!(matches!(
        model.run(&two).unwrap_err(),
        InferenceError::InputTensors { .. }
    ));
    let none = tensor::encode::<&str>(&[]).unwrap();
    assert!(matches!(
        model.run(&none).unwrap_err(),
        InferenceError::InputTensors { .. }
    ));

    let ints =
        tensor::encode(&[("input", Tensor::from_i64(vec![1, 64], &[1; 64]).unwrap())]).unwrap();
    let err = model.run(&ints).unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::InputDtype {
                expected: DType::F32,
                got: DType::I64,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::InputDtype);

    for shape in [vec![1, 63], vec![64], vec![1, 1, 64], vec![0, 64]] {
        let n: usize = shape.iter().product();
        let t = Tensor::from_f32(shape.clone(), &vec![0.0; n]).unwrap();
        let err = model
            .run(&tensor::encode(&[("input", t)]).unwrap())
            .unwrap_err();
        match &err {
            InferenceError::InputShape { expected, got, .. } => {
                assert_eq!(expected, &vec![-1, 64]);
                assert_eq!(got, &shape);
            }
            other => panic!("shape {shape:?}: expected InputShape, got {other}"),
        }
    }

    // 5,000 rows of 64 f32 is 1.28 MB: over the default 1 MiB limit.
    let big = tensor::encode(&[(
        "input",
        Tensor::from_f32(vec![5000, 64], &vec![0.0; 5000 * 64]).unwrap(),
    )])
    .unwrap();
    let err = model.run(&big).unwrap_err();
    assert!(
        matches!(err, InferenceError::InputTooLarge { size, max } if size == big.len() && max == 1 << 20),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::InputTooLarge);
    let ok = digit_input(&px);
    model.set_max_input_bytes(ok.len() - 1);
    assert!(matches!(
        model.run(&ok).unwrap_err(),
        InferenceError::InputTooLarge { .. }
    ));
    model.set_max_input_bytes(ok.len());
    model.run(&ok).unwrap();
}

#[test]
fn devices_cpu_auto_and_cuda() {
    let rt = runtime();
    let auto = Model::load(&rt, digits_model(), Device::Auto, None).unwrap();
    let cuda = Model::load(&rt, digits_model(), Device::Cuda, None);
    if rt.cuda_built_in() {
        // GPU build of ONNX Runtime (DN_ORT_GPU=1): CUDA must work when a GPU is present.
        let cuda = cuda.unwrap();
        assert_eq!(cuda.provider(), Provider::Cuda);
        assert_eq!(auto.provider(), Provider::Cuda);
    } else {
        assert_eq!(auto.provider(), Provider::Cpu);
        let err = cuda.unwrap_err();
        assert!(
            matches!(
                err,
                InferenceError::DeviceUnavailable {
                    device: Device::Cuda,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("CUDA"), "{err}");
        assert_eq!(err.kind(), FailureKind::ModelUnavailable);
    }
}

#[test]
fn not_a_model_is_a_load_error() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not an onnx file").unwrap();
    let err = Model::load(&rt, &junk, Device::Cpu, None).unwrap_err();
    assert!(
        matches!(&err, InferenceError::ModelLoad { path, .. } if path == &junk),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::ModelUnavailable);
    let err = Model::load(&rt, dir.path().join("missing.onnx"), Device::Cpu, None).unwrap_err();
    assert!(err.to_string().contains("missing.onnx"), "{err}");
}

#[test]
fn load_verified_rejects_a_modified_model() {
    let rt = runtime();
    let bytes = std::fs::read(digits_model()).unwrap();
    let hash = inference::sha256(&bytes);
    Model::load_verified(&rt, digits_model(), hash, Device::Cpu, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("digits.onnx");
    let mut corrupted = bytes.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x01;
    std::fs::write(&copy, &corrupted).unwrap();
    let err = Model::load_verified(&rt, &copy, hash, Device::Cpu, None).unwrap_err();
    match &err {
        InferenceError::HashMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &hex::encode(hash));
            assert_eq!(actual, &hex::encode(inference::sha256(&corrupted)));
        }
        other => panic!("expected HashMismatch, got {other}"),
    }
    assert_eq!(err.kind(), FailureKind::ModelHashMismatch);
}

#[test]
fn model_card_states_the_committed_hash() {
    let bytes = std::fs::read(digits_model()).unwrap();
    let hash = hex::encode(inference::sha256(&bytes));
    let card = std::fs::read_to_string(digits_dir().join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains(&hash),
        "MODEL_CARD.md does not state sha256 {hash}; re-run train.py"
    );
    let metrics = std::fs::read_to_string(digits_dir().join("metrics.json")).unwrap();
    assert!(metrics.contains(&hash));
}

#[test]
fn runtime_init_is_idempotent() {
    let a = runtime();
    let b = runtime();
    assert_eq!(a.library(), b.library());
    let c = inference::Runtime::init(Some(a.library())).unwrap();
    assert_eq!(c.library(), a.library());
}
