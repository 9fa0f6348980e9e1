//! The process-wide ONNX Runtime: which shared library is loaded (ort's load-dynamic), and the
//! execution devices a model can run on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::ep::ExecutionProvider as _;

use crate::InferenceError;

/// File name of the pinned ONNX Runtime library (from the onnxruntime 1.31.1 PyPI wheel).
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// Environment variable that overrides where the library is loaded from.
pub const ORT_DYLIB_PATH_ENV: &str = "ORT_DYLIB_PATH";

/// Where `make deps-ort` (tools/setup-ort.sh) puts the library in this workspace.
pub fn default_library_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".deps")
        .join("onnxruntime")
        .join(ORT_LIBRARY_FILE)
}

/// A library can be loaded only once per process; this remembers the loaded one.
static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// The loaded ONNX Runtime. Cheap to clone; every clone shares one environment.
#[derive(Clone)]
pub struct Runtime {
    env: Environment,
    library: PathBuf,
    cuda_built_in: bool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .field("cuda_built_in", &self.cuda_built_in)
            .finish()
    }
}

impl Runtime {
    /// Loads ONNX Runtime, or returns the already loaded one. The library is, in order: `lib`,
    /// `$ORT_DYLIB_PATH`, then `<workspace>/.deps/onnxruntime/libonnxruntime.so.1.31.1`.
    ///
    /// Safe to call many times: the first successful call loads the library, later calls return
    /// the same runtime (with a warning if they asked for a different file, since a process can
    /// hold only one ONNX Runtime). A failed call leaves nothing behind, so it can be retried.
    pub fn init(lib: Option<&Path>) -> Result<Runtime, InferenceError> {
        let path = resolve_library(lib);
        let mut slot = RUNTIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(rt) = slot.as_ref() {
            if !same_file(&rt.library, &path) {
                tracing::warn!(
                    loaded = %rt.library.display(),
                    requested = %path.display(),
                    "ONNX Runtime is already loaded in this process; ignoring the other library path"
                );
            }
            return Ok(rt.clone());
        }
        if !path.is_file() {
            return Err(InferenceError::RuntimeMissing { path });
        }
        let load_err = |reason: String| InferenceError::RuntimeLoad {
            path: path.clone(),
            reason,
        };
        let env = ort::init_from(&path)
            .map_err(|e| load_err(e.to_string()))?
            .with_name("deepnode")
            .with_telemetry(false)
            .build()
            .map_err(|e| load_err(e.to_string()))?;
        let cuda_built_in = ort::ep::CUDA::is_available().unwrap_or(false);
        tracing::info!(library = %path.display(), cuda_built_in, "ONNX Runtime loaded");
        let rt = Runtime {
            env,
            library: path,
            cuda_built_in,
        };
        *slot = Some(rt.clone());
        Ok(rt)
    }

    /// The library file this process loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Whether the loaded library was built with the CUDA execution provider (the
    /// onnxruntime-gpu wheel). Even then a session may still fail to use it (no GPU, no driver).
    pub fn cuda_built_in(&self) -> bool {
        self.cuda_built_in
    }

    pub(crate) fn env(&self) -> &Environment {
        &self.env
    }
}

fn resolve_library(lib: Option<&Path>) -> PathBuf {
    if let Some(p) = lib {
        return p.to_path_buf();
    }
    match std::env::var_os(ORT_DYLIB_PATH_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default_library_path(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Where a model should run, as asked by the operator (`--device auto|cpu|cuda`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// CUDA when the library and machine support it, otherwise CPU (with one warning).
    #[default]
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA or fail.
    Cuda,
}

impl Device {
    /// `auto`, `cpu` or `cuda`.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--device` value that is not `auto`, `cpu` or `cuda`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device {0:?}: expected auto, cpu or cuda")]
pub struct ParseDeviceError(pub String);

impl FromStr for Device {
    type Err = ParseDeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            _ => Err(ParseDeviceError(s.to_string())),
        }
    }
}

/// The execution provider a loaded model actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// The CUDA execution provider (CPU still runs nodes CUDA does not support).
    Cuda,
}

impl Provider {
    /// `cpu` or `cuda`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses_and_prints() {
        for d in [Device::Auto, Device::Cpu, Device::Cuda] {
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
        assert_eq!("CUDA".parse::<Device>().unwrap(), Device::Cuda);
        let err = "tpu".parse::<Device>().unwrap_err();
        assert!(err.to_string().contains("auto, cpu or cuda"), "{err}");
    }

    #[test]
    fn explicit_path_wins() {
        let p = Path::new("/nonexistent/lib.so");
        assert_eq!(resolve_library(Some(p)), p);
    }
}
