//! DeepNode blob store: task payloads too large for the chain (a 5 MB image, 30 s of audio, a
//! long answer) travel off-chain, addressed on-chain by their sha256.
//!
//! - [`BlobRef`]: the on-chain envelope (`\x00DNB\x01` ++ sha256 ++ URL) put in task inputs and
//!   outputs in place of the payload;
//! - [`Store`]: blobs under `blobs/<sha256 hex>` in a local directory or an S3-compatible bucket
//!   (`object_store`), re-hashed on every read;
//! - [`Client`]: upload to the service, fetch a [`BlobRef`] with a timeout, a size cap and a hash
//!   check;
//! - [`service`]: the HTTP service of the `blobstore` binary.
#![warn(missing_docs)]

pub mod client;
pub mod envelope;
mod error;
pub mod service;
pub mod store;

pub use client::{Client, Stored};
pub use envelope::{parse_sha256, sha256, BlobRef, MAGIC};
pub use error::BlobError;
pub use store::{S3Config, Store, DEFAULT_MAX_BYTES};
