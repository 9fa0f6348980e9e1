//! Failure codes a worker commits instead of a result when a task cannot be run. Code 0 is
//! success; the contract refunds the user (minus the processing share) for any other code.

/// Why a task produced no result. The numeric values are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u16)]
pub enum FailureCode {
    /// Success: the output is the model's result.
    Ok = 0,
    /// The input bytes are not a valid safetensors document.
    InputDecode = 1,
    /// The input tensor has the wrong name, count or shape for the model.
    InputShape = 2,
    /// The input tensor has the wrong dtype for the model.
    InputDtype = 3,
    /// The input is larger than the worker accepts for this model.
    InputTooLarge = 4,
    /// The model file's sha256 does not match the registered hash.
    ModelHashMismatch = 5,
    /// The model could not be fetched or loaded.
    ModelUnavailable = 6,
    /// ONNX Runtime failed while running the model.
    Runtime = 7,
    /// The input is a blob reference whose bytes could not be fetched in time, were larger than
    /// the worker accepts, or did not match their sha256.
    InputUnavailable = 8,
}

/// Highest input-fault code (`FailureCodes.MAX_INPUT_FAULT` on-chain).
pub const MAX_INPUT_FAULT: u16 = 3;

/// True when a committed code (possibly one this version does not know) is an input fault.
pub fn is_input_fault_code(code: u16) -> bool {
    code != 0 && code <= MAX_INPUT_FAULT
}

impl FailureCode {
    /// Every code, in numeric order.
    pub const ALL: [FailureCode; 9] = [
        Self::Ok,
        Self::InputDecode,
        Self::InputShape,
        Self::InputDtype,
        Self::InputTooLarge,
        Self::ModelHashMismatch,
        Self::ModelUnavailable,
        Self::Runtime,
        Self::InputUnavailable,
    ];

    /// From the on-chain `uint16`; `None` for codes this version does not know.
    pub fn from_u16(v: u16) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }

    /// The on-chain value.
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// snake_case name (REST, logs, metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::InputDecode => "input_decode",
            Self::InputShape => "input_shape",
            Self::InputDtype => "input_dtype",
            Self::InputTooLarge => "input_too_large",
            Self::ModelHashMismatch => "model_hash_mismatch",
            Self::ModelUnavailable => "model_unavailable",
            Self::Runtime => "runtime",
            Self::InputUnavailable => "input_unavailable",
        }
    }

    /// True for an input fault (codes 1-3: the input does not decode or does not fit the model),
    /// which any honest re-execution reproduces: the worker keeps its processing share, and the
    /// failure is audited and challengeable like a result (the validator must get the same code).
    /// Every other failure is worker-side (input too large for this worker, model unavailable or
    /// corrupt on the worker, runtime error, input blob unreachable): the submitter gets the whole
    /// fee back, nothing is audited, and the indexer counts it against the worker's completion.
    /// Mirrors `contracts/libraries/FailureCodes.sol`.
    pub fn is_input_fault(self) -> bool {
        let c = self.as_u16();
        c != 0 && c <= MAX_INPUT_FAULT
    }

    /// One sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Ok => "result computed",
            Self::InputDecode => "input bytes are not a valid safetensors tensor document",
            Self::InputShape => "input tensor name, count or shape does not match the model",
            Self::InputDtype => "input tensor dtype does not match the model",
            Self::InputTooLarge => "input is larger than the worker accepts",
            Self::ModelHashMismatch => "model file sha256 does not match the registered hash",
            Self::ModelUnavailable => "model could not be fetched or loaded",
            Self::Runtime => "ONNX Runtime failed to run the model",
            Self::InputUnavailable => {
                "input blob could not be fetched, was too large, or did not match its hash"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (i, c) in FailureCode::ALL.iter().enumerate() {
            assert_eq!(c.as_u16() as usize, i);
            assert_eq!(FailureCode::from_u16(c.as_u16()), Some(*c));
        }
        assert_eq!(FailureCode::from_u16(9), None);
        assert_eq!(FailureCode::InputTooLarge.as_str(), "input_too_large");
    }

    #[test]
    fn input_faults_are_the_first_three_codes() {
        let faults: Vec<_> = FailureCode::ALL
            .iter()
            .filter(|c| c.is_input_fault())
            .collect();
        assert_eq!(
            faults,
            [
                &FailureCode::InputDecode,
                &FailureCode::InputShape,
                &FailureCode::InputDtype
            ]
        );
        assert!(!is_input_fault_code(0));
        assert!(is_input_fault_code(3));
        assert!(!is_input_fault_code(4));
        assert!(!is_input_fault_code(u16::MAX));
    }
}
