// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {Deploy} from "../script/Deploy.s.sol";
import {Staking} from "../contracts/Staking.sol";
import {IAuditManager} from "../contracts/interfaces/IAuditManager.sol";

/// @notice The deploy script's admin set-up (issue 12, "Admin powers"): the deployer keeps no role, every
///         admin power sits behind an OpenZeppelin TimelockController, the validators' fee share does not go
///         to one key, and TaskManager holds no slashing power.
contract DeployTest is Test {
    Deploy internal script;
    Deploy.Deployment internal d;
    address internal deployer;

    function setUp() public {
        script = new Deploy();
        d = script.deploy();
        deployer = d.deployer;
    }

    function _admins() internal view returns (IAccessControl[6] memory) {
        return [
            IAccessControl(address(d.token)),
            IAccessControl(address(d.staking)),
            IAccessControl(address(d.registry)),
            IAccessControl(address(d.taskManager)),
            IAccessControl(address(d.auditManager)),
            IAccessControl(address(d.probeRegistry))
        ];
    }

    function test_Deploy_DeployerKeepsNoRole() public view {
        IAccessControl[6] memory all = _admins();
        for (uint256 i = 0; i < all.length; ++i) {
            assertFalse(all[i].hasRole(bytes32(0), deployer), "deployer is not admin");
            assertTrue(all[i].hasRole(bytes32(0), address(d.timelock)), "timelock is admin");
        }
        assertFalse(d.registry.hasRole(d.registry.STATUS_ROLE(), deployer));
        assertTrue(d.registry.hasRole(d.registry.STATUS_ROLE(), address(d.timelock)));
        assertFalse(d.token.hasRole(d.token.MINTER_ROLE(), deployer));
        assertFalse(d.token.hasRole(d.token.MINTER_ROLE(), address(d.timelock)));
        assertTrue(d.token.hasRole(d.token.MINTER_ROLE(), address(d.settlement)));
        assertFalse(d.staking.hasRole(d.staking.SLASHER_ROLE(), address(d.taskManager)));
        assertTrue(d.staking.hasRole(d.staking.SLASHER_ROLE(), address(d.auditManager)));
        assertEq(d.validatorPool, address(d.timelock), "validator fee share under the timelock, not a key");
        assertEq(d.taskManager.validatorPool(), address(d.timelock));
        assertEq(d.timelock.getMinDelay(), 2 days);
        // the timelock administers itself: no account can change its delay or proposers directly
        assertFalse(d.timelock.hasRole(bytes32(0), deployer));
        assertTrue(d.timelock.hasRole(d.timelock.PROPOSER_ROLE(), deployer));
    }

    /// The admin changed any parameter, and could grant MINTER_ROLE, in one instant transaction. Now the
    /// deployer cannot, and a change proposed through the timelock applies only after its delay, in public.
    function test_Exploit_Admin_InstantParameterChangeAndMinterGrant() public {
        address thief = makeAddr("thief");
        bytes32 minter = d.token.MINTER_ROLE();
        vm.startPrank(deployer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, deployer, bytes32(0)
            )
        );
        d.token.grantRole(minter, thief);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, deployer, bytes32(0)
            )
        );
        d.staking.setUnbondingPeriod(1 hours);
        IAuditManager.Params memory p = d.auditManager.params();
        p.fraudSlashBps = 0;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, deployer, bytes32(0)
            )
        );
        d.auditManager.setParams(p);

        // through the timelock: scheduled (public), refused before the delay, applied after it
        bytes memory call = abi.encodeCall(Staking.setUnbondingPeriod, (1 hours));
        d.timelock.schedule(address(d.staking), 0, call, bytes32(0), bytes32(0), 2 days);
        vm.stopPrank();
        bytes32 id = d.timelock.hashOperation(address(d.staking), 0, call, bytes32(0), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockUnexpectedOperationState.selector,
                id,
                bytes32(1 << uint8(TimelockController.OperationState.Ready))
            )
        );
        d.timelock.execute(address(d.staking), 0, call, bytes32(0), bytes32(0));
        vm.warp(block.timestamp + 2 days);
        vm.prank(thief); // anyone executes a ready operation
        d.timelock.execute(address(d.staking), 0, call, bytes32(0), bytes32(0));
        assertEq(d.staking.unbondingPeriod(), 1 hours);

        // a stranger cannot propose, and a shorter delay than the minimum is refused
        vm.prank(thief);
        vm.expectRevert();
        d.timelock.schedule(address(d.token), 0, "", bytes32(0), bytes32(0), 2 days);
        vm.prank(deployer);
        vm.expectRevert(
            abi.encodeWithSelector(TimelockController.TimelockInsufficientDelay.selector, 1, 2 days)
        );
        d.timelock.schedule(address(d.token), 0, "", bytes32(0), bytes32(uint256(1)), 1);
    }

    /// Outside a devnet the deploy refuses an admin delay under a day (a zero delay is no timelock).
    function test_Deploy_RefusesShortDelayOutsideDevnet() public {
        vm.chainId(1);
        vm.expectRevert(abi.encodeWithSelector(Deploy.AdminDelayTooShort.selector, 3600, 1 days));
        script.newTimelock(deployer, 3600);
        assertEq(script.newTimelock(deployer, 1 days).getMinDelay(), 1 days);
        vm.chainId(31337);
        assertEq(script.newTimelock(deployer, 0).getMinDelay(), 0, "a devnet may use no delay");
    }

    /// The sentinel's planter wallet gets PLANTER_ROLE from the deploy itself (DN_SENTINEL_PLANTER); without
    /// the variable nobody can plant.
    function test_Deploy_GrantsPlanterRoleToTheSentinel() public {
        bytes32 role = d.auditManager.PLANTER_ROLE();
        assertFalse(d.auditManager.hasRole(role, deployer), "no planter unless configured");
        address planter = makeAddr("planter");
        vm.setEnv("DN_SENTINEL_PLANTER", vm.toString(planter));
        Deploy.Deployment memory e = new Deploy().deploy();
        assertTrue(e.auditManager.hasRole(role, planter), "the sentinel's planter may plant");
        assertFalse(e.auditManager.hasRole(role, e.deployer));
        vm.setEnv("DN_SENTINEL_PLANTER", vm.toString(address(0)));
    }

    /// Unset, DN_PROBE_EMISSION switches probe emission on: a deployment that forgets it does not pay
    /// emission on self-paid tasks (wash trading, issue 14).
    function test_Deploy_ProbeEmissionOnByDefault() public {
        assertTrue(new Deploy().PROBE_EMISSION_DEFAULT());
    }

    /// Unset, DN_QUORUM gives disputes five seats (the contract's own default is 3).
    function test_Deploy_FiveSeatQuorumByDefault() public {
        assertEq(new Deploy().QUORUM_DEFAULT(), 5);
        vm.setEnv("DN_QUORUM", "7");
        Deploy.Deployment memory e = new Deploy().deploy();
        vm.setEnv("DN_QUORUM", "5");
        assertEq(e.auditManager.params().quorum, 7, "DN_QUORUM overrides it");
    }

    /// ProbeRegistry follows the Settlement's epochs, its admin is the timelock like every other contract's,
    /// and the deploy grants PROBER_ROLE to DN_PROBER and switches probe emission on with DN_PROBE_EMISSION;
    /// without a prober nobody may reveal, and DN_PROBE_EMISSION=false keeps probe emission off (the timelock
    /// changes either later).
    function test_Deploy_WiresTheProbeRegistry() public {
        assertEq(d.probeRegistry.settlement(), address(d.settlement));
        assertEq(d.probeRegistry.genesis(), d.settlement.genesis());
        assertEq(d.probeRegistry.epochLength(), d.settlement.epochLength());
        bytes32 role = d.probeRegistry.PROBER_ROLE();
        assertFalse(d.probeRegistry.hasRole(role, deployer), "the deployer is no prober");
        assertFalse(d.probeRegistry.hasRole(role, address(d.timelock)), "nor is the timelock");

        address prober = makeAddr("prober");
        vm.setEnv("DN_PROBER", vm.toString(address(0)));
        vm.setEnv("DN_PROBE_EMISSION", "false");
        Deploy.Deployment memory plain = new Deploy().deploy();
        assertFalse(plain.probeRegistry.hasRole(role, prober), "no prober unless configured");
        assertFalse(plain.probeRegistry.probeEmission(), "DN_PROBE_EMISSION=false keeps it off");

        vm.setEnv("DN_PROBER", vm.toString(prober));
        vm.setEnv("DN_PROBE_EMISSION", "true");
        Deploy.Deployment memory e = new Deploy().deploy();
        vm.setEnv("DN_PROBER", vm.toString(address(0)));
        vm.setEnv("DN_PROBE_EMISSION", "false");
        assertTrue(e.probeRegistry.hasRole(role, prober), "the configured prober may reveal");
        assertTrue(e.probeRegistry.probeEmission(), "probe emission switched on");
        assertFalse(e.probeRegistry.hasRole(role, e.deployer));
        assertFalse(e.probeRegistry.hasRole(bytes32(0), e.deployer), "the deployer keeps no admin role");
        assertTrue(e.probeRegistry.hasRole(bytes32(0), address(e.timelock)), "the timelock is admin");

        // the deployer cannot switch it back: only the timelock can
        vm.prank(e.deployer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, e.deployer, bytes32(0)
            )
        );
        e.probeRegistry.setProbeEmission(false);
        vm.prank(address(e.timelock));
        e.probeRegistry.setProbeEmission(false);
        assertFalse(e.probeRegistry.probeEmission());
    }
}
