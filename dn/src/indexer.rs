//! Reading the indexer's REST API (indexer/src/api.rs): JSON over HTTP GET, a 404 as "none".

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::time::Duration;

/// A client of one indexer.
pub struct Indexer {
    base: String,
    http: reqwest::Client,
}

impl Indexer {
    /// The indexer at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Indexer> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--indexer-url `{base}`: not an http(s) URL");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("HTTP client")?;
        Ok(Indexer { base, http })
    }

    /// GET `path` (`/epochs`): the JSON body, `None` on 404, an error naming the URL otherwise.
    pub async fn get(&self, path: &str) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().await.map_err(|e| {
            anyhow!(
                "indexer {url}: {}",
                crate::chain::one_line(&blobstore::client::error_chain(&e))
            )
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| anyhow!("indexer {url}: reading the answer: {e}"))?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let detail: String = text.chars().take(300).collect();
            bail!(
                "indexer {url}: HTTP {}: {}",
                status.as_u16(),
                crate::chain::one_line(&detail)
            );
        }
        let v = serde_json::from_slice(&body)
            .map_err(|e| anyhow!("indexer {url}: the answer is not JSON: {e}"))?;
        Ok(Some(v))
    }
}
