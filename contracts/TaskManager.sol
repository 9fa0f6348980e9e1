// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {MerkleBatch} from "./libraries/MerkleBatch.sol";
import {FailureCodes} from "./libraries/FailureCodes.sol";

/// @title TaskManager
/// @notice The task market: escrows fees, assigns each task to a worker drawn by stake x trust from the
///         model's sortition tree (`assignTasks`, from the second block after submission: the hash of the
///         block after the submission's over the weights at the end of the submission block, so neither the
///         submitter nor anyone else can know or steer the draw when it submits), takes single or batched
///         result commits (one Merkle root per batch),
///         lets anyone reassign a task whose worker missed the deadline, and finalizes optimistically
///         after the challenge window with the fee split credited to pull payouts.
/// @dev Gas is a design goal (README "Performance": about 70k exec per task end to end in batches of 32,
///      the assignment draw included). Storage per task is ONE slot
///      (`Task`); a submission call writes two more slots shared by its tasks (`Submission`); inputs
///      live only in the TaskSubmitted event. Counters and parameters are packed into one slot each.
///      Invariant: token balance == escrowed() + sum of payoutOf.
contract TaskManager is ITaskManager, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @dev One storage slot per task (memory shape; stored packed in `_taskWords`, same bit layout as
    ///      solc would use: worker bits 0-159, deadline 160-191, status 192-199, submission 200-239,
    ///      latency 240-255). While Drawing, `worker` is the worker to skip (the one that missed, or 0) and
    ///      `deadline` holds the anchor block (the draw uses its weights and the next block's hash). Packed by hand because solc's legacy codegen writes a storage struct field by
    ///      field: measured +2.8k gas per task write against one SSTORE of the whole word. `deadline`: response deadline while Assigned, end of the challenge
    ///      window after commit. `latency`: while Assigned it holds the response window the deadline was
    ///      set with (so assignment time = deadline - latency), after commit the seconds from assignment
    ///      to commit (capped at 65535).
    struct Task {
        address worker;
        uint32 deadline;
        uint8 status;
        uint40 submission;
        uint16 latency;
    }

    /// @dev Two slots per submit call, shared by all its tasks; a snapshot so finalize needs no registry call.
    struct Submission {
        address submitter;
        uint96 feePerTask;
        address developer;
        uint32 modelId;
        uint32 computeUnits;
    }

    struct Counters {
        uint64 taskCount;
        uint40 submissionCount;
        uint48 batchCount;
        uint96 escrowed;
    }

    struct Params {
        uint32 responseWindow;
        uint32 challengeWindow;
        uint32 jailDuration;
        uint32 maxInputBytes;
        uint16 maxBatch;
        uint16 developerBps;
        uint16 workerBps;
        uint16 validatorBps;
        uint16 protocolBps;
        uint16 failureProcessingBps;
    }

    /// @notice Quality reported for an unaudited finalized task (1e6 = perfect; audits will lower it).
    uint32 public constant QUALITY_PERFECT = 1_000_000;
    /// @notice Sortition draws tried before giving up on finding an eligible worker.
    uint256 public constant MAX_DRAWS = 8;
    /// @notice Upper bounds for admin-set parameters.
    uint32 public constant MAX_RESPONSE_WINDOW = type(uint16).max;
    uint32 public constant MAX_CHALLENGE_WINDOW = 30 days;
    uint32 public constant MAX_JAIL_DURATION = 30 days;
    uint16 public constant MAX_BATCH_LIMIT = 1024;
    /// @notice Highest user feedback score (rateTask).
    uint8 public constant MAX_SCORE = 100;

    uint16 private constant BPS = 10_000;

    /// @notice May hold a Committed task for a dispute and release it (the AuditManager).
    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR_ROLE");

    IERC20 public immutable token;
    IStaking public immutable staking;
    IModelRegistry public immutable registry;

    /// @notice Receives the protocol share of fees.
    address public treasury;
    /// @notice Receives the validator share of fees (the validator reward pool / settlement).
    address public validatorPool;

    Params private _params;
    Counters private _counters;
    /// Task packed by hand into one word (see _loadTask / _storeTask).
    mapping(uint256 taskId => uint256) private _taskWords;
    mapping(uint256 submissionId => Submission) private _submissions;
    mapping(uint256 batchId => bytes32) private _batchRoots;
    /// committing worker (bits 0-159) and commit block (bits 160-223) of each batch: the audit draw uses
    /// randomness from after the commit block and the batch's worker
    mapping(uint256 batchId => uint256) private _batchInfo;
    mapping(address account => uint256) private _payouts;
    /// rated flags: bit (taskId % 256) of word (taskId / 256); consecutive tasks share a word, so a
    /// batch of ratings pays one cold SSTORE per 256 tasks
    mapping(uint256 word => uint256 bits) private _ratedBits;
    /// The committed failure code of a Failed task (written only for failures: results pay no extra slot).
    mapping(uint256 taskId => uint16) private _failureCodes;

    event WindowsSet(uint32 responseWindow, uint32 challengeWindow, uint32 jailDuration);
    event FeeSplitSet(uint16 developerBps, uint16 workerBps, uint16 validatorBps, uint16 protocolBps);
    event FailureProcessingBpsSet(uint16 bps);
    event LimitsSet(uint32 maxInputBytes, uint16 maxBatch);
    event RecipientsSet(address treasury, address validatorPool);

    /// @notice An admin parameter outside its allowed range.
    error InvalidParameter(string name, uint256 value);

    /// @param admin DEFAULT_ADMIN_ROLE (parameters)
    /// @param token_ DN (fees)
    /// @param staking_ Staking (eligibility; this contract needs JAILER_ROLE there)
    /// @param registry_ ModelRegistry (model terms, sortition)
    /// @param treasury_ protocol fee recipient
    /// @param validatorPool_ validator fee recipient
    /// @param responseWindow_ seconds a worker has to commit (<= 65535)
    /// @param challengeWindow_ seconds after commit before finalization
    /// @param jailDuration_ seconds a worker that missed a deadline is jailed
    constructor(
        address admin,
        IERC20 token_,
        IStaking staking_,
        IModelRegistry registry_,
        address treasury_,
        address validatorPool_,
        uint32 responseWindow_,
        uint32 challengeWindow_,
        uint32 jailDuration_
    ) {
        token = token_;
        staking = staking_;
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setRecipients(treasury_, validatorPool_);
        _setWindows(responseWindow_, challengeWindow_, jailDuration_);
        _setFeeSplit(1000, 7500, 1000, 500);
        _setFailureProcessingBps(1000);
        _setLimits(65_536, 64);
    }

    // ------------------------------------------------------------------ submit

    /// @inheritdoc ITaskManager
    /// @dev Charges the model's current price (FeeTooLow when maxFee is below it). The model must be Active
    ///      or on Probation (ModelNotActive when Delisted).
    function submitTask(uint32 modelId, bytes calldata input, uint256 maxFee)
        external
        nonReentrant
        returns (uint256 taskId)
    {
        Params memory p = _params;
        (NewTasks memory ctx, uint256 first) = _openSubmission(modelId, maxFee);
        _createTask(p, ctx, first, input);
        _closeSubmission(first, ctx.submissionId, ctx.price);
        return first;
    }

    /// @inheritdoc ITaskManager
    /// @dev All inputs for one model at the model's price each; one token transfer for the total.
    function submitTasks(uint32 modelId, bytes[] calldata inputs, uint256 maxFeePerTask)
        external
        nonReentrant
        returns (uint256 firstTaskId)
    {
        uint256 n = inputs.length;
        if (n == 0) revert EmptyBatch();
        Params memory p = _params;
        if (n > p.maxBatch) revert BatchTooLarge(n, p.maxBatch);
        (NewTasks memory ctx, uint256 first) = _openSubmission(modelId, maxFeePerTask);
        for (uint256 i = 0; i < n; ++i) {
            _createTask(p, ctx, first + i, inputs[i]);
        }
        _closeSubmission(first + n - 1, ctx.submissionId, uint256(ctx.price) * n);
        return first;
    }

    // ------------------------------------------------------------------ assign

    /// @inheritdoc ITaskManager
    /// @dev Per task: randomness = blockhash(anchor + 1), seed = keccak256(abi.encode(randomness, taskId)),
    ///      worker = ModelRegistry.drawWorkerAt(model, seed, anchor, skipped worker), redrawn
    ///      (seed = keccak256(seed)) up to MAX_DRAWS times while it is not eligible now or no longer serves
    ///      the model. Tasks not Drawing, or
    ///      whose randomness does not exist yet, are skipped; NothingToAssign when every task was.
    function assignTasks(uint256[] calldata taskIds) external nonReentrant returns (uint256 handled) {
        uint256 n = taskIds.length;
        if (n == 0) revert EmptyBatch();
        Params memory p = _params;
        if (n > p.maxBatch) revert BatchTooLarge(n, p.maxBatch);
        SubmissionCache memory c;
        for (uint256 i = 0; i < n; ++i) {
            if (_assign(taskIds[i], p.responseWindow, c)) ++handled;
        }
        if (handled == 0) revert NothingToAssign();
    }

    /// The submission snapshot last read by an assignTasks call (consecutive tasks share it).
    struct SubmissionCache {
        uint256 id;
        Submission s;
        /// the last worker found eligible for this model in this call (saves two calls per task when one
        /// worker takes a run of tasks)
        address eligible;
    }

    /// Draws one Drawing task's worker (see assignTasks). False when the task is skipped.
    function _assign(uint256 taskId, uint32 window, SubmissionCache memory c) private returns (bool) {
        Task memory task = _loadTask(taskId);
        if (task.status != uint8(TaskStatus.Drawing)) {
            if (task.status == uint8(TaskStatus.None)) revert UnknownTask(taskId);
            return false;
        }
        uint256 anchor = task.deadline;
        if (block.number < anchor + 2) return false;
        bytes32 randomness = blockhash(anchor + 1);
        if (randomness == bytes32(0)) {
            // nobody assigned it while the hash was available (256 blocks): re-anchor on this block
            _storeTask(
                taskId, task.worker, uint32(block.number), uint8(TaskStatus.Drawing), task.submission, 0
            );
            emit AssignmentDeferred(taskId, uint64(block.number));
            return true;
        }
        if (task.submission != c.id) {
            Submission memory next = _submissions[task.submission];
            if (next.modelId != c.s.modelId) c.eligible = address(0);
            c.s = next;
            c.id = task.submission;
        }
        address worker = _drawEligible(
            c.s.modelId, uint256(keccak256(abi.encode(randomness, taskId))), task.worker, anchor, c.eligible
        );
        if (worker != address(0)) c.eligible = worker;
        if (worker == address(0)) {
            _storeTask(taskId, task.worker, 0, uint8(TaskStatus.Refunded), task.submission, 0);
            _payouts[c.s.submitter] += c.s.feePerTask;
            _counters.escrowed -= c.s.feePerTask;
            emit TaskRefunded(taskId, c.s.submitter, c.s.feePerTask);
            return true;
        }
        uint32 deadline = uint32(block.timestamp) + window;
        _storeTask(taskId, worker, deadline, uint8(TaskStatus.Assigned), task.submission, uint16(window));
        emit TaskAssigned(taskId, worker, deadline);
        return true;
    }

    // ------------------------------------------------------------------ commit

    /// @inheritdoc ITaskManager
    /// @dev A batch of one: root = the task's leaf. code 0 = result, anything else = failure code.
    function commit(uint256 taskId, bytes32 outputHash, uint16 code, bytes calldata output)
        external
        nonReentrant
    {
        uint32 challengeEnd = uint32(block.timestamp) + _params.challengeWindow;
        bytes32 root = _commitTask(taskId, outputHash, code, challengeEnd);
        uint256 batchId = _nextBatchId();
        _storeBatch(batchId, root);

        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        bytes32[] memory hashes = new bytes32[](1);
        hashes[0] = outputHash;
        uint16[] memory codes = new uint16[](1);
        codes[0] = code;
        bytes[] memory outputs = new bytes[](1);
        outputs[0] = output;
        emit ResultsCommitted(batchId, msg.sender, root, ids, hashes, codes, outputs);
    }

    /// @inheritdoc ITaskManager
    /// @dev Every task must be assigned to the caller and still before its response deadline. The
    ///      root (MerkleBatch) over the tasks in call order is stored as batchRoot(batchId).
    function commitBatch(
        uint256[] calldata taskIds,
        bytes32[] calldata outputHashes,
        uint16[] calldata codes,
        bytes[] calldata outputs
    ) external nonReentrant returns (uint256 batchId) {
        uint256 n = taskIds.length;
        if (outputHashes.length != n || codes.length != n || outputs.length != n) revert LengthMismatch();
        bytes32 root = _commitAll(taskIds, outputHashes, codes);
        batchId = _nextBatchId();
        _storeBatch(batchId, root);
        emit ResultsCommitted(batchId, msg.sender, root, taskIds, outputHashes, codes, outputs);
    }

    // ------------------------------------------------------------------ missed deadlines

    /// @inheritdoc ITaskManager
    /// @dev Anyone, once an Assigned task's response deadline has passed: jails the worker and puts the
    ///      task back to Drawing, anchored on this block, skipping the worker that missed. `assignTasks`
    ///      then draws another worker over this block's weights (the jail included, so the jailed worker
    ///      weighs 0) with the next block's hash; with nobody eligible the submitter is refunded.
    function reassign(uint256 taskId) external nonReentrant {
        Task memory task = _loadTask(taskId);
        _requireStatus(taskId, task.status, TaskStatus.Assigned);
        if (block.timestamp <= task.deadline) revert DeadlineNotPassed(taskId, task.deadline);
        _storeTask(taskId, task.worker, uint32(block.number), uint8(TaskStatus.Drawing), task.submission, 0);
        emit TaskMissed(taskId, task.worker);
        emit AssignmentDeferred(taskId, uint64(block.number));
        staking.jail(task.worker, uint64(block.timestamp) + _params.jailDuration);
    }

    // ------------------------------------------------------------------ finalize

    /// @inheritdoc ITaskManager
    /// @dev Anyone, after the challenge window. Committed: fee split developer / worker / validator pool /
    ///      treasury (dust to the worker). Failed: the worker keeps failureProcessingBps, the rest is
    ///      refunded to the submitter. All credited to payoutOf.
    function finalize(uint256 taskId) external nonReentrant {
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        _finalize(ids, false);
    }

    /// @inheritdoc ITaskManager
    /// @dev Credits are summed in memory: validator pool and treasury once per call, developer, worker
    ///      and submitter once per run of consecutive tasks with the same recipient. Tasks already
    ///      finalized (e.g. one copied from the mempool and sent first) are skipped, unless all were.
    function finalizeBatch(uint256[] calldata taskIds) external nonReentrant {
        if (taskIds.length == 0) revert EmptyBatch();
        _finalize(taskIds, true);
    }

    /// @inheritdoc ITaskManager
    function withdrawPayout() external nonReentrant returns (uint256 amount) {
        amount = _payouts[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _payouts[msg.sender] = 0;
        emit PayoutWithdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ disputes

    /// @inheritdoc ITaskManager
    /// @dev Only while Committed (or Failed with an input fault, which is judged like a result) and inside
    ///      the challenge window (a finalized task cannot be clawed back).
    function holdTask(uint256 taskId) external onlyRole(AUDITOR_ROLE) {
        uint256 word = _taskWords[taskId];
        uint8 status = uint8(word >> STATUS_SHIFT);
        if (status != uint8(TaskStatus.Failed) || !FailureCodes.isInputFault(_failureCodes[taskId])) {
            _requireStatus(taskId, status, TaskStatus.Committed);
        }
        uint32 deadline = uint32(word >> 160);
        if (block.timestamp > deadline) revert DeadlinePassed(taskId, deadline);
        _taskWords[taskId] =
            (word & ~(uint256(0xff) << STATUS_SHIFT)) | (uint256(TaskStatus.Disputed) << STATUS_SHIFT);
        emit TaskHeld(taskId);
    }

    /// @inheritdoc ITaskManager
    function releaseTask(uint256 taskId, bool fraud) external onlyRole(AUDITOR_ROLE) nonReentrant {
        Task memory task = _loadTask(taskId);
        _requireStatus(taskId, task.status, TaskStatus.Disputed);
        emit TaskReleased(taskId, fraud);
        if (fraud) {
            Submission memory s = _submissions[task.submission];
            _storeTask(
                taskId, task.worker, task.deadline, uint8(TaskStatus.Refunded), task.submission, task.latency
            );
            _payouts[s.submitter] += s.feePerTask;
            _counters.escrowed -= s.feePerTask;
            emit TaskRefunded(taskId, s.submitter, s.feePerTask);
        } else {
            // challenge window closed now: finalizable from the next second, as the result or failure it was
            _storeTask(
                taskId,
                task.worker,
                uint32(block.timestamp),
                _failureCodes[taskId] == 0 ? uint8(TaskStatus.Committed) : uint8(TaskStatus.Failed),
                task.submission,
                task.latency
            );
        }
    }

    // ------------------------------------------------------------------ user feedback

    /// @inheritdoc ITaskManager
    /// @dev One bit per task in `_ratedBits`; the score lives only in the TaskRated event (the indexer
    ///      folds it into the model's quality).
    function rateTask(uint256 taskId, uint8 score) external {
        Rater memory r;
        _rate(taskId, score, r);
    }

    /// @inheritdoc ITaskManager
    /// @dev At most maxBatch tasks; the submission snapshot is read once per run of tasks from the same
    ///      submit call, and a run of consecutive task ids shares one rated-bits word.
    function rateTasks(uint256[] calldata taskIds, uint8[] calldata scores) external {
        uint256 n = taskIds.length;
        if (n == 0) revert EmptyBatch();
        if (scores.length != n) revert LengthMismatch();
        uint256 max = _params.maxBatch;
        if (n > max) revert BatchTooLarge(n, max);
        Rater memory r;
        for (uint256 i = 0; i < n; ++i) {
            _rate(taskIds[i], scores[i], r);
        }
    }

    /// @notice Sets the response window (1..65535 s), challenge window and jail duration (<= 30 days).
    ///         Applies to assignments / commits made afterwards.
    function setWindows(uint32 responseWindow_, uint32 challengeWindow_, uint32 jailDuration_)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setWindows(responseWindow_, challengeWindow_, jailDuration_);
    }

    /// @notice Sets the fee split in basis points; the four must sum to 10000.
    function setFeeSplit(uint16 developerBps, uint16 workerBps, uint16 validatorBps, uint16 protocolBps)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setFeeSplit(developerBps, workerBps, validatorBps, protocolBps);
    }

    /// @notice Sets the share (bps, <= 10000) of the fee a worker keeps when it commits a failure code.
    function setFailureProcessingBps(uint16 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setFailureProcessingBps(bps);
    }

    /// @notice Sets the largest input (bytes, >= 1) and batch size (1..1024).
    function setLimits(uint32 maxInputBytes_, uint16 maxBatch_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setLimits(maxInputBytes_, maxBatch_);
    }

    /// @notice Sets the protocol (treasury) and validator fee recipients (non-zero).
    function setRecipients(address treasury_, address validatorPool_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRecipients(treasury_, validatorPool_);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITaskManager
    /// @dev Reverts UnknownTask for ids never submitted. latency is 0 until the task is committed.
    function getTask(uint256 taskId) external view returns (TaskView memory v) {
        Task memory t = _loadTask(taskId);
        if (t.status == uint8(TaskStatus.None)) revert UnknownTask(taskId);
        Submission memory s = _submissions[t.submission];
        v.submitter = s.submitter;
        v.modelId = s.modelId;
        v.fee = s.feePerTask;
        v.status = t.status;
        v.submission = t.submission;
        if (t.status == uint8(TaskStatus.Drawing)) {
            v.drawBlock = t.deadline;
            return v;
        }
        v.worker = t.worker;
        v.deadline = t.deadline;
        v.latency = t.status == uint8(TaskStatus.Assigned) ? 0 : t.latency;
        if (t.status != uint8(TaskStatus.Committed)) v.code = _failureCodes[taskId];
    }

    /// @inheritdoc ITaskManager
    function isRated(uint256 taskId) external view returns (bool) {
        return _ratedBits[taskId >> 8] & (uint256(1) << (taskId & 0xff)) != 0;
    }

    /// @inheritdoc ITaskManager
    function taskCount() external view returns (uint256) {
        return _counters.taskCount;
    }

    /// @notice Number of commit calls so far (batch ids are 1..batchCount).
    function batchCount() external view returns (uint256) {
        return _counters.batchCount;
    }

    /// @inheritdoc ITaskManager
    function batchRoot(uint256 batchId) external view returns (bytes32) {
        return _batchRoots[batchId];
    }

    /// @inheritdoc ITaskManager
    function batchInfo(uint256 batchId) external view returns (address worker, uint64 commitBlock) {
        uint256 info = _batchInfo[batchId];
        return (address(uint160(info)), uint64(info >> 160));
    }

    /// @inheritdoc ITaskManager
    function payoutOf(address account) external view returns (uint256) {
        return _payouts[account];
    }

    /// @inheritdoc ITaskManager
    function escrowed() external view returns (uint256) {
        return _counters.escrowed;
    }

    /// @inheritdoc ITaskManager
    function responseWindow() external view returns (uint64) {
        return _params.responseWindow;
    }

    /// @inheritdoc ITaskManager
    function challengeWindow() external view returns (uint64) {
        return _params.challengeWindow;
    }

    /// @notice Seconds a worker that missed a deadline is jailed.
    function jailDuration() external view returns (uint64) {
        return _params.jailDuration;
    }

    /// @inheritdoc ITaskManager
    function maxInputBytes() external view returns (uint256) {
        return _params.maxInputBytes;
    }

    /// @inheritdoc ITaskManager
    function maxBatch() external view returns (uint256) {
        return _params.maxBatch;
    }

    /// @inheritdoc ITaskManager
    function feeSplit()
        external
        view
        returns (uint16 developerBps, uint16 workerBps, uint16 validatorBps, uint16 protocolBps)
    {
        Params memory p = _params;
        return (p.developerBps, p.workerBps, p.validatorBps, p.protocolBps);
    }

    /// @inheritdoc ITaskManager
    function failureProcessingBps() external view returns (uint16) {
        return _params.failureProcessingBps;
    }

    // ------------------------------------------------------------------ internals: tasks

    /// What the tasks of one submit call share while they are created.
    struct NewTasks {
        uint32 modelId;
        uint40 submissionId;
        uint96 price;
    }

    /// Checks the model and fee, writes the submission snapshot; returns the shared context and the
    /// first task id.
    function _openSubmission(uint32 modelId, uint256 maxFee)
        private
        returns (NewTasks memory ctx, uint256 firstTaskId)
    {
        (address developer, uint96 price, uint32 computeUnits) = _checkModel(modelId, maxFee);
        Counters memory c = _counters;
        uint40 submissionId = c.submissionCount + 1;
        _submissions[submissionId] = Submission(msg.sender, price, developer, modelId, computeUnits);
        ctx = NewTasks(modelId, submissionId, price);
        firstTaskId = uint256(c.taskCount) + 1;
    }

    /// Stores the counters once per call and pulls the fees in one transfer.
    function _closeSubmission(uint256 lastTaskId, uint40 submissionId, uint256 total) private {
        Counters memory c = _counters;
        c.taskCount = lastTaskId.toUint64();
        c.submissionCount = submissionId;
        c.escrowed = (uint256(c.escrowed) + total).toUint96();
        _counters = c;
        if (total > 0) token.safeTransferFrom(msg.sender, address(this), total);
    }

    function _checkModel(uint32 modelId, uint256 maxFee)
        private
        view
        returns (address developer, uint96 price, uint32 computeUnits)
    {
        uint8 status;
        (developer, price, computeUnits, status) = registry.modelTerms(modelId);
        if (developer == address(0)) revert UnknownModel(modelId);
        // Probation models still take tasks (their traffic share follows quality off-chain); Delisted do not.
        if (status == uint8(IModelRegistry.ModelStatus.Delisted)) revert ModelNotActive(modelId, status);
        if (maxFee < price) revert FeeTooLow(modelId, price, maxFee);
        // fail fast: nobody could be drawn (the draw itself happens from the next block on)
        if (registry.totalWeight(modelId) == 0) revert NoEligibleWorker(modelId);
    }

    /// Validates the input and writes the task's one slot: Drawing, anchored on this block.
    function _createTask(Params memory p, NewTasks memory ctx, uint256 taskId, bytes calldata input) private {
        uint256 size = input.length;
        if (size == 0) revert EmptyInput();
        if (size > p.maxInputBytes) revert InputTooLarge(size, p.maxInputBytes);
        _storeTask(taskId, address(0), uint32(block.number), uint8(TaskStatus.Drawing), ctx.submissionId, 0);
        emit TaskSubmitted(taskId, msg.sender, ctx.modelId, ctx.price, input);
    }

    /// Commits every task of a batch and returns the Merkle root over their leaves.
    function _commitAll(uint256[] calldata taskIds, bytes32[] calldata outputHashes, uint16[] calldata codes)
        private
        returns (bytes32)
    {
        uint256 n = taskIds.length;
        if (n == 0) revert EmptyBatch();
        Params memory p = _params;
        if (n > p.maxBatch) revert BatchTooLarge(n, p.maxBatch);
        uint32 challengeEnd = uint32(block.timestamp) + p.challengeWindow;
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = _commitTask(taskIds[i], outputHashes[i], codes[i], challengeEnd);
        }
        return MerkleBatch.root(leaves);
    }

    function _commitTask(uint256 taskId, bytes32 outputHash, uint16 code, uint32 challengeEnd)
        private
        returns (bytes32)
    {
        Task memory task = _loadTask(taskId);
        _requireStatus(taskId, task.status, TaskStatus.Assigned);
        if (task.worker != msg.sender) revert NotAssignedWorker(taskId, msg.sender, task.worker);
        if (block.timestamp > task.deadline) revert DeadlinePassed(taskId, task.deadline);
        // while Assigned, latency holds the response window: assignment time = deadline - window
        uint256 elapsed = block.timestamp - (uint256(task.deadline) - task.latency);
        uint16 latency = elapsed > type(uint16).max ? type(uint16).max : uint16(elapsed);
        uint8 status = uint8(TaskStatus.Committed);
        if (code != 0) {
            status = uint8(TaskStatus.Failed);
            _failureCodes[taskId] = code;
        }
        _storeTask(taskId, msg.sender, challengeEnd, status, task.submission, latency);
        return MerkleBatch.leaf(taskId, outputHash, code);
    }

    /// Running credits of one finalize call. Workers are summed in a small in-memory table (flushed to
    /// storage at the end, or directly when the table is full); developer and submitter per run of
    /// consecutive tasks with the same recipient; validator pool and treasury once per call.
    struct Credits {
        address developer;
        uint256 developerAmount;
        address submitter;
        uint256 refundAmount;
        uint256 validatorTotal;
        uint256 protocolTotal;
        uint256 feeTotal;
        uint256 workerCount;
        address[] workers;
        uint256[] workerAmounts;
    }

    uint256 private constant STATUS_SHIFT = 192;
    uint256 private constant WORKER_TABLE = 16;

    function _finalize(uint256[] memory taskIds, bool skipFinalized) private {
        Params memory p = _params;
        Credits memory cr;
        cr.workers = new address[](WORKER_TABLE);
        cr.workerAmounts = new uint256[](WORKER_TABLE);
        Split memory sp;
        Submission memory s;
        uint256 cachedSubmission;
        uint256 n = taskIds.length;
        uint256 done = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 taskId = taskIds[i];
            uint256 word = _taskWords[taskId];
            uint8 status = uint8(word >> STATUS_SHIFT);
            if (status != uint8(TaskStatus.Committed) && status != uint8(TaskStatus.Failed)) {
                if (status == uint8(TaskStatus.None)) revert UnknownTask(taskId);
                if (skipFinalized && status == uint8(TaskStatus.Finalized)) continue;
                revert WrongStatus(taskId, status);
            }
            ++done;
            {
                uint32 deadline = uint32(word >> 160);
                if (block.timestamp <= deadline) revert ChallengeWindowOpen(taskId, deadline);
                uint256 submission = uint40(word >> 200);
                if (submission != cachedSubmission) {
                    s = _submissions[submission];
                    cachedSubmission = submission;
                }
            }
            _taskWords[taskId] =
                (word & ~(uint256(0xff) << STATUS_SHIFT)) | (uint256(TaskStatus.Finalized) << STATUS_SHIFT);
            _settle(taskId, word, status, p, s, cr, sp);
        }
        if (done == 0) revert WrongStatus(taskIds[0], uint8(TaskStatus.Finalized));
        _credit(cr.developer, cr.developerAmount);
        _credit(cr.submitter, cr.refundAmount);
        for (uint256 k = 0; k < cr.workerCount; ++k) {
            _credit(cr.workers[k], cr.workerAmounts[k]);
        }
        _credit(validatorPool, cr.validatorTotal);
        _credit(treasury, cr.protocolTotal);
        _counters.escrowed -= uint96(cr.feeTotal);
    }

    /// How one task's fee is divided (one instance reused for every task of a finalize call).
    struct Split {
        uint256 developerFee;
        uint256 workerFee;
        uint256 validatorFee;
        uint256 protocolFee;
        uint256 refund;
    }

    /// Splits one task's fee into the running credits and emits TaskFinalized.
    /// Committed: developer / validator / protocol shares rounded down, the dust to the worker.
    /// Failed: the worker keeps failureProcessingBps, the submitter gets the rest back. TaskFinalized's
    /// `code` is 0 for a result and 1 for a failure (the worker's exact code is in ResultsCommitted).
    function _settle(
        uint256 taskId,
        uint256 word,
        uint8 status,
        Params memory p,
        Submission memory s,
        Credits memory cr,
        Split memory sp
    ) private {
        uint256 fee = s.feePerTask;
        cr.feeTotal += fee;
        if (status == uint8(TaskStatus.Committed)) {
            sp.developerFee = fee * p.developerBps / BPS;
            sp.validatorFee = fee * p.validatorBps / BPS;
            sp.protocolFee = fee * p.protocolBps / BPS;
            sp.workerFee = fee - sp.developerFee - sp.validatorFee - sp.protocolFee;
            sp.refund = 0;
            if (sp.developerFee > 0) {
                if (s.developer != cr.developer) {
                    _credit(cr.developer, cr.developerAmount);
                    (cr.developer, cr.developerAmount) = (s.developer, 0);
                }
                cr.developerAmount += sp.developerFee;
            }
            cr.validatorTotal += sp.validatorFee;
            cr.protocolTotal += sp.protocolFee;
        } else {
            // M-4: only an input fault (auditable: a re-execution must fail the same way) pays the worker
            // its processing share; a worker-side failure refunds the whole fee
            sp.workerFee =
                FailureCodes.isInputFault(_failureCodes[taskId]) ? fee * p.failureProcessingBps / BPS : 0;
            sp.refund = fee - sp.workerFee;
            (sp.developerFee, sp.validatorFee, sp.protocolFee) = (0, 0, 0);
            if (sp.refund > 0) {
                if (s.submitter != cr.submitter) {
                    _credit(cr.submitter, cr.refundAmount);
                    (cr.submitter, cr.refundAmount) = (s.submitter, 0);
                }
                cr.refundAmount += sp.refund;
            }
        }
        address worker = address(uint160(word));
        _creditWorker(cr, worker, sp.workerFee);
        emit TaskFinalized(
            taskId,
            worker,
            s.modelId,
            status == uint8(TaskStatus.Committed) ? 0 : 1,
            s.computeUnits,
            QUALITY_PERFECT,
            uint16(word >> 240),
            sp.developerFee,
            sp.workerFee,
            sp.validatorFee,
            sp.protocolFee,
            sp.refund
        );
    }

    function _creditWorker(Credits memory cr, address worker, uint256 amount) private {
        if (amount == 0) return;
        uint256 count = cr.workerCount;
        for (uint256 k = 0; k < count; ++k) {
            if (cr.workers[k] == worker) {
                cr.workerAmounts[k] += amount;
                return;
            }
        }
        if (count == WORKER_TABLE) {
            // table full (more than 16 workers in one call): straight to storage
            _credit(worker, amount);
            return;
        }
        cr.workers[count] = worker;
        cr.workerAmounts[count] = amount;
        cr.workerCount = count + 1;
    }

    function _credit(address account, uint256 amount) private {
        if (amount > 0) _payouts[account] += amount;
    }

    /// Draws over the model's weights at block `at` without `exclude`, up to MAX_DRAWS times; skips workers
    /// that are not eligible now or no longer serve the model (`known`: one already checked in this call,
    /// never `exclude`). Returns address(0) when nobody was found (or
    /// the model had no other weight).
    function _drawEligible(uint32 modelId, uint256 seed, address exclude, uint256 at, address known)
        private
        view
        returns (address)
    {
        for (uint256 i = 0; i < MAX_DRAWS; ++i) {
            try registry.drawWorkerAt(modelId, seed, at, exclude) returns (address worker) {
                if (
                    worker == known
                        || (staking.isEligible(worker, uint8(IStaking.Role.Worker))
                            && registry.isOptedIn(modelId, worker))
                ) return worker;
            } catch {
                return address(0);
            }
            seed = uint256(keccak256(abi.encode(seed)));
        }
        return address(0);
    }

    function _loadTask(uint256 taskId) private view returns (Task memory t) {
        uint256 w = _taskWords[taskId];
        t.worker = address(uint160(w));
        t.deadline = uint32(w >> 160);
        t.status = uint8(w >> 192);
        t.submission = uint40(w >> 200);
        t.latency = uint16(w >> 240);
    }

    function _storeTask(
        uint256 taskId,
        address worker,
        uint32 deadline,
        uint8 status,
        uint40 submission,
        uint16 latency
    ) private {
        _taskWords[taskId] = uint256(uint160(worker)) | (uint256(deadline) << 160) | (uint256(status) << 192)
            | (uint256(submission) << 200) | (uint256(latency) << 240);
    }

    function _storeBatch(uint256 batchId, bytes32 root) private {
        _batchRoots[batchId] = root;
        _batchInfo[batchId] = uint256(uint160(msg.sender)) | (block.number << 160);
    }

    function _nextBatchId() private returns (uint256 batchId) {
        Counters storage c = _counters;
        batchId = c.batchCount + 1;
        c.batchCount = uint48(batchId);
    }

    /// The submission last read by a rating call (so a batch reads each submission snapshot once).
    struct Rater {
        uint40 submission;
        address submitter;
        uint32 modelId;
    }

    /// Checks and records one rating: score, task status (Committed, Failed or Finalized), caller is
    /// the submitter, not rated before.
    function _rate(uint256 taskId, uint8 score, Rater memory r) private {
        if (score > MAX_SCORE) revert InvalidScore(score);
        uint256 word = _taskWords[taskId];
        uint8 status = uint8(word >> STATUS_SHIFT);
        if (
            status != uint8(TaskStatus.Committed) && status != uint8(TaskStatus.Failed)
                && status != uint8(TaskStatus.Finalized)
        ) {
            if (status == uint8(TaskStatus.None)) revert UnknownTask(taskId);
            revert WrongStatus(taskId, status);
        }
        uint40 submission = uint40(word >> 200);
        if (submission != r.submission) {
            Submission storage s = _submissions[submission];
            (r.submission, r.submitter, r.modelId) = (submission, s.submitter, s.modelId);
        }
        if (r.submitter != msg.sender) revert NotSubmitter(taskId, msg.sender);
        uint256 slot = taskId >> 8;
        uint256 bit = uint256(1) << (taskId & 0xff);
        uint256 bits = _ratedBits[slot];
        if (bits & bit != 0) revert AlreadyRated(taskId);
        _ratedBits[slot] = bits | bit;
        emit TaskRated(taskId, r.modelId, msg.sender, score);
    }

    function _requireStatus(uint256 taskId, uint8 status, TaskStatus expected) private pure {
        if (status != uint8(expected)) {
            if (status == uint8(TaskStatus.None)) revert UnknownTask(taskId);
            revert WrongStatus(taskId, status);
        }
    }

    // ------------------------------------------------------------------ internals: params

    function _setWindows(uint32 responseWindow_, uint32 challengeWindow_, uint32 jailDuration_) private {
        if (responseWindow_ == 0 || responseWindow_ > MAX_RESPONSE_WINDOW) {
            revert InvalidParameter("responseWindow", responseWindow_);
        }
        if (challengeWindow_ > MAX_CHALLENGE_WINDOW) {
            revert InvalidParameter("challengeWindow", challengeWindow_);
        }
        if (jailDuration_ > MAX_JAIL_DURATION) revert InvalidParameter("jailDuration", jailDuration_);
        Params storage p = _params;
        p.responseWindow = responseWindow_;
        p.challengeWindow = challengeWindow_;
        p.jailDuration = jailDuration_;
        emit WindowsSet(responseWindow_, challengeWindow_, jailDuration_);
    }

    function _setFeeSplit(uint16 developerBps, uint16 workerBps, uint16 validatorBps, uint16 protocolBps)
        private
    {
        uint256 sum = uint256(developerBps) + workerBps + validatorBps + protocolBps;
        if (sum != BPS) revert InvalidParameter("feeSplit sum", sum);
        Params storage p = _params;
        p.developerBps = developerBps;
        p.workerBps = workerBps;
        p.validatorBps = validatorBps;
        p.protocolBps = protocolBps;
        emit FeeSplitSet(developerBps, workerBps, validatorBps, protocolBps);
    }

    function _setFailureProcessingBps(uint16 bps) private {
        if (bps > BPS) revert InvalidParameter("failureProcessingBps", bps);
        _params.failureProcessingBps = bps;
        emit FailureProcessingBpsSet(bps);
    }

    function _setLimits(uint32 maxInputBytes_, uint16 maxBatch_) private {
        if (maxInputBytes_ == 0) revert InvalidParameter("maxInputBytes", maxInputBytes_);
        if (maxBatch_ == 0 || maxBatch_ > MAX_BATCH_LIMIT) revert InvalidParameter("maxBatch", maxBatch_);
        _params.maxInputBytes = maxInputBytes_;
        _params.maxBatch = maxBatch_;
        emit LimitsSet(maxInputBytes_, maxBatch_);
    }

    function _setRecipients(address treasury_, address validatorPool_) private {
        if (treasury_ == address(0)) revert InvalidParameter("treasury", 0);
        if (validatorPool_ == address(0)) revert InvalidParameter("validatorPool", 0);
        treasury = treasury_;
        validatorPool = validatorPool_;
        emit RecipientsSet(treasury_, validatorPool_);
    }
}
