//! Task inputs and outputs as people read them: canonical safetensors decoded by the inference
//! crate (the same code the workers run); otherwise what the bytes are for the other kinds:
//! a blob reference (payload kept off-chain), JSON (chat requests, kind outputs: text,
//! transcript, labels, embeddings), plain text, or an image / audio file named by its type.

use serde_json::{json, Map, Value};

/// `{"<tensor>": {"dtype", "shape", "values"}}`, or the decode error as one line.
pub fn describe(bytes: &[u8]) -> Result<Value, String> {
    inference::tensor::describe(bytes).map_err(|e| e.to_string())
}

/// Human forms of a payload that is not a safetensors document, as extra fields: `blob`
/// (`{sha256, url}`), `json`, `text`, or `media` (`image/png`, `image/jpeg`, `audio/wav`).
pub fn human(bytes: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(r) = blobstore::BlobRef::decode(bytes) {
        match r {
            Ok(r) => {
                out.insert("blob".into(), json!({"sha256": r.hex(), "url": r.url}));
            }
            Err(e) => {
                out.insert("blob_error".into(), json!(e.to_string()));
            }
        }
        return out;
    }
    let media = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        Some("audio/wav")
    } else {
        None
    };
    if let Some(m) = media {
        out.insert("media".into(), json!(m));
        return out;
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() || v.is_array() => {
                out.insert("json".into(), v);
            }
            _ => {
                out.insert("text".into(), json!(text));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_get_their_human_form() {
        assert_eq!(human(b"hello")["text"], "hello");
        assert_eq!(human(br#"{"text":"Paris"}"#)["json"]["text"], "Paris");
        assert_eq!(human(b"\x89PNG\r\n\x1a\n....")["media"], "image/png");
        assert_eq!(human(b"RIFF\0\0\0\0WAVEfmt ")["media"], "audio/wav");
        let r = blobstore::BlobRef {
            sha256: [7; 32],
            url: "http://x/blobs/07".into(),
        };
        let h = human(&r.encode());
        assert_eq!(h["blob"]["url"], "http://x/blobs/07");
        assert_eq!(h["blob"]["sha256"], "07".repeat(32));
        assert!(
            human(&[0xff, 0xfe, 0x00]).is_empty(),
            "binary without a known type"
        );
    }
}
