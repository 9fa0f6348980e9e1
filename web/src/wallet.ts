// The connection to an EIP-1193 wallet (window.ethereum): accounts, chain id, switching
// networks, and the viem clients that read and write through it.
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  getAddress,
  numberToHex,
  type Address,
  type Chain,
  type PublicClient,
  type WalletClient,
} from 'viem';
import { ActionError } from './errors';
import type { Deployment } from './deployment';

export function deepnodeChain(dep: Deployment): Chain {
  return defineChain({
    id: dep.chainId,
    name: dep.chainId === 31337 ? 'DeepNode devnet (anvil)' : `DeepNode (chain ${dep.chainId})`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: dep.rpcUrl ? [dep.rpcUrl] : [] } },
  });
}

function errCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export class Wallet {
  account?: Address;
  chainId?: number;
  readonly chain: Chain;
  readonly publicClient: PublicClient;
  readonly walletClient: WalletClient;

  constructor(
    readonly provider: Eip1193Provider,
    private readonly deployment: Deployment,
    private readonly onChange: () => void,
  ) {
    this.chain = deepnodeChain(deployment);
    const transport = custom(provider, { retryCount: 0 });
    this.publicClient = createPublicClient({ chain: this.chain, transport, pollingInterval: 500 });
    this.walletClient = createWalletClient({ chain: this.chain, transport });
    provider.on?.('accountsChanged', (accounts) => {
      const list = accounts as string[];
      this.account = list.length > 0 ? getAddress(list[0]) : undefined;
      this.onChange();
    });
    provider.on?.('chainChanged', (chainId) => {
      this.chainId = Number(chainId as string);
      this.onChange();
    });
  }

  get connected(): boolean {
    return this.account !== undefined;
  }

  get onRightChain(): boolean {
    return this.chainId === this.deployment.chainId;
  }

  /** Asks the wallet for an account (the wallet shows its own prompt). */
  async connect(): Promise<void> {
    const accounts = (await this.provider.request({ method: 'eth_requestAccounts' })) as string[];
    if (!accounts || accounts.length === 0) throw new ActionError('no-wallet', 'The wallet returned no account.');
    this.account = getAddress(accounts[0]);
    await this.readChainId();
  }

  /** Reconnects silently when the site was already authorised (no prompt). */
  async restore(): Promise<void> {
    const accounts = (await this.provider.request({ method: 'eth_accounts' })) as string[];
    if (accounts && accounts.length > 0) {
      this.account = getAddress(accounts[0]);
      await this.readChainId();
    }
  }

  async readChainId(): Promise<number> {
    this.chainId = Number((await this.provider.request({ method: 'eth_chainId' })) as string);
    return this.chainId;
  }

  /** wallet_switchEthereumChain, adding the chain first when the wallet does not know it (4902). */
  async switchChain(): Promise<void> {
    const chainId = numberToHex(this.deployment.chainId);
    try {
      await this.provider.request({ method: 'wallet_switchEthereumChain', params: [{ chainId }] });
    } catch (err) {
      if (errCode(err) !== 4902) throw err;
      if (!this.deployment.rpcUrl) {
        throw new ActionError(
          'wrong-chain',
          `Your wallet does not know chain ${this.deployment.chainId}. Add it in the wallet (RPC URL of the DeepNode node, chain id ${this.deployment.chainId}) and switch to it.`,
        );
      }
      await this.provider.request({
        method: 'wallet_addEthereumChain',
        params: [{ chainId, chainName: this.chain.name, nativeCurrency: this.chain.nativeCurrency, rpcUrls: [this.deployment.rpcUrl] }],
      });
    }
    await this.readChainId();
  }

  /** Throws the page's own failure when an action cannot start: no wallet, or the wrong chain. */
  async requireReady(): Promise<Address> {
    if (!this.account) throw new ActionError('no-wallet', 'Connect a wallet first.');
    const chainId = await this.readChainId();
    if (chainId !== this.deployment.chainId) {
      throw new ActionError(
        'wrong-chain',
        `Wrong chain: your wallet is on chain ${chainId}, DeepNode is deployed on chain ${this.deployment.chainId}. Use "Switch network".`,
      );
    }
    return this.account;
  }
}
