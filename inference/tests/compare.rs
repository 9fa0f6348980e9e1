//! The validators' comparison rules on real digits outputs from ONNX Runtime: honest runs
//! match, wrong or malformed outputs do not, and floating-point noise separates ExactBytes from
//! the tolerant rules.

mod common;

use common::*;
use inference::compare::QUALITY_MAX;
use inference::{compare, tensor, CompareError, CompareRule, Device, Model, Tensor, Verdict};

/// The rules a digits model could be registered with, as the registry would encode them.
fn rules() -> Vec<CompareRule> {
    vec![
        CompareRule::from_onchain(0, 0).unwrap(),
        CompareRule::from_onchain(1, 10).unwrap(), // atol = rtol = 1e-5
        CompareRule::from_onchain(2, 0).unwrap(),
        CompareRule::from_onchain(3, 3).unwrap(),
        CompareRule::from_onchain(4, 999_999).unwrap(), // floor 0.999999
    ]
}

fn exact() -> CompareRule {
    CompareRule::ExactBytes
}
fn all_close() -> CompareRule {
    CompareRule::from_onchain(1, 10).unwrap()
}
fn cosine() -> CompareRule {
    CompareRule::from_onchain(4, 999_999).unwrap()
}

/// Every held-out digit as one task with input f32 [N, 64].
fn batch_input(n: usize) -> Vec<u8> {
    let h = heldout();
    let rows: Vec<f32> = h.pixels[..n].concat();
    tensor::encode(&[("input", Tensor::from_f32(vec![n, 64], &rows).unwrap())]).unwrap()
}

fn run_digits(threads: Option<usize>, input: &[u8]) -> Vec<u8> {
    let rt = runtime();
    let mut model = Model::load(&rt, digits_model(), Device::Cpu, threads).unwrap();
    model.run(input).unwrap()
}

/// (labels, probabilities, n) of a digits output.
fn parts(output: &[u8]) -> (Vec<i64>, Vec<f32>, usize) {
    let out = tensor::decode(output).unwrap();
    let labels = out[0].1.to_i64().unwrap();
    let probs = out[1].1.to_f32().unwrap();
    let n = labels.len();
    (labels, probs, n)
}

fn digits_output(labels: &[i64], probs: &[f32]) -> Vec<u8> {
    tensor::encode(&[
        (
            "label",
            Tensor::from_i64(vec![labels.len()], labels).unwrap(),
        ),
        (
            "probabilities",
            Tensor::from_f32(vec![labels.len(), 10], probs).unwrap(),
        ),
    ])
    .unwrap()
}

fn check(rule: &CompareRule, worker: &[u8], validator: &[u8]) -> Verdict {
    let v = compare(rule, worker, validator).unwrap();
    assert!(v.quality_ppm <= QUALITY_MAX, "{v:?}");
    assert!(!v.reason.is_empty());
    v
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn identical_outputs_match_under_every_rule() {
    let out = run_digits(Some(1), &batch_input(360));
    for rule in rules() {
        let v = check(&rule, &out, &out);
        assert!(v.matches, "{rule}: {v:?}");
        assert_eq!(v.quality_ppm, QUALITY_MAX, "{rule}");
    }
}

#[test]
fn real_runtime_variants_pass_the_tolerant_rules() {
    let n = 360;
    let input = batch_input(n);
    let one_thread = run_digits(Some(1), &input);
    let two_threads = run_digits(Some(2), &input);
    // The same rows run one task per row, then stitched into one [N, ...] output.
    let h = heldout();
    let rt = runtime();
    let mut model = Model::load(&rt, digits_model(), Device::Cpu, Some(2)).unwrap();
    let (mut labels, mut probs) = (Vec::new(), Vec::new());
    for px in &h.pixels[..n] {
        let (l, p, _) = parts(&model.run(&digit_input(px)).unwrap());
        labels.extend(l);
        probs.extend(p);
    }
    let stitched = digits_output(&labels, &probs);

    let (_, reference, _) = parts(&one_thread);
    for (what, worker) in [("2 threads", &two_threads), ("single rows", &stitched)] {
        let (_, p, _) = parts(worker);
        let same_bytes = worker == &one_thread;
        println!(
            "{what} vs 1 thread, [{n}, 10] probabilities: bytes identical = {same_bytes}, max |diff| = {:e}",
            max_abs_diff(&p, &reference)
        );
        for rule in rules().iter().skip(1) {
            let v = check(rule, worker, &one_thread);
            assert!(v.matches, "{what} under {rule}: {v:?}");
        }
        // ExactBytes decides by the bytes alone: it passes exactly when they are identical.
        assert_eq!(check(&exact(), worker, &one_thread).matches, same_bytes);
    }
}

#[test]
fn perturbed_probabilities_pass_tolerant_rules_and_fail_exact_bytes() {
    let out = run_digits(Some(1), &batch_input(360));
    let (labels, probs, _) = parts(&out);
    // 1e-6 relative noise, alternating sign: what a different kernel or provider produces.
    let noisy: Vec<f32> = probs
        .iter()
        .enumerate()
        .map(|(i, p)| p * (1.0 + if i % 2 == 0 { 1e-6 } else { -1e-6 }))
        .collect();
    let changed = noisy.iter().zip(&probs).filter(|(a, b)| a != b).count();
    assert!(
        changed > probs.len() / 2,
        "noise must change most values, changed {changed}"
    );
    let worker = digits_output(&labels, &noisy);
    println!(
        "perturbed copy: {changed} of {} probabilities changed, max |diff| = {:e}",
        probs.len(),
        max_abs_diff(&noisy, &probs)
    );

    let v = check(&exact(), &worker, &out);
    assert!(!v.matches, "{v:?}");
    assert_eq!(v.quality_ppm, 0);
    println!("ExactBytes on the perturbed copy: {v:?}");
    for rule in rules().iter().skip(1) {
        let v = check(rule, &worker, &out);
        assert!(v.matches, "{rule}: {v:?}");
        println!("{rule} on the perturbed copy: {v:?}");
    }
    // Tolerance is what lets the noise through: AllClose with tolerance 0 rejects it, and the
    // quality counts the values that stayed bit-identical.
    let strict = CompareRule::from_onchain(1, 0).unwrap();
    let v = check(&strict, &worker, &out);
    assert!(!v.matches, "{v:?}");
    let unchanged = (probs.len() - changed) + labels.len();
    let total = probs.len() + labels.len();
    assert_eq!(
        v.quality_ppm as u64,
        unchanged as u64 * QUALITY_MAX as u64 / total as u64
    );
}

#[test]
fn a_different_or_shuffled_label_fails_argmax() {
    let out = run_digits(Some(1), &batch_input(360));
    let (labels, probs, n) = parts(&out);
    // One label changed.
    let mut one_wrong = labels.clone();
    one_wrong[5] = (one_wrong[5] + 1) % 10;
    let worker = digits_output(&one_wrong, &probs);
    for rule in rules() {
        let v = check(&rule, &worker, &out);
        assert!(!v.matches, "{rule}: {v:?}");
        assert!(v.reason.contains("label"), "{rule}: {v:?}");
    }
    let v = check(&CompareRule::Argmax, &worker, &out);
    assert_eq!(
        v.quality_ppm as u64,
        (n as u64 - 1) * QUALITY_MAX as u64 / n as u64
    );
    // Labels shuffled (rotated by one), probabilities honest.
    let mut rotated = labels.clone();
    rotated.rotate_left(1);
    let v = check(&CompareRule::Argmax, &digits_output(&rotated, &probs), &out);
    assert!(!v.matches);
    assert!(v.quality_ppm < QUALITY_MAX / 2, "{v:?}");
}

#[test]
fn cheaper_wrong_models_fail_every_rule() {
    let out = run_digits(Some(1), &batch_input(360));
    let (labels, probs, n) = parts(&out);

    // A "model" that returns uniform probabilities and always says 0.
    let uniform = digits_output(&vec![0; n], &vec![0.1; n * 10]);
    // A worker that reuses honest probability rows but for the wrong tasks (rows shifted by one).
    let mut shifted_probs = probs.clone();
    shifted_probs.rotate_left(10);
    let mut shifted_labels = labels.clone();
    shifted_labels.rotate_left(1);
    let shifted = digits_output(&shifted_labels, &shifted_probs);
    // Pseudo-random probabilities with the labels they imply.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random_probs: Vec<f32> = (0..n * 10)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let random_labels: Vec<i64> = random_probs
        .chunks(10)
        .map(|r| {
            (0..10)
                .max_by(|&a, &b| r[a].total_cmp(&r[b]).then(b.cmp(&a)))
                .unwrap() as i64
        })
        .collect();
    let random = digits_output(&random_labels, &random_probs);

    for (what, worker) in [
        ("uniform", &uniform),
        ("shifted", &shifted),
        ("random", &random),
    ] {
        for rule in rules() {
            let v = check(&rule, worker, &out);
            assert!(!v.matches, "{what} under {rule}: {v:?}");
            assert!(
                v.quality_ppm < QUALITY_MAX / 2,
                "{what} under {rule}: {v:?}"
            );
        }
    }
}

#[test]
fn malformed_worker_output_is_a_mismatch_with_a_reason() {
    let out = run_digits(Some(1), &batch_input(4));
    let (labels, probs, n) = parts(&out);
    let missing = tensor::encode(&[(
        "probabilities",
        Tensor::from_f32(vec![n, 10], &probs).unwrap(),
    )])
    .unwrap();
    let extra = tensor::encode(&[
        ("label", Tensor::from_i64(vec![n], &labels).unwrap()),
        (
            "probabilities",
            Tensor::from_f32(vec![n, 10], &probs).unwrap(),
        ),
        ("x", Tensor::from_f32(vec![1], &[0.0]).unwrap()),
    ])
    .unwrap();
    let short = digits_output(&labels[..n - 1], &probs[..(n - 1) * 10]);
    let reshaped = tensor::encode(&[
        ("label", Tensor::from_i64(vec![n], &labels).unwrap()),
        (
            "probabilities",
            Tensor::from_f32(vec![n * 10], &probs).unwrap(),
        ),
    ])
    .unwrap();
    let probs64: Vec<u8> = probs
        .iter()
        .flat_map(|&p| f64::from(p).to_le_bytes())
        .collect();
    let wrong_dtype = tensor::encode(&[
        ("label", Tensor::from_i64(vec![n], &labels).unwrap()),
        (
            "probabilities",
            Tensor::checked(inference::DType::F64, vec![n, 10], probs64).unwrap(),
        ),
    ])
    .unwrap();
    let cases: [(&str, &[u8], &str); 7] = [
        ("garbage", b"not safetensors at all", "does not decode"),
        ("empty", b"", "does not decode"),
        ("truncated", &out[..out.len() - 3], "does not decode"),
        ("missing tensor", &missing, "tensors"),
        ("extra tensor", &extra, "tensors"),
        ("short batch", &short, "shape"),
        ("wrong dtype", &wrong_dtype, "dtype"),
    ];
    for (what, worker, needle) in cases {
        for rule in rules() {
            let v = check(&rule, worker, &out);
            assert!(!v.matches, "{what} under {rule}");
            assert_eq!(v.quality_ppm, 0, "{what} under {rule}");
            assert!(v.reason.contains(needle), "{what} under {rule}: {v:?}");
        }
    }
    let v = check(&CompareRule::Argmax, &reshaped, &out);
    assert!(!v.matches && v.reason.contains("shape"), "{v:?}");
}

#[test]
fn malformed_validator_output_is_an_error() {
    let out = run_digits(Some(1), &batch_input(2));
    for rule in rules() {
        let err = compare(&rule, &out, b"garbage").unwrap_err();
        assert!(matches!(err, CompareError::ValidatorOutput(_)), "{err}");
        assert!(err.to_string().contains("validator output"), "{err}");
        // Even identical garbage on both sides is not a match.
        assert!(compare(&rule, b"garbage", b"garbage").is_err());
    }
}

#[test]
fn from_onchain_decodes_rule_and_tolerance() {
    assert_eq!(
        CompareRule::from_onchain(0, 123).unwrap(),
        CompareRule::ExactBytes
    );
    assert_eq!(
        CompareRule::from_onchain(1, 10).unwrap(),
        CompareRule::AllClose {
            atol: 1e-5,
            rtol: 1e-5
        }
    );
    assert_eq!(
        CompareRule::from_onchain(1, 0).unwrap(),
        CompareRule::AllClose {
            atol: 0.0,
            rtol: 0.0
        }
    );
    assert_eq!(
        CompareRule::from_onchain(2, 7).unwrap(),
        CompareRule::Argmax
    );
    assert_eq!(
        CompareRule::from_onchain(3, 1).unwrap(),
        CompareRule::TopK { k: 1 }
    );
    assert_eq!(
        CompareRule::from_onchain(3, u32::MAX).unwrap(),
        CompareRule::TopK { k: u32::MAX }
    );
    assert_eq!(
        CompareRule::from_onchain(4, 1_000_000).unwrap(),
        CompareRule::Cosine { floor: 1.0 }
    );
    assert_eq!(
        CompareRule::from_onchain(4, 0).unwrap(),
        CompareRule::Cosine { floor: 0.0 }
    );
    assert_eq!(
        CompareRule::from_onchain(4, 990_000).unwrap(),
        CompareRule::Cosine { floor: 0.99 }
    );

    let err = CompareRule::from_onchain(3, 0).unwrap_err();
    assert!(
        matches!(err, CompareError::InvalidParameters { rule: "TopK", .. }),
        "{err}"
    );
    let err = CompareRule::from_onchain(4, 1_000_001).unwrap_err();
    assert!(
        matches!(err, CompareError::InvalidParameters { rule: "Cosine", .. }),
        "{err}"
    );
    for rule in [5u8, 6, 255] {
        let err = CompareRule::from_onchain(rule, 0).unwrap_err();
        assert_eq!(err, CompareError::UnknownRule { rule });
        assert!(err.to_string().contains(&rule.to_string()), "{err}");
    }
    for (id, tol) in [(0u8, 0u32), (1, 5), (2, 0), (3, 2), (4, 5)] {
        assert_eq!(
            CompareRule::from_onchain(id, tol).unwrap().onchain_rule(),
            id
        );
    }
    // Hand-built rules are checked too.
    let out = tensor::encode(&[("p", Tensor::from_f32(vec![1, 2], &[0.5, 0.5]).unwrap())]).unwrap();
    for bad in [
        CompareRule::TopK { k: 0 },
        CompareRule::Cosine { floor: f64::NAN },
        CompareRule::AllClose {
            atol: -1.0,
            rtol: 0.0,
        },
    ] {
        assert!(matches!(
            compare(&bad, &out, &out),
            Err(CompareError::InvalidParameters { .. })
        ));
    }
}

// Exact scores on small hand-made outputs.

fn probs_doc(shape: Vec<usize>, values: &[f32]) -> Vec<u8> {
    tensor::encode(&[("probabilities", Tensor::from_f32(shape, values).unwrap())]).unwrap()
}

#[test]
fn scores_are_exact_on_small_outputs() {
    let validator = probs_doc(
        vec![4, 3],
        &[
            0.7, 0.2, 0.1, //
            0.1, 0.6, 0.3, //
            0.3, 0.3, 0.4, //
            0.5, 0.4, 0.1,
        ],
    );
    // Row 1: argmax differs; row 3: top-2 set differs ({0,1} vs {0,2}); others identical.
    let worker = probs_doc(
        vec![4, 3],
        &[
            0.7, 0.2, 0.1, //
            0.6, 0.1, 0.3, //
            0.3, 0.3, 0.4, //
            0.5, 0.1, 0.4,
        ],
    );
    let v = check(&CompareRule::Argmax, &worker, &validator);
    assert!(!v.matches);
    assert_eq!(v.quality_ppm, 750_000, "{v:?}");
    assert!(v.reason.contains("row 1"), "{v:?}");

    // Top-2: row 1 {1,2} vs {0,2}: 1 of 2; row 3: {0,1} vs {0,2}: 1 of 2. Mean 3/4.
    let v = check(&CompareRule::TopK { k: 2 }, &worker, &validator);
    assert!(!v.matches);
    assert_eq!(v.quality_ppm, 750_000, "{v:?}");
    // k larger than the row compares whole rows as sets: always equal.
    let v = check(&CompareRule::TopK { k: 99 }, &worker, &validator);
    assert!(v.matches, "{v:?}");

    // AllClose: 4 of 12 elements differ.
    let v = check(&all_close(), &worker, &validator);
    assert!(!v.matches);
    assert_eq!(v.quality_ppm, 666_666, "{v:?}");

    // Cosine: rows 0 and 2 are 1; row 1: (0.6*0.1+0.1*0.6+0.09)/0.46 = 0.21/0.46; row 3:
    // (0.25+0.04+0.04)/0.42 = 0.33/0.42.
    let v = check(&CompareRule::Cosine { floor: 0.5 }, &worker, &validator);
    assert!(!v.matches, "{v:?}");
    let row = |c: f64| (c * 1e6).floor() as u64;
    let w = [
        0.7f32, 0.2, 0.1, 0.6, 0.1, 0.3, 0.3, 0.3, 0.4, 0.5, 0.1, 0.4,
    ];
    let b = [
        0.7f32, 0.2, 0.1, 0.1, 0.6, 0.3, 0.3, 0.3, 0.4, 0.5, 0.4, 0.1,
    ];
    let cos = |r: usize| {
        let (x, y) = (&w[r * 3..r * 3 + 3], &b[r * 3..r * 3 + 3]);
        let f = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<_>>();
        let (x, y) = (f(x), f(y));
        let dot: f64 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        let nx = x.iter().map(|a| a * a).sum::<f64>().sqrt();
        let ny = y.iter().map(|a| a * a).sum::<f64>().sqrt();
        dot / (nx * ny)
    };
    assert!((cos(1) - 0.21 / 0.46).abs() < 1e-6);
    let expected = (2 * 1_000_000 + row(cos(1)) + row(cos(3))) / 4;
    assert_eq!(v.quality_ppm as u64, expected, "{v:?}");
    // Row 3 passes a 0.7 floor (0.786) but row 1 (0.457) does not.
    assert!(!check(&CompareRule::Cosine { floor: 0.7 }, &worker, &validator).matches);
    assert!(check(&CompareRule::Cosine { floor: 0.4 }, &worker, &validator).matches);
}

#[test]
fn ties_nan_and_f64_are_deterministic() {
    // Ties go to the lower index on both sides, so equal rows with ties agree.
    let tied = probs_doc(vec![1, 4], &[0.25; 4]);
    assert!(check(&CompareRule::Argmax, &tied, &tied).matches);
    let other_tie = probs_doc(vec![1, 4], &[0.2, 0.3, 0.3, 0.2]);
    let first_higher = probs_doc(vec![1, 4], &[0.2, 0.3, 0.30001, 0.2]);
    assert!(!check(&CompareRule::Argmax, &first_higher, &other_tie).matches);

    // NaN ranks below every number and is close only to NaN.
    let with_nan = probs_doc(vec![1, 3], &[f32::NAN, 0.1, 0.2]);
    for rule in rules() {
        assert!(check(&rule, &with_nan, &with_nan).matches, "{rule}");
    }
    let v = check(
        &CompareRule::Argmax,
        &probs_doc(vec![1, 3], &[0.0, 0.1, 0.2]),
        &with_nan,
    );
    assert!(v.matches, "{v:?}");
    let v = check(
        &all_close(),
        &probs_doc(vec![1, 3], &[0.0, 0.1, 0.2]),
        &with_nan,
    );
    assert!(!v.matches, "{v:?}");
    assert!(
        !check(
            &cosine(),
            &probs_doc(vec![1, 3], &[0.0, 0.1, 0.2]),
            &with_nan
        )
        .matches
    );

    // F64 tensors are compared as floats.
    let f64_doc = |v: &[f64]| {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        tensor::encode(&[(
            "y",
            Tensor::checked(inference::DType::F64, vec![1, v.len()], data).unwrap(),
        )])
        .unwrap()
    };
    let a = f64_doc(&[1.0, 2.0, 3.0]);
    let b = f64_doc(&[1.0, 2.0, 3.0 + 1e-9]);
    assert!(check(&all_close(), &b, &a).matches);
    assert!(check(&CompareRule::Argmax, &b, &a).matches);
    assert!(!check(&exact(), &b, &a).matches);

    // Same inputs, same verdict.
    for rule in rules() {
        assert_eq!(check(&rule, &b, &a), check(&rule, &b, &a));
    }
}

#[test]
fn rules_without_a_primary_tensor() {
    // A regression output [N, 1] has no axis to take an argmax over.
    let reg =
        tensor::encode(&[("y", Tensor::from_f32(vec![3, 1], &[1.0, 2.0, 3.0]).unwrap())]).unwrap();
    for rule in [CompareRule::Argmax, CompareRule::TopK { k: 1 }, cosine()] {
        let err = compare(&rule, &reg, &reg).unwrap_err();
        assert!(matches!(err, CompareError::NotApplicable { .. }), "{err}");
        assert!(err.to_string().contains("\"y\""), "{err}");
    }
    assert!(check(&all_close(), &reg, &reg).matches);
    // Integer-only outputs: the integers decide, row by row.
    let ints = |v: &[i64]| {
        tensor::encode(&[("label", Tensor::from_i64(vec![v.len()], v).unwrap())]).unwrap()
    };
    let v = check(
        &CompareRule::Argmax,
        &ints(&[1, 2, 3, 4]),
        &ints(&[1, 2, 3, 5]),
    );
    assert!(!v.matches);
    assert_eq!(v.quality_ppm, 750_000);
    assert!(check(&cosine(), &ints(&[1, 2]), &ints(&[1, 2])).matches);
}
