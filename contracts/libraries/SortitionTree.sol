// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title SortitionTree
/// @notice Weighted random selection over numbered slots with a Fenwick (binary indexed) tree:
///         O(log n) weight updates and draws. Slots are 1-based; a removed slot goes on a free list
///         and is reused by the next insert, so the tree only grows to the peak number of members.
/// @dev `nodes[i - 1]` holds Fenwick node i = sum of the weights of slots (i - lowbit(i), i].
///      A new slot is appended by computing its node from the existing prefix sums (O(log n)),
///      so the tree needs no fixed capacity and no rebuild.
library SortitionTree {
    struct Tree {
        /// sum of all weights (kept so a draw does not need a prefix-sum walk to learn it)
        uint256 total;
        /// Fenwick nodes, index i-1 for node i
        uint256[] nodes;
        /// slots released by `remove`, reused LIFO
        uint256[] freeSlots;
    }

    /// @notice The slot does not exist in the tree.
    error SlotOutOfRange(uint256 slot, uint256 size);
    /// @notice A draw point must be below the total weight.
    error DrawOutOfRange(uint256 point, uint256 total);

    /// @notice Number of slots ever allocated (free ones included).
    function size(Tree storage t) internal view returns (uint256) {
        return t.nodes.length;
    }

    /// @notice Allocates a slot (a freed one when available) holding `weight`.
    function insert(Tree storage t, uint256 weight) internal returns (uint256 slot) {
        uint256 freeCount = t.freeSlots.length;
        if (freeCount > 0) {
            slot = t.freeSlots[freeCount - 1];
            t.freeSlots.pop();
            set(t, slot, weight);
            return slot;
        }
        slot = t.nodes.length + 1;
        // node(slot) covers (slot - lowbit(slot), slot]: the new weight plus the existing slots in range.
        uint256 node = weight + _prefix(t, slot - 1) - _prefix(t, slot - _lowbit(slot));
        t.nodes.push(node);
        t.total += weight;
    }

    /// @notice Sets the weight of slot to 0 and puts it on the free list (the caller removes a slot once).
    function remove(Tree storage t, uint256 slot) internal {
        set(t, slot, 0);
        t.freeSlots.push(slot);
    }

    /// @notice Sets the weight of an allocated slot.
    function set(Tree storage t, uint256 slot, uint256 weight) internal {
        uint256 old = valueAt(t, slot);
        if (weight == old) return;
        if (weight > old) {
            _add(t, slot, weight - old, true);
            t.total += weight - old;
        } else {
            _add(t, slot, old - weight, false);
            t.total -= old - weight;
        }
    }

    /// @notice The weight of one slot, O(log n).
    function valueAt(Tree storage t, uint256 slot) internal view returns (uint256 v) {
        uint256 n = t.nodes.length;
        if (slot == 0 || slot > n) revert SlotOutOfRange(slot, n);
        v = t.nodes[slot - 1];
        uint256 stop = slot - _lowbit(slot);
        uint256 k = slot - 1;
        while (k != stop) {
            v -= t.nodes[k - 1];
            k -= _lowbit(k);
        }
    }

    /// @notice Sum of the weights of slots 1..slot.
    function prefixSum(Tree storage t, uint256 slot) internal view returns (uint256) {
        uint256 n = t.nodes.length;
        if (slot > n) revert SlotOutOfRange(slot, n);
        return _prefix(t, slot);
    }

    /// @notice The slot whose cumulative weight range contains `point` (0 <= point < total):
    ///         the smallest slot s with prefixSum(s) > point. Slot s is hit with probability
    ///         weight(s) / total when point is uniform.
    function draw(Tree storage t, uint256 point) internal view returns (uint256 slot) {
        uint256 total = t.total;
        if (point >= total) revert DrawOutOfRange(point, total);
        uint256 n = t.nodes.length;
        uint256 step = 1;
        while (step << 1 <= n) step <<= 1;
        // Binary lifting: `slot` is the largest index whose prefix sum is <= point.
        for (; step > 0; step >>= 1) {
            uint256 next = slot + step;
            if (next <= n) {
                uint256 node = t.nodes[next - 1];
                if (node <= point) {
                    slot = next;
                    point -= node;
                }
            }
        }
        return slot + 1;
    }

    function _add(Tree storage t, uint256 slot, uint256 delta, bool up) private {
        uint256 n = t.nodes.length;
        for (uint256 i = slot; i <= n; i += _lowbit(i)) {
            if (up) t.nodes[i - 1] += delta;
            else t.nodes[i - 1] -= delta;
        }
    }

    function _prefix(Tree storage t, uint256 slot) private view returns (uint256 sum) {
        for (uint256 i = slot; i > 0; i -= _lowbit(i)) {
            sum += t.nodes[i - 1];
        }
    }

    function _lowbit(uint256 i) private pure returns (uint256) {
        unchecked {
            return i & (~i + 1);
        }
    }
}
