// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IStaking, IStakeObserver} from "./interfaces/IStaking.sol";
import {DNToken} from "./DNToken.sol";

/// @title Staking
/// @notice DN stake per role (worker, validator). Unstaking goes through an unbonding queue that
///         stays slashable until withdrawn. SLASHER_ROLE (task / settlement contracts) slashes with a
///         reason code: part of the slashed amount rewards the party that proved the fault, the rest
///         is burned. JAILER_ROLE jails accounts that missed deadlines.
/// @dev Accounting: `totalStaked()` = active stake of both roles + stake still unbonding, which is
///      exactly the DN balance this contract holds for stakers (tested as an invariant).
///      `totalStakedByRole(role)` = active stake of that role only (what gives weight / voting power).
contract Staking is IStaking, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for DNToken;
    using SafeCast for uint256;
    using Checkpoints for Checkpoints.Trace208;

    /// @notice Role allowed to slash (TaskManager, settlement).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Role allowed to jail (TaskManager on missed deadlines).
    bytes32 public constant JAILER_ROLE = keccak256("JAILER_ROLE");
    /// @notice Most pending unbonding entries per account (bounds the withdraw / slash loops).
    uint256 public constant MAX_UNBONDINGS = 32;
    /// @notice Longest unbonding period the admin may set.
    uint64 public constant MAX_UNBONDING_PERIOD = 365 days;
    /// @notice Shortest unbonding period: stake must stay slashable past a result's challenge window and
    ///         its dispute (an unbonding of 0 would let a cheater withdraw before the fraud is proven).
    uint64 public constant MIN_UNBONDING_PERIOD = 1 hours;

    /// @notice The staked token (burned on slash).
    DNToken public immutable token;

    /// @notice Who is told when active worker stake changes (the ModelRegistry).
    IStakeObserver public stakeObserver;
    /// @notice Who is told when active validator stake changes (the AuditManager: draw weights).
    IStakeObserver public validatorObserver;

    uint64 private _unbondingPeriod;
    uint256[2] private _minStake;
    /// active stake per role
    uint256[2] private _activeByRole;
    /// stake in unbonding entries, both roles
    uint256 private _unbondingTotal;

    mapping(address account => uint256[2]) private _stakes;
    mapping(address account => Unbonding[]) private _unbondings;
    mapping(address account => uint64) private _jailedUntil;
    /// active validator stake per account and in total, by timestamp (epoch reports count the stake
    /// in place when their epoch ended, finding M-3)
    mapping(address account => Checkpoints.Trace208) private _validatorHistory;
    Checkpoints.Trace208 private _validatorTotalHistory;

    /// @notice Emitted when the admin sets a role's minimum stake.
    event MinStakeSet(uint8 indexed role, uint256 minimum);
    /// @notice Emitted when the admin sets the unbonding period.
    event UnbondingPeriodSet(uint64 period);

    /// @notice rewardBps above 10000.
    error InvalidBps(uint256 bps);
    /// @notice unbonding period above MAX_UNBONDING_PERIOD.
    error InvalidUnbondingPeriod(uint64 period, uint64 max);
    /// @notice unbonding period below MIN_UNBONDING_PERIOD.
    error UnbondingPeriodTooShort(uint64 period, uint64 min);

    /// @param admin DEFAULT_ADMIN_ROLE: sets parameters and grants SLASHER_ROLE / JAILER_ROLE
    /// @param token_ the DN token
    /// @param minWorkerStake minimum active stake for Role.Worker
    /// @param minValidatorStake minimum active stake for Role.Validator
    /// @param unbondingPeriod_ seconds between requestUnstake and withdraw
    constructor(
        address admin,
        DNToken token_,
        uint256 minWorkerStake,
        uint256 minValidatorStake,
        uint64 unbondingPeriod_
    ) {
        _checkUnbondingPeriod(unbondingPeriod_);
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _minStake[0] = minWorkerStake;
        _minStake[1] = minValidatorStake;
        _unbondingPeriod = unbondingPeriod_;
        emit MinStakeSet(0, minWorkerStake);
        emit MinStakeSet(1, minValidatorStake);
        emit UnbondingPeriodSet(unbondingPeriod_);
    }

    // ------------------------------------------------------------------ staking

    /// @inheritdoc IStaking
    /// @dev Needs an allowance of `amount`. Reverts BelowMinimumStake when the resulting stake is
    ///      still under the role minimum.
    function stake(uint8 role, uint256 amount) external nonReentrant {
        _stake(role, amount);
    }

    /// @inheritdoc IStaking
    /// @dev A failed permit is ignored (it may have been front-run: the allowance is what
    ///      matters), as OpenZeppelin recommends; transferFrom then fails if there is no allowance.
    function stakeWithPermit(uint8 role, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
            catch {}
        _stake(role, amount);
    }

    /// @inheritdoc IStaking
    /// @dev The remaining active stake must be 0 or at least the role minimum. The amount stays
    ///      slashable in the queue until `withdraw` after `unbondingPeriod`.
    function requestUnstake(uint8 role, uint256 amount) external nonReentrant {
        _requireRole(role);
        if (amount == 0) revert ZeroAmount();
        uint256 current = _stakes[msg.sender][role];
        if (amount > current) revert InsufficientStake(role, current, amount);
        uint256 remaining = current - amount;
        uint256 minimum = _minStake[role];
        if (remaining != 0 && remaining < minimum) revert BelowMinimumStake(role, remaining, minimum);
        Unbonding[] storage queue = _unbondings[msg.sender];
        if (queue.length >= MAX_UNBONDINGS) revert TooManyUnbondings(msg.sender, MAX_UNBONDINGS);

        uint64 releaseAt = uint64(block.timestamp) + _unbondingPeriod;
        _stakes[msg.sender][role] = remaining;
        _activeByRole[role] -= amount;
        _unbondingTotal += amount;
        queue.push(Unbonding({role: role, amount: amount.toUint96(), releaseAt: releaseAt}));
        emit UnstakeRequested(msg.sender, role, amount, releaseAt, remaining);
        _notify(msg.sender, role);
    }

    /// @inheritdoc IStaking
    /// @dev Pays every entry whose releaseAt has passed (releaseAt <= now); others stay queued.
    function withdraw() external nonReentrant returns (uint256 amount) {
        Unbonding[] storage queue = _unbondings[msg.sender];
        uint256 i = 0;
        while (i < queue.length) {
            Unbonding memory u = queue[i];
            if (u.releaseAt <= block.timestamp) {
                amount += u.amount;
                _removeUnbonding(queue, i);
            } else {
                ++i;
            }
        }
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _unbondingTotal -= amount;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ slashing / jail

    /// @inheritdoc IStaking
    /// @dev Takes up to `amount` from active stake first, then from the account's unbonding entries of
    ///      that role (newest first). `rewardBps` of what was taken goes to `beneficiary`, the rest is
    ///      burned. Returns what was actually slashed (less than `amount` when the account has less).
    function slash(
        address account,
        uint8 role,
        uint256 amount,
        uint8 reason,
        address beneficiary,
        uint16 rewardBps
    ) external onlyRole(SLASHER_ROLE) nonReentrant returns (uint256 slashed) {
        _requireRole(role);
        if (rewardBps > 10_000) revert InvalidBps(rewardBps);
        if (amount == 0) revert ZeroAmount();

        uint256 active = _stakes[account][role];
        uint256 fromActive = amount < active ? amount : active;
        if (fromActive > 0) {
            _stakes[account][role] = active - fromActive;
            _activeByRole[role] -= fromActive;
        }
        slashed = fromActive;

        uint256 fromUnbonding = 0;
        Unbonding[] storage queue = _unbondings[account];
        for (uint256 i = queue.length; i > 0 && slashed < amount;) {
            --i;
            Unbonding storage u = queue[i];
            if (u.role != role) continue;
            uint256 want = amount - slashed;
            if (u.amount <= want) {
                fromUnbonding += u.amount;
                slashed += u.amount;
                _removeUnbonding(queue, i);
            } else {
                u.amount -= uint96(want);
                fromUnbonding += want;
                slashed += want;
            }
        }
        if (fromUnbonding > 0) _unbondingTotal -= fromUnbonding;
        if (slashed == 0) return 0;

        uint256 rewarded = beneficiary == address(0) ? 0 : slashed * rewardBps / 10_000;
        uint256 burned = slashed - rewarded;
        emit Slashed(account, role, reason, slashed, beneficiary, rewarded, burned);
        if (rewarded > 0) token.safeTransfer(beneficiary, rewarded);
        if (burned > 0) token.burn(burned);
        if (fromActive > 0) _notify(account, role);
    }

    /// @inheritdoc IStaking
    /// @dev Only extends a jail (an earlier `until` than the current one is ignored). The observer is
    ///      told, so a jailed worker gets sortition weight 0; when the jail ends the worker calls
    ///      ModelRegistry.syncWorker to get its weight back.
    function jail(address account, uint64 until) external onlyRole(JAILER_ROLE) {
        if (until <= _jailedUntil[account]) return;
        _jailedUntil[account] = until;
        emit Jailed(account, until);
        _notify(account, uint8(Role.Worker));
    }

    // ------------------------------------------------------------------ admin

    /// @notice Sets the minimum active stake of a role (existing stakes under it become ineligible).
    function setMinStake(uint8 role, uint256 minimum) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireRole(role);
        _minStake[role] = minimum;
        emit MinStakeSet(role, minimum);
    }

    /// @notice Sets the unbonding period for future unstake requests (1 hour .. 365 days).
    function setUnbondingPeriod(uint64 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkUnbondingPeriod(period);
        _unbondingPeriod = period;
        emit UnbondingPeriodSet(period);
    }

    /// @notice Sets (or clears with address(0)) the contract told about worker stake changes.
    function setStakeObserver(IStakeObserver observer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        stakeObserver = observer;
        emit StakeObserverSet(address(observer));
    }

    /// @notice Sets (or clears with address(0)) the contract told about validator stake changes.
    function setValidatorObserver(IStakeObserver observer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        validatorObserver = observer;
        emit ValidatorObserverSet(address(observer));
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IStaking
    function stakeOf(address account, uint8 role) external view returns (uint256) {
        _requireRole(role);
        return _stakes[account][role];
    }

    /// @inheritdoc IStaking
    function slashableOf(address account, uint8 role) external view returns (uint256 total) {
        _requireRole(role);
        total = _stakes[account][role];
        Unbonding[] storage queue = _unbondings[account];
        for (uint256 i = 0; i < queue.length; ++i) {
            if (queue[i].role == role) total += queue[i].amount;
        }
    }

    /// @inheritdoc IStaking
    function unbondingsOf(address account) external view returns (Unbonding[] memory) {
        return _unbondings[account];
    }

    /// @inheritdoc IStaking
    function jailedUntil(address account) external view returns (uint64) {
        return _jailedUntil[account];
    }

    /// @inheritdoc IStaking
    /// @dev A zero stake is never eligible, even when the minimum is 0.
    function isEligible(address account, uint8 role) external view returns (bool) {
        _requireRole(role);
        uint256 s = _stakes[account][role];
        return s != 0 && s >= _minStake[role] && _jailedUntil[account] <= block.timestamp;
    }

    /// @inheritdoc IStaking
    function minStake(uint8 role) external view returns (uint256) {
        _requireRole(role);
        return _minStake[role];
    }

    /// @inheritdoc IStaking
    function unbondingPeriod() external view returns (uint64) {
        return _unbondingPeriod;
    }

    /// @inheritdoc IStaking
    /// @dev Active stake of both roles plus stake still unbonding (== DN held by this contract).
    function totalStaked() external view returns (uint256) {
        return _activeByRole[0] + _activeByRole[1] + _unbondingTotal;
    }

    /// @inheritdoc IStaking
    /// @dev Active stake of the role only (unbonding stake carries no weight).
    function totalStakedByRole(uint8 role) external view returns (uint256) {
        _requireRole(role);
        return _activeByRole[role];
    }

    /// @inheritdoc IStaking
    function validatorStakeAt(address account, uint48 timestamp) external view returns (uint256) {
        return _validatorHistory[account].upperLookupRecent(timestamp);
    }

    /// @inheritdoc IStaking
    function totalValidatorStakeAt(uint48 timestamp) external view returns (uint256) {
        return _validatorTotalHistory.upperLookupRecent(timestamp);
    }

    /// @notice Stake waiting in unbonding queues, both roles.
    function totalUnbonding() external view returns (uint256) {
        return _unbondingTotal;
    }

    // ------------------------------------------------------------------ internals

    function _stake(uint8 role, uint256 amount) private {
        _requireRole(role);
        if (amount == 0) revert ZeroAmount();
        uint256 newStake = _stakes[msg.sender][role] + amount;
        uint256 minimum = _minStake[role];
        if (newStake < minimum) revert BelowMinimumStake(role, newStake, minimum);
        _stakes[msg.sender][role] = newStake;
        _activeByRole[role] += amount;
        emit Staked(msg.sender, role, amount, newStake);
        token.safeTransferFrom(msg.sender, address(this), amount);
        _notify(msg.sender, role);
    }

    /// Called after every change of an account's active stake: records validator stake history, then
    /// tells the role's observer.
    function _notify(address account, uint8 role) private {
        if (role == uint8(Role.Validator)) {
            uint48 now_ = uint48(block.timestamp);
            _validatorHistory[account].push(now_, _stakes[account][role].toUint208());
            _validatorTotalHistory.push(now_, _activeByRole[role].toUint208());
        }
        IStakeObserver observer = role == uint8(Role.Worker) ? stakeObserver : validatorObserver;
        if (address(observer) != address(0)) observer.onStakeChanged(account);
    }

    /// Swap-and-pop: queue order is not meaningful.
    function _removeUnbonding(Unbonding[] storage queue, uint256 i) private {
        uint256 last = queue.length - 1;
        if (i != last) queue[i] = queue[last];
        queue.pop();
    }

    function _checkUnbondingPeriod(uint64 period) private pure {
        if (period > MAX_UNBONDING_PERIOD) revert InvalidUnbondingPeriod(period, MAX_UNBONDING_PERIOD);
        if (period < MIN_UNBONDING_PERIOD) revert UnbondingPeriodTooShort(period, MIN_UNBONDING_PERIOD);
    }

    function _requireRole(uint8 role) private pure {
        if (role > uint8(Role.Validator)) revert InvalidRole(role);
    }
}
