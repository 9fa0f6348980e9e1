//! Off-chain payloads shown in human form: `GET /tasks/{id}` adds a blob's `content` (decoded
//! as the other payloads are) when the blob lives in the store named by `--blob-store`. Only that
//! store is asked: fetching any URL a task names would let anyone make the indexer request
//! addresses of their choice (server-side request forgery).

use std::sync::OnceLock;
use std::time::Duration;

use crate::query::{BlobContent, Payload, Task};

/// Largest blob fetched for display.
const MAX_DISPLAY_BYTES: u64 = 4 << 20;
/// How long one fetch may take before the task is served without the content.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

struct View {
    prefix: String,
    client: blobstore::Client,
}

static VIEW: OnceLock<Option<View>> = OnceLock::new();

/// Sets the trusted blob store (its base URL, as in the blobs' references); the first call wins.
pub fn configure(store_url: Option<&str>) -> Result<(), blobstore::BlobError> {
    let view = match store_url {
        None => None,
        Some(url) => Some(View {
            prefix: format!("{}/blobs/", url.trim_end_matches('/')),
            client: blobstore::Client::new(FETCH_TIMEOUT, MAX_DISPLAY_BYTES)?,
        }),
    };
    let _ = VIEW.set(view);
    Ok(())
}

/// Adds `content` (or `content_error`) to the task's `input` and `output` that are blob
/// references into the configured store.
pub async fn attach_contents(task: &mut Task) {
    attach(&mut task.input).await;
    if let Some(output) = task.output.as_mut() {
        attach(output).await;
    }
}

async fn attach(payload: &mut Payload) {
    let Some(Some(view)) = VIEW.get() else {
        return;
    };
    let Some(blob) = payload.blob() else {
        return;
    };
    if !blob.url.starts_with(&view.prefix) {
        return;
    }
    let Ok(sha256) = blobstore::parse_sha256(&blob.sha256) else {
        return;
    };
    let url = blob.url.clone();
    match view.client.fetch(&blobstore::BlobRef { sha256, url }).await {
        Ok(bytes) => payload.content = Some(BlobContent::of(&bytes)),
        Err(e) => payload.content_error = Some(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_of_the_configured_store_are_shown_and_others_are_not_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let store = blobstore::Store::local(dir.path()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = blobstore::service::router(blobstore::service::AppState {
            store,
            public_url: base.clone(),
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = blobstore::Client::new(Duration::from_secs(5), 1 << 20).unwrap();
        let answer = br#"{"text":"Paris"}"#.to_vec();
        let r = client.put(&base, answer).await.unwrap();
        configure(Some(&base)).unwrap();

        let mut input = crate::query::payload(&r.encode());
        let mut output = crate::query::payload(
            &blobstore::BlobRef {
                sha256: [0x11; 32],
                url: "http://10.0.0.1/blobs/x".into(),
            }
            .encode(),
        );
        attach(&mut input).await;
        attach(&mut output).await;
        let input = serde_json::to_value(&input).unwrap();
        let output = serde_json::to_value(&output).unwrap();
        assert_eq!(input["content"]["json"]["text"], "Paris");
        assert!(
            output.get("content").is_none() && output.get("content_error").is_none(),
            "a URL outside the configured store is never fetched: {output}"
        );

        // a reference into the store whose blob is missing says why
        let mut missing = crate::query::payload(
            &blobstore::BlobRef {
                sha256: [0x22; 32],
                url: format!("{base}/blobs/{}", "22".repeat(32)),
            }
            .encode(),
        );
        attach(&mut missing).await;
        let missing = serde_json::to_value(&missing).unwrap();
        assert!(missing["content_error"].is_string(), "{missing}");
    }
}
