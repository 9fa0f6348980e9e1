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
