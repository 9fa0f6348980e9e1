//! The model cache: model bytes fetched by URI (file://, plain path, http(s)://), stored under
//! their sha256 and verified against the registered hash before anyone can use them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::InferenceError;

/// Default limit on a model's size.
pub const DEFAULT_MAX_MODEL_BYTES: u64 = 2 << 30;
/// Default timeout of one HTTP fetch (connect + transfer).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(120);

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory of verified model files named `<hex sha256>.onnx`.
#[derive(Debug, Clone)]
pub struct ModelCache {
    dir: PathBuf,
    max_model_bytes: u64,
    http_timeout: Duration,
}

impl ModelCache {
    /// Opens (creating if needed) the cache directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<ModelCache, InferenceError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| InferenceError::CacheDir {
            dir: dir.clone(),
            reason: format!("cannot create it: {e}"),
        })?;
        Ok(ModelCache {
            dir,
            max_model_bytes: DEFAULT_MAX_MODEL_BYTES,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
        })
    }

    /// Sets the largest model accepted, in bytes (default [`DEFAULT_MAX_MODEL_BYTES`]).
    pub fn with_max_model_bytes(mut self, max: u64) -> ModelCache {
        self.max_model_bytes = max;
        self
    }

    /// Sets the HTTP timeout (default [`DEFAULT_HTTP_TIMEOUT`]).
    pub fn with_http_timeout(mut self, timeout: Duration) -> ModelCache {
        self.http_timeout = timeout;
        self
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the model with this hash lives once fetched.
    pub fn path_for(&self, sha256: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.onnx", hex::encode(sha256)))
    }

    /// Returns the path of a verified copy of the model with hash `sha256`, fetching it from `uri`
    /// when the cache has no valid copy. `uri` is `file://<path>`, a plain path, or
    /// `http(s)://...`. Bytes are hashed while they stream into a temporary file in the cache
    /// directory and renamed into place only when the hash matches, so a cached file is always
    /// complete and verified; a cached file that no longer matches is replaced.
    ///
    /// Blocking (HTTP uses reqwest's blocking client): from async code, call it inside
    /// `tokio::task::spawn_blocking`.
    pub fn fetch(&self, uri: &str, sha256: [u8; 32]) -> Result<PathBuf, InferenceError> {
        let target = self.path_for(&sha256);
        if target.is_file() {
            match hash_file(&target) {
                Ok(actual) if actual == sha256 => {
                    tracing::debug!(path = %target.display(), "model cache hit");
                    return Ok(target);
                }
                Ok(actual) => {
                    tracing::warn!(
                        path = %target.display(),
                        actual = %hex::encode(actual),
                        "cached model does not match its hash; fetching it again"
                    );
                    let _ = std::fs::remove_file(&target);
                }
                Err(e) => {
                    tracing::warn!(path = %target.display(), error = %e, "cached model unreadable; fetching it again")
                }
            }
        }
        let fetch_err = |reason: String| InferenceError::Fetch {
            uri: uri.to_string(),
            reason,
        };
        tracing::info!(%uri, sha256 = %hex::encode(sha256), "fetching model");
        let reader = self.open(uri)?;
        let temp = self.dir.join(format!(
            ".{}.{}.{}.partial",
            hex::encode(sha256),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.store(reader, &temp).map_err(|e| match e {
            StoreError::Read(e) => fetch_err(format!("reading: {e}")),
            StoreError::TooLarge => fetch_err(format!(
                "model is larger than the limit of {} bytes",
                self.max_model_bytes
            )),
            StoreError::Write(e) => InferenceError::CacheDir {
                dir: self.dir.clone(),
                reason: format!("writing {}: {e}", temp.display()),
            },
        });
        let actual = match result {
            Ok(actual) => actual,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        if actual != sha256 {
            let _ = std::fs::remove_file(&temp);
            return Err(InferenceError::HashMismatch {
                uri: uri.to_string(),
                expected: hex::encode(sha256),
                actual: hex::encode(actual),
            });
        }
        std::fs::rename(&temp, &target).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            InferenceError::CacheDir {
                dir: self.dir.clone(),
                reason: format!("renaming into {}: {e}", target.display()),
            }
        })?;
        tracing::info!(%uri, path = %target.display(), "model cached");
        Ok(target)
    }

    fn open(&self, uri: &str) -> Result<Box<dyn Read>, InferenceError> {
        let fetch_err = |reason: String| InferenceError::Fetch {
            uri: uri.to_string(),
            reason,
        };
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let client = reqwest::blocking::Client::builder()
                .timeout(self.http_timeout)
                .build()
                .map_err(|e| fetch_err(format!("HTTP client: {e}")))?;
            let response = client
                .get(uri)
                .send()
                .map_err(|e| fetch_err(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(fetch_err(format!("HTTP status {status}")));
            }
            if let Some(len) = response.content_length() {
                if len > self.max_model_bytes {
                    return Err(fetch_err(format!(
                        "Content-Length {len} exceeds the limit of {} bytes",
                        self.max_model_bytes
                    )));
                }
            }
            return Ok(Box::new(response));
        }
        let path = if let Some(rest) = uri.strip_prefix("file://") {
            Path::new(rest)
        } else if uri.contains("://") {
            return Err(fetch_err(
                "unsupported URI scheme (use file://, a path, http:// or https://)".into(),
            ));
        } else {
            Path::new(uri)
        };
        let file =
            File::open(path).map_err(|e| fetch_err(format!("opening {}: {e}", path.display())))?;
        Ok(Box::new(file))
    }

    fn store(&self, mut reader: Box<dyn Read>, temp: &Path) -> Result<[u8; 32], StoreError> {
        let mut file = File::create(temp).map_err(StoreError::Write)?;
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::Read(e)),
            };
            total += n as u64;
            if total > self.max_model_bytes {
                return Err(StoreError::TooLarge);
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(StoreError::Write)?;
        }
        file.sync_all().map_err(StoreError::Write)?;
        Ok(hasher.finalize().into())
    }
}

enum StoreError {
    Read(io::Error),
    Write(io::Error),
    TooLarge,
}

pub(crate) fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}
