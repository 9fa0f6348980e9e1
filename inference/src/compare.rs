//! Comparison rules validators use to judge a worker's output against their own re-execution.
//! Pure functions over canonical safetensors outputs: same inputs, same [`Verdict`], everywhere.
//!
//! # Which side may be malformed
//! The worker's output is untrusted: bytes that do not decode, or tensors whose names, dtypes
//! or shapes differ from the validator's, give `Ok(Verdict)` with `matches == false`,
//! `quality_ppm == 0` and a reason. The validator's own output comes from the validator's own
//! run of the registered model, so when *it* does not decode (or the registered rule cannot
//! apply to the model's outputs) [`compare`] returns `Err`: the validator must not sign a verdict.
//!
//! # Which tensors a rule looks at
//! - `ExactBytes`: the whole document, byte for byte.
//! - `AllClose`: every element of every tensor; float tensors (F32, F64) within tolerance,
//!   all other dtypes (integers, BOOL) exactly equal.
//! - `Argmax`, `TopK`, `Cosine`: the *primary* float tensor, the first float tensor in name
//!   order whose last axis is longer than 1 (for the digits model: `probabilities`), row by
//!   row, where a row is one slice along the last axis; plus exact equality of every integer
//!   (and BOOL) tensor (for the digits model: `label`), row by row along its first axis (a
//!   scalar is one row). Other float tensors are checked for name, dtype and shape only;
//!   models whose every float output matters should register `AllClose`. Without a primary
//!   tensor the integer tensors alone decide; with neither, the rule does not apply (`Err`).
//!
//! # Quality
//! Each compared tensor yields an agreement fraction; `quality_ppm` is the smallest of them
//! scaled to `0..=1_000_000` (rounded down), and `matches` holds only when every tensor fully
//! agrees. Integer tensors: fraction of rows that are equal. `AllClose`: fraction of close
//! elements over all tensors together. `Argmax`: fraction of rows whose argmax agrees. `TopK`:
//! overlap of the two top-k index sets divided by k, averaged over rows. `Cosine`: cosine
//! similarity per row clamped to `[0, 1]`, averaged over rows; a row passes when its cosine
//! is at least the floor. Ties in argmax and top-k go to the lower index, and NaN ranks below
//! every number, so the choice never depends on the platform.

use std::cmp::Ordering;
use std::fmt;

use crate::tensor::{self, DType, Tensor};

/// Full quality: the outputs agree completely.
pub const QUALITY_MAX: u32 = 1_000_000;

/// Scale of the on-chain `tolerance` field: AllClose's atol and rtol, and Cosine's floor, are
/// `tolerance / TOLERANCE_SCALE`.
pub const TOLERANCE_SCALE: f64 = 1e6;

/// How a worker's output is compared with a validator's (`IModelRegistry.CompareRule`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CompareRule {
    /// The canonical bytes are identical (on-chain rule 0).
    ExactBytes,
    /// Every float element satisfies `|w - v| <= atol + rtol * |v|` (w: worker, v: validator),
    /// every other element is equal (on-chain rule 1).
    AllClose {
        /// Absolute tolerance.
        atol: f64,
        /// Tolerance relative to the validator's value.
        rtol: f64,
    },
    /// Every row of the primary float tensor has the same argmax (on-chain rule 2).
    Argmax,
    /// Every row of the primary float tensor has the same set of top-k indices (on-chain rule 3).
    TopK {
        /// Size of the compared set (>= 1; larger than the row length means the whole row).
        k: u32,
    },
    /// Every row of the primary float tensor has cosine similarity >= `floor` (on-chain rule 4).
    Cosine {
        /// Smallest accepted cosine similarity, in `[0, 1]`.
        floor: f64,
    },
}

/// Why a comparison could not be made at all (as opposed to a worker's output that does not
/// match, which is a [`Verdict`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    /// The on-chain rule number is not one of `IModelRegistry.CompareRule`.
    #[error(
        "unknown compare rule {rule} (known: 0 ExactBytes, 1 AllClose, 2 Argmax, 3 TopK, 4 Cosine)"
    )]
    UnknownRule {
        /// The on-chain value.
        rule: u8,
    },
    /// The rule's parameters are out of range.
    #[error("invalid parameters for compare rule {rule}: {reason}")]
    InvalidParameters {
        /// The rule's name.
        rule: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The validator's own output does not decode as canonical safetensors.
    #[error("validator output does not decode: {0}")]
    ValidatorOutput(String),
    /// The rule cannot be applied to this model's outputs.
    #[error("compare rule {rule} does not apply to these outputs: {reason}")]
    NotApplicable {
        /// The rule's name.
        rule: &'static str,
        /// Why.
        reason: String,
    },
}

/// The outcome of comparing a worker's output with a validator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// True when the worker's output is accepted under the rule.
    pub matches: bool,
    /// Agreement in parts per million, `0..=1_000_000` (see the module docs).
    pub quality_ppm: u32,
    /// Human-readable explanation (what differed, or what was compared).
    pub reason: String,
}

impl Verdict {
    /// A rejection with quality 0 and its reason (a malformed or wrong claimed output).
    pub fn mismatch(reason: String) -> Verdict {
        Verdict {
            matches: false,
            quality_ppm: 0,
            reason,
        }
    }
}

impl CompareRule {
    /// Builds the rule from `IModelRegistry`'s `rule` and `tolerance` fields:
    /// - 0 `ExactBytes`: tolerance ignored.
    /// - 1 `AllClose`: `atol = rtol = tolerance * 1e-6` (0 means values must be equal).
    /// - 2 `Argmax`: tolerance ignored.
    /// - 3 `TopK`: `k = tolerance`, which must be at least 1.
    /// - 4 `Cosine`: `floor = tolerance / 1e6`, so tolerance must be at most 1_000_000.
    pub fn from_onchain(rule: u8, tolerance: u32) -> Result<CompareRule, CompareError> {
        let scaled = f64::from(tolerance) / TOLERANCE_SCALE;
        let parsed = match rule {
            0 => CompareRule::ExactBytes,
            1 => CompareRule::AllClose {
                atol: scaled,
                rtol: scaled,
            },
            2 => CompareRule::Argmax,
            3 => CompareRule::TopK { k: tolerance },
            4 => CompareRule::Cosine { floor: scaled },
            _ => return Err(CompareError::UnknownRule { rule }),
        };
        parsed.check()?;
        Ok(parsed)
    }

    /// The on-chain rule number (`IModelRegistry.CompareRule`).
    pub fn onchain_rule(&self) -> u8 {
        match self {
            CompareRule::ExactBytes => 0,
            CompareRule::AllClose { .. } => 1,
            CompareRule::Argmax => 2,
            CompareRule::TopK { .. } => 3,
            CompareRule::Cosine { .. } => 4,
        }
    }

    /// The rule's name as in `IModelRegistry.CompareRule`.
    pub fn name(&self) -> &'static str {
        match self {
            CompareRule::ExactBytes => "ExactBytes",
            CompareRule::AllClose { .. } => "AllClose",
            CompareRule::Argmax => "Argmax",
            CompareRule::TopK { .. } => "TopK",
            CompareRule::Cosine { .. } => "Cosine",
        }
    }

    /// Checks the parameters: tolerances finite and non-negative, `k >= 1`, floor in `[0, 1]`.
    pub fn check(&self) -> Result<(), CompareError> {
        let bad = |reason: String| {
            Err(CompareError::InvalidParameters {
                rule: self.name(),
                reason,
            })
        };
        match *self {
            CompareRule::ExactBytes | CompareRule::Argmax => Ok(()),
            CompareRule::AllClose { atol, rtol } => {
                if !(atol.is_finite() && atol >= 0.0 && rtol.is_finite() && rtol >= 0.0) {
                    return bad(format!(
                        "atol {atol} and rtol {rtol} must be finite and >= 0"
                    ));
                }
                Ok(())
            }
            CompareRule::TopK { k } => {
                if k == 0 {
                    return bad("k must be at least 1 (tolerance = k)".to_string());
                }
                Ok(())
            }
            CompareRule::Cosine { floor } => {
                if !(0.0..=1.0).contains(&floor) {
                    return bad(format!(
                        "floor {floor} must be in [0, 1] (tolerance = floor * 1e6 <= 1000000)"
                    ));
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for CompareRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompareRule::AllClose { atol, rtol } => write!(f, "AllClose(atol={atol}, rtol={rtol})"),
            CompareRule::TopK { k } => write!(f, "TopK(k={k})"),
            CompareRule::Cosine { floor } => write!(f, "Cosine(floor={floor})"),
            other => f.write_str(other.name()),
        }
    }
}

/// Compares a worker's output with the validator's own output of the same task under `rule`.
/// Both are canonical safetensors documents. See the module docs for what each rule compares,
/// how quality is scored, and which malformed inputs are a mismatch versus an error.
pub fn compare(
    rule: &CompareRule,
    worker_output: &[u8],
    validator_output: &[u8],
) -> Result<Verdict, CompareError> {
    rule.check()?;
    let validator = tensor::decode(validator_output)
        .map_err(|e| CompareError::ValidatorOutput(e.to_string()))?;
    let verdict = match tensor::decode(worker_output) {
        Err(e) => Verdict::mismatch(format!("worker output does not decode: {e}")),
        Ok(worker) => match signature_mismatch(&worker, &validator) {
            Some(reason) => Verdict::mismatch(reason),
            None => compare_tensors(rule, &worker, &validator, worker_output, validator_output)?,
        },
    };
    tracing::debug!(
        rule = %rule,
        matches = verdict.matches,
        quality_ppm = verdict.quality_ppm,
        reason = %verdict.reason,
        "compared outputs"
    );
    Ok(verdict)
}

type Named = [(String, Tensor)];

/// Names, dtypes and shapes must be the same on both sides (both lists are sorted by name).
fn signature_mismatch(worker: &Named, validator: &Named) -> Option<String> {
    let names = |ts: &Named| ts.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(worker) != names(validator) {
        return Some(format!(
            "worker output has tensors {:?}, validator output has {:?}",
            names(worker),
            names(validator)
        ));
    }
    for ((name, w), (_, v)) in worker.iter().zip(validator) {
        if w.dtype != v.dtype {
            return Some(format!(
                "tensor {name:?} has dtype {} in the worker output, {} in the validator output",
                w.dtype, v.dtype
            ));
        }
        if w.shape != v.shape {
            return Some(format!(
                "tensor {name:?} has shape {:?} in the worker output, {:?} in the validator output",
                w.shape, v.shape
            ));
        }
    }
    None
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64)
}

/// Float elements widened to f64 (both float dtypes; callers only pass float tensors).
fn floats(t: &Tensor) -> Vec<f64> {
    match t.dtype {
        DType::F64 => t
            .data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        _ => t
            .data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    }
}

/// `num / den` in parts per million, rounded down; an empty set (`den == 0`) fully agrees.
fn ppm(num: u64, den: u64) -> u32 {
    if den == 0 {
        return QUALITY_MAX;
    }
    let scaled = u128::from(num) * u128::from(QUALITY_MAX) / u128::from(den);
    u32::try_from(scaled.min(u128::from(QUALITY_MAX))).unwrap_or(QUALITY_MAX)
}

/// One compared tensor's result: agreement in ppm, whether it fully passes, and a note.
struct Part {
    quality_ppm: u32,
    passes: bool,
    note: String,
}

fn compare_tensors(
    rule: &CompareRule,
    worker: &Named,
    validator: &Named,
    worker_bytes: &[u8],
    validator_bytes: &[u8],
) -> Result<Verdict, CompareError> {
    let parts = match *rule {
        CompareRule::ExactBytes => {
            let same = worker_bytes == validator_bytes;
            vec![Part {
                quality_ppm: if same { QUALITY_MAX } else { 0 },
                passes: same,
                note: if same {
                    "canonical bytes are identical".to_string()
                } else {
                    // Signatures already match, so some tensor's data must differ.
                    let first = worker
                        .iter()
                        .zip(validator)
                        .find(|((_, w), (_, v))| w.data != v.data)
                        .map(|((name, _), _)| name.as_str())
                        .unwrap_or("?");
                    format!("canonical bytes differ, first in tensor {first:?}")
                },
            }]
        }
        CompareRule::AllClose { atol, rtol } => vec![all_close(worker, validator, atol, rtol)],
        CompareRule::Argmax | CompareRule::TopK { .. } | CompareRule::Cosine { .. } => {
            let mut parts = Vec::new();
            let primary = validator
                .iter()
                .position(|(_, t)| is_float(t.dtype) && t.shape.last().is_some_and(|&d| d > 1));
            if let Some(i) = primary {
                let (name, v) = &validator[i];
                let w = &worker[i].1;
                parts.push(match *rule {
                    CompareRule::TopK { k } => top_k(name, w, v, k),
                    CompareRule::Cosine { floor } => cosine(name, w, v, floor),
                    _ => argmax(name, w, v),
                });
            }
            for ((name, w), (_, v)) in worker.iter().zip(validator) {
                if !is_float(v.dtype) {
                    parts.push(exact_rows(name, w, v));
                }
            }
            if parts.is_empty() {
                return Err(CompareError::NotApplicable {
                    rule: rule.name(),
                    reason: format!(
                        "no float tensor with a last axis longer than 1 and no integer tensor among {:?}",
                        validator.iter().map(|(n, _)| n).collect::<Vec<_>>()
                    ),
                });
            }
            parts
        }
    };
    let matches = parts.iter().all(|p| p.passes);
    let quality_ppm = parts
        .iter()
        .map(|p| p.quality_ppm)
        .min()
        .unwrap_or(QUALITY_MAX);
    let reason = format!(
        "{rule}: {}",
        parts
            .iter()
            .map(|p| p.note.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(Verdict {
        matches,
        quality_ppm,
        reason,
    })
}

/// Element-wise closeness over every tensor. NaN is close only to NaN (the validator's own run
/// produced it), an infinity only to the same infinity.
fn all_close(worker: &Named, validator: &Named, atol: f64, rtol: f64) -> Part {
    let mut total = 0u64;
    let mut close = 0u64;
    let mut worst: Option<(String, usize, f64, f64)> = None;
    for ((name, w), (_, v)) in worker.iter().zip(validator) {
        if is_float(v.dtype) {
            for (i, (a, b)) in floats(w).into_iter().zip(floats(v)).enumerate() {
                total += 1;
                let ok = if a.is_finite() && b.is_finite() {
                    (a - b).abs() <= atol + rtol * b.abs()
                } else {
                    a == b || (a.is_nan() && b.is_nan())
                };
                if ok {
                    close += 1;
                } else if worst.is_none() {
                    worst = Some((name.clone(), i, a, b));
                }
            }
        } else {
            let size = v.dtype.size();
            for (i, (a, b)) in w
                .data
                .chunks_exact(size)
                .zip(v.data.chunks_exact(size))
                .enumerate()
            {
                total += 1;
                if a == b {
                    close += 1;
                } else if worst.is_none() {
                    worst = Some((name.clone(), i, f64::NAN, f64::NAN));
                }
            }
        }
    }
    let note = match worst {
        None => format!("all {total} elements close"),
        Some((name, i, a, b)) if a.is_nan() && b.is_nan() => format!(
            "{close} of {total} elements close; first difference: tensor {name:?} element {i} (integer)"
        ),
        Some((name, i, a, b)) => format!(
            "{close} of {total} elements close; first difference: tensor {name:?} element {i}: worker {a}, validator {b}"
        ),
    };
    Part {
        quality_ppm: ppm(close, total),
        passes: close == total,
        note,
    }
}

/// Orders floats descending with NaN below every number; equal values keep index order.
fn rank(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

/// Indices of the `k` largest values, lowest index first among equals (stable sort).
fn top_indices(row: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&i, &j| rank(row[i], row[j]));
    idx.truncate(k);
    idx
}

/// Rows along the last axis of two same-shaped float tensors.
fn rows(w: &Tensor, v: &Tensor) -> (Vec<f64>, Vec<f64>, usize) {
    let width = v.shape.last().copied().unwrap_or(1).max(1);
    (floats(w), floats(v), width)
}

fn argmax(name: &str, w: &Tensor, v: &Tensor) -> Part {
    let (wf, vf, width) = rows(w, v);
    let mut total = 0u64;
    let mut agree = 0u64;
    let mut first_bad = None;
    for (r, (a, b)) in wf.chunks(width).zip(vf.chunks(width)).enumerate() {
        total += 1;
        let (ia, ib) = (top_indices(a, 1)[0], top_indices(b, 1)[0]);
        if ia == ib {
            agree += 1;
        } else if first_bad.is_none() {
            first_bad = Some((r, ia, ib));
        }
    }
    let note = match first_bad {
        None => format!("argmax of {name:?} agrees on all {total} rows"),
        Some((r, ia, ib)) => format!(
            "argmax of {name:?} agrees on {agree} of {total} rows; row {r}: worker {ia}, validator {ib}"
        ),
    };
    Part {
        quality_ppm: ppm(agree, total),
        passes: agree == total,
        note,
    }
}

fn top_k(name: &str, w: &Tensor, v: &Tensor, k: u32) -> Part {
    let (wf, vf, width) = rows(w, v);
    let k = usize::try_from(k).unwrap_or(usize::MAX).min(width).max(1);
    let mut total = 0u64;
    let mut overlap_sum = 0u64;
    let mut full = 0u64;
    let mut first_bad = None;
    for (r, (a, b)) in wf.chunks(width).zip(vf.chunks(width)).enumerate() {
        total += 1;
        let ta = top_indices(a, k);
        let tb = top_indices(b, k);
        let overlap = ta.iter().filter(|i| tb.contains(i)).count();
        overlap_sum += overlap as u64;
        if overlap == k {
            full += 1;
        } else if first_bad.is_none() {
            first_bad = Some((r, overlap));
        }
    }
    let note = match first_bad {
        None => format!("top-{k} sets of {name:?} agree on all {total} rows"),
        Some((r, overlap)) => format!(
            "top-{k} sets of {name:?} agree on {full} of {total} rows; row {r} shares {overlap} of {k}"
        ),
    };
    Part {
        // Mean over rows of overlap / k.
        quality_ppm: ppm(overlap_sum, total * k as u64),
        passes: full == total,
        note,
    }
}

/// Cosine similarity of two rows: 1 for bit-identical rows (NaN and zero rows included), 0 when
/// either row holds a non-finite value or exactly one of them is zero.
fn cosine_of(a: &[f64], b: &[f64]) -> f64 {
    if a.iter()
        .zip(b)
        .all(|(x, y)| x.to_bits() == y.to_bits() || x == y)
    {
        return 1.0;
    }
    if a.iter().chain(b).any(|x| !x.is_finite()) {
        return 0.0;
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na * nb)).clamp(-1.0, 1.0)
}

fn cosine(name: &str, w: &Tensor, v: &Tensor, floor: f64) -> Part {
    let (wf, vf, width) = rows(w, v);
    let mut total = 0u64;
    let mut passing = 0u64;
    let mut sum_ppm = 0u64;
    let mut min_cos = 1.0f64;
    for (a, b) in wf.chunks(width).zip(vf.chunks(width)) {
        total += 1;
        let c = cosine_of(a, b);
        min_cos = min_cos.min(c);
        if c >= floor {
            passing += 1;
        }
        // Per-row ppm is rounded down, then averaged with integer math: deterministic.
        sum_ppm += (c.clamp(0.0, 1.0) * f64::from(QUALITY_MAX)).floor() as u64;
    }
    Part {
        quality_ppm: sum_ppm
            .checked_div(total)
            .map_or(QUALITY_MAX, |q| u32::try_from(q).unwrap_or(QUALITY_MAX)),
        passes: passing == total,
        note: format!(
            "cosine of {name:?} >= {floor} on {passing} of {total} rows (lowest {min_cos:.9})"
        ),
    }
}

/// Exact equality of an integer (or BOOL) tensor, row by row along its first axis.
fn exact_rows(name: &str, w: &Tensor, v: &Tensor) -> Part {
    let row_bytes = if v.shape.is_empty() {
        v.data.len()
    } else {
        v.shape[1..].iter().product::<usize>() * v.dtype.size()
    };
    let (total, equal) = match v.data.len().checked_div(row_bytes) {
        None => (0u64, 0u64),
        Some(rows) => {
            let equal = w
                .data
                .chunks(row_bytes)
                .zip(v.data.chunks(row_bytes))
                .filter(|(a, b)| a == b)
                .count() as u64;
            (rows as u64, equal)
        }
    };
    Part {
        quality_ppm: ppm(equal, total),
        passes: equal == total,
        note: format!("{name:?} equal on {equal} of {total} rows"),
    }
}
