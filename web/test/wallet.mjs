// A scripted EIP-1193 wallet for the browser test: the page sees `window.ethereum`, every request
// goes to Node through page.exposeFunction, reads are forwarded to anvil over HTTP, and
// signatures (eth_signTypedData_v4, eth_sendTransaction) are made here with the test key, as a
// real wallet would. The test can make the next request of a method fail with code 4001
// ("user rejected") and starts the wallet on another chain to exercise network switching.
import { createWalletClient, http, numberToHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

/** Runs in the page before its scripts: the provider object the page talks to. */
function pageShim() {
  const listeners = new Map();
  const provider = {
    isDeepNodeTestWallet: true,
    async request(args) {
      if (!args || typeof args.method !== 'string') throw Object.assign(new Error('invalid request'), { code: -32600 });
      const res = await window.__dnWalletRequest(args.method, args.params ?? []);
      if (res && res.error) {
        const err = new Error(res.error.message);
        err.code = res.error.code;
        if (res.error.data !== undefined) err.data = res.error.data;
        throw err;
      }
      return res.result;
    },
    on(event, fn) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(fn);
      return provider;
    },
    removeListener(event, fn) {
      listeners.get(event)?.delete(fn);
      return provider;
    },
  };
  window.__dnWalletEmit = (event, arg) => {
    for (const fn of listeners.get(event) ?? []) fn(arg);
  };
  window.ethereum = provider;
}

const userRejected = { code: 4001, message: 'User rejected the request.' };

/** Typed-data JSON carries integers as strings; viem's signer wants bigint for uint/int fields. */
function reviveTypedData(typedData) {
  const { EIP712Domain: _domainType, ...types } = typedData.types;
  const revive = (type, value) => {
    if (value === null || value === undefined) return value;
    if (type.endsWith(']')) return value.map((v) => revive(type.slice(0, type.lastIndexOf('[')), v));
    if (/^u?int\d*$/.test(type)) return BigInt(value);
    if (types[type]) return Object.fromEntries(types[type].map((f) => [f.name, revive(f.type, value[f.name])]));
    return value;
  };
  return {
    domain: { ...typedData.domain, chainId: typedData.domain.chainId === undefined ? undefined : Number(typedData.domain.chainId) },
    types,
    primaryType: typedData.primaryType,
    message: revive(typedData.primaryType, typedData.message),
  };
}

/** Revert data anywhere in a viem error's cause chain. */
function revertData(err) {
  let cur = err;
  for (let i = 0; cur && i < 12; i++) {
    if (typeof cur.data === 'string' && cur.data.startsWith('0x')) return cur.data;
    if (cur.data && typeof cur.data.data === 'string') return cur.data.data;
    cur = cur.cause;
  }
  return undefined;
}

export class TestWallet {
  /**
   * @param {{ rpcUrl: string, privateKey: `0x${string}`, chainId: number, startChainId?: number, log?: (line: string) => void }} opts
   */
  constructor({ rpcUrl, privateKey, chainId, startChainId, log }) {
    this.rpcUrl = rpcUrl;
    this.account = privateKeyToAccount(privateKey);
    this.address = this.account.address;
    this.targetChainId = chainId;
    this.chainId = startChainId ?? chainId;
    this.authorized = false;
    this.rejectOnce = new Set();
    /** Methods this wallet pretends not to support (EIP-1193 code 4200), e.g. typed-data signing. */
    this.unsupported = new Set();
    /** Methods asked of the wallet that needed the user (signatures, transactions, switches). */
    this.prompts = [];
    this.log = log ?? (() => {});
    this.client = createWalletClient({ account: this.account, transport: http(rpcUrl) });
    this.page = undefined;
  }

  /** Makes the next request of `method` fail as if the user pressed "Reject". */
  rejectNext(method) {
    this.rejectOnce.add(method);
  }

  /** Installs the provider in every page of the browser context. */
  async install(context) {
    await context.exposeFunction('__dnWalletRequest', (method, params) => this.handle(method, params));
    await context.addInitScript(pageShim);
  }

  async emit(page, event, arg) {
    await page.evaluate(([e, a]) => window.__dnWalletEmit?.(e, a), [event, arg]);
  }

  async handle(method, params) {
    try {
      return await this.dispatch(method, params ?? []);
    } catch (err) {
      this.log(`wallet: ${method} failed: ${err.shortMessage ?? err.message}`);
      const data = revertData(err);
      return { error: { code: data ? 3 : -32603, message: err.shortMessage ?? err.message, ...(data ? { data } : {}) } };
    }
  }

  async dispatch(method, params) {
    if (this.rejectOnce.has(method)) {
      this.rejectOnce.delete(method);
      this.prompts.push(`${method} (rejected)`);
      this.log(`wallet: rejecting ${method} with 4001`);
      return { error: userRejected };
    }
    if (this.unsupported.has(method)) {
      this.prompts.push(`${method} (unsupported)`);
      return { error: { code: 4200, message: `The wallet does not support ${method}.` } };
    }
    switch (method) {
      case 'eth_requestAccounts':
        this.authorized = true;
        this.prompts.push(method);
        return { result: [this.address] };
      case 'eth_accounts':
        return { result: this.authorized ? [this.address] : [] };
      case 'eth_chainId':
        return { result: numberToHex(this.chainId) };
      case 'net_version':
        return { result: String(this.chainId) };
      case 'wallet_switchEthereumChain': {
        this.prompts.push(method);
        const wanted = Number(params[0]?.chainId);
        if (wanted !== this.targetChainId) return { error: { code: 4902, message: `Unrecognized chain ID ${params[0]?.chainId}.` } };
        this.chainId = wanted;
        if (this.page) await this.emit(this.page, 'chainChanged', numberToHex(wanted));
        return { result: null };
      }
      case 'eth_signTypedData_v4': {
        this.prompts.push(method);
        const [address, json] = params;
        if (String(address).toLowerCase() !== this.address.toLowerCase()) {
          return { error: { code: 4100, message: `eth_signTypedData_v4: ${address} is not an account of this wallet` } };
        }
        const typed = reviveTypedData(typeof json === 'string' ? JSON.parse(json) : json);
        if (typed.domain.chainId !== undefined && typed.domain.chainId !== this.chainId) {
          return { error: { code: -32603, message: `typed data is for chain ${typed.domain.chainId}, wallet is on ${this.chainId}` } };
        }
        return { result: await this.account.signTypedData(typed) };
      }
      case 'eth_sendTransaction': {
        this.prompts.push(method);
        const tx = params[0] ?? {};
        if (tx.from && tx.from.toLowerCase() !== this.address.toLowerCase()) {
          return { error: { code: 4100, message: `eth_sendTransaction: from ${tx.from} is not an account of this wallet` } };
        }
        if (this.chainId !== this.targetChainId) {
          return { error: { code: -32603, message: `the test wallet can only send on chain ${this.targetChainId} (it is on ${this.chainId})` } };
        }
        const hash = await this.client.sendTransaction({
          chain: null,
          to: tx.to,
          data: tx.data ?? tx.input,
          value: tx.value ? BigInt(tx.value) : undefined,
          gas: tx.gas ? BigInt(tx.gas) : undefined,
        });
        this.log(`wallet: sent ${hash}`);
        return { result: hash };
      }
      case 'eth_sign':
      case 'personal_sign':
      case 'eth_signTransaction':
        return { error: { code: 4200, message: `${method} is not supported by the test wallet` } };
      default:
        return this.forward(method, params);
    }
  }

  /** Plain JSON-RPC to anvil; its errors (with revert data) go back to the page unchanged. */
  async forward(method, params) {
    const res = await fetch(this.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    });
    const body = await res.json();
    if (body.error) return { error: body.error };
    return { result: body.result };
  }
}
