// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title DNToken
/// @notice The DeepNode token: ERC20 with ERC-2612 permit (one-signature wallet staking), a hard
///         cap, burning (slashed stake is burned) and minting only by MINTER_ROLE (the settlement
///         contract, which mints epoch emissions on a decaying schedule).
contract DNToken is ERC20, ERC20Permit, ERC20Capped, ERC20Burnable, AccessControl {
    /// @notice Role allowed to mint (epoch emissions).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice Hard cap: one billion DN.
    uint256 public constant MAX_SUPPLY = 1_000_000_000e18;

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants MINTER_ROLE to settlement)
    /// @param initialHolder receives the initial supply
    /// @param initialSupply minted at deployment (counts against the cap)
    constructor(address admin, address initialHolder, uint256 initialSupply)
        ERC20("DeepNode", "DN")
        ERC20Permit("DeepNode")
        ERC20Capped(MAX_SUPPLY)
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (initialSupply > 0) _mint(initialHolder, initialSupply);
    }

    /// @notice Mints emissions; only MINTER_ROLE; reverts past the cap.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped) {
        super._update(from, to, value);
    }
}
