//! A loaded ONNX model: one ONNX Runtime session, the input contract it enforces on task
//! inputs, and single and batched runs over canonical safetensors bytes.
//!
//! `ort`'s `Session::run` takes `&mut self`, so a [`Model`] is owned by one worker thread at a
//! time (it is `Send`); run several models (one per thread) for parallelism.

use std::path::{Path, PathBuf};
use std::sync::Once;

use ort::session::Session;
use ort::value::{DynValue, TensorElementType, ValueType};

use crate::tensor::{self, DType, Tensor};
use crate::{sha256, Device, InferenceError, Provider, Runtime};

/// Default limit on one task's input size ([`Model::set_max_input_bytes`]).
pub const DEFAULT_MAX_INPUT_BYTES: usize = 1 << 20;

static AUTO_FALLBACK_WARNING: Once = Once::new();

/// Name, dtype and shape of a model input (`-1` marks a dynamic dimension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Input name in the ONNX graph.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions, `-1` where any size is accepted.
    pub shape: Vec<i64>,
}

impl TensorSpec {
    fn check(&self, t: &Tensor) -> Result<(), InferenceError> {
        if t.dtype != self.dtype {
            return Err(InferenceError::InputDtype {
                tensor: self.name.clone(),
                expected: self.dtype,
                got: t.dtype,
            });
        }
        let fits = t.shape.len() == self.shape.len()
            && self.shape.iter().zip(&t.shape).all(|(&want, &got)| {
                if want < 0 {
                    got >= 1
                } else {
                    got as u64 == want as u64
                }
            });
        if !fits {
            return Err(InferenceError::InputShape {
                tensor: self.name.clone(),
                expected: self.shape.clone(),
                got: t.shape.clone(),
            });
        }
        Ok(())
    }

    fn batch_dim_is_dynamic(&self) -> bool {
        self.shape.first().is_some_and(|&d| d < 0)
    }
}

/// An ONNX model loaded into an ONNX Runtime session.
pub struct Model {
    session: Session,
    inputs: Vec<TensorSpec>,
    outputs: Vec<String>,
    provider: Provider,
    path: PathBuf,
    max_input_bytes: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("provider", &self.provider)
            .field("max_input_bytes", &self.max_input_bytes)
            .finish()
    }
}

impl Model {
    /// Loads the model at `path` on `device`, with `threads` intra-op threads (ONNX Runtime's
    /// default when `None`). Does not check the file's hash: use [`Model::load_verified`] or
    /// [`crate::ModelCache::fetch`] for bytes that must match a registered sha256.
    pub fn load(
        runtime: &Runtime,
        path: impl AsRef<Path>,
        device: Device,
        threads: Option<usize>,
    ) -> Result<Model, InferenceError> {
        let path = path.as_ref();
        let bytes = read_model(path)?;
        Model::from_bytes(runtime, path, &bytes, device, threads)
    }

    /// Like [`Model::load`], but first checks that the file's sha256 is `sha256`; the session is
    /// built from exactly the bytes that were checked.
    pub fn load_verified(
        runtime: &Runtime,
        path: impl AsRef<Path>,
        sha256_expected: [u8; 32],
        device: Device,
        threads: Option<usize>,
    ) -> Result<Model, InferenceError> {
        let path = path.as_ref();
        let bytes = read_model(path)?;
        let actual = sha256(&bytes);
        if actual != sha256_expected {
            return Err(InferenceError::HashMismatch {
                uri: path.display().to_string(),
                expected: hex::encode(sha256_expected),
                actual: hex::encode(actual),
            });
        }
        Model::from_bytes(runtime, path, &bytes, device, threads)
    }

    fn from_bytes(
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
        device: Device,
        threads: Option<usize>,
    ) -> Result<Model, InferenceError> {
        let (session, provider) = session_from_bytes(runtime, path, bytes, device, threads)?;
        let load_err = |reason: String| InferenceError::ModelLoad {
            path: path.to_path_buf(),
            reason,
        };
        let mut inputs = Vec::new();
        for outlet in session.inputs() {
            let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
                return Err(load_err(format!(
                    "input {:?} is not a tensor ({})",
                    outlet.name(),
                    outlet.dtype()
                )));
            };
            let dtype = dtype_from_ort(*ty).ok_or_else(|| {
                load_err(format!(
                    "input {:?} has unsupported element type {ty:?}",
                    outlet.name()
                ))
            })?;
            inputs.push(TensorSpec {
                name: outlet.name().to_string(),
                dtype,
                shape: shape.to_vec(),
            });
        }
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        if inputs.is_empty() || outputs.is_empty() {
            return Err(load_err("the model has no inputs or no outputs".into()));
        }
        tracing::info!(
            model = %path.display(),
            %provider,
            inputs = ?inputs,
            outputs = ?outputs,
            "model loaded"
        );
        Ok(Model {
            session,
            inputs,
            outputs,
            provider,
            path: path.to_path_buf(),
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
        })
    }

    /// The model's inputs, in graph order.
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    /// The model's output names, in graph order. Every run returns all of them.
    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    /// The execution provider this model runs on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Largest accepted input, in bytes.
    pub fn max_input_bytes(&self) -> usize {
        self.max_input_bytes
    }

    /// Sets the largest accepted input (default [`DEFAULT_MAX_INPUT_BYTES`]).
    pub fn set_max_input_bytes(&mut self, max: usize) {
        self.max_input_bytes = max;
    }

    /// Checks task input bytes against the model: size, safetensors decoding, tensor names,
    /// dtypes and shapes. Returns the tensors in the model's input order.
    pub fn validate(&self, input: &[u8]) -> Result<Vec<Tensor>, InferenceError> {
        if input.len() > self.max_input_bytes {
            return Err(InferenceError::InputTooLarge {
                size: input.len(),
                max: self.max_input_bytes,
            });
        }
        let mut decoded = tensor::decode(input)?;
        let mut expected: Vec<&str> = self.inputs.iter().map(|s| s.name.as_str()).collect();
        expected.sort_unstable();
        if decoded.len() != expected.len()
            || decoded.iter().zip(&expected).any(|((n, _), e)| n != e)
        {
            return Err(InferenceError::InputTensors {
                expected: self.inputs.iter().map(|s| s.name.clone()).collect(),
                got: decoded.into_iter().map(|(n, _)| n).collect(),
            });
        }
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let pos = decoded
                .iter()
                .position(|(n, _)| *n == spec.name)
                .expect("names were checked above");
            let (_, t) = decoded.swap_remove(pos);
            spec.check(&t)?;
            ordered.push(t);
        }
        Ok(ordered)
    }

    /// Runs one task: validates `input` (safetensors bytes) and returns the canonical
    /// safetensors bytes of all outputs.
    pub fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        let tensors = self.validate(input)?;
        let outputs = self.run_tensors(&tensors)?;
        tensor::encode(&outputs)
    }

    /// Runs many tasks. Each input is validated on its own (a bad one gets its own error); the
    /// good ones are concatenated along dimension 0 and run in one session call, then split
    /// back per task. The results are the same bytes as [`Model::run`] on each input. When the
    /// model cannot be batched (fixed batch dimension, differing trailing shapes, outputs
    /// without a batch dimension) or the batched call fails, tasks run one by one.
    pub fn run_batch(&mut self, inputs: &[&[u8]]) -> Vec<Result<Vec<u8>, InferenceError>> {
        let mut validated: Vec<Option<Result<Vec<Tensor>, InferenceError>>> =
            inputs.iter().map(|b| Some(self.validate(b))).collect();
        let good: Vec<usize> = (0..inputs.len())
            .filter(|&i| matches!(validated[i], Some(Ok(_))))
            .collect();

        let mut batched: Option<Vec<Vec<u8>>> = None;
        if good.len() >= 2 {
            let tasks: Vec<&[Tensor]> = good
                .iter()
                .filter_map(|&i| validated[i].as_ref().and_then(|r| r.as_ref().ok()))
                .map(Vec::as_slice)
                .collect();
            if self.can_concat(&tasks) {
                match self.run_concat(&tasks) {
                    Ok(Some(outs)) => batched = Some(outs),
                    Ok(None) => {
                        tracing::debug!(model = %self.path.display(), "outputs have no batch dimension; running tasks one by one")
                    }
                    Err(e) => {
                        tracing::warn!(model = %self.path.display(), error = %e, tasks = tasks.len(), "batched run failed; running tasks one by one")
                    }
                }
            }
        }

        let mut batched = batched.map(|v| v.into_iter());
        validated
            .iter_mut()
            .map(|slot| match slot.take().expect("each slot is taken once") {
                Err(e) => Err(e),
                Ok(tensors) => match batched.as_mut() {
                    Some(it) => it.next().ok_or_else(|| {
                        InferenceError::Runtime("batch result count mismatch".into())
                    }),
                    None => self
                        .run_tensors(&tensors)
                        .and_then(|outs| tensor::encode(&outs)),
                },
            })
            .collect()
    }

    fn can_concat(&self, tasks: &[&[Tensor]]) -> bool {
        self.inputs.iter().enumerate().all(|(k, spec)| {
            spec.batch_dim_is_dynamic()
                && tasks
                    .windows(2)
                    .all(|w| w[0][k].shape[1..] == w[1][k].shape[1..])
        })
    }

    /// One session call over the concatenated tasks; `None` when an output cannot be split.
    fn run_concat(&mut self, tasks: &[&[Tensor]]) -> Result<Option<Vec<Vec<u8>>>, InferenceError> {
        let rows: Vec<usize> = tasks.iter().map(|t| t[0].shape[0]).collect();
        let total: usize = rows.iter().sum();
        let mut joined = Vec::with_capacity(self.inputs.len());
        for (k, spec) in self.inputs.iter().enumerate() {
            let mut shape = tasks[0][k].shape.clone();
            shape[0] = total;
            let data: Vec<u8> = tasks
                .iter()
                .flat_map(|t| t[k].data.iter().copied())
                .collect();
            joined.push(Tensor {
                dtype: spec.dtype,
                shape,
                data,
            });
        }
        let outputs = self.run_tensors(&joined)?;
        if outputs.iter().any(|(_, t)| t.shape.first() != Some(&total)) {
            return Ok(None);
        }
        let mut per_task = Vec::with_capacity(tasks.len());
        let mut start = 0usize;
        for &n in &rows {
            let mut task_outputs = Vec::with_capacity(outputs.len());
            for (name, t) in &outputs {
                let row_bytes = t.data.len() / total;
                let mut shape = t.shape.clone();
                shape[0] = n;
                let data = t.data[start * row_bytes..(start + n) * row_bytes].to_vec();
                task_outputs.push((
                    name.as_str(),
                    Tensor {
                        dtype: t.dtype,
                        shape,
                        data,
                    },
                ));
            }
            per_task.push(tensor::encode(&task_outputs)?);
            start += n;
        }
        Ok(Some(per_task))
    }

    fn run_tensors(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, InferenceError> {
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for (spec, t) in self.inputs.iter().zip(inputs) {
            values.push((spec.name.clone(), to_ort(t)?));
        }
        let outputs = self
            .session
            .run(values)
            .map_err(|e| InferenceError::Runtime(e.to_string()))?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let value = outputs.get(name.as_str()).ok_or_else(|| {
                InferenceError::Runtime(format!("output {name:?} missing from the run"))
            })?;
            result.push((name.clone(), from_ort(name, value)?));
        }
        Ok(result)
    }
}

/// Builds an ONNX Runtime session for the graph bytes `bytes` (read from `path`, named in errors)
/// on `device` with `threads` intra-op threads. `Device::Auto` tries CUDA and falls back to the
/// CPU with one warning per process. Inter-op threads are 1: with them, every model in the
/// catalogue gave byte-identical outputs at 1 and 2 intra-op threads here.
pub fn session_from_bytes(
    runtime: &Runtime,
    path: &Path,
    bytes: &[u8],
    device: Device,
    threads: Option<usize>,
) -> Result<(Session, Provider), InferenceError> {
    if device != Device::Auto {
        return session_on(runtime, path, bytes, device, threads);
    }
    let reason = if runtime.cuda_built_in() {
        match session_on(runtime, path, bytes, Device::Cuda, threads) {
            Ok(found) => return Ok(found),
            Err(e) => e.to_string(),
        }
    } else {
        cuda_missing_reason(runtime)
    };
    AUTO_FALLBACK_WARNING.call_once(|| {
        tracing::warn!(%reason, "device auto: CUDA unavailable, running models on CPU");
    });
    tracing::debug!(%reason, model = %path.display(), "device auto: using CPU");
    session_on(runtime, path, bytes, Device::Cpu, threads)
}

/// [`session_from_bytes`] for a file.
pub fn session_from_file(
    runtime: &Runtime,
    path: &Path,
    device: Device,
    threads: Option<usize>,
) -> Result<(Session, Provider), InferenceError> {
    let bytes = read_model(path)?;
    session_from_bytes(runtime, path, &bytes, device, threads)
}

fn session_on(
    runtime: &Runtime,
    path: &Path,
    bytes: &[u8],
    device: Device,
    threads: Option<usize>,
) -> Result<(Session, Provider), InferenceError> {
    let load_err = |reason: String| InferenceError::ModelLoad {
        path: path.to_path_buf(),
        reason,
    };
    let mut builder = Session::builder(runtime.env()).map_err(|e| load_err(e.to_string()))?;
    builder = builder
        .with_inter_threads(1)
        .map_err(|e| load_err(e.to_string()))?;
    if let Some(n) = threads {
        builder = builder
            .with_intra_threads(n)
            .map_err(|e| load_err(e.to_string()))?;
    }
    let provider = if device == Device::Cuda {
        register_cuda(runtime, &mut builder)
            .map_err(|reason| InferenceError::DeviceUnavailable { device, reason })?;
        Provider::Cuda
    } else {
        Provider::Cpu
    };
    let session = builder.commit_from_memory(bytes).map_err(|e| {
        let reason = e.to_string();
        if provider == Provider::Cuda {
            InferenceError::DeviceUnavailable {
                device,
                reason: format!("creating a CUDA session for {}: {reason}", path.display()),
            }
        } else {
            load_err(reason)
        }
    })?;
    Ok((session, provider))
}

fn read_model(path: &Path) -> Result<Vec<u8>, InferenceError> {
    std::fs::read(path).map_err(|e| InferenceError::ModelLoad {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn cuda_missing_reason(runtime: &Runtime) -> String {
    format!(
        "the loaded ONNX Runtime ({}) was built without the CUDA execution provider; \
         install the GPU build with `DN_ORT_GPU=1 make deps-ort` and set ORT_DYLIB_PATH to it",
        runtime.library().display()
    )
}

fn register_cuda(
    runtime: &Runtime,
    builder: &mut ort::session::builder::SessionBuilder,
) -> Result<(), String> {
    if !runtime.cuda_built_in() {
        return Err(cuda_missing_reason(runtime));
    }
    ort::ep::CUDA::default()
        .build()
        .error_on_failure()
        .register(builder)
        .map_err(|e| format!("registering the CUDA execution provider failed: {e}"))
}

fn dtype_from_ort(ty: TensorElementType) -> Option<DType> {
    Some(match ty {
        TensorElementType::Float32 => DType::F32,
        TensorElementType::Float64 => DType::F64,
        TensorElementType::Int8 => DType::I8,
        TensorElementType::Int16 => DType::I16,
        TensorElementType::Int32 => DType::I32,
        TensorElementType::Int64 => DType::I64,
        TensorElementType::Uint8 => DType::U8,
        TensorElementType::Uint16 => DType::U16,
        TensorElementType::Uint32 => DType::U32,
        TensorElementType::Uint64 => DType::U64,
        TensorElementType::Bool => DType::Bool,
        _ => return None,
    })
}

fn to_ort(t: &Tensor) -> Result<DynValue, InferenceError> {
    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    macro_rules! typed {
        ($ty:ty) => {{
            const N: usize = std::mem::size_of::<$ty>();
            let values: Vec<$ty> = t
                .data
                .chunks_exact(N)
                .map(|c| <$ty>::from_le_bytes(c.try_into().expect("chunks_exact yields N bytes")))
                .collect();
            ort::value::Tensor::from_array((shape, values)).map(|v| v.into_dyn())
        }};
    }
    let value = match t.dtype {
        DType::F32 => typed!(f32),
        DType::F64 => typed!(f64),
        DType::I8 => typed!(i8),
        DType::I16 => typed!(i16),
        DType::I32 => typed!(i32),
        DType::I64 => typed!(i64),
        DType::U8 => typed!(u8),
        DType::U16 => typed!(u16),
        DType::U32 => typed!(u32),
        DType::U64 => typed!(u64),
        DType::Bool => {
            let values: Vec<bool> = t.data.iter().map(|&b| b != 0).collect();
            ort::value::Tensor::from_array((shape, values)).map(|v| v.into_dyn())
        }
    };
    value.map_err(|e| InferenceError::Runtime(format!("building input tensor: {e}")))
}

fn from_ort(name: &str, value: &DynValue) -> Result<Tensor, InferenceError> {
    let err = |what: String| InferenceError::Runtime(format!("output {name:?}: {what}"));
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(err(format!("is not a tensor ({})", value.dtype())));
    };
    let dtype =
        dtype_from_ort(*ty).ok_or_else(|| err(format!("unsupported element type {ty:?}")))?;
    macro_rules! typed {
        ($ty:ty) => {{
            let (shape, data) = value
                .try_extract_tensor::<$ty>()
                .map_err(|e| err(e.to_string()))?;
            (
                shape.to_vec(),
                data.iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            )
        }};
    }
    let (shape, data) = match dtype {
        DType::F32 => typed!(f32),
        DType::F64 => typed!(f64),
        DType::I8 => typed!(i8),
        DType::I16 => typed!(i16),
        DType::I32 => typed!(i32),
        DType::I64 => typed!(i64),
        DType::U8 => typed!(u8),
        DType::U16 => typed!(u16),
        DType::U32 => typed!(u32),
        DType::U64 => typed!(u64),
        DType::Bool => {
            let (shape, data) = value
                .try_extract_tensor::<bool>()
                .map_err(|e| err(e.to_string()))?;
            (shape.to_vec(), data.iter().map(|&b| u8::from(b)).collect())
        }
    };
    let shape = shape
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| err(format!("negative dimension {d}"))))
        .collect::<Result<Vec<usize>, _>>()?;
    Tensor::checked(dtype, shape, data).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn model_is_send() {
        assert_send::<Model>();
    }

    #[test]
    fn spec_checks_dtype_then_shape() {
        let spec = TensorSpec {
            name: "input".into(),
            dtype: DType::F32,
            shape: vec![-1, 64],
        };
        assert!(spec
            .check(&Tensor::from_f32(vec![3, 64], &[0.0; 192]).unwrap())
            .is_ok());
        let zero_rows = Tensor::checked(DType::F32, vec![0, 64], vec![]).unwrap();
        assert!(matches!(
            spec.check(&zero_rows),
            Err(InferenceError::InputShape { .. })
        ));
        let wrong = Tensor::from_f32(vec![1, 63], &[0.0; 63]).unwrap();
        assert!(matches!(
            spec.check(&wrong),
            Err(InferenceError::InputShape { .. })
        ));
        let ints = Tensor::from_i64(vec![1, 64], &[0; 64]).unwrap();
        assert!(matches!(
            spec.check(&ints),
            Err(InferenceError::InputDtype { .. })
        ));
    }
}
