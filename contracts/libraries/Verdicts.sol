// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title Verdicts
/// @notice EIP-712 signed audit verdicts (domain "DeepNode Validation" / "1", the chain id and the
///         contract that accepts them) and the pure audit draw. Matches `protocol::verdict` byte for byte.
/// @dev The domain separator is the caller's (OpenZeppelin `EIP712("DeepNode Validation", "1")`), so a
///      signature is bound to one contract on one chain; every field is in the struct hash, so it is
///      bound to one task, batch, output pair, score and deadline.
library Verdicts {
    /// @notice A validator's verdict on one audited task.
    /// @param taskId the audited task
    /// @param batchId the worker's batch commit holding the task's output hash
    /// @param workerOutputHash the output hash the worker committed
    /// @param validatorOutputHash the output hash the validator computed by re-executing
    /// @param qualityPpm quality score measured by the model's comparison rule, parts per million
    /// @param matches whether the outputs agree under the model's comparison rule
    /// @param deadline last second (unix) at which the verdict may be accepted
    struct Verdict {
        uint256 taskId;
        uint256 batchId;
        bytes32 workerOutputHash;
        bytes32 validatorOutputHash;
        uint32 qualityPpm;
        bool matches;
        uint64 deadline;
    }

    /// @notice EIP-712 type hash of `Verdict`.
    bytes32 internal constant VERDICT_TYPEHASH = keccak256(
        "Verdict(uint256 taskId,uint256 batchId,bytes32 workerOutputHash,bytes32 validatorOutputHash,uint32 qualityPpm,bool matches,uint64 deadline)"
    );

    /// @notice 1.0 in WAD, the unit of audit probabilities.
    uint256 internal constant WAD = 1e18;

    /// @notice `drawIndex` over an empty set.
    error EmptyDraw();

    /// @notice EIP-712 struct hash of `v`.
    function hash(Verdict memory v) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                VERDICT_TYPEHASH,
                v.taskId,
                v.batchId,
                v.workerOutputHash,
                v.validatorOutputHash,
                v.qualityPpm,
                v.matches,
                v.deadline
            )
        );
    }

    /// @notice The digest a validator signs: `keccak256("\x19\x01" || domainSeparator || hash(v))`.
    function digest(bytes32 domainSeparator, Verdict memory v) internal pure returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(domainSeparator, hash(v));
    }

    /// @notice Signer of `v` under `domainSeparator`. Reverts with OpenZeppelin's ECDSA errors on a
    ///         malformed signature (length != 65, high s, or one that recovers no address); a well-formed
    ///         signature over anything else recovers some other address, so callers compare the result.
    function recover(bytes32 domainSeparator, Verdict memory v, bytes memory signature)
        internal
        pure
        returns (address)
    {
        return ECDSA.recover(digest(domainSeparator, v), signature);
    }

    /// @notice Seed of the audit draw of `taskId`: `keccak256(abi.encode(randomness, taskId))`, where
    ///         `randomness` must not have existed when the worker committed.
    function auditSeed(bytes32 randomness, uint256 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode(randomness, taskId));
    }

    /// @notice Whether the task with `seed` is audited at probability `pWad` (1e18 = always).
    function isAudited(bytes32 seed, uint256 pWad) internal pure returns (bool) {
        return uint256(seed) % WAD < pWad;
    }

    /// @notice Index in [0, n) picked by `seed`, independent of `isAudited`'s draw:
    ///         `uint256(keccak256(abi.encode(seed))) % n`. Reverts with `EmptyDraw` when n is 0.
    function drawIndex(bytes32 seed, uint256 n) internal pure returns (uint256) {
        if (n == 0) revert EmptyDraw();
        return uint256(keccak256(abi.encode(seed))) % n;
    }
}
