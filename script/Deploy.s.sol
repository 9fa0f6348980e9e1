// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Script, console} from "forge-std/Script.sol";
import {DNToken} from "../contracts/DNToken.sol";
import {Staking} from "../contracts/Staking.sol";
import {ModelRegistry} from "../contracts/ModelRegistry.sol";
import {TaskManager} from "../contracts/TaskManager.sol";
import {Settlement} from "../contracts/Settlement.sol";
import {AuditManager} from "../contracts/AuditManager.sol";
import {ProbeRegistry} from "../contracts/ProbeRegistry.sol";
import {IAuditManager} from "../contracts/interfaces/IAuditManager.sol";
import {IStakeObserver} from "../contracts/interfaces/IStaking.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @notice Deploys DNToken, Staking, ModelRegistry, TaskManager, Settlement, AuditManager and ProbeRegistry,
///         wires their roles and writes deployments/<chainId>.json for the Rust services.
/// Usage: forge script script/Deploy.s.sol --rpc-url $RPC --broadcast --private-key $KEY
/// Parameters (env, with defaults): DN_INITIAL_SUPPLY (100_000_000e18, minted to the deployer),
/// DN_MIN_WORKER_STAKE (100e18), DN_MIN_VALIDATOR_STAKE (1000e18), DN_UNBONDING_PERIOD (7 days),
/// DN_LISTING_BOND (10e18), DN_RESPONSE_WINDOW (120), DN_CHALLENGE_WINDOW (600), DN_JAIL_DURATION (600),
/// DN_TREASURY (deployer), DN_VALIDATOR_POOL (the timelock), DN_EPOCH_LENGTH (86400 s),
/// DN_INITIAL_EMISSION (1_000_000e18 per epoch), DN_EMISSION_DECAY (0.99e18 per epoch),
/// DN_ACTIVATION_DELAY (the epoch length: report signing stake is the stake in place when the epoch began),
/// DN_VETO_WINDOW (a quarter of the epoch length: how long a posted report can be vetoed before it pays),
/// DN_AUDIT_P0 (0.3e18), DN_AUDIT_P_MIN (0.02e18), DN_DISPUTE_WINDOW (300 s), DN_QUORUM (5, QUORUM_DEFAULT: dispute seats;
/// a network with fewer other validators seats them all),
/// DN_ADMIN (deployer: proposes and cancels admin operations), DN_ADMIN_DELAY (2 days; at least 1 day
/// outside a devnet, chain 31337), DN_SENTINEL_PLANTER (none: the sentinel's planter wallet, granted
/// AuditManager's PLANTER_ROLE so that `executor --sentinel-key` can plant forced errors from the start;
/// later planters are granted through the timelock), DN_PROBER (none: the prober's wallet, granted
/// ProbeRegistry's PROBER_ROLE so that it can reveal its probe wallets from the start; later probers are
/// granted through the timelock), DN_PROBE_EMISSION (true, PROBE_EMISSION_DEFAULT: probe emission is switched
/// on at deployment, i.e. the epoch computation pays the workers' and developers' emission pools on revealed
/// probe tasks only, so self-paid tasks buy no emission; without a prober those pools stay unminted until
/// one is granted; false keeps the fee-blind v3 rules, which wash trading drains; later changes go through
/// the timelock).
/// Admin: every contract's DEFAULT_ADMIN_ROLE (and the registry's STATUS_ROLE) ends with an OpenZeppelin
/// TimelockController: DN_ADMIN proposes, anyone executes once DN_ADMIN_DELAY has passed, so every
/// parameter change, role grant (MINTER_ROLE included) and recipient change is public for the delay before
/// it applies. The deployer keeps no role. Settlement holds MINTER_ROLE, TRUST_ROLE and STATUS_ROLE;
/// AuditManager SLASHER_ROLE, AUDITOR_ROLE and TRUST_ROLE; Settlement SLASHER_ROLE (equivocating report
/// signers); TaskManager JAILER_ROLE; ProbeRegistry's PROBER_ROLE only DN_PROBER, when set.
contract Deploy is Script {
    /// DN_PROBE_EMISSION when unset: emissions follow only the protocol's own probe tasks (issue 14).
    bool public constant PROBE_EMISSION_DEFAULT = true;
    /// DN_QUORUM when unset: five dispute seats, so colluders need three of them (issue 14: with 1/3 of
    /// the validator stake they win a 5-seat majority 21% of the time, a 3-seat one 26%).
    uint8 public constant QUORUM_DEFAULT = 5;

    struct Deployment {
        uint256 startBlock;
        address deployer;
        address treasury;
        address validatorPool;
        DNToken token;
        Staking staking;
        ModelRegistry registry;
        TaskManager taskManager;
        Settlement settlement;
        AuditManager auditManager;
        ProbeRegistry probeRegistry;
        TimelockController timelock;
    }

    /// Shortest admin delay outside a devnet.
    uint256 internal constant MIN_ADMIN_DELAY = 1 days;
    uint256 internal constant DEVNET_CHAIN_ID = 31337;

    error AdminDelayTooShort(uint256 delay, uint256 minimum);

    function run() external returns (Deployment memory d) {
        d = deploy();
        _write(d);
    }

    /// Deploys and wires everything (broadcast from the caller's key) without writing the file.
    function deploy() public returns (Deployment memory d) {
        d.startBlock = block.number;
        vm.startBroadcast();
        (, d.deployer,) = vm.readCallers();
        d.timelock = _timelock(d.deployer);
        d.treasury = vm.envOr("DN_TREASURY", d.deployer);
        // the validators' fee share is not one person's: it waits under the timelock's control
        d.validatorPool = vm.envOr("DN_VALIDATOR_POOL", address(d.timelock));

        d.token = new DNToken(d.deployer, d.deployer, vm.envOr("DN_INITIAL_SUPPLY", uint256(100_000_000e18)));
        d.staking = new Staking(
            d.deployer,
            d.token,
            vm.envOr("DN_MIN_WORKER_STAKE", uint256(100e18)),
            vm.envOr("DN_MIN_VALIDATOR_STAKE", uint256(1000e18)),
            uint64(vm.envOr("DN_UNBONDING_PERIOD", uint256(7 days)))
        );
        d.registry =
            new ModelRegistry(d.deployer, d.token, d.staking, vm.envOr("DN_LISTING_BOND", uint256(10e18)));
        d.taskManager = new TaskManager(
            d.deployer,
            d.token,
            d.staking,
            d.registry,
            d.treasury,
            d.validatorPool,
            uint32(vm.envOr("DN_RESPONSE_WINDOW", uint256(120))),
            uint32(vm.envOr("DN_CHALLENGE_WINDOW", uint256(600))),
            uint32(vm.envOr("DN_JAIL_DURATION", uint256(600)))
        );
        d.staking.grantRole(d.staking.JAILER_ROLE(), address(d.taskManager));
        d.staking.setStakeObserver(IStakeObserver(address(d.registry)));
        uint256 epochLength = vm.envOr("DN_EPOCH_LENGTH", uint256(1 days));
        d.settlement = new Settlement(
            d.token,
            d.staking,
            d.registry,
            uint64(block.timestamp),
            uint64(epochLength),
            vm.envOr("DN_INITIAL_EMISSION", uint256(1_000_000e18)),
            vm.envOr("DN_EMISSION_DECAY", uint256(0.99e18)),
            uint64(vm.envOr("DN_ACTIVATION_DELAY", epochLength)),
            uint64(vm.envOr("DN_VETO_WINDOW", epochLength / 4))
        );
        d.token.grantRole(d.token.MINTER_ROLE(), address(d.settlement));
        d.registry.grantRole(d.registry.TRUST_ROLE(), address(d.settlement));
        d.registry.grantRole(d.registry.STATUS_ROLE(), address(d.settlement));
        d.auditManager = new AuditManager(d.deployer, d.token, d.staking, d.taskManager, d.registry);
        _auditParams(d.auditManager);
        d.staking.grantRole(d.staking.SLASHER_ROLE(), address(d.auditManager));
        // equivocating report signers (two different reports of one epoch)
        d.staking.grantRole(d.staking.SLASHER_ROLE(), address(d.settlement));
        d.staking.setValidatorObserver(IStakeObserver(address(d.auditManager)));
        d.taskManager.grantRole(d.taskManager.AUDITOR_ROLE(), address(d.auditManager));
        d.registry.grantRole(d.registry.TRUST_ROLE(), address(d.auditManager));
        // the sentinel (lazy validators lose stake to its planted forced errors, issue 14)
        address planter = vm.envOr("DN_SENTINEL_PLANTER", address(0));
        if (planter != address(0)) d.auditManager.grantRole(d.auditManager.PLANTER_ROLE(), planter);
        // probe emission (issue 14): the prober reveals its probe wallets after each epoch
        d.probeRegistry = new ProbeRegistry(d.deployer, address(d.settlement));
        address prober = vm.envOr("DN_PROBER", address(0));
        if (prober != address(0)) d.probeRegistry.grantRole(d.probeRegistry.PROBER_ROLE(), prober);
        if (vm.envOr("DN_PROBE_EMISSION", PROBE_EMISSION_DEFAULT)) {
            d.probeRegistry.setProbeEmission(true);
            if (prober == address(0)) {
                console.log(
                    "probe emission on without DN_PROBER: work pools stay unminted until a prober is granted"
                );
            }
        }
        _handOver(d);
        vm.stopBroadcast();
    }

    /// The admin timelock: DN_ADMIN proposes (and cancels), anyone executes a ready operation, no admin
    /// of its own (it administers itself: a change of its delay or proposers goes through the delay too).
    function _timelock(address deployer) internal returns (TimelockController) {
        return newTimelock(vm.envOr("DN_ADMIN", deployer), vm.envOr("DN_ADMIN_DELAY", uint256(2 days)));
    }

    function newTimelock(address proposer, uint256 delay) public returns (TimelockController) {
        if (delay < MIN_ADMIN_DELAY && block.chainid != DEVNET_CHAIN_ID) {
            revert AdminDelayTooShort(delay, MIN_ADMIN_DELAY);
        }
        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1);
        executors[0] = address(0);
        return new TimelockController(delay, proposers, executors, address(0));
    }

    /// Moves every admin power from the deployer to the timelock (least privilege: the deployer keeps
    /// nothing, not even the registry's STATUS_ROLE).
    function _handOver(Deployment memory d) internal {
        address t = address(d.timelock);
        d.registry.grantRole(d.registry.STATUS_ROLE(), t);
        d.registry.renounceRole(d.registry.STATUS_ROLE(), d.deployer);
        AccessControl[6] memory all =
            [AccessControl(d.token), d.staking, d.registry, d.taskManager, d.auditManager, d.probeRegistry];
        for (uint256 i = 0; i < all.length; ++i) {
            all[i].grantRole(bytes32(0), t);
            all[i].renounceRole(bytes32(0), d.deployer);
        }
    }

    /// Audit parameters from DN_AUDIT_P0 / DN_AUDIT_P_MIN (WAD), DN_DISPUTE_WINDOW (s), DN_QUORUM (default
    /// QUORUM_DEFAULT, not the contract's 3).
    function _auditParams(AuditManager audits) internal {
        IAuditManager.Params memory p = audits.params();
        p.p0Wad = uint64(vm.envOr("DN_AUDIT_P0", uint256(p.p0Wad)));
        p.pMinWad = uint64(vm.envOr("DN_AUDIT_P_MIN", uint256(p.pMinWad)));
        p.disputeWindow = uint32(vm.envOr("DN_DISPUTE_WINDOW", uint256(p.disputeWindow)));
        p.quorum = uint8(vm.envOr("DN_QUORUM", uint256(QUORUM_DEFAULT)));
        audits.setParams(p);
    }

    function _write(Deployment memory d) internal {
        string memory key = "deployment";
        vm.serializeUint(key, "chainId", block.chainid);
        vm.serializeUint(key, "startBlock", d.startBlock);
        vm.serializeAddress(key, "token", address(d.token));
        vm.serializeAddress(key, "staking", address(d.staking));
        vm.serializeAddress(key, "modelRegistry", address(d.registry));
        vm.serializeAddress(key, "taskManager", address(d.taskManager));
        vm.serializeAddress(key, "treasury", d.treasury);
        vm.serializeAddress(key, "settlement", address(d.settlement));
        vm.serializeAddress(key, "auditManager", address(d.auditManager));
        vm.serializeAddress(key, "probeRegistry", address(d.probeRegistry));
        vm.serializeAddress(key, "adminTimelock", address(d.timelock));
        string memory json = vm.serializeAddress(key, "validatorPool", d.validatorPool);
        string memory dir = string.concat(vm.projectRoot(), "/deployments");
        vm.createDir(dir, true);
        string memory path = string.concat(dir, "/", vm.toString(block.chainid), ".json");
        vm.writeJson(json, path);
        console.log("deployment written to", path);
    }
}
