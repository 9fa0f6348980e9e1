//! What a worker commits for one task: the canonical output on success, or a protocol failure
//! code with a human-readable message (its UTF-8 bytes are the output, so the user sees why).

use crate::journal::Computed;
use alloy::primitives::{B256, U256};
use inference::FailureKind;
use protocol::codes::FailureCode;

/// The result of one task, ready to journal and commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// 0 on success, else why the task could not run.
    pub code: FailureCode,
    /// Canonical safetensors bytes, or the UTF-8 failure message.
    pub output: Vec<u8>,
    /// What the commit event carries instead of `output` when it was published off-chain
    /// (a blob reference); the committed hash is always `keccak256(output)`.
    pub published: Option<Vec<u8>>,
}

impl Outcome {
    /// A successful result.
    pub fn success(output: Vec<u8>) -> Self {
        Self {
            code: FailureCode::Ok,
            output,
            published: None,
        }
    }

    /// A failure; the message starts with the code's name, then the detail.
    pub fn failure(code: FailureCode, detail: impl std::fmt::Display) -> Self {
        Self {
            code,
            output: format!("{}: {detail}", code.as_str()).into_bytes(),
            published: None,
        }
    }

    /// The hash committed on-chain: keccak256 of the output bytes (message bytes on failure).
    pub fn output_hash(&self) -> B256 {
        protocol::output_hash(&self.output)
    }

    /// The journal record of this outcome.
    pub fn into_computed(self, task_id: U256, model_id: u32) -> Computed {
        Computed {
            task_id,
            model_id,
            output_hash: self.output_hash(),
            code: self.code.as_u16(),
            output_hex: self.published.unwrap_or(self.output).into(),
        }
    }
}

/// The protocol failure code for an inference error kind.
pub fn code_for(kind: FailureKind) -> FailureCode {
    FailureCode::from_u16(kind.code()).unwrap_or(FailureCode::Runtime)
}

/// The outcome of an inference error.
pub fn from_error(err: &inference::InferenceError) -> Outcome {
    Outcome::failure(code_for(err.kind()), err)
}

/// Inputs above the worker's limit are refused before any decoding.
pub fn check_input_size(len: usize, max: usize) -> Option<Outcome> {
    (len > max).then(|| {
        Outcome::failure(
            FailureCode::InputTooLarge,
            format!("input is {len} bytes; this worker accepts at most {max} bytes per task"),
        )
    })
}

/// An empty input can never be a tensor document.
pub fn check_input_present(len: usize) -> Option<Outcome> {
    (len == 0).then(|| Outcome::failure(FailureCode::InputDecode, "input is empty"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    #[test]
    fn every_inference_kind_maps_to_its_protocol_code() {
        let pairs = [
            (FailureKind::InputDecode, 1u16),
            (FailureKind::InputShape, 2),
            (FailureKind::InputDtype, 3),
            (FailureKind::InputTooLarge, 4),
            (FailureKind::ModelHashMismatch, 5),
            (FailureKind::ModelUnavailable, 6),
            (FailureKind::Runtime, 7),
        ];
        for (kind, code) in pairs {
            assert_eq!(code_for(kind).as_u16(), code, "{kind:?}");
        }
    }

    #[test]
    fn failure_commits_the_message_and_its_keccak() {
        let o = Outcome::failure(FailureCode::InputShape, "expected [1, 64], got [1, 3]");
        let msg = "input_shape: expected [1, 64], got [1, 3]";
        assert_eq!(o.output, msg.as_bytes());
        assert_eq!(o.output_hash(), keccak256(msg.as_bytes()));
        let c = o.into_computed(U256::from(9), 2);
        assert_eq!(c.code, 2);
        assert_eq!(c.output_hash, keccak256(msg.as_bytes()));
        assert_eq!(c.output_hex.as_ref(), msg.as_bytes());
        assert_eq!(c.task_id, U256::from(9));
    }

    #[test]
    fn success_hash_is_protocol_output_hash() {
        let o = Outcome::success(vec![1, 2, 3]);
        assert_eq!(o.code, FailureCode::Ok);
        assert_eq!(o.output_hash(), protocol::output_hash(&[1, 2, 3]));
        assert_eq!(o.into_computed(U256::from(1), 1).code, 0);
    }

    #[test]
    fn size_and_empty_checks() {
        assert!(check_input_size(10, 10).is_none());
        let o = check_input_size(11, 10).unwrap();
        assert_eq!(o.code, FailureCode::InputTooLarge);
        let msg = String::from_utf8(o.output).unwrap();
        assert!(
            msg.contains("11 bytes") && msg.contains("at most 10"),
            "{msg}"
        );
        assert!(check_input_present(1).is_none());
        assert_eq!(
            check_input_present(0).unwrap().code,
            FailureCode::InputDecode
        );
    }
}
