//! Token streams from workers (`protocol::stream` has the wire format): a streaming chat call
//! registers a listener under a random nonce and names `<public URL>/streams/<nonce>` in its task's
//! input; the assigned worker POSTs its tokens there, signed with its wallet. A stream is accepted
//! only from the task's assigned worker, once, and only while its caller listens.

use crate::error::ApiError;
use alloy::primitives::U256;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use futures_util::StreamExt;
use protocol::stream::{TokenLine, SIGNATURE_HEADER, TASK_HEADER};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Most token lines one stream may carry (far above any model's token limit).
const MAX_LINES: usize = 65_536;
/// Longest token line, in bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// How long a worker's stream waits for the gateway to learn which task it submitted.
const TASK_WAIT: Duration = Duration::from_secs(15);

/// One streaming call's slot.
struct Entry {
    /// The task, once `submitTasks` returned its id.
    task: watch::Sender<Option<U256>>,
    /// Taken by the one accepted worker stream.
    tx: Mutex<Option<mpsc::Sender<TokenLine>>>,
}

/// Open listeners by nonce.
#[derive(Default)]
pub struct Hub {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

/// A caller's end of a stream; dropping it closes the slot (a worker still streaming is told
/// the caller is gone).
pub struct Listener {
    hub: Arc<Hub>,
    nonce: String,
    entry: Arc<Entry>,
    /// Token lines as the worker sends them.
    pub rx: mpsc::Receiver<TokenLine>,
}

impl Listener {
    /// The path workers stream to (append to the gateway's public URL).
    pub fn path(&self) -> String {
        format!("/streams/{}", self.nonce)
    }

    /// Names the task this stream belongs to (after its submission).
    pub fn set_task(&self, task: U256) {
        self.entry.task.send_replace(Some(task));
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Ok(mut e) = self.hub.entries.lock() {
            e.remove(&self.nonce);
        }
    }
}

impl Hub {
    /// Registers a new listener under a fresh random nonce.
    pub fn listen(self: &Arc<Self>) -> Listener {
        let nonce = alloy::hex::encode(rand::random::<[u8; 16]>());
        let (tx, rx) = mpsc::channel(256);
        let (task, _) = watch::channel(None);
        let entry = Arc::new(Entry {
            task,
            tx: Mutex::new(Some(tx)),
        });
        if let Ok(mut e) = self.entries.lock() {
            e.insert(nonce.clone(), entry.clone());
        }
        Listener {
            hub: self.clone(),
            nonce,
            entry,
            rx,
        }
    }

    /// How many listeners are open.
    pub fn open(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    fn get(&self, nonce: &str) -> Option<Arc<Entry>> {
        self.entries.lock().ok()?.get(nonce).cloned()
    }
}

fn refused(status: StatusCode, message: String) -> ApiError {
    ApiError {
        status,
        ..ApiError::invalid("stream", message)
    }
}

/// `GET /streams`: how many streaming calls are open.
pub async fn open_streams(State(s): State<Arc<crate::AppState>>) -> Json<Value> {
    Json(json!({"open": s.streams.open()}))
}

/// `POST /streams/{nonce}`: a worker's token stream (NDJSON body of [`TokenLine`]s).
pub async fn worker_stream(
    State(s): State<Arc<crate::AppState>>,
    Path(nonce): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let entry = s.streams.get(&nonce).ok_or_else(|| {
        refused(
            StatusCode::NOT_FOUND,
            "no caller is waiting on this stream (it ended, or never existed)".into(),
        )
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let task: U256 = header(TASK_HEADER)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            refused(
                StatusCode::BAD_REQUEST,
                format!("header {TASK_HEADER} must hold the task id"),
            )
        })?;
    let signature = header(SIGNATURE_HEADER).ok_or_else(|| {
        refused(
            StatusCode::UNAUTHORIZED,
            format!("header {SIGNATURE_HEADER} (the worker's signature) is missing"),
        )
    })?;
    // who signed, and is it the task's worker? (checked before anything waits, so a caller
    // without the worker's key is refused at once)
    let d = s.chain.deployment();
    let signer = protocol::stream::recover(signature, s.chain.chain_id(), d.task_manager, task)
        .map_err(|e| refused(StatusCode::UNAUTHORIZED, e))?;
    let worker = s.chain.worker_of(task).await?;
    if worker != signer {
        return Err(refused(
            StatusCode::FORBIDDEN,
            format!("{signer} is not task {task}'s assigned worker"),
        ));
    }
    // the gateway learns its task id from submitTasks' receipt, which may still be on its way
    let mut known = entry.task.subscribe();
    let ours = tokio::time::timeout(TASK_WAIT, known.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|t| *t));
    if ours != Some(task) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            format!("this stream does not belong to task {task}"),
        ));
    }
    let tx = entry
        .tx
        .lock()
        .ok()
        .and_then(|mut t| t.take())
        .ok_or_else(|| {
            refused(
                StatusCode::CONFLICT,
                format!("task {task}'s tokens are already being streamed"),
            )
        })?;
    drop(entry);
    let mut data = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut delivered = 0usize;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| {
            refused(
                StatusCode::BAD_REQUEST,
                format!("reading the stream body: {e}"),
            )
        })?;
        buf.extend_from_slice(&chunk);
        while let Some(at) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=at).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let token: TokenLine = serde_json::from_slice(&line).map_err(|e| {
                refused(
                    StatusCode::BAD_REQUEST,
                    format!("line {} is not a token line: {e}", delivered + 1),
                )
            })?;
            if delivered == MAX_LINES {
                return Err(refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("more than {MAX_LINES} tokens"),
                ));
            }
            if tx.send(token).await.is_err() {
                return Ok(Json(json!({"delivered": delivered, "caller": "gone"})));
            }
            delivered += 1;
        }
        if buf.len() > MAX_LINE_BYTES {
            return Err(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a token line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
    }
    Ok(Json(json!({"delivered": delivered, "caller": "listening"})))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloy::providers::Provider;
    use axum::http::Request;
    use tower::ServiceExt;

    /// A gateway state whose chain is never reached (an RPC URL nobody listens on): the refusals
    /// below all happen before the chain is asked anything.
    pub(crate) fn state(dir: &std::path::Path) -> Arc<crate::AppState> {
        let provider: alloy::providers::DynProvider = alloy::providers::ProviderBuilder::new()
            .connect_http("http://127.0.0.1:9".parse().unwrap())
            .erased();
        let deployment: protocol::Deployment = serde_json::from_value(json!({
            "chainId": 31337, "startBlock": 0,
            "token": Address::ZERO, "staking": Address::ZERO, "modelRegistry": Address::ZERO,
            "taskManager": Address::ZERO, "treasury": Address::ZERO, "validatorPool": Address::ZERO,
            "settlement": Address::ZERO, "auditManager": Address::ZERO,
        }))
        .unwrap();
        let blobs = blobstore::Client::new(Duration::from_secs(1), 1 << 20).unwrap();
        let chain = crate::chain::Chain::new(
            provider.clone(),
            deployment,
            Address::ZERO,
            blobs,
            Duration::from_millis(1),
        );
        let cache = inference::ModelCache::new(dir).unwrap();
        let catalogue = crate::models::Catalogue::new(provider, Address::ZERO, cache);
        Arc::new(crate::AppState::new(
            chain,
            catalogue,
            Duration::from_secs(1),
        ))
    }

    async fn post(
        s: &Arc<crate::AppState>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::post(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = crate::router(s.clone())
            .oneshot(req.body(Body::from("{}\n")).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    use alloy::primitives::Address;

    #[tokio::test]
    async fn worker_streams_are_refused_without_a_listener_a_task_or_a_signature() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let (status, v) = post(&s, "/streams/nope", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no caller"));

        let listener = s.streams.listen();
        assert_eq!(s.streams.open(), 1);
        let path = listener.path();
        let (status, v) = post(&s, &path, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(TASK_HEADER));
        let (status, v) = post(&s, &path, &[(TASK_HEADER, "5")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("missing"));
        let (status, v) = post(
            &s,
            &path,
            &[(TASK_HEADER, "5"), (SIGNATURE_HEADER, "0x1234")],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("not 65"));
        // the caller's end closes the slot
        drop(listener);
        assert_eq!(s.streams.open(), 0);
        let (status, _) = post(&s, &path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
