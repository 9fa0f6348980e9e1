// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IProbeRegistry} from "./interfaces/IProbeRegistry.sol";
import {Settlement} from "./Settlement.sol";

/// @title ProbeRegistry
/// @notice Probe emission (economics issue 14). Emission paid per task fee can be farmed: a worker submits
///         tasks to itself, pays its own fees and collects the emission on top. With probe emission on, the
///         workers' share of an epoch's emission pays only for probe tasks, which the protocol itself
///         submitted, so a self-paid task earns no emission at all.
///         The mechanism: the prober (PROBER_ROLE, a protocol role granted through the admin timelock)
///         submits its probe tasks of each epoch from a fresh submitter wallet, used for that epoch only,
///         whose tasks look like any user's (same models, inputs, prices); workers cannot tell which tasks
///         are probes, so they serve every task honestly. Once the epoch has ended the prober reveals the
///         wallet here (`revealProbes`, one `ProbesRevealed` per wallet). Never earlier: a reveal during the
///         epoch would tell the workers which tasks are probes for the rest of it.
///         `probeEmission` (admin, i.e. the timelock) tells the off-chain epoch computation which rule
///         applies: on, it pays the workers' emission pool on the revealed probe tasks finalized in the
///         epoch only; off, the pool is paid as before.
/// @dev Trust assumptions. The prober is trusted like any role holder: it could reveal a colluding wallet
///      whose self-paid tasks would then earn emission (the admin revokes the role through the timelock;
///      every reveal is public). Probe wallets funded straight from the prober's own address (or from one
///      another) are linkable on-chain: a worker that follows the funds recognises the probes before the
///      reveal. A production prober therefore funds each epoch's wallet through a route that does not link
///      it to the prober or to earlier probe wallets (e.g. buying DN on an exchange to the fresh address);
///      a devnet prober funded by transfer is fine for tests only.
///      The contract does not bound how late a reveal may come: the epoch computation decides which
///      reveals it counts. Epochs are Settlement's (its `genesis` and `epochLength`, copied at deployment).
contract ProbeRegistry is IProbeRegistry, AccessControl {
    /// @notice May reveal probe wallets (the protocol's prober).
    bytes32 public constant PROBER_ROLE = keccak256("PROBER_ROLE");

    /// @notice The Settlement whose epochs these are.
    address public immutable settlement;
    /// @notice Start of epoch 0 (unix seconds), Settlement's.
    uint64 public immutable genesis;
    /// @notice Seconds per epoch, Settlement's.
    uint64 public immutable epochLength;

    /// @inheritdoc IProbeRegistry
    bool public probeEmission;
    mapping(uint64 epoch => mapping(address submitter => bool)) private _revealed;

    /// @notice A constructor argument that cannot be used.
    error InvalidParameter(string name, uint256 value);

    /// @param admin DEFAULT_ADMIN_ROLE (probe emission switch, PROBER_ROLE grants)
    /// @param settlement_ Settlement, whose epoch schedule the reveals follow
    constructor(address admin, address settlement_) {
        if (admin == address(0)) revert InvalidParameter("admin", 0);
        if (settlement_ == address(0)) revert InvalidParameter("settlement", 0);
        uint64 genesis_ = Settlement(settlement_).genesis();
        uint64 epochLength_ = Settlement(settlement_).epochLength();
        if (epochLength_ == 0) revert InvalidParameter("epochLength", 0);
        settlement = settlement_;
        genesis = genesis_;
        epochLength = epochLength_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IProbeRegistry
    function setProbeEmission(bool enabled) external onlyRole(DEFAULT_ADMIN_ROLE) {
        probeEmission = enabled;
        emit ProbeEmissionSet(enabled);
    }

    /// @inheritdoc IProbeRegistry
    /// @dev Epoch `epoch` has ended once `block.timestamp >= genesis + (epoch + 1) * epochLength`.
    function revealProbes(uint64 epoch, address[] calldata submitters) external onlyRole(PROBER_ROLE) {
        if (block.timestamp < uint256(genesis) + (uint256(epoch) + 1) * epochLength) {
            revert EpochNotEnded(epoch, _currentEpoch());
        }
        uint256 n = submitters.length;
        if (n == 0) revert EmptyReveal();
        mapping(address => bool) storage revealed = _revealed[epoch];
        for (uint256 i = 0; i < n; ++i) {
            address submitter = submitters[i];
            if (submitter == address(0)) revert ZeroSubmitter();
            if (revealed[submitter]) revert AlreadyRevealed(epoch, submitter);
            revealed[submitter] = true;
            emit ProbesRevealed(epoch, submitter, msg.sender);
        }
    }

    /// @inheritdoc IProbeRegistry
    function isProbeSubmitter(uint64 epoch, address submitter) external view returns (bool) {
        return _revealed[epoch][submitter];
    }

    /// The epoch running now (0 before genesis).
    function _currentEpoch() private view returns (uint64) {
        if (block.timestamp < genesis) return 0;
        return uint64((block.timestamp - genesis) / epochLength);
    }
}
