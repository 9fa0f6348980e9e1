//! The on-chain envelope: how a task input or output says "the payload is off-chain, this is its
//! sha256 and where to GET it" in place of the payload itself.

use crate::BlobError;
use sha2::{Digest, Sha256};

/// First bytes of every envelope: NUL, `DNB` (DeepNode blob), format version 1.
///
/// It cannot be mistaken for an inline payload we accept, because none of them starts with it:
/// - text and JSON never contain a NUL byte, let alone start with one;
/// - PNG starts with `0x89 'P'`, JPEG with `0xFF 0xD8`, WAV with `"RIFF"`;
/// - safetensors starts with its header length as a u64 little-endian; these bytes would read as
///   `0x01_42_4E_44_00` ≈ 5.4 GB of JSON header, while safetensors readers refuse any header over
///   100 MB.
///
/// A shorter input that is a strict prefix of the magic (1 to 4 bytes starting with NUL) is also
/// refused: no accepted payload is that short and starts with NUL, so it is a cut envelope.
pub const MAGIC: [u8; 5] = *b"\x00DNB\x01";

/// Bytes of an envelope before the URL: magic and sha256.
pub const HEADER_LEN: usize = MAGIC.len() + 32;

/// A payload stored off-chain: its sha256 (what the chain commits to) and where to fetch it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// SHA-256 of the payload bytes.
    pub sha256: [u8; 32],
    /// GET URL of the blob (`<base>/blobs/<hex>`), or empty: fetch it from the configured store.
    pub url: String,
}

impl BlobRef {
    /// The envelope bytes: [`MAGIC`] ++ sha256 ++ UTF-8 URL.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.url.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.sha256);
        out.extend_from_slice(self.url.as_bytes());
        out
    }

    /// `None` when `bytes` is not an envelope (an inline payload); `Some(Err)` when it starts
    /// like one but is cut short or carries a URL that is not UTF-8 `http(s)://`.
    pub fn decode(bytes: &[u8]) -> Option<Result<BlobRef, BlobError>> {
        if !bytes.starts_with(&MAGIC) {
            if !bytes.is_empty() && bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
                return Some(Err(BlobError::Envelope(format!(
                    "{} bytes: a truncated envelope magic",
                    bytes.len()
                ))));
            }
            return None;
        }
        Some(Self::decode_envelope(bytes))
    }

    fn decode_envelope(bytes: &[u8]) -> Result<BlobRef, BlobError> {
        let Some(sha) = bytes.get(MAGIC.len()..HEADER_LEN) else {
            return Err(BlobError::Envelope(format!(
                "{} bytes: too short for magic and sha256 ({HEADER_LEN} bytes)",
                bytes.len()
            )));
        };
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(sha);
        let url = std::str::from_utf8(&bytes[HEADER_LEN..])
            .map_err(|e| BlobError::Envelope(format!("URL is not UTF-8: {e}")))?;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(BlobError::Envelope(format!(
                "URL {url:?} is neither empty nor http(s)://"
            )));
        }
        Ok(BlobRef {
            sha256,
            url: url.to_string(),
        })
    }

    /// The sha256 as 64 lowercase hex digits (the blob's name in URLs and store keys).
    pub fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Parses 64 hex digits (either case) into a sha256.
pub fn parse_sha256(s: &str) -> Result<[u8; 32], BlobError> {
    let mut out = [0u8; 32];
    if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(BlobError::BadHash(s.chars().take(80).collect()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BlobRef {
        BlobRef {
            sha256: sha256(b"hello"),
            url: "http://127.0.0.1:8700/blobs/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into(),
        }
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let bytes = r.encode();
        assert_eq!(&bytes[..5], b"\x00DNB\x01");
        assert_eq!(&bytes[5..37], &r.sha256);
        assert_eq!(BlobRef::decode(&bytes).unwrap().unwrap(), r);
        let empty = BlobRef {
            sha256: [7; 32],
            url: String::new(),
        };
        assert_eq!(empty.encode().len(), HEADER_LEN);
        assert_eq!(BlobRef::decode(&empty.encode()).unwrap().unwrap(), empty);
    }

    #[test]
    fn inline_payloads_are_not_envelopes() {
        let png = b"\x89PNG\r\n\x1a\n....";
        let jpeg = b"\xFF\xD8\xFF\xE0";
        let wav = b"RIFF\x24\x00\x00\x00WAVE";
        let safetensors = 64u64.to_le_bytes();
        for inline in [
            &b""[..],
            b"hello",
            b"{\"prompt\":\"a cat\"}",
            png,
            jpeg,
            wav,
            &safetensors,
            b"\x00DNB\x02rest", // another version is not ours to parse
            b"\x01DNB\x01",
        ] {
            assert!(BlobRef::decode(inline).is_none(), "{inline:?}");
        }
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        let full = sample().encode();
        for bad in [&full[..3], &full[..5], &full[..20], &full[..36]] {
            let err = BlobRef::decode(bad).unwrap().unwrap_err();
            assert!(matches!(err, BlobError::Envelope(_)), "{err}");
        }
        let mut not_utf8 = full[..HEADER_LEN].to_vec();
        not_utf8.extend_from_slice(b"http://\xFF");
        assert!(BlobRef::decode(&not_utf8).unwrap().is_err());
        let mut file_url = full[..HEADER_LEN].to_vec();
        file_url.extend_from_slice(b"file:///etc/passwd");
        let err = BlobRef::decode(&file_url).unwrap().unwrap_err();
        assert!(err.to_string().contains("file:///etc/passwd"), "{err}");
    }

    #[test]
    fn safetensors_reading_of_the_magic_is_absurd() {
        let mut len = [0u8; 8];
        len[..5].copy_from_slice(&MAGIC);
        assert_eq!(u64::from_le_bytes(len), 0x01_42_4E_44_00);
        assert!(u64::from_le_bytes(len) > 100_000_000);
    }

    #[test]
    fn parses_hashes() {
        let h = sha256(b"hello");
        assert_eq!(parse_sha256(&hex::encode(h)).unwrap(), h);
        assert_eq!(parse_sha256(&hex::encode(h).to_uppercase()).unwrap(), h);
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"zz".repeat(32)).is_err());
    }
}
