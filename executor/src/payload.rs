//! Off-chain payloads: a task input that is a blob reference (`blobstore::BlobRef`) is fetched
//! and verified by sha256 before it runs; an output larger than `--inline-output-bytes` is
//! published to the blob store and committed by reference (its keccak256 stays in the leaf).

use std::time::Duration;

use blobstore::{BlobRef, Client};
use protocol::codes::FailureCode;

use crate::outcome::Outcome;

/// Fetches referenced inputs and publishes large outputs.
pub struct Payloads {
    client: Client,
    store_url: Option<String>,
    inline_output_bytes: usize,
}

impl Payloads {
    /// `store_url`: where outputs are published (`None`: always inline); inputs are fetched
    /// from their own URL with `timeout`, at most `max_bytes`.
    pub fn new(
        store_url: Option<String>,
        timeout: Duration,
        max_bytes: u64,
        inline_output_bytes: usize,
    ) -> anyhow::Result<Self> {
        let client =
            Client::new(timeout, max_bytes).map_err(|e| anyhow::anyhow!("blob client: {e}"))?;
        Ok(Self {
            client,
            store_url: store_url.map(|u| u.trim_end_matches('/').to_string()),
            inline_output_bytes,
        })
    }

    /// The payload of a task input: the bytes themselves, or the verified bytes a reference
    /// points at. A reference that cannot be fetched in time, is too large or does not match its
    /// hash is the task's outcome (`input_unavailable`); a malformed one is `input_decode`.
    pub async fn resolve(&self, input: Vec<u8>) -> Result<Vec<u8>, Outcome> {
        match BlobRef::decode(&input) {
            None => Ok(input),
            Some(Err(e)) => Err(Outcome::failure(FailureCode::InputDecode, e)),
            Some(Ok(blob)) => self
                .client
                .fetch(&blob)
                .await
                .map_err(|e| Outcome::failure(FailureCode::InputUnavailable, e)),
        }
    }

    /// What to publish in the commit event for `output`: itself when small (or without a
    /// store), else a reference to its copy in the store. A store that refuses keeps the
    /// output inline (the commit still carries it; only gas is lost).
    pub async fn publish(&self, output: Vec<u8>) -> Vec<u8> {
        let Some(url) = self.store_url.as_deref() else {
            return output;
        };
        if output.len() <= self.inline_output_bytes {
            return output;
        }
        match self.client.put(url, output.clone()).await {
            Ok(blob) => blob.encode(),
            Err(e) => {
                tracing::warn!(error = %e, bytes = output.len(), "blob store refused the output; committing it inline");
                output
            }
        }
    }
}
