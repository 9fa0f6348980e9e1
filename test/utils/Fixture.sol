// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {DNToken} from "../../contracts/DNToken.sol";
import {Staking} from "../../contracts/Staking.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {TaskManager} from "../../contracts/TaskManager.sol";
import {IStakeObserver} from "../../contracts/interfaces/IStaking.sol";

/// @notice Deploys and wires the four real contracts the way script/Deploy.s.sol does, plus helpers
///         to fund accounts, stake workers, list models and run tasks.
abstract contract Fixture is Test {
    DNToken internal token;
    Staking internal staking;
    ModelRegistry internal registry;
    TaskManager internal tm;

    address internal admin = makeAddr("admin");
    address internal developer = makeAddr("developer");
    address internal user = makeAddr("user");
    address internal treasury = makeAddr("treasury");
    address internal validatorPool = makeAddr("validatorPool");

    uint256 internal constant MIN_WORKER_STAKE = 100e18;
    uint256 internal constant MIN_VALIDATOR_STAKE = 1000e18;
    uint64 internal constant UNBONDING = 7 days;
    uint256 internal constant LISTING_BOND = 10e18;
    uint32 internal constant RESPONSE_WINDOW = 120;
    uint32 internal constant CHALLENGE_WINDOW = 600;
    uint32 internal constant JAIL = 600;
    uint96 internal constant PRICE = 1e18;

    uint8 internal constant WORKER = 0;
    uint8 internal constant VALIDATOR = 1;

    function _deploy() internal {
        token = new DNToken(admin, address(this), 100_000_000e18);
        staking = new Staking(admin, token, MIN_WORKER_STAKE, MIN_VALIDATOR_STAKE, UNBONDING);
        registry = new ModelRegistry(admin, token, staking, LISTING_BOND);
        tm = new TaskManager(
            admin, token, staking, registry, treasury, validatorPool, RESPONSE_WINDOW, CHALLENGE_WINDOW, JAIL
        );
        vm.startPrank(admin);
        staking.grantRole(staking.JAILER_ROLE(), address(tm));
        staking.setStakeObserver(IStakeObserver(address(registry)));
        vm.stopPrank();
        vm.label(address(token), "DNToken");
        vm.label(address(staking), "Staking");
        vm.label(address(registry), "ModelRegistry");
        vm.label(address(tm), "TaskManager");
    }

    function _fund(address to, uint256 amount) internal {
        assertTrue(token.transfer(to, amount), "fund transfer");
    }

    function _stake(address account, uint8 role, uint256 amount) internal {
        _fund(account, amount);
        vm.startPrank(account);
        token.approve(address(staking), amount);
        staking.stake(role, amount);
        vm.stopPrank();
    }

    function _registerModel(uint96 price) internal returns (uint32 modelId) {
        _fund(developer, LISTING_BOND);
        vm.startPrank(developer);
        token.approve(address(registry), LISTING_BOND);
        modelId = registry.registerModel(keccak256("model.onnx"), "ipfs://model", price, 7, 0, 0, 0);
        vm.stopPrank();
    }

    /// Stakes `amount` for a new worker named `name` and opts it into `modelId`.
    function _addWorker(string memory name, uint32 modelId, uint256 amount)
        internal
        returns (address worker)
    {
        worker = makeAddr(name);
        _stake(worker, WORKER, amount);
        vm.prank(worker);
        registry.optIn(modelId);
    }

    function _fundUser(uint256 amount) internal {
        _fund(user, amount);
        vm.prank(user);
        token.approve(address(tm), type(uint256).max);
    }

    function _input(uint256 i) internal pure returns (bytes memory) {
        return abi.encodePacked(keccak256(abi.encode("input", i)), keccak256(abi.encode("input2", i)));
    }

    function _inputs(uint256 n) internal pure returns (bytes[] memory inputs) {
        inputs = new bytes[](n);
        for (uint256 i = 0; i < n; ++i) {
            inputs[i] = _input(i);
        }
    }

    /// Submits one task as the user and draws its worker (two blocks on, then assignTasks).
    function _submit(uint32 modelId) internal returns (uint256 taskId) {
        vm.prank(user);
        taskId = tm.submitTask(modelId, _input(0), PRICE);
        _assign(taskId, 1);
    }

    /// Two blocks on (the draw uses the hash of the block after the anchor), then assigns tasks
    /// first..first+n-1.
    function _assign(uint256 first, uint256 n) internal {
        vm.roll(block.number + 2);
        uint256[] memory ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = first + i;
        }
        tm.assignTasks(ids);
    }

    function _commit(uint256 taskId, uint16 code) internal {
        address worker = tm.getTask(taskId).worker;
        vm.prank(worker);
        tm.commit(taskId, keccak256(abi.encode("out", taskId)), code, "");
    }
}
