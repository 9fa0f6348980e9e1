// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title ISettlement
/// @notice PoWR consensus: each epoch, validators holding >= 2/3 of validator stake sign an EIP-712
///         `EpochReport`; anyone posts it with the signatures; the contract mints the epoch's rewards
///         (within a decaying emission budget) and pays Merkle claims; workers refresh their sortition
///         trust weight by proving their leaf of the report's trust tree, and a weight refreshed once but
///         not for the last two reports can be zeroed by anyone. A report's trust and model status leaves
///         never override a newer decision in the ModelRegistry (a fraud zeroing a node's trust, the admin
///         setting a model's status).
/// @dev Merkle formats (identical to `protocol::powr` in Rust):
///      - rewards leaf: keccak256(bytes.concat(keccak256(abi.encode(address account, uint256 amount))))
///      - trust leaf:   keccak256(bytes.concat(keccak256(abi.encode(address node, uint256 trustWad))))
///        with trustWad in 1e18 units (1e18 = trust 1.0);
///      - model status leaf: keccak256(bytes.concat(keccak256(abi.encode(uint32 modelId, uint8 status))))
///        with status as IModelRegistry.ModelStatus (0 Active, 1 Probation, 2 Delisted);
///      - account leaves sorted by ascending address, model status leaves by ascending modelId; inner
///        nodes hashed as sorted pairs (OZ commutative keccak), an odd last node promoted to the next
///        level; proofs verify with OpenZeppelin MerkleProof.
///      Accounts with a zero reward have no rewards leaf; every node has a trust leaf (zero included);
///      the model status tree has a leaf per model whose status the report sets (usually the models
///      whose status changes), and its root is 0 when no model changes.
interface ISettlement {
    /// @notice What validators sign each epoch. `totalRewards` is the sum of the rewards leaves;
    ///         `modelStatusHash` is the Merkle root of the model status leaves (the statuses the
    ///         validators agreed on from measured model quality; 0 = no changes), applied to the
    ///         ModelRegistry by `applyModelStatus`.
    struct EpochReport {
        uint64 epoch;
        bytes32 rewardsRoot;
        bytes32 trustRoot;
        uint256 totalRewards;
        bytes32 modelStatusHash;
    }

    /// @notice A posted report as stored.
    struct EpochRecord {
        bytes32 rewardsRoot;
        bytes32 trustRoot;
        bytes32 modelStatusHash;
        uint64 postedAt;
        uint96 totalRewards;
        uint96 claimed;
    }

    /// @notice An epoch report was accepted and `totalRewards` DN minted into this contract.
    /// @param signers the validators whose signatures were counted (ascending)
    event EpochReported(
        uint64 indexed epoch,
        bytes32 rewardsRoot,
        bytes32 trustRoot,
        uint256 totalRewards,
        bytes32 modelStatusHash,
        address[] signers,
        uint256 signedStake,
        uint256 totalValidatorStake
    );
    /// @notice `validator` signed two different reports of `epoch`; `slashed` DN of its stake were taken
    ///         (part of it paid to `reporter`).
    event EquivocationSlashed(
        uint64 indexed epoch, address indexed validator, address reporter, uint256 slashed
    );
    /// @notice `amount` DN of `epoch` paid to `account`.
    event RewardClaimed(uint64 indexed epoch, address indexed account, uint256 amount);
    /// @notice A node's trust weight set from its leaf of `epoch`'s trust tree.
    event TrustRefreshed(uint64 indexed epoch, address indexed node, uint256 trustWad);
    /// @notice A node's trust weight zeroed because it was not refreshed for two reports.
    event TrustExpired(address indexed node, uint64 latestEpoch);
    /// @notice `validator` vetoed the report of `epoch` posted now, with `stake` of signing stake; `vetoed`
    ///         of `total` has vetoed it so far.
    event ReportVetoed(
        uint64 indexed epoch, address indexed validator, uint256 stake, uint256 vetoed, uint256 total
    );
    /// @notice Validators holding >= 1/3 of `epoch`'s signing stake vetoed its report inside the veto window:
    ///         the report is gone (its minted rewards burned) and the epoch may be reported again.
    event ReportDiscarded(uint64 indexed epoch, bytes32 rewardsRoot, uint256 burned);
    /// @notice A model's status set in the ModelRegistry from its leaf of `epoch`'s model status tree.
    event ModelStatusApplied(uint64 indexed epoch, uint32 indexed modelId, uint8 status);

    /// @notice Signed stake is below 2/3 of the active validator stake (or there is none).
    error InsufficientStakeSigned(uint256 signedStake, uint256 totalValidatorStake);
    /// @notice A signature recovers to an address with no validator stake (wrong key or wrong report).
    error NotValidator(address signer);
    /// @notice The same validator signed twice.
    error DuplicateSigner(address signer);
    /// @notice Signatures must be ordered by ascending signer address.
    error SignersNotAscending(address previous, address signer);
    /// @notice No signatures were given.
    error NoSignatures();
    /// @notice The epoch already has a report.
    error EpochAlreadyReported(uint64 epoch);
    /// @notice The epoch has not ended yet (reports are for closed epochs only).
    error EpochNotEnded(uint64 epoch, uint256 endsAt);
    /// @notice The report's totalRewards exceeds the epoch's emission budget.
    error OverBudget(uint64 epoch, uint256 totalRewards, uint256 budget);
    /// @notice The epoch has no report.
    error EpochNotReported(uint64 epoch);
    /// @notice The account already claimed its reward of the epoch.
    error AlreadyClaimed(uint64 epoch, address account);
    /// @notice The proof does not lead from the (account, amount) leaf to the epoch's rewards root.
    error InvalidRewardProof(uint64 epoch, address account, uint256 amount);
    /// @notice Claims of the epoch would exceed its totalRewards (a malformed rewards tree).
    error ClaimsExceedEpochTotal(uint64 epoch, uint256 claimed, uint256 totalRewards);
    /// @notice The proof does not lead from the (node, trustWad) leaf to the epoch's trust root.
    error InvalidTrustProof(uint64 epoch, address node, uint256 trustWad);
    /// @notice Trust proofs must be against the latest reported epoch.
    error StaleTrustProof(uint64 epoch, uint64 latestEpoch);
    /// @notice The node refreshed its trust within the last two reports (or nothing was reported yet).
    error TrustNotExpired(address node, uint64 lastRefreshedEpoch, uint64 latestEpoch);
    /// @notice The proof does not lead from the (modelId, status) leaf to the epoch's modelStatusHash.
    error InvalidModelStatusProof(uint64 epoch, uint32 modelId, uint8 status);
    /// @notice Model status proofs must be against the latest reported epoch.
    error StaleModelStatusProof(uint64 epoch, uint64 latestEpoch);
    /// @notice The node's trust was zeroed by a proven fraud (ModelRegistry.trustZeroedAt) at or after the
    ///         end of `epoch` (`epochEnd`): the epoch's trust leaf was computed without the fraud. The report
    ///         of the epoch holding the fraud, or of a later one, is accepted.
    error TrustProofBeforeFraud(uint64 epoch, address node, uint64 epochEnd, uint64 zeroedAt);
    /// @notice The node never refreshed its trust, so there is nothing to expire (it keeps the new-node trust).
    error TrustNeverRefreshed(address node);
    /// @notice The admin set the model's status (ModelRegistry.statusOverriddenAt) at or after the end of
    ///         `epoch` (`epochEnd`): the epoch's leaf would undo that decision. The report of the epoch
    ///         holding the decision, or of a later one, is accepted.
    error ModelStatusProofBeforeOverride(uint64 epoch, uint32 modelId, uint64 epochEnd, uint64 overriddenAt);
    /// @notice The two reports are not two different reports of one epoch signed by one key.
    error NotEquivocation();
    /// @notice This validator was already slashed for equivocating on this epoch.
    error EquivocationAlreadySlashed(uint64 epoch, address validator);
    /// @notice A constructor parameter is out of range.
    error InvalidSchedule(string reason);
    /// @notice The report's veto window is still open (claims, trust and model status proofs wait for it).
    error ReportInVetoWindow(uint64 epoch, uint256 opensAt);
    /// @notice The report's veto window has closed.
    error VetoWindowClosed(uint64 epoch, uint256 closedAt);
    /// @notice The vetoed report is not the one posted for its epoch now (discarded and replaced, or never posted).
    error NotThePostedReport(uint64 epoch);
    /// @notice This validator already vetoed the report of this epoch now posted.
    error AlreadyVetoed(uint64 epoch, address validator);

    /// @notice Accepts the report of a closed epoch signed by validators holding >= 2/3 of the validator
    ///         stake active `activationDelay` seconds before the epoch ended (`signingTotal`), each counted
    ///         by `signingStake`, and mints its `totalRewards` (<= `epochBudget(epoch)`) into this
    ///         contract. Claims, trust and model status proofs of it open `vetoWindow` seconds later.
    /// @param signatures 65-byte ECDSA signatures over `reportDigest(report)`, ordered by ascending
    ///        signer address, one per validator. Anyone may post.
    function postReport(EpochReport calldata report, bytes[] calldata signatures) external;

    /// @notice What `validator`'s signature (or veto) weighs on `epoch`'s report: its active validator stake
    ///         `activationDelay` seconds before the epoch ended (`signingSnapshot`), or its current active
    ///         stake if lower (finding M-3: stake added later counts for nothing, so a stake bought once the
    ///         outcome is known cannot sign; stake unstaked since no longer backs a signature).
    function signingStake(address validator, uint64 epoch) external view returns (uint256);

    /// @notice Slashes a validator that signed two different reports of one epoch (EIP-712 signatures
    ///         over `reportDigest` of each): `EQUIVOCATION_SLASH_BPS` of its slashable validator stake,
    ///         of which `EQUIVOCATION_REWARD_BPS` goes to the caller. Returns what was slashed.
    function reportEquivocation(
        EpochReport calldata a,
        bytes calldata signatureA,
        EpochReport calldata b,
        bytes calldata signatureB
    ) external returns (uint256 slashed);

    /// @notice The validator stake a report of `epoch` needs 2/3 of (and a veto 1/3 of): the total active
    ///         validator stake at `signingSnapshot(epoch)`.
    function signingTotal(uint64 epoch) external view returns (uint256);

    /// @notice When `epoch`'s signing stake is read: `activationDelay` seconds before its end.
    function signingSnapshot(uint64 epoch) external view returns (uint256);

    /// @notice Vetoes the posted report of its epoch with the caller's `signingStake`, inside its veto window
    ///         (`vetoWindow` seconds from posting); once per validator and posting. When the vetoes reach
    ///         1/3 of `signingTotal(epoch)` the report is discarded: its minted rewards are burned and the
    ///         epoch may be reported again. An honest third of the validators can thus stop a false report
    ///         signed by a colluding two-thirds (or by keys bought for one epoch) before anything is paid.
    /// @param report the posted report vetoed (NotThePostedReport when the epoch's posted report differs)
    function vetoReport(EpochReport calldata report) external;

    /// @notice When claims, trust and model status proofs of `epoch`'s posted report open (its postedAt +
    ///         `vetoWindow`); 0 when the epoch has no report.
    function claimsOpenAt(uint64 epoch) external view returns (uint256);

    /// @notice Pays `amount` DN of `epoch` to `account` (anyone may relay), once per account and epoch.
    /// @param proof sibling hashes from the rewards leaf (account, amount) up to the epoch's rewardsRoot
    function claim(uint64 epoch, address account, uint256 amount, bytes32[] calldata proof) external;

    /// @notice Sets `node`'s sortition trust weight in the ModelRegistry from its leaf of the latest
    ///         report's trust tree. Anyone may call (a falling trust can be pushed by anyone). Reverts
    ///         TrustProofBeforeFraud when the epoch ended at or before a proven fraud zeroed the node's
    ///         trust.
    function refreshTrust(uint64 epoch, address node, uint256 trustWad, bytes32[] calldata proof) external;

    /// @notice Zeroes `node`'s trust weight when its last refresh is two or more reports behind the latest.
    ///         A node that never refreshed is not expired (TrustNeverRefreshed). Anyone may call.
    function expireTrust(address node) external;

    /// @notice Sets `modelId`'s status in the ModelRegistry (Active / Probation / Delisted) from its leaf
    ///         of the latest report's model status tree. Anyone may call. Delisted models take no new
    ///         tasks; Probation models still do. Reverts ModelStatusProofBeforeOverride when the admin set
    ///         the model's status at or after the epoch's end.
    /// @param proof sibling hashes from the leaf (modelId, status) up to the epoch's modelStatusHash
    function applyModelStatus(uint64 epoch, uint32 modelId, uint8 status, bytes32[] calldata proof) external;

    /// @notice The EIP-712 digest validators sign for `report`.
    function reportDigest(EpochReport calldata report) external view returns (bytes32);
    /// @notice Emission budget of `epoch`: min(initialEmission * decay^epoch, token cap - total supply).
    function epochBudget(uint64 epoch) external view returns (uint256);
    /// @notice The epoch running now (reverts before genesis).
    function currentEpoch() external view returns (uint64);
    /// @notice Timestamp at which `epoch` ends and its report may be posted.
    function epochEnd(uint64 epoch) external view returns (uint256);
    /// @notice The stored report of `epoch` (postedAt == 0 when none).
    function epochRecord(uint64 epoch) external view returns (EpochRecord memory);
    /// @notice Whether `account` claimed its reward of `epoch`.
    function isClaimed(uint64 epoch, address account) external view returns (bool);
    /// @notice Highest reported epoch; `exists` is false before the first report.
    function latestEpoch() external view returns (bool exists, uint64 epoch);
    /// @notice Epoch of `node`'s last trust refresh; `refreshed` is false when it never refreshed.
    function lastTrustRefresh(address node) external view returns (bool refreshed, uint64 epoch);
}
