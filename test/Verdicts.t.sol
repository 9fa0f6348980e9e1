// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Verdicts} from "../contracts/libraries/Verdicts.sol";

/// @notice Exposes the Verdicts library under the "DeepNode Validation" / "1" domain of its own address.
contract VerdictsHarness is EIP712("DeepNode Validation", "1") {
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function hashVerdict(Verdicts.Verdict memory v) external pure returns (bytes32) {
        return Verdicts.hash(v);
    }

    function digest(Verdicts.Verdict memory v) external view returns (bytes32) {
        return Verdicts.digest(_domainSeparatorV4(), v);
    }

    function recover(Verdicts.Verdict memory v, bytes memory signature) external view returns (address) {
        return Verdicts.recover(_domainSeparatorV4(), v, signature);
    }

    function auditSeed(bytes32 randomness, uint256 taskId) external pure returns (bytes32) {
        return Verdicts.auditSeed(randomness, taskId);
    }

    function isAudited(bytes32 seed, uint256 pWad) external pure returns (bool) {
        return Verdicts.isAudited(seed, pWad);
    }

    function drawIndex(bytes32 seed, uint256 n) external pure returns (uint256) {
        return Verdicts.drawIndex(seed, n);
    }
}

/// @notice Signed verdicts recover their signer and nothing else; the audit draw matches `protocol::verdict`.
contract VerdictsTest is Test {
    /// anvil's fifth development key (index 4), the signer of the Rust vectors
    uint256 internal constant KEY4 = 0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a;
    address internal constant ADDR4 = 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65;
    /// verifying contract of the Rust vectors
    address internal constant RUST_AT = 0x7E2D100000000000000000000000000000000001;
    /// secp256k1 group order
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    VerdictsHarness internal harness;
    uint256 internal validatorKey;
    address internal validator;

    function setUp() public {
        harness = new VerdictsHarness();
        (validator, validatorKey) = makeAddrAndKey("validator");
    }

    /// The verdict of the Rust vectors (protocol/src/verdict.rs, `fixed_verdict`).
    function _verdict() internal pure returns (Verdicts.Verdict memory) {
        return Verdicts.Verdict({
            taskId: 42,
            batchId: 7,
            workerOutputHash: keccak256("worker output"),
            validatorOutputHash: keccak256("validator output"),
            qualityPpm: 987_654,
            matches: true,
            deadline: 1_900_000_000
        });
    }

    function _sign(uint256 key, bytes32 d) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, d);
        return abi.encodePacked(r, s, v);
    }

    /// The fixed verdict with field `i` (0..6) changed.
    function _mutated(uint256 i) internal pure returns (Verdicts.Verdict memory v) {
        v = _verdict();
        if (i == 0) v.taskId += 1;
        else if (i == 1) v.batchId += 1;
        else if (i == 2) v.workerOutputHash = keccak256("other");
        else if (i == 3) v.validatorOutputHash = keccak256("other");
        else if (i == 4) v.qualityPpm += 1;
        else if (i == 5) v.matches = !v.matches;
        else v.deadline += 1;
    }

    // ------------------------------------------------------------------ signatures

    function test_SignedVerdictRecoversItsSigner() public view {
        Verdicts.Verdict memory v = _verdict();
        bytes memory sig = _sign(validatorKey, harness.digest(v));
        assertEq(harness.recover(v, sig), validator);
        assertEq(
            harness.digest(v),
            keccak256(abi.encodePacked("\x19\x01", harness.domainSeparator(), harness.hashVerdict(v)))
        );
    }

    function test_Replay_AnyChangedFieldRecoversSomeoneElse() public view {
        bytes memory sig = _sign(validatorKey, harness.digest(_verdict()));
        for (uint256 i = 0; i < 7; ++i) {
            Verdicts.Verdict memory other = _mutated(i);
            assertNotEq(
                harness.hashVerdict(other), harness.hashVerdict(_verdict()), "struct hash ignores a field"
            );
            assertNotEq(harness.recover(other, sig), validator, "signature replayed with a changed field");
        }
    }

    function test_Replay_OtherTaskIdAndBatchId() public view {
        Verdicts.Verdict memory v = _verdict();
        bytes memory sig = _sign(validatorKey, harness.digest(v));
        v.taskId = 43;
        assertNotEq(harness.recover(v, sig), validator);
        v.taskId = 42;
        v.batchId = 8;
        assertNotEq(harness.recover(v, sig), validator);
        v.batchId = 7;
        assertEq(harness.recover(v, sig), validator);
    }

    function test_Replay_OtherContract() public {
        VerdictsHarness second = new VerdictsHarness();
        Verdicts.Verdict memory v = _verdict();
        bytes memory sig = _sign(validatorKey, harness.digest(v));
        assertNotEq(second.domainSeparator(), harness.domainSeparator());
        assertNotEq(second.recover(v, sig), validator);
        assertEq(harness.recover(v, sig), validator);
    }

    function test_Replay_OtherChain() public {
        Verdicts.Verdict memory v = _verdict();
        bytes memory sig = _sign(validatorKey, harness.digest(v));
        bytes32 before = harness.domainSeparator();
        vm.chainId(block.chainid + 1);
        assertNotEq(harness.domainSeparator(), before);
        assertNotEq(harness.recover(v, sig), validator);
    }

    function test_ForgedSignature_DoesNotRecoverTheValidator() public {
        Verdicts.Verdict memory v = _verdict();
        // well-formed (low s, v = 27) but not made with the validator's key
        bytes32 r = keccak256("forged r");
        bytes32 s = bytes32(uint256(keccak256("forged s")) >> 2);
        address who = harness.recover(v, abi.encodePacked(r, s, uint8(27)));
        assertNotEq(who, validator);
        assertNotEq(who, address(0));
        // a real signature by another key
        (, uint256 otherKey) = makeAddrAndKey("impostor");
        assertNotEq(harness.recover(v, _sign(otherKey, harness.digest(v))), validator);
    }

    /// Random 65 bytes either revert (OZ rejects them) or recover someone other than the validator.
    function testFuzz_RandomSignatureNeverRecoversTheValidator(bytes32 r, bytes32 s, uint8 v) public view {
        try harness.recover(_verdict(), abi.encodePacked(r, s, v)) returns (address who) {
            assertNotEq(who, validator);
        } catch (bytes memory reason) {
            bytes4 sel = bytes4(reason);
            assertTrue(
                sel == ECDSA.ECDSAInvalidSignature.selector || sel == ECDSA.ECDSAInvalidSignatureS.selector,
                "unexpected revert"
            );
        }
    }

    function test_RevertWhen_SignatureLengthIsNot65() public {
        Verdicts.Verdict memory v = _verdict();
        bytes memory sig = _sign(validatorKey, harness.digest(v));
        bytes memory short = new bytes(64);
        bytes memory long = abi.encodePacked(sig, uint8(0));
        for (uint256 i = 0; i < 64; ++i) {
            short[i] = sig[i];
        }
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 64));
        harness.recover(v, short);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 66));
        harness.recover(v, long);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 0));
        harness.recover(v, "");
    }

    function test_RevertWhen_SignatureIsMalleableOrHasBadV() public {
        Verdicts.Verdict memory v = _verdict();
        (uint8 pv, bytes32 r, bytes32 s) = vm.sign(validatorKey, harness.digest(v));
        bytes32 highS = bytes32(N - uint256(s));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        harness.recover(v, abi.encodePacked(r, highS, pv == 27 ? uint8(28) : uint8(27)));
        vm.expectRevert(ECDSA.ECDSAInvalidSignature.selector);
        harness.recover(v, abi.encodePacked(r, s, uint8(1)));
    }

    /// Digest and signature computed by `protocol::verdict` (test `vectors_shared_with_verdicts_t_sol`).
    function test_RustVectors_DigestAndSignatureRecover() public {
        vm.etch(RUST_AT, address(harness).code);
        vm.chainId(31337);
        VerdictsHarness at = VerdictsHarness(RUST_AT);
        Verdicts.Verdict memory v = _verdict();
        assertEq(at.hashVerdict(v), 0xa870eec7ff37f018f2501d740577cd86f89d090be9fb73ab9fc8862cd23f9aec);
        bytes32 d = at.digest(v);
        assertEq(d, 0xcdfa3e1604e07d489ec4ab33a966b29b37254965525d8b863847e1e3631aad01);
        bytes memory rustSig =
            hex"a41696864be9dbcc075eec6218114ac799e0643ad47b07be16a4a0074f4540f4222389f6e83aa30b40502cb4e0903f462b2dbb084707c63e2e1f11493e257cfe1c";
        assertEq(vm.addr(KEY4), ADDR4);
        assertEq(at.recover(v, rustSig), ADDR4);
        // both sides sign deterministically (RFC 6979), so foundry produces the same bytes
        assertEq(_sign(KEY4, d), rustSig);
        // the same signature is worthless at the harness deployed elsewhere
        assertNotEq(harness.recover(v, rustSig), ADDR4);
    }

    // ------------------------------------------------------------------ audit draw

    function test_RustVectors_AuditSeedAndDraw() public view {
        bytes32 seed = harness.auditSeed(keccak256("deepnode audit draw"), 42);
        assertEq(seed, 0x12767e42e6369761ae52a630571bb2c987839f4bdca0ed11af34b77a4a34e3a7);
        assertEq(harness.drawIndex(seed, 7), 4);
        assertEq(harness.drawIndex(seed, 1), 0);
    }

    /// 10,000 deterministic seeds at p = 0.02: 197 audited, the same count `protocol::verdict` finds,
    /// inside the +-4 sd band [144, 256] around the expected 200.
    function test_IsAudited_FrequencyAtTwoPercent() public pure {
        bytes32 randomness = keccak256("deepnode audit draw");
        uint256 count;
        for (uint256 i = 0; i < 10_000; ++i) {
            if (Verdicts.isAudited(Verdicts.auditSeed(randomness, i), 0.02e18)) ++count;
        }
        assertGe(count, 144);
        assertLe(count, 256);
        assertEq(count, 197);
    }

    function test_IsAudited_Boundaries() public view {
        bytes32 s = bytes32(uint256(5 * 1e18 + 123));
        assertFalse(harness.isAudited(s, 123));
        assertTrue(harness.isAudited(s, 124));
        assertFalse(harness.isAudited(keccak256("any"), 0));
        assertTrue(harness.isAudited(keccak256("any"), 1e18));
    }

    function test_RevertWhen_DrawIndexOverNothing() public {
        vm.expectRevert(Verdicts.EmptyDraw.selector);
        harness.drawIndex(bytes32(0), 0);
    }

    function testFuzz_DrawIndexInRange(bytes32 seed, uint256 n) public view {
        n = bound(n, 1, type(uint256).max);
        assertLt(harness.drawIndex(seed, n), n);
    }
}
