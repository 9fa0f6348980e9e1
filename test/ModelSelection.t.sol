// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {console} from "forge-std/console.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {SettlementBase} from "./Settlement.t.sol";
import {ISettlement} from "../contracts/interfaces/ISettlement.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";
import {IModelRegistry} from "../contracts/interfaces/IModelRegistry.sol";
import {MerkleBatch} from "../contracts/libraries/MerkleBatch.sol";

/// @notice Natural selection of models: the epoch report's modelStatusHash is a Merkle root of
///         (modelId, status) leaves; anyone applies a leaf of the latest report to the ModelRegistry.
///         Probation models still take tasks, Delisted models do not.
abstract contract ModelStatusTrees is SettlementBase {
    uint8 internal constant ACTIVE = uint8(IModelRegistry.ModelStatus.Active);
    uint8 internal constant PROBATION = uint8(IModelRegistry.ModelStatus.Probation);
    uint8 internal constant DELISTED = uint8(IModelRegistry.ModelStatus.Delisted);

    function _statusLeaf(uint32 modelId, uint8 status) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(modelId, status))));
    }

    /// Leaves of (ids, statuses) sorted by ascending modelId, as protocol::powr::ModelStatusTree.
    function _statusLeaves(uint32[] memory ids, uint8[] memory statuses)
        internal
        pure
        returns (bytes32[] memory leaves)
    {
        for (uint256 i = 1; i < ids.length; ++i) {
            for (uint256 j = i; j > 0 && ids[j - 1] > ids[j]; --j) {
                (ids[j - 1], ids[j]) = (ids[j], ids[j - 1]);
                (statuses[j - 1], statuses[j]) = (statuses[j], statuses[j - 1]);
            }
        }
        leaves = new bytes32[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            leaves[i] = _statusLeaf(ids[i], statuses[i]);
        }
    }

    /// Proof of `leaves[index]` (siblings bottom-up, odd last node promoted).
    function _leafProof(bytes32[] memory leaves, uint256 index)
        internal
        pure
        returns (bytes32[] memory proof)
    {
        uint256 n = leaves.length;
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            level[i] = leaves[i];
        }
        bytes32[] memory buf = new bytes32[](32);
        uint256 len = 0;
        while (n > 1) {
            if ((index ^ 1) < n) buf[len++] = level[index ^ 1];
            uint256 half = n / 2;
            for (uint256 i = 0; i < half; ++i) {
                level[i] = MerkleBatch.hashPair(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) {
                level[half] = level[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
            index /= 2;
        }
        proof = new bytes32[](len);
        for (uint256 i = 0; i < len; ++i) {
            proof[i] = buf[i];
        }
    }

    function _statusReport(uint64 epoch, bytes32 statusRoot)
        internal
        pure
        returns (ISettlement.EpochReport memory)
    {
        return ISettlement.EpochReport(epoch, bytes32(0), bytes32(0), 0, statusRoot);
    }
}

contract ModelSelectionTest is ModelStatusTrees {
    uint32 internal modelA;
    uint32 internal modelB;
    uint32 internal modelC;
    address internal w1;

    // report trees kept in storage for the tests
    bytes32[] internal leaves0;
    bytes32[] internal leaves1;

    function setUp() public {
        _deploySettlement();
        _addValidators(4, MIN_VALIDATOR_STAKE);
        modelA = _registerModel(PRICE);
        modelB = _registerModel(PRICE);
        modelC = _registerModel(PRICE);
        w1 = _addWorker("w1", modelA, 1000e18);
        vm.startPrank(w1);
        registry.optIn(modelB);
        registry.optIn(modelC);
        vm.stopPrank();
        _fundUser(10_000e18);
    }

    function _status(uint32 modelId) internal view returns (uint8) {
        return registry.getModel(modelId).status;
    }

    /// Epoch 0: A and B go to Probation. Epoch 1: A is Delisted, B stays on Probation, C stays Active.
    function _postTwoReports() internal {
        uint32[] memory ids = new uint32[](2);
        uint8[] memory st = new uint8[](2);
        (ids[0], ids[1], st[0], st[1]) = (modelB, modelA, PROBATION, PROBATION);
        leaves0 = _statusLeaves(ids, st);
        _post(_statusReport(0, MerkleBatch.root(leaves0)));
        // leaves0 is sorted: [A, B]
        vm.expectEmit(address(settlement));
        emit ISettlement.ModelStatusApplied(0, modelA, PROBATION);
        vm.expectEmit(address(registry));
        emit IModelRegistry.ModelStatusChanged(modelA, PROBATION);
        settlement.applyModelStatus(0, modelA, PROBATION, _leafProof(leaves0, 0));
        settlement.applyModelStatus(0, modelB, PROBATION, _leafProof(leaves0, 1));
        assertEq(_status(modelA), PROBATION);
        assertEq(_status(modelB), PROBATION);
        assertEq(_status(modelC), ACTIVE);

        ids = new uint32[](3);
        st = new uint8[](3);
        (ids[0], ids[1], ids[2]) = (modelC, modelA, modelB);
        (st[0], st[1], st[2]) = (ACTIVE, DELISTED, PROBATION);
        leaves1 = _statusLeaves(ids, st); // [A Delisted, B Probation, C Active]
        _post(_statusReport(1, MerkleBatch.root(leaves1)));
        vm.expectEmit(address(settlement));
        emit ISettlement.ModelStatusApplied(1, modelA, DELISTED);
        settlement.applyModelStatus(1, modelA, DELISTED, _leafProof(leaves1, 0));
        settlement.applyModelStatus(1, modelB, PROBATION, _leafProof(leaves1, 1));
        settlement.applyModelStatus(1, modelC, ACTIVE, _leafProof(leaves1, 2));
    }

    function test_ApplyModelStatus_ActiveProbationDelisted_AcrossTwoReports() public {
        // Active models take tasks
        vm.prank(user);
        tm.submitTask(modelA, _input(1), PRICE);

        _postTwoReports();
        assertEq(_status(modelA), DELISTED);
        assertEq(_status(modelB), PROBATION);
        assertEq(_status(modelC), ACTIVE);

        // the delisted model takes no new tasks, single or batched
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.ModelNotActive.selector, modelA, DELISTED));
        vm.prank(user);
        tm.submitTask(modelA, _input(2), PRICE);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.ModelNotActive.selector, modelA, DELISTED));
        vm.prank(user);
        tm.submitTasks(modelA, _inputs(2), PRICE);
        // nor new workers
        address w2 = makeAddr("w2");
        _stake(w2, WORKER, 1000e18);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelNotActive.selector, modelA, DELISTED));
        vm.prank(w2);
        registry.optIn(modelA);

        // the Probation model still takes tasks (and is assigned as before)
        vm.prank(user);
        uint256 id = tm.submitTask(modelB, _input(3), PRICE);
        assertEq(tm.getTask(id).modelId, modelB);
        _assign(id, 1);
        assertEq(tm.getTask(id).worker, w1);
        vm.prank(user);
        tm.submitTasks(modelB, _inputs(3), PRICE);
        vm.prank(user);
        tm.submitTask(modelC, _input(4), PRICE);
        assertEq(tm.taskCount(), 6);
    }

    function test_ApplyModelStatus_TaskOfDelistedModelStillSettles() public {
        vm.prank(user);
        uint256 id = tm.submitTask(modelA, _input(1), PRICE);
        _assign(id, 1);
        _commit(id, 0);
        _postTwoReports();
        // already-running work of a delisted model is committed, rated and paid as usual
        vm.prank(user);
        tm.rateTask(id, 5);
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        tm.finalize(id);
        assertEq(tm.getTask(id).status, uint8(ITaskManager.TaskStatus.Finalized));
        assertGt(tm.payoutOf(developer), 0, "developer royalty of the finalized call");
    }

    function test_ApplyModelStatus_RevertsWhen_StaleEpoch() public {
        _postTwoReports();
        // epoch 0's (valid) leaf for B cannot be replayed once epoch 1 is reported
        bytes32[] memory proof = _leafProof(leaves0, 1);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.StaleModelStatusProof.selector, uint64(0), uint64(1))
        );
        settlement.applyModelStatus(0, modelB, PROBATION, proof);
        // nor would epoch 0's Probation undo epoch 1's Delisted
        proof = _leafProof(leaves0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.StaleModelStatusProof.selector, uint64(0), uint64(1))
        );
        settlement.applyModelStatus(0, modelA, PROBATION, proof);
        assertEq(_status(modelA), DELISTED);
    }

    function test_ApplyModelStatus_RevertsWhen_WrongProof() public {
        _postTwoReports();
        bytes32[] memory proofA = _leafProof(leaves1, 0);
        // right proof, wrong status (e.g. trying to reinstate the delisted model)
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InvalidModelStatusProof.selector, uint64(1), modelA, ACTIVE)
        );
        settlement.applyModelStatus(1, modelA, ACTIVE, proofA);
        // right status, another model's id
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InvalidModelStatusProof.selector, uint64(1), modelC, DELISTED)
        );
        settlement.applyModelStatus(1, modelC, DELISTED, proofA);
        // a sibling swapped for garbage
        proofA[0] = keccak256("garbage");
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InvalidModelStatusProof.selector, uint64(1), modelA, DELISTED)
        );
        settlement.applyModelStatus(1, modelA, DELISTED, proofA);
        // no proof at all (only a one-leaf tree has an empty proof)
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InvalidModelStatusProof.selector, uint64(1), modelB, PROBATION)
        );
        settlement.applyModelStatus(1, modelB, PROBATION, new bytes32[](0));
        assertEq(_status(modelA), DELISTED);
        assertEq(_status(modelC), ACTIVE);
    }

    function test_ApplyModelStatus_RevertsWhen_ReportHasNoChanges() public {
        _post(_statusReport(0, bytes32(0)));
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InvalidModelStatusProof.selector, uint64(0), modelA, DELISTED)
        );
        settlement.applyModelStatus(0, modelA, DELISTED, new bytes32[](0));
        assertEq(_status(modelA), ACTIVE);
    }

    function test_ApplyModelStatus_RevertsWhen_EpochNotReported() public {
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochNotReported.selector, uint64(0)));
        settlement.applyModelStatus(0, modelA, DELISTED, new bytes32[](0));
        _post(_statusReport(0, _statusLeaf(modelA, PROBATION)));
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochNotReported.selector, uint64(5)));
        settlement.applyModelStatus(5, modelA, PROBATION, new bytes32[](0));
    }

    function test_ApplyModelStatus_SingleLeafTreeAndIdempotent() public {
        _post(_statusReport(0, _statusLeaf(modelC, DELISTED)));
        address anyone = makeAddr("anyone");
        vm.prank(anyone);
        settlement.applyModelStatus(0, modelC, DELISTED, new bytes32[](0));
        assertEq(_status(modelC), DELISTED);
        // applying the same leaf again changes nothing
        settlement.applyModelStatus(0, modelC, DELISTED, new bytes32[](0));
        assertEq(_status(modelC), DELISTED);
    }

    function test_ApplyModelStatus_RegistryRejectsUnknownModelAndStatus() public {
        _post(_statusReport(0, _statusLeaf(99, PROBATION)));
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.UnknownModel.selector, uint32(99)));
        settlement.applyModelStatus(0, 99, PROBATION, new bytes32[](0));
        _post(_statusReport(1, _statusLeaf(modelA, 3)));
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidModel.selector, "unknown status"));
        settlement.applyModelStatus(1, modelA, 3, new bytes32[](0));
    }

    function test_ApplyModelStatus_NeedsStatusRole() public {
        bytes32 role = registry.STATUS_ROLE();
        assertTrue(registry.hasRole(role, address(settlement)));
        vm.prank(admin);
        registry.revokeRole(role, address(settlement));
        _post(_statusReport(0, _statusLeaf(modelA, DELISTED)));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(settlement), role
            )
        );
        settlement.applyModelStatus(0, modelA, DELISTED, new bytes32[](0));
    }

    /// Root and proofs computed by protocol::powr::ModelStatusTree
    /// (model_status_vectors::vectors_shared_with_model_selection_t_sol) for
    /// {(1, Probation), (2, Delisted), (3, Active)}; models 1..3 are A, B, C.
    function test_RustVectors_ModelStatusApplies() public {
        assertEq(
            _statusLeaf(1, PROBATION), 0x66b32740ad8041bcc3b909c72d7e1afe60094ec55e3cde329b4b3a28501d826c
        );
        bytes32 root = 0x6ab4118f9dee52d1a6f259079e9e4400f014b1593af5676ccde0d5127132beea;
        uint32[] memory ids = new uint32[](3);
        uint8[] memory st = new uint8[](3);
        (ids[0], ids[1], ids[2], st[0], st[1], st[2]) = (3, 1, 2, ACTIVE, PROBATION, DELISTED);
        assertEq(MerkleBatch.root(_statusLeaves(ids, st)), root, "Solidity tree == Rust tree");
        _post(_statusReport(0, root));

        bytes32[] memory p1 = new bytes32[](2);
        p1[0] = 0xd70731c4fc4bf9cd8fc2be4d898bd67fd357eb0135035bf4500364b4c42c4fa5;
        p1[1] = 0x048605503187722f63911ca26b8cca1d0a2afc10509c8be7f963371fec52b188;
        settlement.applyModelStatus(0, 1, PROBATION, p1);
        bytes32[] memory p2 = new bytes32[](2);
        p2[0] = 0x66b32740ad8041bcc3b909c72d7e1afe60094ec55e3cde329b4b3a28501d826c;
        p2[1] = 0x048605503187722f63911ca26b8cca1d0a2afc10509c8be7f963371fec52b188;
        settlement.applyModelStatus(0, 2, DELISTED, p2);
        bytes32[] memory p3 = new bytes32[](1);
        p3[0] = 0x187f03e04350d550bdb6dc4f254c9c39010e13105af2211afe76d9b718c132c3;
        settlement.applyModelStatus(0, 3, ACTIVE, p3);
        assertEq(_status(1), PROBATION);
        assertEq(_status(2), DELISTED);
        assertEq(_status(3), ACTIVE);
    }
}

/// @notice Gas of applyModelStatus (own transaction, isolate).
contract ModelSelectionGasTest is ModelStatusTrees {
    /// forge-config: default.isolate = true
    function test_Gas_ApplyModelStatus() public {
        _deploySettlement();
        _addValidators(1, MIN_VALIDATOR_STAKE);
        uint32 n = 16;
        uint32[] memory ids = new uint32[](n);
        uint8[] memory st = new uint8[](n);
        for (uint32 i = 0; i < n; ++i) {
            ids[i] = _registerModel(PRICE);
            st[i] = i % 2 == 0 ? 1 : 2;
        }
        bytes32[] memory leaves = _statusLeaves(ids, st);
        bytes32[] memory proof = _leafProof(leaves, 5);
        _post(_statusReport(0, MerkleBatch.root(leaves))); // root() overwrites `leaves`
        vm.cool(address(settlement));
        vm.cool(address(registry));
        uint256 g = gasleft();
        settlement.applyModelStatus(0, ids[5], st[5], proof);
        g -= gasleft();
        console.log("applyModelStatus (16-leaf tree, 4-hash proof) (tx):", g);
        assertEq(registry.getModel(ids[5]).status, st[5]);
        assertLt(g, 80_000);
    }
}
