// Rewards of the connected account: which epochs pay it (leaves and Merkle proofs from the
// indexer: /epochs, /epochs/{n}/rewards/{address}), whether each is claimed (read on-chain from
// Settlement.isClaimed, so a claim relayed by someone else shows even when the indexer lags),
// and the claim itself: Settlement.claim(epoch, account, amount, proof) through the wallet.
import { getAddress, isHex, type Address, type Hex } from 'viem';
import { settlementAbi } from './abis';
import type { Deployment } from './deployment';
import { asList, getJSON, type Row } from './explorer';
import { formatDN } from './format';
import type { TxEntry } from './status';
import { sendTx } from './tx';
import type { Wallet } from './wallet';

/** Epochs whose rewards are looked up on each refresh (newest first). */
export const MAX_REWARD_EPOCHS = 50;

export interface RewardRow {
  epoch: number;
  amount: bigint;
  proof: Hex[];
  /** Split of the amount by role (worker, validator, developer), in wei. */
  parts: { worker: bigint; validator: bigint; developer: bigint };
  /** The epoch's report is on-chain (only then can it be claimed). */
  posted: boolean;
  claimed: boolean;
  claimTx?: string;
}

/** The indexer's answer, or undefined on 404 (no leaf for this account in that epoch, unknown node). */
export async function getOptional(path: string): Promise<unknown | undefined> {
  const url = new URL(path, document.baseURI);
  const res = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status}`);
  return res.json();
}

const toWei = (v: unknown): bigint => (typeof v === 'string' && /^\d+$/.test(v) ? BigInt(v) : typeof v === 'number' ? BigInt(Math.trunc(v)) : 0n);

/** Epoch numbers the indexer has computed, with whether each report is on-chain; newest first. */
export async function listEpochs(): Promise<Row[]> {
  return asList(await getJSON('epochs'), 'epochs');
}

/** A short fingerprint of the posted epochs: the page reloads the rewards when it changes. */
export function postedSignature(epochs: Row[]): string {
  return epochs
    .filter((e) => e.posted === true)
    .map((e) => String(e.epoch))
    .join(',');
}

export class Rewards {
  constructor(
    private readonly dep: Deployment & { settlement: Address },
    private readonly wallet: Wallet,
  ) {}

  /** The account's reward of every computed epoch (newest first); claimed state from the chain. */
  async load(account: Address, epochs?: Row[]): Promise<RewardRow[]> {
    const list = (epochs ?? (await listEpochs())).slice(0, MAX_REWARD_EPOCHS);
    const rows = await Promise.all(
      list.map(async (e): Promise<RewardRow | undefined> => {
        const epoch = Number(e.epoch);
        if (!Number.isSafeInteger(epoch) || epoch < 0) return undefined;
        const leaf = (await getOptional(`epochs/${epoch}/rewards/${account}`)) as Row | undefined;
        if (!leaf) return undefined;
        const amount = toWei(leaf.amount);
        if (amount === 0n) return undefined;
        const proof = Array.isArray(leaf.proof) ? (leaf.proof as unknown[]) : [];
        if (!proof.every((p): p is Hex => typeof p === 'string' && isHex(p) && p.length === 66)) {
          throw new Error(`the indexer's proof for epoch ${epoch} is not a list of 32-byte hashes`);
        }
        const parts = (leaf.parts ?? {}) as Row;
        const posted = e.posted === true;
        let claimed = leaf.claimed === true;
        if (posted && !claimed) {
          claimed = (await this.wallet.publicClient.readContract({
            address: this.dep.settlement,
            abi: settlementAbi,
            functionName: 'isClaimed',
            args: [BigInt(epoch), account],
          })) as boolean;
        }
        return {
          epoch,
          amount,
          proof,
          parts: { worker: toWei(parts.worker), validator: toWei(parts.validator), developer: toWei(parts.developer) },
          posted,
          claimed,
          claimTx: typeof leaf.claim_tx === 'string' ? leaf.claim_tx : undefined,
        };
      }),
    );
    return rows.filter((r): r is RewardRow => r !== undefined).sort((a, b) => b.epoch - a.epoch);
  }

  /** Settlement.claim for the connected account (simulated first: AlreadyClaimed etc. are explained before signing). */
  async claim(entry: TxEntry, row: RewardRow): Promise<void> {
    const account = getAddress(await this.wallet.requireReady());
    await sendTx(this.wallet, entry, 'Claim', account, this.dep.settlement, settlementAbi, 'claim', [BigInt(row.epoch), account, row.amount, row.proof]);
    entry.set('confirmed', `Claimed ${formatDN(row.amount)} of epoch ${row.epoch} to your wallet.`);
  }
}
