// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title CheckpointedSortition
/// @notice Weighted random selection over numbered slots whose weights are remembered per block, so a
///         draw can be made against the weights as they stood at the end of a past block. A draw whose
///         randomness comes from a block that did not exist yet when the weights were frozen cannot be
///         steered by changing weights afterwards (AuditManager: the audit and quorum draws).
/// @dev A Fenwick tree (as SortitionTree) whose every node is an OpenZeppelin `Checkpoints.Trace208`
///      keyed by block number, plus checkpointed `total` and `size`. Slots are only appended (never
///      freed), so node i only ever sums slots <= i: a read at block B uses the tree's size at B and
///      never touches a node created later. Reads are O(log n) lookups; a weight change pushes one
///      checkpoint per touched node (an update in the same block overwrites it). Its functions are public:
///      it is deployed once and linked (delegatecall), which keeps AuditManager under EIP-170's size limit.
library CheckpointedSortition {
    using Checkpoints for Checkpoints.Trace208;
    using SafeCast for uint256;

    struct Tree {
        Checkpoints.Trace208 total;
        Checkpoints.Trace208 size;
        /// Fenwick node i at index i - 1
        Checkpoints.Trace208[] nodes;
    }

    /// @notice The slot does not exist in the tree at that block.
    error SlotOutOfRange(uint256 slot, uint256 size);
    /// @notice A draw point must be below the total weight at that block.
    error DrawOutOfRange(uint256 point, uint256 total);

    /// @notice Appends a slot holding `weight` from this block on; returns it (1-based).
    function append(Tree storage t, uint256 weight) public returns (uint256 slot) {
        uint48 now_ = _now();
        slot = t.nodes.length + 1;
        // node(slot) covers (slot - lowbit(slot), slot]: the new weight plus the existing slots in range
        uint256 node = weight + _prefix(t, slot - 1, now_) - _prefix(t, slot - _lowbit(slot), now_);
        t.nodes.push();
        t.nodes[slot - 1].push(now_, node.toUint208());
        t.size.push(now_, slot.toUint208());
        t.total.push(now_, (t.total.latest() + weight).toUint208());
    }

    /// @notice Sets the weight of an existing slot from this block on.
    function set(Tree storage t, uint256 slot, uint256 weight) public {
        uint48 now_ = _now();
        uint256 old = valueAt(t, slot, now_);
        if (weight == old) return;
        uint256 n = t.nodes.length;
        for (uint256 i = slot; i <= n; i += _lowbit(i)) {
            Checkpoints.Trace208 storage node = t.nodes[i - 1];
            uint256 v = node.latest();
            node.push(now_, (weight > old ? v + (weight - old) : v - (old - weight)).toUint208());
        }
        uint256 total = t.total.latest();
        t.total.push(now_, (weight > old ? total + (weight - old) : total - (old - weight)).toUint208());
    }

    /// @notice Number of slots at the end of block `at`.
    function sizeAt(Tree storage t, uint256 at) public view returns (uint256) {
        return _lookup(t.size, at);
    }

    /// @notice Sum of all weights at the end of block `at`.
    function totalAt(Tree storage t, uint256 at) public view returns (uint256) {
        return _lookup(t.total, at);
    }

    /// @notice Weight of `slot` at the end of block `at` (0 for a slot that did not exist yet).
    function valueAt(Tree storage t, uint256 slot, uint256 at) public view returns (uint256 v) {
        uint256 n = _lookup(t.size, at);
        if (slot == 0) revert SlotOutOfRange(slot, n);
        if (slot > n) return 0;
        v = _lookup(t.nodes[slot - 1], at);
        uint256 stop = slot - _lowbit(slot);
        uint256 k = slot - 1;
        while (k != stop) {
            v -= _lookup(t.nodes[k - 1], at);
            k -= _lowbit(k);
        }
    }

    /// @notice Sum of the weights of slots 1..slot at the end of block `at`.
    function prefixSumAt(Tree storage t, uint256 slot, uint256 at) public view returns (uint256) {
        uint256 n = _lookup(t.size, at);
        return _prefix(t, slot > n ? n : slot, at);
    }

    /// @notice The slot whose cumulative weight range at block `at` contains `point`
    ///         (0 <= point < totalAt(at)): slot s is hit with probability weight(s) / total.
    function drawAt(Tree storage t, uint256 point, uint256 at) public view returns (uint256 slot) {
        uint256 total = _lookup(t.total, at);
        if (point >= total) revert DrawOutOfRange(point, total);
        uint256 n = _lookup(t.size, at);
        uint256 step = 1;
        while (step << 1 <= n) step <<= 1;
        // binary lifting: `slot` is the largest index whose prefix sum is <= point
        for (; step > 0; step >>= 1) {
            uint256 next = slot + step;
            if (next <= n) {
                uint256 node = _lookup(t.nodes[next - 1], at);
                if (node <= point) {
                    slot = next;
                    point -= node;
                }
            }
        }
        return slot + 1;
    }

    /// @notice A slot drawn by weight at block `at` from `seed`, never `skip` (0: skip nothing): a point in
    ///         [0, total - w(skip)) shifted past skip's own range. Returns 0 when no other weight exists.
    function drawSkipping(Tree storage t, uint256 seed, uint256 skip, uint256 at)
        public
        view
        returns (uint256)
    {
        uint256 own = skip == 0 ? 0 : valueAt(t, skip, at);
        uint256 rest = _lookup(t.total, at) - own;
        if (rest == 0) return 0;
        uint256 point = seed % rest;
        if (own > 0 && point >= prefixSumAt(t, skip - 1, at)) point += own;
        return drawAt(t, point, at);
    }

    function _prefix(Tree storage t, uint256 slot, uint256 at) private view returns (uint256 sum) {
        for (uint256 i = slot; i > 0; i -= _lowbit(i)) {
            sum += _lookup(t.nodes[i - 1], at);
        }
    }

    /// Value at the end of block `at`: the latest checkpoint when it is not newer (the common case,
    /// two storage reads), else a binary search biased to recent keys.
    function _lookup(Checkpoints.Trace208 storage trace, uint256 at) private view returns (uint256) {
        (bool exists, uint48 key, uint208 value) = trace.latestCheckpoint();
        if (!exists) return 0;
        if (key <= at) return value;
        return trace.upperLookupRecent(at.toUint48());
    }

    function _now() private view returns (uint48) {
        return block.number.toUint48();
    }

    function _lowbit(uint256 i) private pure returns (uint256) {
        unchecked {
            return i & (~i + 1);
        }
    }
}
