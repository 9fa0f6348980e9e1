// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MerkleBatch} from "../contracts/libraries/MerkleBatch.sol";

contract MerkleBatchTest is Test {
    /// Builds the proof for leaf `index` in MerkleBatch's tree shape (odd node promoted).
    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory level = new bytes32[](leaves.length);
        for (uint256 i = 0; i < leaves.length; ++i) {
            level[i] = leaves[i];
        }
        bytes32[] memory tmp = new bytes32[](64);
        uint256 depth = 0;
        uint256 n = level.length;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) tmp[depth++] = level[sibling];
            uint256 half = (n + 1) / 2;
            for (uint256 i = 0; i < n / 2; ++i) {
                level[i] = MerkleBatch.hashPair(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) level[n / 2] = level[n - 1];
            n = half;
            index /= 2;
        }
        proof = new bytes32[](depth);
        for (uint256 i = 0; i < depth; ++i) {
            proof[i] = tmp[i];
        }
    }

    function _leaves(uint256 n, uint256 salt) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = MerkleBatch.leaf(i + 1 + salt, keccak256(abi.encode(salt, i)), uint16(i % 3));
        }
    }

    function _copy(bytes32[] memory a) internal pure returns (bytes32[] memory b) {
        b = new bytes32[](a.length);
        for (uint256 i = 0; i < a.length; ++i) {
            b[i] = a[i];
        }
    }

    function test_Leaf_IsDoubleHashedAbiEncoding() public pure {
        bytes32 expected =
            keccak256(bytes.concat(keccak256(abi.encode(uint256(7), bytes32(uint256(9)), uint16(2)))));
        assertEq(MerkleBatch.leaf(7, bytes32(uint256(9)), 2), expected);
    }

    function test_Root_EmptyAndSingle() public pure {
        assertEq(MerkleBatch.root(new bytes32[](0)), bytes32(0));
        bytes32[] memory one = new bytes32[](1);
        one[0] = keccak256("x");
        assertEq(MerkleBatch.root(one), keccak256("x"));
    }

    function test_Root_ThreeLeavesPromotesOddNode() public pure {
        bytes32[] memory l = _leaves(3, 0);
        bytes32 expected = MerkleBatch.hashPair(MerkleBatch.hashPair(l[0], l[1]), l[2]);
        assertEq(MerkleBatch.root(_copy(l)), expected);
    }

    function test_HashPair_IsCommutativeAndMatchesSortedKeccak() public pure {
        bytes32 a = keccak256("a");
        bytes32 b = keccak256("b");
        assertEq(MerkleBatch.hashPair(a, b), MerkleBatch.hashPair(b, a));
        (bytes32 lo, bytes32 hi) = a < b ? (a, b) : (b, a);
        assertEq(MerkleBatch.hashPair(a, b), keccak256(abi.encodePacked(lo, hi)));
    }

    /// Every leaf of every batch size 1..40 verifies against the root with OpenZeppelin MerkleProof.
    function test_Root_EveryLeafVerifiesWithOZ() public pure {
        for (uint256 n = 1; n <= 40; ++n) {
            bytes32[] memory leaves = _leaves(n, n * 1000);
            bytes32 root = MerkleBatch.root(_copy(leaves));
            for (uint256 i = 0; i < n; ++i) {
                assertTrue(MerkleProof.verify(_proof(leaves, i), root, leaves[i]), "leaf verifies");
            }
        }
    }

    function testFuzz_Root_EveryLeafVerifies(uint8 size, uint256 salt) public pure {
        uint256 n = bound(size, 1, 70);
        bytes32[] memory leaves = _leaves(n, salt % 1e30);
        bytes32 root = MerkleBatch.root(_copy(leaves));
        for (uint256 i = 0; i < n; ++i) {
            assertTrue(MerkleProof.verify(_proof(leaves, i), root, leaves[i]));
        }
        // a leaf not in the batch does not verify
        bytes32 stranger = MerkleBatch.leaf(type(uint256).max, bytes32(0), 0);
        assertFalse(MerkleProof.verify(_proof(leaves, 0), root, stranger));
    }
}
