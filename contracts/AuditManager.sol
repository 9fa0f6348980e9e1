// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAuditManager} from "./interfaces/IAuditManager.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IStaking, IStakeObserver} from "./interfaces/IStaking.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {MerkleBatch} from "./libraries/MerkleBatch.sol";
import {FailureCodes} from "./libraries/FailureCodes.sol";
import {CheckpointedSortition} from "./libraries/CheckpointedSortition.sol";
import {Verdicts} from "./libraries/Verdicts.sol";

/// @title AuditManager
/// @notice Sampled audits, signed verdicts, quorum disputes, slashing, user challenges, forced errors and
///         canary reports (see IAuditManager for the draw). Needs SLASHER_ROLE on Staking, AUDITOR_ROLE on
///         TaskManager and TRUST_ROLE on ModelRegistry (a proven fraud zeroes the worker's trust weight).
/// @dev Slash reason codes (Staking.Slashed): 1 fraud, 2 false accusation, 3 lazy validator, 5 minority vote.
///      Every draw (audit validator, dispute quorum) reads validator weights as they stood at the end of a
///      block that came before the draw's randomness existed (CheckpointedSortition), so nobody can steer a
///      draw by changing stake once the randomness is known.
contract AuditManager is IAuditManager, IStakeObserver, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using CheckpointedSortition for CheckpointedSortition.Tree;

    /// @notice May plant forced errors (the protocol's sentinel operator).
    bytes32 public constant PLANTER_ROLE = keccak256("PLANTER_ROLE");

    uint8 public constant REASON_FRAUD = 1;
    uint8 public constant REASON_FALSE_ACCUSATION = 2;
    uint8 public constant REASON_LAZY = 3;
    uint8 public constant REASON_MINORITY = 5;
    /// @notice Lowest quality an approving verdict may carry: a validator cannot accept a result and zero
    ///         its quality (a result that bad is a mismatch, which a quorum then judges).
    uint32 public constant MIN_MATCH_QUALITY_PPM = 500_000;
    /// @notice Draws tried per quorum seat (a draw that hits the accuser, the worker or a member is redrawn).
    uint256 public constant MAX_DRAWS = 8;
    /// @notice Upper bound of the quorum size.
    uint8 public constant MAX_QUORUM = 15;
    uint32 public constant QUALITY_PERFECT = 1_000_000;
    /// @notice EIP-712 type a canary's submitter signs to let `validator` report it.
    bytes32 public constant CANARY_TYPEHASH = keccak256("Canary(uint256 taskId,address validator)");
    /// @notice EIP-712 type a forced error's submitter and worker both sign to let `planter` reveal it.
    bytes32 public constant FORCED_ERROR_TYPEHASH = keccak256("ForcedError(uint256 taskId,address planter)");
    uint8 private constant ROLE_VALIDATOR = uint8(IStaking.Role.Validator);
    uint8 private constant ROLE_WORKER = uint8(IStaking.Role.Worker);
    uint8 private constant STATUS_COMMITTED = uint8(ITaskManager.TaskStatus.Committed);
    uint8 private constant VOTE_HONEST = 1;
    uint8 private constant VOTE_FRAUD = 2;

    IERC20 public immutable token;
    IStaking public immutable staking;
    ITaskManager public immutable taskManager;
    IModelRegistry public immutable registry;

    Params private _params;
    /// validator draw weights per block (slot = join order); see CheckpointedSortition
    CheckpointedSortition.Tree private _validators;
    mapping(address validator => uint256 slot) private _slotOf;
    mapping(uint256 slot => address validator) private _validatorAt;
    mapping(uint256 batchId => Seal) private _seals;
    mapping(uint256 taskId => AuditRecord) private _records;
    mapping(uint256 taskId => Dispute) private _disputes;
    /// a quorum member's vote: 0 none, VOTE_HONEST or VOTE_FRAUD
    mapping(uint256 taskId => mapping(address validator => uint8)) private _votes;
    /// commitment => planter (bits 64-223) and the block it was planted in (bits 0-63); 0 = unknown
    mapping(bytes32 commitment => uint256) private _planted;
    /// canary reports already made (one per task)
    mapping(uint256 taskId => bool) private _canaryReported;

    constructor(
        address admin,
        IERC20 token_,
        IStaking staking_,
        ITaskManager taskManager_,
        IModelRegistry registry_
    ) EIP712("DeepNode Validation", "1") {
        token = token_;
        staking = staking_;
        taskManager = taskManager_;
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setParams(
            Params({
                p0Wad: 0.3e18,
                pMinWad: 0.02e18,
                disputeWindow: 300,
                quorum: 3,
                fraudSlashBps: 5000,
                falseAccusationSlashBps: 2000,
                lazySlashBps: 5000,
                rewardBps: 5000,
                challengeBond: 10e18,
                minoritySlashBps: 1000
            })
        );
    }

    // ------------------------------------------------------------------ validator set

    /// @inheritdoc IAuditManager
    function joinValidators() external {
        if (_slotOf[msg.sender] != 0) revert AlreadyJoined(msg.sender);
        if (!staking.isEligible(msg.sender, ROLE_VALIDATOR)) revert NotValidator(msg.sender);
        uint256 weight = staking.stakeOf(msg.sender, ROLE_VALIDATOR);
        uint256 slot = _validators.append(weight);
        _slotOf[msg.sender] = slot;
        _validatorAt[slot] = msg.sender;
        emit ValidatorJoined(msg.sender, weight);
    }

    /// @inheritdoc IAuditManager
    function syncValidator(address validator) public {
        if (_slotOf[validator] == 0) revert NotValidator(validator);
        _sync(validator);
    }

    /// @notice Staking calls this whenever an account's active validator stake changes (stake, unstake
    ///         request, slash): a member's weight follows at once, and zero stake means zero weight.
    ///         Weight changes only affect draws whose frozen block is this one or later.
    function onStakeChanged(address account) external {
        if (msg.sender != address(staking)) revert NotStaking(msg.sender);
        if (_slotOf[account] != 0) _sync(account);
    }

    function _sync(address validator) private {
        uint256 slot = _slotOf[validator];
        uint256 weight =
            staking.isEligible(validator, ROLE_VALIDATOR) ? staking.stakeOf(validator, ROLE_VALIDATOR) : 0;
        if (_validators.valueAt(slot, block.number) == weight) return;
        _validators.set(slot, weight);
        emit ValidatorWeightUpdated(validator, weight);
    }

    // ------------------------------------------------------------------ sealing

    /// @inheritdoc IAuditManager
    function sealBatch(uint256 batchId) external {
        if (_seals[batchId].randomness != bytes32(0)) revert AlreadySealed(batchId);
        _seal(batchId);
    }

    /// @inheritdoc IAuditManager
    function sealBatches(uint256[] calldata batchIds) external {
        uint256 n = batchIds.length;
        if (n == 0) revert EmptyBatch();
        for (uint256 i = 0; i < n; ++i) {
            if (_seals[batchIds[i]].randomness == bytes32(0)) _seal(batchIds[i]);
        }
    }

    function _seal(uint256 batchId) private {
        (address worker, uint64 commitBlock) = taskManager.batchInfo(batchId);
        if (worker == address(0)) revert UnknownBatch(batchId);
        if (block.number < uint256(commitBlock) + 2) revert TooEarlyToSeal(batchId, commitBlock);
        bytes32 randomness = blockhash(uint256(commitBlock) + 1);
        bool full = randomness == bytes32(0);
        uint64 pWad;
        if (full) {
            // sealed too late to recover the post-commit block hash: every task of the batch is audited
            randomness = keccak256(abi.encode(blockhash(block.number - 1), batchId));
            pWad = uint64(Verdicts.WAD);
        } else {
            pWad = uint64(auditRate(worker));
        }
        _seals[batchId] = Seal(randomness, pWad, full);
        emit BatchSealed(batchId, worker, randomness, pWad, full);
    }

    // ------------------------------------------------------------------ verdicts

    /// @inheritdoc IAuditManager
    function submitVerdicts(
        Verdicts.Verdict[] calldata verdicts,
        bytes[] calldata signatures,
        bytes32[][] calldata proofs
    ) external nonReentrant {
        uint256 n = verdicts.length;
        if (n == 0) revert EmptyBatch();
        if (signatures.length != n || proofs.length != n) revert LengthMismatch();
        bytes32 separator = _domainSeparatorV4();
        uint256 accepted = 0;
        for (uint256 i = 0; i < n; ++i) {
            // a task judged meanwhile (e.g. this verdict copied from the mempool and sent first) is
            // skipped, so one front-run item cannot revert the whole batch
            uint8 state = _records[verdicts[i].taskId].state;
            if (state != uint8(AuditState.None)) {
                if (n == 1) revert AlreadyJudged(verdicts[i].taskId, state);
                emit VerdictSkipped(verdicts[i].taskId, state);
                continue;
            }
            _acceptVerdict(separator, verdicts[i], signatures[i], proofs[i]);
            ++accepted;
        }
        if (accepted == 0) revert NothingAccepted();
    }

    function _acceptVerdict(
        bytes32 separator,
        Verdicts.Verdict calldata v,
        bytes calldata signature,
        bytes32[] calldata proof
    ) private {
        if (block.timestamp > v.deadline) {
            revert VerdictExpired(v.taskId, v.deadline);
        }
        _checkQuality(v.qualityPpm, v.matches);
        AuditRecord storage rec = _records[v.taskId];
        address worker = _requireCommitted(v.taskId, v.batchId, v.workerOutputHash, proof);
        address signer = _requireDrawnSigner(separator, v, signature);
        rec.accuser = signer;
        rec.qualityPpm = v.qualityPpm;
        rec.batchId = uint32(v.batchId);
        rec.workerOutputHash = v.workerOutputHash;
        _emitVerdict(v, signer, worker);
        if (v.matches) {
            rec.state = uint8(AuditState.Passed);
        } else {
            rec.state = uint8(AuditState.Disputed);
            _openDispute(v.taskId, worker, signer, Opener.Validator, 0);
        }
    }

    /// At most QUALITY_PERFECT; a match at least MIN_MATCH_QUALITY_PPM (M-5: an approval cannot zero a reward).
    function _checkQuality(uint32 qualityPpm, bool matches) private pure {
        if (qualityPpm > QUALITY_PERFECT || (matches && qualityPpm < MIN_MATCH_QUALITY_PPM)) {
            revert InvalidQuality(qualityPpm);
        }
    }

    /// The task is audited and `signature` is the drawn validator's over `v`. Returns the validator.
    function _requireDrawnSigner(bytes32 separator, Verdicts.Verdict calldata v, bytes calldata signature)
        private
        view
        returns (address signer)
    {
        (bool audited, address drawn) = auditOf(v.batchId, v.taskId);
        if (!audited) revert NotAudited(v.taskId);
        signer = Verdicts.recover(separator, v, signature);
        if (signer != drawn) revert WrongSigner(v.taskId, signer, drawn);
    }

    function _emitVerdict(Verdicts.Verdict calldata v, address signer, address worker) private {
        emit VerdictAccepted(
            v.taskId,
            v.batchId,
            signer,
            worker,
            v.workerOutputHash,
            v.validatorOutputHash,
            v.qualityPpm,
            v.matches
        );
    }

    /// The task is Committed (or Failed with an input fault: M-4, a failure is judged like a result, the
    /// validator must reproduce the same code), inside its challenge window, committed in `batchId` by the
    /// batch's worker with `outputHash` and its code (Merkle proof). Returns the worker.
    function _requireCommitted(uint256 taskId, uint256 batchId, bytes32 outputHash, bytes32[] calldata proof)
        private
        view
        returns (address worker)
    {
        ITaskManager.TaskView memory t = taskManager.getTask(taskId);
        bool open = t.status == STATUS_COMMITTED
            || (t.status == uint8(ITaskManager.TaskStatus.Failed) && FailureCodes.isInputFault(t.code));
        if (!open || block.timestamp > t.deadline) revert TaskNotOpen(taskId, t.status);
        _requireInBatch(taskId, batchId, t, outputHash, proof);
        return t.worker;
    }

    /// `t.worker` committed `batchId`, and the batch holds the leaf (taskId, outputHash, t.code).
    function _requireInBatch(
        uint256 taskId,
        uint256 batchId,
        ITaskManager.TaskView memory t,
        bytes32 outputHash,
        bytes32[] calldata proof
    ) private view {
        (address batchWorker,) = taskManager.batchInfo(batchId);
        if (batchWorker != t.worker || batchId > type(uint32).max) revert WrongBatch(taskId, batchId);
        bytes32 root = taskManager.batchRoot(batchId);
        if (!MerkleProof.verifyCalldata(proof, root, MerkleBatch.leaf(taskId, outputHash, t.code))) {
            revert NotInBatch(taskId, batchId, outputHash);
        }
    }

    // ------------------------------------------------------------------ disputes

    /// Holds the task and opens the dispute. Its quorum does not exist yet: it is drawn by `drawQuorum`
    /// from the hash of the next block, over the validator weights frozen at this block, so neither the
    /// opener nor anyone else can retry the draw inside this transaction or nudge weights afterwards.
    function _openDispute(uint256 taskId, address worker, address accuser, Opener opener, uint96 bond)
        private
    {
        taskManager.holdTask(taskId);
        Dispute storage d = _disputes[taskId];
        d.worker = worker;
        d.accuser = accuser;
        d.opener = uint8(opener);
        d.deadline = uint64(block.timestamp) + _params.disputeWindow;
        d.bond = bond;
        d.quorumBlock = uint64(block.number);
        emit DisputeOpened(taskId, worker, accuser, uint8(opener), d.quorumBlock, d.deadline);
    }

    /// @inheritdoc IAuditManager
    function drawQuorum(uint256 taskId) external nonReentrant {
        Dispute storage d = _disputes[taskId];
        if (_records[taskId].state != uint8(AuditState.Disputed)) revert NoDispute(taskId);
        if (d.quorumDrawn) revert QuorumAlreadyDrawn(taskId);
        uint256 anchor = d.quorumBlock;
        if (block.number < anchor + 2) revert QuorumNotReady(taskId, anchor + 2);
        bytes32 randomness = blockhash(anchor + 1);
        uint64 window = _params.disputeWindow;
        if (randomness == bytes32(0)) {
            // nobody drew within 256 blocks: re-anchor on this block (weights and next hash) and wait
            d.quorumBlock = uint64(block.number);
            d.deadline = uint64(block.timestamp) + window;
            emit QuorumDeferred(taskId, d.quorumBlock, d.deadline);
            return;
        }
        // quorum drawn by stake at the anchor block, from the validators other than accuser and worker
        uint8 quorum = _params.quorum;
        bytes32 seed = keccak256(abi.encode(randomness, taskId, "quorum"));
        for (uint256 tries = 0; tries < uint256(quorum) * MAX_DRAWS && d.members.length < quorum; ++tries) {
            uint256 slot = _validators.drawSkipping(uint256(seed), 0, anchor);
            if (slot == 0) break;
            address m = _validatorAt[slot];
            seed = keccak256(abi.encode(seed));
            if (m == d.accuser || m == d.worker || _isMember(d.members, m)) continue;
            d.members.push(m);
        }
        d.quorumDrawn = true;
        d.deadline = uint64(block.timestamp) + window;
        emit QuorumDrawn(taskId, d.members, d.deadline);
    }

    function _isMember(address[] storage members, address a) private view returns (bool) {
        for (uint256 i = 0; i < members.length; ++i) {
            if (members[i] == a) return true;
        }
        return false;
    }

    /// @inheritdoc IAuditManager
    function vote(uint256 taskId, bool fraud, bytes32 outputHash) external nonReentrant {
        Dispute storage d = _disputes[taskId];
        if (_records[taskId].state != uint8(AuditState.Disputed)) revert NoDispute(taskId);
        if (!d.quorumDrawn) revert QuorumNotDrawn(taskId);
        if (block.timestamp > d.deadline) revert DisputeClosed(taskId, d.deadline);
        if (!_isMember(d.members, msg.sender)) revert NotQuorumMember(taskId, msg.sender);
        if (_votes[taskId][msg.sender] != 0) revert AlreadyVoted(taskId, msg.sender);
        _votes[taskId][msg.sender] = fraud ? VOTE_FRAUD : VOTE_HONEST;
        if (fraud) ++d.fraudVotes;
        else ++d.honestVotes;
        emit DisputeVoted(taskId, msg.sender, fraud, outputHash);
        uint256 half = d.members.length / 2;
        if (d.fraudVotes > half || d.honestVotes > half) _resolve(taskId, d);
    }

    /// @inheritdoc IAuditManager
    function resolveDispute(uint256 taskId) external nonReentrant {
        Dispute storage d = _disputes[taskId];
        if (_records[taskId].state != uint8(AuditState.Disputed)) revert NoDispute(taskId);
        uint256 half = d.members.length / 2;
        if (
            block.timestamp <= d.deadline
                && (!d.quorumDrawn || (d.fraudVotes <= half && d.honestVotes <= half))
        ) {
            revert DisputeOpen(taskId, d.deadline);
        }
        _resolve(taskId, d);
    }

    function _resolve(uint256 taskId, Dispute storage d) private {
        Params memory p = _params;
        AuditState outcome;
        if (d.fraudVotes > d.honestVotes) {
            outcome = AuditState.Fraud;
        } else if (d.honestVotes > d.fraudVotes) {
            outcome = AuditState.Cleared;
        } else {
            outcome = AuditState.Undecided;
        }
        _records[taskId].state = uint8(outcome);
        emit DisputeResolved(taskId, uint8(outcome), d.fraudVotes, d.honestVotes);
        _recordAbsentees(taskId, d);

        taskManager.releaseTask(taskId, outcome == AuditState.Fraud);
        uint96 bond = d.bond;
        d.bond = 0;
        if (outcome == AuditState.Fraud) {
            uint256 amount = staking.slashableOf(d.worker, ROLE_WORKER) * p.fraudSlashBps / 10_000;
            if (amount > 0) {
                staking.slash(d.worker, ROLE_WORKER, amount, REASON_FRAUD, d.accuser, p.rewardBps);
            }
            registry.setTrustWeight(d.worker, 0);
            if (bond > 0) token.safeTransfer(d.accuser, bond);
            _slashMinority(taskId, d, VOTE_HONEST, p.minoritySlashBps);
        } else if (outcome == AuditState.Cleared) {
            if (d.opener == uint8(Opener.Validator)) {
                uint256 amount =
                    staking.slashableOf(d.accuser, ROLE_VALIDATOR) * p.falseAccusationSlashBps / 10_000;
                if (amount > 0) {
                    staking.slash(
                        d.accuser, ROLE_VALIDATOR, amount, REASON_FALSE_ACCUSATION, d.worker, p.rewardBps
                    );
                }
            } else if (bond > 0) {
                // a failed user challenge: the bond compensates the worker
                token.safeTransfer(d.worker, bond);
            }
            _slashMinority(taskId, d, VOTE_FRAUD, p.minoritySlashBps);
        } else if (bond > 0) {
            token.safeTransfer(d.accuser, bond);
        }
    }

    /// Members who voted against the outcome lose `bps` of their validator stake (burned): a vote is a
    /// Schelling game, so siding with a colluding minority costs money instead of nothing.
    function _slashMinority(uint256 taskId, Dispute storage d, uint8 losing, uint16 bps) private {
        if (bps == 0) return;
        uint256 m = d.members.length;
        for (uint256 i = 0; i < m; ++i) {
            address member = d.members[i];
            if (_votes[taskId][member] != losing) continue;
            uint256 amount = staking.slashableOf(member, ROLE_VALIDATOR) * bps / 10_000;
            if (amount > 0) staking.slash(member, ROLE_VALIDATOR, amount, REASON_MINORITY, address(0), 0);
        }
    }

    function _recordAbsentees(uint256 taskId, Dispute storage d) private {
        uint256 m = d.members.length;
        if (uint256(d.fraudVotes) + d.honestVotes == m) return;
        // only a dispute resolved at its deadline charges absentees; an early majority leaves the rest time
        if (block.timestamp <= d.deadline) return;
        for (uint256 i = 0; i < m; ++i) {
            address member = d.members[i];
            if (_votes[taskId][member] == 0) emit DeadlineMissed(taskId, member, 1);
        }
    }

    // ------------------------------------------------------------------ user challenge

    /// @inheritdoc IAuditManager
    function challenge(uint256 taskId, uint256 batchId, bytes32 outputHash, bytes32[] calldata proof)
        external
        nonReentrant
    {
        AuditRecord storage rec = _records[taskId];
        if (rec.state != uint8(AuditState.None)) revert AlreadyJudged(taskId, rec.state);
        ITaskManager.TaskView memory t = taskManager.getTask(taskId);
        if (t.submitter != msg.sender) revert NotSubmitter(taskId, msg.sender);
        address worker = _requireCommitted(taskId, batchId, outputHash, proof);
        uint96 bond = _params.challengeBond;
        rec.state = uint8(AuditState.Disputed);
        rec.accuser = msg.sender;
        rec.batchId = uint32(batchId);
        rec.workerOutputHash = outputHash;
        if (bond > 0) token.safeTransferFrom(msg.sender, address(this), bond);
        _openDispute(taskId, worker, msg.sender, Opener.User, bond);
    }

    // ------------------------------------------------------------------ forced errors

    /// @inheritdoc IAuditManager
    function plantForcedError(bytes32 commitment) external onlyRole(PLANTER_ROLE) {
        if (_planted[commitment] == 0) {
            _planted[commitment] = block.number | (uint256(uint160(msg.sender)) << 64);
            emit ForcedErrorPlanted(commitment, msg.sender);
        }
    }

    /// @inheritdoc IAuditManager
    function revealForcedError(
        uint256 taskId,
        bytes32 trueOutputHash,
        bytes32 salt,
        bytes calldata submitterSignature,
        bytes calldata workerSignature
    ) external nonReentrant {
        bytes32 commitment = keccak256(abi.encode(taskId, trueOutputHash, salt));
        uint256 plant = _planted[commitment];
        if (plant == 0) revert UnknownCommitment(commitment);
        uint256 plantedBlock = uint64(plant);
        address planter = address(uint160(plant >> 64));
        AuditRecord storage rec = _records[taskId];
        uint8 state = rec.state;
        if (state != uint8(AuditState.Passed) && state != uint8(AuditState.Disputed)) {
            revert NotForcedError(taskId);
        }
        // only a task whose submitter and worker both consented to this planter's forced error qualifies:
        // a user's task (its submitter never signs) or an honest worker's result (its worker never signs)
        // never is. Neither is linked to the planter on-chain before the reveal, so a validator cannot tell
        // a sentinel's task from a user's.
        if (!_consented(taskId, planter, submitterSignature, workerSignature)) revert NotForcedError(taskId);
        (, uint64 commitBlock) = taskManager.batchInfo(rec.batchId);
        if (plantedBlock >= commitBlock) revert CommitmentTooLate(commitment, plantedBlock, commitBlock);
        if (rec.workerOutputHash == trueOutputHash) revert NotForcedError(taskId);
        address validator = rec.accuser;
        if (state == uint8(AuditState.Passed)) {
            // the validator approved a result that was provably wrong: it did not re-execute
            rec.state = uint8(AuditState.ForcedError);
            emit ForcedErrorRevealed(taskId, validator, true);
            uint256 amount = staking.slashableOf(validator, ROLE_VALIDATOR) * _params.lazySlashBps / 10_000;
            // the bounty goes to the planter, not to whoever sends the reveal (a copied reveal earns nothing)
            if (amount > 0) {
                staking.slash(validator, ROLE_VALIDATOR, amount, REASON_LAZY, planter, _params.rewardBps);
            }
        } else {
            // caught as it should be: close the dispute without slashing the sentinel worker
            rec.state = uint8(AuditState.ForcedError);
            emit ForcedErrorRevealed(taskId, validator, false);
            _closeCaughtForcedError(taskId);
        }
    }

    /// @dev Closes the dispute over a forced error its validator rejected: nobody slashed, the submitter
    ///      refunded, a challenge bond returned.
    function _closeCaughtForcedError(uint256 taskId) private {
        Dispute storage d = _disputes[taskId];
        emit DisputeResolved(taskId, uint8(AuditState.ForcedError), d.fraudVotes, d.honestVotes);
        taskManager.releaseTask(taskId, true);
        uint96 bond = d.bond;
        d.bond = 0;
        if (bond > 0) token.safeTransfer(d.accuser, bond);
    }

    // ------------------------------------------------------------------ misses and canaries

    /// @inheritdoc IAuditManager
    function reportMissedAudit(uint256 batchId, uint256 taskId, bytes32 outputHash, bytes32[] calldata proof)
        external
    {
        AuditRecord storage rec = _records[taskId];
        if (rec.state != uint8(AuditState.None)) revert AlreadyJudged(taskId, rec.state);
        (bool audited, address drawn) = auditOf(batchId, taskId);
        if (!audited) revert NotAudited(taskId);
        ITaskManager.TaskView memory t = taskManager.getTask(taskId);
        _requireInBatch(taskId, batchId, t, outputHash, proof);
        bool windowOver = t.status == uint8(ITaskManager.TaskStatus.Finalized)
            || ((t.status == STATUS_COMMITTED || t.status == uint8(ITaskManager.TaskStatus.Failed))
                && block.timestamp > t.deadline);
        if (!windowOver) revert NotMissed(taskId);
        rec.state = uint8(AuditState.Missed);
        rec.accuser = drawn;
        rec.batchId = uint32(batchId);
        rec.workerOutputHash = outputHash;
        emit DeadlineMissed(taskId, drawn, 0);
    }

    /// @inheritdoc IAuditManager
    function reportCanary(
        uint256 taskId,
        bytes32 expectedOutputHash,
        bool matches,
        uint32 qualityPpm,
        bytes calldata submitterSignature
    ) external {
        _checkQuality(qualityPpm, matches);
        ITaskManager.TaskView memory t = taskManager.getTask(taskId);
        if (t.submitter != msg.sender) {
            // a canary is submitted from an address with no stake (workers cannot tell it from a
            // user's task); that address authorizes the validator to report it
            bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANARY_TYPEHASH, taskId, msg.sender)));
            if (!_signedBy(digest, submitterSignature, t.submitter)) revert NotSubmitter(taskId, msg.sender);
        }
        if (staking.stakeOf(msg.sender, ROLE_VALIDATOR) == 0) revert NotValidator(msg.sender);
        if (!matches) {
            // M-7: a failed canary counts against the worker and its model only once a quorum found the
            // result fraudulent (the canary wallet challenges it first); a validator's word is not proof
            if (_records[taskId].state != uint8(AuditState.Fraud)) revert CanaryNotProven(taskId);
        } else if (
            t.status != STATUS_COMMITTED && t.status != uint8(ITaskManager.TaskStatus.Finalized)
                && t.status != uint8(ITaskManager.TaskStatus.Disputed)
        ) {
            revert TaskNotOpen(taskId, t.status);
        }
        if (_canaryReported[taskId]) revert AlreadyReported(taskId);
        _canaryReported[taskId] = true;
        emit CanaryReported(taskId, t.worker, t.modelId, msg.sender, expectedOutputHash, matches, qualityPpm);
    }

    /// @dev Whether the task's submitter and its worker both signed `ForcedError(taskId, planter)`.
    function _consented(
        uint256 taskId,
        address planter,
        bytes calldata submitterSignature,
        bytes calldata workerSignature
    ) private view returns (bool) {
        ITaskManager.TaskView memory t = taskManager.getTask(taskId);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(FORCED_ERROR_TYPEHASH, taskId, planter)));
        return
            _signedBy(digest, submitterSignature, t.submitter) && _signedBy(digest, workerSignature, t.worker);
    }

    /// @dev Whether `signature` is `signer`'s valid ECDSA signature of `digest`.
    function _signedBy(bytes32 digest, bytes calldata signature, address signer) private pure returns (bool) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        return err == ECDSA.RecoverError.NoError && recovered == signer;
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAuditManager
    function auditOf(uint256 batchId, uint256 taskId) public view returns (bool audited, address validator) {
        Seal memory s = _seals[batchId];
        if (s.randomness == bytes32(0)) revert NotSealed(batchId);
        bytes32 seed = Verdicts.auditSeed(s.randomness, taskId);
        if (!Verdicts.isAudited(seed, s.pWad)) return (false, address(0));
        (address worker, uint64 commitBlock) = taskManager.batchInfo(batchId);
        // draw by stake at the end of the commit block (before the seal's randomness existed) over every
        // validator but the worker: a point in [0, total - w) is shifted past the worker's own range
        // [prefix(slot - 1), prefix(slot))
        uint256 slot =
            _validators.drawSkipping(uint256(keccak256(abi.encode(seed))), _slotOf[worker], commitBlock);
        if (slot == 0) return (false, address(0));
        return (true, _validatorAt[slot]);
    }

    /// @inheritdoc IAuditManager
    function auditRate(address worker) public view returns (uint256 pWad) {
        Params memory p = _params;
        uint256 trust = registry.trustWeight(worker);
        if (trust > Verdicts.WAD) trust = Verdicts.WAD;
        pWad = uint256(p.p0Wad) * (Verdicts.WAD - trust) / Verdicts.WAD;
        if (pWad < p.pMinWad) pWad = p.pMinWad;
    }

    /// @inheritdoc IAuditManager
    function sealOf(uint256 batchId) external view returns (Seal memory) {
        return _seals[batchId];
    }

    /// @inheritdoc IAuditManager
    function auditRecord(uint256 taskId) external view returns (AuditRecord memory) {
        return _records[taskId];
    }

    /// @inheritdoc IAuditManager
    function disputeOf(uint256 taskId) external view returns (Dispute memory) {
        return _disputes[taskId];
    }

    /// @inheritdoc IAuditManager
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @inheritdoc IAuditManager
    function validatorWeight(address validator) external view returns (uint256) {
        return validatorWeightAt(validator, block.number);
    }

    /// @inheritdoc IAuditManager
    function validatorWeightAt(address validator, uint256 blockNumber) public view returns (uint256) {
        uint256 slot = _slotOf[validator];
        return slot == 0 ? 0 : _validators.valueAt(slot, blockNumber);
    }

    /// @inheritdoc IAuditManager
    function totalValidatorWeight() external view returns (uint256) {
        return _validators.totalAt(block.number);
    }

    /// @inheritdoc IAuditManager
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ admin

    /// @notice Sets every parameter (DEFAULT_ADMIN_ROLE). p in WAD (<= 1e18, pMin <= p0 not required),
    ///         quorum 1..15, bps <= 10000, disputeWindow 1 s..30 days.
    function setParams(Params calldata p) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParams(p);
    }

    function _setParams(Params memory p) private {
        _bound("p0Wad", p.p0Wad, 0, Verdicts.WAD);
        _bound("pMinWad", p.pMinWad, 0, Verdicts.WAD);
        _bound("quorum", p.quorum, 1, MAX_QUORUM);
        _bound("disputeWindow", p.disputeWindow, 1, 30 days);
        _bound("fraudSlashBps", p.fraudSlashBps, 0, 10_000);
        _bound("falseAccusationSlashBps", p.falseAccusationSlashBps, 0, 10_000);
        _bound("lazySlashBps", p.lazySlashBps, 0, 10_000);
        _bound("rewardBps", p.rewardBps, 0, 10_000);
        _bound("minoritySlashBps", p.minoritySlashBps, 0, 10_000);
        _params = p;
        emit ParamsSet(p);
    }

    /// Reverts InvalidParameter(name, value) unless min <= value <= max.
    function _bound(string memory name, uint256 value, uint256 min, uint256 max) private pure {
        if (value < min || value > max) revert InvalidParameter(name, value);
    }
}
