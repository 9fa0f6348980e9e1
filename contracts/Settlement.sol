// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ISettlement} from "./interfaces/ISettlement.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {DNToken} from "./DNToken.sol";

/// @title Settlement
/// @notice PoWR settlement of each epoch: a validator-signed report (>= 2/3 of validator stake),
///         emissions minted on a decaying schedule, Merkle reward claims and trust-weight refresh.
/// @dev Needs DNToken.MINTER_ROLE, ModelRegistry.TRUST_ROLE and ModelRegistry.STATUS_ROLE. Epoch `e` spans
///      [genesis + e * epochLength, genesis + (e + 1) * epochLength); its report may be posted once it
///      has ended. Reports need not arrive in order; trust and model status proofs are only accepted for
///      the latest one, and never over a newer decision recorded by the ModelRegistry: a trust leaf of an
///      epoch that ended at or before the node's last fraud zeroing (`registry.trustZeroedAt`), or a status
///      leaf of an epoch that ended at or before the admin's last status change
///      (`registry.statusOverriddenAt`), is refused. The cut is the epoch's end, not the report's posting
///      time: a report's facts are the events before its epoch's end, so a report posted after the
///      decision was still computed without it. Weights and statuses are written with the registry's
///      report-driven setters (`setTrustWeightFromReport`, `setStatusFromReport`), which enforce the
///      same order.
///      Signing stake is the validator stake in place `activationDelay` seconds before the epoch ended
///      (Staking checkpoints; the deploy default is a whole epoch, i.e. its start), capped by the signer's
///      stake now. A posted report waits `vetoWindow` seconds before claims, trust and model status proofs
///      open; validators holding >= 1/3 of the signing stake can veto it meanwhile, which discards it and
///      burns what it minted. A validator that signs two different reports of one epoch is slashed on proof
///      of the two signatures (`reportEquivocation`, needs Staking's SLASHER_ROLE).
///      Leaf formats are documented in ISettlement and match `protocol::powr`.
contract Settlement is ISettlement, EIP712 {
    using SafeERC20 for DNToken;
    using SafeCast for uint256;

    /// @notice EIP-712 type of the signed report.
    bytes32 public constant EPOCH_REPORT_TYPEHASH = keccak256(
        "EpochReport(uint64 epoch,bytes32 rewardsRoot,bytes32 trustRoot,uint256 totalRewards,bytes32 modelStatusHash)"
    );
    uint256 private constant WAD = 1e18;
    uint8 private constant VALIDATOR = uint8(IStaking.Role.Validator);
    /// @notice Share of an equivocating validator's slashable stake taken (50%).
    uint16 public constant EQUIVOCATION_SLASH_BPS = 5_000;
    /// @notice Share of what is slashed that pays whoever proved the equivocation (10%); the rest burns.
    uint16 public constant EQUIVOCATION_REWARD_BPS = 1_000;
    /// @notice Staking slash reason code of an equivocation (AuditManager uses 1-5).
    uint8 public constant REASON_EQUIVOCATION = 6;

    /// @notice The DN token (minted into this contract, paid out by claims).
    DNToken public immutable token;
    /// @notice Validator stake (voting power of the report signatures).
    IStaking public immutable staking;
    /// @notice Where trust weights are set (sortition weights = stake x trust).
    IModelRegistry public immutable registry;
    /// @notice Start of epoch 0 (unix seconds).
    uint64 public immutable genesis;
    /// @notice Seconds per epoch.
    uint64 public immutable epochLength;
    /// @notice Emission budget of epoch 0, in wei.
    uint256 public immutable initialEmission;
    /// @notice Budget multiplier per epoch in 1e18 units (0.99e18 = -1% per epoch).
    uint256 public immutable decayWad;
    /// @notice Seconds before an epoch's end at which its signing stake is read (<= epochLength): stake
    ///         added later neither signs nor vetoes that epoch's report.
    uint64 public immutable activationDelay;
    /// @notice Seconds after a report is posted during which it can be vetoed; claims, trust and model
    ///         status proofs of it wait for the window to close.
    uint64 public immutable vetoWindow;

    mapping(uint64 epoch => EpochRecord) private _epochs;
    /// claimed flags: bit (epoch % 256) of word (epoch / 256), per account
    mapping(address account => mapping(uint256 word => uint256 bits)) private _claimedBits;
    /// validators already slashed for equivocating on an epoch
    mapping(uint64 epoch => mapping(address validator => bool)) private _equivocated;
    /// epoch + 1 of the node's last trust refresh; 0 = never
    mapping(address node => uint64) private _refreshedPlusOne;
    /// highest reported epoch + 1; 0 = no report yet (a discarded report does not lower it)
    uint64 private _latestPlusOne;
    /// reports of the epoch discarded so far: vetoes count per posting
    mapping(uint64 epoch => uint32) private _discards;
    /// signing stake that vetoed the epoch's current posting
    mapping(uint64 epoch => uint256) private _vetoedStake;
    /// _discards + 1 at the validator's last veto of the epoch; equal to _discards + 1 = already vetoed
    mapping(uint64 epoch => mapping(address validator => uint32)) private _vetoedAt;

    /// @param token_ DN token (this contract needs MINTER_ROLE)
    /// @param staking_ Staking (validator stake)
    /// @param registry_ ModelRegistry (this contract needs TRUST_ROLE and STATUS_ROLE)
    /// @param genesis_ start of epoch 0
    /// @param epochLength_ seconds per epoch (> 0)
    /// @param initialEmission_ budget of epoch 0 in wei
    /// @param decayWad_ per-epoch budget multiplier, <= 1e18
    /// @param activationDelay_ seconds before an epoch's end its signing stake is read, <= epochLength
    /// @param vetoWindow_ seconds a posted report can be vetoed before it pays
    constructor(
        DNToken token_,
        IStaking staking_,
        IModelRegistry registry_,
        uint64 genesis_,
        uint64 epochLength_,
        uint256 initialEmission_,
        uint256 decayWad_,
        uint64 activationDelay_,
        uint64 vetoWindow_
    ) EIP712("DeepNode Settlement", "1") {
        if (epochLength_ == 0) revert InvalidSchedule("epochLength is 0");
        if (activationDelay_ > epochLength_) revert InvalidSchedule("activationDelay above epochLength");
        if (decayWad_ > WAD) revert InvalidSchedule("decayWad above 1e18");
        if (initialEmission_ > token_.cap()) revert InvalidSchedule("initialEmission above the token cap");
        token = token_;
        staking = staking_;
        registry = registry_;
        genesis = genesis_;
        epochLength = epochLength_;
        initialEmission = initialEmission_;
        decayWad = decayWad_;
        activationDelay = activationDelay_;
        vetoWindow = vetoWindow_;
    }

    // ------------------------------------------------------------------ reports

    /// @inheritdoc ISettlement
    /// @dev Checks, cheapest first: not yet reported, epoch ended, within budget, then every signature
    ///      (ascending distinct signers with validator stake) and the 2/3 stake quorum
    ///      (3 * signed >= 2 * total, total > 0).
    function postReport(EpochReport calldata report, bytes[] calldata signatures) external {
        uint64 epoch = report.epoch;
        EpochRecord storage rec = _epochs[epoch];
        if (rec.postedAt != 0) revert EpochAlreadyReported(epoch);
        uint256 endsAt = epochEnd(epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        uint256 budget = epochBudget(epoch);
        if (report.totalRewards > budget) revert OverBudget(epoch, report.totalRewards, budget);

        (address[] memory signers, uint256 signedStake, uint256 totalStake) =
            _countSignatures(_digest(report), signatures, endsAt - activationDelay);

        rec.rewardsRoot = report.rewardsRoot;
        rec.trustRoot = report.trustRoot;
        rec.modelStatusHash = report.modelStatusHash;
        rec.postedAt = uint64(block.timestamp);
        rec.totalRewards = report.totalRewards.toUint96();
        if (epoch + 1 > _latestPlusOne) _latestPlusOne = epoch + 1;

        emit EpochReported(
            epoch,
            report.rewardsRoot,
            report.trustRoot,
            report.totalRewards,
            report.modelStatusHash,
            signers,
            signedStake,
            totalStake
        );
        if (report.totalRewards > 0) token.mint(address(this), report.totalRewards);
    }

    /// @inheritdoc ISettlement
    /// @dev Anyone may prove it, at any time while the validator has slashable stake (active or
    ///      unbonding); once per validator and epoch.
    function reportEquivocation(
        EpochReport calldata a,
        bytes calldata signatureA,
        EpochReport calldata b,
        bytes calldata signatureB
    ) external returns (uint256 slashed) {
        bytes32 da = _digest(a);
        bytes32 db = _digest(b);
        if (a.epoch != b.epoch || da == db) revert NotEquivocation();
        address signer = ECDSA.recoverCalldata(da, signatureA);
        if (signer != ECDSA.recoverCalldata(db, signatureB)) revert NotEquivocation();
        if (_equivocated[a.epoch][signer]) revert EquivocationAlreadySlashed(a.epoch, signer);
        uint256 amount = staking.slashableOf(signer, VALIDATOR) * EQUIVOCATION_SLASH_BPS / 10_000;
        if (amount == 0) revert NotValidator(signer);
        _equivocated[a.epoch][signer] = true;
        slashed = staking.slash(
            signer, VALIDATOR, amount, REASON_EQUIVOCATION, msg.sender, EQUIVOCATION_REWARD_BPS
        );
        emit EquivocationSlashed(a.epoch, signer, msg.sender, slashed);
    }

    /// @inheritdoc ISettlement
    /// @dev The veto names the report (a veto sent against a false report must not land on the honest one
    ///      posted after it was discarded). A validator may veto a report it signed (it changed its mind before anything was paid); the
    ///      discard burns the minted rewards from this contract's balance, so the epoch's budget is free for
    ///      the next posting. The latest reported epoch is not lowered: proofs of older epochs stay stale.
    function vetoReport(EpochReport calldata report) external {
        uint64 epoch = report.epoch;
        EpochRecord storage rec = _epochs[epoch];
        if (rec.postedAt == 0) revert EpochNotReported(epoch);
        if (
            rec.rewardsRoot != report.rewardsRoot || rec.trustRoot != report.trustRoot
                || rec.modelStatusHash != report.modelStatusHash || rec.totalRewards != report.totalRewards
        ) revert NotThePostedReport(epoch);
        uint256 closesAt = uint256(rec.postedAt) + vetoWindow;
        if (block.timestamp >= closesAt) revert VetoWindowClosed(epoch, closesAt);
        uint32 posting = _discards[epoch] + 1;
        if (_vetoedAt[epoch][msg.sender] == posting) revert AlreadyVetoed(epoch, msg.sender);
        uint256 stake = signingStake(msg.sender, epoch);
        if (stake == 0) revert NotValidator(msg.sender);
        _vetoedAt[epoch][msg.sender] = posting;
        uint256 vetoed = _vetoedStake[epoch] + stake;
        uint256 total = signingTotal(epoch);
        emit ReportVetoed(epoch, msg.sender, stake, vetoed, total);
        if (vetoed * 3 < total) {
            _vetoedStake[epoch] = vetoed;
            return;
        }
        uint256 minted = rec.totalRewards;
        bytes32 root = rec.rewardsRoot;
        delete _epochs[epoch];
        delete _vetoedStake[epoch];
        _discards[epoch] = posting;
        emit ReportDiscarded(epoch, root, minted);
        if (minted > 0) token.burn(minted);
    }

    // ------------------------------------------------------------------ claims

    /// @inheritdoc ISettlement
    function claim(uint64 epoch, address account, uint256 amount, bytes32[] calldata proof) external {
        EpochRecord storage rec = _settled(epoch);
        uint256 word = epoch >> 8;
        uint256 bit = uint256(1) << (epoch & 0xff);
        uint256 bits = _claimedBits[account][word];
        if (bits & bit != 0) revert AlreadyClaimed(epoch, account);
        if (!MerkleProof.verifyCalldata(proof, rec.rewardsRoot, _leaf(account, amount))) {
            revert InvalidRewardProof(epoch, account, amount);
        }
        uint256 claimed = uint256(rec.claimed) + amount;
        if (claimed > rec.totalRewards) revert ClaimsExceedEpochTotal(epoch, claimed, rec.totalRewards);

        rec.claimed = uint96(claimed); // <= totalRewards, a uint96
        _claimedBits[account][word] = bits | bit;
        emit RewardClaimed(epoch, account, amount);
        token.safeTransfer(account, amount);
    }

    // ------------------------------------------------------------------ trust

    /// @inheritdoc ISettlement
    /// @dev Only the latest reported epoch's trust root is accepted, so an old (higher) trust cannot be
    ///      replayed over a newer one. Nor is the trust of an epoch that ended at or before the node's trust
    ///      was zeroed by a proven fraud (`registry.trustZeroedAt(node)`, set by the AuditManager's
    ///      `setTrustWeight(node, 0)`): its leaf was computed without the fraud (the fraud counts in the
    ///      epoch of its block time), and re-applying it would restore the pre-fraud trust and audit rate
    ///      (finding M-2). A zero leaf is refused too, for one simple rule; the leaf of the epoch holding
    ///      the fraud (pinned to 0) or of any later one is accepted. ModelRegistry rejects trustWad > 1e18.
    function refreshTrust(uint64 epoch, address node, uint256 trustWad, bytes32[] calldata proof) external {
        EpochRecord storage rec = _settled(epoch);
        uint64 latest = _latestPlusOne - 1; // >= epoch, which is reported
        if (epoch < latest) revert StaleTrustProof(epoch, latest);
        if (!MerkleProof.verifyCalldata(proof, rec.trustRoot, _leaf(node, trustWad))) {
            revert InvalidTrustProof(epoch, node, trustWad);
        }
        uint64 end = _reportedEpochEnd(epoch);
        uint64 zeroedAt = registry.trustZeroedAt(node);
        if (end <= zeroedAt) revert TrustProofBeforeFraud(epoch, node, end, zeroedAt);
        _refreshedPlusOne[node] = epoch + 1;
        emit TrustRefreshed(epoch, node, trustWad);
        registry.setTrustWeightFromReport(node, trustWad, end);
    }

    /// @inheritdoc ISettlement
    /// @dev Expired when the node refreshed at least once and latest >= lastRefresh + 2: a node may miss
    ///      one report's refresh, not two. A node that never refreshed is not expired (finding L-4: anyone
    ///      could zero a brand-new worker as soon as any report existed, before it could refresh): it keeps
    ///      the registry's new-node trust T_0 (NEW_NODE_TRUST, 0.2), the weight any fresh address gets, and
    ///      anyone may push its (lower) leaf with refreshTrust, so staying silent gains it nothing. The
    ///      zero goes through `setTrustWeightFromReport`, so it is not recorded as a fraud and the node may
    ///      refresh again from the latest report.
    function expireTrust(address node) external {
        uint64 latestPlusOne = _latestPlusOne;
        uint64 refreshedPlusOne = _refreshedPlusOne[node];
        if (latestPlusOne == 0 || (refreshedPlusOne != 0 && latestPlusOne < refreshedPlusOne + 2)) {
            revert TrustNotExpired(
                node,
                refreshedPlusOne == 0 ? 0 : refreshedPlusOne - 1,
                latestPlusOne == 0 ? 0 : latestPlusOne - 1
            );
        }
        if (refreshedPlusOne == 0) revert TrustNeverRefreshed(node);
        uint64 latest = latestPlusOne - 1;
        emit TrustExpired(node, latest);
        registry.setTrustWeightFromReport(node, 0, _reportedEpochEnd(latest));
    }

    // ------------------------------------------------------------------ model status

    /// @inheritdoc ISettlement
    /// @dev Only the latest reported epoch's tree is accepted, so an older status cannot be replayed over
    ///      a newer one. Nor is the tree of an epoch that ended at or before the admin last set the
    ///      model's status (`registry.statusOverriddenAt(modelId)`): it was computed without that decision,
    ///      and re-applying it would undo it, e.g. relist a model the admin delisted (finding L-5); the
    ///      report of the epoch holding the decision (which starts from the admin's status) or of any
    ///      later one is accepted. Applying a leaf again is otherwise harmless (same status).
    ///      ModelRegistry rejects unknown models and statuses.
    function applyModelStatus(uint64 epoch, uint32 modelId, uint8 status, bytes32[] calldata proof) external {
        EpochRecord storage rec = _settled(epoch);
        uint64 latest = _latestPlusOne - 1; // >= epoch, which is reported
        if (epoch < latest) revert StaleModelStatusProof(epoch, latest);
        if (!MerkleProof.verifyCalldata(proof, rec.modelStatusHash, _modelStatusLeaf(modelId, status))) {
            revert InvalidModelStatusProof(epoch, modelId, status);
        }
        uint64 end = _reportedEpochEnd(epoch);
        uint64 overriddenAt = registry.statusOverriddenAt(modelId);
        if (end <= overriddenAt) revert ModelStatusProofBeforeOverride(epoch, modelId, end, overriddenAt);
        emit ModelStatusApplied(epoch, modelId, status);
        registry.setStatusFromReport(modelId, status, end);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ISettlement
    function reportDigest(EpochReport calldata report) external view returns (bytes32) {
        return _digest(report);
    }

    /// @inheritdoc ISettlement
    /// @dev decay^epoch by square-and-multiply with each product floored to 1e18 units, the same steps as
    ///      `protocol::powr::decay_factor_wad`, so Rust and Solidity agree to the wei.
    function epochBudget(uint64 epoch) public view returns (uint256) {
        uint256 scheduled = initialEmission * _decayFactor(decayWad, epoch) / WAD;
        uint256 supply = token.totalSupply();
        uint256 cap = token.cap();
        uint256 room = cap > supply ? cap - supply : 0;
        return scheduled < room ? scheduled : room;
    }

    /// @inheritdoc ISettlement
    function currentEpoch() external view returns (uint64) {
        return uint64((block.timestamp - genesis) / epochLength);
    }

    /// @inheritdoc ISettlement
    function epochEnd(uint64 epoch) public view returns (uint256) {
        return uint256(genesis) + (uint256(epoch) + 1) * epochLength;
    }

    /// @inheritdoc ISettlement
    function epochRecord(uint64 epoch) external view returns (EpochRecord memory) {
        return _epochs[epoch];
    }

    /// @inheritdoc ISettlement
    function isClaimed(uint64 epoch, address account) external view returns (bool) {
        return _claimedBits[account][epoch >> 8] & (uint256(1) << (epoch & 0xff)) != 0;
    }

    /// @inheritdoc ISettlement
    function latestEpoch() external view returns (bool exists, uint64 epoch) {
        uint64 p = _latestPlusOne;
        return p == 0 ? (false, 0) : (true, p - 1);
    }

    /// @inheritdoc ISettlement
    function lastTrustRefresh(address node) external view returns (bool refreshed, uint64 epoch) {
        uint64 p = _refreshedPlusOne[node];
        return p == 0 ? (false, 0) : (true, p - 1);
    }

    /// @inheritdoc ISettlement
    function claimsOpenAt(uint64 epoch) external view returns (uint256) {
        uint64 postedAt = _epochs[epoch].postedAt;
        return postedAt == 0 ? 0 : uint256(postedAt) + vetoWindow;
    }

    // ------------------------------------------------------------------ internals

    /// The epoch's report, once posted and past its veto window.
    function _settled(uint64 epoch) private view returns (EpochRecord storage rec) {
        rec = _epochs[epoch];
        if (rec.postedAt == 0) revert EpochNotReported(epoch);
        uint256 opensAt = uint256(rec.postedAt) + vetoWindow;
        if (block.timestamp < opensAt) revert ReportInVetoWindow(epoch, opensAt);
    }

    /// End of a reported epoch: at most the report's postedAt, so it fits a uint64.
    function _reportedEpochEnd(uint64 epoch) private view returns (uint64) {
        return uint64(epochEnd(epoch));
    }

    function _digest(EpochReport calldata r) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    EPOCH_REPORT_TYPEHASH,
                    r.epoch,
                    r.rewardsRoot,
                    r.trustRoot,
                    r.totalRewards,
                    r.modelStatusHash
                )
            )
        );
    }

    /// @inheritdoc ISettlement
    function signingStake(address validator, uint64 epoch) public view returns (uint256) {
        uint256 atSnapshot = staking.validatorStakeAt(validator, _at(signingSnapshot(epoch)));
        uint256 current = staking.stakeOf(validator, VALIDATOR);
        return atSnapshot < current ? atSnapshot : current;
    }

    /// @inheritdoc ISettlement
    function signingTotal(uint64 epoch) public view returns (uint256) {
        return staking.totalValidatorStakeAt(_at(signingSnapshot(epoch)));
    }

    /// @inheritdoc ISettlement
    function signingSnapshot(uint64 epoch) public view returns (uint256) {
        return epochEnd(epoch) - activationDelay;
    }

    /// A timestamp as a checkpoint key (saturating: no epoch ends past 2^48 s in practice).
    function _at(uint256 t) private pure returns (uint48) {
        return t > type(uint48).max ? type(uint48).max : uint48(t);
    }

    /// Recovers every signer (strictly ascending, so no duplicates), sums their signing stake (active
    /// validator stake at the signing snapshot, and still active now: finding M-3, a stake added later
    /// signs nothing, nor does one withdrawn since) and checks the 2/3 quorum against the validator stake
    /// active at the snapshot.
    function _countSignatures(bytes32 digest, bytes[] calldata signatures, uint256 snapshot)
        private
        view
        returns (address[] memory signers, uint256 signedStake, uint256 totalStake)
    {
        uint256 n = signatures.length;
        if (n == 0) revert NoSignatures();
        signers = new address[](n);
        address previous = address(0);
        uint48 at = _at(snapshot);
        for (uint256 i = 0; i < n; ++i) {
            address signer = ECDSA.recoverCalldata(digest, signatures[i]);
            if (signer == previous) revert DuplicateSigner(signer);
            if (signer < previous) revert SignersNotAscending(previous, signer);
            uint256 s = staking.validatorStakeAt(signer, at);
            uint256 current = staking.stakeOf(signer, VALIDATOR);
            if (current < s) s = current;
            if (s == 0) revert NotValidator(signer);
            signedStake += s;
            signers[i] = signer;
            previous = signer;
        }
        totalStake = staking.totalValidatorStakeAt(at);
        if (totalStake == 0 || signedStake * 3 < totalStake * 2) {
            revert InsufficientStakeSigned(signedStake, totalStake);
        }
    }

    /// keccak256(bytes.concat(keccak256(abi.encode(account, value)))), the OZ StandardMerkleTree leaf.
    function _leaf(address account, uint256 value) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, value))));
    }

    /// keccak256(bytes.concat(keccak256(abi.encode(modelId, status)))), the model status leaf.
    function _modelStatusLeaf(uint32 modelId, uint8 status) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(modelId, status))));
    }

    /// decay^n in 1e18 units, every product floored.
    // Squaring in WAD with every product floored is the documented rule (the indexer mirrors it).
    // slither-disable-next-line divide-before-multiply
    function _decayFactor(uint256 decay, uint256 n) private pure returns (uint256 result) {
        result = WAD;
        uint256 base = decay;
        while (n > 0) {
            if (n & 1 == 1) result = result * base / WAD;
            n >>= 1;
            if (n > 0) base = base * base / WAD;
        }
    }
}
