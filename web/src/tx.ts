// Sending one contract call through the wallet: simulate first (eth_call, so a revert is
// explained before anything is signed), send, wait for the receipt, and turn a failed receipt
// into the custom error it hit. Shared by the staking and the rewards actions.
import type { Abi, Address, Hash } from 'viem';
import { allErrorsAbi } from './abis';
import { ActionError, describeError } from './errors';
import type { TxEntry } from './status';
import type { Wallet } from './wallet';

/** eth_call of the transaction: throws the contract's revert (decoded by describeError). */
export async function simulateTx(wallet: Wallet, account: Address, address: Address, abi: Abi, functionName: string, args: unknown[]): Promise<void> {
  await wallet.publicClient.simulateContract({ account, address, abi, functionName, args });
}

/** Sends a simulated call and waits for its receipt; a receipt with status 0 becomes a failure. */
export async function sendTx(
  wallet: Wallet,
  entry: TxEntry,
  label: string,
  account: Address,
  address: Address,
  abi: Abi,
  functionName: string,
  args: unknown[],
): Promise<Hash> {
  await simulateTx(wallet, account, address, abi, functionName, args);
  entry.set('pending', `${label}: confirm the transaction in your wallet…`);
  const hash = await wallet.walletClient.writeContract({ account, chain: wallet.chain, address, abi, functionName, args });
  entry.addHash(label, hash);
  entry.set('pending', `${label}: sent, waiting for confirmation…`);
  const receipt = await wallet.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 500 });
  if (receipt.status !== 'success') {
    // Replay on the parent block to learn which custom error it hit.
    try {
      await wallet.publicClient.simulateContract({ account, address, abi, functionName, args, blockNumber: receipt.blockNumber - 1n });
    } catch (err) {
      const failure = describeError(err, allErrorsAbi);
      throw new ActionError(failure.kind, `${label} reverted on-chain in block ${receipt.blockNumber}: ${failure.message}`, failure.errorName);
    }
    throw new ActionError('revert', `${label} reverted on-chain in block ${receipt.blockNumber} (tx ${hash}).`);
  }
  return hash;
}
