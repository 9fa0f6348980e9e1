//! Canonical tensor encoding: safetensors bytes with no metadata. Task inputs and outputs travel
//! in this form, and the keccak256 of the output bytes is the output hash a worker commits.
//!
//! Encoding is deterministic: safetensors orders tensors by dtype alignment, then by name, and
//! this module never writes metadata, so equal tensors always give equal bytes.

use std::fmt;
use std::str::FromStr;

use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Map, Value};

use crate::InferenceError;

/// Element type of a [`Tensor`]. The names are safetensors' dtype names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean, one byte per element holding 0 or 1.
    Bool,
}

impl DType {
    /// Every supported dtype.
    pub const ALL: [DType; 11] = [
        DType::F32,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// The safetensors name (`F32`, `I64`, `BOOL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::I8 => "I8",
            DType::I16 => "I16",
            DType::I32 => "I32",
            DType::I64 => "I64",
            DType::U8 => "U8",
            DType::U16 => "U16",
            DType::U32 => "U32",
            DType::U64 => "U64",
            DType::Bool => "BOOL",
        }
    }

    pub(crate) fn to_safetensors(self) -> Dtype {
        match self {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
            DType::I8 => Dtype::I8,
            DType::I16 => Dtype::I16,
            DType::I32 => Dtype::I32,
            DType::I64 => Dtype::I64,
            DType::U8 => Dtype::U8,
            DType::U16 => Dtype::U16,
            DType::U32 => Dtype::U32,
            DType::U64 => Dtype::U64,
            DType::Bool => Dtype::BOOL,
        }
    }

    pub(crate) fn from_safetensors(dtype: Dtype) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.to_safetensors() == dtype)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DType {
    type Err = InferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| InferenceError::InputDecode(format!("unknown dtype {s:?}")))
    }
}

/// A dense tensor: dtype, shape and the elements as little-endian bytes in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Element type.
    pub dtype: DType,
    /// Dimensions; empty for a scalar.
    pub shape: Vec<usize>,
    /// `shape.iter().product() * dtype.size()` little-endian bytes.
    pub data: Vec<u8>,
}

impl Tensor {
    /// Builds an f32 tensor. Errors when `values.len()` does not match the shape.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Result<Tensor, InferenceError> {
        Tensor::checked(
            DType::F32,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// Builds an i64 tensor. Errors when `values.len()` does not match the shape.
    pub fn from_i64(shape: Vec<usize>, values: &[i64]) -> Result<Tensor, InferenceError> {
        Tensor::checked(
            DType::I64,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// Builds a tensor from raw little-endian bytes, checking that the length matches the shape.
    pub fn checked(
        dtype: DType,
        shape: Vec<usize>,
        data: Vec<u8>,
    ) -> Result<Tensor, InferenceError> {
        let want = element_count(&shape)
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| InferenceError::InputDecode(format!("shape {shape:?} overflows")))?;
        if data.len() != want {
            return Err(InferenceError::InputDecode(format!(
                "{dtype} tensor of shape {shape:?} needs {want} bytes, got {}",
                data.len()
            )));
        }
        Ok(Tensor { dtype, shape, data })
    }

    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f32, or `None` when the dtype is not F32.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.dtype == DType::F32).then(|| {
            self.data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
    }

    /// The elements as i64, or `None` when the dtype is not I64.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        (self.dtype == DType::I64).then(|| {
            self.data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()
        })
    }

    /// The elements as JSON numbers (booleans as true/false; non-finite floats as null).
    pub fn values_json(&self) -> Vec<Value> {
        let n = self.dtype.size();
        self.data
            .chunks_exact(n)
            .map(|c| match self.dtype {
                DType::F32 => json!(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                DType::F64 => json!(f64::from_le_bytes(eight(c))),
                DType::I8 => json!(c[0] as i8),
                DType::I16 => json!(i16::from_le_bytes([c[0], c[1]])),
                DType::I32 => json!(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                DType::I64 => json!(i64::from_le_bytes(eight(c))),
                DType::U8 => json!(c[0]),
                DType::U16 => json!(u16::from_le_bytes([c[0], c[1]])),
                DType::U32 => json!(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                DType::U64 => json!(u64::from_le_bytes(eight(c))),
                DType::Bool => json!(c[0] != 0),
            })
            .collect()
    }
}

fn eight(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Encodes named tensors as canonical safetensors bytes (no metadata, deterministic order).
/// Errors on duplicate names or a tensor whose data length does not match its shape.
pub fn encode<S: AsRef<str>>(tensors: &[(S, Tensor)]) -> Result<Vec<u8>, InferenceError> {
    let mut views = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let name = name.as_ref();
        if views.iter().any(|(n, _)| n == name) {
            return Err(InferenceError::Encode(format!(
                "duplicate tensor name {name:?}"
            )));
        }
        let view = safetensors::tensor::TensorView::new(
            t.dtype.to_safetensors(),
            t.shape.clone(),
            &t.data,
        )
        .map_err(|e| InferenceError::Encode(format!("tensor {name:?}: {e}")))?;
        views.push((name.to_string(), view));
    }
    safetensors::serialize(views, None).map_err(|e| InferenceError::Encode(e.to_string()))
}

/// Decodes safetensors bytes into named tensors, sorted by name. Any malformed document, an
/// unsupported dtype, or a BOOL element other than 0/1 is [`InferenceError::InputDecode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, InferenceError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| InferenceError::InputDecode(format!("not a safetensors document: {e}")))?;
    let mut out = Vec::with_capacity(st.len());
    for (name, view) in st.tensors() {
        let dtype = DType::from_safetensors(view.dtype()).ok_or_else(|| {
            InferenceError::InputDecode(format!(
                "tensor {name:?} has unsupported dtype {:?}",
                view.dtype()
            ))
        })?;
        if dtype == DType::Bool && view.data().iter().any(|&b| b > 1) {
            return Err(InferenceError::InputDecode(format!(
                "tensor {name:?} is BOOL but holds bytes other than 0 and 1"
            )));
        }
        let tensor = Tensor::checked(dtype, view.shape().to_vec(), view.data().to_vec())?;
        out.push((name, tensor));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// A JSON view of safetensors bytes for people and REST clients:
/// `{"<name>": {"dtype": "F32", "shape": [1, 10], "values": [...]}}`.
pub fn describe(bytes: &[u8]) -> Result<Value, InferenceError> {
    let mut map = Map::new();
    for (name, t) in decode(bytes)? {
        map.insert(
            name,
            json!({ "dtype": t.dtype.as_str(), "shape": t.shape, "values": t.values_json() }),
        );
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_is_deterministic_and_order_independent() {
        let a = Tensor::from_f32(vec![1, 2], &[1.0, -2.5]).unwrap();
        let b = Tensor::from_i64(vec![2], &[7, -1]).unwrap();
        let one = encode(&[("x", a.clone()), ("label", b.clone())]).unwrap();
        let two = encode(&[("label", b), ("x", a)]).unwrap();
        assert_eq!(one, two);
        let back = decode(&one).unwrap();
        assert_eq!(back[0].0, "label");
        assert_eq!(back[0].1.to_i64().unwrap(), vec![7, -1]);
        assert_eq!(back[1].1.to_f32().unwrap(), vec![1.0, -2.5]);
        // Re-encoding the decoded tensors gives the same bytes.
        assert_eq!(encode(&back).unwrap(), one);
    }

    #[test]
    fn decode_rejects_garbage_and_truncation() {
        assert!(matches!(
            decode(b"hello"),
            Err(InferenceError::InputDecode(_))
        ));
        let good = encode(&[("x", Tensor::from_f32(vec![4], &[1.0; 4]).unwrap())]).unwrap();
        let cut = &good[..good.len() - 1];
        assert!(matches!(decode(cut), Err(InferenceError::InputDecode(_))));
    }

    #[test]
    fn bool_must_be_zero_or_one() {
        let t = Tensor::checked(DType::Bool, vec![2], vec![1, 2]).unwrap();
        let bytes = encode(&[("b", t)]).unwrap();
        let err = decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("BOOL"), "{err}");
    }

    #[test]
    fn checked_rejects_wrong_length_and_duplicates() {
        assert!(Tensor::checked(DType::F32, vec![2, 2], vec![0; 15]).is_err());
        let t = Tensor::from_f32(vec![1], &[0.0]).unwrap();
        assert!(encode(&[("a", t.clone()), ("a", t)]).is_err());
    }

    #[test]
    fn describe_gives_values() {
        let bytes = encode(&[
            ("p", Tensor::from_f32(vec![1, 2], &[0.25, 0.75]).unwrap()),
            ("label", Tensor::from_i64(vec![1], &[3]).unwrap()),
        ])
        .unwrap();
        let v = describe(&bytes).unwrap();
        assert_eq!(v["label"]["dtype"], "I64");
        assert_eq!(v["label"]["values"][0], 3);
        assert_eq!(v["p"]["shape"], json!([1, 2]));
        assert_eq!(v["p"]["values"][1], 0.75);
    }
}
