// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title IStaking
/// @notice Stake per role (worker / validator), unbonding queue that stays slashable, role-gated
///         slashing with a reason code, and short jails for missed deadlines.
interface IStaking {
    /// @notice Roles an account can stake for. Stored as uint8 in events and calls.
    enum Role {
        Worker,
        Validator
    }

    /// @notice One pending unstake of an account.
    struct Unbonding {
        uint8 role;
        uint96 amount;
        uint64 releaseAt;
    }

    event Staked(address indexed account, uint8 indexed role, uint256 amount, uint256 newStake);
    event UnstakeRequested(
        address indexed account, uint8 indexed role, uint256 amount, uint64 releaseAt, uint256 newStake
    );
    event Withdrawn(address indexed account, uint256 amount);
    /// @param reason protocol reason code (1 = fraud, 2 = false accusation, 3 = lazy validator, 4 = missed audit,
    ///        5 = minority vote in a dispute)
    event Slashed(
        address indexed account,
        uint8 indexed role,
        uint8 reason,
        uint256 amount,
        address beneficiary,
        uint256 rewarded,
        uint256 burned
    );
    event Jailed(address indexed account, uint64 until);
    event StakeObserverSet(address observer);
    event ValidatorObserverSet(address observer);

    error InvalidRole(uint8 role);
    error ZeroAmount();
    error BelowMinimumStake(uint8 role, uint256 newStake, uint256 minimum);
    error InsufficientStake(uint8 role, uint256 stake, uint256 requested);
    error NothingToWithdraw(address account);
    error TooManyUnbondings(address account, uint256 max);

    function stake(uint8 role, uint256 amount) external;
    function stakeWithPermit(uint8 role, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;
    function requestUnstake(uint8 role, uint256 amount) external;
    function withdraw() external returns (uint256 amount);

    function slash(
        address account,
        uint8 role,
        uint256 amount,
        uint8 reason,
        address beneficiary,
        uint16 rewardBps
    ) external returns (uint256 slashed);
    function jail(address account, uint64 until) external;

    function stakeOf(address account, uint8 role) external view returns (uint256);
    /// @notice Active stake plus stake still unbonding (what slashing can reach).
    function slashableOf(address account, uint8 role) external view returns (uint256);
    function unbondingsOf(address account) external view returns (Unbonding[] memory);
    function jailedUntil(address account) external view returns (uint64);
    /// @notice stake >= minimum for the role and not jailed.
    function isEligible(address account, uint8 role) external view returns (bool);
    function minStake(uint8 role) external view returns (uint256);
    function unbondingPeriod() external view returns (uint64);
    function totalStaked() external view returns (uint256);
    function totalStakedByRole(uint8 role) external view returns (uint256);
    /// @notice `account`'s active validator stake as it stood at `timestamp` (after that second's
    ///         last change).
    function validatorStakeAt(address account, uint48 timestamp) external view returns (uint256);
    /// @notice The total active validator stake as it stood at `timestamp`.
    function totalValidatorStakeAt(uint48 timestamp) external view returns (uint256);
}

/// @notice Told by Staking whenever an account's active stake changes: worker stake to the ModelRegistry
///         (sortition weights), validator stake to the AuditManager (audit and quorum draw weights).
interface IStakeObserver {
    function onStakeChanged(address account) external;
}
