// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Settlement} from "../contracts/Settlement.sol";
import {ProbeRegistry} from "../contracts/ProbeRegistry.sol";
import {IProbeRegistry} from "../contracts/interfaces/IProbeRegistry.sol";

/// @notice ProbeRegistry (probe emission, economics issue 14) over a real Settlement's epochs: probe wallets
///         are revealed only by the prober, only once their epoch has ended, each once per epoch; the admin
///         switches probe emission.
contract ProbeRegistryTest is Fixture {
    Settlement internal settlement;
    ProbeRegistry internal probes;

    uint64 internal constant EPOCH = 1 hours;
    uint64 internal genesis;
    address internal prober = makeAddr("prober");
    address internal stranger = makeAddr("stranger");
    address internal probeWallet = makeAddr("probeWallet");
    address internal probeWallet2 = makeAddr("probeWallet2");

    function setUp() public {
        vm.warp(1_700_000_000);
        _deploy();
        genesis = uint64(block.timestamp);
        settlement = _settlementAt(genesis);
        probes = new ProbeRegistry(admin, address(settlement));
        bytes32 role = probes.PROBER_ROLE();
        vm.prank(admin);
        probes.grantRole(role, prober);
        vm.label(address(settlement), "Settlement");
        vm.label(address(probes), "ProbeRegistry");
    }

    function _settlementAt(uint64 genesis_) internal returns (Settlement) {
        return new Settlement(token, staking, registry, genesis_, EPOCH, 1_000_000e18, 0.99e18, EPOCH, 0);
    }

    function _one(address a) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }

    function _two(address a, address b) internal pure returns (address[] memory list) {
        list = new address[](2);
        list[0] = a;
        list[1] = b;
    }

    function _end(uint64 epoch) internal view returns (uint256) {
        return uint256(genesis) + (uint256(epoch) + 1) * EPOCH;
    }

    // ------------------------------------------------------------------ constructor

    function test_Constructor_CopiesTheSettlementSchedule() public view {
        assertEq(probes.genesis(), genesis);
        assertEq(probes.epochLength(), EPOCH);
        assertEq(probes.settlement(), address(settlement));
        assertTrue(probes.hasRole(bytes32(0), admin));
        assertFalse(probes.hasRole(bytes32(0), address(this)), "the deployer is not admin");
        assertTrue(probes.hasRole(probes.PROBER_ROLE(), prober));
        assertEq(probes.PROBER_ROLE(), keccak256("PROBER_ROLE"));
        assertFalse(probes.probeEmission(), "off by default");
    }

    function test_Constructor_RevertsOnZeroAddresses() public {
        vm.expectRevert(abi.encodeWithSelector(ProbeRegistry.InvalidParameter.selector, "admin", 0));
        new ProbeRegistry(address(0), address(settlement));
        vm.expectRevert(abi.encodeWithSelector(ProbeRegistry.InvalidParameter.selector, "settlement", 0));
        new ProbeRegistry(admin, address(0));
    }

    // ------------------------------------------------------------------ reveal timing

    function test_Reveal_RevertsWhen_EpochNotEnded() public {
        vm.startPrank(prober);
        // at genesis, epoch 0 has just begun
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, 0, 0));
        probes.revealProbes(0, _one(probeWallet));
        // the last second of epoch 0
        vm.warp(_end(0) - 1);
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, 0, 0));
        probes.revealProbes(0, _one(probeWallet));
        // a later epoch, during epoch 1: neither the running epoch nor a future one
        vm.warp(_end(0));
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, 1, 1));
        probes.revealProbes(1, _one(probeWallet));
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, 5, 1));
        probes.revealProbes(5, _one(probeWallet));
        vm.stopPrank();
        assertFalse(probes.isProbeSubmitter(1, probeWallet));
        assertFalse(probes.isProbeSubmitter(5, probeWallet));
    }

    /// Before genesis no epoch has ended, and the running epoch reads 0 (no underflow).
    function test_Reveal_RevertsWhen_BeforeGenesis() public {
        uint64 later = uint64(block.timestamp + 1 days);
        ProbeRegistry early = new ProbeRegistry(admin, address(_settlementAt(later)));
        bytes32 role = early.PROBER_ROLE();
        vm.prank(admin);
        early.grantRole(role, prober);
        vm.startPrank(prober);
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, 0, 0));
        early.revealProbes(0, _one(probeWallet));
        vm.warp(later - 1);
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, 0, 0));
        early.revealProbes(0, _one(probeWallet));
        vm.warp(uint256(later) + EPOCH - 1);
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, 0, 0));
        early.revealProbes(0, _one(probeWallet));
        vm.warp(uint256(later) + EPOCH);
        early.revealProbes(0, _one(probeWallet));
        vm.stopPrank();
        assertTrue(early.isProbeSubmitter(0, probeWallet));
    }

    function test_Reveal_AtTheEpochEnd_EmitsOnePerSubmitter() public {
        vm.warp(_end(0));
        vm.expectEmit(address(probes));
        emit IProbeRegistry.ProbesRevealed(0, probeWallet, prober);
        vm.expectEmit(address(probes));
        emit IProbeRegistry.ProbesRevealed(0, probeWallet2, prober);
        vm.prank(prober);
        probes.revealProbes(0, _two(probeWallet, probeWallet2));
        assertTrue(probes.isProbeSubmitter(0, probeWallet));
        assertTrue(probes.isProbeSubmitter(0, probeWallet2));
        assertFalse(probes.isProbeSubmitter(0, stranger), "not revealed");
        assertFalse(probes.isProbeSubmitter(1, probeWallet), "another epoch");
    }

    /// Old epochs stay revealable, each epoch on its own: the same wallet may be named for two epochs.
    function test_Reveal_LaterAndPerEpoch() public {
        vm.warp(_end(7) + 5 days);
        vm.startPrank(prober);
        probes.revealProbes(2, _one(probeWallet));
        probes.revealProbes(7, _one(probeWallet));
        vm.stopPrank();
        assertTrue(probes.isProbeSubmitter(2, probeWallet));
        assertTrue(probes.isProbeSubmitter(7, probeWallet));
        assertFalse(probes.isProbeSubmitter(3, probeWallet));
    }

    // ------------------------------------------------------------------ reveal checks

    function test_Reveal_RevertsWhen_NotProber() public {
        vm.warp(_end(0));
        bytes32 role = probes.PROBER_ROLE();
        address[3] memory callers = [stranger, admin, probeWallet];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], role
                )
            );
            probes.revealProbes(0, _one(probeWallet));
        }
        assertFalse(probes.isProbeSubmitter(0, probeWallet));
        // a revoked prober can no longer reveal
        vm.prank(admin);
        probes.revokeRole(role, prober);
        vm.prank(prober);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, prober, role)
        );
        probes.revealProbes(0, _one(probeWallet));
    }

    function test_Reveal_RevertsWhen_Empty() public {
        vm.warp(_end(0));
        vm.prank(prober);
        vm.expectRevert(IProbeRegistry.EmptyReveal.selector);
        probes.revealProbes(0, new address[](0));
    }

    /// A zero address anywhere in the list reverts the whole reveal.
    function test_Reveal_RevertsWhen_ZeroSubmitter() public {
        vm.warp(_end(0));
        vm.startPrank(prober);
        vm.expectRevert(IProbeRegistry.ZeroSubmitter.selector);
        probes.revealProbes(0, _one(address(0)));
        vm.expectRevert(IProbeRegistry.ZeroSubmitter.selector);
        probes.revealProbes(0, _two(probeWallet, address(0)));
        vm.stopPrank();
        assertFalse(probes.isProbeSubmitter(0, probeWallet), "reverted as a whole");
    }

    function test_Reveal_RevertsWhen_AlreadyRevealed() public {
        vm.warp(_end(0));
        vm.startPrank(prober);
        // twice in one list
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.AlreadyRevealed.selector, 0, probeWallet));
        probes.revealProbes(0, _two(probeWallet, probeWallet));
        assertFalse(probes.isProbeSubmitter(0, probeWallet), "reverted as a whole");
        // again in a later call
        probes.revealProbes(0, _one(probeWallet));
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.AlreadyRevealed.selector, 0, probeWallet));
        probes.revealProbes(0, _one(probeWallet));
        vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.AlreadyRevealed.selector, 0, probeWallet));
        probes.revealProbes(0, _two(probeWallet2, probeWallet));
        vm.stopPrank();
        assertFalse(probes.isProbeSubmitter(0, probeWallet2), "reverted as a whole");
    }

    // ------------------------------------------------------------------ probe emission switch

    function test_SetProbeEmission_OnlyAdmin() public {
        address[2] memory callers = [prober, stranger];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], bytes32(0)
                )
            );
            probes.setProbeEmission(true);
        }
        assertFalse(probes.probeEmission());

        vm.expectEmit(address(probes));
        emit IProbeRegistry.ProbeEmissionSet(true);
        vm.prank(admin);
        probes.setProbeEmission(true);
        assertTrue(probes.probeEmission());

        vm.expectEmit(address(probes));
        emit IProbeRegistry.ProbeEmissionSet(false);
        vm.prank(admin);
        probes.setProbeEmission(false);
        assertFalse(probes.probeEmission());
    }

    // ------------------------------------------------------------------ fuzz

    /// A reveal of any epoch fails with the running epoch until the epoch's last second has passed, and
    /// succeeds from its end on. `mode` picks the time: 0 the epoch's last second, 1 its end, 2 within three
    /// epochs of its end, else any time from 0 (before genesis) to three epochs after its end.
    function testFuzz_Reveal_OnlyFromTheEpochEnd(uint64 epoch, uint256 time, uint8 mode, address submitter)
        public
    {
        epoch = uint64(bound(uint256(epoch), 0, 1e12));
        vm.assume(submitter != address(0));
        uint256 end = _end(epoch);
        uint256 t;
        if (mode % 4 == 0) t = end - 1;
        else if (mode % 4 == 1) t = end;
        else if (mode % 4 == 2) t = end - 3 * uint256(EPOCH) + bound(time, 0, 6 * uint256(EPOCH));
        else t = bound(time, 0, end + 3 * uint256(EPOCH));
        vm.warp(t);
        vm.prank(prober);
        if (t < end) {
            uint64 current = t < genesis ? 0 : uint64((t - genesis) / EPOCH);
            assertLe(current, epoch, "a running epoch is never past the epoch revealed");
            vm.expectRevert(abi.encodeWithSelector(IProbeRegistry.EpochNotEnded.selector, epoch, current));
            probes.revealProbes(epoch, _one(submitter));
            assertFalse(probes.isProbeSubmitter(epoch, submitter));
        } else {
            vm.expectEmit(address(probes));
            emit IProbeRegistry.ProbesRevealed(epoch, submitter, prober);
            probes.revealProbes(epoch, _one(submitter));
            assertTrue(probes.isProbeSubmitter(epoch, submitter));
        }
    }
}
