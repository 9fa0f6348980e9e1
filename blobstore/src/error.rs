//! The one error type of the crate. Every variant names where it happened (`location`: the URL
//! fetched, or the store key) so a log line alone says which blob and which server was at fault.

use std::time::Duration;

/// What went wrong storing, fetching or decoding a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The bytes start with the envelope magic but are not a valid envelope.
    #[error("blob envelope: {0}")]
    Envelope(String),
    /// A sha256 that is not 64 hex digits.
    #[error("bad sha256 {0:?}: expected 64 hex digits")]
    BadHash(String),
    /// The blob is larger than the configured limit (refused before reading it all).
    #[error("{location}: blob of {size} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// URL or store key.
        location: String,
        /// Size announced or read so far.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes do not hash to the sha256 they are addressed by.
    #[error(
        "{location}: sha256 mismatch: expected {}, got {}",
        hex::encode(.expected),
        hex::encode(.actual)
    )]
    HashMismatch {
        /// URL or store key.
        location: String,
        /// The address asked for.
        expected: [u8; 32],
        /// The hash of the bytes received.
        actual: [u8; 32],
    },
    /// No blob under that hash in the store.
    #[error("{location}: no such blob")]
    NotFound {
        /// Store key.
        location: String,
    },
    /// The server did not answer (or finish the body) in time.
    #[error("{location}: timed out after {after:?}")]
    Timeout {
        /// URL.
        location: String,
        /// The client's timeout.
        after: Duration,
    },
    /// No connection (refused, DNS, TLS, reset).
    #[error("{location}: unreachable: {detail}")]
    Unreachable {
        /// URL.
        location: String,
        /// The transport error.
        detail: String,
    },
    /// The server answered with a non-success status.
    #[error("{location}: HTTP {code}: {detail}")]
    Status {
        /// URL.
        location: String,
        /// HTTP status code.
        code: u16,
        /// Start of the response body (our service sends `{"error","detail"}`).
        detail: String,
    },
    /// The storage backend failed (disk, S3 credentials, network to S3).
    #[error("{location}: storage backend: {source}")]
    Backend {
        /// Store key or store description.
        location: String,
        /// The `object_store` error.
        source: object_store::Error,
    },
}

impl BlobError {
    /// Whether the same request may succeed later: the server or the way to it failed
    /// (`Unreachable`: refused, reset, DNS; `Timeout`; HTTP 5xx, 429 and 408; a storage backend
    /// that did not answer). Everything else is permanent and retrying cannot help: the blob is
    /// missing (404, `NotFound`), is not what its reference promises (`HashMismatch`,
    /// `TooLarge`), the reference or hash is malformed (`Envelope`, `BadHash`), the request is
    /// refused (any other 4xx), or the backend refuses it (bad path, credentials, precondition).
    pub fn is_transient(&self) -> bool {
        match self {
            BlobError::Timeout { .. } | BlobError::Unreachable { .. } => true,
            BlobError::Status { code, .. } => matches!(code, 408 | 429 | 500..=599),
            BlobError::Backend { source, .. } => !matches!(
                source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. }
                    | object_store::Error::NotModified { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            BlobError::Envelope(_)
            | BlobError::BadHash(_)
            | BlobError::TooLarge { .. }
            | BlobError::HashMismatch { .. }
            | BlobError::NotFound { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> BlobError {
        BlobError::Status {
            location: "http://store/blobs/x".into(),
            code,
            detail: String::new(),
        }
    }

    fn backend(source: object_store::Error) -> BlobError {
        BlobError::Backend {
            location: "blobs/x".into(),
            source,
        }
    }

    fn boxed() -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(std::io::Error::other("x"))
    }

    #[test]
    fn the_server_or_the_network_failing_is_transient() {
        let transient = [
            BlobError::Timeout {
                location: "http://store/blobs/x".into(),
                after: Duration::from_secs(30),
            },
            BlobError::Unreachable {
                location: "http://store/blobs/x".into(),
                detail: "connection refused".into(),
            },
            status(500),
            status(502),
            status(503),
            status(504),
            status(599),
            status(429),
            status(408),
            backend(object_store::Error::Generic {
                store: "S3",
                source: boxed(),
            }),
        ];
        for e in transient {
            assert!(e.is_transient(), "{e}");
        }
    }

    #[test]
    fn a_missing_wrong_or_malformed_blob_is_permanent() {
        let permanent = [
            BlobError::Envelope("cut short".into()),
            BlobError::BadHash("xyz".into()),
            BlobError::TooLarge {
                location: "http://store/blobs/x".into(),
                size: 2,
                max: 1,
            },
            BlobError::HashMismatch {
                location: "http://store/blobs/x".into(),
                expected: [0; 32],
                actual: [1; 32],
            },
            BlobError::NotFound {
                location: "blobs/x".into(),
            },
            status(404),
            status(400),
            status(403),
            status(410),
            status(413),
            status(422),
            status(301),
            backend(object_store::Error::NotFound {
                path: "blobs/x".into(),
                source: boxed(),
            }),
            backend(object_store::Error::PermissionDenied {
                path: "blobs/x".into(),
                source: boxed(),
            }),
            backend(object_store::Error::Unauthenticated {
                path: "blobs/x".into(),
                source: boxed(),
            }),
            backend(object_store::Error::NotSupported { source: boxed() }),
        ];
        for e in permanent {
            assert!(!e.is_transient(), "{e}");
        }
    }
}
