// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {DNToken} from "../contracts/DNToken.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract DNTokenTest is Test {
    DNToken token;
    address admin = makeAddr("admin");

    function setUp() public {
        token = new DNToken(admin, address(this), 1000e18);
    }

    function test_InitialSupply_GoesToHolder() public view {
        assertEq(token.balanceOf(address(this)), 1000e18);
        assertEq(token.totalSupply(), 1000e18);
    }

    function test_Mint_RevertsWithoutMinterRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), token.MINTER_ROLE()
            )
        );
        token.mint(address(this), 1);
    }
}
