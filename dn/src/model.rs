//! `dn model publish | list | price`.

use alloy::primitives::{Address, B256, U256};
use anyhow::{anyhow, bail, Context, Result};
use inference::bundle::{Kind, Manifest};
use protocol::bindings::IModelRegistry;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chain::{self, progress, transact, Contract};
use crate::cli::{ListArgs, PriceArgs, PublishArgs};
use crate::indexer::Indexer;
use crate::output::{amount_json, Report};
use crate::units::{format_dn, to_price};

/// Largest manifest read when listing (a manifest names files, it does not hold them).
const MAX_MANIFEST_BYTES: u64 = inference::bundle::MAX_MANIFEST_BYTES as u64;

/// One checked part of a bundle directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its role in the manifest (`model`, `tokenizer`, ...).
    pub role: String,
    /// The local file.
    pub path: PathBuf,
    /// sha256 of its bytes (equal to the manifest's).
    pub sha256: [u8; 32],
    /// Size in bytes.
    pub bytes: u64,
}

/// Reads `dir/manifest.json` and checks that every part it names is there with the manifest's
/// sha256 and size; errors name the part.
pub fn check_bundle(dir: &Path) -> Result<(Manifest, Vec<Part>)> {
    let manifest_path = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path)
        .map_err(|e| anyhow!("bundle {}: cannot read manifest.json: {e}", dir.display()))?;
    let manifest =
        Manifest::parse(&bytes).map_err(|e| anyhow!("{}: {e}", manifest_path.display()))?;
    if manifest.parts.is_empty() {
        bail!("{}: the manifest names no parts", manifest_path.display());
    }
    let mut parts = Vec::with_capacity(manifest.parts.len());
    for (role, part) in &manifest.parts {
        let path = dir.join(&part.path);
        let want = inference::parse_sha256(&part.sha256).map_err(|_| {
            anyhow!(
                "part `{role}`: sha256 {:?} is not 64 hex digits",
                part.sha256
            )
        })?;
        let (actual, size) = hash_file(&path)
            .map_err(|e| anyhow!("part `{role}` ({}): cannot read it: {e}", path.display()))?;
        if actual != want {
            bail!(
                "part `{role}` ({}): its sha256 is {}, the manifest says {}; the file is corrupt or the manifest is stale",
                path.display(),
                hex::encode(actual),
                hex::encode(want)
            );
        }
        if size != part.bytes {
            bail!(
                "part `{role}` ({}): {size} bytes, the manifest says {}",
                path.display(),
                part.bytes
            );
        }
        parts.push(Part {
            role: role.clone(),
            path,
            sha256: actual,
            bytes: size,
        });
    }
    Ok((manifest, parts))
}

fn hash_file(path: &Path) -> std::io::Result<([u8; 32], u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((h.finalize().into(), n))
}

/// The manifest as served by a blob store: each part's path becomes its sha256 (lowercase hex),
/// the name the store serves it under beside the manifest (`<store>/blobs/<sha256>`), since
/// workers fetch a part from the manifest URI's directory plus the part's path.
pub fn store_layout(manifest: &Manifest) -> Manifest {
    let mut m = manifest.clone();
    for part in m.parts.values_mut() {
        part.path = part.sha256.trim_start_matches("0x").to_ascii_lowercase();
    }
    m
}

/// The compare rule and tolerance registered for a bundle: the manifest's numeric `verify.rule`
/// and `verify.tolerance` for `tensor` bundles, 0 (exact bytes, unused: validators judge other
/// kinds by the kind's own rule) otherwise.
pub fn rule_of(manifest: &Manifest) -> (u8, u32) {
    if manifest.kind != Kind::Tensor {
        return (0, 0);
    }
    let rule = manifest.verify["rule"].as_u64().unwrap_or(0);
    let tolerance = manifest.verify["tolerance"].as_u64().unwrap_or(0);
    (
        u8::try_from(rule).unwrap_or(u8::MAX),
        u32::try_from(tolerance).unwrap_or(u32::MAX),
    )
}

/// `dn model publish`
pub async fn publish(a: PublishArgs) -> Result<Report> {
    let (manifest, parts) = check_bundle(&a.dir)?;
    let price = to_price(a.price).map_err(|e| anyhow!("--price: {e}"))?;
    let store = a.blob_store.trim_end_matches('/').to_string();
    if !(store.starts_with("http://") || store.starts_with("https://")) {
        bail!("--blob-store `{store}`: not an http(s) URL");
    }
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let units = a.compute_units.unwrap_or(manifest.compute_units);
    let (rule, tolerance) = rule_of(&manifest);

    let blobs = blobstore::Client::new(Duration::from_secs(a.upload_timeout.max(1)), u64::MAX)
        .context("blob store client")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .context("HTTP client")?;
    let mut uploaded = Vec::new();
    for p in &parts {
        let url = blobstore::client::blob_url(&store, &p.sha256);
        let stored = match http.head(&url).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        if stored {
            progress(&format!("part `{}`: already in the store", p.role));
        } else {
            progress(&format!(
                "uploading part `{}` ({} bytes) to {store}",
                p.role, p.bytes
            ));
            let bytes = std::fs::read(&p.path)
                .with_context(|| format!("part `{}` ({})", p.role, p.path.display()))?;
            blobs
                .put(&store, bytes)
                .await
                .map_err(|e| anyhow!("uploading part `{}`: {e}", p.role))?;
        }
        uploaded.push(json!({
            "role": p.role,
            "sha256": hex::encode(p.sha256),
            "bytes": p.bytes,
            "url": url,
            "uploaded": !stored,
        }));
    }
    let layout = store_layout(&manifest).canonical_bytes();
    let manifest_ref = blobs
        .put(&store, layout.clone())
        .await
        .map_err(|e| anyhow!("uploading the manifest: {e}"))?;
    let hash = B256::from(manifest_ref.sha256);
    let uri = if manifest_ref.url.is_empty() {
        blobstore::client::blob_url(&store, &manifest_ref.sha256)
    } else {
        manifest_ref.url.clone()
    };
    progress(&format!("manifest stored at {uri}"));

    let d = &w.deployment;
    let registry = IModelRegistry::new(d.model_registry, &w.provider);
    let bond = registry
        .listingBond()
        .call()
        .await
        .context("reading ModelRegistry.listingBond")?;
    let approve_tx =
        chain::ensure_allowance(&w, d.model_registry, "ModelRegistry (listing bond)", bond).await?;
    progress("registering the model");
    let receipt = transact(
        registry.registerModel(hash, uri.clone(), price, units, rule, tolerance, 0),
        w.me,
        "registerModel",
        Contract::Registry,
    )
    .await?;
    let model_id = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<IModelRegistry::ModelRegistered>().ok())
        .map(|l| l.inner.data.modelId)
        .context("the registration receipt has no ModelRegistered event")?;
    let text = format!(
        "model {model_id} published: {} ({})\n  manifest sha256 {hash}\n  uri {uri}\n  price {} DN per call, {units} compute units, listing bond {} DN\n  tx {}",
        manifest.name,
        manifest.kind,
        format_dn(a.price),
        format_dn(bond),
        receipt.transaction_hash
    );
    Ok(Report::new(
        text,
        json!({
            "model_id": model_id,
            "name": manifest.name,
            "kind": manifest.kind.as_str(),
            "sha256": hash.to_string(),
            "uri": uri,
            "price": amount_json(a.price),
            "compute_units": units,
            "rule": rule,
            "tolerance": tolerance,
            "listing_bond": amount_json(bond),
            "developer": w.me.to_checksum(None),
            "parts": uploaded,
            "transactions": {
                "approve": approve_tx.map(|h| h.to_string()),
                "register": receipt.transaction_hash.to_string(),
            },
        }),
    ))
}

/// The on-chain model status's name.
pub fn status_name(s: u8) -> &'static str {
    match s {
        0 => "active",
        1 => "probation",
        2 => "delisted",
        _ => "unknown",
    }
}

/// What the indexer adds to a model row.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Measured {
    /// `kind` from `GET /models` (the indexer reads `file://` manifests).
    pub kind: Option<String>,
    /// `measured_quality` of `GET /models/{id}` (its last epoch).
    pub quality: Option<f64>,
    /// Mean `latency_secs` over the model's latest tasks (`GET /tasks?model=`).
    pub latency_secs: Option<f64>,
    /// Tasks the latency is the mean of.
    pub latency_tasks: usize,
}

/// The kinds in an indexer `GET /models` answer, by model id.
pub fn indexer_kinds(models: &Value) -> BTreeMap<u32, String> {
    models["models"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    let id = u32::try_from(m["model_id"].as_u64()?).ok()?;
                    Some((id, m["kind"].as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Mean `latency_secs` of an indexer `GET /tasks` answer and the tasks counted.
pub fn mean_latency(tasks: &Value) -> (Option<f64>, usize) {
    let lat: Vec<f64> = tasks["tasks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["latency_secs"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    if lat.is_empty() {
        return (None, 0);
    }
    (Some(lat.iter().sum::<f64>() / lat.len() as f64), lat.len())
}

async fn measured(idx: &Indexer, ids: &[u32]) -> Result<BTreeMap<u32, Measured>> {
    let list = idx
        .get("/models")
        .await?
        .ok_or_else(|| anyhow!("the indexer has no /models route"))?;
    let kinds = indexer_kinds(&list);
    let mut out = BTreeMap::new();
    for &id in ids {
        let mut m = Measured {
            kind: kinds.get(&id).cloned(),
            ..Default::default()
        };
        if let Some(detail) = idx.get(&format!("/models/{id}")).await? {
            m.quality = detail["measured_quality"].as_f64();
        }
        if let Some(tasks) = idx.get(&format!("/tasks?model={id}&limit=100")).await? {
            (m.latency_secs, m.latency_tasks) = mean_latency(&tasks);
        }
        out.insert(id, m);
    }
    Ok(out)
}

/// The kind in a bundle manifest's bytes (`tensor` for a raw ONNX registration).
pub fn kind_of_manifest(bytes: &[u8]) -> Option<String> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Some(Kind::Tensor.as_str().into());
    }
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v["kind"].as_str().map(str::to_string)
}

/// The kind of a registered model, read from its manifest (http(s) through the blob client,
/// which checks the registered sha256; `file://` from disk); `None` when it cannot be read.
async fn kind_from_uri(blobs: &blobstore::Client, uri: &str, sha256: B256) -> Option<String> {
    let bytes = if uri.starts_with("http://") || uri.starts_with("https://") {
        let r = blobstore::BlobRef {
            sha256: sha256.0,
            url: uri.to_string(),
        };
        blobs.fetch(&r).await.ok()?
    } else {
        let path = uri.strip_prefix("file://")?;
        if std::fs::metadata(path).ok()?.len() > MAX_MANIFEST_BYTES {
            return Some(Kind::Tensor.as_str().into());
        }
        let b = std::fs::read(path).ok()?;
        if inference::sha256(&b) != sha256.0 {
            return None;
        }
        b
    };
    kind_of_manifest(&bytes)
}

/// `dn model list`
pub async fn list(a: ListArgs) -> Result<Report> {
    let r = chain::reader(&a.chain.rpc).await?;
    let registry = IModelRegistry::new(r.deployment.model_registry, &r.provider);
    let count = registry
        .modelCount()
        .call()
        .await
        .context("reading ModelRegistry.modelCount")?;
    let ids: Vec<u32> = (1..=count).collect();
    let measured = match &a.indexer_url {
        Some(url) => Some(measured(&Indexer::new(url)?, &ids).await?),
        None => None,
    };
    let blobs = blobstore::Client::new(Duration::from_secs(5), MAX_MANIFEST_BYTES)
        .context("blob client")?;
    let mut rows = Vec::new();
    for id in ids {
        let m = registry
            .getModel(id)
            .call()
            .await
            .with_context(|| format!("reading model {id}"))?;
        let extra = measured.as_ref().and_then(|all| all.get(&id).cloned());
        let kind = match extra.as_ref().and_then(|x| x.kind.clone()) {
            Some(k) => Some(k),
            None => kind_from_uri(&blobs, &m.uri, m.sha256Hash).await,
        };
        rows.push(Row {
            id,
            kind,
            price: U256::from(m.pricePerCall),
            status: m.status,
            workers: m.workerCount,
            compute_units: m.computeUnits,
            rule: m.rule,
            developer: m.developer,
            sha256: m.sha256Hash,
            uri: m.uri,
            measured: extra,
        });
    }
    let text = table(&rows, measured.is_some());
    let json = json!({
        "count": rows.len(),
        "models": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    Ok(Report::new(text, json))
}

struct Row {
    id: u32,
    kind: Option<String>,
    price: U256,
    status: u8,
    workers: u32,
    compute_units: u32,
    rule: u8,
    developer: Address,
    sha256: B256,
    uri: String,
    measured: Option<Measured>,
}

impl Row {
    fn json(&self) -> Value {
        let mut v = json!({
            "model_id": self.id,
            "kind": self.kind,
            "price": amount_json(self.price),
            "status": status_name(self.status),
            "workers": self.workers,
            "compute_units": self.compute_units,
            "rule": self.rule,
            "developer": self.developer.to_checksum(None),
            "sha256": self.sha256.to_string(),
            "uri": self.uri,
        });
        if let (Some(m), Some(obj)) = (&self.measured, v.as_object_mut()) {
            obj.insert("quality".into(), json!(m.quality));
            obj.insert("latency_secs".into(), json!(m.latency_secs));
            obj.insert("latency_tasks".into(), json!(m.latency_tasks));
        }
        v
    }
}

fn table(rows: &[Row], measured: bool) -> String {
    if rows.is_empty() {
        return "no models registered".into();
    }
    let mut out = format!(
        "{:>4}  {:<20} {:>12}  {:<9} {:>7}",
        "ID", "KIND", "PRICE (DN)", "STATUS", "WORKERS"
    );
    if measured {
        out.push_str(&format!("  {:>7} {:>8}", "QUALITY", "LATENCY"));
    }
    out.push_str("  DEVELOPER                                   URI");
    for r in rows {
        out.push('\n');
        out.push_str(&format!(
            "{:>4}  {:<20} {:>12}  {:<9} {:>7}",
            r.id,
            r.kind.as_deref().unwrap_or("?"),
            format_dn(r.price),
            status_name(r.status),
            r.workers
        ));
        if measured {
            let m = r.measured.clone().unwrap_or_default();
            out.push_str(&format!(
                "  {:>7} {:>8}",
                m.quality.map_or("-".into(), |q| format!("{q:.3}")),
                m.latency_secs.map_or("-".into(), |l| format!("{l:.1}s"))
            ));
        }
        out.push_str(&format!("  {}  {}", r.developer.to_checksum(None), r.uri));
    }
    out
}

/// `dn model price`
pub async fn price(a: PriceArgs) -> Result<Report> {
    let price = to_price(a.price).map_err(|e| anyhow!("PRICE: {e}"))?;
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let registry = IModelRegistry::new(w.deployment.model_registry, &w.provider);
    let count = registry
        .modelCount()
        .call()
        .await
        .context("reading ModelRegistry.modelCount")?;
    if a.id == 0 || a.id > count {
        bail!(
            "unknown model {}: the registry has {count} model(s); see `dn model list`",
            a.id
        );
    }
    let terms = registry
        .modelTerms(a.id)
        .call()
        .await
        .with_context(|| format!("reading model {}", a.id))?;
    let previous = U256::from(terms.pricePerCall);
    let what = format!("setPrice({}, {} DN)", a.id, format_dn(a.price));
    let receipt = match transact(
        registry.setPrice(a.id, price),
        w.me,
        &what,
        Contract::Registry,
    )
    .await
    {
        Ok(r) => r,
        Err(e) if terms.developer != w.me => {
            bail!(
                "{e:#}; model {}'s developer is {}, not this wallet ({})",
                a.id,
                terms.developer,
                w.me
            );
        }
        Err(e) => return Err(e),
    };
    Ok(Report::new(
        format!(
            "model {}: price {} DN per call (was {} DN)\n  tx {}",
            a.id,
            format_dn(a.price),
            format_dn(previous),
            receipt.transaction_hash
        ),
        json!({
            "model_id": a.id,
            "price": amount_json(a.price),
            "previous_price": amount_json(previous),
            "tx": receipt.transaction_hash.to_string(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"compute_units":3,"format":"deepnode-bundle/1","io":{},"kind":"tensor","name":"t","params":{},"parts":{"model":{"bytes":5,"path":"m.onnx","sha256":"2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"}},"source":{},"verify":{"rule":2,"tolerance":0}}"#;

    fn bundle(dir: &Path, model: &[u8]) {
        std::fs::write(dir.join("manifest.json"), MANIFEST).unwrap();
        std::fs::write(dir.join("m.onnx"), model).unwrap();
    }

    #[test]
    fn checks_every_part_and_names_the_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        bundle(dir.path(), b"hello");
        let (m, parts) = check_bundle(dir.path()).unwrap();
        assert_eq!(m.compute_units, 3);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].role, "model");
        assert_eq!(parts[0].bytes, 5);

        std::fs::write(dir.path().join("m.onnx"), b"hellO").unwrap();
        let e = check_bundle(dir.path()).unwrap_err().to_string();
        assert!(e.contains("part `model`") && e.contains("m.onnx"), "{e}");
        assert!(e.contains("sha256"), "{e}");

        std::fs::remove_file(dir.path().join("m.onnx")).unwrap();
        let e = check_bundle(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("part `model`") && e.contains("cannot read"),
            "{e}"
        );

        let e = check_bundle(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("manifest.json"), "{e}");
    }

    #[test]
    fn store_layout_names_parts_by_hash_and_stays_a_valid_manifest() {
        let m = Manifest::parse(MANIFEST.as_bytes()).unwrap();
        let s = store_layout(&m);
        let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(s.parts["model"].path, sha);
        assert_eq!(s.parts["model"].sha256, m.parts["model"].sha256);
        // everything else is unchanged, and the bytes parse back to the same manifest
        assert_eq!(s.name, m.name);
        assert_eq!(s.verify, m.verify);
        let bytes = s.canonical_bytes();
        assert_eq!(Manifest::parse(&bytes).unwrap(), s);
        // a worker resolves the part beside the manifest: <store>/blobs/<sha>
        let uri = "http://store/blobs/abc";
        let base = &uri[..=uri.rfind('/').unwrap()];
        assert_eq!(
            format!("{base}{}", s.parts["model"].path),
            format!("http://store/blobs/{sha}")
        );
    }

    #[test]
    fn rules_follow_the_kind() {
        let m = Manifest::parse(MANIFEST.as_bytes()).unwrap();
        assert_eq!(rule_of(&m), (2, 0));
        let mut other = m.clone();
        other.kind = Kind::Embeddings;
        other.verify = json!({"rule": "cosine", "min_cosine": 0.99});
        assert_eq!(rule_of(&other), (0, 0));
    }

    #[test]
    fn reads_indexer_answers() {
        let models = json!({"models": [
            {"model_id": 1, "kind": "tensor"},
            {"model_id": 2, "kind": null},
        ]});
        let k = indexer_kinds(&models);
        assert_eq!(k.get(&1).map(String::as_str), Some("tensor"));
        assert!(!k.contains_key(&2));
        let tasks = json!({"tasks": [
            {"latency_secs": 2}, {"latency_secs": null}, {"latency_secs": 4}
        ], "next_cursor": null});
        assert_eq!(mean_latency(&tasks), (Some(3.0), 2));
        assert_eq!(mean_latency(&json!({"tasks": []})), (None, 0));
    }

    #[test]
    fn kinds_of_manifests() {
        assert_eq!(
            kind_of_manifest(MANIFEST.as_bytes()).as_deref(),
            Some("tensor")
        );
        assert_eq!(
            kind_of_manifest(br#" {"kind":"ocr"}"#).as_deref(),
            Some("ocr")
        );
        assert_eq!(kind_of_manifest(b"\x08\x07onnx").as_deref(), Some("tensor"));
    }
}
