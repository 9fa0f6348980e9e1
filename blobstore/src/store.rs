//! Blobs kept under `blobs/<sha256 hex>` in any `object_store` backend (a local directory or an
//! S3-compatible bucket). Reads re-hash, so a corrupted disk or bucket never serves wrong bytes.

use crate::{envelope, BlobError};
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::Path;
use std::sync::Arc;

/// Default largest blob: 64 MiB (a few minutes of audio, a large image, a long answer).
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// Where an S3-compatible bucket is and how to sign requests to it.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// Bucket name (must exist).
    pub bucket: String,
    /// Endpoint URL for non-AWS services (MinIO, R2, moto); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when unsure: most S3-compatible services ignore it).
    pub region: String,
    /// Access key id; `None` falls back to the instance's credentials (AWS metadata service).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint (local test servers only).
    pub allow_http: bool,
}

/// A content-addressed blob store. Cheap to clone (the backend is shared).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    max_bytes: u64,
}

impl Store {
    /// Wraps any `object_store` backend, with [`DEFAULT_MAX_BYTES`].
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Blobs in files under `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<Self, BlobError> {
        let backend = |source| BlobError::Backend {
            location: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            backend(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })
        })?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(backend)?;
        Ok(Self::new(Arc::new(fs)))
    }

    /// Blobs in an S3-compatible bucket.
    pub fn s3(cfg: &S3Config) -> Result<Self, BlobError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_allow_http(cfg.allow_http);
        if let Some(endpoint) = &cfg.endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let Some(id) = &cfg.access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(secret) = &cfg.secret_access_key {
            b = b.with_secret_access_key(secret);
        }
        let s3 = b.build().map_err(|source| BlobError::Backend {
            location: format!("s3://{}", cfg.bucket),
            source,
        })?;
        Ok(Self::new(Arc::new(s3)))
    }

    /// Sets the largest blob accepted by [`Store::put`] and served by [`Store::get`].
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The largest blob this store accepts.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The backend (tests use it to corrupt or inspect stored objects).
    pub fn backend(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The object key of a blob: `blobs/<sha256 hex>`.
    pub fn key(sha256: &[u8; 32]) -> Key {
        Key::from(format!("blobs/{}", hex::encode(sha256)))
    }

    /// Stores `bytes` and returns their sha256. Idempotent (same bytes, same key). Refuses blobs
    /// over the limit.
    pub async fn put(&self, bytes: Bytes) -> Result<[u8; 32], BlobError> {
        let sha = envelope::sha256(&bytes);
        self.put_checked(sha, bytes).await?;
        Ok(sha)
    }

    /// Stores `bytes` only if they hash to `expected` (an upload that names its address).
    pub async fn put_expecting(&self, expected: [u8; 32], bytes: Bytes) -> Result<(), BlobError> {
        let actual = envelope::sha256(&bytes);
        if actual != expected {
            return Err(BlobError::HashMismatch {
                location: Self::key(&expected).to_string(),
                expected,
                actual,
            });
        }
        self.put_checked(expected, bytes).await
    }

    async fn put_checked(&self, sha: [u8; 32], bytes: Bytes) -> Result<(), BlobError> {
        let key = Self::key(&sha);
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(BlobError::TooLarge {
                location: key.to_string(),
                size,
                max: self.max_bytes,
            });
        }
        // Always written, even when present: the write is atomic and the bytes are the same, so
        // this is idempotent, and it repairs an object corrupted in place.
        self.inner
            .put(&key, PutPayload::from(bytes))
            .await
            // Not `backend()`: "not found" on a write means the bucket or directory is missing.
            .map_err(|source| BlobError::Backend {
                location: key.to_string(),
                source,
            })?;
        Ok(())
    }

    /// The blob's bytes, re-hashed: a stored object whose bytes do not match its name (disk or
    /// bucket corruption, a foreign writer) is refused with [`BlobError::HashMismatch`].
    pub async fn get(&self, sha256: &[u8; 32]) -> Result<Bytes, BlobError> {
        let key = Self::key(sha256);
        let res = self
            .inner
            .get(&key)
            .await
            .map_err(|source| backend(&key, source))?;
        if res.meta.size > self.max_bytes {
            return Err(BlobError::TooLarge {
                location: key.to_string(),
                size: res.meta.size,
                max: self.max_bytes,
            });
        }
        let bytes = res.bytes().await.map_err(|source| backend(&key, source))?;
        let actual = envelope::sha256(&bytes);
        if actual != *sha256 {
            return Err(BlobError::HashMismatch {
                location: key.to_string(),
                expected: *sha256,
                actual,
            });
        }
        Ok(bytes)
    }

    /// The blob's size, or `None` when absent (the bytes are not read nor verified).
    pub async fn head(&self, sha256: &[u8; 32]) -> Result<Option<u64>, BlobError> {
        let key = Self::key(sha256);
        match self.inner.head(&key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(backend(&key, source)),
        }
    }

    /// Whether a blob is stored under `sha256`.
    pub async fn exists(&self, sha256: &[u8; 32]) -> Result<bool, BlobError> {
        Ok(self.head(sha256).await?.is_some())
    }
}

fn backend(key: &Key, source: object_store::Error) -> BlobError {
    match source {
        object_store::Error::NotFound { .. } => BlobError::NotFound {
            location: key.to_string(),
        },
        source => BlobError::Backend {
            location: key.to_string(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_put_get_head() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(&dir.path().join("new/sub")).unwrap();
        let data = Bytes::from_static(b"a 5 MB image, in spirit");
        let sha = store.put(data.clone()).await.unwrap();
        assert_eq!(sha, envelope::sha256(&data));
        assert_eq!(store.put(data.clone()).await.unwrap(), sha, "idempotent");
        assert_eq!(store.get(&sha).await.unwrap(), data);
        assert_eq!(store.head(&sha).await.unwrap(), Some(data.len() as u64));
        assert!(store.exists(&sha).await.unwrap());
        let file = dir.path().join("new/sub/blobs").join(hex::encode(sha));
        assert_eq!(std::fs::read(file).unwrap(), data);
        store.put_expecting(sha, data.clone()).await.unwrap();
    }

    #[tokio::test]
    async fn local_missing_and_wrong_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap().with_max_bytes(8);
        let missing = [9u8; 32];
        assert!(!store.exists(&missing).await.unwrap());
        assert_eq!(store.head(&missing).await.unwrap(), None);
        let err = store.get(&missing).await.unwrap_err();
        assert!(matches!(err, BlobError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains(&hex::encode(missing)), "{err}");

        let err = store
            .put(Bytes::from_static(b"123456789"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                BlobError::TooLarge {
                    size: 9,
                    max: 8,
                    ..
                }
            ),
            "{err}"
        );
        let err = store
            .put_expecting(missing, Bytes::from_static(b"abc"))
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::HashMismatch { .. }), "{err}");
        assert!(!store.exists(&missing).await.unwrap());
    }

    #[tokio::test]
    async fn local_corruption_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let sha = store.put(Bytes::from_static(b"original")).await.unwrap();
        let file = dir.path().join("blobs").join(hex::encode(sha));
        std::fs::write(&file, b"tampered").unwrap();
        match store.get(&sha).await.unwrap_err() {
            BlobError::HashMismatch {
                location,
                expected,
                actual,
            } => {
                assert_eq!(expected, sha);
                assert_eq!(actual, envelope::sha256(b"tampered"));
                assert_eq!(location, format!("blobs/{}", hex::encode(sha)));
            }
            other => panic!("expected HashMismatch, got {other}"),
        }
    }
}
