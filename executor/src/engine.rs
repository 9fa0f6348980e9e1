//! The model runtime seam: fetches each model bundle once (the manifest verified against its
//! on-chain sha256, every part against the manifest), keeps up to `--max-loaded-models` loaded
//! (least recently used out first), and turns a batch of task inputs into outcomes by kind.

use crate::cheat::{self, OutputDecl};
use crate::metrics as m;
use crate::outcome::{self, Outcome};
use crate::stream::TokenSink;
use alloy::primitives::{keccak256, B256, U256};
use inference::{BundleCache, Device, Kind, LoadOptions, Model, ModelCache, Runner, Runtime};
use protocol::codes::FailureCode;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the chain says about a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Registry id.
    pub id: u32,
    /// sha256 of the bundle manifest (or, for models registered before bundles, of the .onnx).
    pub sha256: B256,
    /// Where to fetch it.
    pub uri: String,
}

/// A model's declared outputs (TEST-ONLY cheating), `None` when its graph does not say.
type Declared = Option<Arc<Vec<OutputDecl>>>;

/// A loaded bundle: `tensor` bundles keep the raw session (the TEST-ONLY cheater reads its
/// declared outputs); every other kind is a [`Runner`].
enum Loaded {
    Tensor(Model),
    Kind(Box<dyn Runner>),
}

impl Loaded {
    fn run_streaming(
        &mut self,
        input: &[u8],
        sink: &mut TokenSink,
    ) -> Result<Vec<u8>, inference::InferenceError> {
        match self {
            Loaded::Tensor(m) => m.run(input),
            Loaded::Kind(r) => r.run_streaming(input, &mut |id, text| sink(id, text)),
        }
    }

    fn run_batch(&mut self, inputs: &[&[u8]]) -> Vec<Result<Vec<u8>, inference::InferenceError>> {
        match self {
            Loaded::Tensor(m) => m.run_batch(inputs),
            Loaded::Kind(r) => r.run_batch(inputs),
        }
    }
}

struct Slot {
    sha256: B256,
    kind: Kind,
    loaded: Arc<Mutex<Loaded>>,
    last_used: u64,
}

/// Loaded models and the runtime that runs them.
pub struct Engine {
    runtime: Arc<Runtime>,
    cache: Arc<BundleCache>,
    device: Device,
    threads: usize,
    max_input_bytes: usize,
    max_loaded: usize,
    clock: u64,
    loaded: HashMap<u32, Slot>,
    /// TEST-ONLY cheating: each model's declared outputs (`None` when the graph does not say),
    /// read once per model and sha256.
    declared: HashMap<u32, (B256, Declared)>,
}

impl Engine {
    /// Initializes ONNX Runtime (from `ort_lib` or `ORT_DYLIB_PATH`) and the model cache.
    pub fn new(
        ort_lib: Option<&Path>,
        models_dir: PathBuf,
        device: Device,
        threads: usize,
        max_input_bytes: usize,
    ) -> anyhow::Result<Self> {
        let runtime = Runtime::init(ort_lib).map_err(|e| {
            anyhow::anyhow!("ONNX Runtime: {e} (pass --ort-lib or set ORT_DYLIB_PATH to libonnxruntime.so; `make setup` installs it into .deps/)")
        })?;
        let cache = ModelCache::new(models_dir.clone())
            .map_err(|e| anyhow::anyhow!("--models-dir {}: {e}", models_dir.display()))?;
        Ok(Self {
            runtime: Arc::new(runtime),
            cache: Arc::new(BundleCache::new(cache)),
            device,
            threads,
            max_input_bytes,
            max_loaded: usize::MAX,
            clock: 0,
            loaded: HashMap::new(),
            declared: HashMap::new(),
        })
    }

    /// Keeps at most `n` (>= 1) models loaded; the least recently used one is unloaded first.
    pub fn with_max_loaded(mut self, n: usize) -> Self {
        self.max_loaded = n.max(1);
        self
    }

    /// Fetches, verifies and loads a model unless it is already loaded. On failure returns the
    /// outcome every task of this model gets (hash mismatch or unavailable).
    pub async fn ensure_loaded(&mut self, info: &ModelInfo) -> Result<(), Outcome> {
        self.clock += 1;
        if let Some(slot) = self.loaded.get_mut(&info.id) {
            if slot.sha256 == info.sha256 {
                slot.last_used = self.clock;
                return Ok(());
            }
        }
        let cache = self.cache.clone();
        let runtime = self.runtime.clone();
        let opts = LoadOptions {
            device: self.device,
            threads: (self.threads > 0).then_some(self.threads),
            max_input_bytes: self.max_input_bytes,
        };
        let uri = info.uri.clone();
        let sha: [u8; 32] = info.sha256.0;
        let id = info.id;
        let started = std::time::Instant::now();
        let loaded = tokio::task::spawn_blocking(move || -> Result<(Kind, Loaded), Outcome> {
            let bundle = cache.fetch(&uri, sha).map_err(|e| {
                let o = outcome::from_error(&e);
                // A fetch that failed for another reason than a hash is "unavailable".
                if o.code == FailureCode::ModelHashMismatch {
                    o
                } else {
                    Outcome::failure(
                        FailureCode::ModelUnavailable,
                        format!("model {id} ({uri}): {e}"),
                    )
                }
            })?;
            let unavailable = |e: inference::InferenceError| {
                Outcome::failure(FailureCode::ModelUnavailable, format!("model {id}: {e}"))
            };
            let kind = bundle.manifest.kind;
            let loaded = if kind == Kind::Tensor {
                let path = bundle.part("model").map_err(unavailable)?;
                let mut model =
                    Model::load(&runtime, path, opts.device, opts.threads).map_err(unavailable)?;
                model.set_max_input_bytes(opts.max_input_bytes);
                Loaded::Tensor(model)
            } else {
                Loaded::Kind(inference::kinds::load(&runtime, &bundle, opts).map_err(unavailable)?)
            };
            Ok((kind, loaded))
        })
        .await
        .map_err(|e| {
            Outcome::failure(
                FailureCode::ModelUnavailable,
                format!("model {id}: loader crashed: {e}"),
            )
        })??;
        let (kind, loaded) = loaded;
        tracing::info!(
            model_id = id,
            %kind,
            ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        self.loaded.insert(
            id,
            Slot {
                sha256: info.sha256,
                kind,
                loaded: Arc::new(Mutex::new(loaded)),
                last_used: self.clock,
            },
        );
        while self.loaded.len() > self.max_loaded {
            let Some((&victim, _)) = self
                .loaded
                .iter()
                .filter(|(k, _)| **k != id)
                .min_by_key(|(_, s)| s.last_used)
            else {
                break;
            };
            self.loaded.remove(&victim);
            self.declared.remove(&victim);
            tracing::info!(model_id = victim, "model unloaded (--max-loaded-models)");
        }
        metrics::gauge!(m::MODELS_LOADED).set(self.loaded.len() as f64);
        Ok(())
    }

    /// Runs one batch of inputs of one model; one outcome per input, in order. Inputs over the
    /// size limit are refused without decoding; the rest run as one batch of the model's kind,
    /// except that an input with a token sink runs on its own and streams its tokens to it.
    pub async fn run_streaming(
        &mut self,
        info: &ModelInfo,
        inputs: Vec<Vec<u8>>,
        mut sinks: Vec<Option<TokenSink>>,
    ) -> Vec<Outcome> {
        if let Err(failed) = self.ensure_loaded(info).await {
            return inputs.iter().map(|_| failed.clone()).collect();
        }
        let Some(slot) = self.loaded.get(&info.id) else {
            let o = Outcome::failure(
                FailureCode::ModelUnavailable,
                format!("model {} not loaded", info.id),
            );
            return inputs.iter().map(|_| o.clone()).collect();
        };
        let kind = slot.kind;
        let mut out: Vec<Option<Outcome>> = inputs
            .iter()
            .map(|i| {
                outcome::check_input_present(i.len())
                    .or_else(|| outcome::check_input_size(i.len(), self.max_input_bytes))
            })
            .collect();
        let runnable: Vec<usize> = (0..inputs.len()).filter(|i| out[*i].is_none()).collect();
        if !runnable.is_empty() {
            let model = slot.loaded.clone();
            let batch: Vec<(Vec<u8>, Option<TokenSink>)> = runnable
                .iter()
                .map(|i| (inputs[*i].clone(), sinks.get_mut(*i).and_then(Option::take)))
                .collect();
            let n = batch.len();
            let started = std::time::Instant::now();
            let results = tokio::task::spawn_blocking(move || {
                let Ok(mut m) = model.lock() else {
                    return vec![
                        Outcome::failure(
                            FailureCode::Runtime,
                            "model session poisoned by an earlier panic"
                        );
                        n
                    ];
                };
                let to_outcome = |r: Result<Vec<u8>, inference::InferenceError>| match r {
                    Ok(bytes) => Outcome::success(bytes),
                    Err(e) => outcome::from_error(&e),
                };
                // inputs without a sink run as one batch; each streamed one runs alone
                let plain: Vec<&[u8]> = batch
                    .iter()
                    .filter(|(_, s)| s.is_none())
                    .map(|(i, _)| i.as_slice())
                    .collect();
                let mut plain = m.run_batch(&plain).into_iter();
                batch
                    .into_iter()
                    .map(|(input, sink)| match sink {
                        Some(mut sink) => to_outcome(m.run_streaming(&input, &mut sink)),
                        None => plain.next().map(to_outcome).unwrap_or_else(|| {
                            Outcome::failure(
                                FailureCode::Runtime,
                                "no result returned for this input",
                            )
                        }),
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_else(|e| {
                vec![Outcome::failure(FailureCode::Runtime, format!("inference crashed: {e}")); n]
            });
            let per_task = started.elapsed().as_secs_f64() / n as f64;
            for (slot, o) in runnable.into_iter().zip(results) {
                metrics::histogram!(m::INFERENCE_SECONDS, "kind" => kind.as_str()).record(per_task);
                out[slot] = Some(o);
            }
        }
        out.into_iter()
            .map(|o| {
                let o = o.unwrap_or_else(|| {
                    Outcome::failure(FailureCode::Runtime, "no result returned for this input")
                });
                metrics::counter!(m::TASKS_BY_KIND, "kind" => kind.as_str(), "code" => o.code.as_str()).increment(1);
                o
            })
            .collect()
    }

    /// TEST-ONLY (`--test-cheat-rate`): the outcomes a cheater commits for `tasks` of one model,
    /// in order, each with whether it was cheated. A valid input gets, without running the
    /// model, a success whose output has the model's declared output names, dtypes and shapes
    /// (a dynamic leading dimension is the input's batch size) filled with pseudo-random values
    /// ([`cheat::fake_output`]). Inputs that fail the honest checks (size, decoding, names,
    /// dtypes, shapes) and models that cannot be loaded get the honest failure, not cheated.
    pub async fn run_cheated(
        &mut self,
        info: &ModelInfo,
        tasks: Vec<(U256, Vec<u8>)>,
        salt: B256,
    ) -> Vec<(Outcome, bool)> {
        if let Err(failed) = self.ensure_loaded(info).await {
            return tasks.iter().map(|_| (failed.clone(), false)).collect();
        }
        let Some(slot) = self.loaded.get(&info.id) else {
            let o = Outcome::failure(
                FailureCode::ModelUnavailable,
                format!("model {} not loaded", info.id),
            );
            return tasks.iter().map(|_| (o.clone(), false)).collect();
        };
        let model = slot.loaded.clone();
        let max_input = self.max_input_bytes;
        let n = tasks.len();
        if slot.kind != Kind::Tensor {
            return tokio::task::spawn_blocking(move || {
                counterfeit_all(&model, tasks, salt, max_input)
            })
            .await
            .unwrap_or_else(|e| {
                vec![
                    (
                        Outcome::failure(FailureCode::Runtime, format!("inference crashed: {e}")),
                        false
                    );
                    n
                ]
            });
        }
        let declared = self.declared_outputs(info, &model).await;
        tokio::task::spawn_blocking(move || {
            let Ok(mut m) = model.lock() else {
                let o = Outcome::failure(
                    FailureCode::Runtime,
                    "model session poisoned by an earlier panic",
                );
                return vec![(o, false); n];
            };
            let Loaded::Tensor(m) = &mut *m else {
                let o = Outcome::failure(FailureCode::Runtime, "tensor model expected");
                return vec![(o, false); n];
            };
            tasks
                .into_iter()
                .map(|(id, input)| {
                    if let Some(o) = outcome::check_input_present(input.len())
                        .or_else(|| outcome::check_input_size(input.len(), max_input))
                    {
                        return (o, false);
                    }
                    let tensors = match m.validate(&input) {
                        Ok(t) => t,
                        Err(e) => return (outcome::from_error(&e), false),
                    };
                    let batch = tensors
                        .first()
                        .and_then(|t| t.shape.first())
                        .copied()
                        .unwrap_or(1);
                    let shapes = match declared
                        .as_deref()
                        .and_then(|d| cheat::resolve_outputs(d, batch))
                    {
                        Some(shapes) => shapes,
                        // The graph does not say every output size: fall back to a real run for
                        // the shapes. A real cheater would save this compute; the test cheater
                        // only needs wrong outputs of the right form.
                        None => match m.run(&input).and_then(|b| inference::tensor::decode(&b)) {
                            Ok(real) => real
                                .into_iter()
                                .map(|(name, t)| (name, t.dtype, t.shape))
                                .collect(),
                            Err(e) => return (outcome::from_error(&e), false),
                        },
                    };
                    match cheat::fake_output(id, salt, &shapes) {
                        Ok(bytes) => (Outcome::success(bytes), true),
                        Err(e) => (outcome::from_error(&e), false),
                    }
                })
                .collect()
        })
        .await
        .unwrap_or_else(|e| {
            vec![
                (
                    Outcome::failure(FailureCode::Runtime, format!("inference crashed: {e}")),
                    false
                );
                n
            ]
        })
    }

    /// The outputs `info`'s ONNX graph declares, when they are exactly the loaded session's
    /// outputs; `None` (with a warning) otherwise.
    async fn declared_outputs(&mut self, info: &ModelInfo, model: &Arc<Mutex<Loaded>>) -> Declared {
        if let Some((sha, d)) = self.declared.get(&info.id) {
            if *sha == info.sha256 {
                return d.clone();
            }
        }
        let (path, names) = match model.lock().as_deref() {
            Ok(Loaded::Tensor(m)) => (m.path().to_path_buf(), m.output_names().to_vec()),
            _ => return None,
        };
        let read = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            cheat::onnx_outputs(&bytes)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let declared = match read {
            Ok(d) => {
                let mut got: Vec<&str> = d.iter().map(|o| o.name.as_str()).collect();
                let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
                got.sort_unstable();
                want.sort_unstable();
                if got == want {
                    Some(Arc::new(d))
                } else {
                    tracing::warn!(model_id = info.id, declared = ?got, session = ?want, "TEST-ONLY cheat: declared outputs differ from the session's; cheated tasks run the model for their shapes");
                    None
                }
            }
            Err(e) => {
                tracing::warn!(model_id = info.id, error = %e, "TEST-ONLY cheat: cannot read the declared outputs; cheated tasks run the model for their shapes");
                None
            }
        };
        self.declared
            .insert(info.id, (info.sha256, declared.clone()));
        declared
    }
}

/// TEST-ONLY: counterfeit outputs for a non-tensor kind (random tokens, a made-up label...),
/// seeded by `keccak256(taskId, salt)`. Inputs failing the honest size checks get the honest
/// failure, not cheated.
fn counterfeit_all(
    model: &Mutex<Loaded>,
    tasks: Vec<(U256, Vec<u8>)>,
    salt: B256,
    max_input: usize,
) -> Vec<(Outcome, bool)> {
    let n = tasks.len();
    let Ok(mut guard) = model.lock() else {
        let o = Outcome::failure(
            FailureCode::Runtime,
            "model session poisoned by an earlier panic",
        );
        return vec![(o, false); n];
    };
    let Loaded::Kind(runner) = &mut *guard else {
        let o = Outcome::failure(FailureCode::Runtime, "bundle runner expected");
        return vec![(o, false); n];
    };
    tasks
        .into_iter()
        .map(|(id, input)| {
            if let Some(o) = outcome::check_input_present(input.len())
                .or_else(|| outcome::check_input_size(input.len(), max_input))
            {
                return (o, false);
            }
            let mut seed_src = id.to_be_bytes::<32>().to_vec();
            seed_src.extend_from_slice(salt.as_slice());
            let digest = keccak256(&seed_src);
            let seed =
                u64::from_be_bytes(digest.0[..8].try_into().expect("8 bytes of a 32-byte hash"));
            match runner.counterfeit(&input, seed) {
                Ok(bytes) => (Outcome::success(bytes), true),
                Err(e) => (outcome::from_error(&e), false),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(id: u32) -> ModelInfo {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits/manifest.json");
        let bytes = std::fs::read(&manifest).expect("the committed digits bundle");
        ModelInfo {
            id,
            sha256: B256::from(inference::sha256(&bytes)),
            uri: format!("file://{}", manifest.display()),
        }
    }

    fn loaded_ids(e: &Engine) -> Vec<u32> {
        let mut ids: Vec<u32> = e.loaded.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test]
    async fn the_least_recently_used_model_is_unloaded_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::new(None, dir.path().to_path_buf(), Device::Cpu, 1, 1 << 20)
            .unwrap()
            .with_max_loaded(2);
        for id in [1, 2] {
            e.ensure_loaded(&digits(id)).await.unwrap();
        }
        e.ensure_loaded(&digits(1)).await.unwrap(); // 1 is now the most recently used
        e.ensure_loaded(&digits(3)).await.unwrap();
        assert_eq!(
            loaded_ids(&e),
            [1, 3],
            "model 2 (least recently used) unloaded"
        );
        // an unloaded model loads again on demand, from the verified cache
        let out = e
            .run_streaming(&digits(2), vec![b"not a tensor".to_vec()], vec![None])
            .await;
        assert_eq!(out[0].code, FailureCode::InputDecode);
        assert_eq!(loaded_ids(&e).len(), 2);
        assert!(e.loaded.contains_key(&2));
    }

    #[tokio::test]
    async fn a_bundle_that_does_not_match_its_hash_fails_every_task_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::new(None, dir.path().to_path_buf(), Device::Cpu, 1, 1 << 20).unwrap();
        let mut info = digits(1);
        info.sha256 = B256::repeat_byte(7);
        let out = e
            .run_streaming(&info, vec![b"x".to_vec(), b"y".to_vec()], vec![None, None])
            .await;
        for o in out {
            assert_eq!(o.code, FailureCode::ModelHashMismatch);
            assert!(String::from_utf8_lossy(&o.output).contains("sha256"));
        }
    }
}
