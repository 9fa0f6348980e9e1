// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {SettlementBase} from "./Settlement.t.sol";
import {ISettlement} from "../contracts/interfaces/ISettlement.sol";

/// @notice Finding M-3, the veto window: a report signed by a colluding 2/3 of the validator stake (or by
///         keys bought for one epoch) pays nothing until its veto window closes, and validators holding
///         >= 1/3 of the signing stake discard it meanwhile (its minted rewards burned); the honest report
///         is posted after it. Four validators of equal stake: three sign (3/4 >= 2/3), two veto (1/2 >= 1/3).
contract SettlementVetoTest is SettlementBase {
    uint64 internal constant WINDOW = 10 minutes;
    address internal attacker = makeAddr("attacker");
    address internal honestWorker = makeAddr("honestWorker");

    function _vetoWindow() internal pure override returns (uint64) {
        return WINDOW;
    }

    function setUp() public {
        _deploySettlement();
        _addValidators(4, MIN_VALIDATOR_STAKE);
    }

    function _one(address a, uint256 v) internal pure returns (address[] memory as_, uint256[] memory vs) {
        as_ = new address[](1);
        vs = new uint256[](1);
        as_[0] = a;
        vs[0] = v;
    }

    /// The false report: the whole epoch budget to the attacker, signed by validators 0..2.
    function _postFalse() internal returns (ISettlement.EpochReport memory r, uint256 all) {
        vm.warp(settlement.epochEnd(0));
        all = settlement.epochBudget(0);
        (address[] memory a, uint256[] memory v) = _one(attacker, all);
        r = _report(0, _root(a, v), bytes32(0), all);
        settlement.postReport(r, _sigs(r, 3));
    }

    function test_Exploit_M3_FalseReportOfTwoThirdsIsVetoedAndPaysNothing() public {
        uint256 supply = token.totalSupply();
        (ISettlement.EpochReport memory forged, uint256 all) = _postFalse();
        assertEq(settlement.claimsOpenAt(0), block.timestamp + WINDOW);
        // the attacker cannot claim inside the window
        bytes32[] memory none = new bytes32[](0);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.ReportInVetoWindow.selector, 0, block.timestamp + WINDOW)
        );
        settlement.claim(0, attacker, all, none);
        // one honest validator (1/4) is not enough, a second (1/2 >= 1/3) discards the report
        vm.prank(validators[3]);
        settlement.vetoReport(forged);
        assertGt(settlement.epochRecord(0).postedAt, 0, "a quarter does not discard");
        vm.expectEmit(address(settlement));
        emit ISettlement.ReportDiscarded(0, settlement.epochRecord(0).rewardsRoot, all);
        vm.prank(validators[2]); // a signer of the false report may change its mind
        settlement.vetoReport(forged);
        assertEq(settlement.epochRecord(0).postedAt, 0, "discarded");
        assertEq(token.totalSupply(), supply, "what it minted is burned");
        assertEq(settlement.claimsOpenAt(0), 0);
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochNotReported.selector, 0));
        settlement.claim(0, attacker, all, none);
        assertEq(token.balanceOf(attacker), 0);

        // the honest report is posted after it, and pays once its own window has closed
        (address[] memory a, uint256[] memory v) = _one(honestWorker, 1000e18);
        ISettlement.EpochReport memory honest = _report(0, _root(a, v), bytes32(0), 1000e18);
        settlement.postReport(honest, _sigs(honest, 3));
        // a late veto of the discarded report does not land on the new one
        vm.expectRevert(abi.encodeWithSelector(ISettlement.NotThePostedReport.selector, 0));
        vm.prank(validators[1]);
        settlement.vetoReport(forged);
        // the vetoes of the discarded posting do not count against the new one
        vm.prank(validators[3]);
        settlement.vetoReport(honest);
        assertGt(settlement.epochRecord(0).postedAt, 0);
        vm.warp(block.timestamp + WINDOW);
        settlement.claim(0, honestWorker, 1000e18, none);
        assertEq(token.balanceOf(honestWorker), 1000e18);
        assertEq(token.totalSupply(), supply + 1000e18);
    }

    function test_Veto_RefusedTwiceAfterTheWindowAndWithoutSigningStake() public {
        (ISettlement.EpochReport memory forged,) = _postFalse();
        vm.prank(validators[3]);
        settlement.vetoReport(forged);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.AlreadyVetoed.selector, 0, validators[3]));
        vm.prank(validators[3]);
        settlement.vetoReport(forged);
        // stake bought after the epoch began cannot veto its report (nor sign it)
        address flash = makeAddr("flash");
        _stake(flash, VALIDATOR, 10 * MIN_VALIDATOR_STAKE);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.NotValidator.selector, flash));
        vm.prank(flash);
        settlement.vetoReport(forged);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.NotValidator.selector, attacker));
        vm.prank(attacker);
        settlement.vetoReport(forged);
        uint256 closesAt = settlement.claimsOpenAt(0);
        vm.warp(closesAt);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.VetoWindowClosed.selector, 0, closesAt));
        vm.prank(validators[0]);
        settlement.vetoReport(forged);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochNotReported.selector, 1));
        settlement.vetoReport(_report(1, bytes32(0), bytes32(0), 0));
    }

    function test_Veto_TrustAndModelStatusProofsWaitForTheWindow() public {
        (address[] memory a, uint256[] memory v) = _one(honestWorker, 0.5e18);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(uint32(1), uint8(1)))));
        ISettlement.EpochReport memory r = ISettlement.EpochReport(0, bytes32(0), _root(a, v), 0, leaf);
        _post(r);
        bytes32[] memory none = new bytes32[](0);
        uint256 opensAt = block.timestamp + WINDOW;
        vm.expectRevert(abi.encodeWithSelector(ISettlement.ReportInVetoWindow.selector, 0, opensAt));
        settlement.refreshTrust(0, honestWorker, 0.5e18, none);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.ReportInVetoWindow.selector, 0, opensAt));
        settlement.applyModelStatus(0, 1, 1, none);
        vm.warp(opensAt);
        settlement.refreshTrust(0, honestWorker, 0.5e18, none);
        (bool refreshed, uint64 e) = settlement.lastTrustRefresh(honestWorker);
        assertTrue(refreshed && e == 0);
    }
}
