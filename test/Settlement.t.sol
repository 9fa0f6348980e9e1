// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {console} from "forge-std/console.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Settlement} from "../contracts/Settlement.sol";
import {ISettlement} from "../contracts/interfaces/ISettlement.sol";
import {MerkleBatch} from "../contracts/libraries/MerkleBatch.sol";
import {DNToken} from "../contracts/DNToken.sol";

/// @notice Deploys the real contracts (Fixture) plus Settlement wired with MINTER_ROLE, TRUST_ROLE and STATUS_ROLE,
///         validators with real keys, and builds reward / trust trees the way `protocol::powr` does
///         (leaves sorted by address, sorted-pair hashing, odd node promoted).
abstract contract SettlementBase is Fixture {
    Settlement internal settlement;

    uint64 internal constant EPOCH = 1 hours;
    uint256 internal constant E0 = 1_000_000e18;
    uint256 internal constant DECAY = 0.99e18;
    /// The deploy default: report signing stake is the stake in place when the epoch began.
    uint64 internal constant ACTIVATION = EPOCH;
    uint64 internal genesis;

    /// Seconds a posted report can be vetoed; 0 here so claims open at once (SettlementVetoTest overrides).
    function _vetoWindow() internal pure virtual returns (uint64) {
        return 0;
    }

    address[] internal validators;
    uint256[] internal validatorKeys;

    function _deploySettlement() internal {
        _deploy();
        genesis = uint64(block.timestamp);
        settlement =
            new Settlement(token, staking, registry, genesis, EPOCH, E0, DECAY, ACTIVATION, _vetoWindow());
        vm.startPrank(admin);
        token.grantRole(token.MINTER_ROLE(), address(settlement));
        registry.grantRole(registry.TRUST_ROLE(), address(settlement));
        registry.grantRole(registry.STATUS_ROLE(), address(settlement));
        staking.grantRole(staking.SLASHER_ROLE(), address(settlement));
        vm.stopPrank();
        vm.label(address(settlement), "Settlement");
    }

    /// Adds `n` validators staking `stakeEach`, kept sorted by address (the order signatures must have).
    function _addValidators(uint256 n, uint256 stakeEach) internal {
        for (uint256 i = 0; i < n; ++i) {
            (address v, uint256 key) =
                makeAddrAndKey(string.concat("validator", vm.toString(validators.length)));
            _stake(v, VALIDATOR, stakeEach);
            validators.push(v);
            validatorKeys.push(key);
        }
        // insertion sort by address, keys alongside
        for (uint256 i = 1; i < validators.length; ++i) {
            for (uint256 j = i; j > 0 && validators[j - 1] > validators[j]; --j) {
                (validators[j - 1], validators[j]) = (validators[j], validators[j - 1]);
                (validatorKeys[j - 1], validatorKeys[j]) = (validatorKeys[j], validatorKeys[j - 1]);
            }
        }
    }

    function _sign(uint256 key, ISettlement.EpochReport memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(key, settlement.reportDigest(r));
        return abi.encodePacked(rr, s, v);
    }

    /// Signatures of the first `k` validators (ascending addresses).
    function _sigs(ISettlement.EpochReport memory r, uint256 k) internal view returns (bytes[] memory sigs) {
        sigs = new bytes[](k);
        for (uint256 i = 0; i < k; ++i) {
            sigs[i] = _sign(validatorKeys[i], r);
        }
    }

    function _report(uint64 epoch, bytes32 rewardsRoot, bytes32 trustRoot, uint256 total)
        internal
        pure
        returns (ISettlement.EpochReport memory)
    {
        return ISettlement.EpochReport(epoch, rewardsRoot, trustRoot, total, keccak256("models"));
    }

    function _post(ISettlement.EpochReport memory r) internal {
        if (block.timestamp < settlement.epochEnd(r.epoch)) vm.warp(settlement.epochEnd(r.epoch));
        settlement.postReport(r, _sigs(r, validators.length));
    }

    // ------------------------------------------------------------------ trees (as protocol::powr)

    function _leaf(address a, uint256 v) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(a, v))));
    }

    /// Sorts (accounts, values) by account in place.
    function _sortEntries(address[] memory accounts, uint256[] memory values) internal pure {
        for (uint256 i = 1; i < accounts.length; ++i) {
            for (uint256 j = i; j > 0 && accounts[j - 1] > accounts[j]; --j) {
                (accounts[j - 1], accounts[j]) = (accounts[j], accounts[j - 1]);
                (values[j - 1], values[j]) = (values[j], values[j - 1]);
            }
        }
    }

    function _root(address[] memory accounts, uint256[] memory values) internal pure returns (bytes32) {
        bytes32[] memory leaves = new bytes32[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            leaves[i] = _leaf(accounts[i], values[i]);
        }
        return MerkleBatch.root(leaves);
    }

    /// Proof of leaf `index` (entries already sorted).
    function _proof(address[] memory accounts, uint256[] memory values, uint256 index)
        internal
        pure
        returns (bytes32[] memory proof)
    {
        uint256 n = accounts.length;
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            level[i] = _leaf(accounts[i], values[i]);
        }
        bytes32[] memory buf = new bytes32[](32);
        uint256 len = 0;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) buf[len++] = level[sibling];
            uint256 half = n / 2;
            for (uint256 i = 0; i < half; ++i) {
                level[i] = MerkleBatch.hashPair(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) {
                level[half] = level[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
            index /= 2;
        }
        proof = new bytes32[](len);
        for (uint256 i = 0; i < len; ++i) {
            proof[i] = buf[i];
        }
    }

    function _pair(address a, uint256 va, address b, uint256 vb)
        internal
        pure
        returns (address[] memory accounts, uint256[] memory values)
    {
        accounts = new address[](2);
        values = new uint256[](2);
        (accounts[0], accounts[1], values[0], values[1]) = (a, b, va, vb);
        _sortEntries(accounts, values);
    }

    function _indexOf(address[] memory accounts, address a) internal pure returns (uint256) {
        for (uint256 i = 0; i < accounts.length; ++i) {
            if (accounts[i] == a) return i;
        }
        revert("not in tree");
    }
}

contract SettlementTest is SettlementBase {
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");
    address[] internal accts;
    uint256[] internal amts;

    function setUp() public {
        _deploySettlement();
        _addValidators(4, MIN_VALIDATOR_STAKE);
        (accts, amts) = _pair(alice, 100e18, bob, 250e18);
    }

    function _rewardsReport(uint64 epoch) internal view returns (ISettlement.EpochReport memory) {
        return _report(epoch, _root(accts, amts), bytes32(0), 350e18);
    }

    function _claim(uint64 epoch, address a) internal {
        uint256 i = _indexOf(accts, a);
        settlement.claim(epoch, a, amts[i], _proof(accts, amts, i));
    }

    // ------------------------------------------------------------------ posting

    function test_PostReport_ThreeOfFourValidators_MintsAndStores() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = _sigs(r, 3);
        address[] memory signers = new address[](3);
        for (uint256 i = 0; i < 3; ++i) {
            signers[i] = validators[i];
        }
        uint256 supply = token.totalSupply();
        vm.expectEmit(address(settlement));
        emit ISettlement.EpochReported(
            0, r.rewardsRoot, r.trustRoot, 350e18, r.modelStatusHash, signers, 3000e18, 4000e18
        );
        vm.prank(makeAddr("relayer")); // anyone may post
        settlement.postReport(r, sigs);

        assertEq(token.balanceOf(address(settlement)), 350e18);
        assertEq(token.totalSupply(), supply + 350e18);
        ISettlement.EpochRecord memory rec = settlement.epochRecord(0);
        assertEq(rec.rewardsRoot, r.rewardsRoot);
        assertEq(rec.modelStatusHash, keccak256("models"));
        assertEq(rec.totalRewards, 350e18);
        assertEq(rec.claimed, 0);
        assertEq(rec.postedAt, block.timestamp);
        (bool exists, uint64 latest) = settlement.latestEpoch();
        assertTrue(exists);
        assertEq(latest, 0);
    }

    function test_PostReport_OneValidatorWithTwoThirdsOfStake() public {
        _addValidators(1, 8000e18); // 8000 of 12000 = exactly 2/3
        uint256 big = 0;
        for (uint256 i = 0; i < validators.length; ++i) {
            if (staking.stakeOf(validators[i], VALIDATOR) == 8000e18) big = i;
        }
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _sign(validatorKeys[big], r);
        settlement.postReport(r, sigs);
        assertEq(settlement.epochRecord(0).totalRewards, 350e18);
    }

    function test_PostReport_ZeroRewards_MintsNothing() public {
        uint256 supply = token.totalSupply();
        _post(_report(0, bytes32(0), keccak256("trust"), 0));
        assertEq(token.totalSupply(), supply);
        assertGt(settlement.epochRecord(0).postedAt, 0);
    }

    function test_PostReport_RevertsWhen_LessThanTwoThirdsOfStake() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = _sigs(r, 2);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InsufficientStakeSigned.selector, 2000e18, 4000e18)
        );
        settlement.postReport(r, sigs);
    }

    function test_PostReport_RevertsWhen_OneWeiBelowTwoThirds() public {
        // validator 3 tops up to 1500 DN + 1 wei: total 4500 DN + 1 wei, three signers hold 3000 DN
        _stake(validators[3], VALIDATOR, 500e18 + 1);
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = _sigs(r, 3);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InsufficientStakeSigned.selector, 3000e18, 4500e18 + 1)
        );
        settlement.postReport(r, sigs);
        // one wei less in total when epoch 1 ends: 3000 of 4500 is exactly 2/3 and passes
        vm.prank(validators[3]);
        staking.requestUnstake(VALIDATOR, 1);
        ISettlement.EpochReport memory r1 = _rewardsReport(1);
        vm.warp(settlement.epochEnd(1));
        settlement.postReport(r1, _sigs(r1, 3));
    }

    /// Stake unstaked after the epoch ended no longer backs a signature (it is on its way out and
    /// could be withdrawn before a false report is proven); the quorum's total stays the stake
    /// active at the epoch's end.
    function test_PostReport_StakeUnstakedAfterEpochEndNoLongerSigns() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0) + 1);
        vm.prank(validators[0]);
        staking.requestUnstake(VALIDATOR, MIN_VALIDATOR_STAKE);
        assertEq(settlement.signingStake(validators[0], 0), 0);
        assertEq(settlement.signingStake(validators[1], 0), MIN_VALIDATOR_STAKE);
        bytes[] memory first3 = _sigs(r, 3);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.NotValidator.selector, validators[0]));
        settlement.postReport(r, first3);
        // validators 1-3 hold 3000 of the 4000 active when the epoch ended
        bytes[] memory sigs = new bytes[](3);
        for (uint256 i = 1; i < 4; ++i) {
            sigs[i - 1] = _sign(validatorKeys[i], r);
        }
        settlement.postReport(r, sigs);
    }

    function test_PostReport_RevertsWhen_NoSignatures() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        vm.expectRevert(ISettlement.NoSignatures.selector);
        settlement.postReport(r, new bytes[](0));
    }

    function test_PostReport_RevertsWhen_SignerIsNotAValidator() public {
        (address outsider, uint256 key) = makeAddrAndKey("outsider");
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _sign(key, r);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.NotValidator.selector, outsider));
        settlement.postReport(r, sigs);
    }

    function test_PostReport_RevertsWhen_SignatureIsForAnotherReport() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        ISettlement.EpochReport memory forged = _rewardsReport(0);
        forged.totalRewards = 349e18;
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = _sigs(r, 4);
        // The signatures recover to unrelated addresses for the forged report.
        vm.expectPartialRevert(ISettlement.NotValidator.selector);
        settlement.postReport(forged, sigs);
    }

    function test_PostReport_RevertsWhen_DuplicateSigner() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = _sigs(r, 3);
        sigs[2] = sigs[1];
        vm.expectRevert(abi.encodeWithSelector(ISettlement.DuplicateSigner.selector, validators[1]));
        settlement.postReport(r, sigs);
    }

    function test_PostReport_RevertsWhen_SignersNotAscending() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = _sigs(r, 3);
        (sigs[0], sigs[2]) = (sigs[2], sigs[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.SignersNotAscending.selector, validators[2], validators[1])
        );
        settlement.postReport(r, sigs);
    }

    function test_PostReport_RevertsWhen_SecondReportForEpoch() public {
        _post(_rewardsReport(0));
        ISettlement.EpochReport memory other = _report(0, keccak256("other"), bytes32(0), 1);
        bytes[] memory sigs = _sigs(other, 4);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochAlreadyReported.selector, 0));
        settlement.postReport(other, sigs);
    }

    function test_PostReport_RevertsWhen_EpochNotEnded() public {
        ISettlement.EpochReport memory r = _rewardsReport(0);
        bytes[] memory sigs = _sigs(r, 4);
        uint256 endsAt = uint256(genesis) + EPOCH;
        vm.warp(endsAt - 1);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochNotEnded.selector, 0, endsAt));
        settlement.postReport(r, sigs);
        // a far-future epoch too
        ISettlement.EpochReport memory future = _rewardsReport(type(uint64).max);
        vm.expectPartialRevert(ISettlement.EpochNotEnded.selector);
        settlement.postReport(future, sigs);
    }

    function test_PostReport_RevertsWhen_OverBudget() public {
        uint256 budget = settlement.epochBudget(1);
        assertEq(budget, 990_000e18);
        ISettlement.EpochReport memory r = _report(1, keccak256("r"), bytes32(0), budget + 1);
        vm.warp(settlement.epochEnd(1));
        bytes[] memory sigs = _sigs(r, 4);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.OverBudget.selector, 1, budget + 1, budget));
        settlement.postReport(r, sigs);
        // exactly the budget is fine
        _post(_report(1, keccak256("r"), bytes32(0), budget));
        assertEq(token.balanceOf(address(settlement)), budget);
    }

    function test_PostReport_UnstakedValidatorsNoLongerCount() public {
        // Two validators unstake: the other two now hold all the stake and suffice.
        for (uint256 i = 2; i < 4; ++i) {
            vm.prank(validators[i]);
            staking.requestUnstake(VALIDATOR, MIN_VALIDATOR_STAKE);
        }
        ISettlement.EpochReport memory r = _rewardsReport(0);
        vm.warp(settlement.epochEnd(0));
        bytes[] memory sigs = _sigs(r, 4);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.NotValidator.selector, validators[2]));
        settlement.postReport(r, sigs);
        settlement.postReport(r, _sigs(r, 2));
    }

    // ------------------------------------------------------------------ budget

    /// Values pinned in protocol::powr::tests::emission_schedule_vectors (Rust and Solidity agree).
    function test_EpochBudget_MatchesRustSchedule() public view {
        assertEq(settlement.epochBudget(0), 1_000_000e18);
        assertEq(settlement.epochBudget(1), 990_000e18);
        assertEq(settlement.epochBudget(2), 980_100e18);
        assertEq(settlement.epochBudget(100), 366032341273229501000000);
        assertEq(settlement.epochBudget(1000), 43171247410658000000);
        assertEq(settlement.epochBudget(type(uint64).max), 0);
    }

    function test_EpochBudget_CappedByTokenCap() public {
        uint256 cap = token.cap();
        Settlement s =
            new Settlement(token, staking, registry, genesis, EPOCH, cap, 1e18, ACTIVATION, _vetoWindow());
        assertEq(s.epochBudget(0), cap - token.totalSupply());
        assertEq(s.epochBudget(500), cap - token.totalSupply());
    }

    function test_Constructor_RevertsOnBadSchedule() public {
        vm.expectRevert(abi.encodeWithSelector(ISettlement.InvalidSchedule.selector, "epochLength is 0"));
        new Settlement(token, staking, registry, genesis, 0, E0, DECAY, 0, _vetoWindow());
        vm.expectRevert(abi.encodeWithSelector(ISettlement.InvalidSchedule.selector, "decayWad above 1e18"));
        new Settlement(token, staking, registry, genesis, EPOCH, E0, 1e18 + 1, ACTIVATION, _vetoWindow());
        uint256 tooMuch = token.cap() + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                ISettlement.InvalidSchedule.selector, "initialEmission above the token cap"
            )
        );
        new Settlement(token, staking, registry, genesis, EPOCH, tooMuch, DECAY, ACTIVATION, _vetoWindow());
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.InvalidSchedule.selector, "activationDelay above epochLength")
        );
        new Settlement(token, staking, registry, genesis, EPOCH, E0, DECAY, EPOCH + 1, _vetoWindow());
    }

    function test_Epochs_AreCountedFromGenesis() public {
        assertEq(settlement.currentEpoch(), 0);
        assertEq(settlement.epochEnd(0), genesis + EPOCH);
        vm.warp(genesis + 5 * EPOCH + 1);
        assertEq(settlement.currentEpoch(), 5);
    }

    // ------------------------------------------------------------------ claims

    function test_Claim_PaysEachAccountOnce() public {
        _post(_rewardsReport(0));
        vm.expectEmit(address(settlement));
        emit ISettlement.RewardClaimed(0, alice, 100e18);
        vm.prank(makeAddr("relayer")); // anyone may relay; the tokens go to the account
        _claim(0, alice);
        _claim(0, bob);
        assertEq(token.balanceOf(alice), 100e18);
        assertEq(token.balanceOf(bob), 250e18);
        assertEq(token.balanceOf(address(settlement)), 0);
        assertTrue(settlement.isClaimed(0, alice));
        assertFalse(settlement.isClaimed(1, alice));
        assertEq(settlement.epochRecord(0).claimed, 350e18);
    }

    function test_Claim_RevertsWhen_DoubleClaim() public {
        _post(_rewardsReport(0));
        _claim(0, alice);
        uint256 i = _indexOf(accts, alice);
        bytes32[] memory proof = _proof(accts, amts, i);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.AlreadyClaimed.selector, 0, alice));
        settlement.claim(0, alice, 100e18, proof);
    }

    function test_Claim_RevertsWhen_WrongProof() public {
        _post(_rewardsReport(0));
        uint256 i = _indexOf(accts, alice);
        bytes32[] memory proof = _proof(accts, amts, i);
        // inflated amount
        vm.expectRevert(abi.encodeWithSelector(ISettlement.InvalidRewardProof.selector, 0, alice, 101e18));
        settlement.claim(0, alice, 101e18, proof);
        // someone else's proof
        vm.expectRevert(abi.encodeWithSelector(ISettlement.InvalidRewardProof.selector, 0, bob, 100e18));
        settlement.claim(0, bob, 100e18, proof);
        // empty proof
        vm.expectRevert(abi.encodeWithSelector(ISettlement.InvalidRewardProof.selector, 0, alice, 100e18));
        settlement.claim(0, alice, 100e18, new bytes32[](0));
        // right proof, wrong epoch (epoch 1 has another root)
        _post(_report(1, keccak256("another root"), bytes32(0), 0));
        vm.expectRevert(abi.encodeWithSelector(ISettlement.InvalidRewardProof.selector, 1, alice, 100e18));
        settlement.claim(1, alice, 100e18, proof);
    }

    function test_Claim_RevertsWhen_EpochNotReported() public {
        bytes32[] memory proof = _proof(accts, amts, 0);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochNotReported.selector, 7));
        settlement.claim(7, accts[0], amts[0], proof);
    }

    function test_Claim_RevertsWhen_TreeHoldsMoreThanTotal() public {
        // A malformed report: its leaves add up to 350 DN but it minted only 200.
        _post(_report(0, _root(accts, amts), bytes32(0), 200e18));
        _claim(0, alice);
        uint256 i = _indexOf(accts, bob);
        bytes32[] memory proof = _proof(accts, amts, i);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlement.ClaimsExceedEpochTotal.selector, 0, 350e18, 200e18)
        );
        settlement.claim(0, bob, 250e18, proof);
    }

    function test_Claim_BitmapSeparatesEpochsAndAccounts() public {
        for (uint64 e = 254; e <= 257; ++e) {
            _post(_rewardsReport(e));
        }
        _claim(255, alice);
        _claim(256, alice);
        assertTrue(settlement.isClaimed(255, alice) && settlement.isClaimed(256, alice));
        assertFalse(settlement.isClaimed(254, alice) || settlement.isClaimed(257, alice));
        assertFalse(settlement.isClaimed(255, bob));
        _claim(254, alice);
        _claim(257, alice);
        _claim(255, bob);
        assertEq(token.balanceOf(alice), 400e18);
    }

    /// Any population of up to 8 accounts with any amounts within the budget: every account claims
    /// exactly its amount once, and the settlement ends with nothing left.
    function testFuzz_Claim_AnyAmounts(uint256 seed, uint8 count) public {
        uint256 n = bound(count, 1, 8);
        address[] memory accounts = new address[](n);
        uint256[] memory values = new uint256[](n);
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            accounts[i] = address(uint160(uint256(keccak256(abi.encode(seed, "account", i)))));
            values[i] = bound(uint256(keccak256(abi.encode(seed, "amount", i))), 1, E0 / 8);
            total += values[i];
        }
        _sortEntries(accounts, values);
        for (uint256 i = 1; i < n; ++i) {
            vm.assume(accounts[i] != accounts[i - 1] && accounts[i] != address(0));
        }
        _post(_report(0, _root(accounts, values), bytes32(0), total));
        for (uint256 i = 0; i < n; ++i) {
            uint256 before = token.balanceOf(accounts[i]);
            bytes32[] memory proof = _proof(accounts, values, i);
            settlement.claim(0, accounts[i], values[i], proof);
            assertEq(token.balanceOf(accounts[i]) - before, values[i]);
            vm.expectRevert(abi.encodeWithSelector(ISettlement.AlreadyClaimed.selector, 0, accounts[i]));
            settlement.claim(0, accounts[i], values[i], proof);
        }
        assertEq(token.balanceOf(address(settlement)), 0);
    }

    function testFuzz_PostReport_AnyTotalWithinBudget(uint256 total, uint64 epoch) public {
        epoch = uint64(bound(epoch, 0, 5000));
        uint256 budget = settlement.epochBudget(epoch);
        total = bound(total, 0, budget);
        uint256 supply = token.totalSupply();
        _post(_report(epoch, keccak256("r"), bytes32(0), total));
        assertEq(token.totalSupply(), supply + total);
    }

    // ------------------------------------------------------------------ trust

    function _trustTree(address node, uint256 trustWad)
        internal
        view
        returns (address[] memory nodes, uint256[] memory trusts)
    {
        return _pair(node, trustWad, bob, 0.9e18);
    }

    function _postTrust(uint64 epoch, address[] memory nodes, uint256[] memory trusts) internal {
        _post(_report(epoch, bytes32(0), _root(nodes, trusts), 0));
    }

    function _refresh(uint64 epoch, address[] memory nodes, uint256[] memory trusts, address node) internal {
        uint256 i = _indexOf(nodes, node);
        settlement.refreshTrust(epoch, node, trusts[i], _proof(nodes, trusts, i));
    }

    function test_RefreshTrust_SetsSortitionWeight() public {
        uint32 modelId = _registerModel(PRICE);
        address worker = _addWorker("worker", modelId, 1000e18);
        assertEq(registry.weightOf(modelId, worker), 200e18); // registry default: new-node trust 0.2
        (address[] memory nodes, uint256[] memory trusts) = _trustTree(worker, 0.35e18);
        _postTrust(0, nodes, trusts);
        vm.expectEmit(address(settlement));
        emit ISettlement.TrustRefreshed(0, worker, 0.35e18);
        vm.prank(makeAddr("anyone"));
        _refresh(0, nodes, trusts, worker);
        assertEq(registry.trustWeight(worker), 0.35e18);
        assertEq(registry.weightOf(modelId, worker), 350e18);
        (bool refreshed, uint64 e) = settlement.lastTrustRefresh(worker);
        assertTrue(refreshed);
        assertEq(e, 0);
    }

    function test_RefreshTrust_RevertsWhen_StaleProof() public {
        (address[] memory nodes, uint256[] memory trusts) = _trustTree(alice, 0.9e18);
        _postTrust(0, nodes, trusts);
        (address[] memory nodes1, uint256[] memory trusts1) = _trustTree(alice, 0.3e18);
        _postTrust(1, nodes1, trusts1);
        // Alice's higher trust of epoch 0 cannot be replayed once epoch 1 is reported.
        uint256 i = _indexOf(nodes, alice);
        bytes32[] memory proof = _proof(nodes, trusts, i);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.StaleTrustProof.selector, 0, 1));
        settlement.refreshTrust(0, alice, 0.9e18, proof);
        _refresh(1, nodes1, trusts1, alice);
        assertEq(registry.trustWeight(alice), 0.3e18);
    }

    function test_RefreshTrust_RevertsWhen_WrongProof() public {
        (address[] memory nodes, uint256[] memory trusts) = _trustTree(alice, 0.4e18);
        _postTrust(0, nodes, trusts);
        uint256 i = _indexOf(nodes, alice);
        bytes32[] memory proof = _proof(nodes, trusts, i);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.InvalidTrustProof.selector, 0, alice, 1e18));
        settlement.refreshTrust(0, alice, 1e18, proof);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.EpochNotReported.selector, 1));
        settlement.refreshTrust(1, alice, 0.4e18, proof);
    }

    function test_ExpireTrust_AfterTwoReportsWithoutRefresh() public {
        uint32 modelId = _registerModel(PRICE);
        address worker = _addWorker("worker", modelId, 1000e18);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.TrustNotExpired.selector, worker, 0, 0));
        settlement.expireTrust(worker);

        (address[] memory nodes, uint256[] memory trusts) = _trustTree(worker, 0.8e18);
        _postTrust(0, nodes, trusts);
        _refresh(0, nodes, trusts, worker);
        _postTrust(1, nodes, trusts);
        // one missed refresh is tolerated
        vm.expectRevert(abi.encodeWithSelector(ISettlement.TrustNotExpired.selector, worker, 0, 1));
        settlement.expireTrust(worker);
        _postTrust(2, nodes, trusts);
        vm.expectEmit(address(settlement));
        emit ISettlement.TrustExpired(worker, 2);
        vm.prank(makeAddr("anyone"));
        settlement.expireTrust(worker);
        assertEq(registry.trustWeight(worker), 0);
        assertEq(registry.weightOf(modelId, worker), 0);
        // refreshing again restores it
        _refresh(2, nodes, trusts, worker);
        assertEq(registry.weightOf(modelId, worker), 800e18);
    }

    /// A node that never refreshed keeps the new-node trust: nothing to expire (finding L-4, see
    /// test_Exploit_L4_ExpireBrandNewWorker in SettlementExploits.t.sol).
    function test_ExpireTrust_RevertsWhen_NeverRefreshed() public {
        (address[] memory nodes, uint256[] memory trusts) = _trustTree(alice, 0.8e18);
        _postTrust(0, nodes, trusts);
        _postTrust(1, nodes, trusts);
        _postTrust(2, nodes, trusts);
        assertEq(registry.trustWeight(bob), 0.2e18);
        vm.expectRevert(abi.encodeWithSelector(ISettlement.TrustNeverRefreshed.selector, bob));
        settlement.expireTrust(bob);
        assertEq(registry.trustWeight(bob), 0.2e18);
    }

    // ------------------------------------------------------------------ Rust vectors

    /// Roots, proofs and digest computed by protocol::powr (cross_vectors::vectors_shared_with_settlement_t_sol).
    function test_RustVectors_ReportClaimsAndTrustVerify() public {
        ISettlement.EpochReport memory r = ISettlement.EpochReport(
            3,
            0x12ae5dbbf75239908770ccf1c8a750e6314305c77bd87dabb6a6cf4095976bae,
            0x41e4aa3a2b58994e696c249d2368f1ddeab540011361bc41a0e600b1f93fb541,
            60e18,
            keccak256("models")
        );
        // EIP-712 digest of the same report for a Settlement at a fixed address on chain 31337.
        address at = 0x5e77100000000000000000000000000000000001;
        vm.etch(at, address(settlement).code);
        vm.chainId(31337);
        assertEq(
            Settlement(at).reportDigest(r), 0x7534df4dae217176673f849aa4a265fff3a082a283ba4aafe1b9a0f852a4f6a4
        );

        _post(r);
        bytes32[] memory p1 = new bytes32[](2);
        p1[0] = 0x5fe88c4ea7879a3788ec22729bad85e3051f0eb54192b3f17f21355efaac33f3;
        p1[1] = 0xbd94b0b4aa588aa3029bee1d07393ba3ea8552c123b43ec2005a073b22403d31;
        settlement.claim(3, address(1), 10e18, p1);
        bytes32[] memory p3 = new bytes32[](1);
        p3[0] = 0x6a2f6ebc81a0f86a8d6e26c8ff31e227ef65c6742705992362d2dd7a3b3bf423;
        settlement.claim(3, address(3), 30e18, p3);
        assertEq(token.balanceOf(address(1)), 10e18);
        assertEq(token.balanceOf(address(3)), 30e18);

        bytes32[] memory t1 = new bytes32[](1);
        t1[0] = _leaf(address(2), 0);
        settlement.refreshTrust(3, address(1), 0.5e18, t1);
        assertEq(registry.trustWeight(address(1)), 0.5e18);
    }
}

/// @notice Gas to post a report with 1, 4 and 16 signers, and per claim. Each call is its own transaction
///         (isolate), so the gasleft() delta is what the sender pays: 21000 + calldata + execution.
contract SettlementGasTest is SettlementBase {
    function setUp() public {
        _deploySettlement();
    }

    function _postGas(uint256 signers) internal returns (uint256 gasUsed) {
        _addValidators(signers, MIN_VALIDATOR_STAKE);
        // a first report, so the contract's and token's counters are warm as in a running network
        _post(_report(0, keccak256("r0"), keccak256("t0"), 1e18));
        ISettlement.EpochReport memory r = _report(1, keccak256("r1"), keccak256("t1"), 1000e18);
        vm.warp(settlement.epochEnd(1));
        bytes[] memory sigs = _sigs(r, signers);
        vm.cool(address(settlement));
        vm.cool(address(staking));
        vm.cool(address(token));
        uint256 g = gasleft();
        settlement.postReport(r, sigs);
        gasUsed = g - gasleft();
    }

    /// forge-config: default.isolate = true
    function test_Gas_PostReport_1Signer() public {
        uint256 g = _postGas(1);
        console.log("postReport, 1 signer:", g);
        assertLt(g, 200_000);
    }

    /// forge-config: default.isolate = true
    function test_Gas_PostReport_4Signers() public {
        uint256 g = _postGas(4);
        console.log("postReport, 4 signers:", g);
        assertLt(g, 250_000);
    }

    /// forge-config: default.isolate = true
    function test_Gas_PostReport_16Signers() public {
        uint256 g = _postGas(16);
        console.log("postReport, 16 signers:", g);
        assertLt(g, 450_000);
    }

    /// forge-config: default.isolate = true
    function test_Gas_Claim_1000Accounts() public {
        _addValidators(1, MIN_VALIDATOR_STAKE);
        uint256 n = 1000;
        address[] memory accounts = new address[](n);
        uint256[] memory values = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            accounts[i] = address(uint160(0x1000 + i));
            values[i] = 1e18 + i;
        }
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            total += values[i];
        }
        _post(_report(0, _root(accounts, values), bytes32(0), total));
        // first claim of the epoch, then a later one (the epoch slot is warm only within a tx)
        uint256[2] memory gasUsed;
        for (uint256 k = 0; k < 2; ++k) {
            uint256 i = k * 500 + 7;
            bytes32[] memory proof = _proof(accounts, values, i);
            vm.cool(address(settlement));
            vm.cool(address(token));
            uint256 g = gasleft();
            settlement.claim(0, accounts[i], values[i], proof);
            gasUsed[k] = g - gasleft();
        }
        console.log("claim (1000-leaf tree, 10-hash proof), fresh account:", gasUsed[0]);
        console.log("claim (1000-leaf tree), second account:", gasUsed[1]);
        assertLt(gasUsed[0], 120_000);
    }

    /// forge-config: default.isolate = true
    function test_Gas_RefreshTrust() public {
        _addValidators(1, MIN_VALIDATOR_STAKE);
        uint32 modelId = _registerModel(PRICE);
        address worker = _addWorker("worker", modelId, 1000e18);
        (address[] memory nodes, uint256[] memory trusts) = _pair(worker, 0.5e18, makeAddr("other"), 0.7e18);
        _post(_report(0, bytes32(0), _root(nodes, trusts), 0));
        uint256 i = _indexOf(nodes, worker);
        bytes32[] memory proof = _proof(nodes, trusts, i);
        vm.cool(address(settlement));
        vm.cool(address(registry));
        uint256 g = gasleft();
        settlement.refreshTrust(0, worker, 0.5e18, proof);
        g -= gasleft();
        console.log("refreshTrust (worker in 1 model):", g);
        assertLt(g, 150_000);
    }
}
