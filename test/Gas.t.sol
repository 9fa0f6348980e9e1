// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {console} from "forge-std/console.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice End-to-end gas per task (submit + assign + commit + finalize) for one task and for batches of 32.
///         Since finding H-3 the worker is drawn by a separate `assignTasks` transaction (anyone, from the
///         second block after the submission); its gas is part of every end-to-end figure.
///         Every test runs with `isolate = true` (inline config): each call from the test is its own
///         transaction, so cold accesses and SSTORE prices are those of a real transaction, and the
///         gasleft() delta around a call is what its sender pays ("tx": 21000 + calldata + execution).
///         "exec" = tx - 21000 - calldata gas (4 per zero byte, 16 per non-zero byte).
///         Inputs are 64 bytes; outputs are committed by hash only (empty output bytes).
contract GasTest is Fixture {
    /// The design target (TaskManager's dev notes: <= 60k gas per task end to end in batches). It was set, and
    /// met (58,967 exec per task in a batch of 32), when the worker was drawn inside submitTasks. Since H-3
    /// the end to end figure has a fourth transaction, assignTasks (~17.1k per task in a batch of 32), and
    /// measures ~71.1k: the target now holds only for submit + commit + finalize (~54.0k), which the test
    /// asserts, while the full four-transaction figure is bounded by the measured ceiling below.
    uint256 internal constant DESIGN_TARGET_PER_TASK = 60_000;
    /// Measured end to end execution gas per task in a batch of 32, assignTasks included (71,066), plus
    /// ~1% headroom: a regression above it fails the test.
    uint256 internal constant MEASURED_CEILING_PER_TASK = 72_000;
    uint32 internal modelId;
    address internal worker;

    function setUp() public {
        _deploy();
        modelId = _registerModel(PRICE);
        worker = _addWorker("worker", modelId, 1000e18);
        _fundUser(1_000_000e18);
    }

    function _coolAll() internal {
        vm.cool(address(token));
        vm.cool(address(staking));
        vm.cool(address(registry));
        vm.cool(address(tm));
    }

    function _txCost(bytes memory data) internal pure returns (uint256 cost) {
        cost = 21_000;
        for (uint256 i = 0; i < data.length; ++i) {
            cost += data[i] == 0 ? 4 : 16;
        }
    }

    struct Phase {
        uint256 exec;
        uint256 withTx;
    }

    function _run(bytes memory data, address from) internal returns (Phase memory ph) {
        _coolAll();
        vm.prank(from);
        uint256 g = gasleft();
        (bool ok, bytes memory ret) = address(tm).call(data);
        ph.exec = g - gasleft();
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        // isolated: the delta is the whole transaction; the intrinsic part is taken out for `exec`
        ph.withTx = ph.exec;
        ph.exec = ph.withTx - _txCost(data);
    }

    /// The four transactions of a task's life.
    struct Flow {
        Phase submit;
        Phase assign;
        Phase commit;
        Phase fin;
    }

    function _sum(Flow memory f) internal pure returns (uint256 exec, uint256 withTx) {
        exec = f.submit.exec + f.assign.exec + f.commit.exec + f.fin.exec;
        withTx = f.submit.withTx + f.assign.withTx + f.commit.withTx + f.fin.withTx;
    }

    /// assignTasks(ids) two blocks after the submission (the earliest it can draw), sent by `from`;
    /// checks every task came out Assigned.
    function _assignPhase(uint256[] memory ids, address from) internal returns (Phase memory a) {
        vm.roll(block.number + 2);
        vm.warp(block.timestamp + 24);
        a = _run(abi.encodeCall(tm.assignTasks, (ids)), from);
        for (uint256 i = 0; i < ids.length; ++i) {
            assertEq(tm.getTask(ids[i]).status, 1, "assigned");
        }
    }

    function _flow(uint256 n) internal returns (Flow memory fl) {
        bytes[] memory inputs = _inputs(n);
        uint256 first = tm.taskCount() + 1;
        fl.submit = n == 1
            ? _run(abi.encodeCall(tm.submitTask, (modelId, inputs[0], PRICE)), user)
            : _run(abi.encodeCall(tm.submitTasks, (modelId, inputs, PRICE)), user);

        uint256[] memory ids = new uint256[](n);
        bytes32[] memory hashes = new bytes32[](n);
        uint16[] memory codes = new uint16[](n);
        bytes[] memory outputs = new bytes[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
            hashes[i] = keccak256(abi.encode("output", ids[i]));
        }
        fl.assign = _assignPhase(ids, worker);
        vm.warp(block.timestamp + 5);
        address assigned = tm.getTask(ids[0]).worker;
        fl.commit = n == 1
            ? _run(abi.encodeCall(tm.commit, (ids[0], hashes[0], 0, "")), assigned)
            : _run(abi.encodeCall(tm.commitBatch, (ids, hashes, codes, outputs)), assigned);

        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        fl.fin = n == 1
            ? _run(abi.encodeCall(tm.finalize, (ids[0])), user)
            : _run(abi.encodeCall(tm.finalizeBatch, (ids)), user);
        assertEq(uint8(tm.getTask(ids[n - 1]).status), 4, "finalized");
    }

    function _log(string memory label, Phase memory ph, uint256 n) internal pure {
        console.log(string.concat(label, " per task exec / tx:"), ph.exec / n, ph.withTx / n);
    }

    /// Logs each phase and the end-to-end figures per task of an `n`-task flow (bench/run.sh reads
    /// "<label> end-to-end per task with tx cost:"); returns the end-to-end execution gas per task.
    function _logBatch(string memory label, Flow memory fl, uint256 n) internal pure returns (uint256 exec) {
        _log(string.concat(label, " submitTasks"), fl.submit, n);
        _log(string.concat(label, " assignTasks"), fl.assign, n);
        _log(string.concat(label, " commitBatch"), fl.commit, n);
        _log(string.concat(label, " finalizeBatch"), fl.fin, n);
        uint256 withTx;
        (exec, withTx) = _sum(fl);
        exec /= n;
        console.log(string.concat(label, " end-to-end per task exec:"), exec);
        console.log(string.concat(label, " end-to-end per task with tx cost:"), withTx / n);
    }

    /// A warm-up task first, so counters and payout balances are non-zero as in a running network.
    function _warmUp() internal {
        _flow(1);
    }

    /// forge-config: default.isolate = true
    function test_Gas_SingleTask() public {
        _warmUp();
        Flow memory fl = _flow(1);
        _log("single submitTask", fl.submit, 1);
        _log("single assignTasks([id])", fl.assign, 1);
        _log("single commit", fl.commit, 1);
        _log("single finalize", fl.fin, 1);
        (uint256 exec, uint256 withTx) = _sum(fl);
        console.log("single end-to-end exec:", exec);
        console.log("single end-to-end with tx cost:", withTx);
        // the assignment is a transaction of its own now: it must be counted, and cost real gas
        assertGt(fl.assign.withTx, 21_000, "assignTasks measured as its own transaction");
    }

    /// forge-config: default.isolate = true
    function test_Gas_Batch32_WithinDesignTarget() public {
        _warmUp();
        uint256 n = 32;
        Flow memory fl = _flow(n);
        uint256 exec = _logBatch("batch32", fl, n);
        // Execution gas (gasleft() deltas) of all four transactions, assignTasks included; `withTx` adds
        // each call's 21000 and calldata gas, shared by the 32 tasks, and is reported next to it.
        assertLe(
            exec,
            MEASURED_CEILING_PER_TASK,
            "batched end-to-end execution gas per task above its measured ceiling"
        );
        uint256 withoutAssign = (fl.submit.exec + fl.commit.exec + fl.fin.exec) / n;
        console.log("batch32 submit + commit + finalize per task exec (pre-H-3 scope):", withoutAssign);
        assertLe(
            withoutAssign,
            DESIGN_TARGET_PER_TASK,
            "submit + commit + finalize execution gas per task above the design target"
        );
        assertGt(fl.assign.exec / n, 10_000, "assignTasks draws each task: it is not free");
    }

    /// The same flow in batches of 256 (the TaskManager's batch limit raised to 256 by the admin):
    /// `make bench` reads its per-task figure (`gas-per-task-256`).
    /// forge-config: default.isolate = true
    function test_Gas_Batch256() public {
        vm.prank(admin);
        tm.setLimits(65_536, 256);
        _warmUp();
        uint256 n = 256;
        Flow memory fl = _flow(n);
        uint256 exec = _logBatch("batch256", fl, n);
        // larger batches share each transaction's fixed costs over more tasks
        assertLe(exec, MEASURED_CEILING_PER_TASK, "batch of 256 costs no more per task than 32");
    }

    /// Each worker commits its own tasks among `all` in one commitBatch; returns the summed gas.
    function _commitPerWorker(uint256[] memory all) internal returns (Phase memory sum, uint256 batches) {
        uint256 n = all.length;
        bool[] memory done = new bool[](n);
        for (uint256 i = 0; i < n; ++i) {
            if (done[i]) continue;
            address w = tm.getTask(all[i]).worker;
            uint256 k = 0;
            uint256[] memory ids = new uint256[](n);
            for (uint256 j = i; j < n; ++j) {
                if (!done[j] && tm.getTask(all[j]).worker == w) {
                    ids[k++] = all[j];
                    done[j] = true;
                }
            }
            assembly {
                mstore(ids, k)
            }
            bytes32[] memory hashes = new bytes32[](k);
            for (uint256 j = 0; j < k; ++j) {
                hashes[j] = keccak256(abi.encode("output", ids[j]));
            }
            Phase memory c =
                _run(abi.encodeCall(tm.commitBatch, (ids, hashes, new uint16[](k), new bytes[](k))), w);
            sum.exec += c.exec;
            sum.withTx += c.withTx;
            ++batches;
        }
    }

    /// 32 tasks over 8 workers (a realistic sortition tree): each worker commits its own tasks in one batch.
    /// forge-config: default.isolate = true
    function test_Gas_Batch32_EightWorkers() public {
        for (uint256 i = 1; i < 8; ++i) {
            _addWorker(string.concat("w", vm.toString(i)), modelId, 1000e18 + i * 50e18);
        }
        _warmUp();
        uint256 n = 32;
        uint256 first = tm.taskCount() + 1;
        Phase memory s = _run(abi.encodeCall(tm.submitTasks, (modelId, _inputs(n), PRICE)), user);
        uint256[] memory all = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            all[i] = first + i;
        }
        Phase memory a = _assignPhase(all, user);
        vm.warp(block.timestamp + 5);
        (Phase memory c, uint256 batches) = _commitPerWorker(all);
        assertGt(batches, 1, "the 32 tasks are spread over several of the 8 workers");
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        Phase memory f = _run(abi.encodeCall(tm.finalizeBatch, (all)), user);
        _log("8 workers: submitTasks(32)", s, n);
        _log("8 workers: assignTasks(32)", a, n);
        console.log("8 workers: commitBatch per worker, per task exec / tx:", c.exec / n, c.withTx / n);
        console.log("8 workers: commit batches:", batches);
        _log("8 workers: finalizeBatch(32)", f, n);
        console.log(
            "8 workers: end-to-end per task with tx cost:", (s.withTx + a.withTx + c.withTx + f.withTx) / n
        );
    }

    /// submit + assignTasks + commitBatch + finalizeBatch of `inputs`, the worker publishing `outputs` in the
    /// commit event;
    /// returns the per-task tx gas (what the senders pay, calldata included).
    function _payloadFlow(bytes[] memory inputs, bytes[] memory outputs) internal returns (uint256 perTask) {
        uint256 n = inputs.length;
        uint256 first = tm.taskCount() + 1;
        Phase memory s = _run(abi.encodeCall(tm.submitTasks, (modelId, inputs, PRICE)), user);
        uint256[] memory ids = new uint256[](n);
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
            hashes[i] = keccak256(abi.encode("output", ids[i]));
        }
        Phase memory a = _assignPhase(ids, worker);
        vm.warp(block.timestamp + 5);
        address assigned = tm.getTask(ids[0]).worker;
        Phase memory c =
            _run(abi.encodeCall(tm.commitBatch, (ids, hashes, new uint16[](n), outputs)), assigned);
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        Phase memory f = _run(abi.encodeCall(tm.finalizeBatch, (ids)), user);
        perTask = (s.withTx + a.withTx + c.withTx + f.withTx) / n;
    }

    function _filled(uint256 size, uint8 seed) internal pure returns (bytes memory b) {
        b = new bytes(size);
        for (uint256 i = 0; i < size; ++i) {
            b[i] = bytes1(uint8(uint256(keccak256(abi.encode(seed, i))) % 255) + 1);
        }
    }

    /// Off-chain payloads: a task carries a blob reference (5-byte magic, sha256, a GET URL: 131 bytes here)
    /// instead of its payload, and the worker publishes a reference to its output. Compared in the same
    /// run with the same tasks carrying a 16 KiB image inline and a 2 KiB answer in the commit event.
    /// forge-config: default.isolate = true
    function test_Gas_OffChainPayloads_VersusInline() public {
        _warmUp();
        uint256 n = 8;
        bytes memory ref = bytes.concat(
            hex"00444e4201",
            keccak256("payload"),
            bytes.concat("http://127.0.0.1:8700/blobs/", bytes(vm.toString(keccak256("payload"))))
        );
        assertEq(ref.length, 5 + 32 + 28 + 66);
        bytes[] memory refIn = new bytes[](n);
        bytes[] memory refOut = new bytes[](n);
        bytes[] memory bigIn = new bytes[](n);
        bytes[] memory bigOut = new bytes[](n);
        for (uint256 i = 0; i < n; ++i) {
            refIn[i] = ref;
            refOut[i] = ref;
            bigIn[i] = _filled(16 * 1024, uint8(i));
            bigOut[i] = _filled(2 * 1024, uint8(i + 100));
        }
        uint256 byRef = _payloadFlow(refIn, refOut);
        uint256 inline_ = _payloadFlow(bigIn, bigOut);
        console.log("payloads by reference, per task tx gas (batch of 8):", byRef);
        console.log("16 KiB input + 2 KiB output inline, per task tx gas (batch of 8):", inline_);
        console.log("inline / by reference (x100):", inline_ * 100 / byRef);
        assertLt(byRef * 4, inline_, "a reference costs a fraction of carrying the payload");
    }

    /// forge-config: default.isolate = true
    function test_Gas_Stake() public {
        address w = makeAddr("staker");
        _fund(w, 1000e18);
        vm.prank(w);
        token.approve(address(staking), 1000e18);
        _coolAll();
        vm.prank(w);
        uint256 g = gasleft();
        staking.stake(WORKER, 1000e18);
        console.log("stake (no models) tx incl. 21000 + calldata:", g - gasleft());
        vm.prank(w);
        registry.optIn(modelId);
        _fund(w, 1000e18);
        vm.prank(w);
        token.approve(address(staking), 1000e18);
        _coolAll();
        vm.prank(w);
        g = gasleft();
        staking.stake(WORKER, 1000e18);
        console.log("stake (1 model, weight sync) tx incl. 21000 + calldata:", g - gasleft());
    }
}
