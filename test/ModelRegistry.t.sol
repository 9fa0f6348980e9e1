// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Fixture} from "./utils/Fixture.sol";
import {ModelRegistry} from "../contracts/ModelRegistry.sol";
import {IModelRegistry} from "../contracts/interfaces/IModelRegistry.sol";

contract ModelRegistryTest is Fixture {
    bytes32 internal constant HASH = keccak256("model.onnx");
    address internal trustSetter = makeAddr("trustSetter");

    function setUp() public {
        _deploy();
        bytes32 trustRole = registry.TRUST_ROLE();
        vm.prank(admin);
        registry.grantRole(trustRole, trustSetter);
        _fund(developer, 1000e18);
        vm.prank(developer);
        token.approve(address(registry), type(uint256).max);
    }

    function _register() internal returns (uint32) {
        vm.prank(developer);
        return registry.registerModel(HASH, "ipfs://m", PRICE, 7, 1, 100, 0);
    }

    // ------------------------------------------------------------ registerModel

    function test_Register_StoresModelTakesBondEmits() public {
        uint256 before = token.balanceOf(developer);
        vm.expectEmit(address(registry));
        emit IModelRegistry.ModelRegistered(1, developer, HASH, "ipfs://m", PRICE, 7, 1, 100, 0);
        uint32 id = _register();
        assertEq(id, 1);
        assertEq(registry.modelCount(), 1);
        IModelRegistry.Model memory m = registry.getModel(1);
        assertEq(m.developer, developer);
        assertEq(m.pricePerCall, PRICE);
        assertEq(m.sha256Hash, HASH);
        assertEq(m.computeUnits, 7);
        assertEq(m.rule, 1);
        assertEq(m.tolerance, 100);
        assertEq(m.status, 0);
        assertEq(m.uri, "ipfs://m");
        assertEq(token.balanceOf(developer), before - LISTING_BOND);
        assertEq(registry.bondOf(1), LISTING_BOND);
        (address dev, uint96 price, uint32 cu, uint8 status) = registry.modelTerms(1);
        assertEq(dev, developer);
        assertEq(price, PRICE);
        assertEq(cu, 7);
        assertEq(status, 0);
    }

    function test_Register_VersionWithParent() public {
        _register();
        vm.prank(developer);
        uint32 v2 = registry.registerModel(keccak256("v2"), "ipfs://v2", PRICE, 7, 0, 0, 1);
        assertEq(registry.getModel(v2).parent, 1);
    }

    function test_Register_ZeroBondTakesNothing() public {
        vm.prank(admin);
        registry.setListingBond(0);
        address poor = makeAddr("poor");
        vm.prank(poor);
        uint32 id = registry.registerModel(HASH, "u", 0, 1, 0, 0, 0);
        assertEq(registry.bondOf(id), 0);
    }

    function test_Register_RevertsWithoutBondAllowance() public {
        address poor = makeAddr("poor");
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(registry), 0, LISTING_BOND
            )
        );
        vm.prank(poor);
        registry.registerModel(HASH, "u", 0, 1, 0, 0, 0);
    }

    function test_Register_RevertsOnInvalidFields() public {
        vm.startPrank(developer);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "zero sha256 hash"));
        registry.registerModel(bytes32(0), "u", 1, 1, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "empty uri"));
        registry.registerModel(HASH, "", 1, 1, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "zero compute units"));
        registry.registerModel(HASH, "u", 1, 0, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidRule.selector, uint8(5)));
        registry.registerModel(HASH, "u", 1, 1, 5, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "unknown parent model"));
        registry.registerModel(HASH, "u", 1, 1, 0, 0, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "cosine tolerance above 1e6")
        );
        registry.registerModel(HASH, "u", 1, 1, 4, 1_000_001, 0);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "top-k needs k >= 1"));
        registry.registerModel(HASH, "u", 1, 1, 3, 0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "uri longer than 2048 bytes")
        );
        registry.registerModel(HASH, string(new bytes(2049)), 1, 1, 0, 0, 0);
        vm.stopPrank();
    }

    // ------------------------------------------------------------ price / status

    function test_SetPrice_ByDeveloper() public {
        _register();
        vm.expectEmit(address(registry));
        emit IModelRegistry.ModelPriceChanged(1, 5e18);
        vm.prank(developer);
        registry.setPrice(1, 5e18);
        assertEq(registry.getModel(1).pricePerCall, 5e18);
    }

    function test_SetPrice_RevertsForOthersAndUnknown() public {
        _register();
        vm.expectRevert(
            abi.encodeWithSelector(IModelRegistry.NotModelDeveloper.selector, uint32(1), address(this))
        );
        registry.setPrice(1, 5e18);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, uint32(2)));
        registry.setPrice(2, 5e18);
    }

    function test_SetStatus_ByStatusRole() public {
        _register();
        vm.expectEmit(address(registry));
        emit IModelRegistry.ModelStatusChanged(1, 2);
        vm.prank(admin);
        registry.setStatus(1, 2);
        assertEq(registry.getModel(1).status, 2);
    }

    /// The admin's status change is recorded; a report whose epoch ended at or before it cannot undo
    /// it, a report of a later epoch can, and report-driven changes do not move the record.
    function test_SetStatusFromReport_RefusesReportBeforeOverride() public {
        uint32 id = _register();
        assertEq(registry.statusOverriddenAt(id), 0);
        vm.warp(1000);
        vm.startPrank(admin);
        registry.setStatus(id, 2);
        assertEq(registry.statusOverriddenAt(id), 1000);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelRegistry.StatusReportBeforeOverride.selector, id, uint64(1000), uint64(1000)
            )
        );
        registry.setStatusFromReport(id, 0, 1000);
        vm.expectEmit(address(registry));
        emit IModelRegistry.ModelStatusChanged(id, 1);
        registry.setStatusFromReport(id, 1, 1001);
        vm.stopPrank();
        assertEq(registry.getModel(id).status, 1);
        assertEq(registry.statusOverriddenAt(id), 1000);
    }

    function test_SetStatusFromReport_Reverts() public {
        _register();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                address(this),
                registry.STATUS_ROLE()
            )
        );
        registry.setStatusFromReport(1, 1, 1);
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "unknown status"));
        registry.setStatusFromReport(1, 3, 1);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, uint32(9)));
        registry.setStatusFromReport(9, 1, 1);
        vm.stopPrank();
    }

    function test_SetStatus_Reverts() public {
        _register();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                address(this),
                registry.STATUS_ROLE()
            )
        );
        registry.setStatus(1, 1);
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "unknown status"));
        registry.setStatus(1, 3);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, uint32(9)));
        registry.setStatus(9, 1);
        vm.stopPrank();
    }

    function test_GetModel_RevertsUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, uint32(0)));
        registry.getModel(0);
    }

    // ------------------------------------------------------------ opt in / out

    function test_OptIn_AddsWeightStakeTimesTrust() public {
        uint32 id = _register();
        address w = makeAddr("w");
        _stake(w, WORKER, 300e18);
        vm.expectEmit(address(registry));
        emit IModelRegistry.WorkerOptedIn(id, w, 60e18); // 300 DN x new-node trust 0.2
        vm.prank(w);
        registry.optIn(id);
        assertEq(registry.weightOf(id, w), 60e18);
        assertEq(registry.totalWeight(id), 60e18);
        assertEq(registry.workersOf(id).length, 1);
        assertEq(registry.modelsOf(w)[0], id);
        assertEq(registry.getModel(id).workerCount, 1);
    }

    function test_OptIn_Reverts() public {
        uint32 id = _register();
        address w = makeAddr("w");
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.NotEligibleWorker.selector, w));
        vm.prank(w);
        registry.optIn(id);

        _stake(w, WORKER, 100e18);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, uint32(5)));
        vm.prank(w);
        registry.optIn(5);

        vm.prank(w);
        registry.optIn(id);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.AlreadyOptedIn.selector, id, w));
        vm.prank(w);
        registry.optIn(id);

        vm.prank(developer);
        uint32 id2 = registry.registerModel(HASH, "u", 1, 1, 0, 0, 0);
        vm.prank(admin);
        registry.setStatus(id2, 2);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelNotActive.selector, id2, uint8(2)));
        vm.prank(w);
        registry.optIn(id2);
    }

    function test_OptIn_RevertsPastMaxModels() public {
        address w = makeAddr("w");
        _stake(w, WORKER, 100e18);
        for (uint256 i = 0; i < 17; ++i) {
            vm.prank(developer);
            uint32 id = registry.registerModel(HASH, "u", 1, 1, 0, 0, 0);
            if (i < 16) {
                vm.prank(w);
                registry.optIn(id);
            } else {
                vm.expectRevert(abi.encodeWithSelector(IModelRegistry.TooManyModels.selector, w, uint256(16)));
                vm.prank(w);
                registry.optIn(id);
            }
        }
        // weight sync touches all 16 models
        _stake(w, WORKER, 1e18);
        assertEq(registry.weightOf(16, w), 20.2e18); // 101 DN x 0.2
    }

    function test_OptOut_RemovesWeightAndKeepsTheSlot() public {
        uint32 id = _register();
        address a = _addWorker("a", id, 100e18);
        address b = _addWorker("b", id, 200e18);
        vm.expectEmit(address(registry));
        emit IModelRegistry.WorkerOptedOut(id, a);
        vm.prank(a);
        registry.optOut(id);
        assertEq(registry.totalWeight(id), 40e18); // 200 DN x new-node trust 0.2
        assertEq(registry.weightOf(id, a), 0);
        assertEq(registry.modelsOf(a).length, 0);
        address[] memory ws = registry.workersOf(id);
        assertEq(ws.length, 1);
        assertEq(ws[0], b);
        // the slot stays a's (a past draw must still resolve to it); opting in again reuses it
        assertEq(registry.drawWorkerAt(id, 0, block.number, address(0)), b);
        vm.roll(block.number + 1);
        vm.prank(a);
        registry.optIn(id);
        assertEq(registry.workersOf(id).length, 2);
        assertEq(registry.weightOf(id, a), 20e18);
        assertEq(registry.drawWorkerAt(id, 0, block.number, address(0)), a);
        // the block before still sees a out of the draw
        assertEq(registry.drawWorkerAt(id, 0, block.number - 1, address(0)), b);
        assertEq(registry.totalWeightAt(id, block.number - 1), 40e18);
    }

    function test_OptOut_RevertsWhenNotOptedIn() public {
        uint32 id = _register();
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.NotOptedIn.selector, id, address(this)));
        registry.optOut(id);
    }

    // ------------------------------------------------------------ weights

    function test_Jail_ZeroesWeightUntilSync() public {
        uint32 id = _register();
        address w = _addWorker("w", id, 100e18);
        vm.prank(address(tm));
        staking.jail(w, uint64(block.timestamp + 100));
        assertEq(registry.weightOf(id, w), 0);
        vm.warp(block.timestamp + 100);
        assertEq(registry.weightOf(id, w), 0, "stays 0 until someone syncs");
        vm.expectEmit(address(registry));
        emit IModelRegistry.WorkerWeightUpdated(id, w, 20e18); // 100 DN x new-node trust 0.2
        registry.syncWorker(w);
        assertEq(registry.weightOf(id, w), 20e18);
    }

    function test_SetTrustWeight_ScalesWeight() public {
        uint32 id = _register();
        address w = _addWorker("w", id, 200e18);
        assertEq(registry.trustWeight(w), 0.2e18, "default: new-node trust");
        vm.expectEmit(address(registry));
        emit IModelRegistry.TrustWeightSet(w, 0.25e18);
        vm.prank(trustSetter);
        registry.setTrustWeight(w, 0.25e18);
        assertEq(registry.weightOf(id, w), 50e18);
        vm.prank(trustSetter);
        registry.setTrustWeight(w, 0);
        assertEq(registry.trustWeight(w), 0, "zero trust is stored, not the default");
        assertEq(registry.weightOf(id, w), 0);
    }

    function test_SetTrustWeight_ZeroRecordsTrustZeroedAt() public {
        address w = makeAddr("w");
        vm.warp(1000);
        vm.prank(trustSetter);
        registry.setTrustWeight(w, 0.5e18);
        assertEq(registry.trustZeroedAt(w), 0, "a positive weight is no zeroing");
        vm.prank(trustSetter);
        registry.setTrustWeight(w, 0);
        assertEq(registry.trustZeroedAt(w), 1000);
        vm.warp(2000);
        vm.prank(trustSetter);
        registry.setTrustWeightFromReport(w, 0, 2000);
        assertEq(registry.trustZeroedAt(w), 1000, "a report's zero is no fraud");
    }

    /// A report whose epoch ended at or before the zeroing cannot raise the trust again; a zero is
    /// always accepted; a report of a later epoch is.
    function test_SetTrustWeightFromReport_RefusesReportBeforeZeroing() public {
        uint32 id = _register();
        address w = _addWorker("w", id, 200e18);
        vm.warp(1000);
        vm.prank(trustSetter);
        registry.setTrustWeight(w, 0);
        vm.startPrank(trustSetter);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelRegistry.TrustReportBeforeZeroing.selector, w, uint64(1000), uint64(1000)
            )
        );
        registry.setTrustWeightFromReport(w, 0.9e18, 1000);
        registry.setTrustWeightFromReport(w, 0, 1000);
        vm.expectEmit(address(registry));
        emit IModelRegistry.TrustWeightSet(w, 0.9e18);
        registry.setTrustWeightFromReport(w, 0.9e18, 1001);
        vm.stopPrank();
        assertEq(registry.trustWeight(w), 0.9e18);
        assertEq(registry.weightOf(id, w), 180e18);
    }

    function test_SetTrustWeightFromReport_Reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), registry.TRUST_ROLE()
            )
        );
        registry.setTrustWeightFromReport(address(1), 1, 1);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.TrustTooHigh.selector, 1e18 + 1, 1e18));
        vm.prank(trustSetter);
        registry.setTrustWeightFromReport(address(1), 1e18 + 1, 1);
    }

    function test_SetTrustWeight_Reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), registry.TRUST_ROLE()
            )
        );
        registry.setTrustWeight(address(1), 1);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.TrustTooHigh.selector, 1e18 + 1, 1e18));
        vm.prank(trustSetter);
        registry.setTrustWeight(address(1), 1e18 + 1);
    }

    function test_OnStakeChanged_OnlyStaking() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NotStaking.selector, address(this)));
        registry.onStakeChanged(address(1));
    }

    // ------------------------------------------------------------ draws

    function test_DrawWorker_RevertsWithoutWorkers() public {
        uint32 id = _register();
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.NoWorkers.selector, id));
        registry.drawWorkerAt(id, 1, block.number, address(0));
    }

    function test_DrawWorker_ProportionalToWeight() public {
        uint32 id = _register();
        address a = _addWorker("a", id, 100e18);
        address b = _addWorker("b", id, 300e18);
        // seed % total picks the point: [0,100e18) -> a, [100e18, 400e18) -> b
        assertEq(registry.drawWorkerAt(id, 0, block.number, address(0)), a);
        assertEq(registry.drawWorkerAt(id, 100e18 - 1, block.number, address(0)), a);
        assertEq(registry.drawWorkerAt(id, 100e18, block.number, address(0)), b);
        assertEq(registry.drawWorkerAt(id, 400e18 + 5, block.number, address(0)), a);
        uint256 hitsB;
        uint256[] memory seeds = new uint256[](400);
        for (uint256 i = 0; i < 400; ++i) {
            seeds[i] = uint256(keccak256(abi.encode(i)));
        }
        for (uint256 i = 0; i < 400; ++i) {
            if (registry.drawWorkerAt(id, seeds[i], block.number, address(0)) == b) ++hitsB;
        }
        // expected 300 of 400; 4 sigma ~ 35
        assertGt(hitsB, 265);
        assertLt(hitsB, 335);
    }

    function testFuzz_Weights_TrackStakeAndTrust(uint256 stakeAmt, uint256 trust) public {
        stakeAmt = bound(stakeAmt, MIN_WORKER_STAKE, 1_000_000e18);
        trust = bound(trust, 0, 1e18);
        uint32 id = _register();
        address w = _addWorker("w", id, stakeAmt);
        vm.prank(trustSetter);
        registry.setTrustWeight(w, trust);
        assertEq(registry.weightOf(id, w), stakeAmt * trust / 1e18);
        assertEq(registry.totalWeight(id), stakeAmt * trust / 1e18);
    }

    function test_SetListingBond_AdminOnly() public {
        vm.prank(admin);
        registry.setListingBond(5e18);
        assertEq(registry.listingBond(), 5e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), bytes32(0)
            )
        );
        registry.setListingBond(1);
    }
}
