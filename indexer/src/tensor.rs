//! Task inputs and outputs as people read them: canonical safetensors decoded by the inference
//! crate (the same code the workers run); otherwise what the bytes are for the other kinds:
//! a blob reference (payload kept off-chain), JSON (chat requests, kind outputs: text,
//! transcript, labels, embeddings), plain text, or an image / audio file named by its type.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `{"<tensor>": {"dtype", "shape", "values"}}`, or the decode error as one line.
pub fn describe(bytes: &[u8]) -> Result<Value, String> {
    inference::tensor::describe(bytes).map_err(|e| e.to_string())
}

/// A blob reference: the payload is kept off-chain, at `url`, with this SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BlobView {
    /// SHA-256 of the payload bytes, hex without 0x.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// GET URL of the blob (empty: fetch it from the blob store the worker is configured with).
    pub url: String,
}

/// The human form of a payload that is not a safetensors document: at most one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct HumanForm {
    /// The payload is a blob reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<BlobView>,
    /// The payload starts like a blob reference but does not decode as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob_error: Option<String>,
    /// The payload is a JSON object or array (chat requests, kind outputs: text, transcript,
    /// labels, embeddings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// The payload is UTF-8 text (and not a JSON object or array).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The payload is a media file of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(examples("image/png", "image/jpeg", "audio/wav"))]
    pub media: Option<String>,
}

/// Human forms of a payload that is not a safetensors document: `blob` (`{sha256, url}`),
/// `json`, `text`, or `media` (`image/png`, `image/jpeg`, `audio/wav`).
pub fn human(bytes: &[u8]) -> HumanForm {
    let mut out = HumanForm::default();
    if let Some(r) = blobstore::BlobRef::decode(bytes) {
        match r {
            Ok(r) => {
                out.blob = Some(BlobView {
                    sha256: r.hex(),
                    url: r.url,
                });
            }
            Err(e) => out.blob_error = Some(e.to_string()),
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
        out.media = Some(m.to_string());
        return out;
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() || v.is_array() => out.json = Some(v),
            _ => out.text = Some(text.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_get_their_human_form() {
        let human = |b: &[u8]| serde_json::to_value(super::human(b)).unwrap();
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
            super::human(&[0xff, 0xfe, 0x00]) == HumanForm::default(),
            "binary without a known type"
        );
    }
}
