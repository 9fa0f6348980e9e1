//! Off-chain payloads: a task input that is a blob reference (`blobstore::BlobRef`) is fetched
//! and verified by sha256 before it runs; an output larger than `--inline-output-bytes` is
//! published to the blob store and committed by reference (its keccak256 stays in the leaf).
//!
//! A blob store that is down for a while (refused connections, timeouts, HTTP 5xx or 429) is
//! waited for: a referenced input is fetched again with backoff until `--blob-timeout-secs`
//! after the first attempt, and only then committed as `input_unavailable`. A missing blob, one
//! that does not match its hash or is too large fails at once. The inputs of a batch are fetched
//! concurrently, so one batch waits at most that long for all of them.

use std::time::{Duration, Instant};

use blobstore::{BlobRef, Client};
use protocol::codes::FailureCode;

use crate::outcome::Outcome;

/// Fetches referenced inputs and publishes large outputs.
pub struct Payloads {
    client: Client,
    timeout: Duration,
    store_url: Option<String>,
    inline_output_bytes: usize,
}

impl Payloads {
    /// `store_url`: where outputs are published (`None`: always inline); inputs are fetched
    /// from their own URL within `timeout` (all retries included), at most `max_bytes`.
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
            timeout,
            store_url: store_url.map(|u| u.trim_end_matches('/').to_string()),
            inline_output_bytes,
        })
    }

    /// The payload of each task input of a batch, in input order: the bytes themselves, or the
    /// verified bytes a reference points at. A reference that cannot be fetched within the
    /// timeout (a transient failure is retried until then), is missing, too large or does not
    /// match its hash is the task's outcome (`input_unavailable`); a malformed one is
    /// `input_decode`. References are fetched concurrently: the batch waits for the slowest,
    /// at most the timeout.
    pub async fn resolve_all(&self, inputs: Vec<Vec<u8>>) -> Vec<Result<Vec<u8>, Outcome>> {
        let mut out: Vec<Option<Result<Vec<u8>, Outcome>>> = Vec::with_capacity(inputs.len());
        let mut fetches = tokio::task::JoinSet::new();
        for (i, input) in inputs.into_iter().enumerate() {
            if BlobRef::decode(&input).is_none() {
                out.push(Some(Ok(input)));
                continue;
            }
            out.push(None);
            let (client, timeout) = (self.client.clone(), self.timeout);
            fetches.spawn(async move { (i, resolve(&client, timeout, input).await) });
        }
        while let Some(done) = fetches.join_next().await {
            match done {
                Ok((i, r)) => out[i] = Some(r),
                Err(e) => tracing::error!(error = %e, "input fetch task failed"),
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Outcome::failure(
                        FailureCode::Runtime,
                        "the input fetch crashed",
                    ))
                })
            })
            .collect()
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
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, bytes = output.len(), "blob store unavailable; committing the output inline");
                output
            }
            Err(e) => {
                tracing::warn!(error = %e, bytes = output.len(), "blob store refused the output; committing it inline");
                output
            }
        }
    }
}

/// One input of [`Payloads::resolve_all`].
async fn resolve(client: &Client, timeout: Duration, input: Vec<u8>) -> Result<Vec<u8>, Outcome> {
    let blob = match BlobRef::decode(&input) {
        None => return Ok(input),
        Some(Err(e)) => return Err(Outcome::failure(FailureCode::InputDecode, e)),
        Some(Ok(blob)) => blob,
    };
    let started = Instant::now();
    match client.fetch_until(&blob, started + timeout).await {
        Ok(bytes) => {
            if started.elapsed() >= Duration::from_secs(1) {
                tracing::info!(sha256 = %blob.hex(), waited = ?started.elapsed(), "input blob fetched after retries");
            }
            Ok(bytes)
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(sha256 = %blob.hex(), error = %e, waited = ?started.elapsed(), "blob store unavailable for the whole --blob-timeout-secs; input committed as unavailable");
            Err(Outcome::failure(
                FailureCode::InputUnavailable,
                format!("blob store unavailable for {timeout:?}: {e}"),
            ))
        }
        Err(e) => {
            tracing::info!(sha256 = %blob.hex(), error = %e, "input blob missing or invalid; input committed as unavailable");
            Err(Outcome::failure(FailureCode::InputUnavailable, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blobstore::service::{router, AppState};
    use blobstore::Store;
    use std::net::SocketAddr;

    fn free_addr() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    fn app(store: Store, addr: SocketAddr) -> axum::Router {
        router(AppState {
            store,
            public_url: format!("http://{addr}"),
        })
    }

    fn payloads(timeout: Duration) -> Payloads {
        Payloads::new(None, timeout, 1 << 20, 1024).unwrap()
    }

    fn reference(addr: SocketAddr, sha256: [u8; 32]) -> Vec<u8> {
        BlobRef {
            sha256,
            url: format!("http://{addr}/blobs/{}", hex::encode(sha256)),
        }
        .encode()
    }

    impl Payloads {
        async fn resolve(&self, input: Vec<u8>) -> Result<Vec<u8>, Outcome> {
            self.resolve_all(vec![input]).await.pop().unwrap()
        }
    }

    fn message(o: &Outcome) -> String {
        String::from_utf8_lossy(&o.output).into_owned()
    }

    #[tokio::test]
    async fn an_input_is_fetched_once_the_store_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let data = b"an image uploaded before the outage".to_vec();
        let sha = store.put(data.clone().into()).await.unwrap();
        let addr = free_addr();
        // the store is down when the task runs, and back 1.5 s later
        let app = app(store, addr);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        let t = Instant::now();
        let got = payloads(Duration::from_secs(20))
            .resolve(reference(addr, sha))
            .await
            .unwrap_or_else(|o| panic!("committed {:?}: {}", o.code, message(&o)));
        assert_eq!(got, data);
        assert!(
            t.elapsed() >= Duration::from_millis(1400),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn a_store_down_past_the_timeout_is_input_unavailable() {
        let t = Instant::now();
        let o = payloads(Duration::from_secs(1))
            .resolve(reference(free_addr(), [7; 32]))
            .await
            .unwrap_err();
        let took = t.elapsed();
        assert_eq!(o.code, FailureCode::InputUnavailable);
        assert!(
            message(&o).contains("blob store unavailable for 1s"),
            "{}",
            message(&o)
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(6),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_input_is_unavailable_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app(Store::local(dir.path()).unwrap(), addr);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let t = Instant::now();
        let o = payloads(Duration::from_secs(20))
            .resolve(reference(addr, [7; 32]))
            .await
            .unwrap_err();
        assert_eq!(o.code, FailureCode::InputUnavailable);
        assert!(message(&o).contains("404"), "{}", message(&o));
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        // and a malformed reference is an input fault, not an outage
        let mut cut = reference(addr, [7; 32]);
        cut.truncate(20);
        let o = payloads(Duration::from_secs(20))
            .resolve(cut)
            .await
            .unwrap_err();
        assert_eq!(o.code, FailureCode::InputDecode);
    }

    #[tokio::test]
    async fn a_batch_waits_for_the_store_once_not_once_per_input() {
        let down = free_addr();
        let inputs = vec![
            reference(down, [1; 32]),
            b"inline input".to_vec(),
            reference(down, [2; 32]),
            reference(down, [3; 32]),
            reference(down, [4; 32]),
        ];
        let t = Instant::now();
        let got = payloads(Duration::from_secs(2)).resolve_all(inputs).await;
        let took = t.elapsed();
        // one after the other this would take 4 x 2 s
        assert!(took < Duration::from_secs(6), "{took:?}");
        assert_eq!(got.len(), 5);
        assert_eq!(got[1].as_ref().unwrap(), b"inline input");
        for i in [0, 2, 3, 4] {
            let o = got[i].as_ref().unwrap_err();
            assert_eq!(o.code, FailureCode::InputUnavailable, "{i}");
        }
    }
}
