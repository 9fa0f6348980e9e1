// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title ITaskManager
/// @notice The task market: fee escrow, stake x trust weighted assignment, single and batched result
///         commits (one Merkle root per batch), deadline + reassign, optimistic finalization after the
///         challenge window with the fee split, and pull payouts.
interface ITaskManager {
    /// None: no such task. Drawing: submitted (or reassigned after a miss), its worker not drawn yet
    /// (`assignTasks`, from the second block after). Assigned: waiting for the worker. Committed: result committed (code 0).
    /// Failed: worker committed a failure code (bad input, ...). Finalized: paid out. Refunded: no worker could
    /// take it, or a dispute proved its result wrong. Disputed: held by the auditor (AuditManager) while a
    /// quorum decides; it cannot be finalized until released.
    enum TaskStatus {
        None,
        Assigned,
        Committed,
        Failed,
        Finalized,
        Refunded,
        Disputed,
        Drawing
    }

    /// @notice Everything known about a task, assembled from its packed storage.
    struct TaskView {
        address submitter;
        uint32 modelId;
        uint256 fee;
        address worker;
        uint8 status;
        /// response deadline while Assigned; end of the challenge window after commit
        uint64 deadline;
        /// seconds from assignment to commit
        uint16 latency;
        uint40 submission;
        /// while Drawing: the anchor block (its weights and the next block's hash draw the worker)
        uint64 drawBlock;
        /// the failure code the worker committed (0 for a result, and while not committed)
        uint16 code;
    }

    event TaskSubmitted(
        uint256 indexed taskId, address indexed submitter, uint32 indexed modelId, uint256 fee, bytes input
    );
    event TaskAssigned(uint256 indexed taskId, address indexed worker, uint64 deadline);
    event TaskMissed(uint256 indexed taskId, address indexed worker);
    /// @notice The task waits for `assignTasks` with a new anchor block (after a miss, or when nobody drew
    ///         it while its randomness was available). A fresh submission is anchored on its own block.
    event AssignmentDeferred(uint256 indexed taskId, uint64 drawBlock);
    /// @notice One event per commit call (a single commit is a batch of one). `root` is the Merkle
    ///         root (libraries/MerkleBatch.sol) over leaves keccak256(bytes.concat(keccak256(abi.encode(
    ///         taskId, outputHash, code)))) in call order, sorted-pair hashing, odd node promoted.
    event ResultsCommitted(
        uint256 indexed batchId,
        address indexed worker,
        bytes32 root,
        uint256[] taskIds,
        bytes32[] outputHashes,
        uint16[] codes,
        bytes[] outputs
    );
    /// @notice PoWR facts of a settled task and its fee split.
    event TaskFinalized(
        uint256 indexed taskId,
        address indexed worker,
        uint32 indexed modelId,
        uint16 code,
        uint32 computeUnits,
        uint32 quality,
        uint16 latency,
        uint256 developerFee,
        uint256 workerFee,
        uint256 validatorFee,
        uint256 protocolFee,
        uint256 refund
    );
    event TaskRefunded(uint256 indexed taskId, address indexed submitter, uint256 amount);
    /// @notice The auditor held a Committed task for a dispute (finalization waits for the outcome).
    event TaskHeld(uint256 indexed taskId);
    /// @notice The auditor released a held task: `fraud` refunds the submitter in full (the worker earns
    ///         nothing); otherwise the task is Committed again and finalizable at once.
    event TaskReleased(uint256 indexed taskId, bool fraud);
    event PayoutWithdrawn(address indexed account, uint256 amount);
    /// @notice The task's submitter rated its result (user feedback, 0..100); an input of the model's
    ///         quality in the epoch report (natural selection of models).
    event TaskRated(uint256 indexed taskId, uint32 indexed modelId, address indexed submitter, uint8 score);

    error UnknownModel(uint32 modelId);
    /// @notice The model takes no new tasks (it is Delisted; Active and Probation models take tasks).
    error ModelNotActive(uint32 modelId, uint8 status);
    error FeeTooLow(uint32 modelId, uint256 price, uint256 maxFee);
    error InputTooLarge(uint256 size, uint256 max);
    error EmptyInput();
    error EmptyBatch();
    error BatchTooLarge(uint256 size, uint256 max);
    error LengthMismatch();
    error NoEligibleWorker(uint32 modelId);
    error UnknownTask(uint256 taskId);
    error WrongStatus(uint256 taskId, uint8 status);
    error NotAssignedWorker(uint256 taskId, address caller, address worker);
    error DeadlineNotPassed(uint256 taskId, uint64 deadline);
    error DeadlinePassed(uint256 taskId, uint64 deadline);
    error ChallengeWindowOpen(uint256 taskId, uint64 until);
    error NothingToWithdraw(address account);
    /// @notice Only the task's submitter may rate it.
    error NotSubmitter(uint256 taskId, address caller);
    /// @notice The task was rated already (one rating per task).
    error AlreadyRated(uint256 taskId);
    /// @notice Scores are 0..100.
    error InvalidScore(uint8 score);
    /// @notice assignTasks found no task it could handle (none Drawing with its randomness available).
    error NothingToAssign();

    function submitTask(uint32 modelId, bytes calldata input, uint256 maxFee)
        external
        returns (uint256 taskId);
    function submitTasks(uint32 modelId, bytes[] calldata inputs, uint256 maxFeePerTask)
        external
        returns (uint256 firstTaskId);

    function commit(uint256 taskId, bytes32 outputHash, uint16 code, bytes calldata output) external;
    function commitBatch(
        uint256[] calldata taskIds,
        bytes32[] calldata outputHashes,
        uint16[] calldata codes,
        bytes[] calldata outputs
    ) external returns (uint256 batchId);

    /// @notice Anyone, from the second block after a task's anchor block: draws the worker of each Drawing
    ///         task (stake x trust at the anchor block, randomness = the next block's hash) and starts its
    ///         response window; refunds a task nobody eligible can take; re-anchors one whose randomness is
    ///         gone (256 blocks). Returns how many tasks it handled.
    function assignTasks(uint256[] calldata taskIds) external returns (uint256 handled);
    function reassign(uint256 taskId) external;
    function finalize(uint256 taskId) external;
    function finalizeBatch(uint256[] calldata taskIds) external;
    function withdrawPayout() external returns (uint256 amount);

    /// @notice Records the submitter's feedback on a task's result: score 0..100, once per task, only
    ///         by the task's submitter, only once the task is Committed, Failed or Finalized.
    function rateTask(uint256 taskId, uint8 score) external;
    /// @notice rateTask for several tasks in one call (all or nothing).
    function rateTasks(uint256[] calldata taskIds, uint8[] calldata scores) external;
    /// @notice Whether the task's submitter rated it.
    function isRated(uint256 taskId) external view returns (bool);

    /// @notice Auditor only (AUDITOR_ROLE): holds a Committed task inside its challenge window (status Disputed).
    function holdTask(uint256 taskId) external;
    /// @notice Auditor only: ends a hold. fraud: full refund to the submitter (status Refunded); otherwise back to
    ///         Committed with the challenge window closed.
    function releaseTask(uint256 taskId, bool fraud) external;

    function getTask(uint256 taskId) external view returns (TaskView memory);
    /// @notice The worker that committed batch `batchId` and the block it was committed in (0s when unknown).
    function batchInfo(uint256 batchId) external view returns (address worker, uint64 commitBlock);
    function taskCount() external view returns (uint256);
    function batchRoot(uint256 batchId) external view returns (bytes32);
    function payoutOf(address account) external view returns (uint256);
    /// @notice Fees escrowed for tasks not yet finalized or refunded.
    function escrowed() external view returns (uint256);
    function responseWindow() external view returns (uint64);
    function challengeWindow() external view returns (uint64);
    function maxInputBytes() external view returns (uint256);
    function maxBatch() external view returns (uint256);
    /// @notice Fee split in basis points: developer, worker, validator, protocol (sum 10000).
    function feeSplit()
        external
        view
        returns (uint16 developerBps, uint16 workerBps, uint16 validatorBps, uint16 protocolBps);
    /// @notice Share of the fee a worker keeps when it commits a failure code (bad input); the rest is refunded.
    function failureProcessingBps() external view returns (uint16);
}
