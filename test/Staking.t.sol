// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Staking} from "../contracts/Staking.sol";
import {IStaking, IStakeObserver} from "../contracts/interfaces/IStaking.sol";

contract StakingTest is Fixture {
    address internal alice;
    uint256 internal aliceKey;
    address internal slasher = makeAddr("slasher");
    address internal jailer = makeAddr("jailer");
    address internal prover = makeAddr("prover");

    function setUp() public {
        _deploy();
        (alice, aliceKey) = makeAddrAndKey("alice");
        vm.startPrank(admin);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        staking.grantRole(staking.JAILER_ROLE(), jailer);
        vm.stopPrank();
        _fund(alice, 10_000e18);
        vm.prank(alice);
        token.approve(address(staking), type(uint256).max);
    }

    function _balanceInvariant() internal view {
        assertEq(staking.totalStaked(), token.balanceOf(address(staking)), "totalStaked == balance");
    }

    // ------------------------------------------------------------ stake

    function test_Stake_CreditsRoleAndTotals() public {
        vm.expectEmit(address(staking));
        emit IStaking.Staked(alice, WORKER, 150e18, 150e18);
        vm.prank(alice);
        staking.stake(WORKER, 150e18);
        vm.prank(alice);
        staking.stake(VALIDATOR, 1000e18);
        assertEq(staking.stakeOf(alice, WORKER), 150e18);
        assertEq(staking.stakeOf(alice, VALIDATOR), 1000e18);
        assertEq(staking.totalStakedByRole(WORKER), 150e18);
        assertEq(staking.totalStakedByRole(VALIDATOR), 1000e18);
        assertEq(staking.totalStaked(), 1150e18);
        assertTrue(staking.isEligible(alice, WORKER));
        assertTrue(staking.isEligible(alice, VALIDATOR));
        _balanceInvariant();
    }

    function test_Stake_TopUpBelowMinimumAllowedOnceAboveMinimum() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 100e18);
        staking.stake(WORKER, 1);
        vm.stopPrank();
        assertEq(staking.stakeOf(alice, WORKER), 100e18 + 1);
    }

    function test_Stake_RevertsBelowMinimum() public {
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.BelowMinimumStake.selector, WORKER, 99e18, MIN_WORKER_STAKE)
        );
        vm.prank(alice);
        staking.stake(WORKER, 99e18);
    }

    function test_Stake_RevertsOnZero() public {
        vm.expectRevert(IStaking.ZeroAmount.selector);
        vm.prank(alice);
        staking.stake(WORKER, 0);
    }

    function test_Stake_RevertsOnInvalidRole() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidRole.selector, uint8(2)));
        vm.prank(alice);
        staking.stake(2, 100e18);
    }

    function test_Stake_RevertsWithoutAllowance() public {
        address bob = makeAddr("bob");
        _fund(bob, 100e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(staking), 0, 100e18
            )
        );
        vm.prank(bob);
        staking.stake(WORKER, 100e18);
    }

    function testFuzz_Stake_AnyAmountAboveMinimum(uint256 amount) public {
        amount = bound(amount, MIN_WORKER_STAKE, 10_000e18);
        vm.prank(alice);
        staking.stake(WORKER, amount);
        assertEq(staking.stakeOf(alice, WORKER), amount);
        _balanceInvariant();
    }

    // ------------------------------------------------------------ permit

    function _permitSig(uint256 amount, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                alice,
                address(staking),
                amount,
                token.nonces(alice),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        return vm.sign(aliceKey, digest);
    }

    function test_StakeWithPermit_OneSignature() public {
        vm.prank(alice);
        token.approve(address(staking), 0);
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(200e18, block.timestamp + 1 hours);
        vm.prank(alice);
        staking.stakeWithPermit(WORKER, 200e18, block.timestamp + 1 hours, v, r, s);
        assertEq(staking.stakeOf(alice, WORKER), 200e18);
        assertEq(token.nonces(alice), 1);
    }

    function test_StakeWithPermit_FrontRunPermitStillStakes() public {
        vm.prank(alice);
        token.approve(address(staking), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(200e18, deadline);
        // someone submits the permit first: the nonce is used, the allowance is set
        token.permit(alice, address(staking), 200e18, deadline, v, r, s);
        vm.prank(alice);
        staking.stakeWithPermit(WORKER, 200e18, deadline, v, r, s);
        assertEq(staking.stakeOf(alice, WORKER), 200e18);
    }

    function test_StakeWithPermit_BadSignatureAndNoAllowanceReverts() public {
        vm.prank(alice);
        token.approve(address(staking), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(staking), 0, 200e18
            )
        );
        vm.prank(alice);
        staking.stakeWithPermit(
            WORKER, 200e18, block.timestamp + 1, 27, bytes32(uint256(1)), bytes32(uint256(2))
        );
    }

    /// Gas of alice's validator stake right after bob's, `gap` seconds later, from cold storage
    /// (a transaction of its own).
    function _validatorStakeGasAfter(uint256 gap) private returns (uint256 used) {
        address bob = makeAddr("bob");
        _fund(bob, 10_000e18);
        vm.startPrank(bob);
        token.approve(address(staking), type(uint256).max);
        staking.stake(VALIDATOR, 1000e18);
        vm.stopPrank();
        vm.warp(block.timestamp + gap);
        vm.cool(address(staking));
        vm.cool(address(token));
        vm.prank(alice);
        uint256 before = gasleft();
        staking.stake(VALIDATOR, 1000e18);
        used = before - gasleft();
    }

    /// The validator stake history is keyed by timestamp, so a stake costs more in a new second
    /// (a new total checkpoint) than in the second of the last one (an update). A sender whose
    /// estimate was simulated in the old second sends too little gas: it happened on the devnet
    /// (CI: "staking for 0x9965... reverted", out of gas). Every sender estimates with headroom
    /// (`protocol::rpc::gas_with_headroom`: +20% + 50,000 gas); this pins the extra cost under it.
    function test_Stake_ValidatorCheckpointInANewSecondCostsLessThanSendersHeadroom() public {
        uint256 snap = vm.snapshotState();
        uint256 sameSecond = _validatorStakeGasAfter(0);
        vm.revertToState(snap);
        uint256 nextSecond = _validatorStakeGasAfter(1);
        assertGt(nextSecond, sameSecond + 15_000, "a new checkpoint costs a fresh storage slot");
        assertLt(nextSecond, sameSecond + sameSecond / 5 + 50_000, "inside the senders' headroom");
    }

    // ------------------------------------------------------------ unstake / withdraw

    function test_RequestUnstake_QueuesAndWithdrawAfterPeriod() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 500e18);
        vm.expectEmit(address(staking));
        emit IStaking.UnstakeRequested(alice, WORKER, 200e18, uint64(block.timestamp + UNBONDING), 300e18);
        staking.requestUnstake(WORKER, 200e18);
        vm.stopPrank();
        assertEq(staking.stakeOf(alice, WORKER), 300e18);
        assertEq(staking.slashableOf(alice, WORKER), 500e18);
        assertEq(staking.totalStakedByRole(WORKER), 300e18);
        assertEq(staking.totalStaked(), 500e18);
        assertEq(staking.totalUnbonding(), 200e18);
        IStaking.Unbonding[] memory q = staking.unbondingsOf(alice);
        assertEq(q.length, 1);
        assertEq(q[0].amount, 200e18);
        _balanceInvariant();

        vm.warp(block.timestamp + UNBONDING - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToWithdraw.selector, alice));
        vm.prank(alice);
        staking.withdraw();

        vm.warp(block.timestamp + 1);
        uint256 before = token.balanceOf(alice);
        vm.prank(alice);
        assertEq(staking.withdraw(), 200e18);
        assertEq(token.balanceOf(alice), before + 200e18);
        assertEq(staking.unbondingsOf(alice).length, 0);
        _balanceInvariant();
    }

    function test_Withdraw_PaysOnlyReleasedEntries() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 1000e18);
        staking.requestUnstake(WORKER, 100e18);
        vm.warp(block.timestamp + 1 days);
        staking.requestUnstake(WORKER, 200e18);
        vm.warp(block.timestamp + UNBONDING - 1 days);
        assertEq(staking.withdraw(), 100e18);
        assertEq(staking.unbondingsOf(alice).length, 1);
        vm.warp(block.timestamp + 1 days);
        assertEq(staking.withdraw(), 200e18);
        vm.stopPrank();
        _balanceInvariant();
    }

    function test_RequestUnstake_AllowsFullExit() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 100e18);
        staking.requestUnstake(WORKER, 100e18);
        vm.stopPrank();
        assertEq(staking.stakeOf(alice, WORKER), 0);
        assertFalse(staking.isEligible(alice, WORKER));
    }

    function test_RequestUnstake_RevertsWhenRemainderBelowMinimum() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 150e18);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.BelowMinimumStake.selector, WORKER, 50e18, MIN_WORKER_STAKE)
        );
        staking.requestUnstake(WORKER, 100e18);
        vm.stopPrank();
    }

    function test_RequestUnstake_RevertsAboveStake() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 150e18);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientStake.selector, WORKER, 150e18, 151e18));
        staking.requestUnstake(WORKER, 151e18);
        vm.stopPrank();
    }

    function test_RequestUnstake_RevertsOnZeroAndInvalidRole() public {
        vm.startPrank(alice);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.requestUnstake(WORKER, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidRole.selector, uint8(7)));
        staking.requestUnstake(7, 1);
        vm.stopPrank();
    }

    function test_RequestUnstake_RevertsAfterMaxEntries() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 1000e18);
        for (uint256 i = 0; i < staking.MAX_UNBONDINGS(); ++i) {
            staking.requestUnstake(WORKER, 1e18);
        }
        vm.expectRevert(abi.encodeWithSelector(IStaking.TooManyUnbondings.selector, alice, uint256(32)));
        staking.requestUnstake(WORKER, 1e18);
        vm.stopPrank();
    }

    function testFuzz_UnstakeWithdraw_Timing(uint256 amount, uint256 unstake, uint256 wait) public {
        amount = bound(amount, MIN_WORKER_STAKE, 10_000e18);
        unstake = bound(unstake, 1, amount);
        if (amount - unstake != 0 && amount - unstake < MIN_WORKER_STAKE) unstake = amount;
        wait = bound(wait, 0, 2 * UNBONDING);
        vm.startPrank(alice);
        staking.stake(WORKER, amount);
        staking.requestUnstake(WORKER, unstake);
        vm.warp(block.timestamp + wait);
        if (wait < UNBONDING) {
            vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToWithdraw.selector, alice));
            staking.withdraw();
        } else {
            assertEq(staking.withdraw(), unstake);
        }
        vm.stopPrank();
        _balanceInvariant();
    }

    // ------------------------------------------------------------ slash

    function test_Slash_ActiveFirstThenUnbonding_RewardAndBurn() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 300e18);
        staking.requestUnstake(WORKER, 200e18);
        vm.stopPrank();
        uint256 supply = token.totalSupply();

        vm.expectEmit(address(staking));
        emit IStaking.Slashed(alice, WORKER, 1, 250e18, prover, 25e18, 225e18);
        vm.prank(slasher);
        uint256 slashed = staking.slash(alice, WORKER, 250e18, 1, prover, 1000);
        assertEq(slashed, 250e18);
        assertEq(staking.stakeOf(alice, WORKER), 0);
        assertEq(staking.slashableOf(alice, WORKER), 50e18);
        assertEq(staking.unbondingsOf(alice)[0].amount, 50e18);
        assertEq(token.balanceOf(prover), 25e18);
        assertEq(token.totalSupply(), supply - 225e18);
        _balanceInvariant();
    }

    function test_Slash_CapsAtSlashableAndSkipsOtherRole() public {
        vm.startPrank(alice);
        staking.stake(WORKER, 100e18);
        staking.stake(VALIDATOR, 1000e18);
        staking.requestUnstake(VALIDATOR, 1000e18);
        vm.stopPrank();
        vm.prank(slasher);
        uint256 slashed = staking.slash(alice, WORKER, 1_000_000e18, 1, address(0), 5000);
        assertEq(slashed, 100e18);
        assertEq(staking.slashableOf(alice, VALIDATOR), 1000e18);
        _balanceInvariant();
    }

    function test_Slash_NothingToTakeReturnsZero() public {
        vm.prank(slasher);
        assertEq(staking.slash(alice, WORKER, 1e18, 1, prover, 1000), 0);
    }

    function test_Slash_RevertsWithoutRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                address(this),
                staking.SLASHER_ROLE()
            )
        );
        staking.slash(alice, WORKER, 1, 1, prover, 0);
    }

    function test_Slash_RevertsOnBadBpsZeroAndRole() public {
        vm.startPrank(slasher);
        vm.expectRevert(abi.encodeWithSelector(Staking.InvalidBps.selector, uint256(10_001)));
        staking.slash(alice, WORKER, 1, 1, prover, 10_001);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.slash(alice, WORKER, 0, 1, prover, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidRole.selector, uint8(2)));
        staking.slash(alice, 2, 1, 1, prover, 0);
        vm.stopPrank();
    }

    function testFuzz_Slash_Accounting(uint256 stakeAmt, uint256 unstakeAmt, uint256 slashAmt, uint16 bps)
        public
    {
        stakeAmt = bound(stakeAmt, MIN_WORKER_STAKE, 10_000e18);
        unstakeAmt = bound(unstakeAmt, 0, stakeAmt);
        if (stakeAmt - unstakeAmt != 0 && stakeAmt - unstakeAmt < MIN_WORKER_STAKE) unstakeAmt = stakeAmt;
        slashAmt = bound(slashAmt, 1, 20_000e18);
        bps = uint16(bound(bps, 0, 10_000));
        vm.startPrank(alice);
        staking.stake(WORKER, stakeAmt);
        if (unstakeAmt > 0) staking.requestUnstake(WORKER, unstakeAmt);
        vm.stopPrank();
        uint256 supply = token.totalSupply();
        vm.prank(slasher);
        uint256 slashed = staking.slash(alice, WORKER, slashAmt, 2, prover, bps);
        uint256 expected = slashAmt < stakeAmt ? slashAmt : stakeAmt;
        assertEq(slashed, expected);
        assertEq(staking.slashableOf(alice, WORKER), stakeAmt - expected);
        uint256 rewarded = expected * bps / 10_000;
        assertEq(token.balanceOf(prover), rewarded);
        assertEq(token.totalSupply(), supply - (expected - rewarded));
        _balanceInvariant();
    }

    // ------------------------------------------------------------ jail

    function test_Jail_MakesIneligibleUntilThenEligible() public {
        vm.prank(alice);
        staking.stake(WORKER, 100e18);
        vm.expectEmit(address(staking));
        emit IStaking.Jailed(alice, uint64(block.timestamp + 600));
        vm.prank(jailer);
        staking.jail(alice, uint64(block.timestamp + 600));
        assertFalse(staking.isEligible(alice, WORKER));
        assertEq(staking.jailedUntil(alice), block.timestamp + 600);
        // an earlier end does not shorten the jail
        vm.prank(jailer);
        staking.jail(alice, uint64(block.timestamp + 10));
        assertEq(staking.jailedUntil(alice), block.timestamp + 600);
        vm.warp(block.timestamp + 600);
        assertTrue(staking.isEligible(alice, WORKER));
    }

    function test_Jail_RevertsWithoutRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), staking.JAILER_ROLE()
            )
        );
        staking.jail(alice, 1);
    }

    // ------------------------------------------------------------ admin / observer

    function test_Admin_SetsParams() public {
        vm.startPrank(admin);
        staking.setMinStake(WORKER, 200e18);
        staking.setUnbondingPeriod(1 days);
        vm.stopPrank();
        assertEq(staking.minStake(WORKER), 200e18);
        assertEq(staking.unbondingPeriod(), 1 days);
    }

    function test_Admin_RevertsOnBadParamsAndNonAdmin() public {
        vm.startPrank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(
                Staking.InvalidUnbondingPeriod.selector, uint64(366 days), uint64(365 days)
            )
        );
        staking.setUnbondingPeriod(366 days);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidRole.selector, uint8(2)));
        staking.setMinStake(2, 1);
        vm.stopPrank();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), bytes32(0)
            )
        );
        staking.setMinStake(WORKER, 1);
    }

    function test_MinimumRaise_MakesExistingStakeIneligible() public {
        vm.prank(alice);
        staking.stake(WORKER, 100e18);
        vm.prank(admin);
        staking.setMinStake(WORKER, 101e18);
        assertFalse(staking.isEligible(alice, WORKER));
    }

    function test_Observer_ToldOnWorkerStakeChanges() public {
        uint32 modelId = _registerModel(PRICE);
        vm.prank(alice);
        staking.stake(WORKER, 100e18);
        vm.prank(alice);
        registry.optIn(modelId);
        // weight = stake x new-node trust 0.2
        assertEq(registry.weightOf(modelId, alice), 20e18);
        vm.prank(alice);
        staking.stake(WORKER, 50e18);
        assertEq(registry.weightOf(modelId, alice), 30e18);
        vm.prank(alice);
        staking.requestUnstake(WORKER, 50e18);
        assertEq(registry.weightOf(modelId, alice), 20e18);
        vm.prank(slasher);
        staking.slash(alice, WORKER, 100e18, 1, prover, 0);
        assertEq(registry.weightOf(modelId, alice), 0);
    }

    function test_Observer_ClearedStopsCallbacks() public {
        vm.expectEmit(address(staking));
        emit IStaking.StakeObserverSet(address(0));
        vm.prank(admin);
        staking.setStakeObserver(IStakeObserver(address(0)));
        vm.prank(alice);
        staking.stake(WORKER, 100e18);
        assertEq(address(staking.stakeObserver()), address(0));
    }
}
