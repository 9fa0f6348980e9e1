// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IStaking, IStakeObserver} from "./interfaces/IStaking.sol";
import {CheckpointedSortition} from "./libraries/CheckpointedSortition.sol";

/// @title ModelRegistry
/// @notice The model marketplace: developers list ONNX models against a listing bond, workers opt in
///         per model, and every model keeps a sortition tree over its workers weighted by stake x trust,
///         kept current by Staking's callback (`onStakeChanged`) and `syncWorker`. The tree remembers every
///         weight per block (CheckpointedSortition): TaskManager draws a task's worker over the weights at
///         the end of the submission block, with the hash of the next block, so a submitter cannot steer
///         the assignment by moving stake once it knows the randomness.
/// @dev Weight of a worker = stakeOf(worker, Worker) * trustWeight(worker) / 1e18, or 0 while it is not
///      eligible (under the minimum stake or jailed). Listing bonds stay in this contract (`bondOf`).
///      Trust weights and model statuses have two writers: decisions taken now (`setTrustWeight`,
///      `setStatus`: a proven fraud zeroing a worker's trust, the admin changing a model's status) and
///      values from a Settlement epoch report (`setTrustWeightFromReport`, `setStatusFromReport`), which
///      anyone may apply at any time while the report is the latest. A report never overrides a newer
///      decision: the decision's time is recorded (`trustZeroedAt`, `statusOverriddenAt`) and a report
///      whose epoch ended at or before it is refused. A report's facts are the chain's events before its
///      epoch's end (`protocol::powr`, indexer epochs), so such a report was computed without the decision
///      even when it was posted after it.
contract ModelRegistry is IModelRegistry, IStakeObserver, AccessControl {
    using SafeERC20 for IERC20;
    using CheckpointedSortition for CheckpointedSortition.Tree;

    /// @notice Role allowed to set trust weights (settlement).
    bytes32 public constant TRUST_ROLE = keccak256("TRUST_ROLE");
    /// @notice Role allowed to set model status (admin at first, settlement later).
    bytes32 public constant STATUS_ROLE = keccak256("STATUS_ROLE");
    /// @notice Most models one worker may serve (bounds the weight-sync loop).
    uint256 public constant MAX_MODELS_PER_WORKER = 16;
    /// @notice Highest trust weight (1.0 in 1e18 units), also the default.
    uint256 public constant MAX_TRUST = 1e18;
    /// @notice Trust of a worker settlement has never scored: the protocol's T_0 (0.2, the same
    ///         value as `protocol::powr`), so a fresh address starts low and re-registering
    ///         under a new address cannot wash away a bad record.
    uint256 public constant NEW_NODE_TRUST = 0.2e18;
    /// @notice Longest model URI accepted.
    uint256 public constant MAX_URI_BYTES = 2048;

    IERC20 public immutable token;
    IStaking public immutable staking;

    /// @inheritdoc IModelRegistry
    uint256 public listingBond;
    /// @notice Bond paid for each model, held by this contract.
    mapping(uint32 modelId => uint256) public bondOf;

    /// A worker keeps its slot for good (a past draw must still resolve to it): opting out sets its weight
    /// to 0 and clears `active`; opting in again reuses the slot.
    struct Pool {
        CheckpointedSortition.Tree tree;
        mapping(uint256 slot => address) workerAt;
        mapping(address worker => uint256) slotOf;
        mapping(address worker => bool) active;
    }

    uint32 private _modelCount;
    mapping(uint32 modelId => Model) private _models;
    mapping(uint32 modelId => Pool) private _pools;
    mapping(address worker => uint32[]) private _modelsOf;
    /// trust + 1, so 0 means "never set" (default NEW_NODE_TRUST) and a trust of 0 can still be stored
    mapping(address worker => uint256) private _trustPlusOne;
    /// block timestamp of the last `setTrustWeight(worker, 0)` (a proven fraud); 0 = never
    mapping(address worker => uint64) private _trustZeroedAt;
    /// block timestamp of the last `setStatus(modelId, ..)` (the admin's decision); 0 = never
    mapping(uint32 modelId => uint64) private _statusOverriddenAt;

    /// @notice Emitted when the admin changes the listing bond for future registrations.
    event ListingBondSet(uint256 bond);

    /// @notice onStakeChanged was called by someone other than Staking.
    error NotStaking(address caller);
    /// @notice setTrustWeight above MAX_TRUST.
    error TrustTooHigh(uint256 trustWad, uint256 max);

    /// @param admin DEFAULT_ADMIN_ROLE and STATUS_ROLE
    /// @param token_ the DN token (listing bonds)
    /// @param staking_ the Staking contract (eligibility and stake for weights; calls onStakeChanged)
    /// @param listingBond_ DN taken from the developer per registered model (may be 0)
    constructor(address admin, IERC20 token_, IStaking staking_, uint256 listingBond_) {
        token = token_;
        staking = staking_;
        listingBond = listingBond_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(STATUS_ROLE, admin);
        emit ListingBondSet(listingBond_);
    }

    // ------------------------------------------------------------------ models

    /// @inheritdoc IModelRegistry
    /// @dev Takes `listingBond` DN from the caller (needs an allowance). Ids start at 1.
    function registerModel(
        bytes32 sha256Hash,
        string calldata uri,
        uint96 pricePerCall,
        uint32 computeUnits,
        uint8 rule,
        uint32 tolerance,
        uint32 parent
    ) external returns (uint32 modelId) {
        if (sha256Hash == bytes32(0)) revert InvalidModel("zero sha256 hash");
        if (bytes(uri).length == 0) revert InvalidModel("empty uri");
        if (bytes(uri).length > MAX_URI_BYTES) revert InvalidModel("uri longer than 2048 bytes");
        if (computeUnits == 0) revert InvalidModel("zero compute units");
        if (rule > uint8(CompareRule.Cosine)) revert InvalidRule(rule);
        if (rule == uint8(CompareRule.Cosine) && tolerance > 1e6) {
            revert InvalidModel("cosine tolerance above 1e6");
        }
        if (rule == uint8(CompareRule.TopK) && tolerance == 0) revert InvalidModel("top-k needs k >= 1");
        uint32 count = _modelCount;
        if (parent > count) revert InvalidModel("unknown parent model");

        modelId = count + 1;
        _modelCount = modelId;
        Model storage m = _models[modelId];
        m.developer = msg.sender;
        m.pricePerCall = pricePerCall;
        m.sha256Hash = sha256Hash;
        m.computeUnits = computeUnits;
        m.rule = rule;
        m.tolerance = tolerance;
        m.parent = parent;
        m.status = uint8(ModelStatus.Active);
        m.uri = uri;

        uint256 bond = listingBond;
        bondOf[modelId] = bond;
        emit ModelRegistered(
            modelId, msg.sender, sha256Hash, uri, pricePerCall, computeUnits, rule, tolerance, parent
        );
        if (bond > 0) token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Only the developer, only while Active (a model on Probation or Delisted keeps its bond at
    ///      stake). Tasks already submitted still settle.
    function retireModel(uint32 modelId) external {
        Model storage m = _existing(modelId);
        if (m.developer != msg.sender) revert NotModelDeveloper(modelId, msg.sender);
        if (m.status != uint8(ModelStatus.Active)) revert ModelNotActive(modelId, m.status);
        uint256 bond = bondOf[modelId];
        bondOf[modelId] = 0;
        m.status = uint8(ModelStatus.Delisted);
        // a report of an epoch that ended before the retirement cannot list it again
        _statusOverriddenAt[modelId] = uint64(block.timestamp);
        emit ModelStatusChanged(modelId, uint8(ModelStatus.Delisted));
        emit ModelRetired(modelId, bond);
        if (bond > 0) token.safeTransfer(msg.sender, bond);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Only the model's developer. Applies to tasks submitted afterwards.
    function setPrice(uint32 modelId, uint96 pricePerCall) external {
        Model storage m = _existing(modelId);
        if (m.developer != msg.sender) revert NotModelDeveloper(modelId, msg.sender);
        m.pricePerCall = pricePerCall;
        emit ModelPriceChanged(modelId, pricePerCall);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Only STATUS_ROLE (the admin). Active and Probation models take new tasks; Delisted models take
    ///      no new tasks and no new workers. Records the time (`statusOverriddenAt`), so the status leaf of
    ///      an epoch report whose epoch ended at or before it can no longer be applied over this decision
    ///      (finding L-5: re-applying the latest report's leaf undid a later admin delisting).
    function setStatus(uint32 modelId, uint8 status) external onlyRole(STATUS_ROLE) {
        _setStatus(modelId, status);
        _statusOverriddenAt[modelId] = uint64(block.timestamp);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Only STATUS_ROLE (Settlement.applyModelStatus). Does not move `statusOverriddenAt`.
    function setStatusFromReport(uint32 modelId, uint8 status, uint64 reportEpochEnd)
        external
        onlyRole(STATUS_ROLE)
    {
        uint64 overriddenAt = _statusOverriddenAt[modelId];
        if (reportEpochEnd <= overriddenAt) {
            revert StatusReportBeforeOverride(modelId, reportEpochEnd, overriddenAt);
        }
        _setStatus(modelId, status);
    }

    /// @notice Sets the bond for future registrations (admin).
    function setListingBond(uint256 bond) external onlyRole(DEFAULT_ADMIN_ROLE) {
        listingBond = bond;
        emit ListingBondSet(bond);
    }

    // ------------------------------------------------------------------ workers

    /// @inheritdoc IModelRegistry
    /// @dev The caller must be an eligible worker (Staking.isEligible(worker, Worker)); at most
    ///      MAX_MODELS_PER_WORKER models per worker; not for Delisted models.
    function optIn(uint32 modelId) external {
        Model storage m = _existing(modelId);
        if (m.status == uint8(ModelStatus.Delisted)) revert ModelNotActive(modelId, m.status);
        Pool storage pool = _pools[modelId];
        if (pool.active[msg.sender]) revert AlreadyOptedIn(modelId, msg.sender);
        if (!staking.isEligible(msg.sender, uint8(IStaking.Role.Worker))) {
            revert NotEligibleWorker(msg.sender);
        }
        uint32[] storage models = _modelsOf[msg.sender];
        if (models.length >= MAX_MODELS_PER_WORKER) revert TooManyModels(msg.sender, MAX_MODELS_PER_WORKER);

        uint256 weight = _weight(msg.sender);
        uint256 slot = pool.slotOf[msg.sender];
        if (slot == 0) {
            slot = pool.tree.append(weight);
            pool.workerAt[slot] = msg.sender;
            pool.slotOf[msg.sender] = slot;
        } else {
            pool.tree.set(slot, weight);
        }
        pool.active[msg.sender] = true;
        models.push(modelId);
        m.workerCount += 1;
        emit WorkerOptedIn(modelId, msg.sender, weight);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Sets the worker's weight to 0 (its slot stays its own). Allowed in any model status.
    function optOut(uint32 modelId) external {
        Model storage m = _existing(modelId);
        Pool storage pool = _pools[modelId];
        if (!pool.active[msg.sender]) revert NotOptedIn(modelId, msg.sender);
        pool.tree.set(pool.slotOf[msg.sender], 0);
        pool.active[msg.sender] = false;
        uint32[] storage models = _modelsOf[msg.sender];
        uint256 n = models.length;
        for (uint256 i = 0; i < n; ++i) {
            if (models[i] == modelId) {
                models[i] = models[n - 1];
                models.pop();
                break;
            }
        }
        m.workerCount -= 1;
        emit WorkerOptedOut(modelId, msg.sender);
    }

    /// @inheritdoc IModelRegistry
    function syncWorker(address worker) external {
        _sync(worker);
    }

    /// @inheritdoc IStakeObserver
    /// @dev Only Staking calls this, after every change of active worker stake and on jail.
    function onStakeChanged(address account) external {
        if (msg.sender != address(staking)) revert NotStaking(msg.sender);
        _sync(account);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Only TRUST_ROLE (AuditManager on a proven fraud); 0 <= trustWad <= 1e18; resyncs the worker's
    ///      weights. A zero records the time (`trustZeroedAt`): the trust leaf of an epoch report whose
    ///      epoch ended at or before it, computed without the fraud, can no longer raise the weight again
    ///      (finding M-2: anyone re-applied the latest report's pre-fraud trust). Settlement never calls
    ///      this function (it uses `setTrustWeightFromReport`), so its own zeros (a zero leaf, an expiry)
    ///      are not mistaken for a fraud, with no caller check or Settlement address needed here (and no
    ///      change to the AuditManager): every zero set through this function is a decision.
    function setTrustWeight(address worker, uint256 trustWad) external onlyRole(TRUST_ROLE) {
        if (trustWad == 0) _trustZeroedAt[worker] = uint64(block.timestamp);
        _setTrust(worker, trustWad);
    }

    /// @inheritdoc IModelRegistry
    /// @dev Only TRUST_ROLE (Settlement.refreshTrust and Settlement.expireTrust). A zero is always accepted
    ///      (it cannot undo a zeroing); a positive weight needs `reportEpochEnd > trustZeroedAt(worker)`.
    ///      Does not move `trustZeroedAt`.
    function setTrustWeightFromReport(address worker, uint256 trustWad, uint64 reportEpochEnd)
        external
        onlyRole(TRUST_ROLE)
    {
        uint64 zeroedAt = _trustZeroedAt[worker];
        if (trustWad != 0 && reportEpochEnd <= zeroedAt) {
            revert TrustReportBeforeZeroing(worker, reportEpochEnd, zeroedAt);
        }
        _setTrust(worker, trustWad);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IModelRegistry
    /// @dev Reverts NoWorkers when the model had no weight at the end of block `atBlock` besides `skip`'s.
    function drawWorkerAt(uint32 modelId, uint256 seed, uint256 atBlock, address skip)
        external
        view
        returns (address)
    {
        Pool storage pool = _pools[modelId];
        uint256 slot = pool.tree.drawSkipping(seed, pool.slotOf[skip], atBlock);
        if (slot == 0) revert NoWorkers(modelId);
        return pool.workerAt[slot];
    }

    /// @inheritdoc IModelRegistry
    function isOptedIn(uint32 modelId, address worker) external view returns (bool) {
        return _pools[modelId].active[worker];
    }

    /// @inheritdoc IModelRegistry
    function getModel(uint32 modelId) external view returns (Model memory) {
        return _existing(modelId);
    }

    /// @inheritdoc IModelRegistry
    function modelTerms(uint32 modelId)
        external
        view
        returns (address developer, uint96 pricePerCall, uint32 computeUnits, uint8 status)
    {
        Model storage m = _models[modelId];
        return (m.developer, m.pricePerCall, m.computeUnits, m.status);
    }

    /// @inheritdoc IModelRegistry
    function modelCount() external view returns (uint32) {
        return _modelCount;
    }

    /// @inheritdoc IModelRegistry
    function workersOf(uint32 modelId) external view returns (address[] memory workers) {
        Pool storage pool = _pools[modelId];
        uint256 size = pool.tree.sizeAt(block.number);
        workers = new address[](_models[modelId].workerCount);
        uint256 k = 0;
        for (uint256 slot = 1; slot <= size; ++slot) {
            address w = pool.workerAt[slot];
            if (pool.active[w]) workers[k++] = w;
        }
    }

    /// @inheritdoc IModelRegistry
    function modelsOf(address worker) external view returns (uint32[] memory) {
        return _modelsOf[worker];
    }

    /// @inheritdoc IModelRegistry
    function weightOf(uint32 modelId, address worker) external view returns (uint256) {
        Pool storage pool = _pools[modelId];
        uint256 slot = pool.slotOf[worker];
        return slot == 0 ? 0 : pool.tree.valueAt(slot, block.number);
    }

    /// @inheritdoc IModelRegistry
    function totalWeight(uint32 modelId) external view returns (uint256) {
        return _pools[modelId].tree.totalAt(block.number);
    }

    /// @inheritdoc IModelRegistry
    function totalWeightAt(uint32 modelId, uint256 atBlock) external view returns (uint256) {
        return _pools[modelId].tree.totalAt(atBlock);
    }

    /// @inheritdoc IModelRegistry
    function trustWeight(address worker) public view returns (uint256) {
        uint256 stored = _trustPlusOne[worker];
        return stored == 0 ? NEW_NODE_TRUST : stored - 1;
    }

    /// @inheritdoc IModelRegistry
    function trustZeroedAt(address worker) external view returns (uint64) {
        return _trustZeroedAt[worker];
    }

    /// @inheritdoc IModelRegistry
    function statusOverriddenAt(uint32 modelId) external view returns (uint64) {
        return _statusOverriddenAt[modelId];
    }

    // ------------------------------------------------------------------ internals

    function _setStatus(uint32 modelId, uint8 status) private {
        Model storage m = _existing(modelId);
        if (status > uint8(ModelStatus.Delisted)) revert InvalidModel("unknown status");
        m.status = status;
        emit ModelStatusChanged(modelId, status);
        uint256 bond = bondOf[modelId];
        if (status == uint8(ModelStatus.Delisted) && bond > 0) {
            // delisted for its quality (or by the admin): the listing bond is forfeited, burned
            bondOf[modelId] = 0;
            emit ListingBondForfeited(modelId, bond);
            ERC20Burnable(address(token)).burn(bond);
        }
    }

    function _setTrust(address worker, uint256 trustWad) private {
        if (trustWad > MAX_TRUST) revert TrustTooHigh(trustWad, MAX_TRUST);
        _trustPlusOne[worker] = trustWad + 1;
        emit TrustWeightSet(worker, trustWad);
        _sync(worker);
    }

    function _existing(uint32 modelId) private view returns (Model storage m) {
        if (modelId == 0 || modelId > _modelCount) revert UnknownModel(modelId);
        return _models[modelId];
    }

    function _weight(address worker) private view returns (uint256) {
        uint8 role = uint8(IStaking.Role.Worker);
        if (!staking.isEligible(worker, role)) return 0;
        return staking.stakeOf(worker, role) * trustWeight(worker) / 1e18;
    }

    function _sync(address worker) private {
        uint32[] storage models = _modelsOf[worker];
        uint256 n = models.length;
        if (n == 0) return;
        uint256 weight = _weight(worker);
        for (uint256 i = 0; i < n; ++i) {
            uint32 modelId = models[i];
            Pool storage pool = _pools[modelId];
            uint256 slot = pool.slotOf[worker];
            if (pool.tree.valueAt(slot, block.number) != weight) {
                pool.tree.set(slot, weight);
                emit WorkerWeightUpdated(modelId, worker, weight);
            }
        }
    }
}
