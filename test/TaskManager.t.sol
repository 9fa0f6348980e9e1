// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Vm} from "forge-std/Test.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Fixture} from "./utils/Fixture.sol";
import {TaskManager} from "../contracts/TaskManager.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";
import {IStaking} from "../contracts/interfaces/IStaking.sol";
import {MerkleBatch} from "../contracts/libraries/MerkleBatch.sol";

contract TaskManagerTest is Fixture {
    uint32 internal modelId;
    address internal w1;

    function setUp() public {
        _deploy();
        modelId = _registerModel(PRICE);
        w1 = _addWorker("w1", modelId, 1000e18);
        _fundUser(10_000e18);
    }

    function _status(uint256 taskId) internal view returns (uint8) {
        return tm.getTask(taskId).status;
    }

    function _balanceInvariant(address[] memory accounts) internal view {
        uint256 sum;
        for (uint256 i = 0; i < accounts.length; ++i) {
            sum += tm.payoutOf(accounts[i]);
        }
        assertEq(token.balanceOf(address(tm)), tm.escrowed() + sum, "balance == escrowed + payouts");
    }

    function _parties() internal view returns (address[] memory a) {
        a = new address[](5);
        (a[0], a[1], a[2], a[3], a[4]) = (developer, w1, user, treasury, validatorPool);
    }

    function _one(uint256 id) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](1);
        ids[0] = id;
    }

    /// The logs of `logs` emitted by the TaskManager.
    function _tmLogs(Vm.Log[] memory logs) internal view returns (Vm.Log[] memory out) {
        out = new Vm.Log[](logs.length);
        uint256 k;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(tm)) out[k++] = logs[i];
        }
        assembly {
            mstore(out, k)
        }
    }

    // ------------------------------------------------------------ submit

    /// Since H-3 a submission only escrows and records the task (Drawing, anchored on its block, no worker,
    /// only TaskSubmitted); assignTasks draws the worker from the second block after and emits TaskAssigned.
    function test_SubmitTask_EscrowsPriceDrawsLaterAndEmits() public {
        uint256 before = token.balanceOf(user);
        bytes memory input = hex"010203";
        uint256 anchor = block.number;
        vm.recordLogs();
        vm.prank(user);
        uint256 id = tm.submitTask(modelId, input, 5 * PRICE);
        Vm.Log[] memory logs = _tmLogs(vm.getRecordedLogs());
        assertEq(logs.length, 1, "the submission emits TaskSubmitted only (no TaskAssigned)");
        assertEq(logs[0].topics[0], ITaskManager.TaskSubmitted.selector);
        assertEq(logs[0].topics[1], bytes32(uint256(1)));
        assertEq(logs[0].topics[2], bytes32(uint256(uint160(user))));
        assertEq(logs[0].topics[3], bytes32(uint256(modelId)));
        assertEq(logs[0].data, abi.encode(PRICE, input));
        assertEq(id, 1);
        assertEq(token.balanceOf(user), before - PRICE, "charged the price, not maxFee");
        assertEq(tm.escrowed(), PRICE);
        assertEq(tm.taskCount(), 1);
        ITaskManager.TaskView memory t = tm.getTask(1);
        assertEq(t.submitter, user);
        assertEq(t.modelId, modelId);
        assertEq(t.fee, PRICE);
        assertEq(t.worker, address(0), "no worker at submission");
        assertEq(t.status, uint8(ITaskManager.TaskStatus.Drawing));
        assertEq(t.drawBlock, anchor, "anchored on the submission block");
        assertEq(t.deadline, 0);
        assertEq(t.latency, 0);
        assertEq(t.submission, 1);
        _balanceInvariant(_parties());

        // the draw needs the hash of the block after the anchor: not in the anchor block, nor the next
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));
        vm.roll(anchor + 1);
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));

        vm.roll(anchor + 2);
        vm.warp(block.timestamp + 24);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskAssigned(1, w1, uint64(block.timestamp + RESPONSE_WINDOW));
        assertEq(tm.assignTasks(_one(id)), 1);
        t = tm.getTask(1);
        assertEq(t.worker, w1);
        assertEq(t.status, uint8(ITaskManager.TaskStatus.Assigned));
        assertEq(t.deadline, block.timestamp + RESPONSE_WINDOW, "response window starts at assignment");
        assertEq(t.drawBlock, 0);
        assertEq(t.latency, 0);
        assertEq(tm.escrowed(), PRICE);
        _balanceInvariant(_parties());
    }

    function test_SubmitTasks_OneTransferForAll() public {
        uint256 before = token.balanceOf(user);
        vm.prank(user);
        uint256 first = tm.submitTasks(modelId, _inputs(10), PRICE);
        assertEq(first, 1);
        assertEq(tm.taskCount(), 10);
        assertEq(token.balanceOf(user), before - 10 * PRICE);
        assertEq(tm.escrowed(), 10 * PRICE);
        for (uint256 i = 1; i <= 10; ++i) {
            assertEq(tm.getTask(i).status, uint8(ITaskManager.TaskStatus.Drawing));
            assertEq(tm.getTask(i).drawBlock, block.number);
        }
        _assign(1, 10);
        for (uint256 i = 1; i <= 10; ++i) {
            assertEq(tm.getTask(i).worker, w1);
            assertEq(tm.getTask(i).submission, 1);
        }
        vm.prank(user);
        assertEq(tm.submitTask(modelId, hex"01", PRICE), 11);
        assertEq(tm.getTask(11).submission, 2);
    }

    function test_Submit_FreeModelMovesNoTokens() public {
        vm.prank(developer);
        registry.setPrice(modelId, 0);
        uint256 before = token.balanceOf(user);
        vm.prank(user);
        tm.submitTask(modelId, hex"01", 0);
        assertEq(token.balanceOf(user), before);
        assertEq(tm.escrowed(), 0);
    }

    function test_Submit_SpreadsOverWorkersByWeight() public {
        address w2 = _addWorker("w2", modelId, 3000e18);
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(64), PRICE);
        _assign(1, 64);
        uint256 toW2;
        for (uint256 i = 1; i <= 64; ++i) {
            address w = tm.getTask(i).worker;
            assertTrue(w == w1 || w == w2);
            if (w == w2) ++toW2;
        }
        assertGt(toW2, 32, "the heavier worker gets most tasks");
        assertLt(toW2, 64, "the lighter worker gets some");
    }

    /// A worker that is weighted at the anchor block but not eligible when assignTasks runs is redrawn.
    function test_Assign_SkipsIneligibleWorkerStillWeighted() public {
        address w2 = _addWorker("w2", modelId, 100e18);
        uint256 anchor = block.number;
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(32), PRICE);
        // raising the minimum makes w2 ineligible; its weight stays until someone syncs it
        vm.prank(admin);
        staking.setMinStake(WORKER, 500e18);
        assertGt(registry.weightOf(modelId, w2), 0);
        vm.roll(anchor + 2);
        // the first draw of some tasks lands on w2, so the skip is exercised
        uint256 firstDrawsOnW2;
        for (uint256 i = 1; i <= 32; ++i) {
            uint256 seed = uint256(keccak256(abi.encode(blockhash(anchor + 1), i)));
            if (registry.drawWorkerAt(modelId, seed, anchor, address(0)) == w2) ++firstDrawsOnW2;
        }
        assertGt(firstDrawsOnW2, 0, "no first draw hit the ineligible worker");
        uint256[] memory ids = new uint256[](32);
        for (uint256 i = 0; i < 32; ++i) {
            ids[i] = i + 1;
        }
        assertEq(tm.assignTasks(ids), 32);
        for (uint256 i = 1; i <= 32; ++i) {
            assertEq(tm.getTask(i).worker, w1);
            assertEq(tm.getTask(i).status, uint8(ITaskManager.TaskStatus.Assigned));
        }
    }

    function test_Submit_RevertsUnknownModel() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownModel.selector, uint32(99)));
        vm.prank(user);
        tm.submitTask(99, hex"01", PRICE);
    }

    function test_Submit_RevertsModelNotActive_WhenDelisted() public {
        vm.prank(admin);
        registry.setStatus(modelId, 2);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.ModelNotActive.selector, modelId, uint8(2)));
        vm.prank(user);
        tm.submitTask(modelId, hex"01", PRICE);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.ModelNotActive.selector, modelId, uint8(2)));
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(2), PRICE);
    }

    function test_Submit_ProbationModelStillTakesTasks() public {
        vm.prank(admin);
        registry.setStatus(modelId, 1);
        vm.prank(user);
        uint256 id = tm.submitTask(modelId, hex"01", PRICE);
        _assign(id, 1);
        assertEq(tm.getTask(id).worker, w1);
        vm.prank(user);
        uint256 first = tm.submitTasks(modelId, _inputs(2), PRICE);
        assertEq(first, id + 1);
        assertEq(tm.taskCount(), 3);
    }

    function test_Submit_RevertsFeeTooLow() public {
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.FeeTooLow.selector, modelId, uint256(PRICE), PRICE - 1)
        );
        vm.prank(user);
        tm.submitTask(modelId, hex"01", PRICE - 1);
    }

    function test_Submit_RevertsInputTooLargeAndEmpty() public {
        bytes memory big = new bytes(65_537);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.InputTooLarge.selector, uint256(65_537), uint256(65_536))
        );
        vm.prank(user);
        tm.submitTask(modelId, big, PRICE);
        vm.expectRevert(ITaskManager.EmptyInput.selector);
        vm.prank(user);
        tm.submitTask(modelId, "", PRICE);
        bytes[] memory inputs = _inputs(3);
        inputs[2] = "";
        vm.expectRevert(ITaskManager.EmptyInput.selector);
        vm.prank(user);
        tm.submitTasks(modelId, inputs, PRICE);
    }

    function test_SubmitTasks_RevertsEmptyAndTooLarge() public {
        vm.expectRevert(ITaskManager.EmptyBatch.selector);
        vm.prank(user);
        tm.submitTasks(modelId, new bytes[](0), PRICE);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.BatchTooLarge.selector, uint256(65), uint256(64)));
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(65), PRICE);
    }

    function test_Submit_RevertsNoEligibleWorker() public {
        vm.prank(w1);
        registry.optOut(modelId);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.NoEligibleWorker.selector, modelId));
        vm.prank(user);
        tm.submitTask(modelId, hex"01", PRICE);
    }

    /// The only worker is still weighted but not eligible: the submission is taken (the model has weight)
    /// and assignTasks refunds it in full, since nobody eligible can be drawn. Once the worker's weight is
    /// synced to 0, submissions fail fast again.
    function test_Submit_OnlyWorkerIneligible_RefundedAtAssign() public {
        vm.prank(admin);
        staking.setMinStake(WORKER, 5000e18);
        assertGt(registry.totalWeight(modelId), 0);
        vm.prank(user);
        uint256 id = tm.submitTask(modelId, hex"01", PRICE);
        assertEq(tm.getTask(id).status, uint8(ITaskManager.TaskStatus.Drawing));
        assertEq(tm.escrowed(), PRICE);
        vm.roll(block.number + 2);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskRefunded(id, user, PRICE);
        assertEq(tm.assignTasks(_one(id)), 1, "a refund counts as handled");
        ITaskManager.TaskView memory t = tm.getTask(id);
        assertEq(t.status, uint8(ITaskManager.TaskStatus.Refunded));
        assertEq(t.worker, address(0));
        assertEq(tm.payoutOf(user), PRICE);
        assertEq(tm.escrowed(), 0);
        _balanceInvariant(_parties());

        registry.syncWorker(w1);
        assertEq(registry.totalWeight(modelId), 0);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.NoEligibleWorker.selector, modelId));
        vm.prank(user);
        tm.submitTask(modelId, hex"01", PRICE);
    }

    function test_Submit_RevertsWithoutAllowance() public {
        address stranger = makeAddr("stranger");
        _fund(stranger, 10e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(tm), 0, uint256(PRICE)
            )
        );
        vm.prank(stranger);
        tm.submitTask(modelId, hex"01", PRICE);
    }

    // ------------------------------------------------------------ commit

    function test_Commit_RecordsResultRootLatencyAndWindow() public {
        uint256 id = _submit(modelId);
        vm.warp(block.timestamp + 42);
        bytes32 h = keccak256("out");
        bytes32 leaf = MerkleBatch.leaf(id, h, 0);
        uint256[] memory ids = new uint256[](1);
        ids[0] = id;
        bytes32[] memory hashes = new bytes32[](1);
        hashes[0] = h;
        bytes[] memory outputs = new bytes[](1);
        outputs[0] = hex"beef";
        vm.expectEmit(address(tm));
        emit ITaskManager.ResultsCommitted(1, w1, leaf, ids, hashes, new uint16[](1), outputs);
        vm.prank(w1);
        tm.commit(id, h, 0, hex"beef");
        ITaskManager.TaskView memory t = tm.getTask(id);
        assertEq(t.status, uint8(ITaskManager.TaskStatus.Committed));
        assertEq(t.latency, 42);
        assertEq(t.deadline, block.timestamp + CHALLENGE_WINDOW);
        assertEq(tm.batchRoot(1), leaf);
    }

    function test_Commit_FailureCodeMarksFailed() public {
        uint256 id = _submit(modelId);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 3, "");
        assertEq(_status(id), uint8(ITaskManager.TaskStatus.Failed));
    }

    function test_Commit_Reverts() public {
        uint256 id = _submit(modelId);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, uint256(9)));
        vm.prank(w1);
        tm.commit(9, bytes32(0), 0, "");

        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.NotAssignedWorker.selector, id, address(this), w1)
        );
        tm.commit(id, bytes32(0), 0, "");

        uint64 deadline = uint64(block.timestamp + RESPONSE_WINDOW);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.DeadlinePassed.selector, id, deadline));
        vm.prank(w1);
        tm.commit(id, bytes32(0), 0, "");

        uint256 id2 = _submit(modelId);
        vm.prank(w1);
        tm.commit(id2, bytes32(0), 0, "");
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, id2, uint8(2)));
        vm.prank(w1);
        tm.commit(id2, bytes32(0), 0, "");
    }

    function test_Commit_AtDeadlineIsOnTime() public {
        uint256 id = _submit(modelId);
        vm.warp(block.timestamp + RESPONSE_WINDOW);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 0, "");
        assertEq(tm.getTask(id).latency, RESPONSE_WINDOW);
    }

    function test_CommitBatch_RootProvesEveryTask() public {
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(5), PRICE);
        _assign(1, 5);
        uint256[] memory ids = new uint256[](5);
        bytes32[] memory hashes = new bytes32[](5);
        uint16[] memory codes = new uint16[](5);
        bytes32[] memory leaves = new bytes32[](5);
        for (uint256 i = 0; i < 5; ++i) {
            ids[i] = i + 1;
            hashes[i] = keccak256(abi.encode(i));
            codes[i] = i == 4 ? 2 : 0;
            leaves[i] = MerkleBatch.leaf(ids[i], hashes[i], codes[i]);
        }
        vm.prank(w1);
        uint256 batchId = tm.commitBatch(ids, hashes, codes, new bytes[](5));
        assertEq(batchId, 1);
        bytes32 root = tm.batchRoot(1);
        // tree: ((l0,l1),(l2,l3)), l4 promoted
        bytes32 n01 = MerkleBatch.hashPair(leaves[0], leaves[1]);
        bytes32 n23 = MerkleBatch.hashPair(leaves[2], leaves[3]);
        assertEq(root, MerkleBatch.hashPair(MerkleBatch.hashPair(n01, n23), leaves[4]));
        bytes32[] memory proof = new bytes32[](3);
        (proof[0], proof[1], proof[2]) = (leaves[3], n01, leaves[4]);
        assertTrue(MerkleProof.verify(proof, root, leaves[2]));
        assertEq(_status(5), uint8(ITaskManager.TaskStatus.Failed));
        assertEq(_status(1), uint8(ITaskManager.TaskStatus.Committed));
    }

    function test_CommitBatch_Reverts() public {
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(2), PRICE);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (1, 2);
        // not drawn yet: nobody can commit a Drawing task
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, uint256(1), uint8(7)));
        vm.prank(w1);
        tm.commitBatch(ids, new bytes32[](2), new uint16[](2), new bytes[](2));
        _assign(1, 2);
        vm.startPrank(w1);
        vm.expectRevert(ITaskManager.EmptyBatch.selector);
        tm.commitBatch(new uint256[](0), new bytes32[](0), new uint16[](0), new bytes[](0));
        vm.expectRevert(ITaskManager.LengthMismatch.selector);
        tm.commitBatch(ids, new bytes32[](1), new uint16[](2), new bytes[](2));
        vm.expectRevert(ITaskManager.LengthMismatch.selector);
        tm.commitBatch(ids, new bytes32[](2), new uint16[](2), new bytes[](1));
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.BatchTooLarge.selector, uint256(65), uint256(64)));
        tm.commitBatch(new uint256[](65), new bytes32[](65), new uint16[](65), new bytes[](65));
        // a duplicate id in one batch: the second sees the task already committed
        (ids[0], ids[1]) = (1, 1);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, uint256(1), uint8(2)));
        tm.commitBatch(ids, new bytes32[](2), new uint16[](2), new bytes[](2));
        vm.stopPrank();
    }

    // ------------------------------------------------------------ reassign

    /// reassign jails the worker that missed and puts the task back to Drawing, anchored on the current
    /// block with the missed worker skipped; assignTasks draws the replacement two blocks later.
    function test_Reassign_JailsAndRedrawsAnotherWorker() public {
        address w2 = _addWorker("w2", modelId, 1000e18);
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(8), PRICE);
        _assign(1, 8);
        uint256 id = 1;
        address first = tm.getTask(id).worker;
        address other = first == w1 ? w2 : w1;
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        uint256 anchor = block.number;
        vm.recordLogs();
        tm.reassign(id);
        Vm.Log[] memory logs = _tmLogs(vm.getRecordedLogs());
        assertEq(logs.length, 2, "TaskMissed and AssignmentDeferred, no TaskAssigned");
        assertEq(logs[0].topics[0], ITaskManager.TaskMissed.selector);
        assertEq(logs[0].topics[1], bytes32(id));
        assertEq(logs[0].topics[2], bytes32(uint256(uint160(first))));
        assertEq(logs[1].topics[0], ITaskManager.AssignmentDeferred.selector);
        assertEq(logs[1].topics[1], bytes32(id));
        assertEq(logs[1].data, abi.encode(uint64(anchor)));
        ITaskManager.TaskView memory t = tm.getTask(id);
        assertEq(t.status, uint8(ITaskManager.TaskStatus.Drawing));
        assertEq(t.drawBlock, anchor, "re-anchored on the reassign block");
        assertEq(t.worker, address(0));
        assertEq(t.deadline, 0);
        assertEq(staking.jailedUntil(first), block.timestamp + JAIL);
        assertFalse(staking.isEligible(first, WORKER));
        assertEq(registry.weightOf(modelId, first), 0, "jailed worker leaves the draw");
        // the missed worker cannot commit any more
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, id, uint8(7)));
        vm.prank(first);
        tm.commit(id, bytes32(0), 0, "");
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));

        vm.roll(anchor + 2);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskAssigned(id, other, uint64(block.timestamp + RESPONSE_WINDOW));
        tm.assignTasks(_one(id));
        assertEq(tm.getTask(id).worker, other);
        assertEq(_status(id), uint8(ITaskManager.TaskStatus.Assigned));
        // the new worker can commit
        vm.prank(other);
        tm.commit(id, bytes32(0), 0, "");
        assertEq(tm.getTask(id).latency, 0);
        assertEq(_status(id), uint8(ITaskManager.TaskStatus.Committed));
    }

    /// With nobody else to take it the task is not refunded by reassign itself but by the next assignTasks.
    function test_Reassign_RefundsAtAssignWhenNoOtherWorker() public {
        uint256 id = _submit(modelId);
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskMissed(id, w1);
        vm.expectEmit(address(tm));
        emit ITaskManager.AssignmentDeferred(id, uint64(block.number));
        tm.reassign(id);
        assertEq(_status(id), uint8(ITaskManager.TaskStatus.Drawing));
        assertEq(tm.payoutOf(user), 0);
        assertEq(tm.escrowed(), PRICE, "still escrowed until the redraw");
        vm.roll(block.number + 2);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskRefunded(id, user, PRICE);
        assertEq(tm.assignTasks(_one(id)), 1);
        assertEq(_status(id), uint8(ITaskManager.TaskStatus.Refunded));
        assertEq(tm.payoutOf(user), PRICE);
        assertEq(tm.escrowed(), 0);
        _balanceInvariant(_parties());
        // refunded once: it is no longer drawable
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));
        uint256 before = token.balanceOf(user);
        vm.prank(user);
        tm.withdrawPayout();
        assertEq(token.balanceOf(user), before + PRICE);
    }

    function test_Reassign_Reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, uint256(1)));
        tm.reassign(1);
        // a Drawing task has no worker and no deadline to miss
        vm.prank(user);
        uint256 drawing = tm.submitTask(modelId, hex"01", PRICE);
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, drawing, uint8(7)));
        tm.reassign(drawing);
        uint256 id = _submit(modelId);
        uint64 deadline = uint64(block.timestamp + RESPONSE_WINDOW);
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.DeadlineNotPassed.selector, id, deadline));
        tm.reassign(id);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 0, "");
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, id, uint8(2)));
        tm.reassign(id);
    }

    // ------------------------------------------------------------ finalize

    function test_Finalize_SplitsFeeToPayouts() public {
        uint256 id = _submit(modelId);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 0, "");
        uint64 end = uint64(block.timestamp + CHALLENGE_WINDOW);
        vm.warp(end);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.ChallengeWindowOpen.selector, id, end));
        tm.finalize(id);
        vm.warp(end + 1);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskFinalized(
            id, w1, modelId, 0, 7, 1_000_000, 0, 0.1e18, 0.75e18, 0.1e18, 0.05e18, 0
        );
        tm.finalize(id);
        assertEq(_status(id), uint8(ITaskManager.TaskStatus.Finalized));
        assertEq(tm.payoutOf(developer), 0.1e18);
        assertEq(tm.payoutOf(w1), 0.75e18);
        assertEq(tm.payoutOf(validatorPool), 0.1e18);
        assertEq(tm.payoutOf(treasury), 0.05e18);
        assertEq(tm.escrowed(), 0);
        _balanceInvariant(_parties());

        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, id, uint8(4)));
        tm.finalize(id);
    }

    /// An input fault (codes 1-3: any re-execution fails the same way) pays the worker its processing share.
    function test_Finalize_FailedTaskRefundsMostOfFee() public {
        uint256 id = _submit(modelId);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 2, "");
        assertEq(tm.getTask(id).code, 2, "the committed code is kept");
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskFinalized(id, w1, modelId, 1, 7, 1_000_000, 0, 0, 0.1e18, 0, 0, 0.9e18);
        tm.finalize(id);
        assertEq(tm.payoutOf(w1), 0.1e18);
        assertEq(tm.payoutOf(user), 0.9e18);
        assertEq(tm.payoutOf(developer), 0);
        assertEq(tm.getTask(id).code, 2);
        _balanceInvariant(_parties());
    }

    /// A worker-side failure (code 4 and above: too large for this worker, model unavailable, runtime...)
    /// refunds the whole fee: the worker could not serve the task and is paid nothing.
    function test_Finalize_WorkerSideFailureRefundsAll() public {
        uint256 id = _submit(modelId);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 5, "");
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskFinalized(id, w1, modelId, 1, 7, 1_000_000, 0, 0, 0, 0, 0, 1e18);
        tm.finalize(id);
        assertEq(tm.payoutOf(w1), 0);
        assertEq(tm.payoutOf(user), 1e18);
        _balanceInvariant(_parties());
    }

    function test_Finalize_RevertsUnknownAndAssigned() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, uint256(3)));
        tm.finalize(3);
        vm.prank(user);
        uint256 drawing = tm.submitTask(modelId, hex"01", PRICE);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, drawing, uint8(7)));
        tm.finalize(drawing);
        uint256 id = _submit(modelId);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, id, uint8(1)));
        tm.finalize(id);
    }

    function test_FinalizeBatch_AggregatesAcrossWorkersAndSubmissions() public {
        address w2 = _addWorker("w2", modelId, 1000e18);
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(20), PRICE);
        vm.prank(user);
        tm.submitTasks(modelId, _inputs(5), PRICE);
        _assign(1, 25);
        uint256[] memory ids = new uint256[](25);
        for (uint256 i = 0; i < 25; ++i) {
            ids[i] = i + 1;
            address w = tm.getTask(i + 1).worker;
            vm.prank(w);
            tm.commit(i + 1, bytes32(0), i % 5 == 0 ? 1 : 0, "");
        }
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        tm.finalizeBatch(ids);
        // 5 failed (ids 1,6,11,16,21), 20 committed
        uint256 failedToWorkers = 5 * 0.1e18;
        assertEq(tm.payoutOf(developer), 20 * 0.1e18);
        assertEq(tm.payoutOf(validatorPool), 20 * 0.1e18);
        assertEq(tm.payoutOf(treasury), 20 * 0.05e18);
        assertEq(tm.payoutOf(user), 5 * 0.9e18);
        assertEq(tm.payoutOf(w1) + tm.payoutOf(w2), 20 * 0.75e18 + failedToWorkers);
        assertEq(tm.escrowed(), 0);
        address[] memory parties = new address[](6);
        (parties[0], parties[1], parties[2], parties[3], parties[4], parties[5]) =
        (developer, w1, w2, user, treasury, validatorPool);
        _balanceInvariant(parties);
    }

    function test_FinalizeBatch_Reverts() public {
        vm.expectRevert(ITaskManager.EmptyBatch.selector);
        tm.finalizeBatch(new uint256[](0));
        uint256 id = _submit(modelId);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 0, "");
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (id, id);
        // a repeated id is finalized (and paid) once: the second is skipped as already finalized
        tm.finalizeBatch(ids);
        assertEq(
            tm.payoutOf(w1) + tm.payoutOf(developer) + tm.payoutOf(validatorPool) + tm.payoutOf(treasury),
            PRICE
        );
        // nothing left to finalize: the batch reverts
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, id, uint8(4)));
        tm.finalizeBatch(ids);
    }

    function testFuzz_Finalize_SplitConservesFee(uint96 price, uint16 dev, uint16 val, uint16 proto) public {
        price = uint96(bound(price, 0, 1_000e18));
        dev = uint16(bound(dev, 0, 10_000));
        val = uint16(bound(val, 0, 10_000 - dev));
        proto = uint16(bound(proto, 0, 10_000 - dev - val));
        uint16 workerBps = 10_000 - dev - val - proto;
        vm.prank(admin);
        tm.setFeeSplit(dev, workerBps, val, proto);
        vm.prank(developer);
        registry.setPrice(modelId, price);
        vm.prank(user);
        uint256 id = tm.submitTask(modelId, hex"01", price);
        _assign(id, 1);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 0, "");
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        tm.finalize(id);
        uint256 paid =
            tm.payoutOf(developer) + tm.payoutOf(w1) + tm.payoutOf(validatorPool) + tm.payoutOf(treasury);
        assertEq(paid, price, "every wei of the fee is credited once");
        assertEq(tm.payoutOf(developer), uint256(price) * dev / 10_000);
        assertGe(tm.payoutOf(w1), uint256(price) * workerBps / 10_000, "dust goes to the worker");
        _balanceInvariant(_parties());
    }

    function testFuzz_Timing_CommitAndFinalize(uint256 commitAfter, uint256 finalizeAfter) public {
        commitAfter = bound(commitAfter, 0, 2 * RESPONSE_WINDOW);
        finalizeAfter = bound(finalizeAfter, 0, 2 * CHALLENGE_WINDOW);
        uint256 id = _submit(modelId);
        uint256 t0 = block.timestamp;
        vm.warp(t0 + commitAfter);
        vm.prank(w1);
        if (commitAfter > RESPONSE_WINDOW) {
            vm.expectRevert(
                abi.encodeWithSelector(ITaskManager.DeadlinePassed.selector, id, uint64(t0 + RESPONSE_WINDOW))
            );
            tm.commit(id, bytes32(0), 0, "");
            return;
        }
        tm.commit(id, bytes32(0), 0, "");
        assertEq(tm.getTask(id).latency, commitAfter);
        uint256 end = t0 + commitAfter + CHALLENGE_WINDOW;
        vm.warp(t0 + commitAfter + finalizeAfter);
        if (finalizeAfter <= CHALLENGE_WINDOW) {
            vm.expectRevert(
                abi.encodeWithSelector(ITaskManager.ChallengeWindowOpen.selector, id, uint64(end))
            );
        }
        tm.finalize(id);
    }

    // ------------------------------------------------------------ payouts

    function test_WithdrawPayout_PaysAndZeroes() public {
        uint256 id = _submit(modelId);
        vm.prank(w1);
        tm.commit(id, bytes32(0), 0, "");
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        tm.finalize(id);
        uint256 before = token.balanceOf(w1);
        vm.expectEmit(address(tm));
        emit ITaskManager.PayoutWithdrawn(w1, 0.75e18);
        vm.prank(w1);
        assertEq(tm.withdrawPayout(), 0.75e18);
        assertEq(token.balanceOf(w1), before + 0.75e18);
        assertEq(tm.payoutOf(w1), 0);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.NothingToWithdraw.selector, w1));
        vm.prank(w1);
        tm.withdrawPayout();
        _balanceInvariant(_parties());
    }

    // ------------------------------------------------------------ admin

    function test_Admin_SettersApply() public {
        vm.startPrank(admin);
        tm.setWindows(60, 300, 900);
        tm.setFeeSplit(2000, 6000, 1500, 500);
        tm.setFailureProcessingBps(2500);
        tm.setLimits(1024, 8);
        tm.setRecipients(address(0xA), address(0xB));
        vm.stopPrank();
        assertEq(tm.responseWindow(), 60);
        assertEq(tm.challengeWindow(), 300);
        assertEq(tm.jailDuration(), 900);
        (uint16 d, uint16 w, uint16 v, uint16 p) = tm.feeSplit();
        assertEq(d, 2000);
        assertEq(w, 6000);
        assertEq(v, 1500);
        assertEq(p, 500);
        assertEq(tm.failureProcessingBps(), 2500);
        assertEq(tm.maxInputBytes(), 1024);
        assertEq(tm.maxBatch(), 8);
        assertEq(tm.treasury(), address(0xA));
        assertEq(tm.validatorPool(), address(0xB));
    }

    function test_Admin_Defaults() public view {
        assertEq(tm.responseWindow(), RESPONSE_WINDOW);
        assertEq(tm.challengeWindow(), CHALLENGE_WINDOW);
        assertEq(tm.maxInputBytes(), 65_536);
        assertEq(tm.maxBatch(), 64);
        (uint16 d, uint16 w, uint16 v, uint16 p) = tm.feeSplit();
        assertEq(uint256(d) + w + v + p, 10_000);
        assertEq(w, 7500);
        assertEq(tm.failureProcessingBps(), 1000);
    }

    function test_Admin_RejectsBadValues() public {
        vm.startPrank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "responseWindow", uint256(0))
        );
        tm.setWindows(0, 1, 1);
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "responseWindow", uint256(65_536))
        );
        tm.setWindows(65_536, 1, 1);
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "challengeWindow", uint256(31 days))
        );
        tm.setWindows(1, 31 days, 1);
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "jailDuration", uint256(31 days))
        );
        tm.setWindows(1, 1, 31 days);
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "feeSplit sum", uint256(9999))
        );
        tm.setFeeSplit(1000, 7500, 1000, 499);
        vm.expectRevert(
            abi.encodeWithSelector(
                TaskManager.InvalidParameter.selector, "failureProcessingBps", uint256(10_001)
            )
        );
        tm.setFailureProcessingBps(10_001);
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "maxInputBytes", uint256(0))
        );
        tm.setLimits(0, 1);
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "maxBatch", uint256(1025))
        );
        tm.setLimits(1, 1025);
        vm.expectRevert(abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "treasury", uint256(0)));
        tm.setRecipients(address(0), address(1));
        vm.expectRevert(
            abi.encodeWithSelector(TaskManager.InvalidParameter.selector, "validatorPool", uint256(0))
        );
        tm.setRecipients(address(1), address(0));
        vm.stopPrank();
    }

    function test_Admin_RevertsForNonAdmin() public {
        bytes memory err = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), bytes32(0)
        );
        vm.expectRevert(err);
        tm.setWindows(1, 1, 1);
        vm.expectRevert(err);
        tm.setFeeSplit(0, 10_000, 0, 0);
        vm.expectRevert(err);
        tm.setFailureProcessingBps(0);
        vm.expectRevert(err);
        tm.setLimits(1, 1);
        vm.expectRevert(err);
        tm.setRecipients(address(1), address(1));
    }

    function test_GetTask_RevertsUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, uint256(1)));
        tm.getTask(1);
    }

    function test_Reassign_NeedsJailerRole() public {
        uint256 id = _submit(modelId);
        bytes32 role = staking.JAILER_ROLE();
        vm.prank(admin);
        staking.revokeRole(role, address(tm));
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(tm), role
            )
        );
        tm.reassign(id);
    }

    function test_StakingRoles_Wired() public view {
        // least privilege: the TaskManager jails but never slashes (slashing is the AuditManager's)
        assertFalse(staking.hasRole(staking.SLASHER_ROLE(), address(tm)));
        assertTrue(staking.hasRole(staking.JAILER_ROLE(), address(tm)));
        assertEq(address(staking.stakeObserver()), address(registry));
        assertEq(uint8(IStaking.Role.Worker), WORKER);
    }
}
