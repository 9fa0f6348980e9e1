// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test, console} from "forge-std/Test.sol";
import {Fixture} from "../utils/Fixture.sol";
import {DNToken} from "../../contracts/DNToken.sol";
import {TaskManager} from "../../contracts/TaskManager.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";

/// Random submits, draws (assignTasks, with block moves past the 256-block hash window), commits (results
/// and failures), reassigns, finalizations, withdrawals and time moves.
contract TaskManagerHandler is Test {
    DNToken internal token;
    TaskManager internal tm;
    ModelRegistry internal registry;
    uint32 internal modelId;
    address[] internal users;
    address[] public parties;

    uint256 public ghostFeesCharged;
    uint256 public ghostFeesSettled;
    uint256 public ghostWithdrawn;
    mapping(uint256 taskId => bool) public settled;
    uint256 public settleCount;
    /// tasks drawn to a worker, refunded for want of one, and re-anchored by assignTasks
    uint256 public assignedCount;
    uint256 public refundedAtAssign;
    uint256 public deferredCount;
    /// Broken draw rules seen by the handler. A failing assert inside a handler only reverts that call,
    /// which fail_on_revert = false ignores, so the checks count here and an invariant requires zero.
    uint256 public violations;
    string public firstViolation;
    /// the worker that last missed each task's deadline (the redraw must skip it)
    mapping(uint256 taskId => address) public missedBy;

    constructor(
        DNToken token_,
        TaskManager tm_,
        ModelRegistry registry_,
        uint32 modelId_,
        address[] memory users_,
        address[] memory parties_
    ) {
        token = token_;
        tm = tm_;
        registry = registry_;
        modelId = modelId_;
        users = users_;
        parties = parties_;
    }

    function partyCount() external view returns (uint256) {
        return parties.length;
    }

    function submit(uint256 userSeed, uint256 count) external {
        address u = users[userSeed % users.length];
        count = bound(count, 1, 8);
        bytes[] memory inputs = new bytes[](count);
        for (uint256 i = 0; i < count; ++i) {
            inputs[i] = abi.encode(userSeed, i);
        }
        vm.prank(u);
        try tm.submitTasks(modelId, inputs, type(uint256).max) {
            ghostFeesCharged += count * tm.getTask(tm.taskCount()).fee;
        } catch (bytes memory err) {
            // every worker jailed (and not yet synced back): the only acceptable failure
            assertEq(err, abi.encodeWithSelector(ITaskManager.NoEligibleWorker.selector, modelId));
        }
    }

    /// Moves the chain `blocks` on (sometimes past the 256 blocks a draw's hash stays available), then
    /// assigns up to `size` Drawing tasks from `taskSeed` on, and checks what each became.
    function assign(uint256 taskSeed, uint256 size, uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 0, 300));
        uint256 n = tm.taskCount();
        if (n == 0) return;
        size = bound(size, 1, 16);
        uint256[] memory ids = new uint256[](size);
        uint256[] memory anchors = new uint256[](size);
        uint256[] memory fees = new uint256[](size);
        uint256 k;
        for (uint256 id = taskSeed % n + 1; id <= n && k < size; ++id) {
            ITaskManager.TaskView memory t = tm.getTask(id);
            if (t.status != uint8(ITaskManager.TaskStatus.Drawing)) continue;
            (ids[k], anchors[k], fees[k]) = (id, t.drawBlock, t.fee);
            ++k;
        }
        if (k == 0) return;
        assembly {
            mstore(ids, k)
        }
        uint256 handled;
        try tm.assignTasks(ids) returns (uint256 h) {
            handled = h;
        } catch (bytes memory err) {
            // only when none was ready (all anchored on this block or the one before)
            _check(
                keccak256(err) == keccak256(abi.encodeWithSelector(ITaskManager.NothingToAssign.selector)),
                "assignTasks reverted with another error"
            );
            for (uint256 i = 0; i < k; ++i) {
                _check(block.number < anchors[i] + 2, "NothingToAssign with a ready task");
            }
            return;
        }
        uint256 seen;
        for (uint256 i = 0; i < k; ++i) {
            ITaskManager.TaskView memory t = tm.getTask(ids[i]);
            if (block.number < anchors[i] + 2) {
                _check(
                    t.status == uint8(ITaskManager.TaskStatus.Drawing) && t.drawBlock == anchors[i],
                    "drawn before its hash existed"
                );
                continue;
            }
            ++seen;
            if (t.status == uint8(ITaskManager.TaskStatus.Assigned)) {
                _check(
                    t.worker != address(0) && t.deadline == block.timestamp + tm.responseWindow(),
                    "assigned without a worker or with a wrong deadline"
                );
                _check(t.worker != missedBy[ids[i]], "the worker that missed was drawn again");
                ++assignedCount;
            } else if (t.status == uint8(ITaskManager.TaskStatus.Refunded)) {
                _settled(ids[i], fees[i]);
                ++refundedAtAssign;
            } else {
                // the hash of anchor + 1 was gone: re-anchored on this block
                _check(
                    t.status == uint8(ITaskManager.TaskStatus.Drawing) && t.drawBlock == block.number,
                    "neither assigned, refunded nor re-anchored on this block"
                );
                _check(block.number > anchors[i] + 257, "re-anchored while its hash was available");
                ++deferredCount;
            }
        }
        _check(handled == seen, "handled count");
    }

    /// Executors call syncWorker when their jail ends to get their sortition weight back.
    function syncWorkers() external {
        for (uint256 i = 5; i < parties.length; ++i) {
            registry.syncWorker(parties[i]);
        }
    }

    function commit(uint256 taskSeed, uint16 code, uint256 size) external {
        uint256 n = tm.taskCount();
        if (n == 0) return;
        size = bound(size, 1, 6);
        uint256 start = taskSeed % n + 1;
        address worker;
        uint256[] memory ids = new uint256[](size);
        uint256 k;
        for (uint256 id = start; id <= n && k < size; ++id) {
            ITaskManager.TaskView memory t = tm.getTask(id);
            if (t.status != uint8(ITaskManager.TaskStatus.Assigned) || block.timestamp > t.deadline) {
                continue;
            }
            if (worker == address(0)) worker = t.worker;
            if (t.worker == worker) ids[k++] = id;
        }
        if (k == 0) return;
        assembly {
            mstore(ids, k)
        }
        uint16[] memory codes = new uint16[](k);
        for (uint256 i = 0; i < k; ++i) {
            codes[i] = (code >> i) & 1 == 1 ? 2 : 0;
        }
        vm.prank(worker);
        tm.commitBatch(ids, new bytes32[](k), codes, new bytes[](k));
    }

    function reassign(uint256 taskSeed) external {
        uint256 n = tm.taskCount();
        if (n == 0) return;
        uint256 id = taskSeed % n + 1;
        ITaskManager.TaskView memory t = tm.getTask(id);
        if (t.status != uint8(ITaskManager.TaskStatus.Assigned) || block.timestamp <= t.deadline) return;
        tm.reassign(id);
        missedBy[id] = t.worker;
        // back to Drawing on this block; the replacement (or the refund) comes with assignTasks
        ITaskManager.TaskView memory after_ = tm.getTask(id);
        _check(
            after_.status == uint8(ITaskManager.TaskStatus.Drawing) && after_.drawBlock == block.number,
            "reassign did not re-anchor the task on this block"
        );
    }

    function finalize(uint256 taskSeed, uint256 size) external {
        uint256 n = tm.taskCount();
        if (n == 0) return;
        size = bound(size, 1, 10);
        uint256[] memory ids = new uint256[](size);
        uint256[] memory fees = new uint256[](size);
        uint256 k;
        for (uint256 id = taskSeed % n + 1; id <= n && k < size; ++id) {
            ITaskManager.TaskView memory t = tm.getTask(id);
            bool done = t.status == uint8(ITaskManager.TaskStatus.Committed)
                || t.status == uint8(ITaskManager.TaskStatus.Failed);
            if (!done || block.timestamp <= t.deadline) continue;
            fees[k] = t.fee;
            ids[k++] = id;
        }
        if (k == 0) return;
        assembly {
            mstore(ids, k)
        }
        tm.finalizeBatch(ids);
        for (uint256 i = 0; i < k; ++i) {
            _settled(ids[i], fees[i]);
        }
    }

    function withdraw(uint256 partySeed) external {
        address p = parties[partySeed % parties.length];
        uint256 due = tm.payoutOf(p);
        if (due == 0) return;
        vm.prank(p);
        ghostWithdrawn += tm.withdrawPayout();
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 400));
    }

    function _check(bool ok, string memory why) internal {
        if (ok) return;
        if (violations == 0) firstViolation = why;
        ++violations;
    }

    function _settled(uint256 id, uint256 fee) internal {
        assertFalse(settled[id], "a task settled twice");
        settled[id] = true;
        ++settleCount;
        ghostFeesSettled += fee;
    }
}

contract TaskManagerInvariantTest is Fixture {
    TaskManagerHandler internal handler;
    address[] internal parties;

    function setUp() public {
        _deploy();
        uint32 modelId = _registerModel(PRICE + 7); // an odd price exercises rounding dust
        address[] memory users = new address[](2);
        users[0] = user;
        users[1] = makeAddr("user2");
        for (uint256 i = 0; i < users.length; ++i) {
            _fund(users[i], 1_000_000e18);
            vm.prank(users[i]);
            token.approve(address(tm), type(uint256).max);
        }
        parties.push(developer);
        parties.push(treasury);
        parties.push(validatorPool);
        parties.push(users[0]);
        parties.push(users[1]);
        // parties[5..] are the workers (syncWorkers relies on it)
        for (uint256 i = 0; i < 3; ++i) {
            parties.push(_addWorker(string.concat("worker", vm.toString(i)), modelId, 1000e18 * (i + 1)));
        }
        handler = new TaskManagerHandler(token, tm, registry, modelId, users, parties);
        targetContract(address(handler));
    }

    function _sumPayouts() internal view returns (uint256 sum) {
        for (uint256 i = 0; i < parties.length; ++i) {
            sum += tm.payoutOf(parties[i]);
        }
    }

    /// How often the run drew a worker, refunded at assignment and re-anchored (shown with -vv).
    function afterInvariant() public view {
        console.log(
            "assigned %d, refunded at assign %d, re-anchored %d",
            handler.assignedCount(),
            handler.refundedAtAssign(),
            handler.deferredCount()
        );
    }

    /// assignTasks and reassign followed the draw rules on every handler call.
    function invariant_DrawRules() public view {
        assertEq(handler.violations(), 0, handler.firstViolation());
    }

    function invariant_BalanceEqualsEscrowPlusPayouts() public view {
        assertEq(token.balanceOf(address(tm)), tm.escrowed() + _sumPayouts());
    }

    function invariant_EscrowIsUnsettledFees() public view {
        assertEq(tm.escrowed(), handler.ghostFeesCharged() - handler.ghostFeesSettled());
    }

    /// No fee paid twice: what was credited (still owed + already withdrawn) equals the fees of settled tasks.
    function invariant_NoFeePaidTwice() public view {
        assertEq(_sumPayouts() + handler.ghostWithdrawn(), handler.ghostFeesSettled());
    }
}
