// Turns wallet, RPC and contract errors into one failure reason a person can act on:
// rejected in the wallet, wrong chain, insufficient balance, below minimum stake, or a
// contract revert decoded to its custom error name from the forge ABIs.
import {
  BaseError,
  ChainMismatchError,
  ContractFunctionRevertedError,
  UserRejectedRequestError,
  decodeErrorResult,
  type Abi,
  type Hex,
} from 'viem';
import { formatDN, roleName, shortAddress } from './format';

type AbiError = Extract<Abi[number], { type: 'error' }>;

export type FailureKind =
  | 'rejected'
  | 'wrong-chain'
  | 'insufficient-balance'
  | 'below-minimum'
  | 'revert'
  | 'invalid-input'
  | 'no-wallet'
  | 'other';

export interface Failure {
  kind: FailureKind;
  message: string;
  /** Custom error name when the failure is a decoded contract revert. */
  errorName?: string;
}

/** A failure the page detects itself before asking the wallet (bad input, wrong chain, ...). */
export class ActionError extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly errorName?: string,
  ) {
    super(message);
  }

  static from(failure: Failure): ActionError {
    return new ActionError(failure.kind, failure.message, failure.errorName);
  }
}

/** Every error in a cause chain: viem wraps provider errors several levels deep. */
function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = err;
  for (let i = 0; cur != null && i < 12; i++) {
    out.push(cur);
    cur = typeof cur === 'object' ? (cur as { cause?: unknown }).cause : undefined;
  }
  return out;
}

function errorCode(e: unknown): number | undefined {
  if (e && typeof e === 'object' && 'code' in e) {
    const code = (e as { code: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** Finds ABI-encoded revert data ("0x" + selector + args) anywhere in the chain. */
function findRevertData(chain: unknown[]): Hex | undefined {
  const isHex = (v: unknown): v is Hex => typeof v === 'string' && /^0x[0-9a-fA-F]{8,}$/.test(v);
  for (const e of chain) {
    if (!e || typeof e !== 'object') continue;
    const data = (e as { data?: unknown }).data;
    if (isHex(data)) return data;
    if (data && typeof data === 'object') {
      const nested = (data as { data?: unknown; originalError?: { data?: unknown } }).data ?? (data as { originalError?: { data?: unknown } }).originalError?.data;
      if (isHex(nested)) return nested;
    }
  }
  return undefined;
}

const AMOUNT_ARG = /stake|amount|minimum|balance|needed|requested|fee|price|allowance|value/i;

function formatArgs(abiItem: AbiError | undefined, args: readonly unknown[] | undefined): string {
  if (!args || args.length === 0) return '';
  const inputs = abiItem?.inputs ?? [];
  return args
    .map((value, i) => {
      const name = inputs[i]?.name || `arg${i}`;
      let shown: string;
      if (name === 'role' && (typeof value === 'number' || typeof value === 'bigint')) shown = roleName(value);
      else if (typeof value === 'bigint' && AMOUNT_ARG.test(name)) shown = formatDN(value);
      else shown = String(value);
      return `${name}=${shown}`;
    })
    .join(', ');
}

function fromDecoded(errorName: string, abiItem: AbiError | undefined, args: readonly unknown[] | undefined): Failure {
  const a = args ?? [];
  const signature = `${errorName}(${formatArgs(abiItem, a)})`;
  switch (errorName) {
    case 'BelowMinimumStake':
      return {
        kind: 'below-minimum',
        errorName,
        message: `Below minimum stake (${errorName}): your ${roleName(a[0] as number)} stake would be ${formatDN(a[1] as bigint)}, the minimum is ${formatDN(a[2] as bigint)}.`,
      };
    case 'ERC20InsufficientBalance':
      return {
        kind: 'insufficient-balance',
        errorName,
        message: `Insufficient balance (${errorName}): you have ${formatDN(a[1] as bigint)}, this needs ${formatDN(a[2] as bigint)}.`,
      };
    case 'AlreadyClaimed':
      return {
        kind: 'revert',
        errorName,
        message: `Already claimed (${errorName}): the reward of epoch ${String(a[0])} for ${shortAddress(String(a[1]))} has already been paid (a claim may be relayed by anyone). Nothing was sent.`,
      };
    case 'InvalidRewardProof':
      return {
        kind: 'revert',
        errorName,
        message: `The reward proof does not match the on-chain report (${errorName}): epoch ${String(a[0])}, ${formatDN(a[2] as bigint)} for ${shortAddress(String(a[1]))}. The indexer may be out of date; refresh and try again.`,
      };
    case 'EpochNotReported':
      return {
        kind: 'revert',
        errorName,
        message: `Epoch ${String(a[0])} has no report on-chain yet (${errorName}): its reward can be claimed once the validators post it.`,
      };
    case 'Error':
      return { kind: 'revert', errorName, message: `Reverted: ${String(a[0])}` };
    default:
      return { kind: 'revert', errorName, message: `Reverted by the contract: ${signature}` };
  }
}

/** Classifies any error thrown while talking to the wallet or the chain. `abi` holds every error the page can meet. */
export function describeError(err: unknown, abi: Abi): Failure {
  if (err instanceof ActionError) return { kind: err.kind, message: err.message, errorName: err.errorName };
  const chain = causeChain(err);

  if (chain.some((e) => e instanceof UserRejectedRequestError || errorCode(e) === 4001)) {
    return { kind: 'rejected', message: 'Rejected in your wallet: the request was declined (user rejected, code 4001). Nothing was sent.' };
  }
  if (chain.some((e) => e instanceof ChainMismatchError)) {
    return { kind: 'wrong-chain', message: 'Wrong chain: your wallet switched networks. Switch back to the DeepNode network and try again.' };
  }

  const reverted = chain.find((e): e is ContractFunctionRevertedError => e instanceof ContractFunctionRevertedError);
  if (reverted?.data?.errorName) {
    return fromDecoded(reverted.data.errorName, reverted.data.abiItem as AbiError, reverted.data.args);
  }
  const data = findRevertData(chain);
  if (data) {
    try {
      const decoded = decodeErrorResult({ abi, data });
      return fromDecoded(decoded.errorName, decoded.abiItem as AbiError, decoded.args as readonly unknown[]);
    } catch {
      return { kind: 'revert', message: `Reverted with unknown error data ${data.slice(0, 10)} (not in the DeepNode ABIs).` };
    }
  }
  if (reverted) return { kind: 'revert', message: `Reverted: ${reverted.reason ?? reverted.shortMessage}` };

  if (err instanceof BaseError) return { kind: 'other', message: err.shortMessage || err.message };
  if (err instanceof Error) return { kind: 'other', message: err.message };
  return { kind: 'other', message: String(err) };
}
