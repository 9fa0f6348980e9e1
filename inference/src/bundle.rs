//! Model bundles: a content-addressed manifest (canonical JSON) naming a model's kind, its parts
//! (ONNX graphs, tokenizer, labels...) by sha256, and the parameters its kind needs.
//!
//! The registry stores the manifest's sha256 and URI. [`BundleCache::fetch`] fetches the manifest,
//! checks its hash, parses it, then fetches each part from beside the manifest (its `path` is
//! relative to the manifest's URI) and checks each part's hash; every file is cached by hash. A
//! registered raw `.onnx` file (the first protocol version) is read as a `tensor` bundle of one
//! part, so models registered before bundles keep working.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{InferenceError, ModelCache};

/// The `format` every manifest carries.
pub const BUNDLE_FORMAT: &str = "deepnode-bundle/1";

/// The largest manifest accepted, in bytes (a manifest names files; it does not hold them).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// What a bundle runs: one task kind per workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Raw safetensors in, safetensors out (the first protocol version).
    Tensor,
    /// Chat or prompt in, greedy-decoded text out.
    TextGeneration,
    /// Text in, a pooled, normalized vector out.
    Embeddings,
    /// 16 kHz WAV in, transcript out.
    SpeechRecognition,
    /// PNG/JPEG in, lines of text out.
    Ocr,
    /// PNG/JPEG in, top-5 labels out.
    ImageClassification,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 6] = [
        Kind::Tensor,
        Kind::TextGeneration,
        Kind::Embeddings,
        Kind::SpeechRecognition,
        Kind::Ocr,
        Kind::ImageClassification,
    ];

    /// The manifest's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tensor => "tensor",
            Kind::TextGeneration => "text-generation",
            Kind::Embeddings => "embeddings",
            Kind::SpeechRecognition => "speech-recognition",
            Kind::Ocr => "ocr",
            Kind::ImageClassification => "image-classification",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartRef {
    /// File name, relative to the manifest's URI (no `/`, no `..`).
    pub path: String,
    /// sha256 of the file's bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// The manifest of a bundle (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Human name of the model, e.g. `smollm2-135m-instruct`.
    pub name: String,
    /// The task kind.
    pub kind: Kind,
    /// Compute units one call charges (the registry's value governs payment).
    pub compute_units: u32,
    /// Files by role (`model`, `tokenizer`, `labels`, ...).
    pub parts: BTreeMap<String, PartRef>,
    /// Kind-specific pre/post-processing parameters.
    #[serde(default)]
    pub params: serde_json::Value,
    /// Kind-specific verification rule and tolerance.
    #[serde(default)]
    pub verify: serde_json::Value,
    /// Input and output schema, in words.
    #[serde(default)]
    pub io: BTreeMap<String, String>,
    /// Where the weights come from (package, version, sha256, licence).
    #[serde(default)]
    pub source: serde_json::Value,
}

impl Manifest {
    /// Parses and checks manifest bytes: JSON of this shape, the right format, well-formed part
    /// names and hashes. Errors name the field that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, InferenceError> {
        let bad = |reason: String| InferenceError::BundleInvalid { reason };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(bad(format!(
                "manifest of {} bytes exceeds {MAX_MANIFEST_BYTES}",
                bytes.len()
            )));
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("manifest is not a valid bundle manifest: {e}")))?;
        if m.format != BUNDLE_FORMAT {
            return Err(bad(format!(
                "manifest format {:?}, expected {BUNDLE_FORMAT:?}",
                m.format
            )));
        }
        if m.compute_units == 0 {
            return Err(bad("manifest compute_units is 0".into()));
        }
        for (role, part) in &m.parts {
            if part.path.is_empty()
                || part.path.contains('/')
                || part.path.contains('\\')
                || part.path.starts_with('.')
            {
                return Err(bad(format!(
                    "part {role}: path {:?} must be a plain file name beside the manifest",
                    part.path
                )));
            }
            crate::parse_sha256(&part.sha256).map_err(|_| {
                bad(format!(
                    "part {role}: sha256 {:?} is not 64 hex digits",
                    part.sha256
                ))
            })?;
        }
        Ok(m)
    }

    /// The canonical bytes of this manifest: keys sorted, no whitespace (what recipes write and
    /// what `sha256` should be taken of when publishing).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // serde_json::Value keeps object keys in a BTreeMap (sorted) without `preserve_order`.
        let value = serde_json::to_value(self).expect("a manifest always serializes");
        serde_json::to_vec(&value).expect("a JSON value always serializes")
    }

    /// A string parameter of `params`, or an error naming it.
    pub fn param_str(&self, key: &str) -> Result<&str, InferenceError> {
        self.params
            .get(key)
            .and_then(|v| v.as_str())
            .ok_or_else(|| self.missing_param(key, "a string"))
    }

    /// An integer parameter of `params`, or an error naming it.
    pub fn param_u64(&self, key: &str) -> Result<u64, InferenceError> {
        self.params
            .get(key)
            .and_then(|v| v.as_u64())
            .ok_or_else(|| self.missing_param(key, "a non-negative integer"))
    }

    /// A number parameter of `params`, or an error naming it.
    pub fn param_f64(&self, key: &str) -> Result<f64, InferenceError> {
        self.params
            .get(key)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| self.missing_param(key, "a number"))
    }

    /// A number of `verify`, or an error naming it.
    pub fn verify_f64(&self, key: &str) -> Result<f64, InferenceError> {
        self.verify
            .get(key)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| InferenceError::BundleInvalid {
                reason: format!("bundle {}: verify.{key} must be a number", self.name),
            })
    }

    fn missing_param(&self, key: &str, what: &str) -> InferenceError {
        InferenceError::BundleInvalid {
            reason: format!("bundle {}: params.{key} must be {what}", self.name),
        }
    }
}

/// A bundle whose manifest and parts are on local disk, every one verified by sha256.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// sha256 of the manifest bytes (what the registry stores).
    pub sha256: [u8; 32],
    /// Verified local copies of the parts, by role.
    pub files: BTreeMap<String, PathBuf>,
}

impl Bundle {
    /// The local file of part `role`, or an error naming the missing part.
    pub fn part(&self, role: &str) -> Result<&Path, InferenceError> {
        self.files
            .get(role)
            .map(PathBuf::as_path)
            .ok_or_else(|| InferenceError::BundlePart {
                part: role.to_string(),
                reason: format!(
                    "bundle {} ({}) has no part {role:?} (parts: {})",
                    self.manifest.name,
                    self.manifest.kind,
                    self.files.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
    }

    /// Reads part `role` as UTF-8 text.
    pub fn part_text(&self, role: &str) -> Result<String, InferenceError> {
        let path = self.part(role)?;
        std::fs::read_to_string(path).map_err(|e| InferenceError::BundlePart {
            part: role.to_string(),
            reason: format!("reading {}: {e}", path.display()),
        })
    }

    /// Builds a bundle from a local directory holding `manifest.json` and its parts, checking
    /// every hash (what a developer runs before publishing, and what tests load).
    pub fn open_dir(dir: &Path) -> Result<Bundle, InferenceError> {
        let manifest_path = dir.join("manifest.json");
        let bytes = std::fs::read(&manifest_path).map_err(|e| InferenceError::Fetch {
            uri: manifest_path.display().to_string(),
            reason: e.to_string(),
        })?;
        let manifest = Manifest::parse(&bytes)?;
        let mut files = BTreeMap::new();
        for (role, part) in &manifest.parts {
            let path = dir.join(&part.path);
            let actual =
                crate::cache::hash_file(&path).map_err(|e| InferenceError::BundlePart {
                    part: role.clone(),
                    reason: format!("reading {}: {e}", path.display()),
                })?;
            if hex::encode(actual) != part.sha256.trim_start_matches("0x").to_ascii_lowercase() {
                return Err(InferenceError::BundlePart {
                    part: role.clone(),
                    reason: format!(
                        "{} has sha256 {}, the manifest says {}",
                        path.display(),
                        hex::encode(actual),
                        part.sha256
                    ),
                });
            }
            files.insert(role.clone(), path);
        }
        Ok(Bundle {
            manifest,
            sha256: crate::sha256(&bytes),
            files,
        })
    }
}

/// Fetches bundles by URI and sha256 into a [`ModelCache`] directory.
#[derive(Debug, Clone)]
pub struct BundleCache {
    cache: ModelCache,
}

impl BundleCache {
    /// A bundle cache over `cache` (its directory, size limit and HTTP timeout).
    pub fn new(cache: ModelCache) -> BundleCache {
        BundleCache { cache }
    }

    /// The underlying content-addressed file cache.
    pub fn files(&self) -> &ModelCache {
        &self.cache
    }

    /// Fetches the manifest at `uri` (checked against `sha256`), then every part it names
    /// (checked against the part's sha256). A registered raw ONNX file becomes a `tensor`
    /// bundle with the one part `model`. Blocking: call from `spawn_blocking` in async code.
    pub fn fetch(&self, uri: &str, sha256: [u8; 32]) -> Result<Bundle, InferenceError> {
        let path = self.cache.fetch(uri, sha256)?;
        let bytes = std::fs::read(&path).map_err(|e| InferenceError::Fetch {
            uri: uri.to_string(),
            reason: format!("reading cached {}: {e}", path.display()),
        })?;
        if !looks_like_json(&bytes) {
            return Ok(legacy_onnx_bundle(uri, sha256, path, bytes.len() as u64));
        }
        let manifest = Manifest::parse(&bytes)?;
        let base = match uri.rfind('/') {
            Some(i) => &uri[..=i],
            None => "",
        };
        let mut files = BTreeMap::new();
        for (role, part) in &manifest.parts {
            let part_uri = format!("{base}{}", part.path);
            let want =
                crate::parse_sha256(&part.sha256).map_err(|_| InferenceError::BundlePart {
                    part: role.clone(),
                    reason: format!("sha256 {:?} is not 64 hex digits", part.sha256),
                })?;
            let local =
                self.cache
                    .fetch(&part_uri, want)
                    .map_err(|e| InferenceError::BundlePart {
                        part: role.clone(),
                        reason: format!("bundle {}: {e}", manifest.name),
                    })?;
            files.insert(role.clone(), local);
        }
        Ok(Bundle {
            manifest,
            sha256,
            files,
        })
    }
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

fn legacy_onnx_bundle(uri: &str, sha256: [u8; 32], path: PathBuf, bytes: u64) -> Bundle {
    let name = uri
        .rsplit('/')
        .next()
        .unwrap_or(uri)
        .trim_end_matches(".onnx")
        .to_string();
    let mut parts = BTreeMap::new();
    parts.insert(
        "model".to_string(),
        PartRef {
            path: "model.onnx".into(),
            sha256: hex::encode(sha256),
            bytes,
        },
    );
    let mut files = BTreeMap::new();
    files.insert("model".to_string(), path);
    Bundle {
        manifest: Manifest {
            format: BUNDLE_FORMAT.into(),
            name,
            kind: Kind::Tensor,
            compute_units: 1,
            parts,
            params: serde_json::Value::Object(Default::default()),
            verify: serde_json::Value::Object(Default::default()),
            io: BTreeMap::new(),
            source: serde_json::Value::Null,
        },
        sha256,
        files,
    }
}
