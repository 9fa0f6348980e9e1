// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Vm} from "forge-std/Test.sol";
import {console} from "forge-std/console.sol";
import {Fixture} from "./utils/Fixture.sol";
import {DNToken} from "../contracts/DNToken.sol";
import {Staking} from "../contracts/Staking.sol";
import {ModelRegistry} from "../contracts/ModelRegistry.sol";
import {TaskManager} from "../contracts/TaskManager.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";

/// @notice A submitter that also runs a worker and tries to steer its tasks to that worker (finding H-3).
///         Before H-3 the worker was drawn inside submitTask from blockhash(block.number - 1), prevrandao and
///         the task id over the current weights, so this contract could compute the draw in the submitting
///         transaction and submit only when it landed on its own worker, nudging its stake (1 wei of weight)
///         or burning a task id with a throwaway submission between tries.
contract AssignmentSteerer {
    uint8 internal constant WORKER = 0;
    TaskManager internal immutable tm;
    ModelRegistry internal immutable registry;
    Staking internal immutable staking;

    constructor(TaskManager tm_, ModelRegistry registry_, Staking staking_, DNToken token) {
        (tm, registry, staking) = (tm_, registry_, staking_);
        token.approve(address(tm_), type(uint256).max);
        token.approve(address(staking_), type(uint256).max);
    }

    function joinAsWorker(uint32 modelId, uint256 amount) external {
        staking.stake(WORKER, amount);
        registry.optIn(modelId);
    }

    function nudge(uint256 amount) external {
        staking.stake(WORKER, amount);
    }

    function submit(uint32 modelId) external returns (uint256) {
        return tm.submitTask(modelId, "probe", type(uint256).max);
    }

    /// The draw of task `taskId` as the pre-H-3 TaskManager made it inside the submitting transaction:
    /// seed = keccak256(abi.encode(blockhash(block.number - 1), block.prevrandao, taskId)) over the current
    /// weights. Everything in it is known to a contract running in this block.
    function predict(uint32 modelId, uint256 taskId) public view returns (address) {
        uint256 seed = uint256(keccak256(abi.encode(blockhash(block.number - 1), block.prevrandao, taskId)));
        return registry.drawWorkerAt(modelId, seed, block.number, address(0));
    }

    /// Up to `tries` submissions in one transaction, each in a sub-call kept only when this contract's worker
    /// gets the task: `certain` keeps it only when the TaskManager already names this contract as its worker
    /// (after trying to force the draw with assignTasks), otherwise when `predict` says so. Between tries it
    /// nudges its stake by 5 wei (1 wei of weight at trust 0.2) or burns a task id with a throwaway task.
    function steer(uint32 modelId, uint256 tries, bool certain)
        external
        returns (uint256 taskId, uint256 attempts)
    {
        for (uint256 i = 0; i < tries; ++i) {
            try this.attempt(modelId, certain) returns (uint256 id) {
                return (id, i + 1);
            } catch {}
            if (i % 2 == 0) staking.stake(WORKER, 5);
            else tm.submitTask(modelId, "filler", type(uint256).max);
        }
        return (0, tries);
    }

    function attempt(uint32 modelId, bool certain) external returns (uint256 id) {
        require(msg.sender == address(this), "self only");
        if (!certain) {
            require(predict(modelId, tm.taskCount() + 1) == address(this), "predicted another worker");
        }
        id = tm.submitTask(modelId, "steered", type(uint256).max);
        if (certain) {
            uint256[] memory ids = new uint256[](1);
            ids[0] = id;
            try tm.assignTasks(ids) {} catch {}
            require(tm.getTask(id).worker == address(this), "worker unknown at submission");
        }
    }
}

/// @notice The deferred draw (finding H-3): assignTasks draws each Drawing task's worker from the hash of the
///         block after its anchor over the weights at the end of the anchor block, skipping the worker that
///         missed it, refunding when nobody eligible is found, re-anchoring when the hash is gone.
contract AssignmentTest is Fixture {
    uint32 internal modelId;
    address internal w1;

    function setUp() public {
        _deploy();
        modelId = _registerModel(PRICE);
        w1 = _addWorker("w1", modelId, 1000e18);
        _fundUser(100_000e18);
    }

    function _one(uint256 id) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](1);
        ids[0] = id;
    }

    function _range(uint256 first, uint256 n) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
        }
    }

    function _workers(uint256[] memory ids) internal view returns (address[] memory ws) {
        ws = new address[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            ws[i] = tm.getTask(ids[i]).worker;
        }
    }

    /// The first draw for task `id` anchored on `anchor` (before any redraw), as TaskManager computes it.
    function _firstDraw(uint256 id, uint256 anchor) internal view returns (address) {
        uint256 seed = uint256(keccak256(abi.encode(blockhash(anchor + 1), id)));
        return registry.drawWorkerAt(modelId, seed, anchor, address(0));
    }

    /// Counts the logs of `topic0` the TaskManager emitted.
    function _count(Vm.Log[] memory logs, bytes32 topic0) internal view returns (uint256 k) {
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(tm) && logs[i].topics[0] == topic0) ++k;
        }
    }

    // ------------------------------------------------------------ H-3 assignment steering

    /// The attack of finding H-3, run against the new draw. The attacker's contract submits and controls a
    /// worker with 5% of the model's weight (19 honest workers of equal weight). (1) No submission can know
    /// its worker: the task is Drawing with no worker, assignTasks cannot draw it in the submission block nor
    /// the next, and every "keep it only if it is mine" attempt fails. (2) Submitting only when the old
    /// in-transaction draw names its worker wins about its weight share: fewer than 5 of 5 (forge's block
    /// hashes are keccak256 of the block number's decimal string, so the outcome is deterministic: 0 of 5;
    /// the same contract run against the pre-H-3 TaskManager won 5 of 5 after 102 tries).
    /// (3) Stake added after the submission block does not change any of 32 assignments.
    function test_Exploit_H3_AssignmentSteeringBySubmitter() public {
        for (uint256 i = 0; i < 19; ++i) {
            _addWorker(string.concat("honest", vm.toString(i)), modelId, 1000e18);
        }
        vm.prank(w1);
        registry.optOut(modelId); // 19 honest workers exactly
        AssignmentSteerer a = new AssignmentSteerer(tm, registry, staking, token);
        _fund(address(a), 1_000_000e18);
        a.joinAsWorker(modelId, 1000e18);
        assertEq(
            registry.weightOf(modelId, address(a)) * 20, registry.totalWeight(modelId), "5% of the weight"
        );

        _h3NoCertainty(a);
        uint256 wins = _h3SubmitOnPrediction(a, 5);
        console.log("H-3: tasks the attacker steered to its own worker, of 5:", wins);
        assertLt(wins, 5, "the submitter steered every task to its own worker");
        assertEq(wins, 0, "deterministic under forge's block hashes");
        _h3StakeAfterAnchorIgnored(a);
    }

    /// (1) No submission can know its worker: 16 "keep it only if it is mine" tries in one transaction fail;
    /// a submitted task is Drawing with no worker; assignTasks cannot draw it in its block nor the next (the
    /// hash of anchor + 1 does not exist yet) and draws it from that hash two blocks on.
    function _h3NoCertainty(AssignmentSteerer a) internal {
        (uint256 kept, uint256 attempts) = a.steer(modelId, 16, true);
        assertEq(kept, 0, "a submission knew its worker");
        assertEq(attempts, 16);
        uint256 anchor = block.number;
        uint256 id = a.submit(modelId);
        ITaskManager.TaskView memory t = tm.getTask(id);
        assertEq(t.status, uint8(ITaskManager.TaskStatus.Drawing));
        assertEq(t.worker, address(0));
        assertEq(t.drawBlock, anchor);
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));
        vm.roll(anchor + 1);
        assertEq(
            blockhash(anchor + 1), bytes32(0), "the draw's randomness does not exist in block anchor + 1"
        );
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));
        vm.roll(anchor + 2);
        assertTrue(blockhash(anchor + 1) != bytes32(0));
        tm.assignTasks(_one(id));
        assertEq(tm.getTask(id).worker, _firstDraw(id, anchor), "drawn from blockhash(anchor + 1)");
    }

    /// (2) `rounds` submissions, each made only once the pre-H-3 in-transaction draw names the attacker's
    /// worker (the old attack, which won every time); returns how many the real draw gave it.
    function _h3SubmitOnPrediction(AssignmentSteerer a, uint256 rounds) internal returns (uint256 wins) {
        uint256 totalTries;
        for (uint256 r = 0; r < rounds; ++r) {
            vm.roll(block.number + 3 + r);
            (uint256 steered, uint256 tries) = a.steer(modelId, 400, false);
            assertGt(steered, 0, "the old draw never named the attacker's worker");
            totalTries += tries;
            vm.roll(block.number + 2);
            tm.assignTasks(_one(steered));
            if (tm.getTask(steered).worker == address(a)) ++wins;
        }
        console.log("H-3: tries (stake nudges / burnt task ids) behind the 5 submissions:", totalTries);
    }

    /// (3) Stake moved after the submission block changes nothing: 32 tasks assigned with and without the
    /// attacker adding 100x its stake in block anchor + 1 go to the same workers.
    function _h3StakeAfterAnchorIgnored(AssignmentSteerer a) internal {
        vm.roll(block.number + 10);
        uint256 anchor = block.number;
        vm.prank(user);
        uint256[] memory ids = _range(tm.submitTasks(modelId, _inputs(32), PRICE), 32);
        uint256 snap = vm.snapshotState();
        vm.roll(anchor + 2);
        tm.assignTasks(ids);
        address[] memory plain = _workers(ids);
        vm.revertToState(snap);
        vm.roll(anchor + 1);
        a.nudge(100_000e18);
        assertGt(
            registry.weightOf(modelId, address(a)) * 100 / registry.totalWeight(modelId),
            80,
            "the nudge would dominate the current weights"
        );
        vm.roll(anchor + 2);
        tm.assignTasks(ids);
        address[] memory nudged = _workers(ids);
        assertEq(
            keccak256(abi.encode(nudged)), keccak256(abi.encode(plain)), "weights after the anchor counted"
        );
        uint256 mine;
        for (uint256 i = 0; i < 32; ++i) {
            assertTrue(plain[i] != address(0));
            if (plain[i] == address(a)) ++mine;
        }
        console.log("H-3: of 32 tasks, the attacker's worker drew:", mine);
        assertLt(mine, 8, "about 5% of 32, far from the nudged share");
    }

    // ------------------------------------------------------------ the draw itself

    /// Every assigned worker is the first draw over the anchor block's weights with
    /// seed = keccak256(abi.encode(blockhash(anchor + 1), taskId)) when all workers are eligible, and the
    /// tasks spread over all four workers.
    function test_Assign_DrawFollowsAnchorHashAndWeights() public {
        address[4] memory ws =
            [w1, _addWorker("w2", modelId, 2000e18), _addWorker("w3", modelId, 3000e18), address(0)];
        ws[3] = _addWorker("w4", modelId, 4000e18);
        uint256 anchor = block.number;
        vm.prank(user);
        uint256 first = tm.submitTasks(modelId, _inputs(64), PRICE);
        // a fifth worker joining after the anchor block cannot be drawn for these tasks
        vm.roll(anchor + 1);
        address late = _addWorker("late", modelId, 100_000e18);
        vm.roll(anchor + 2);
        vm.warp(block.timestamp + 24);
        uint64 deadline = uint64(block.timestamp + RESPONSE_WINDOW);
        uint256[] memory ids = _range(first, 64);
        for (uint256 i = 0; i < 64; ++i) {
            vm.expectEmit(address(tm));
            emit ITaskManager.TaskAssigned(ids[i], _firstDraw(ids[i], anchor), deadline);
        }
        assertEq(tm.assignTasks(ids), 64);
        uint256[4] memory per;
        for (uint256 i = 0; i < 64; ++i) {
            address w = tm.getTask(ids[i]).worker;
            assertTrue(w != late, "a worker that joined after the anchor block was drawn");
            for (uint256 k = 0; k < 4; ++k) {
                if (w == ws[k]) ++per[k];
            }
        }
        assertEq(per[0] + per[1] + per[2] + per[3], 64);
        for (uint256 k = 0; k < 4; ++k) {
            assertGt(per[k], 0, "a weighted worker was never drawn");
        }
        assertGt(per[3], per[0], "the heaviest worker gets more than the lightest");
    }

    // ------------------------------------------------------------ reassign

    /// The worker that missed is skipped by the redraw even while it keeps its weight and stays eligible
    /// (jail duration 0): 16 tasks missed by w1 all go to w2, although the first draw of several of them
    /// lands on w1.
    function test_Reassign_MissedWorkerNeverDrawnAgain() public {
        vm.prank(admin);
        tm.setWindows(RESPONSE_WINDOW, CHALLENGE_WINDOW, 0);
        vm.prank(user);
        uint256 first = tm.submitTasks(modelId, _inputs(16), PRICE);
        uint256[] memory ids = _range(first, 16);
        _assign(first, 16); // w1 is the only worker
        address w2 = _addWorker("w2", modelId, 3000e18);
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        uint256 anchor = block.number;
        for (uint256 i = 0; i < 16; ++i) {
            tm.reassign(ids[i]);
            assertEq(tm.getTask(ids[i]).status, uint8(ITaskManager.TaskStatus.Drawing));
        }
        assertTrue(staking.isEligible(w1, WORKER), "a zero jail leaves w1 eligible");
        assertEq(registry.weightOf(modelId, w1), 200e18, "and weighted");
        vm.roll(anchor + 2);
        uint256 firstDrawsOnW1;
        for (uint256 i = 0; i < 16; ++i) {
            if (_firstDraw(ids[i], anchor) == w1) ++firstDrawsOnW1;
        }
        assertGt(firstDrawsOnW1, 0, "the skip is not exercised");
        assertEq(tm.assignTasks(ids), 16);
        for (uint256 i = 0; i < 16; ++i) {
            assertEq(tm.getTask(ids[i]).worker, w2, "the worker that missed was drawn again");
        }
    }

    /// The missed worker is the only one (weighted and eligible): the redraw refunds instead of giving the
    /// task back to it.
    function test_Reassign_OnlyTheMissedWorker_RefundedAtAssign() public {
        vm.prank(admin);
        tm.setWindows(RESPONSE_WINDOW, CHALLENGE_WINDOW, 0);
        uint256 id = _submit(modelId);
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        tm.reassign(id);
        assertTrue(staking.isEligible(w1, WORKER));
        assertGt(registry.weightOf(modelId, w1), 0);
        vm.roll(block.number + 2);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskRefunded(id, user, PRICE);
        tm.assignTasks(_one(id));
        assertEq(tm.getTask(id).status, uint8(ITaskManager.TaskStatus.Refunded));
        assertEq(tm.payoutOf(user), PRICE);
        assertEq(tm.escrowed(), 0);
    }

    /// Reassigned tasks whose redraw waited past the hash window are re-anchored and still skip the worker
    /// that missed them (w1, eligible and as heavy as w2, is the first draw of some of them).
    function test_Reassign_SkipSurvivesReanchor() public {
        vm.prank(admin);
        tm.setWindows(RESPONSE_WINDOW, CHALLENGE_WINDOW, 0);
        vm.prank(user);
        uint256 first = tm.submitTasks(modelId, _inputs(8), PRICE);
        uint256[] memory ids = _range(first, 8);
        _assign(first, 8); // w1 is the only worker
        address w2 = _addWorker("w2", modelId, 1000e18);
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        uint256 anchor = block.number;
        for (uint256 i = 0; i < 8; ++i) {
            tm.reassign(ids[i]);
        }
        vm.roll(anchor + 300);
        for (uint256 i = 0; i < 8; ++i) {
            vm.expectEmit(address(tm));
            emit ITaskManager.AssignmentDeferred(ids[i], uint64(anchor + 300));
        }
        assertEq(tm.assignTasks(ids), 8);
        vm.roll(anchor + 302);
        uint256 firstDrawsOnW1;
        for (uint256 i = 0; i < 8; ++i) {
            if (_firstDraw(ids[i], anchor + 300) == w1) ++firstDrawsOnW1;
        }
        assertGt(firstDrawsOnW1, 0, "the skip is not exercised");
        assertEq(tm.assignTasks(ids), 8);
        for (uint256 i = 0; i < 8; ++i) {
            assertEq(tm.getTask(ids[i]).worker, w2, "the worker that missed was drawn after the re-anchor");
        }
    }

    // ------------------------------------------------------------ re-anchoring

    /// The hash of anchor + 1 is available up to block anchor + 257; from anchor + 258 on assignTasks
    /// re-anchors the task on the current block (AssignmentDeferred) and a later call draws it over the new
    /// anchor's weights and hash.
    function test_Assign_ReanchorsWhenHashGone() public {
        uint256 anchor = block.number;
        vm.prank(user);
        uint256 id = tm.submitTask(modelId, hex"01", PRICE);
        vm.roll(anchor + 1);
        address w2 = _addWorker("w2", modelId, 100_000e18); // joins after the anchor block

        // the last block with the hash: drawn normally, over the anchor's weights (w1 alone)
        uint256 snap = vm.snapshotState();
        vm.roll(anchor + 257);
        assertTrue(blockhash(anchor + 1) != bytes32(0));
        tm.assignTasks(_one(id));
        assertEq(tm.getTask(id).worker, w1);
        vm.revertToState(snap);

        vm.roll(anchor + 300);
        assertEq(blockhash(anchor + 1), bytes32(0));
        vm.recordLogs();
        assertEq(tm.assignTasks(_one(id)), 1, "a re-anchoring counts as handled");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_count(logs, ITaskManager.AssignmentDeferred.selector), 1);
        assertEq(_count(logs, ITaskManager.TaskAssigned.selector), 0);
        ITaskManager.TaskView memory t = tm.getTask(id);
        assertEq(t.status, uint8(ITaskManager.TaskStatus.Drawing));
        assertEq(t.drawBlock, anchor + 300);
        assertEq(t.worker, address(0));
        assertEq(tm.escrowed(), PRICE);
        // the new anchor's randomness is not there yet either
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));
        vm.roll(anchor + 301);
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_one(id));

        vm.roll(anchor + 302);
        address expected = _firstDraw(id, anchor + 300);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskAssigned(id, expected, uint64(block.timestamp + RESPONSE_WINDOW));
        tm.assignTasks(_one(id));
        assertEq(tm.getTask(id).worker, expected);
        assertEq(expected, w2, "drawn over the new anchor's weights (w2 holds 99.8% of them)");
    }

    // ------------------------------------------------------------ bad input

    function test_AssignTasks_Reverts() public {
        vm.expectRevert(ITaskManager.EmptyBatch.selector);
        tm.assignTasks(new uint256[](0));

        vm.prank(user);
        uint256 first = tm.submitTasks(modelId, _inputs(2), PRICE);
        uint256 anchor = block.number;
        uint256 max = tm.maxBatch();
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.BatchTooLarge.selector, max + 1, max));
        tm.assignTasks(_range(first, max + 1));

        // not ready: the submission block and the next
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_range(first, 2));
        vm.roll(anchor + 1);
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_range(first, 2));

        vm.roll(anchor + 2);
        // an id never submitted reverts the whole call, even next to a ready task
        uint256[] memory withUnknown = new uint256[](2);
        (withUnknown[0], withUnknown[1]) = (first, 99);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, uint256(99)));
        tm.assignTasks(withUnknown);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.UnknownTask.selector, uint256(0)));
        tm.assignTasks(_one(0));
        assertEq(tm.getTask(first).status, uint8(ITaskManager.TaskStatus.Drawing), "nothing was drawn");
    }

    /// Tasks already assigned (e.g. by a competing caller whose transaction landed first) are skipped; the
    /// batch draws the rest. A batch with nothing left to draw reverts NothingToAssign.
    function test_AssignTasks_SkipsAlreadyAssigned() public {
        vm.prank(user);
        uint256 first = tm.submitTasks(modelId, _inputs(2), PRICE);
        uint256 anchor = block.number;
        vm.roll(anchor + 2);
        tm.assignTasks(_one(first)); // the competitor's copy
        ITaskManager.TaskView memory before = tm.getTask(first);
        vm.warp(block.timestamp + 30);
        uint256[] memory ids = _range(first, 2);
        vm.recordLogs();
        assertEq(tm.assignTasks(ids), 1, "one handled, one skipped");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_count(logs, ITaskManager.TaskAssigned.selector), 1);
        ITaskManager.TaskView memory again = tm.getTask(first);
        assertEq(again.worker, before.worker);
        assertEq(again.deadline, before.deadline, "the assigned task's response window was not restarted");
        assertEq(tm.getTask(first + 1).status, uint8(ITaskManager.TaskStatus.Assigned));
        assertEq(tm.getTask(first + 1).deadline, block.timestamp + RESPONSE_WINDOW);

        // a duplicate id in one batch is drawn once
        vm.prank(user);
        uint256 third = tm.submitTask(modelId, hex"03", PRICE);
        vm.roll(block.number + 2);
        uint256[] memory twice = new uint256[](2);
        (twice[0], twice[1]) = (third, third);
        assertEq(tm.assignTasks(twice), 1);

        // nothing left: committed and assigned tasks are all skipped
        _commit(first, 0);
        vm.expectRevert(ITaskManager.NothingToAssign.selector);
        tm.assignTasks(_range(first, 3));
    }
}
