// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title IModelRegistry
/// @notice The model marketplace: developers list ONNX models (content hash, URI, price, compute
///         units, comparison rule), workers opt in per model, and each model keeps a stake x trust
///         weighted sortition tree over its workers (O(log n) per draw).
interface IModelRegistry {
    enum ModelStatus {
        Active,
        Probation,
        Delisted
    }

    /// @notice How two outputs of the model are compared by validators.
    /// ExactBytes: keccak of canonical bytes equal. AllClose: |a-b| <= atol + rtol*|b| (tolerance = atol = rtol in 1e-6 units).
    /// Argmax: same argmax. TopK: same top-k set (tolerance = k). Cosine: cosine >= tolerance / 1e6.
    enum CompareRule {
        ExactBytes,
        AllClose,
        Argmax,
        TopK,
        Cosine
    }

    struct Model {
        address developer;
        uint96 pricePerCall;
        bytes32 sha256Hash;
        uint32 computeUnits;
        uint8 rule;
        uint32 tolerance;
        uint32 parent;
        uint8 status;
        uint32 workerCount;
        string uri;
    }

    /// @notice The developer retired its model and got its listing bond back.
    event ModelRetired(uint32 indexed modelId, uint256 bondRefunded);
    /// @notice A delisted model's listing bond was burned.
    event ListingBondForfeited(uint32 indexed modelId, uint256 bond);
    event ModelRegistered(
        uint32 indexed modelId,
        address indexed developer,
        bytes32 sha256Hash,
        string uri,
        uint96 pricePerCall,
        uint32 computeUnits,
        uint8 rule,
        uint32 tolerance,
        uint32 parent
    );
    event ModelPriceChanged(uint32 indexed modelId, uint96 pricePerCall);
    event ModelStatusChanged(uint32 indexed modelId, uint8 status);
    event WorkerOptedIn(uint32 indexed modelId, address indexed worker, uint256 weight);
    event WorkerOptedOut(uint32 indexed modelId, address indexed worker);
    event WorkerWeightUpdated(uint32 indexed modelId, address indexed worker, uint256 weight);
    event TrustWeightSet(address indexed worker, uint256 trustWad);

    error UnknownModel(uint32 modelId);
    error ModelNotActive(uint32 modelId, uint8 status);
    error NotModelDeveloper(uint32 modelId, address caller);
    error InvalidRule(uint8 rule);
    error InvalidModel(string reason);
    error AlreadyOptedIn(uint32 modelId, address worker);
    error NotOptedIn(uint32 modelId, address worker);
    error NotEligibleWorker(address worker);
    error TooManyModels(address worker, uint256 max);
    error NoWorkers(uint32 modelId);
    /// @notice A positive report-driven trust weight from a report whose epoch ended at or before the
    ///         worker's trust was zeroed by `setTrustWeight(worker, 0)` (a proven fraud): it predates the fraud.
    error TrustReportBeforeZeroing(address worker, uint64 reportEpochEnd, uint64 zeroedAt);
    /// @notice A report-driven model status from a report whose epoch ended at or before the last
    ///         `setStatus` of the model (the admin's decision): it would undo that decision.
    error StatusReportBeforeOverride(uint32 modelId, uint64 reportEpochEnd, uint64 overriddenAt);

    function registerModel(
        bytes32 sha256Hash,
        string calldata uri,
        uint96 pricePerCall,
        uint32 computeUnits,
        uint8 rule,
        uint32 tolerance,
        uint32 parent
    ) external returns (uint32 modelId);
    /// @notice The developer withdraws its Active model: Delisted from now on, and its listing bond is
    ///         refunded. (A model delisted for its quality, or by the admin, forfeits the bond: burned.)
    function retireModel(uint32 modelId) external;
    function setPrice(uint32 modelId, uint96 pricePerCall) external;
    /// @notice Sets a model's status now (the admin's decision). Records the time in `statusOverriddenAt`.
    function setStatus(uint32 modelId, uint8 status) external;
    /// @notice Sets a model's status from the report of the epoch that ended at `reportEpochEnd`
    ///         (Settlement). Reverts StatusReportBeforeOverride when
    ///         `reportEpochEnd <= statusOverriddenAt(modelId)`.
    function setStatusFromReport(uint32 modelId, uint8 status, uint64 reportEpochEnd) external;

    function optIn(uint32 modelId) external;
    function optOut(uint32 modelId) external;
    /// @notice Recompute a worker's weight (stake x trust) in every model it serves. Anyone may call.
    function syncWorker(address worker) external;
    /// @notice Sets a worker's trust weight now (AuditManager: 0 on a proven fraud). A zero records the
    ///         time in `trustZeroedAt`.
    function setTrustWeight(address worker, uint256 trustWad) external;
    /// @notice Sets a worker's trust weight from the report of the epoch that ended at `reportEpochEnd`
    ///         (Settlement). Reverts TrustReportBeforeZeroing for a positive weight when
    ///         `reportEpochEnd <= trustZeroedAt(worker)`; a zero is always accepted.
    function setTrustWeightFromReport(address worker, uint256 trustWad, uint64 reportEpochEnd) external;

    /// @notice Draws a worker of the model with probability proportional to its weight at the end of
    ///         block `atBlock`, never `skip` (address(0): skip nobody): `seed` picks a point in the other
    ///         workers' total weight. Reverts NoWorkers when there was no such weight then.
    function drawWorkerAt(uint32 modelId, uint256 seed, uint256 atBlock, address skip)
        external
        view
        returns (address worker);
    /// @notice Whether `worker` serves the model now (opted in and not opted out since).
    function isOptedIn(uint32 modelId, address worker) external view returns (bool);
    function getModel(uint32 modelId) external view returns (Model memory);
    /// @notice The fields a task submission needs, in two storage reads (zeros for an unknown model).
    function modelTerms(uint32 modelId)
        external
        view
        returns (address developer, uint96 pricePerCall, uint32 computeUnits, uint8 status);
    function modelCount() external view returns (uint32);
    function workersOf(uint32 modelId) external view returns (address[] memory);
    function modelsOf(address worker) external view returns (uint32[] memory);
    function weightOf(uint32 modelId, address worker) external view returns (uint256);
    function totalWeight(uint32 modelId) external view returns (uint256);
    /// @notice Sum of the model's worker weights at the end of block `atBlock`.
    function totalWeightAt(uint32 modelId, uint256 atBlock) external view returns (uint256);
    /// @notice Trust weight in 1e18 units; 0.2e18 (the new-node trust T_0) until settlement sets one.
    function trustWeight(address worker) external view returns (uint256);
    /// @notice Block timestamp of the last `setTrustWeight(worker, 0)` (a proven fraud); 0 = never.
    ///         Positive trust from reports of epochs that ended at or before it is refused.
    function trustZeroedAt(address worker) external view returns (uint64);
    /// @notice Block timestamp of the last `setStatus(modelId, ..)` (the admin's decision); 0 = never.
    ///         Statuses from reports of epochs that ended at or before it are refused.
    function statusOverriddenAt(uint32 modelId) external view returns (uint64);
    function listingBond() external view returns (uint256);
}
