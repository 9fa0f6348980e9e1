//! Streaming generated tokens to the gateway that asked for them (`stream_to` in a
//! text-generation task's input; wire format and signature in `protocol::stream`).
//!
//! Streaming never holds up or changes the task: tokens go through an unbounded channel to one
//! HTTP request per task, run on the async runtime while inference runs on its blocking thread;
//! a gateway that is slow, gone or refusing only loses its preview (logged at debug).

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use bytes::Bytes;
use protocol::stream::{TokenLine, SIGNATURE_HEADER, TASK_HEADER};
use std::time::Duration;

/// Called once per generated token with its id and text delta (from the inference thread).
pub type TokenSink = Box<dyn FnMut(u32, &str) + Send>;

/// How long one stream may stay open (the longest generation and then some).
const STREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// Opens token streams for this worker.
#[derive(Clone)]
pub struct Streamer {
    http: reqwest::Client,
    signer: PrivateKeySigner,
    chain_id: u64,
    task_manager: Address,
    /// Allowed origins (empty: any http(s) URL).
    allow: Vec<String>,
    /// TEST-ONLY (`--test-cheat-stream`): stream upper-cased text.
    lie: bool,
}

impl Streamer {
    /// A streamer signing with `signer` for `task_manager` on `chain_id`.
    pub fn new(
        signer: PrivateKeySigner,
        chain_id: u64,
        task_manager: Address,
        allow: Vec<String>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(STREAM_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            signer,
            chain_id,
            task_manager,
            allow,
            lie: false,
        })
    }

    /// TEST-ONLY: stream text that differs from what is committed.
    pub fn lying(mut self, lie: bool) -> Self {
        self.lie = lie;
        self
    }

    /// A sink streaming `task_id`'s tokens when `input` names a `stream_to` URL this worker may
    /// reach; `None` otherwise. Must be called inside the tokio runtime (it spawns the request).
    pub fn open(&self, task_id: U256, input: &[u8]) -> Option<TokenSink> {
        let url = protocol::stream::target(input)?;
        if !self.allowed(&url) {
            tracing::debug!(task = %task_id, %url, "stream_to not in --stream-allow: not streaming");
            return None;
        }
        let signature =
            match protocol::stream::sign(&self.signer, self.chain_id, self.task_manager, task_id) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(task = %task_id, error = %e, "cannot sign the token stream");
                    return None;
                }
            };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let body = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|o| o.map(Ok::<Bytes, std::io::Error>))
        });
        let request = self
            .http
            .post(&url)
            .header(TASK_HEADER, task_id.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header("content-type", "application/x-ndjson")
            .body(reqwest::Body::wrap_stream(body));
        tokio::spawn(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::debug!(task = %task_id, "tokens streamed");
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    tracing::debug!(task = %task_id, %status, %body, "the gateway refused the token stream");
                }
                Err(e) => tracing::debug!(task = %task_id, error = %e, "token stream failed"),
            }
        });
        let lie = self.lie;
        Some(Box::new(move |token_id, text| {
            let text = if lie {
                text.to_uppercase()
            } else {
                text.to_string()
            };
            let mut line =
                serde_json::to_vec(&TokenLine { token_id, text }).expect("plain data serializes");
            line.push(b'\n');
            // a closed channel (the request ended) only loses the preview
            let _ = tx.send(Bytes::from(line));
        }))
    }

    fn allowed(&self, url: &str) -> bool {
        self.allow.is_empty()
            || self
                .allow
                .iter()
                .any(|o| origin_of(url).as_deref() == Some(o))
    }
}

/// `scheme://host[:port]` of an http(s) URL, lower-cased.
fn origin_of(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // userinfo would let "http://allowed@evil" pass a prefix check; refuse it
    if host.is_empty() || host.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

/// Parses `--stream-allow`: an http(s) origin without path.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let o = origin_of(s).ok_or_else(|| {
        format!("{s:?} is not an http:// or https:// origin (scheme://host[:port])")
    })?;
    if s.trim_end_matches('/').len() != o.len() {
        return Err(format!(
            "{s:?} has a path; give only scheme://host[:port] (e.g. {o})"
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_without_paths_and_refuse_userinfo() {
        assert_eq!(
            origin_of("http://GW:8080/v1/streams/ab").as_deref(),
            Some("http://gw:8080")
        );
        assert_eq!(origin_of("http://allowed@evil/x"), None);
        assert_eq!(origin_of("ftp://gw/x"), None);
        assert_eq!(
            parse_origin("https://gw.example.org/").unwrap(),
            "https://gw.example.org"
        );
        assert!(parse_origin("https://gw.example.org/v1")
            .unwrap_err()
            .contains("path"));
        assert!(parse_origin("gw.example.org")
            .unwrap_err()
            .contains("origin"));
    }

    #[tokio::test]
    async fn only_allowed_origins_get_a_stream() {
        let s = Streamer::new(
            PrivateKeySigner::random(),
            31337,
            Address::ZERO,
            vec!["http://127.0.0.1:9".into()],
        )
        .unwrap();
        let input = |url: &str| format!(r#"{{"prompt":"hi","stream_to":"{url}"}}"#).into_bytes();
        assert!(s
            .open(U256::from(1), &input("http://127.0.0.1:9/v1/streams/a"))
            .is_some());
        assert!(s
            .open(U256::from(1), &input("http://10.0.0.1/v1/streams/a"))
            .is_none());
        assert!(s.open(U256::from(1), br#"{"prompt":"hi"}"#).is_none());
    }
}
