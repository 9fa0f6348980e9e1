// Staking actions against the Staking contract through the wallet: stake per role with an
// ERC-2612 permit (one signature + one transaction, falling back to approve + stake), request
// unstake, withdraw released stake; and the reads behind the "Your position" panel.
import {
  parseSignature,
  type Abi,
  type Address,
  type Hash,
  type Hex,
} from 'viem';
import { allErrorsAbi, stakingAbi, tokenAbi } from './abis';
import { ActionError, describeError } from './errors';
import { formatDN, roleName } from './format';
import type { Deployment } from './deployment';
import type { TxEntry } from './status';
import { sendTx, simulateTx } from './tx';
import type { Wallet } from './wallet';

export interface Unbonding {
  role: number;
  amount: bigint;
  releaseAt: bigint;
}

export interface Position {
  balance: bigint;
  stake: [bigint, bigint];
  unbondings: Unbonding[];
  minStake: [bigint, bigint];
  unbondingPeriod: bigint;
  /** Latest block timestamp: release times compare against chain time, not the browser clock. */
  now: bigint;
}

interface Permit {
  deadline: bigint;
  v: number;
  r: Hex;
  s: Hex;
}

/** A permit stays valid this long after the latest block. */
const PERMIT_TTL_SECONDS = 3600n;

/** Wallet error codes meaning "I cannot sign typed data" (not a refusal): fall back to approve. */
const UNSUPPORTED_CODES = new Set([4200, -32601, -32602]);

export class Staking {
  constructor(
    private readonly dep: Deployment,
    private readonly wallet: Wallet,
  ) {}

  private read<T>(address: Address, abi: Abi, functionName: string, args: unknown[] = []): Promise<T> {
    return this.wallet.publicClient.readContract({ address, abi, functionName, args }) as Promise<T>;
  }

  async position(account: Address): Promise<Position> {
    const { staking, token } = this.dep;
    const [balance, w, v, unbondings, minW, minV, period, block] = await Promise.all([
      this.read<bigint>(token, tokenAbi, 'balanceOf', [account]),
      this.read<bigint>(staking, stakingAbi, 'stakeOf', [account, 0]),
      this.read<bigint>(staking, stakingAbi, 'stakeOf', [account, 1]),
      this.read<readonly { role: number; amount: bigint; releaseAt: bigint }[]>(staking, stakingAbi, 'unbondingsOf', [account]),
      this.read<bigint>(staking, stakingAbi, 'minStake', [0]),
      this.read<bigint>(staking, stakingAbi, 'minStake', [1]),
      this.read<bigint>(staking, stakingAbi, 'unbondingPeriod'),
      this.wallet.publicClient.getBlock({ blockTag: 'latest' }),
    ]);
    return {
      balance,
      stake: [w, v],
      unbondings: unbondings.map((u) => ({ role: Number(u.role), amount: BigInt(u.amount), releaseAt: BigInt(u.releaseAt) })),
      minStake: [minW, minV],
      unbondingPeriod: BigInt(period),
      now: block.timestamp,
    };
  }

  async totals(): Promise<{ total: bigint; worker: bigint; validator: bigint }> {
    const { staking } = this.dep;
    const [total, worker, validator] = await Promise.all([
      this.read<bigint>(staking, stakingAbi, 'totalStaked'),
      this.read<bigint>(staking, stakingAbi, 'totalStakedByRole', [0]),
      this.read<bigint>(staking, stakingAbi, 'totalStakedByRole', [1]),
    ]);
    return { total, worker, validator };
  }

  private simulate(account: Address, address: Address, abi: Abi, functionName: string, args: unknown[]): Promise<void> {
    return simulateTx(this.wallet, account, address, abi, functionName, args);
  }

  private send(entry: TxEntry, label: string, account: Address, address: Address, abi: Abi, functionName: string, args: unknown[]): Promise<Hash> {
    return sendTx(this.wallet, entry, label, account, address, abi, functionName, args);
  }

  /**
   * Stakes `amount` for `role`. With `usePermit` the wallet signs an ERC-2612 permit
   * (eth_signTypedData_v4) and one stakeWithPermit transaction follows; wallets that cannot
   * sign typed data, or `usePermit = false`, go through approve (when needed) + stake.
   */
  async stake(entry: TxEntry, role: number, amount: bigint, usePermit: boolean): Promise<void> {
    const account = await this.wallet.requireReady();
    const { token, staking } = this.dep;
    const balance = await this.read<bigint>(token, tokenAbi, 'balanceOf', [account]);
    if (balance < amount) {
      throw new ActionError('insufficient-balance', `Insufficient balance: staking ${formatDN(amount)} needs ${formatDN(amount)}, you have ${formatDN(balance)}.`);
    }
    // Preflight: the plain stake call surfaces the contract's own checks (minimum, role) before any
    // signature; lacking allowance is expected here and is what the permit or approval provides.
    try {
      await this.simulate(account, staking, stakingAbi, 'stake', [role, amount]);
    } catch (err) {
      const failure = describeError(err, allErrorsAbi);
      if (failure.errorName !== 'ERC20InsufficientAllowance') throw ActionError.from(failure);
    }

    if (usePermit) {
      entry.set('pending', 'Sign the permit in your wallet (no gas)…');
      let permit: Permit | undefined;
      try {
        permit = await this.signPermit(account, amount);
      } catch (err) {
        const code = findCode(err);
        if (code === undefined || !UNSUPPORTED_CODES.has(code)) throw err;
        entry.set('pending', 'This wallet cannot sign permits; using approve + stake instead…');
      }
      if (permit) {
        const { deadline, v, r, s } = permit;
        await this.send(entry, 'Stake with permit', account, staking, stakingAbi, 'stakeWithPermit', [role, amount, deadline, v, r, s]);
        entry.set('confirmed', `Staked ${formatDN(amount)} as ${roleName(role)} with one signature and one transaction.`);
        return;
      }
    }

    const allowance = await this.read<bigint>(token, tokenAbi, 'allowance', [account, staking]);
    if (allowance < amount) {
      await this.send(entry, 'Approve', account, token, tokenAbi, 'approve', [staking, amount]);
    }
    await this.send(entry, 'Stake', account, staking, stakingAbi, 'stake', [role, amount]);
    entry.set('confirmed', `Staked ${formatDN(amount)} as ${roleName(role)} (approve + stake).`);
  }

  /** Signs Permit(owner, spender = Staking, value, nonce, deadline) over the token's EIP-712 domain. */
  private async signPermit(owner: Address, value: bigint): Promise<Permit> {
    const { token, staking } = this.dep;
    const [domainFields, nonce, block] = await Promise.all([
      this.read<readonly [Hex, string, string, bigint, Address, Hex, readonly bigint[]]>(token, tokenAbi, 'eip712Domain'),
      this.read<bigint>(token, tokenAbi, 'nonces', [owner]),
      this.wallet.publicClient.getBlock({ blockTag: 'latest' }),
    ]);
    const [, name, version, chainId, verifyingContract] = domainFields;
    const deadline = block.timestamp + PERMIT_TTL_SECONDS;
    const signature = await this.wallet.walletClient.signTypedData({
      account: owner,
      domain: { name, version, chainId: Number(chainId), verifyingContract },
      types: {
        Permit: [
          { name: 'owner', type: 'address' },
          { name: 'spender', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'nonce', type: 'uint256' },
          { name: 'deadline', type: 'uint256' },
        ],
      },
      primaryType: 'Permit',
      message: { owner, spender: staking, value, nonce, deadline },
    });
    const { r, s, v, yParity } = parseSignature(signature);
    return { deadline, v: Number(v ?? BigInt(yParity + 27)), r, s };
  }

  async requestUnstake(entry: TxEntry, role: number, amount: bigint): Promise<void> {
    const account = await this.wallet.requireReady();
    await this.send(entry, 'Request unstake', account, this.dep.staking, stakingAbi, 'requestUnstake', [role, amount]);
    entry.set('confirmed', `Unstake of ${formatDN(amount)} (${roleName(role)}) requested; it unbonds until its release time.`);
  }

  async withdraw(entry: TxEntry, expected: bigint): Promise<void> {
    const account = await this.wallet.requireReady();
    await this.send(entry, 'Withdraw', account, this.dep.staking, stakingAbi, 'withdraw', []);
    entry.set('confirmed', `Withdrew ${formatDN(expected)} of released stake to your wallet.`);
  }
}

function findCode(err: unknown): number | undefined {
  let cur: unknown = err;
  for (let i = 0; cur && i < 12; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
