//! Off-chain payloads shown in human form: `GET /tasks/{id}` adds a blob's `content` (decoded
//! as the other payloads are) when the blob lives in the store named by `--blob-store`. Only that
//! store is asked: fetching any URL a task names would let anyone make the indexer request
//! addresses of their choice (server-side request forgery).

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

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
pub async fn attach_contents(task: &mut Value) {
    let Some(Some(view)) = VIEW.get() else {
        return;
    };
    for key in ["input", "output"] {
        let Some(blob) = task.get(key).and_then(|p| p.get("blob")) else {
            continue;
        };
        let url = blob["url"].as_str().unwrap_or_default().to_string();
        if !url.starts_with(&view.prefix) {
            continue;
        }
        let Ok(sha256) = blobstore::parse_sha256(blob["sha256"].as_str().unwrap_or_default())
        else {
            continue;
        };
        let fetched = view.client.fetch(&blobstore::BlobRef { sha256, url }).await;
        let (field, value) = match fetched {
            Ok(bytes) => ("content", content(&bytes)),
            Err(e) => ("content_error", json!(e.to_string())),
        };
        if let Some(p) = task.get_mut(key).and_then(Value::as_object_mut) {
            p.insert(field.into(), value);
        }
    }
}

fn content(bytes: &[u8]) -> Value {
    let mut v = json!({"bytes": bytes.len()});
    if let Some(obj) = v.as_object_mut() {
        match crate::tensor::describe(bytes) {
            Ok(decoded) => {
                obj.insert("decoded".into(), decoded);
            }
            Err(_) => obj.extend(crate::tensor::human(bytes)),
        }
    }
    v
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

        let mut task = json!({
            "input": {"blob": {"sha256": r.hex(), "url": r.url}},
            "output": {"blob": {"sha256": "11".repeat(32), "url": "http://10.0.0.1/blobs/x"}},
        });
        attach_contents(&mut task).await;
        assert_eq!(task["input"]["content"]["json"]["text"], "Paris");
        assert!(
            task["output"].get("content").is_none()
                && task["output"].get("content_error").is_none(),
            "a URL outside the configured store is never fetched: {task}"
        );

        // a reference into the store whose blob is missing says why
        let mut missing = json!({"input": {"blob": {"sha256": "22".repeat(32),
            "url": format!("{base}/blobs/{}", "22".repeat(32))}}});
        attach_contents(&mut missing).await;
        assert!(missing["input"]["content_error"].is_string(), "{missing}");
    }
}
