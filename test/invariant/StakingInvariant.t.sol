// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {Fixture} from "../utils/Fixture.sol";
import {DNToken} from "../../contracts/DNToken.sol";
import {Staking} from "../../contracts/Staking.sol";

/// Random stake / unstake / withdraw / slash / time moves by a few actors, with ghost totals.
contract StakingHandler is Test {
    DNToken internal token;
    Staking internal staking;
    address internal slasher;
    address[] public actors;

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostSlashed;

    constructor(DNToken token_, Staking staking_, address slasher_, address[] memory actors_) {
        token = token_;
        staking = staking_;
        slasher = slasher_;
        actors = actors_;
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function stake(uint256 actorSeed, uint8 role, uint256 amount) external {
        address a = actors[actorSeed % actors.length];
        role = role % 2;
        uint256 current = staking.stakeOf(a, role);
        uint256 minimum = staking.minStake(role);
        uint256 low = current >= minimum ? 1 : minimum - current;
        uint256 bal = token.balanceOf(a);
        if (bal < low) return;
        amount = bound(amount, low, bal);
        vm.prank(a);
        staking.stake(role, amount);
        ghostDeposited += amount;
    }

    function requestUnstake(uint256 actorSeed, uint8 role, uint256 amount) external {
        address a = actors[actorSeed % actors.length];
        role = role % 2;
        uint256 current = staking.stakeOf(a, role);
        if (current == 0 || staking.unbondingsOf(a).length >= staking.MAX_UNBONDINGS()) return;
        amount = bound(amount, 1, current);
        uint256 rest = current - amount;
        if (rest != 0 && rest < staking.minStake(role)) amount = current;
        vm.prank(a);
        staking.requestUnstake(role, amount);
    }

    function withdraw(uint256 actorSeed) external {
        address a = actors[actorSeed % actors.length];
        uint256 due;
        uint256 n = staking.unbondingsOf(a).length;
        for (uint256 i = 0; i < n; ++i) {
            if (staking.unbondingsOf(a)[i].releaseAt <= block.timestamp) {
                due += staking.unbondingsOf(a)[i].amount;
            }
        }
        if (due == 0) return;
        vm.prank(a);
        uint256 got = staking.withdraw();
        assertEq(got, due, "withdraw pays exactly the released entries");
        ghostWithdrawn += got;
    }

    function slash(uint256 actorSeed, uint8 role, uint256 amount, uint16 bps) external {
        address a = actors[actorSeed % actors.length];
        role = role % 2;
        amount = bound(amount, 1, 20_000e18);
        bps = uint16(bound(bps, 0, 10_000));
        uint256 slashable = staking.slashableOf(a, role);
        vm.prank(slasher);
        uint256 slashed = staking.slash(a, role, amount, 1, slasher, bps);
        assertEq(slashed, amount < slashable ? amount : slashable, "slash takes min(amount, slashable)");
        ghostSlashed += slashed;
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 3 days));
    }
}

contract StakingInvariantTest is Fixture {
    StakingHandler internal handler;
    address[] internal actors;

    function setUp() public {
        _deploy();
        address slasher = makeAddr("slasher");
        for (uint256 i = 0; i < 4; ++i) {
            address a = makeAddr(string.concat("actor", vm.toString(i)));
            actors.push(a);
            _fund(a, 20_000e18);
        }
        handler = new StakingHandler(token, staking, slasher, actors);
        for (uint256 i = 0; i < actors.length; ++i) {
            vm.prank(actors[i]);
            token.approve(address(staking), type(uint256).max);
        }
        vm.startPrank(admin);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        vm.stopPrank();
        targetContract(address(handler));
    }

    function invariant_TotalStakedEqualsBalance() public view {
        assertEq(staking.totalStaked(), token.balanceOf(address(staking)));
    }

    function invariant_TotalStakedEqualsSumOfStakes() public view {
        uint256 sum;
        uint256[2] memory byRole;
        for (uint256 i = 0; i < actors.length; ++i) {
            for (uint8 r = 0; r < 2; ++r) {
                sum += staking.slashableOf(actors[i], r);
                byRole[r] += staking.stakeOf(actors[i], r);
            }
        }
        assertEq(staking.totalStaked(), sum, "active + unbonding");
        assertEq(staking.totalStakedByRole(0), byRole[0]);
        assertEq(staking.totalStakedByRole(1), byRole[1]);
    }

    function invariant_GhostFlowsBalance() public view {
        assertEq(
            staking.totalStaked(),
            handler.ghostDeposited() - handler.ghostWithdrawn() - handler.ghostSlashed(),
            "deposits - withdrawals - slashes"
        );
    }

    function invariant_UnbondingQueuesBounded() public view {
        for (uint256 i = 0; i < actors.length; ++i) {
            assertLe(staking.unbondingsOf(actors[i]).length, staking.MAX_UNBONDINGS());
        }
    }
}
