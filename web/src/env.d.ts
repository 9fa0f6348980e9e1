// Build-time modules and browser globals the page relies on.
declare module 'deepnode:abis' {
  import type { Abi } from 'viem';
  /** IStaking from out/IStaking.sol/IStaking.json (forge artifact, read by build.mjs). */
  export const stakingAbi: Abi;
  /** DNToken (ERC20 + ERC20Permit) from out/DNToken.sol/DNToken.json. */
  export const tokenAbi: Abi;
  export const modelRegistryAbi: Abi;
  export const taskManagerAbi: Abi;
  /** ISettlement (epoch reports, reward claims) from out/ISettlement.sol/ISettlement.json. */
  export const settlementAbi: Abi;
}

/** An EIP-1193 provider as injected by browser wallets. */
interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | object }): Promise<unknown>;
  on?(event: string, listener: (...args: unknown[]) => void): void;
  removeListener?(event: string, listener: (...args: unknown[]) => void): void;
}

interface Window {
  ethereum?: Eip1193Provider;
}
