// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {SortitionTree} from "../contracts/libraries/SortitionTree.sol";

/// Exposes the library on one storage tree, with a plain weight array kept beside it as the reference.
contract TreeHarness {
    using SortitionTree for SortitionTree.Tree;

    SortitionTree.Tree internal tree;
    uint256[] public reference_; // index slot-1
    mapping(uint256 slot => bool) public isFree;

    function insert(uint256 w) external returns (uint256 slot) {
        slot = tree.insert(w);
        isFree[slot] = false;
        if (slot > reference_.length) reference_.push(w);
        else reference_[slot - 1] = w;
    }

    function remove(uint256 slot) external {
        tree.remove(slot);
        reference_[slot - 1] = 0;
        isFree[slot] = true;
    }

    function set(uint256 slot, uint256 w) external {
        tree.set(slot, w);
        reference_[slot - 1] = w;
    }

    function valueAt(uint256 slot) external view returns (uint256) {
        return tree.valueAt(slot);
    }

    function prefixSum(uint256 slot) external view returns (uint256) {
        return tree.prefixSum(slot);
    }

    function draw(uint256 point) external view returns (uint256) {
        return tree.draw(point);
    }

    function total() external view returns (uint256) {
        return tree.total;
    }

    function size() external view returns (uint256) {
        return tree.size();
    }

    function refLength() external view returns (uint256) {
        return reference_.length;
    }
}

contract SortitionTreeTest is Test {
    TreeHarness internal h;

    function setUp() public {
        h = new TreeHarness();
    }

    /// The reference answer: smallest slot whose cumulative weight exceeds `point`.
    function _refDraw(uint256 point) internal view returns (uint256) {
        uint256 acc;
        for (uint256 i = 0; i < h.refLength(); ++i) {
            acc += h.reference_(i);
            if (acc > point) return i + 1;
        }
        revert("point beyond total");
    }

    function _checkAgainstReference() internal view {
        uint256 acc;
        for (uint256 i = 0; i < h.refLength(); ++i) {
            assertEq(h.valueAt(i + 1), h.reference_(i), "valueAt");
            acc += h.reference_(i);
            assertEq(h.prefixSum(i + 1), acc, "prefixSum");
        }
        assertEq(h.total(), acc, "total");
    }

    function test_Insert_AssignsSequentialSlots() public {
        assertEq(h.insert(5), 1);
        assertEq(h.insert(7), 2);
        assertEq(h.insert(0), 3);
        assertEq(h.insert(3), 4);
        assertEq(h.total(), 15);
        _checkAgainstReference();
    }

    function test_Draw_MapsPointsToRanges() public {
        h.insert(5); // points 0..4
        h.insert(0); // never
        h.insert(7); // 5..11
        h.insert(3); // 12..14
        assertEq(h.draw(0), 1);
        assertEq(h.draw(4), 1);
        assertEq(h.draw(5), 3);
        assertEq(h.draw(11), 3);
        assertEq(h.draw(12), 4);
        assertEq(h.draw(14), 4);
    }

    function test_Draw_RevertsAtOrBeyondTotal() public {
        h.insert(5);
        vm.expectRevert(abi.encodeWithSelector(SortitionTree.DrawOutOfRange.selector, uint256(5), uint256(5)));
        h.draw(5);
    }

    function test_Draw_RevertsOnEmptyTree() public {
        vm.expectRevert(abi.encodeWithSelector(SortitionTree.DrawOutOfRange.selector, uint256(0), uint256(0)));
        h.draw(0);
    }

    function test_Remove_ReusesSlotSoTreeDoesNotGrow() public {
        h.insert(1);
        h.insert(2);
        h.insert(3);
        h.remove(2);
        assertEq(h.valueAt(2), 0);
        assertEq(h.total(), 4);
        assertEq(h.insert(9), 2, "freed slot reused");
        assertEq(h.size(), 3, "no growth");
        _checkAgainstReference();
    }

    function test_ValueAt_RevertsOutOfRange() public {
        h.insert(1);
        vm.expectRevert(abi.encodeWithSelector(SortitionTree.SlotOutOfRange.selector, uint256(2), uint256(1)));
        h.valueAt(2);
        vm.expectRevert(abi.encodeWithSelector(SortitionTree.SlotOutOfRange.selector, uint256(0), uint256(1)));
        h.valueAt(0);
        vm.expectRevert(abi.encodeWithSelector(SortitionTree.SlotOutOfRange.selector, uint256(5), uint256(1)));
        h.set(5, 1);
    }

    /// Random operations against the plain-array reference: values, prefix sums, totals and draws agree.
    function testFuzz_MatchesReference(uint256 seed) public {
        for (uint256 step = 0; step < 60; ++step) {
            seed = uint256(keccak256(abi.encode(seed, step)));
            uint256 op = seed % 4;
            uint256 n = h.size();
            uint256 w = (seed >> 8) % 1000e18;
            if (op == 0 || n == 0) {
                h.insert(w);
            } else if (op == 1) {
                uint256 slot = (seed >> 128) % n + 1;
                if (!h.isFree(slot)) h.set(slot, w);
            } else if (op == 2) {
                uint256 slot = (seed >> 128) % n + 1;
                if (!h.isFree(slot)) h.remove(slot);
            } else if (h.total() > 0) {
                uint256 point = (seed >> 64) % h.total();
                assertEq(h.draw(point), _refDraw(point), "draw");
            }
        }
        _checkAgainstReference();
        uint256 t = h.total();
        if (t > 0) {
            assertEq(h.draw(0), _refDraw(0));
            assertEq(h.draw(t - 1), _refDraw(t - 1));
        }
    }

    /// O(log n): a draw in a 256-slot tree reads at most ~log2(256)+1 nodes (well under 30k gas).
    function test_Draw_LogarithmicGas() public {
        for (uint256 i = 0; i < 256; ++i) {
            h.insert(i + 1);
        }
        uint256 g = gasleft();
        h.draw(h.total() - 1);
        uint256 used = g - gasleft();
        assertLt(used, 30_000, "draw gas");
    }
}
