// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Fixture} from "./Fixture.sol";
import {AuditManager} from "../../contracts/AuditManager.sol";
import {IAuditManager} from "../../contracts/interfaces/IAuditManager.sol";
import {Verdicts} from "../../contracts/libraries/Verdicts.sol";
import {MerkleBatch} from "../../contracts/libraries/MerkleBatch.sol";

/// @notice Fixture plus an AuditManager wired as script/Deploy.s.sol does (SLASHER_ROLE on Staking,
///         AUDITOR_ROLE on TaskManager, TRUST_ROLE on ModelRegistry), a validator set with known keys,
///         and helpers to commit, seal, sign verdicts and build Merkle proofs in the contract's tree shape.
abstract contract AuditFixture is Fixture {
    AuditManager internal audit;
    uint32 internal modelId;
    address internal w1;

    uint256 internal constant N_VALIDATORS = 6;
    uint256 internal constant VALIDATOR_STAKE = 1000e18;
    uint256 internal constant WORKER_STAKE = 1000e18;
    uint32 internal constant QUALITY = 990_000;

    address[] internal vals;
    mapping(address account => uint256 key) internal keyOf;

    /// Deploys everything, one model with worker `w1`, N_VALIDATORS joined validators and a funded user.
    function _deployAudit() internal {
        _deploy();
        audit = new AuditManager(admin, token, staking, tm, registry);
        vm.startPrank(admin);
        staking.grantRole(staking.SLASHER_ROLE(), address(audit));
        staking.setValidatorObserver(audit);
        tm.grantRole(tm.AUDITOR_ROLE(), address(audit));
        registry.grantRole(registry.TRUST_ROLE(), address(audit));
        vm.stopPrank();
        vm.label(address(audit), "AuditManager");

        modelId = _registerModel(PRICE);
        w1 = _addWorker("w1", modelId, WORKER_STAKE);
        (, keyOf[w1]) = makeAddrAndKey("w1");
        for (uint256 i = 0; i < N_VALIDATORS; ++i) {
            _addValidator(string.concat("val", vm.toString(i)), VALIDATOR_STAKE);
        }
        _fundUser(10_000e18);
        vm.prank(user);
        token.approve(address(audit), type(uint256).max);
    }

    /// `key`'s 65-byte signature of the EIP-712 struct hash `structHash` in AuditManager's domain.
    function _signTyped(uint256 key, bytes32 structHash) internal view returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", audit.domainSeparator(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// `key`'s signature of the EIP-712 `ForcedError(taskId, planter)`: the consent a forced error's submitter
    /// and worker each give its planter.
    function _consent(uint256 key, uint256 taskId, address planter) internal view returns (bytes memory) {
        return _signTyped(key, keccak256(abi.encode(audit.FORCED_ERROR_TYPEHASH(), taskId, planter)));
    }

    /// Stakes `amount` as validator for `name`, joins the audit draw and records its key.
    function _addValidator(string memory name, uint256 amount) internal returns (address v) {
        uint256 key;
        (v, key) = makeAddrAndKey(name);
        _joinAs(v, key, amount);
        vals.push(v);
    }

    function _joinAs(address v, uint256 key, uint256 amount) internal {
        keyOf[v] = key;
        _stake(v, VALIDATOR, amount);
        vm.prank(v);
        audit.joinValidators();
    }

    /// Sets the audit rate parameters, keeping the rest.
    function _setRate(uint64 p0, uint64 pMin) internal {
        IAuditManager.Params memory p = audit.params();
        p.p0Wad = p0;
        p.pMinWad = pMin;
        vm.prank(admin);
        audit.setParams(p);
    }

    function _out(uint256 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode("out", taskId));
    }

    /// Submits one task (the user) and commits `_out(taskId)` as its worker. Returns task and batch ids.
    function _submitAndCommit() internal returns (uint256 taskId, uint256 batchId) {
        taskId = _submit(modelId);
        batchId = _commitHash(taskId, _out(taskId));
    }

    function _commitHash(uint256 taskId, bytes32 outputHash) internal returns (uint256 batchId) {
        vm.prank(tm.getTask(taskId).worker);
        tm.commit(taskId, outputHash, 0, "");
        batchId = tm.batchCount();
    }

    /// Submits `n` tasks in one submission; returns their ids.
    function _submitMany(uint32 model, uint256 n) internal returns (uint256[] memory ids) {
        vm.prank(user);
        uint256 first = tm.submitTasks(model, _inputs(n), PRICE);
        _assign(first, n);
        ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
        }
    }

    /// Commits `_out(id)` for every id in one batch (all must be assigned to the same worker).
    function _commitMany(uint256[] memory ids) internal returns (uint256 batchId, bytes32[] memory hashes) {
        uint256 n = ids.length;
        hashes = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            hashes[i] = _out(ids[i]);
        }
        vm.prank(tm.getTask(ids[0]).worker);
        batchId = tm.commitBatch(ids, hashes, new uint16[](n), new bytes[](n));
    }

    /// Two blocks on, then seals.
    function _seal(uint256 batchId) internal {
        vm.roll(block.number + 2);
        audit.sealBatch(batchId);
    }

    /// Two blocks on (the quorum's randomness is the hash of the block after the opening), then draws the
    /// dispute's quorum; returns its members.
    function _drawQuorum(uint256 taskId) internal returns (address[] memory members) {
        vm.roll(block.number + 2);
        audit.drawQuorum(taskId);
        members = audit.disputeOf(taskId).members;
    }

    function _drawn(uint256 batchId, uint256 taskId) internal view returns (address v, uint256 key) {
        bool audited;
        (audited, v) = audit.auditOf(batchId, taskId);
        assertTrue(audited, "task not audited");
        key = keyOf[v];
        assertTrue(key != 0, "drawn validator without a known key");
    }

    function _verdict(
        uint256 taskId,
        uint256 batchId,
        bytes32 workerHash,
        bytes32 validatorHash,
        bool matches
    ) internal view returns (Verdicts.Verdict memory) {
        return Verdicts.Verdict({
            taskId: taskId,
            batchId: batchId,
            workerOutputHash: workerHash,
            validatorOutputHash: validatorHash,
            qualityPpm: QUALITY,
            matches: matches,
            deadline: uint64(block.timestamp + 1 hours)
        });
    }

    function _signWith(uint256 key, bytes32 separator, Verdicts.Verdict memory v)
        internal
        pure
        returns (bytes memory)
    {
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(key, Verdicts.digest(separator, v));
        return abi.encodePacked(r, s, sv);
    }

    function _sign(uint256 key, Verdicts.Verdict memory v) internal view returns (bytes memory) {
        return _signWith(key, audit.domainSeparator(), v);
    }

    function _submitVerdict(Verdicts.Verdict memory v, bytes memory sig, bytes32[] memory proof) internal {
        Verdicts.Verdict[] memory vs = new Verdicts.Verdict[](1);
        bytes[] memory sigs = new bytes[](1);
        bytes32[][] memory proofs = new bytes32[][](1);
        (vs[0], sigs[0], proofs[0]) = (v, sig, proof);
        audit.submitVerdicts(vs, sigs, proofs);
    }

    /// The drawn validator's verdict on a single-commit task (root == leaf, empty proof), submitted.
    function _judge(uint256 taskId, uint256 batchId, bool matches) internal returns (address validator) {
        uint256 key;
        (validator, key) = _drawn(batchId, taskId);
        bytes32 other = matches ? _out(taskId) : keccak256(abi.encode("honest", taskId));
        Verdicts.Verdict memory v = _verdict(taskId, batchId, _out(taskId), other, matches);
        _submitVerdict(v, _sign(key, v), new bytes32[](0));
    }

    /// Proof of leaf `index` in MerkleBatch's shape: pairs level by level, an odd last node promoted.
    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory proof) {
        uint256 n = leaves.length;
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            level[i] = leaves[i];
        }
        bytes32[] memory acc = new bytes32[](64);
        uint256 len;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) acc[len++] = level[sibling];
            uint256 half = n >> 1;
            for (uint256 i = 0; i < half; ++i) {
                level[i] = MerkleBatch.hashPair(level[2 * i], level[2 * i + 1]);
            }
            if (n & 1 == 1) {
                level[half] = level[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
            index >>= 1;
        }
        proof = new bytes32[](len);
        for (uint256 i = 0; i < len; ++i) {
            proof[i] = acc[i];
        }
    }

    /// Leaves of a batch of successful results in commit order.
    function _leaves(uint256[] memory ids, bytes32[] memory hashes)
        internal
        pure
        returns (bytes32[] memory l)
    {
        l = new bytes32[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            l[i] = MerkleBatch.leaf(ids[i], hashes[i], 0);
        }
    }
}
