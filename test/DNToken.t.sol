// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {Test} from "forge-std/Test.sol";
import {DNToken} from "../contracts/DNToken.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

contract DNTokenTest is Test {
    DNToken token;
    address admin = makeAddr("admin");
    address minter = makeAddr("minter");

    function setUp() public {
        token = new DNToken(admin, address(this), 1000e18);
        bytes32 role = token.MINTER_ROLE();
        vm.prank(admin);
        token.grantRole(role, minter);
    }

    function test_Metadata() public view {
        assertEq(token.name(), "DeepNode");
        assertEq(token.symbol(), "DN");
        assertEq(token.decimals(), 18);
        assertEq(token.cap(), 1_000_000_000e18);
    }

    function test_InitialSupply_GoesToHolder() public view {
        assertEq(token.balanceOf(address(this)), 1000e18);
        assertEq(token.totalSupply(), 1000e18);
    }

    function test_Mint_ByMinter() public {
        vm.prank(minter);
        token.mint(address(1), 5e18);
        assertEq(token.balanceOf(address(1)), 5e18);
    }

    function test_Mint_RevertsWithoutMinterRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), token.MINTER_ROLE()
            )
        );
        token.mint(address(this), 1);
    }

    function test_Mint_RevertsPastCap() public {
        uint256 room = token.cap() - token.totalSupply();
        vm.prank(minter);
        token.mint(address(1), room);
        vm.expectRevert(
            abi.encodeWithSelector(ERC20Capped.ERC20ExceededCap.selector, token.cap() + 1, token.cap())
        );
        vm.prank(minter);
        token.mint(address(1), 1);
    }

    function test_Constructor_RevertsPastCap() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                ERC20Capped.ERC20ExceededCap.selector, uint256(1_000_000_001e18), token.cap()
            )
        );
        new DNToken(admin, address(this), 1_000_000_001e18);
    }

    function test_Burn_ReducesSupply() public {
        token.burn(400e18);
        assertEq(token.totalSupply(), 600e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientBalance.selector, address(this), 600e18, 601e18
            )
        );
        token.burn(601e18);
    }

    function test_Permit_SetsAllowance() public {
        (address owner, uint256 key) = makeAddrAndKey("owner");
        address spender = makeAddr("spender");
        uint256 deadline = block.timestamp + 1;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                owner,
                spender,
                7e18,
                0,
                deadline
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
        token.permit(owner, spender, 7e18, deadline, v, r, s);
        assertEq(token.allowance(owner, spender), 7e18);
    }

    function testFuzz_Mint_UpToCap(uint256 amount) public {
        amount = bound(amount, 0, token.cap() - token.totalSupply());
        vm.prank(minter);
        token.mint(address(2), amount);
        assertLe(token.totalSupply(), token.cap());
    }
}
