//! The catalogue as the gateway sees it: every registered model with its terms from the registry
//! and its name and kind from its bundle manifest (fetched once per manifest hash, only the
//! manifest, never the weights).

use crate::error::ApiError;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use inference::{Kind, Manifest, ModelCache};
use protocol::bindings::IModelRegistry;
use std::collections::HashMap;
use std::sync::Mutex;

/// Largest file fetched to learn a model's name and kind (a manifest is a few KB; a raw ONNX
/// registration larger than this is listed without a kind).
const MAX_DESCRIPTOR_BYTES: u64 = 4 << 20;

/// One model, as listed and routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Registry id.
    pub id: u32,
    /// The manifest's name (`model-<id>` when it has none).
    pub name: String,
    /// The task kind, when the manifest could be read.
    pub kind: Option<Kind>,
    /// Price per call (wei of DN).
    pub price: U256,
    /// 0 Active, 1 Probation, 2 Delisted.
    pub status: u8,
    /// Workers opted in.
    pub workers: u32,
    /// Its developer.
    pub developer: Address,
    /// Manifest (or model file) sha256.
    pub sha256: B256,
    /// Why routing chose it, when the request named an alias (`x-deepnode-route`).
    pub route: Option<String>,
}

impl ModelInfo {
    /// The OpenAI model id: `deepnode/<id>`.
    pub fn openai_id(&self) -> String {
        format!("deepnode/{}", self.id)
    }

    /// The status's name.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            0 => "active",
            1 => "probation",
            _ => "delisted",
        }
    }
}

/// Reads the registry and the manifests.
pub struct Catalogue {
    provider: DynProvider,
    registry: Address,
    cache: ModelCache,
    /// (name, kind) by manifest hash.
    described: Mutex<HashMap<B256, (String, Option<Kind>)>>,
}

impl Catalogue {
    /// A catalogue reading `registry`, caching manifests in `cache`.
    pub fn new(provider: DynProvider, registry: Address, cache: ModelCache) -> Self {
        Self {
            provider,
            registry,
            cache: cache.with_max_model_bytes(MAX_DESCRIPTOR_BYTES),
            described: Mutex::new(HashMap::new()),
        }
    }

    /// Every registered model, in id order.
    pub async fn list(&self) -> Result<Vec<ModelInfo>, ApiError> {
        let registry = IModelRegistry::new(self.registry, &self.provider);
        let count = registry
            .modelCount()
            .call()
            .await
            .map_err(|e| ApiError::internal(format!("modelCount: {e}")))?;
        let mut out = Vec::new();
        for id in 1..=count {
            out.push(self.get(id).await?);
        }
        Ok(out)
    }

    /// One model by registry id.
    pub async fn get(&self, id: u32) -> Result<ModelInfo, ApiError> {
        let registry = IModelRegistry::new(self.registry, &self.provider);
        let m = registry
            .getModel(id)
            .call()
            .await
            .map_err(|_| ApiError::unknown_model(&id.to_string()))?;
        let (name, kind) = self.describe(id, &m.uri, m.sha256Hash).await;
        Ok(ModelInfo {
            id,
            name,
            kind,
            price: U256::from(m.pricePerCall),
            status: m.status,
            workers: m.workerCount,
            developer: m.developer,
            sha256: m.sha256Hash,
            route: None,
        })
    }

    /// Resolves the `model` of a request: `deepnode/<id>`, `<id>`, or a manifest name that one
    /// listed model alone carries.
    pub async fn resolve(&self, model: &str) -> Result<ModelInfo, ApiError> {
        let trimmed = model.trim();
        let numeric = trimmed.strip_prefix("deepnode/").unwrap_or(trimmed);
        if let Ok(id) = numeric.parse::<u32>() {
            return self.get(id).await.map_err(|e| {
                if e.status == axum::http::StatusCode::NOT_FOUND {
                    ApiError::unknown_model(model)
                } else {
                    e
                }
            });
        }
        let named: Vec<ModelInfo> = self
            .list()
            .await?
            .into_iter()
            .filter(|m| m.name == trimmed && m.status != 2)
            .collect();
        match named.len() {
            1 => Ok(named.into_iter().next().expect("one")),
            0 => Err(ApiError::unknown_model(model)),
            n => Err(ApiError::invalid(
                "model",
                format!(
                    "{n} models are named `{trimmed}` ({}); ask for one by id",
                    named
                        .iter()
                        .map(ModelInfo::openai_id)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Name and kind from the manifest (cached by hash); a raw ONNX registration is a tensor
    /// model; an unreadable one is listed without a kind.
    async fn describe(&self, id: u32, uri: &str, sha: B256) -> (String, Option<Kind>) {
        if let Some(d) = self
            .described
            .lock()
            .ok()
            .and_then(|m| m.get(&sha).cloned())
        {
            return d;
        }
        let cache = self.cache.clone();
        let uri_owned = uri.to_string();
        let fetched =
            tokio::task::spawn_blocking(move || -> Result<(String, Option<Kind>), String> {
                let path = cache.fetch(&uri_owned, sha.0).map_err(|e| e.to_string())?;
                let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
                if bytes.first().is_some_and(|b| *b == b'{') {
                    let m = Manifest::parse(&bytes).map_err(|e| e.to_string())?;
                    Ok((m.name, Some(m.kind)))
                } else {
                    Ok((String::new(), Some(Kind::Tensor)))
                }
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        let (mut name, kind) = match fetched {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(model = id, uri, error = %e, "cannot read the model's manifest; listed without a kind");
                return (format!("model-{id}"), None);
            }
        };
        if name.is_empty() {
            name = format!("model-{id}");
        }
        if let Ok(mut m) = self.described.lock() {
            m.insert(sha, (name.clone(), kind));
        }
        (name, kind)
    }
}
