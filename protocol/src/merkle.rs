//! The batch commitment: one Merkle root over `(taskId, outputHash, code)` leaves, computed the
//! same way as `contracts/libraries/MerkleBatch.sol` (OpenZeppelin's double-hashed leaves,
//! sorted-pair node hashing, an odd node promoted unchanged), so proofs verify with OZ MerkleProof.

use alloy::primitives::{keccak256, B256, U256};
use alloy::sol_types::SolValue;

/// `keccak256(bytes.concat(keccak256(abi.encode(taskId, outputHash, code))))`.
pub fn leaf_hash(task_id: U256, output_hash: B256, code: u16) -> B256 {
    let inner = keccak256((task_id, output_hash, code).abi_encode());
    keccak256(inner)
}

/// Commutative node hash: keccak256 of the two children in ascending order.
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// The parent level: pairs hashed in order, an odd last node promoted unchanged.
pub fn next_level(level: &[B256]) -> Vec<B256> {
    level
        .chunks(2)
        .map(|pair| {
            if pair.len() == 2 {
                hash_pair(pair[0], pair[1])
            } else {
                pair[0]
            }
        })
        .collect()
}

/// Root over the leaves in commit order; a single leaf is its own root; empty is zero.
pub fn batch_root(leaves: &[B256]) -> B256 {
    if leaves.is_empty() {
        return B256::ZERO;
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// Proof (sibling hashes, bottom up) for the leaf at `index`, verifiable with `verify`.
pub fn proof(leaves: &[B256], mut index: usize) -> Vec<B256> {
    let mut out = Vec::new();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let sibling = index ^ 1;
        if sibling < level.len() {
            out.push(level[sibling]);
        }
        level = next_level(&level);
        index /= 2;
    }
    out
}

/// OpenZeppelin `MerkleProof.verify` semantics.
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    proof.iter().fold(leaf, |acc, p| hash_pair(acc, *p)) == root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<B256> {
        (0..n)
            .map(|i| leaf_hash(U256::from(i + 1), keccak256([i as u8]), (i % 3) as u16))
            .collect()
    }

    #[test]
    fn every_leaf_proves_against_the_root() {
        for n in 1..=33 {
            let l = leaves(n);
            let root = batch_root(&l);
            for i in 0..n {
                assert!(verify(&proof(&l, i), root, l[i]), "n={n} i={i}");
            }
            // A changed leaf must not verify.
            let bogus = leaf_hash(U256::from(999), B256::ZERO, 0);
            assert!(!verify(&proof(&l, 0), root, bogus) || n == 0);
        }
    }

    #[test]
    fn single_leaf_is_root_and_order_matters_for_three() {
        let l = leaves(3);
        assert_eq!(batch_root(&l[..1]), l[0]);
        assert_eq!(batch_root(&l), hash_pair(hash_pair(l[0], l[1]), l[2]));
        assert_eq!(batch_root(&[]), B256::ZERO);
    }
}
