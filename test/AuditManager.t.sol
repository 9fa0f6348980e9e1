// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {console} from "forge-std/console.sol";
import {Vm} from "forge-std/Vm.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {AuditFixture} from "./utils/AuditFixture.sol";
import {AuditManager} from "../contracts/AuditManager.sol";
import {IAuditManager} from "../contracts/interfaces/IAuditManager.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";
import {IStaking} from "../contracts/interfaces/IStaking.sol";
import {Verdicts} from "../contracts/libraries/Verdicts.sol";

/// @notice AuditManager: sealing and the audit draw, signed verdicts, disputes and slashing, user challenges,
///         forced errors, missed audits and canary reports, on the real contracts wired as Deploy.s.sol does.
contract AuditManagerTest is AuditFixture {
    uint8 internal constant ST_COMMITTED = 2;
    uint8 internal constant ST_FINALIZED = 4;
    uint8 internal constant ST_REFUNDED = 5;
    uint8 internal constant ST_DISPUTED = 6;

    uint8 internal constant A_PASSED = 1;
    uint8 internal constant A_DISPUTED = 2;
    uint8 internal constant A_FRAUD = 3;
    uint8 internal constant A_CLEARED = 4;
    uint8 internal constant A_UNDECIDED = 5;
    uint8 internal constant A_FORCED = 6;
    uint8 internal constant A_MISSED = 7;

    /// worker fee of one task at PRICE with the default split (1000 / 7500 / 1000 / 500)
    uint256 internal constant WORKER_FEE = 0.75e18;
    uint256 internal constant BOND = 10e18;

    address internal planter = makeAddr("planter");
    address internal relayer = makeAddr("relayer");

    function setUp() public {
        _deployAudit();
        vm.startPrank(admin);
        audit.grantRole(audit.PLANTER_ROLE(), planter);
        vm.stopPrank();
    }

    function _status(uint256 taskId) internal view returns (uint8) {
        return tm.getTask(taskId).status;
    }

    function _state(uint256 taskId) internal view returns (uint8) {
        return audit.auditRecord(taskId).state;
    }

    /// A committed (single commit), sealed task audited with certainty.
    function _audited() internal returns (uint256 taskId, uint256 batchId, address v, uint256 key) {
        _setRate(1e18, 1e18);
        (taskId, batchId) = _submitAndCommit();
        _seal(batchId);
        (v, key) = _drawn(batchId, taskId);
    }

    function _expectSubmitRevert(Verdicts.Verdict memory v, bytes memory sig, bytes memory err) internal {
        vm.expectRevert(err);
        _submitVerdict(v, sig, new bytes32[](0));
    }

    // ================================================================ defaults and validator set

    function test_Defaults() public view {
        IAuditManager.Params memory p = audit.params();
        assertEq(p.p0Wad, 0.3e18);
        assertEq(p.pMinWad, 0.02e18);
        assertEq(p.disputeWindow, 300);
        assertEq(p.quorum, 3);
        assertEq(p.fraudSlashBps, 5000);
        assertEq(p.falseAccusationSlashBps, 2000);
        assertEq(p.lazySlashBps, 5000);
        assertEq(p.rewardBps, 5000);
        assertEq(p.challengeBond, 10e18);
        // a new worker has the registry's default trust 0.2: p = max(0.02, 0.3 * 0.8)
        assertEq(registry.trustWeight(w1), 0.2e18);
        assertEq(audit.auditRate(w1), 0.24e18);
        assertEq(audit.totalValidatorWeight(), N_VALIDATORS * VALIDATOR_STAKE);
    }

    function test_AuditRate_FollowsTrustWithFloor() public {
        vm.startPrank(admin);
        registry.grantRole(registry.TRUST_ROLE(), admin);
        registry.setTrustWeight(w1, 0);
        assertEq(audit.auditRate(w1), 0.3e18);
        registry.setTrustWeight(w1, 0.5e18);
        assertEq(audit.auditRate(w1), 0.15e18);
        registry.setTrustWeight(w1, 0.95e18); // 0.015 < pMin
        assertEq(audit.auditRate(w1), 0.02e18);
        registry.setTrustWeight(w1, 1e18);
        assertEq(audit.auditRate(w1), 0.02e18);
        vm.stopPrank();
    }

    function test_SetParams_OnlyAdminAndBounded() public {
        IAuditManager.Params memory p = audit.params();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), bytes32(0)
            )
        );
        audit.setParams(p);
        vm.startPrank(admin);
        p.p0Wad = 1e18 + 1;
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.InvalidParameter.selector, "p0Wad", 1e18 + 1));
        audit.setParams(p);
        p.p0Wad = 0.3e18;
        p.quorum = 0;
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.InvalidParameter.selector, "quorum", 0));
        audit.setParams(p);
        p.quorum = 16;
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.InvalidParameter.selector, "quorum", 16));
        audit.setParams(p);
        p.quorum = 3;
        p.rewardBps = 10_001;
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.InvalidParameter.selector, "rewardBps", 10_001));
        audit.setParams(p);
        vm.stopPrank();
    }

    function test_JoinValidators_EligibleOnceAndSync() public {
        address v0 = vals[0];
        vm.prank(v0);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.AlreadyJoined.selector, v0));
        audit.joinValidators();
        address nobody = makeAddr("nobody");
        vm.prank(nobody);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotValidator.selector, nobody));
        audit.joinValidators();

        // Staking tells the AuditManager: the weight follows the stake in the same transaction
        uint256 before = block.number;
        vm.roll(before + 1);
        _fund(v0, 500e18);
        vm.startPrank(v0);
        token.approve(address(staking), 500e18);
        vm.expectEmit(address(audit));
        emit IAuditManager.ValidatorWeightUpdated(v0, 1500e18);
        staking.stake(VALIDATOR, 500e18);
        vm.stopPrank();
        assertEq(audit.validatorWeight(v0), 1500e18);
        assertEq(audit.totalValidatorWeight(), N_VALIDATORS * VALIDATOR_STAKE + 500e18);
        // the past is frozen: draws anchored on the earlier block still see the old weight
        assertEq(audit.validatorWeightAt(v0, before), VALIDATOR_STAKE);
        // a sync with nothing changed is a no-op; only Staking may push changes
        vm.recordLogs();
        audit.syncValidator(v0);
        assertEq(vm.getRecordedLogs().length, 0);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotStaking.selector, address(this)));
        audit.onStakeChanged(v0);
    }

    // ================================================================ 1. sealing

    function test_Seal_TooEarlyUntilSecondBlockAfterCommit() public {
        (, uint256 batchId) = _submitAndCommit();
        uint256 commitBlock = block.number;
        (address bw, uint64 cb) = tm.batchInfo(batchId);
        assertEq(bw, w1);
        assertEq(cb, commitBlock);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.TooEarlyToSeal.selector, batchId, commitBlock));
        audit.sealBatch(batchId);
        vm.roll(commitBlock + 1);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.TooEarlyToSeal.selector, batchId, commitBlock));
        audit.sealBatch(batchId);
        vm.roll(commitBlock + 2);
        audit.sealBatch(batchId);
    }

    function test_Seal_UsesNextBlockHashAndWorkerRate() public {
        (, uint256 batchId) = _submitAndCommit();
        uint256 commitBlock = block.number;
        vm.roll(commitBlock + 2);
        bytes32 r = blockhash(commitBlock + 1);
        assertTrue(r != bytes32(0));
        vm.expectEmit(address(audit));
        emit IAuditManager.BatchSealed(batchId, w1, r, 0.24e18, false);
        audit.sealBatch(batchId);
        IAuditManager.Seal memory s = audit.sealOf(batchId);
        assertEq(s.randomness, r);
        assertEq(s.pWad, 0.24e18);
        assertEq(s.pWad, audit.auditRate(w1));
        assertFalse(s.full);
    }

    function test_Seal_RateFixedAtSealing() public {
        vm.startPrank(admin);
        registry.grantRole(registry.TRUST_ROLE(), admin);
        registry.setTrustWeight(w1, 0.5e18);
        vm.stopPrank();
        (, uint256 batchId) = _submitAndCommit();
        _seal(batchId);
        assertEq(audit.sealOf(batchId).pWad, 0.15e18);
        // later trust changes do not move a sealed batch's rate
        vm.prank(admin);
        registry.setTrustWeight(w1, 0);
        assertEq(audit.sealOf(batchId).pWad, 0.15e18);
        assertEq(audit.auditRate(w1), 0.3e18);
    }

    function test_Seal_AlreadySealedAndUnknown() public {
        (, uint256 batchId) = _submitAndCommit();
        _seal(batchId);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.AlreadySealed.selector, batchId));
        audit.sealBatch(batchId);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.UnknownBatch.selector, 99));
        audit.sealBatch(99);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.UnknownBatch.selector, 0));
        audit.sealBatch(0);
    }

    function test_Seal_LateBatchAuditedInFull() public {
        _setRate(0, 0);
        // both batches committed in the same block (each submission's draw rolls the chain two blocks on)
        uint256 t1 = _submit(modelId);
        uint256 t2 = _submit(modelId);
        uint256 b1 = _commitHash(t1, _out(t1));
        uint256 b2 = _commitHash(t2, _out(t2));
        uint256 commitBlock = block.number;
        (, uint64 b1Block) = tm.batchInfo(b1);
        (, uint64 b2Block) = tm.batchInfo(b2);
        assertEq(b1Block, commitBlock);
        assertEq(b2Block, commitBlock);
        // the last block whose hash of commitBlock + 1 is still available
        vm.roll(commitBlock + 257);
        audit.sealBatch(b1);
        assertFalse(audit.sealOf(b1).full);
        assertEq(audit.sealOf(b1).pWad, 0);
        assertEq(audit.sealOf(b1).randomness, blockhash(commitBlock + 1));
        (bool audited,) = audit.auditOf(b1, t1);
        assertFalse(audited);

        vm.roll(commitBlock + 258);
        assertEq(blockhash(commitBlock + 1), bytes32(0));
        bytes32 r = keccak256(abi.encode(blockhash(block.number - 1), b2));
        vm.expectEmit(address(audit));
        emit IAuditManager.BatchSealed(b2, w1, r, 1e18, true);
        audit.sealBatch(b2);
        IAuditManager.Seal memory s = audit.sealOf(b2);
        assertTrue(s.full);
        assertEq(s.pWad, 1e18);
        assertEq(s.randomness, r);
        address v;
        (audited, v) = audit.auditOf(b2, t2);
        assertTrue(audited, "a late seal audits every task even at p0 = pMin = 0");
        assertTrue(v != address(0) && v != w1);
    }

    function test_SealBatches_SkipsSealed() public {
        (, uint256 b1) = _submitAndCommit();
        (, uint256 b2) = _submitAndCommit();
        _seal(b1);
        IAuditManager.Seal memory s1 = audit.sealOf(b1);
        vm.roll(block.number + 1);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (b1, b2);
        vm.recordLogs();
        audit.sealBatches(ids);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 sealedCount;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == IAuditManager.BatchSealed.selector) {
                ++sealedCount;
                assertEq(uint256(logs[i].topics[1]), b2);
            }
        }
        assertEq(sealedCount, 1, "only the unsealed batch");
        assertEq(audit.sealOf(b1).randomness, s1.randomness);
        assertTrue(audit.sealOf(b2).randomness != bytes32(0));
        // all sealed: a no-op
        audit.sealBatches(ids);

        vm.expectRevert(IAuditManager.EmptyBatch.selector);
        audit.sealBatches(new uint256[](0));
        ids[1] = 77;
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.UnknownBatch.selector, 77));
        audit.sealBatches(ids);
    }

    // ================================================================ 2. auditOf

    function test_AuditOf_NotSealed() public {
        (uint256 taskId, uint256 batchId) = _submitAndCommit();
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotSealed.selector, batchId));
        audit.auditOf(batchId, taskId);
    }

    function test_AuditOf_FullRate_EveryTaskAuditedNeverByItsWorker() public {
        // w1 is both the batch's worker and a validator in the draw
        _joinAs(w1, keyOf[w1], VALIDATOR_STAKE);
        assertEq(audit.validatorWeight(w1), VALIDATOR_STAKE);
        _setRate(1e18, 1e18);
        uint256[] memory ids = _submitMany(modelId, 48);
        (uint256 batchId,) = _commitMany(ids);
        _seal(batchId);
        for (uint256 i = 0; i < ids.length; ++i) {
            (bool audited, address v) = audit.auditOf(batchId, ids[i]);
            assertTrue(audited);
            assertTrue(v != w1, "the worker audits itself");
            assertEq(audit.validatorWeight(v), VALIDATOR_STAKE);
        }
    }

    function test_AuditOf_ZeroRate_NothingAudited() public {
        _setRate(0, 0);
        uint256[] memory ids = _submitMany(modelId, 48);
        (uint256 batchId,) = _commitMany(ids);
        _seal(batchId);
        assertEq(audit.sealOf(batchId).pWad, 0);
        for (uint256 i = 0; i < ids.length; ++i) {
            (bool audited, address v) = audit.auditOf(batchId, ids[i]);
            assertFalse(audited);
            assertEq(v, address(0));
        }
    }

    function test_AuditOf_FractionNearRate() public {
        _setRate(0.3e18, 0.3e18);
        uint256 audited;
        uint256 total;
        for (uint256 b = 0; b < 4; ++b) {
            uint256[] memory ids = _submitMany(modelId, 50);
            (uint256 batchId,) = _commitMany(ids);
            _seal(batchId);
            assertEq(audit.sealOf(batchId).pWad, 0.3e18);
            for (uint256 i = 0; i < ids.length; ++i) {
                (bool a,) = audit.auditOf(batchId, ids[i]);
                if (a) ++audited;
                ++total;
            }
        }
        console.log("audited of 200 at p = 0.3:", audited);
        assertEq(total, 200);
        assertGe(audited, 30, "below 15%");
        assertLe(audited, 90, "above 45%");
    }

    // ================================================================ 3. verdict accepted

    function test_Verdict_Match_AcceptedThenFinalizes() public {
        (uint256 taskId, uint256 batchId, address val, uint256 key) = _audited();
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        vm.expectEmit(address(audit));
        emit IAuditManager.VerdictAccepted(
            taskId, batchId, val, w1, _out(taskId), _out(taskId), QUALITY, true
        );
        vm.prank(relayer); // anyone may relay
        _submitVerdict(v, _sign(key, v), new bytes32[](0));

        IAuditManager.AuditRecord memory rec = audit.auditRecord(taskId);
        assertEq(rec.state, A_PASSED);
        assertEq(rec.accuser, val);
        assertEq(rec.qualityPpm, QUALITY);
        assertEq(rec.batchId, batchId);
        assertEq(rec.workerOutputHash, _out(taskId));
        assertEq(_status(taskId), ST_COMMITTED, "a passed task is not held");

        vm.warp(tm.getTask(taskId).deadline + 1);
        tm.finalize(taskId);
        assertEq(_status(taskId), ST_FINALIZED);
        assertEq(tm.payoutOf(w1), WORKER_FEE);
        assertEq(tm.escrowed(), 0);
    }

    function test_Verdict_BatchOfSevenWithProofs() public {
        _setRate(1e18, 1e18);
        uint256[] memory ids = _submitMany(modelId, 7);
        (uint256 batchId, bytes32[] memory hashes) = _commitMany(ids);
        _seal(batchId);
        bytes32[] memory leaves = _leaves(ids, hashes);
        Verdicts.Verdict[] memory vs = new Verdicts.Verdict[](7);
        bytes[] memory sigs = new bytes[](7);
        bytes32[][] memory proofs = new bytes32[][](7);
        for (uint256 i = 0; i < 7; ++i) {
            (, uint256 key) = _drawn(batchId, ids[i]);
            vs[i] = _verdict(ids[i], batchId, hashes[i], hashes[i], true);
            sigs[i] = _sign(key, vs[i]);
            proofs[i] = _proof(leaves, i);
        }
        // 7 -> 4 -> 2 -> 1: leaf 6 is promoted at the first level, so its proof is one node shorter
        assertEq(proofs[0].length, 3);
        assertEq(proofs[6].length, 2);
        audit.submitVerdicts(vs, sigs, proofs);
        for (uint256 i = 0; i < 7; ++i) {
            assertEq(_state(ids[i]), A_PASSED);
        }
    }

    // ================================================================ 4. rejections

    function test_Reject_ReplaySameVerdict() public {
        (uint256 taskId, uint256 batchId,, uint256 key) = _audited();
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        bytes memory sig = _sign(key, v);
        _submitVerdict(v, sig, new bytes32[](0));
        _expectSubmitRevert(
            v, sig, abi.encodeWithSelector(IAuditManager.AlreadyJudged.selector, taskId, A_PASSED)
        );
    }

    function test_Reject_ReplayOnOtherTask() public {
        _setRate(1e18, 1e18);
        uint256[] memory ids = _submitMany(modelId, 2);
        (uint256 batchId, bytes32[] memory hashes) = _commitMany(ids);
        _seal(batchId);
        bytes32[] memory leaves = _leaves(ids, hashes);
        (, uint256 key0) = _drawn(batchId, ids[0]);
        (address drawn1,) = _drawn(batchId, ids[1]);
        Verdicts.Verdict memory v = _verdict(ids[0], batchId, hashes[0], hashes[0], true);
        bytes memory sig = _sign(key0, v);
        _submitVerdict(v, sig, _proof(leaves, 0));

        v.taskId = ids[1];
        v.workerOutputHash = hashes[1];
        v.validatorOutputHash = hashes[1];
        address recovered = ECDSA.recover(Verdicts.digest(audit.domainSeparator(), v), sig);
        assertTrue(recovered != drawn1);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.WrongSigner.selector, ids[1], recovered, drawn1));
        _submitVerdict(v, sig, _proof(leaves, 1));
    }

    function test_Reject_ForgedSignature() public {
        (uint256 taskId, uint256 batchId, address drawn,) = _audited();
        (address forger, uint256 forgerKey) = makeAddrAndKey("forger");
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v,
            _sign(forgerKey, v),
            abi.encodeWithSelector(IAuditManager.WrongSigner.selector, taskId, forger, drawn)
        );
    }

    function test_Reject_NonDrawnValidator() public {
        (uint256 taskId, uint256 batchId, address drawn,) = _audited();
        address other = vals[0] == drawn ? vals[1] : vals[0];
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v,
            _sign(keyOf[other], v),
            abi.encodeWithSelector(IAuditManager.WrongSigner.selector, taskId, other, drawn)
        );
    }

    function test_Reject_MalformedSignature() public {
        (uint256 taskId, uint256 batchId,, uint256 key) = _audited();
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        bytes memory sig = _sign(key, v);
        bytes memory short = new bytes(64);
        for (uint256 i = 0; i < 64; ++i) {
            short[i] = sig[i];
        }
        _expectSubmitRevert(v, short, abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 64));
    }

    function test_Reject_ExpiredVerdict() public {
        (uint256 taskId, uint256 batchId,, uint256 key) = _audited();
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        v.deadline = uint64(block.timestamp + 10);
        bytes memory sig = _sign(key, v);
        vm.warp(block.timestamp + 11);
        _expectSubmitRevert(
            v, sig, abi.encodeWithSelector(IAuditManager.VerdictExpired.selector, taskId, v.deadline)
        );
        vm.warp(block.timestamp - 1); // at the deadline itself it is still accepted
        _submitVerdict(v, sig, new bytes32[](0));
    }

    function test_Reject_AfterChallengeWindow() public {
        (uint256 taskId, uint256 batchId,, uint256 key) = _audited();
        vm.warp(tm.getTask(taskId).deadline + 1);
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v, _sign(key, v), abi.encodeWithSelector(IAuditManager.TaskNotOpen.selector, taskId, ST_COMMITTED)
        );
    }

    function test_Reject_WrongOutputHash() public {
        (uint256 taskId, uint256 batchId,, uint256 key) = _audited();
        bytes32 wrong = keccak256("not committed");
        Verdicts.Verdict memory v = _verdict(taskId, batchId, wrong, wrong, true);
        _expectSubmitRevert(
            v,
            _sign(key, v),
            abi.encodeWithSelector(IAuditManager.NotInBatch.selector, taskId, batchId, wrong)
        );
    }

    function test_Reject_WrongBatch() public {
        uint32 model2 = _registerModel(PRICE);
        address w2 = _addWorker("w2", model2, WORKER_STAKE);
        (uint256 taskId, uint256 batchId, address drawn, uint256 key) = _audited();
        uint256 t2 = _submit(model2);
        assertEq(tm.getTask(t2).worker, w2);
        uint256 b2 = _commitHash(t2, _out(taskId)); // even the same output hash
        _seal(b2);
        assertTrue(drawn != address(0));

        Verdicts.Verdict memory v = _verdict(taskId, b2, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v, _sign(key, v), abi.encodeWithSelector(IAuditManager.WrongBatch.selector, taskId, b2)
        );
        uint256 huge = uint256(type(uint32).max) + 1 + batchId;
        v.batchId = huge;
        _expectSubmitRevert(
            v, _sign(key, v), abi.encodeWithSelector(IAuditManager.WrongBatch.selector, taskId, huge)
        );
    }

    function test_Reject_NotAudited() public {
        _setRate(0, 0);
        (uint256 taskId, uint256 batchId) = _submitAndCommit();
        _seal(batchId);
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v, _sign(keyOf[vals[0]], v), abi.encodeWithSelector(IAuditManager.NotAudited.selector, taskId)
        );
    }

    function test_Reject_NotSealed() public {
        _setRate(1e18, 1e18);
        (uint256 taskId, uint256 batchId) = _submitAndCommit();
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v, _sign(keyOf[vals[0]], v), abi.encodeWithSelector(IAuditManager.NotSealed.selector, batchId)
        );
    }

    function test_Reject_SignedForOtherDeployment() public {
        (uint256 taskId, uint256 batchId, address drawn, uint256 key) = _audited();
        AuditManager other = new AuditManager(admin, token, staking, tm, registry);
        assertTrue(other.domainSeparator() != audit.domainSeparator());
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        bytes memory sig = _signWith(key, other.domainSeparator(), v);
        address recovered = ECDSA.recover(Verdicts.digest(audit.domainSeparator(), v), sig);
        assertTrue(recovered != drawn);
        _expectSubmitRevert(
            v, sig, abi.encodeWithSelector(IAuditManager.WrongSigner.selector, taskId, recovered, drawn)
        );
    }

    function test_Reject_SignedForOtherChain() public {
        (uint256 taskId, uint256 batchId, address drawn, uint256 key) = _audited();
        uint256 chain = block.chainid;
        bytes32 here = audit.domainSeparator();
        vm.chainId(chain + 1);
        bytes32 there = audit.domainSeparator();
        vm.chainId(chain);
        assertTrue(there != here);
        assertEq(audit.domainSeparator(), here);
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        bytes memory sig = _signWith(key, there, v);
        address recovered = ECDSA.recover(Verdicts.digest(here, v), sig);
        _expectSubmitRevert(
            v, sig, abi.encodeWithSelector(IAuditManager.WrongSigner.selector, taskId, recovered, drawn)
        );
    }

    function test_Reject_InvalidQuality() public {
        (uint256 taskId, uint256 batchId,, uint256 key) = _audited();
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        v.qualityPpm = 1_000_001;
        _expectSubmitRevert(
            v, _sign(key, v), abi.encodeWithSelector(IAuditManager.InvalidQuality.selector, 1_000_001)
        );
        v.qualityPpm = 1_000_000;
        _submitVerdict(v, _sign(key, v), new bytes32[](0));
        assertEq(audit.auditRecord(taskId).qualityPpm, 1_000_000);
    }

    function test_Reject_LengthMismatchAndEmpty() public {
        (uint256 taskId, uint256 batchId,, uint256 key) = _audited();
        Verdicts.Verdict[] memory vs = new Verdicts.Verdict[](1);
        vs[0] = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _sign(key, vs[0]);
        vm.expectRevert(IAuditManager.LengthMismatch.selector);
        audit.submitVerdicts(vs, sigs, new bytes32[][](0));
        vm.expectRevert(IAuditManager.LengthMismatch.selector);
        audit.submitVerdicts(vs, new bytes[](2), new bytes32[][](1));
        vm.expectRevert(IAuditManager.EmptyBatch.selector);
        audit.submitVerdicts(new Verdicts.Verdict[](0), new bytes[](0), new bytes32[][](0));
    }

    // ================================================================ 5. disputes: fraud

    /// An audited task whose drawn validator posts a mismatch verdict; w1 is a validator too (excluded).
    function _openDispute() internal returns (uint256 taskId, address accuser, address[] memory members) {
        _joinAs(w1, keyOf[w1], VALIDATOR_STAKE);
        uint256 batchId;
        (taskId, batchId,,) = _audited();
        vm.recordLogs();
        accuser = _judge(taskId, batchId, false);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool found;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] != IAuditManager.DisputeOpened.selector) continue;
            found = true;
            assertEq(uint256(logs[i].topics[1]), taskId);
            assertEq(address(uint160(uint256(logs[i].topics[2]))), w1);
            assertEq(address(uint160(uint256(logs[i].topics[3]))), accuser);
            (uint8 opener, uint64 quorumBlock, uint64 deadline) =
                abi.decode(logs[i].data, (uint8, uint64, uint64));
            assertEq(opener, 0);
            assertEq(quorumBlock, block.number);
            assertEq(deadline, block.timestamp + 300);
        }
        assertTrue(found, "DisputeOpened");
        assertEq(audit.disputeOf(taskId).members.length, 0, "no quorum before the next block's hash");
        members = _drawQuorum(taskId);
        IAuditManager.Dispute memory d = audit.disputeOf(taskId);
        assertEq(d.members.length, 3);
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(d.members[i], members[i]);
            assertTrue(members[i] != accuser && members[i] != w1, "accuser or worker in the quorum");
            assertEq(audit.validatorWeight(members[i]), VALIDATOR_STAKE);
            for (uint256 j = 0; j < i; ++j) {
                assertTrue(members[i] != members[j], "duplicate member");
            }
        }
    }

    function test_Dispute_MismatchHoldsTask() public {
        (uint256 taskId, address accuser,) = _openDispute();
        IAuditManager.Dispute memory d = audit.disputeOf(taskId);
        assertEq(d.worker, w1);
        assertEq(d.accuser, accuser);
        assertEq(d.opener, 0);
        assertEq(d.deadline, block.timestamp + 300);
        assertEq(d.bond, 0);
        assertEq(_state(taskId), A_DISPUTED);
        assertEq(_status(taskId), ST_DISPUTED);
        vm.warp(tm.getTask(taskId).deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, taskId, ST_DISPUTED));
        tm.finalize(taskId);
    }

    function test_Dispute_FraudMajority_SlashesWorkerRefundsSubmitter() public {
        (uint256 taskId, address accuser, address[] memory m) = _openDispute();
        uint64 deadline = audit.disputeOf(taskId).deadline;

        vm.expectRevert(abi.encodeWithSelector(IAuditManager.DisputeOpen.selector, taskId, deadline));
        audit.resolveDispute(taskId);
        vm.prank(accuser);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotQuorumMember.selector, taskId, accuser));
        audit.vote(taskId, true, bytes32(0));
        vm.prank(w1);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotQuorumMember.selector, taskId, w1));
        audit.vote(taskId, false, bytes32(0));

        vm.expectEmit(address(audit));
        emit IAuditManager.DisputeVoted(taskId, m[0], true, keccak256("recomputed"));
        vm.prank(m[0]);
        audit.vote(taskId, true, keccak256("recomputed"));
        vm.prank(m[0]);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.AlreadyVoted.selector, taskId, m[0]));
        audit.vote(taskId, true, bytes32(0));
        // one of three is no majority yet
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.DisputeOpen.selector, taskId, deadline));
        audit.resolveDispute(taskId);

        uint256 supply = token.totalSupply();
        uint256 accuserBal = token.balanceOf(accuser);
        uint256 userPayout = tm.payoutOf(user);
        uint256 escrow = tm.escrowed();
        assertEq(escrow, PRICE);

        vm.expectEmit(address(audit));
        emit IAuditManager.DisputeResolved(taskId, A_FRAUD, 2, 0);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskReleased(taskId, true);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskRefunded(taskId, user, PRICE);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(w1, WORKER, 1, 500e18, accuser, 250e18, 250e18);
        vm.prank(m[1]);
        audit.vote(taskId, true, bytes32(0)); // the majority resolves at once

        assertEq(_state(taskId), A_FRAUD);
        assertEq(_status(taskId), ST_REFUNDED);
        assertEq(staking.stakeOf(w1, WORKER), 500e18);
        assertEq(staking.stakeOf(w1, VALIDATOR), VALIDATOR_STAKE, "only the worker role is slashed");
        assertEq(token.balanceOf(accuser), accuserBal + 250e18);
        assertEq(token.totalSupply(), supply - 250e18);
        assertEq(tm.payoutOf(user), userPayout + PRICE);
        assertEq(tm.payoutOf(w1), 0);
        assertEq(tm.escrowed(), escrow - PRICE);
        assertEq(registry.trustWeight(w1), 0);
        assertEq(registry.weightOf(modelId, w1), 0);
        assertEq(staking.stakeOf(accuser, VALIDATOR), VALIDATOR_STAKE);

        vm.prank(m[2]);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NoDispute.selector, taskId));
        audit.vote(taskId, true, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NoDispute.selector, taskId));
        audit.resolveDispute(taskId);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.WrongStatus.selector, taskId, ST_REFUNDED));
        tm.finalize(taskId);
    }

    function test_Dispute_VoteAfterDeadline() public {
        (uint256 taskId,, address[] memory m) = _openDispute();
        uint64 deadline = audit.disputeOf(taskId).deadline;
        vm.warp(deadline);
        vm.prank(m[0]);
        audit.vote(taskId, true, bytes32(0)); // at the deadline itself
        vm.warp(deadline + 1);
        vm.prank(m[1]);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.DisputeClosed.selector, taskId, deadline));
        audit.vote(taskId, true, bytes32(0));
    }

    function test_Dispute_NoDisputeWithoutOne() public {
        (uint256 taskId,,,) = _audited();
        vm.prank(vals[0]);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NoDispute.selector, taskId));
        audit.vote(taskId, true, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NoDispute.selector, taskId));
        audit.resolveDispute(taskId);
    }

    // ================================================================ 6. false accusation

    function test_Dispute_FalseAccusation_SlashesValidatorPaysWorker() public {
        (uint256 taskId, address accuser, address[] memory m) = _openDispute();
        uint256 supply = token.totalSupply();
        uint256 workerBal = token.balanceOf(w1);

        vm.prank(m[2]);
        audit.vote(taskId, false, _out(taskId));
        vm.expectEmit(address(audit));
        emit IAuditManager.DisputeResolved(taskId, A_CLEARED, 0, 2);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskReleased(taskId, false);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(accuser, VALIDATOR, 2, 200e18, w1, 100e18, 100e18);
        vm.prank(m[0]);
        audit.vote(taskId, false, _out(taskId));

        assertEq(_state(taskId), A_CLEARED);
        assertEq(staking.stakeOf(accuser, VALIDATOR), 800e18);
        assertEq(token.balanceOf(w1), workerBal + 100e18);
        assertEq(token.totalSupply(), supply - 100e18);
        assertEq(staking.stakeOf(w1, WORKER), WORKER_STAKE);
        assertEq(registry.trustWeight(w1), 0.2e18);

        // back to Committed with the window closed now: finalizable from the next second
        ITaskManager.TaskView memory t = tm.getTask(taskId);
        assertEq(t.status, ST_COMMITTED);
        assertEq(t.deadline, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.ChallengeWindowOpen.selector, taskId, t.deadline));
        tm.finalize(taskId);
        vm.warp(block.timestamp + 1);
        tm.finalize(taskId);
        assertEq(_status(taskId), ST_FINALIZED);
        assertEq(tm.payoutOf(w1), WORKER_FEE);
        assertEq(tm.escrowed(), 0);
    }

    // ================================================================ 7. undecided

    function test_Dispute_NoVotes_UndecidedAtDeadline() public {
        (uint256 taskId, address accuser, address[] memory m) = _openDispute();
        uint64 deadline = audit.disputeOf(taskId).deadline;
        uint256 supply = token.totalSupply();
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.DisputeOpen.selector, taskId, deadline));
        audit.resolveDispute(taskId);
        vm.warp(deadline + 1);
        vm.expectEmit(address(audit));
        emit IAuditManager.DisputeResolved(taskId, A_UNDECIDED, 0, 0);
        for (uint256 i = 0; i < m.length; ++i) {
            vm.expectEmit(address(audit));
            emit IAuditManager.DeadlineMissed(taskId, m[i], 1);
        }
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskReleased(taskId, false);
        vm.prank(relayer);
        audit.resolveDispute(taskId);

        assertEq(_state(taskId), A_UNDECIDED);
        assertEq(token.totalSupply(), supply, "nothing burned");
        assertEq(staking.stakeOf(accuser, VALIDATOR), VALIDATOR_STAKE);
        assertEq(staking.stakeOf(w1, WORKER), WORKER_STAKE);
        assertEq(_status(taskId), ST_COMMITTED);
        vm.warp(block.timestamp + 1);
        tm.finalize(taskId);
        assertEq(tm.payoutOf(w1), WORKER_FEE);
    }

    function test_Dispute_TieAtDeadline_ChargesOnlyTheAbsentee() public {
        (uint256 taskId,, address[] memory m) = _openDispute();
        vm.prank(m[0]);
        audit.vote(taskId, true, bytes32(0));
        vm.prank(m[1]);
        audit.vote(taskId, false, bytes32(0));
        vm.warp(audit.disputeOf(taskId).deadline + 1);
        vm.recordLogs();
        audit.resolveDispute(taskId);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 missed;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == IAuditManager.DeadlineMissed.selector) {
                ++missed;
                assertEq(address(uint160(uint256(logs[i].topics[2]))), m[2]);
            }
        }
        assertEq(missed, 1);
        assertEq(_state(taskId), A_UNDECIDED);
    }

    function test_Dispute_EarlyMajority_ChargesNoAbsentee() public {
        (uint256 taskId,, address[] memory m) = _openDispute();
        vm.prank(m[0]);
        audit.vote(taskId, true, bytes32(0));
        vm.recordLogs();
        vm.prank(m[1]);
        audit.vote(taskId, true, bytes32(0));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            assertTrue(logs[i].topics[0] != IAuditManager.DeadlineMissed.selector);
        }
        assertEq(_state(taskId), A_FRAUD);
    }

    // ================================================================ 8. user challenge

    function test_Challenge_OnlySubmitterInsideWindow() public {
        (uint256 taskId, uint256 batchId) = _submitAndCommit();
        address stranger = makeAddr("stranger");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotSubmitter.selector, taskId, stranger));
        audit.challenge(taskId, batchId, _out(taskId), new bytes32[](0));

        bytes32 wrong = keccak256("wrong");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotInBatch.selector, taskId, batchId, wrong));
        audit.challenge(taskId, batchId, wrong, new bytes32[](0));

        uint256 bal = token.balanceOf(user);
        vm.warp(tm.getTask(taskId).deadline + 1);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.TaskNotOpen.selector, taskId, ST_COMMITTED));
        audit.challenge(taskId, batchId, _out(taskId), new bytes32[](0));
        assertEq(token.balanceOf(user), bal);
    }

    function _challenged() internal returns (uint256 taskId, address[] memory m) {
        _setRate(0, 0); // not audited: only the user's challenge judges it
        uint256 batchId;
        (taskId, batchId) = _submitAndCommit();
        uint256 bal = token.balanceOf(user);
        vm.prank(user);
        audit.challenge(taskId, batchId, _out(taskId), new bytes32[](0));
        assertEq(token.balanceOf(user), bal - BOND, "bond pulled");
        assertEq(token.balanceOf(address(audit)), BOND);
        IAuditManager.Dispute memory d = audit.disputeOf(taskId);
        assertEq(d.accuser, user);
        assertEq(d.worker, w1);
        assertEq(d.opener, 1);
        assertEq(d.bond, BOND);
        assertFalse(d.quorumDrawn);
        _drawQuorum(taskId);
        d = audit.disputeOf(taskId);
        assertEq(d.members.length, 3);
        IAuditManager.AuditRecord memory rec = audit.auditRecord(taskId);
        assertEq(rec.state, A_DISPUTED);
        assertEq(rec.accuser, user);
        assertEq(rec.batchId, batchId);
        assertEq(_status(taskId), ST_DISPUTED);
        m = d.members;
    }

    function test_Challenge_Fraud_BondBackBountyAndRefund() public {
        (uint256 taskId, address[] memory m) = _challenged();
        uint256 bal = token.balanceOf(user);
        uint256 payout = tm.payoutOf(user);
        uint256 supply = token.totalSupply();
        vm.prank(m[0]);
        audit.vote(taskId, true, bytes32(0));
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(w1, WORKER, 1, 500e18, user, 250e18, 250e18);
        vm.prank(m[1]);
        audit.vote(taskId, true, bytes32(0));
        assertEq(_state(taskId), A_FRAUD);
        assertEq(token.balanceOf(user), bal + BOND + 250e18, "bond back plus bounty");
        assertEq(token.balanceOf(address(audit)), 0);
        assertEq(tm.payoutOf(user), payout + PRICE, "fee refunded");
        assertEq(token.totalSupply(), supply - 250e18);
        assertEq(staking.stakeOf(w1, WORKER), 500e18);
        assertEq(_status(taskId), ST_REFUNDED);
        assertEq(audit.disputeOf(taskId).bond, 0);
    }

    function test_Challenge_Honest_BondToWorker() public {
        (uint256 taskId, address[] memory m) = _challenged();
        uint256 userBal = token.balanceOf(user);
        uint256 workerBal = token.balanceOf(w1);
        uint256 supply = token.totalSupply();
        vm.prank(m[0]);
        audit.vote(taskId, false, _out(taskId));
        vm.prank(m[2]);
        audit.vote(taskId, false, _out(taskId));
        assertEq(_state(taskId), A_CLEARED);
        assertEq(token.balanceOf(w1), workerBal + BOND);
        assertEq(token.balanceOf(user), userBal);
        assertEq(token.balanceOf(address(audit)), 0);
        assertEq(token.totalSupply(), supply);
        assertEq(staking.stakeOf(w1, WORKER), WORKER_STAKE);
        vm.warp(block.timestamp + 1);
        tm.finalize(taskId);
        assertEq(tm.payoutOf(w1), WORKER_FEE);
    }

    function test_Challenge_Undecided_BondBack() public {
        (uint256 taskId,) = _challenged();
        uint256 userBal = token.balanceOf(user);
        vm.warp(audit.disputeOf(taskId).deadline + 1);
        audit.resolveDispute(taskId);
        assertEq(_state(taskId), A_UNDECIDED);
        assertEq(token.balanceOf(user), userBal + BOND);
        assertEq(token.balanceOf(address(audit)), 0);
    }

    function test_Challenge_AfterVerdict_AlreadyJudged() public {
        (uint256 taskId, uint256 batchId,,) = _audited();
        _judge(taskId, batchId, true);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.AlreadyJudged.selector, taskId, A_PASSED));
        audit.challenge(taskId, batchId, _out(taskId), new bytes32[](0));
    }

    function test_Challenge_ThenVerdict_AlreadyJudged() public {
        (uint256 taskId, uint256 batchId, address drawn, uint256 key) = _audited();
        vm.prank(user);
        audit.challenge(taskId, batchId, _out(taskId), new bytes32[](0));
        assertTrue(drawn != address(0));
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v, _sign(key, v), abi.encodeWithSelector(IAuditManager.AlreadyJudged.selector, taskId, A_DISPUTED)
        );
    }

    // ================================================================ 9. forced errors

    function _commitment(uint256 taskId, bytes32 trueHash, bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode(taskId, trueHash, salt));
    }

    /// The sentinel's submitter: a wallet with no stake and no on-chain link to the planter.
    uint256 internal constant SUBMITTER_KEY = 0x5E17;

    /// A task of the sentinel's submitter, drawn to w1 (the sentinel worker).
    function _planterTask() internal returns (uint256 taskId) {
        address submitter = vm.addr(SUBMITTER_KEY);
        _fund(submitter, PRICE);
        vm.startPrank(submitter);
        token.approve(address(tm), type(uint256).max);
        taskId = tm.submitTask(modelId, _input(0), PRICE);
        vm.stopPrank();
        _assign(taskId, 1);
    }

    /// The submitter's and the sentinel worker's consents to `planter` revealing `taskId`.
    function _consents(uint256 taskId, address by) internal view returns (bytes memory, bytes memory) {
        return (_consent(SUBMITTER_KEY, taskId, by), _consent(keyOf[w1], taskId, by));
    }

    /// The sentinel worker (w1) commits `wrong` for a task whose true output `_out(taskId)` was committed to by
    /// the planter one block earlier; the drawn validator then approves (rubber stamp) or disputes it.
    function _forcedError(bool approve)
        internal
        returns (uint256 taskId, address validator, bytes32 salt, bytes32 wrong)
    {
        _setRate(1e18, 1e18);
        taskId = _planterTask();
        salt = keccak256("salt");
        bytes32 c = _commitment(taskId, _out(taskId), salt);
        vm.expectEmit(address(audit));
        emit IAuditManager.ForcedErrorPlanted(c, planter);
        vm.prank(planter);
        audit.plantForcedError(c);
        vm.roll(block.number + 1);
        wrong = keccak256(abi.encode("planted wrong", taskId));
        uint256 batchId = _commitHash(taskId, wrong);
        _seal(batchId);
        uint256 key;
        (validator, key) = _drawn(batchId, taskId);
        Verdicts.Verdict memory v = approve
            ? _verdict(taskId, batchId, wrong, wrong, true)
            : _verdict(taskId, batchId, wrong, _out(taskId), false);
        _submitVerdict(v, _sign(key, v), new bytes32[](0));
    }

    function test_ForcedError_OnlyPlanter() public {
        bytes32 role = audit.PLANTER_ROLE();
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, user, role)
        );
        audit.plantForcedError(keccak256("x"));
    }

    function test_Exploit_M6_CopiedRevealEarnsNothing() public {
        (uint256 taskId, address validator, bytes32 salt,) = _forcedError(true);
        (bytes memory sSig, bytes memory wSig) = _consents(taskId, planter);
        assertEq(_state(taskId), A_PASSED, "the rubber stamp was accepted");
        address revealer = makeAddr("revealer");
        uint256 supply = token.totalSupply();
        vm.expectEmit(address(audit));
        emit IAuditManager.ForcedErrorRevealed(taskId, validator, true);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(validator, VALIDATOR, 3, 500e18, planter, 250e18, 250e18);
        vm.prank(revealer);
        audit.revealForcedError(taskId, _out(taskId), salt, sSig, wSig);
        assertEq(_state(taskId), A_FORCED);
        assertEq(staking.stakeOf(validator, VALIDATOR), 500e18);
        assertEq(token.balanceOf(planter), 250e18, "the bounty goes to the planter");
        assertEq(token.balanceOf(revealer), 0, "not to whoever sent the reveal");
        assertEq(token.totalSupply(), supply - 250e18);
        assertEq(staking.stakeOf(w1, WORKER), WORKER_STAKE, "the sentinel worker is not slashed");
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotForcedError.selector, taskId));
        audit.revealForcedError(taskId, _out(taskId), salt, sSig, wSig);
    }

    function test_ForcedError_CaughtClosesDisputeWithoutSlash() public {
        (uint256 taskId, address validator, bytes32 salt,) = _forcedError(false);
        (bytes memory sSig, bytes memory wSig) = _consents(taskId, planter);
        address submitter = vm.addr(SUBMITTER_KEY);
        assertEq(_state(taskId), A_DISPUTED);
        assertEq(_status(taskId), ST_DISPUTED);
        address[] memory m = _drawQuorum(taskId);
        vm.prank(m[0]);
        audit.vote(taskId, true, _out(taskId));
        uint256 supply = token.totalSupply();
        uint256 payout = tm.payoutOf(submitter);
        vm.expectEmit(address(audit));
        emit IAuditManager.ForcedErrorRevealed(taskId, validator, false);
        vm.expectEmit(address(audit));
        emit IAuditManager.DisputeResolved(taskId, A_FORCED, 1, 0);
        vm.expectEmit(address(tm));
        emit ITaskManager.TaskRefunded(taskId, submitter, PRICE);
        audit.revealForcedError(taskId, _out(taskId), salt, sSig, wSig);
        assertEq(_state(taskId), A_FORCED);
        assertEq(_status(taskId), ST_REFUNDED);
        assertEq(tm.payoutOf(submitter), payout + PRICE);
        assertEq(tm.escrowed(), 0);
        assertEq(token.totalSupply(), supply, "nobody slashed");
        assertEq(staking.stakeOf(validator, VALIDATOR), VALIDATOR_STAKE);
        assertEq(staking.stakeOf(w1, WORKER), WORKER_STAKE);
        assertEq(registry.trustWeight(w1), 0.2e18);
        vm.prank(m[1]);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NoDispute.selector, taskId));
        audit.vote(taskId, true, bytes32(0));
    }

    /// Both consents are needed, and each names its planter: a signature given to one planter does not let
    /// another reveal, and the submitter's alone (or the worker's alone) is not enough.
    function test_ForcedError_NeedsBothConsentsForThisPlanter() public {
        (uint256 taskId, address validator, bytes32 salt,) = _forcedError(true);
        address other = makeAddr("other planter");
        (bytes memory sOther, bytes memory wOther) = _consents(taskId, other);
        (bytes memory sSig, bytes memory wSig) = _consents(taskId, planter);
        bytes memory stranger = _consent(0xBAD, taskId, planter);
        bytes[2][4] memory bad = [[sOther, wOther], [sSig, stranger], [stranger, wSig], [wSig, sSig]];
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotForcedError.selector, taskId));
            audit.revealForcedError(taskId, _out(taskId), salt, bad[i][0], bad[i][1]);
        }
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotForcedError.selector, taskId));
        audit.revealForcedError(taskId, _out(taskId), salt, hex"1234", wSig);
        assertEq(staking.stakeOf(validator, VALIDATOR), VALIDATOR_STAKE, "nothing slashed without consent");
        audit.revealForcedError(taskId, _out(taskId), salt, sSig, wSig);
        assertEq(_state(taskId), A_FORCED);
    }

    function test_ForcedError_CommitmentTooLate() public {
        _setRate(1e18, 1e18);
        uint256 taskId = _planterTask();
        (bytes memory sSig, bytes memory wSig) = _consents(taskId, planter);
        bytes32 wrong = keccak256("wrong");
        bytes32 inBlock = _commitment(taskId, _out(taskId), "in");
        bytes32 after_ = _commitment(taskId, _out(taskId), "after");
        vm.prank(planter);
        audit.plantForcedError(inBlock);
        uint256 batchId = _commitHash(taskId, wrong);
        uint256 commitBlock = block.number;
        vm.roll(block.number + 1);
        vm.prank(planter);
        audit.plantForcedError(after_);
        _seal(batchId);
        (, uint256 key) = _drawn(batchId, taskId);
        Verdicts.Verdict memory v = _verdict(taskId, batchId, wrong, wrong, true);
        _submitVerdict(v, _sign(key, v), new bytes32[](0));

        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditManager.CommitmentTooLate.selector, inBlock, commitBlock, commitBlock
            )
        );
        audit.revealForcedError(taskId, _out(taskId), "in", sSig, wSig);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditManager.CommitmentTooLate.selector, after_, commitBlock + 1, commitBlock
            )
        );
        audit.revealForcedError(taskId, _out(taskId), "after", sSig, wSig);
    }

    function test_ForcedError_UnknownCommitment() public {
        (uint256 taskId,,,) = _forcedError(true);
        (bytes memory sSig, bytes memory wSig) = _consents(taskId, planter);
        bytes32 c = _commitment(taskId, _out(taskId), "other salt");
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.UnknownCommitment.selector, c));
        audit.revealForcedError(taskId, _out(taskId), "other salt", sSig, wSig);
    }

    function test_ForcedError_NotForcedErrorWhenHashTrueOrNoVerdict() public {
        _setRate(1e18, 1e18);
        uint256 taskId = _planterTask();
        (bytes memory sSig, bytes memory wSig) = _consents(taskId, planter);
        vm.prank(planter);
        audit.plantForcedError(_commitment(taskId, _out(taskId), "s"));
        vm.roll(block.number + 1);
        uint256 batchId = _commitHash(taskId, _out(taskId)); // the worker committed the true result
        // no verdict yet
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotForcedError.selector, taskId));
        audit.revealForcedError(taskId, _out(taskId), "s", sSig, wSig);
        _seal(batchId);
        _judge(taskId, batchId, true);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotForcedError.selector, taskId));
        audit.revealForcedError(taskId, _out(taskId), "s", sSig, wSig);
    }

    // ================================================================ 10. missed audits

    function test_MissedAudit_AfterWindow() public {
        (uint256 taskId, uint256 batchId, address drawn, uint256 key) = _audited();
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotMissed.selector, taskId));
        audit.reportMissedAudit(batchId, taskId, _out(taskId), new bytes32[](0));
        uint64 end = tm.getTask(taskId).deadline;
        vm.warp(end);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotMissed.selector, taskId));
        audit.reportMissedAudit(batchId, taskId, _out(taskId), new bytes32[](0));

        vm.warp(end + 1);
        // the task must be proven in the named batch
        bytes32 wrong = keccak256("not committed");
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotInBatch.selector, taskId, batchId, wrong));
        audit.reportMissedAudit(batchId, taskId, wrong, new bytes32[](0));
        vm.expectEmit(address(audit));
        emit IAuditManager.DeadlineMissed(taskId, drawn, 0);
        vm.prank(relayer);
        audit.reportMissedAudit(batchId, taskId, _out(taskId), new bytes32[](0));
        IAuditManager.AuditRecord memory rec = audit.auditRecord(taskId);
        assertEq(rec.state, A_MISSED);
        assertEq(rec.accuser, drawn);
        assertEq(rec.batchId, batchId);

        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), _out(taskId), true);
        _expectSubmitRevert(
            v, _sign(key, v), abi.encodeWithSelector(IAuditManager.AlreadyJudged.selector, taskId, A_MISSED)
        );
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.AlreadyJudged.selector, taskId, A_MISSED));
        audit.reportMissedAudit(batchId, taskId, _out(taskId), new bytes32[](0));
        // the worker is still paid: a missed audit is the validator's fault
        tm.finalize(taskId);
        assertEq(tm.payoutOf(w1), WORKER_FEE);
    }

    function test_MissedAudit_FinalizedTaskAndNotAudited() public {
        (uint256 taskId, uint256 batchId, address drawn,) = _audited();
        vm.warp(tm.getTask(taskId).deadline + 1);
        tm.finalize(taskId);
        vm.expectEmit(address(audit));
        emit IAuditManager.DeadlineMissed(taskId, drawn, 0);
        audit.reportMissedAudit(batchId, taskId, _out(taskId), new bytes32[](0));

        _setRate(0, 0);
        uint256 t2;
        uint256 b2;
        (t2, b2) = _submitAndCommit();
        _seal(b2);
        vm.warp(tm.getTask(t2).deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotAudited.selector, t2));
        audit.reportMissedAudit(b2, t2, _out(t2), new bytes32[](0));
    }

    // ================================================================ 11. canary reports

    function test_Canary_SubmitterAuthorizesAValidatorBySignature() public {
        (uint256 canaryKey, address canary) = (0xCA7A, vm.addr(0xCA7A));
        deal(address(token), canary, 100e18);
        vm.prank(canary);
        token.approve(address(tm), type(uint256).max);
        vm.prank(canary);
        uint256 taskId = tm.submitTask(modelId, hex"01", type(uint256).max);
        _assign(taskId, 1);
        _commitHash(taskId, _out(taskId));
        address validator = vals[0];
        bytes memory sig =
            _signTyped(canaryKey, keccak256(abi.encode(audit.CANARY_TYPEHASH(), taskId, validator)));
        // the signature names the validator: another one cannot use it
        vm.prank(vals[1]);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotSubmitter.selector, taskId, vals[1]));
        audit.reportCanary(taskId, keccak256("known"), true, 1_000_000, sig);
        // a malformed signature is refused the same way
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotSubmitter.selector, taskId, validator));
        audit.reportCanary(taskId, keccak256("known"), true, 1_000_000, hex"1234");
        vm.expectEmit(address(audit));
        emit IAuditManager.CanaryReported(
            taskId, tm.getTask(taskId).worker, modelId, validator, keccak256("known"), true, 1_000_000
        );
        vm.prank(validator);
        audit.reportCanary(taskId, keccak256("known"), true, 1_000_000, sig);
    }

    function test_Canary_SubmitterWithValidatorStake() public {
        (uint256 taskId,) = _submitAndCommit();
        bytes32 expected = keccak256("known answer");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotValidator.selector, user));
        audit.reportCanary(taskId, expected, true, 1_000_000, "");

        _stake(user, VALIDATOR, VALIDATOR_STAKE);
        address stranger = vals[0];
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.NotSubmitter.selector, taskId, stranger));
        audit.reportCanary(taskId, expected, true, 1_000_000, "");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.InvalidQuality.selector, 1_000_001));
        audit.reportCanary(taskId, expected, true, 1_000_001, "");

        // a match carries the minimum quality (M-5), a failure needs a quorum's Fraud (M-7, see Exploits)
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.InvalidQuality.selector, 123_456));
        audit.reportCanary(taskId, expected, true, 123_456, "");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.CanaryNotProven.selector, taskId));
        audit.reportCanary(taskId, expected, false, 123_456, "");

        vm.expectEmit(address(audit));
        emit IAuditManager.CanaryReported(taskId, w1, modelId, user, expected, true, 923_456);
        vm.prank(user);
        audit.reportCanary(taskId, expected, true, 923_456, "");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.AlreadyReported.selector, taskId));
        audit.reportCanary(taskId, expected, true, 923_456, "");

        uint256 assigned = _submit(modelId);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IAuditManager.TaskNotOpen.selector, assigned, 1));
        audit.reportCanary(assigned, expected, true, 1_000_000, "");
    }
}

/// @notice Gas of the validation layer, each call its own transaction (isolate, as test/Gas.t.sol):
///         "tx" = the gasleft() delta (21000 + calldata + execution), "exec" = tx - 21000 - calldata gas.
contract AuditManagerGasTest is AuditFixture {
    address internal relayer = makeAddr("relayer");

    function setUp() public {
        _deployAudit();
        _setRate(1e18, 1e18);
    }

    function _coolAll() internal {
        vm.cool(address(token));
        vm.cool(address(staking));
        vm.cool(address(registry));
        vm.cool(address(tm));
        vm.cool(address(audit));
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

    function _run(address target, bytes memory data, address from) internal returns (Phase memory ph) {
        _coolAll();
        vm.prank(from);
        uint256 g = gasleft();
        (bool ok, bytes memory ret) = target.call(data);
        ph.withTx = g - gasleft();
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        ph.exec = ph.withTx - _txCost(data);
    }

    /// One task through a matching verdict, so records, payouts and counters are warm as in a running network.
    function _warmUp() internal {
        (uint256 taskId, uint256 batchId) = _submitAndCommit();
        _seal(batchId);
        _judge(taskId, batchId, true);
    }

    function _verdictCall(uint256 taskId, uint256 batchId, bool matches)
        internal
        view
        returns (bytes memory)
    {
        (, uint256 key) = _drawn(batchId, taskId);
        bytes32 other = matches ? _out(taskId) : keccak256("honest");
        Verdicts.Verdict[] memory vs = new Verdicts.Verdict[](1);
        bytes[] memory sigs = new bytes[](1);
        vs[0] = _verdict(taskId, batchId, _out(taskId), other, matches);
        sigs[0] = _sign(key, vs[0]);
        return abi.encodeCall(audit.submitVerdicts, (vs, sigs, new bytes32[][](1)));
    }

    /// forge-config: default.isolate = true
    function test_Gas_VerdictSingle() public {
        _warmUp();
        (uint256 taskId, uint256 batchId) = _submitAndCommit();
        _seal(batchId);
        Phase memory ph = _run(address(audit), _verdictCall(taskId, batchId, true), relayer);
        assertEq(audit.auditRecord(taskId).state, 1);
        console.log("gas: verdict single tx:", ph.withTx);
        console.log("gas: verdict single exec:", ph.exec);
        assertLt(ph.withTx, 400_000, "sanity");
    }

    /// forge-config: default.isolate = true
    function test_Gas_VerdictBatch32() public {
        _warmUp();
        uint256 n = 32;
        uint256[] memory ids = _submitMany(modelId, n);
        (uint256 batchId, bytes32[] memory hashes) = _commitMany(ids);
        _seal(batchId);
        bytes32[] memory leaves = _leaves(ids, hashes);
        Verdicts.Verdict[] memory vs = new Verdicts.Verdict[](n);
        bytes[] memory sigs = new bytes[](n);
        bytes32[][] memory proofs = new bytes32[][](n);
        for (uint256 i = 0; i < n; ++i) {
            (, uint256 key) = _drawn(batchId, ids[i]);
            vs[i] = _verdict(ids[i], batchId, hashes[i], hashes[i], true);
            sigs[i] = _sign(key, vs[i]);
            proofs[i] = _proof(leaves, i);
        }
        Phase memory ph =
            _run(address(audit), abi.encodeCall(audit.submitVerdicts, (vs, sigs, proofs)), relayer);
        for (uint256 i = 0; i < n; ++i) {
            assertEq(audit.auditRecord(ids[i]).state, 1);
        }
        console.log("gas: verdict batch32 total tx:", ph.withTx);
        console.log("gas: verdict batch32 per verdict tx:", ph.withTx / n);
        console.log("gas: verdict batch32 per verdict exec:", ph.exec / n);
        assertLt(ph.withTx / n, 400_000, "sanity");
    }

    /// Mismatch verdict, then votes fraud / honest / fraud: the third vote resolves and slashes the worker.
    /// forge-config: default.isolate = true
    function test_Gas_DisputeFull() public {
        _warmUp();
        (uint256 taskId, uint256 batchId) = _submitAndCommit();
        _seal(batchId);
        Phase memory open = _run(address(audit), _verdictCall(taskId, batchId, false), relayer);
        vm.roll(block.number + 2);
        Phase memory draw = _run(address(audit), abi.encodeCall(audit.drawQuorum, (taskId)), relayer);
        address[] memory m = audit.disputeOf(taskId).members;
        assertEq(m.length, 3);
        Phase memory v1 =
            _run(address(audit), abi.encodeCall(audit.vote, (taskId, true, keccak256("a"))), m[0]);
        Phase memory v2 =
            _run(address(audit), abi.encodeCall(audit.vote, (taskId, false, keccak256("b"))), m[1]);
        uint256 stakeBefore = staking.stakeOf(w1, WORKER);
        Phase memory v3 =
            _run(address(audit), abi.encodeCall(audit.vote, (taskId, true, keccak256("a"))), m[2]);
        assertEq(audit.auditRecord(taskId).state, 3, "fraud");
        assertEq(staking.stakeOf(w1, WORKER), stakeBefore / 2, "slashed");
        uint256 total = open.withTx + draw.withTx + v1.withTx + v2.withTx + v3.withTx;
        console.log("gas: dispute open (mismatch verdict) tx:", open.withTx);
        console.log("gas: dispute quorum draw tx:", draw.withTx);
        console.log("gas: dispute vote tx:", v1.withTx);
        console.log("gas: dispute resolving vote + slash tx:", v3.withTx);
        console.log("gas: dispute full tx:", total);
        console.log("gas: dispute full exec:", open.exec + draw.exec + v1.exec + v2.exec + v3.exec);
        assertLt(total, 2_000_000, "sanity");
    }
}
