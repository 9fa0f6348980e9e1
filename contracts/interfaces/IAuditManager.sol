// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Verdicts} from "../libraries/Verdicts.sol";

/// @title IAuditManager
/// @notice The validation layer: sampled audits of committed results, EIP-712 signed verdicts from the
///         drawn validator, disputes decided by a drawn quorum, slashing of the side that was wrong,
///         user challenges with a bond, forced errors that catch lazy validators, and canary reports.
/// @dev Audit draw of task t in batch b: after the batch is sealed with randomness r (the hash of the
///      block after b's commit block, which did not exist when the worker committed), t is audited iff
///      `Verdicts.isAudited(Verdicts.auditSeed(r, t), p)` with `p = max(pMin, p0 * (1 - trust(worker)))`
///      fixed at sealing, and its validator is drawn by stake from the validator set with
///      point `uint256(keccak256(abi.encode(seed))) % (total - w)` over every validator but the worker
///      (w: the worker's own validator weight, whose range is skipped), using the validator weights as
///      they stood at the end of b's commit block (checkpointed: a later stake change cannot redraw it).
///      A batch sealed more than 256 blocks after its commit (the block hash is gone) is audited in full
///      (p = 1) with the hash of the block before the seal. A dispute's quorum is drawn by `drawQuorum`
///      from the hash of the block after the one that opened it, over the weights frozen at that block.
interface IAuditManager {
    /// Lifecycle of an audit record of one task.
    enum AuditState {
        None,
        /// verdict accepted: outputs match
        Passed,
        /// mismatch verdict or user challenge: quorum voting
        Disputed,
        /// quorum found fraud: worker slashed, submitter refunded
        Fraud,
        /// quorum found no fraud: accuser slashed (validator) or bond lost (user)
        Cleared,
        /// quorum tied or nobody voted: released, nobody slashed
        Undecided,
        /// the audit was a planted forced error, revealed
        ForcedError,
        /// the drawn validator posted no verdict before the challenge window closed
        Missed
    }

    /// @notice Kinds of dispute openers.
    enum Opener {
        Validator,
        User
    }

    /// @notice The randomness and audit rate of one committed batch.
    struct Seal {
        bytes32 randomness;
        uint64 pWad;
        bool full;
    }

    /// @notice One task's audit record.
    struct AuditRecord {
        uint8 state;
        /// drawn validator (verdicts) or challenging user
        address accuser;
        uint32 qualityPpm;
        uint32 batchId;
        bytes32 workerOutputHash;
    }

    /// @notice An open or closed dispute.
    struct Dispute {
        address worker;
        address accuser;
        uint8 opener;
        uint64 deadline;
        uint8 fraudVotes;
        uint8 honestVotes;
        uint96 bond;
        /// the block whose validator weights (and whose successor's hash) draw the quorum
        uint64 quorumBlock;
        bool quorumDrawn;
        address[] members;
    }

    /// @notice Parameters (all admin-settable within bounds).
    struct Params {
        uint64 p0Wad;
        uint64 pMinWad;
        uint32 disputeWindow;
        uint8 quorum;
        uint16 fraudSlashBps;
        uint16 falseAccusationSlashBps;
        uint16 lazySlashBps;
        uint16 rewardBps;
        uint96 challengeBond;
        /// share of validator stake burned from each quorum member who voted against the outcome
        uint16 minoritySlashBps;
    }

    event ValidatorJoined(address indexed validator, uint256 weight);
    event ValidatorWeightUpdated(address indexed validator, uint256 weight);
    event BatchSealed(
        uint256 indexed batchId, address indexed worker, bytes32 randomness, uint64 pWad, bool full
    );
    /// @notice A drawn validator's verdict was accepted.
    event VerdictAccepted(
        uint256 indexed taskId,
        uint256 indexed batchId,
        address indexed validator,
        address worker,
        bytes32 workerOutputHash,
        bytes32 validatorOutputHash,
        uint32 qualityPpm,
        bool matches
    );
    event DisputeOpened(
        uint256 indexed taskId,
        address indexed worker,
        address indexed accuser,
        uint8 opener,
        uint64 quorumBlock,
        uint64 deadline
    );
    /// @notice The dispute's quorum, drawn; members vote until `deadline`.
    event QuorumDrawn(uint256 indexed taskId, address[] members, uint64 deadline);
    /// @notice Nobody drew the quorum while its block hash was available: re-anchored on `quorumBlock`.
    event QuorumDeferred(uint256 indexed taskId, uint64 quorumBlock, uint64 deadline);
    /// @notice A verdict in a batch was skipped: its task had been judged meanwhile (`state`).
    event VerdictSkipped(uint256 indexed taskId, uint8 state);
    event DisputeVoted(uint256 indexed taskId, address indexed validator, bool fraud, bytes32 outputHash);
    /// @param outcome AuditState: Fraud, Cleared, Undecided or ForcedError
    event DisputeResolved(uint256 indexed taskId, uint8 outcome, uint8 fraudVotes, uint8 honestVotes);
    /// @notice A validator or quorum member let a deadline pass (kind 0 = audit verdict, 1 = dispute vote).
    event DeadlineMissed(uint256 indexed taskId, address indexed validator, uint8 kind);
    event ForcedErrorPlanted(bytes32 indexed commitment, address indexed planter);
    event ForcedErrorRevealed(uint256 indexed taskId, address indexed validator, bool caughtLazy);
    /// @notice A validator's known-answer task came back: `matches` by the model's rule.
    event CanaryReported(
        uint256 indexed taskId,
        address indexed worker,
        uint32 indexed modelId,
        address validator,
        bytes32 expectedOutputHash,
        bool matches,
        uint32 qualityPpm
    );
    event ParamsSet(Params params);

    error NotValidator(address account);
    error AlreadyJoined(address validator);
    error UnknownBatch(uint256 batchId);
    error AlreadySealed(uint256 batchId);
    error TooEarlyToSeal(uint256 batchId, uint256 commitBlock);
    error NotSealed(uint256 batchId);
    error VerdictExpired(uint256 taskId, uint64 deadline);
    error TaskNotOpen(uint256 taskId, uint8 status);
    error WrongBatch(uint256 taskId, uint256 batchId);
    error NotInBatch(uint256 taskId, uint256 batchId, bytes32 outputHash);
    error NotAudited(uint256 taskId);
    error WrongSigner(uint256 taskId, address signer, address drawn);
    error AlreadyJudged(uint256 taskId, uint8 state);
    error LengthMismatch();
    error EmptyBatch();
    error NoDispute(uint256 taskId);
    error NotQuorumMember(uint256 taskId, address caller);
    error AlreadyVoted(uint256 taskId, address validator);
    error DisputeOpen(uint256 taskId, uint64 deadline);
    error DisputeClosed(uint256 taskId, uint64 deadline);
    error NotSubmitter(uint256 taskId, address caller);
    error UnknownCommitment(bytes32 commitment);
    error CommitmentTooLate(bytes32 commitment, uint256 plantedBlock, uint256 commitBlock);
    error NotForcedError(uint256 taskId);
    error NotMissed(uint256 taskId);
    error InvalidQuality(uint32 qualityPpm);
    error AlreadyReported(uint256 taskId);
    error InvalidParameter(string name, uint256 value);
    error NotStaking(address caller);
    error QuorumAlreadyDrawn(uint256 taskId);
    error QuorumNotReady(uint256 taskId, uint256 fromBlock);
    error QuorumNotDrawn(uint256 taskId);
    error NothingAccepted();
    error CanaryNotProven(uint256 taskId);

    /// @notice A validator with eligible validator stake joins the audit draw with weight = its stake.
    function joinValidators() external;
    /// @notice Anyone: sets a member's draw weight to its current stake (0 when no longer eligible).
    function syncValidator(address validator) external;

    /// @notice Anyone, from the second block after the commit: fixes the batch's audit randomness and rate.
    function sealBatch(uint256 batchId) external;
    /// @notice sealBatch for several batches; already-sealed ones are skipped.
    function sealBatches(uint256[] calldata batchIds) external;

    /// @notice Accepts signed verdicts (anyone may relay): each from the validator drawn for its task, for
    ///         the output hash the worker committed (Merkle proof against the batch root), before the
    ///         verdict's deadline and the task's challenge window end, once per task. A mismatch opens a
    ///         dispute. A task already judged is skipped (VerdictSkipped) unless nothing is left to accept.
    function submitVerdicts(
        Verdicts.Verdict[] calldata verdicts,
        bytes[] calldata signatures,
        bytes32[][] calldata proofs
    ) external;

    /// @notice Anyone, from the second block after a dispute opened: draws its quorum by stake (frozen at
    ///         the opening block) with the hash of the block after it. When that hash is gone (256 blocks),
    ///         re-anchors on the current block instead (QuorumDeferred). Voting time starts at the draw.
    function drawQuorum(uint256 taskId) external;
    /// @notice A quorum member's vote on an open dispute (once its quorum is drawn).
    function vote(uint256 taskId, bool fraud, bytes32 outputHash) external;
    /// @notice Anyone, after the dispute deadline (or earlier once a side has a majority of the quorum).
    function resolveDispute(uint256 taskId) external;

    /// @notice The task's submitter, inside the challenge window of an unjudged task, puts up the bond
    ///         to have a quorum re-execute it.
    function challenge(uint256 taskId, uint256 batchId, bytes32 outputHash, bytes32[] calldata proof) external;

    /// @notice PLANTER_ROLE: commits keccak256(abi.encode(taskId, trueOutputHash, salt)) before the
    ///         sentinel worker commits its planted wrong result.
    function plantForcedError(bytes32 commitment) external;
    /// @notice Anyone: reveals a forced error after its verdict. The task's submitter and its worker must both
    ///         have signed the EIP-712 `ForcedError(taskId, planter)` for the commitment's planter (so a user's
    ///         task or an honest worker's result never qualifies, and neither wallet is linked to the planter
    ///         before the reveal). An approving validator is slashed as lazy (the reward share goes to the
    ///         planter); an open dispute over it closes without slashing anyone (the submitter is refunded).
    function revealForcedError(
        uint256 taskId,
        bytes32 trueOutputHash,
        bytes32 salt,
        bytes calldata submitterSignature,
        bytes calldata workerSignature
    ) external;

    /// @notice Anyone, once an audited task's challenge window closed without a verdict: records the
    ///         drawn validator's miss (DeadlineMissed kind 0).
    ///         Proves the task's committed leaf (code 0) in `batchId`.
    function reportMissedAudit(uint256 batchId, uint256 taskId, bytes32 outputHash, bytes32[] calldata proof)
        external;

    /// @notice A validator reports the outcome of its known-answer task, once per task. The task's
    ///         submitter is the caller, or signed EIP-712 `Canary(taskId, validator)` under this
    ///         contract's domain (so canaries can come from addresses workers cannot link to it).
    ///         A match carries at least MIN_MATCH_QUALITY_PPM. A failure (`matches` false) is accepted
    ///         only for a task a quorum judged Fraud (the canary wallet challenged it): otherwise
    ///         CanaryNotProven, so no validator can mark an honest worker or model down on its word.
    function reportCanary(
        uint256 taskId,
        bytes32 expectedOutputHash,
        bool matches,
        uint32 qualityPpm,
        bytes calldata submitterSignature
    ) external;

    function auditOf(uint256 batchId, uint256 taskId) external view returns (bool audited, address validator);
    function sealOf(uint256 batchId) external view returns (Seal memory);
    function auditRecord(uint256 taskId) external view returns (AuditRecord memory);
    function disputeOf(uint256 taskId) external view returns (Dispute memory);
    function auditRate(address worker) external view returns (uint256 pWad);
    function params() external view returns (Params memory);
    function validatorWeight(address validator) external view returns (uint256);
    /// @notice A validator's draw weight at the end of block `blockNumber`.
    function validatorWeightAt(address validator, uint256 blockNumber) external view returns (uint256);
    function totalValidatorWeight() external view returns (uint256);
    function domainSeparator() external view returns (bytes32);
}
