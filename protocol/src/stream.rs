//! Token streaming from a worker to the gateway that submitted a text-generation task.
//!
//! The gateway puts `"stream_to": "<its URL>/v1/streams/<nonce>"` in the task's input (the
//! text-generation kind ignores it when computing, so validators reproduce the same output). The
//! assigned worker POSTs one JSON line per generated token ([`TokenLine`]) to that URL while it
//! decodes, with two headers: [`TASK_HEADER`] (the task id) and [`SIGNATURE_HEADER`], an EIP-191
//! signature of [`auth_message`] by the worker's wallet. The gateway accepts the stream only when
//! the signer is the task's assigned worker on-chain, and only one stream per task.
//!
//! Streamed tokens are a preview: the answer is what the worker commits on-chain. The gateway
//! checks that the committed token ids and text extend what was streamed, and marks the answer
//! unverified (and challenges the task) when they do not.

use alloy::primitives::{Address, Signature, U256};
use serde::{Deserialize, Serialize};

/// Header naming the task a stream belongs to (decimal task id).
pub const TASK_HEADER: &str = "x-deepnode-task-id";
/// Header holding the worker's signature of [`auth_message`] (0x-prefixed, 65 bytes hex).
pub const SIGNATURE_HEADER: &str = "x-deepnode-signature";
/// The input field naming where to stream.
pub const INPUT_FIELD: &str = "stream_to";
/// Longest `stream_to` URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 512;

/// One streamed token: its id and the text it adds to the answer (empty for a stop token, and
/// while the text might still turn out to start a stop string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLine {
    /// Token id.
    pub token_id: u32,
    /// Text delta.
    pub text: String,
}

/// The message a worker signs (EIP-191 personal message) to stream `task_id`'s tokens: bound to
/// the chain and TaskManager, so a signature is good for one task of one deployment only.
pub fn auth_message(chain_id: u64, task_manager: Address, task_id: U256) -> String {
    format!(
        "DeepNode token stream\nchain: {chain_id}\ntask manager: {task_manager}\ntask: {task_id}"
    )
}

/// Signs the stream of `task_id` with `signer`; returns the header value.
pub fn sign(
    signer: &impl alloy::signers::SignerSync,
    chain_id: u64,
    task_manager: Address,
    task_id: U256,
) -> Result<String, alloy::signers::Error> {
    let sig = signer.sign_message_sync(auth_message(chain_id, task_manager, task_id).as_bytes())?;
    Ok(format!("0x{}", alloy::hex::encode(sig.as_bytes())))
}

/// The address that signed a stream's header value, or why it cannot be read.
pub fn recover(
    header: &str,
    chain_id: u64,
    task_manager: Address,
    task_id: U256,
) -> Result<Address, String> {
    let raw = alloy::hex::decode(header.trim().trim_start_matches("0x"))
        .map_err(|e| format!("signature is not hex: {e}"))?;
    if raw.len() != 65 {
        return Err(format!("signature is {} bytes, not 65", raw.len()));
    }
    let sig = Signature::from_raw(&raw).map_err(|e| format!("malformed signature: {e}"))?;
    sig.recover_address_from_msg(auth_message(chain_id, task_manager, task_id).as_bytes())
        .map_err(|e| format!("signature recovery failed: {e}"))
}

/// The `stream_to` URL of a task input, when it is a JSON object holding one (any other input has
/// none). Only `http://` and `https://` URLs up to [`MAX_URL_BYTES`] are returned.
pub fn target(input: &[u8]) -> Option<String> {
    // cheap pre-check: most inputs hold no such field
    let needle = INPUT_FIELD.as_bytes();
    if !input.windows(needle.len()).any(|w| w == needle) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(input).ok()?;
    let url = v.get(INPUT_FIELD)?.as_str()?;
    let lower = url.to_ascii_lowercase();
    ((lower.starts_with("http://") || lower.starts_with("https://")) && url.len() <= MAX_URL_BYTES)
        .then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn a_signature_recovers_its_worker_for_its_task_only() {
        let w = PrivateKeySigner::random();
        let tm = Address::repeat_byte(7);
        let h = sign(&w, 31337, tm, U256::from(5)).unwrap();
        assert_eq!(recover(&h, 31337, tm, U256::from(5)).unwrap(), w.address());
        // another task, chain or TaskManager recovers someone else
        assert_ne!(recover(&h, 31337, tm, U256::from(6)).unwrap(), w.address());
        assert_ne!(recover(&h, 1, tm, U256::from(5)).unwrap(), w.address());
        assert_ne!(
            recover(&h, 31337, Address::ZERO, U256::from(5)).unwrap(),
            w.address()
        );
        assert!(recover("0x1234", 31337, tm, U256::from(5))
            .unwrap_err()
            .contains("not 65"));
        assert!(recover("zz", 31337, tm, U256::from(5))
            .unwrap_err()
            .contains("not hex"));
    }

    #[test]
    fn only_http_stream_targets_are_read() {
        let t = |s: &str| target(s.as_bytes());
        assert_eq!(
            t(r#"{"messages":[],"stream_to":"http://gw:8080/v1/streams/ab"}"#).as_deref(),
            Some("http://gw:8080/v1/streams/ab")
        );
        assert_eq!(t(r#"{"stream_to":"file:///etc/passwd"}"#), None);
        assert_eq!(t(r#"{"stream_to":5}"#), None);
        assert_eq!(t("stream_to is mentioned in plain text"), None);
        assert_eq!(t(r#"{"messages":[]}"#), None);
        let long = format!(r#"{{"stream_to":"http://x/{}"}}"#, "a".repeat(600));
        assert_eq!(t(&long), None);
    }
}
