// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {console} from "forge-std/console.sol";
import {Fixture} from "./utils/Fixture.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";

/// @notice User feedback on-chain: TaskManager.rateTask / rateTasks by the task's submitter (score 0..100,
///         once per task, after commit), the input of a model's quality for natural selection.
contract RatingTest is Fixture {
    uint32 internal modelA;
    uint32 internal modelB;
    address internal w1;
    address internal other = makeAddr("other");

    function setUp() public {
        _deploy();
        modelA = _registerModel(PRICE);
        modelB = _registerModel(PRICE);
        w1 = _addWorker("w1", modelA, 1000e18);
        vm.prank(w1);
        registry.optIn(modelB);
        _fundUser(10_000e18);
        _fund(other, 10_000e18);
        vm.prank(other);
        token.approve(address(tm), type(uint256).max);
    }

    /// Submits `n` tasks of `model` as `from`, draws their worker and commits them all with result code `code`.
    function _committed(address from, uint32 model, uint256 n, uint16 code) internal returns (uint256 first) {
        vm.prank(from);
        first = tm.submitTasks(model, _inputs(n), PRICE);
        _assign(first, n);
        for (uint256 i = 0; i < n; ++i) {
            _commit(first + i, code);
        }
    }

    function _ids(uint256 first, uint256 n) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
        }
    }

    function _scores(uint256 n, uint8 score) internal pure returns (uint8[] memory scores) {
        scores = new uint8[](n);
        for (uint256 i = 0; i < n; ++i) {
            scores[i] = score;
        }
    }

    // ------------------------------------------------------------------ rateTask

    function test_RateTask_CommittedFailedAndFinalized_EmitAndMark() public {
        uint256 ok = _committed(user, modelA, 1, 0);
        uint256 failed = _committed(user, modelB, 1, 7);
        uint256 fin = _committed(user, modelA, 1, 0);
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        tm.finalize(fin);
        assertEq(tm.getTask(ok).status, uint8(ITaskManager.TaskStatus.Committed));
        assertEq(tm.getTask(failed).status, uint8(ITaskManager.TaskStatus.Failed));
        assertEq(tm.getTask(fin).status, uint8(ITaskManager.TaskStatus.Finalized));

        uint256[3] memory ids = [ok, failed, fin];
        uint32[3] memory models = [modelA, modelB, modelA];
        uint8[3] memory scores = [uint8(100), 0, 42];
        for (uint256 i = 0; i < 3; ++i) {
            assertFalse(tm.isRated(ids[i]));
            vm.expectEmit(address(tm));
            emit ITaskManager.TaskRated(ids[i], models[i], user, scores[i]);
            vm.prank(user);
            tm.rateTask(ids[i], scores[i]);
            assertTrue(tm.isRated(ids[i]));
        }
        // rating moves no funds and changes no task
        assertEq(tm.getTask(ok).status, uint8(ITaskManager.TaskStatus.Committed));
        assertEq(tm.escrowed(), 2 * PRICE);
    }

    function test_RateTask_RevertsWhen_ScoreAbove100() public {
        uint256 id = _committed(user, modelA, 1, 0);
        vm.startPrank(user);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.InvalidScore.selector, uint8(101)));
        tm.rateTask(id, 101);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.InvalidScore.selector, uint8(255)));
        tm.rateTask(id, 255);
        vm.stopPrank();
        assertFalse(tm.isRated(id));
    }

    function test_RateTask_RevertsWhen_UnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, uint256(7)));
        vm.prank(user);
        tm.rateTask(7, 50);
    }

    function test_RateTask_RevertsWhen_StillAssigned() public {
        uint256 id = _submit(modelA);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.WrongStatus.selector, id, uint8(ITaskManager.TaskStatus.Assigned)
            )
        );
        vm.prank(user);
        tm.rateTask(id, 50);
    }

    function test_RateTask_RevertsWhen_Refunded() public {
        uint256 id = _submit(modelA);
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        tm.reassign(id); // back to Drawing, w1 jailed
        _assign(id, 1); // w1 is the only worker: refunded
        assertEq(tm.getTask(id).status, uint8(ITaskManager.TaskStatus.Refunded));
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.WrongStatus.selector, id, uint8(ITaskManager.TaskStatus.Refunded)
            )
        );
        vm.prank(user);
        tm.rateTask(id, 50);
    }

    function test_RateTask_RevertsWhen_NotSubmitter() public {
        uint256 id = _committed(user, modelA, 1, 0);
        address[3] memory callers = [other, w1, developer];
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectRevert(abi.encodeWithSelector(ITaskManager.NotSubmitter.selector, id, callers[i]));
            vm.prank(callers[i]);
            tm.rateTask(id, 50);
        }
        assertFalse(tm.isRated(id));
    }

    function test_RateTask_RevertsWhen_AlreadyRated() public {
        uint256 id = _committed(user, modelA, 2, 0);
        vm.startPrank(user);
        tm.rateTask(id, 80);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.AlreadyRated.selector, id));
        tm.rateTask(id, 10);
        // still once after finalization
        vm.stopPrank();
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        tm.finalize(id);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.AlreadyRated.selector, id));
        vm.prank(user);
        tm.rateTask(id, 10);
        // the neighbour in the same bitmap word is independent
        assertFalse(tm.isRated(id + 1));
        vm.prank(user);
        tm.rateTask(id + 1, 10);
        assertTrue(tm.isRated(id + 1));
    }

    function test_RateTask_BitmapWordsAreIndependent() public {
        // ids 255 and 256 straddle two bitmap words
        for (uint256 k = 0; k < 5; ++k) {
            uint256 n = k < 4 ? 64 : 2;
            vm.prank(user);
            uint256 first = tm.submitTasks(modelA, _inputs(n), PRICE);
            _assign(first, n);
        }
        _commit(255, 0);
        _commit(256, 0);
        _commit(257, 0);
        vm.startPrank(user);
        tm.rateTask(256, 1);
        assertFalse(tm.isRated(255));
        assertTrue(tm.isRated(256));
        assertFalse(tm.isRated(257));
        tm.rateTask(255, 1);
        tm.rateTask(257, 1);
        vm.stopPrank();
        assertTrue(tm.isRated(255) && tm.isRated(257));
    }

    // ------------------------------------------------------------------ rateTasks

    function test_RateTasks_AcrossSubmissionsAndModels() public {
        uint256 a = _committed(user, modelA, 3, 0);
        uint256 b = _committed(user, modelB, 2, 1);
        // order mixes the two submissions, so the cached snapshot must switch back and forth
        uint256[] memory ids = new uint256[](5);
        (ids[0], ids[1], ids[2], ids[3], ids[4]) = (a, b, a + 1, b + 1, a + 2);
        uint8[] memory scores = new uint8[](5);
        (scores[0], scores[1], scores[2], scores[3], scores[4]) = (10, 20, 30, 40, 100);
        uint32[5] memory models = [modelA, modelB, modelA, modelB, modelA];
        for (uint256 i = 0; i < 5; ++i) {
            vm.expectEmit(address(tm));
            emit ITaskManager.TaskRated(ids[i], models[i], user, scores[i]);
        }
        vm.prank(user);
        tm.rateTasks(ids, scores);
        for (uint256 i = 0; i < 5; ++i) {
            assertTrue(tm.isRated(ids[i]));
        }
    }

    function test_RateTasks_RevertsWhen_OneTaskIsAnotherSubmitters_AllOrNothing() public {
        uint256 mine = _committed(user, modelA, 2, 0);
        uint256 theirs = _committed(other, modelA, 1, 0);
        uint256[] memory ids = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (mine, theirs, mine + 1);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.NotSubmitter.selector, theirs, user));
        vm.prank(user);
        tm.rateTasks(ids, _scores(3, 50));
        assertFalse(tm.isRated(mine));
        assertFalse(tm.isRated(theirs));
        assertFalse(tm.isRated(mine + 1));
    }

    function test_RateTasks_Reverts() public {
        uint256 id = _committed(user, modelA, 2, 0);
        vm.startPrank(user);
        vm.expectRevert(ITaskManager.EmptyBatch.selector);
        tm.rateTasks(new uint256[](0), new uint8[](0));
        vm.expectRevert(ITaskManager.LengthMismatch.selector);
        tm.rateTasks(_ids(id, 2), _scores(1, 50));
        uint256 max = tm.maxBatch();
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.BatchTooLarge.selector, max + 1, max));
        tm.rateTasks(_ids(id, max + 1), _scores(max + 1, 50));
        // the same task twice in one batch
        uint256[] memory twice = new uint256[](2);
        (twice[0], twice[1]) = (id, id);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.AlreadyRated.selector, id));
        tm.rateTasks(twice, _scores(2, 50));
        uint8[] memory bad = _scores(2, 50);
        bad[1] = 101;
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.InvalidScore.selector, uint8(101)));
        tm.rateTasks(_ids(id, 2), bad);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, id + 2));
        tm.rateTasks(_ids(id, 3), _scores(3, 50));
        vm.stopPrank();
        assertFalse(tm.isRated(id));
    }

    function testFuzz_RateTask_ScoreRange(uint8 score) public {
        uint256 id = _committed(user, modelA, 1, 0);
        if (score > 100) {
            vm.expectRevert(abi.encodeWithSelector(ITaskManager.InvalidScore.selector, score));
        } else {
            vm.expectEmit(address(tm));
            emit ITaskManager.TaskRated(id, modelA, user, score);
        }
        vm.prank(user);
        tm.rateTask(id, score);
        assertEq(tm.isRated(id), score <= 100);
    }
}

/// @notice Gas of rating: each call is its own transaction (isolate), figures include 21000 + calldata.
contract RatingGasTest is Fixture {
    uint32 internal modelId;

    function setUp() public {
        _deploy();
        modelId = _registerModel(PRICE);
        _addWorker("worker", modelId, 1000e18);
        _fundUser(1_000_000e18);
    }

    function _committedBatch(uint256 n) internal returns (uint256 first) {
        vm.prank(user);
        first = tm.submitTasks(modelId, _inputs(n), PRICE);
        _assign(first, n);
        uint256[] memory ids = new uint256[](n);
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
            hashes[i] = keccak256(abi.encode("out", ids[i]));
        }
        vm.prank(tm.getTask(first).worker);
        tm.commitBatch(ids, hashes, new uint16[](n), new bytes[](n));
    }

    function _gas(bytes memory data) internal returns (uint256 used) {
        vm.cool(address(tm));
        vm.prank(user);
        uint256 g = gasleft();
        (bool ok,) = address(tm).call(data);
        used = g - gasleft();
        assertTrue(ok, "rating call reverted");
    }

    /// forge-config: default.isolate = true
    function test_Gas_RateTask_Single() public {
        uint256 first = _committedBatch(2);
        uint256 fresh = _gas(abi.encodeCall(tm.rateTask, (first, 80)));
        uint256 shared = _gas(abi.encodeCall(tm.rateTask, (first + 1, 80)));
        console.log("rateTask, first rating in its bitmap word (tx):", fresh);
        console.log("rateTask, bitmap word already non-zero (tx):", shared);
        assertLt(fresh, 60_000);
        assertLt(shared, 40_000);
    }

    /// forge-config: default.isolate = true
    function test_Gas_RateTasks_BatchOf32() public {
        uint256 n = 32;
        uint256 first = _committedBatch(n);
        uint8[] memory scores = new uint8[](n);
        uint256[] memory ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
            scores[i] = uint8(i * 3);
        }
        uint256 g = _gas(abi.encodeCall(tm.rateTasks, (ids, scores)));
        console.log("rateTasks, 32 tasks of one submission (tx):", g);
        console.log("rateTasks, per task:", g / n);
        assertLt(g / n, 8_000);
        for (uint256 i = 0; i < n; ++i) {
            assertTrue(tm.isRated(ids[i]));
        }
    }
}
