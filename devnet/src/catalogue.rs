//! The model catalogue on a devnet: the bundles `make models` built under `.deps/models/`, the
//! real inputs each kind is given (questions, sentences, spoken WAVs, images of text, photos),
//! and a one-line human summary of each output (for `make demo` and the end-to-end tests).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::workspace_root;

/// The catalogue's bundle directories (under `.deps/models/` and `models/`), one per kind.
pub const CATALOGUE: [&str; 5] = [
    "smollm2",
    "minilm",
    "whisper-tiny-en",
    "ppocr",
    "efficientnet-lite0",
];

/// Questions the demo asks the language model.
pub const QUESTIONS: [&str; 3] = [
    "What is the capital of France?",
    "Name three primary colors.",
    "What is 2 + 2?",
];

/// Sentences the demo embeds.
pub const SENTENCES: [&str; 3] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
];

/// Where `make models` puts the bundle of `dir`.
pub fn bundle_dir(dir: &str) -> PathBuf {
    workspace_root().join(".deps/models").join(dir)
}

/// The bundle's manifest, or an error telling to run `make models`.
pub fn manifest(dir: &str) -> Result<Value> {
    let path = bundle_dir(dir).join("manifest.json");
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "bundle {dir}: {} is missing; run `make models` to build the model catalogue",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// The bundle's kind (`text-generation`, `ocr`, ...).
pub fn kind_of(manifest: &Value) -> Result<String> {
    manifest["kind"]
        .as_str()
        .map(str::to_string)
        .context("manifest has no kind")
}

/// The committed sample files of `dir` (`models/<dir>/samples/samples.json`, entries with a
/// `file` key), in order.
pub fn sample_files(dir: &str) -> Result<Vec<PathBuf>> {
    let samples = workspace_root().join("models").join(dir).join("samples");
    let list = samples.join("samples.json");
    let text = std::fs::read_to_string(&list).with_context(|| format!("{}", list.display()))?;
    let items: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON list", list.display()))?;
    items
        .iter()
        .map(|i| {
            i["file"]
                .as_str()
                .map(|f| samples.join(f))
                .with_context(|| format!("{}: an entry has no \"file\"", list.display()))
        })
        .collect()
}

/// Real task inputs for the bundle of `dir`, at most `n`, as a user would send them.
pub fn inputs(dir: &str, kind: &str, n: usize) -> Result<Vec<Vec<u8>>> {
    let out: Vec<Vec<u8>> = match kind {
        "text-generation" => QUESTIONS
            .iter()
            .map(|q| {
                serde_json::to_vec(&json!({
                    "messages": [{"role": "user", "content": q}],
                    "max_tokens": 24
                }))
                .expect("JSON literal")
            })
            .collect(),
        "embeddings" => SENTENCES.iter().map(|s| s.as_bytes().to_vec()).collect(),
        "speech-recognition" | "ocr" | "image-classification" => sample_files(dir)?
            .iter()
            .map(|p| std::fs::read(p).with_context(|| format!("sample {}", p.display())))
            .collect::<Result<_>>()?,
        other => bail!("no demo inputs for kind {other}"),
    };
    Ok(out.into_iter().take(n).collect())
}

/// A short human form of one output of `kind`, for tables and the demo's per-model line.
pub fn summarize(kind: &str, output: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(output) else {
        return format!("{} bytes", output.len());
    };
    let s = match kind {
        "text-generation" | "speech-recognition" => {
            format!("{:?}", v["text"].as_str().unwrap_or("").trim())
        }
        "ocr" => format!(
            "{:?}",
            v["text"].as_str().unwrap_or("").replace('\n', " / ")
        ),
        "embeddings" => {
            let e = v["embedding"].as_array().cloned().unwrap_or_default();
            let head: Vec<String> = e
                .iter()
                .take(3)
                .map(|x| format!("{:.3}", x.as_f64().unwrap_or(0.0)))
                .collect();
            format!("{}-d vector [{}, ...]", e.len(), head.join(", "))
        }
        "image-classification" => {
            let top = &v["top5"][0];
            format!(
                "{} ({:.2})",
                top["label"].as_str().unwrap_or("?"),
                top["probability"].as_f64().unwrap_or(0.0)
            )
        }
        _ => format!("{} bytes", output.len()),
    };
    shorten(&s, 60)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max - 3).collect();
    format!("{cut}...")
}

/// sha256 of a bundle's manifest and its `file://` URI.
pub fn manifest_ref(dir: &Path) -> Result<(alloy::primitives::B256, String)> {
    let path = dir.join("manifest.json");
    let hash = crate::sha256_file(&path)?;
    let abs = path
        .canonicalize()
        .with_context(|| format!("bundle manifest {}", path.display()))?;
    Ok((hash, format!("file://{}", abs.display())))
}
