//! HTTP client for blobs: uploads to a blobstore service and fetches a [`BlobRef`] from wherever
//! its URL points, with a timeout, a size cap enforced while reading, and a sha256 check.
//!
//! The client is async. Blocking code that runs inside a tokio runtime (the inference code runs
//! in `spawn_blocking`) calls it with
//! `tokio::runtime::Handle::current().block_on(client.fetch(&blob))`; a separate blocking client
//! would duplicate the cap and hash logic, and a private runtime per call would break reqwest's
//! connection pool. Never call `block_on` from an async task itself (tokio panics): `.await` there.

use crate::{envelope, BlobError, BlobRef};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What the service answers to an upload (`PUT /blobs`, `PUT /blobs/{sha256}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// GET URL of the blob (`<public base>/blobs/<sha256>`).
    pub url: String,
}

/// Error bodies longer than this are cut in [`BlobError::Status`].
const DETAIL_BYTES: usize = 512;

/// First pause of [`Client::fetch_until`] after a transient failure; it doubles after each one.
pub const RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest pause of [`Client::fetch_until`] between two attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(4);

/// Uploads and fetches blobs over HTTP. Cheap to clone (shares one connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
    max_bytes: u64,
    base_url: Option<String>,
}

impl Client {
    /// A client whose every request (connect, headers and whole body) must finish within
    /// `timeout`, and that refuses blobs over `max_bytes`.
    pub fn new(timeout: Duration, max_bytes: u64) -> Result<Self, BlobError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| BlobError::Unreachable {
                location: "(HTTP client)".into(),
                detail: error_chain(&e),
            })?;
        Ok(Self {
            http,
            timeout,
            max_bytes,
            base_url: None,
        })
    }

    /// Base URL of the configured blobstore service: a [`BlobRef`] with an empty URL is fetched
    /// from `<base>/blobs/<sha256>`.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// The URL [`Client::fetch`] GETs for `blob`.
    pub fn url_of(&self, blob: &BlobRef) -> Result<String, BlobError> {
        if !blob.url.is_empty() {
            return Ok(blob.url.clone());
        }
        match &self.base_url {
            Some(base) => Ok(blob_url(base, &blob.sha256)),
            None => Err(BlobError::Envelope(format!(
                "blob {} has no URL and no blobstore base URL is configured",
                blob.hex()
            ))),
        }
    }

    /// Uploads `bytes` to the service at `base_url` (`PUT <base>/blobs/<sha256>`, so the server
    /// checks the hash too) and returns the reference to put on-chain.
    pub async fn put(&self, base_url: &str, bytes: Vec<u8>) -> Result<BlobRef, BlobError> {
        let sha256 = envelope::sha256(&bytes);
        let url = blob_url(base_url, &sha256);
        if bytes.len() as u64 > self.max_bytes {
            return Err(BlobError::TooLarge {
                location: url,
                size: bytes.len() as u64,
                max: self.max_bytes,
            });
        }
        let resp = self
            .http
            .put(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.transport(&url, e))?;
        let resp = self.check_status(&url, resp).await?;
        let body = self.read_capped(&url, resp, 64 << 10).await?;
        let stored: Stored = serde_json::from_slice(&body).map_err(|e| BlobError::Status {
            location: url.clone(),
            code: 201,
            detail: format!("unexpected answer to an upload: {e}"),
        })?;
        if stored.sha256 != hex::encode(sha256) {
            return Err(BlobError::Status {
                location: url,
                code: 201,
                detail: format!("server stored the upload as {}", stored.sha256),
            });
        }
        Ok(BlobRef {
            sha256,
            url: stored.url,
        })
    }

    /// GETs the blob, refuses it when over the size cap (from Content-Length before reading,
    /// then by counting while reading) and verifies its sha256.
    pub async fn fetch(&self, blob: &BlobRef) -> Result<Vec<u8>, BlobError> {
        let url = self.url_of(blob)?;
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport(&url, e))?;
        let resp = self.check_status(&url, resp).await?;
        let bytes = self.read_capped(&url, resp, self.max_bytes).await?;
        let actual = envelope::sha256(&bytes);
        if actual != blob.sha256 {
            return Err(BlobError::HashMismatch {
                location: url,
                expected: blob.sha256,
                actual,
            });
        }
        Ok(bytes)
    }

    /// [`Client::fetch`], retried while it fails transiently ([`BlobError::is_transient`]: the
    /// store unreachable, a timeout, HTTP 5xx or 429) until `deadline`, pausing
    /// [`RETRY_FIRST`] doubling up to [`RETRY_MAX`] between attempts. A permanent failure (404,
    /// hash mismatch, too large, malformed reference) returns at once. No attempt runs past
    /// `deadline`: one still running then is cut with [`BlobError::Timeout`]; otherwise the last
    /// error is returned. A deadline already passed makes it one plain [`Client::fetch`].
    pub async fn fetch_until(
        &self,
        blob: &BlobRef,
        deadline: Instant,
    ) -> Result<Vec<u8>, BlobError> {
        let started = Instant::now();
        if deadline <= started {
            return self.fetch(blob).await;
        }
        let mut pause = RETRY_FIRST;
        let mut attempt = 1u32;
        loop {
            let err = match tokio::time::timeout_at(deadline.into(), self.fetch(blob)).await {
                Ok(Ok(bytes)) => return Ok(bytes),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(BlobError::Timeout {
                        location: self.url_of(blob)?,
                        after: started.elapsed(),
                    })
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if !err.is_transient() || left.is_zero() {
                return Err(err);
            }
            tracing::debug!(error = %err, attempt, retry_in = ?pause.min(left), "blob fetch failed transiently; retrying");
            tokio::time::sleep(pause.min(left)).await;
            if Instant::now() >= deadline {
                return Err(err);
            }
            pause = (pause * 2).min(RETRY_MAX);
            attempt += 1;
        }
    }

    async fn read_capped(
        &self,
        url: &str,
        mut resp: reqwest::Response,
        max: u64,
    ) -> Result<Vec<u8>, BlobError> {
        let too_large = |size| BlobError::TooLarge {
            location: url.to_string(),
            size,
            max,
        };
        let announced = resp.content_length();
        if let Some(len) = announced.filter(|&len| len > max) {
            return Err(too_large(len));
        }
        let mut buf = Vec::with_capacity(announced.unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(url, e))? {
            let size = (buf.len() + chunk.len()) as u64;
            if size > max {
                return Err(too_large(size));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    async fn check_status(
        &self,
        url: &str,
        mut resp: reqwest::Response,
    ) -> Result<reqwest::Response, BlobError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let mut detail = Vec::new();
        while detail.len() < DETAIL_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => detail.extend_from_slice(&chunk),
                _ => break,
            }
        }
        detail.truncate(DETAIL_BYTES);
        Err(BlobError::Status {
            location: url.to_string(),
            code: status.as_u16(),
            detail: String::from_utf8_lossy(&detail).into_owned(),
        })
    }

    fn transport(&self, url: &str, e: reqwest::Error) -> BlobError {
        if e.is_builder() {
            // a URL reqwest cannot even send a request to: retrying cannot help
            BlobError::Envelope(format!("{url}: malformed URL: {}", error_chain(&e)))
        } else if e.is_timeout() {
            BlobError::Timeout {
                location: url.to_string(),
                after: self.timeout,
            }
        } else {
            BlobError::Unreachable {
                location: url.to_string(),
                detail: error_chain(&e),
            }
        }
    }
}

/// `<base>/blobs/<sha256 hex>`.
pub fn blob_url(base_url: &str, sha256: &[u8; 32]) -> String {
    format!(
        "{}/blobs/{}",
        base_url.trim_end_matches('/'),
        hex::encode(sha256)
    )
}

/// An error and its causes on one line (reqwest's own message omits the cause); other HTTP
/// clients of the workspace (the `dn` CLI) format their errors with it too.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
