// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title FailureCodes
/// @notice The two classes of failure code a worker can commit instead of a result (codes are listed in
///         protocol/src/codes.rs). Input faults (1 input_decode, 2 input_shape, 3 input_dtype) follow from
///         the input and the model bundle alone: any honest re-execution fails the same way, so they pay
///         the worker its processing share and can be audited and challenged like results (the validator
///         or quorum must reproduce the same code). Every other code (input too large for this worker,
///         model unavailable or corrupt on the worker, runtime error, input blob unreachable) says the
///         worker could not serve the task: the submitter gets the whole fee back, the worker nothing, and
///         there is nothing to audit.
library FailureCodes {
    /// @notice Highest input-fault code.
    uint16 internal constant MAX_INPUT_FAULT = 3;

    /// @notice True for a failure that follows from the input (paid, auditable).
    function isInputFault(uint16 code) internal pure returns (bool) {
        return code != 0 && code <= MAX_INPUT_FAULT;
    }
}
