// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title MerkleBatch
/// @notice The Merkle root a worker's batch commit is bound to. Leaves follow OpenZeppelin's
///         StandardMerkleTree convention (double keccak of the ABI encoding); inner nodes use
///         commutative (sorted-pair) keccak, so OpenZeppelin `MerkleProof.verify` checks a leaf.
/// @dev Tree shape: leaves in commit order, pairs hashed level by level, an odd last node is
///      promoted unchanged to the next level. (OZ's JS StandardMerkleTree sorts and lays leaves out
///      differently, so its roots differ; proofs from this shape still verify with MerkleProof.)
library MerkleBatch {
    /// @notice keccak256(bytes.concat(keccak256(abi.encode(taskId, outputHash, code)))).
    function leaf(uint256 taskId, bytes32 outputHash, uint16 code) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(taskId, outputHash, code))));
    }

    /// @notice Root over `leaves` (the array is used as scratch space and overwritten).
    ///         An empty array gives bytes32(0); a single leaf is its own root.
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 0) return bytes32(0);
        while (n > 1) {
            uint256 half = n >> 1;
            for (uint256 i = 0; i < half; ++i) {
                leaves[i] = hashPair(leaves[2 * i], leaves[2 * i + 1]);
            }
            if (n & 1 == 1) {
                leaves[half] = leaves[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
        }
        return leaves[0];
    }

    /// @notice Commutative keccak of two nodes (smaller first), as OZ `Hashes.commutativeKeccak256`.
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32 h) {
        (bytes32 lo, bytes32 hi) = a < b ? (a, b) : (b, a);
        assembly ("memory-safe") {
            mstore(0x00, lo)
            mstore(0x20, hi)
            h := keccak256(0x00, 0x40)
        }
    }
}
