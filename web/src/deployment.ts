// Loads the contract addresses at run time from the deployment file the indexer serves
// (deployments/<chainId>.json written by script/Deploy.s.sol), so one build fits every network.
import { getAddress, isAddress, type Address } from 'viem';

export interface Deployment {
  chainId: number;
  startBlock: number;
  token: Address;
  staking: Address;
  modelRegistry: Address;
  taskManager: Address;
  treasury: Address;
  validatorPool: Address;
  /** Present once the settlement contract is deployed (enables rewards and trust history). */
  settlement?: Address;
  /** Optional RPC URL the page offers to wallets that do not know the chain yet. */
  rpcUrl?: string;
}

const REQUIRED_ADDRESSES = ['token', 'staking', 'modelRegistry', 'taskManager', 'treasury', 'validatorPool'] as const;

/** Validates the JSON of a deployment file; throws an Error naming the bad field. */
export function parseDeployment(json: unknown): Deployment {
  if (!json || typeof json !== 'object') throw new Error('deployment.json is not a JSON object');
  const raw = json as Record<string, unknown>;
  const chainId = Number(raw.chainId);
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new Error(`deployment.json: chainId ${String(raw.chainId)} is not a chain id`);
  const out: Record<string, unknown> = { chainId, startBlock: Number(raw.startBlock ?? 0) };
  for (const key of REQUIRED_ADDRESSES) {
    const value = raw[key];
    if (typeof value !== 'string' || !isAddress(value, { strict: false })) {
      throw new Error(`deployment.json: ${key} is ${value === undefined ? 'missing' : `"${String(value)}", not an address`}`);
    }
    out[key] = getAddress(value);
  }
  if (typeof raw.settlement === 'string' && isAddress(raw.settlement, { strict: false })) out.settlement = getAddress(raw.settlement);
  if (typeof raw.rpcUrl === 'string') out.rpcUrl = raw.rpcUrl;
  return out as unknown as Deployment;
}

export async function loadDeployment(): Promise<Deployment> {
  const url = new URL('deployment.json', document.baseURI);
  const res = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!res.ok) throw new Error(`could not load ${url.pathname} from the indexer (HTTP ${res.status}); start the indexer with --deployment`);
  return parseDeployment(await res.json());
}
