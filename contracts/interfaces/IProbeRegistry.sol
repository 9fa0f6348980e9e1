// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title IProbeRegistry
/// @notice Probe emission (economics issue 14): the workers' share of each epoch's emission pays only for
///         tasks the protocol itself submitted ("probe tasks"), from submitter wallets the workers cannot
///         tell apart from users' wallets; the prober names those wallets here once the epoch has ended.
///         A task a worker paid for itself then earns no emission, whatever its fee: it is not a probe.
/// @dev The off-chain epoch computation reads the events: `ProbeEmissionSet` says whether the rule is on,
///      `ProbesRevealed(epoch, submitter, prober)` that the tasks of `submitter` finalized in `epoch` were
///      probes. Epoch `e` is Settlement's: [genesis + e * epochLength, genesis + (e + 1) * epochLength).
interface IProbeRegistry {
    /// @notice Probe emission switched on/off by the admin (the timelock).
    event ProbeEmissionSet(bool enabled);
    /// @notice `submitter`'s tasks finalized in `epoch` were the protocol's probes, revealed by `prober`.
    event ProbesRevealed(uint64 indexed epoch, address indexed submitter, address indexed prober);

    /// @notice A reveal of an epoch that has not ended yet (`current` is the epoch running now; 0 before
    ///         genesis).
    error EpochNotEnded(uint64 epoch, uint64 current);
    /// @notice A reveal without any submitter.
    error EmptyReveal();
    /// @notice A reveal naming the zero address.
    error ZeroSubmitter();
    /// @notice `submitter` was already revealed as a probe wallet of `epoch`.
    error AlreadyRevealed(uint64 epoch, address submitter);

    /// @notice Role of the protocol's prober, the only account that may reveal probe wallets (granted
    ///         through the admin timelock).
    function PROBER_ROLE() external view returns (bytes32);
    /// @notice Whether the epoch computation pays the workers' emission pool on revealed probe tasks only.
    function probeEmission() external view returns (bool);
    /// @notice Whether `submitter` was revealed as a probe wallet of `epoch`.
    function isProbeSubmitter(uint64 epoch, address submitter) external view returns (bool);
    /// @notice DEFAULT_ADMIN_ROLE (the timelock): switches probe emission on or off (`ProbeEmissionSet`).
    function setProbeEmission(bool enabled) external;
    /// @notice PROBER_ROLE, once `epoch` has ended: names the wallets that submitted the epoch's probe
    ///         tasks, one `ProbesRevealed` each. Reverts on an empty list, the zero address or a wallet
    ///         already revealed for `epoch` (also a repeat within the list).
    function revealProbes(uint64 epoch, address[] calldata submitters) external;
}
