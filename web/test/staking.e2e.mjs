#!/usr/bin/env node
// End-to-end test of the staking web app in a real browser: starts anvil, deploys with
// script/Deploy.s.sol, starts the real indexer serving web/dist, opens the page in headless
// Chromium (playwright-core) with a scripted EIP-1193 wallet (test/wallet.mjs), clicks through
// connect -> switch network -> stake with permit -> approve + stake -> unstake -> advance time ->
// withdraw, and checks the failures a person can meet (wrong chain, insufficient balance,
// rejected signature, below minimum stake). Then settlement: the page's account works two
// epochs as the only worker of a model (tasks submitted, committed and finalized with cast),
// the real verifier binary posts both epoch reports, and the page shows the rewards (claimed
// with the indexer's proofs: one Claim, then a relayed claim answered with the decoded
// AlreadyClaimed) and the trust chart. Balances are asserted on-chain with `cast call`.
// Screenshots go to web/test-output/; the desktop one is copied to docs/web-staking.png.
//
// Needs: /usr/bin/chromium (tools/setup-chromium.sh), `npm ci && npm run build` in web/,
// `forge build`, `cargo build -p indexer -p verifier`. Run from anywhere: `node web/test/staking.e2e.mjs`.
// Env: CHROMIUM_PATH, DN_INDEXER_BIN (default target/debug/indexer), DN_VERIFIER_BIN (default
// target/debug/verifier), DN_WEB_KEEP=1 keeps the
// browser profile, DN_WEB_UPDATE_DOCS=1 refreshes docs/web-staking.png (written anyway when
// missing), DN_WEB_STRICT_DEPLOYMENT=1 fails instead of falling back when the indexer does not
// serve /deployment.json, DN_WEB_VERBOSE=1 logs every wallet request.
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { formatUnits, keccak256, parseUnits, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { TestWallet } from './wallet.mjs';

const execFileP = promisify(execFile);
const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = resolve(WEB, '..');
const OUT = join(WEB, 'test-output');
const RUN = join(OUT, 'run');
const BIN = join(ROOT, 'node_modules', '.bin');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const INDEXER = process.env.DN_INDEXER_BIN ?? join(ROOT, 'target', 'debug', 'indexer');
const VERIFIER = process.env.DN_VERIFIER_BIN ?? join(ROOT, 'target', 'debug', 'verifier');
const UNBONDING_PERIOD = 3600;
/**
 * Epochs are longer than the unbonding period so that the staking steps (which jump 3601 s)
 * stay inside epoch 0; the settlement phase then jumps to each epoch's end with evm_increaseTime.
 */
const EPOCH_LENGTH = 2 * UNBONDING_PERIOD;
/** Short windows: the test's tasks are committed at once and finalized right after. */
const RESPONSE_WINDOW = 30;
const CHALLENGE_WINDOW = 2;
/** Emission per epoch (DN_INITIAL_EMISSION), kept small so the amounts read well. */
const INITIAL_EMISSION = 1000n * 10n ** 18n;
/** Tasks the page's account works in each of the two settled epochs. */
const TASKS_PER_EPOCH = 3;
const CHAIN_ID = 31337;
/** The chain the wallet starts on, to exercise wrong-chain detection and switching. */
const WRONG_CHAIN_ID = 1;
const DN = 10n ** 18n;
/** Launch flags of the test browser (also listed in tools/setup-chromium.sh). */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

// ---------------------------------------------------------------------------------------------
// Processes: every child gets its own process group so the whole tree dies with it.
const children = [];

function startProcess(name, cmd, args, opts = {}) {
  const log = createWriteStream(join(RUN, `${name}.log`));
  const child = spawn(cmd, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.name = name;
  child.exited = false;
  child.on('exit', (code, signal) => {
    child.exited = true;
    child.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
  });
  children.push(child);
  return child;
}

function killGroup(child, signal) {
  if (child.exited || !child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

async function stopAll() {
  for (const c of children) killGroup(c, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (children.some((c) => !c.exited) && Date.now() < deadline) await sleep(100);
  for (const c of children) killGroup(c, 'SIGKILL');
}

process.on('exit', () => {
  for (const c of children) killGroup(c, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`web e2e: ${sig}, stopping`);
    stopAll().finally(() => process.exit(130));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function logTail(name, lines = 30) {
  try {
    return readFileSync(join(RUN, `${name}.log`), 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function freePort() {
  return new Promise((res, rej) => {
    const srv = createNetServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

async function waitFor(what, fn, timeoutMs = 30000, intervalMs = 200) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Chain helpers (cast, raw JSON-RPC).
let rpcUrl;

async function rpc(method, params = []) {
  const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

async function cast(...args) {
  try {
    const { stdout } = await execFileP(join(BIN, 'cast'), args, { cwd: ROOT, maxBuffer: 16 << 20 });
    return stdout.trim();
  } catch (err) {
    throw new Error(`cast ${args.filter((a) => !String(a).startsWith('0x') || String(a).length < 60).join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** `cast call` of a function returning one uint: "1000000000000000000000 [1e21]" -> bigint. */
async function callUint(to, sig, ...args) {
  const out = await cast('call', '--rpc-url', rpcUrl, to, sig, ...args.map(String));
  return BigInt(out.split(/\s+/)[0]);
}

async function send(key, to, sig, ...args) {
  return cast('send', '--rpc-url', rpcUrl, '--private-key', key, to, sig, ...args.map(String));
}

const fmt = (wei) => `${formatUnits(wei, 18)} DN`;

// ---------------------------------------------------------------------------------------------
// Assertions and steps.
let passed = 0;
let failed = 0;
let page;
let shot = 0;

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

function assertEq(actual, expected, what) {
  if (actual !== expected) throw new Error(`assertion failed: ${what}: expected ${String(expected)}, got ${String(actual)}`);
}

async function screenshot(name) {
  if (!page) return undefined;
  const file = join(OUT, `${String(++shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

async function step(name, fn) {
  const start = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok - ${name} (${Date.now() - start} ms)`);
  } catch (err) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(err.stack ?? err).split('\n').join('\n  ')}`);
    try {
      await screenshot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}`);
    } catch {
      /* page gone */
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Page helpers.

/** The newest transaction-log entry once it has left "pending". */
async function act(click) {
  const before = await page.locator('#tx-log > li').count();
  await click();
  const entry = page.locator('#tx-log > li').first();
  await waitFor('a new transaction entry', async () => (await page.locator('#tx-log > li').count()) > before, 15000, 50);
  await waitFor('the transaction entry to settle', async () => ['confirmed', 'failed'].includes(await entry.getAttribute('data-state')), 30000, 100);
  return {
    state: await entry.getAttribute('data-state'),
    kind: await entry.getAttribute('data-kind'),
    error: await entry.getAttribute('data-error'),
    text: (await entry.innerText()).replace(/\s+/g, ' '),
  };
}

async function stake(amountDn, role, permit) {
  const form = page.locator('#stake-form');
  await form.getByRole('radio', { name: role === 0 ? /^Worker/ : /^Validator/ }).check();
  const box = form.getByLabel('Use one-signature permit (ERC-2612)');
  if (permit) await box.check();
  else await box.uncheck();
  await form.getByLabel('Amount (DN)').fill(amountDn);
  return act(() => form.getByRole('button', { name: 'Stake', exact: true }).click());
}

async function text(selector) {
  return (await page.locator(selector).innerText()).trim();
}

// ---------------------------------------------------------------------------------------------
async function main() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(RUN, { recursive: true });
  for (const [what, path, hint] of [
    ['chromium', CHROMIUM, 'run tools/setup-chromium.sh'],
    ['the web build', join(WEB, 'dist', 'index.html'), 'run `npm ci && npm run build` in web/'],
    ['the indexer binary', INDEXER, 'run `cargo build -p indexer`'],
    ['the verifier binary', VERIFIER, 'run `cargo build -p verifier`'],
    ['anvil', join(BIN, 'anvil'), 'run `npm ci` in the repository root'],
    ['the deploy script', join(ROOT, 'script', 'Deploy.s.sol'), 'script/Deploy.s.sol is part of the contracts work'],
  ]) {
    if (!existsSync(path)) throw new Error(`web e2e: ${what} is missing at ${path}: ${hint}`);
  }

  // anvil --------------------------------------------------------------------------------------
  const anvilPort = await freePort();
  rpcUrl = `http://127.0.0.1:${anvilPort}`;
  const anvilConfig = join(RUN, 'anvil.json');
  const anvil = startProcess('anvil', join(BIN, 'anvil'), ['--port', String(anvilPort), '--chain-id', String(CHAIN_ID), '--accounts', '10', '--config-out', anvilConfig]);
  await waitFor('anvil to answer', async () => {
    if (anvil.exited) throw new Error(`anvil exited (${anvil.exitInfo}):\n${logTail('anvil')}`);
    return (await rpc('eth_chainId')) && existsSync(anvilConfig);
  });
  const keys = JSON.parse(readFileSync(anvilConfig, 'utf8')).private_keys;
  assert(Array.isArray(keys) && keys.length >= 8, `anvil --config-out lists ${keys?.length} keys`);
  const [deployerKey, , workerKey, developerKey, userKey, validatorKey, , stakerKey] = keys;

  // deploy (serialised with other deploys in this checkout: forge writes deployments/<id>.json) --
  const deploymentFile = join(RUN, 'deployment.json');
  mkdirSync(join(ROOT, 'deployments'), { recursive: true });
  const deployLog = createWriteStream(join(RUN, 'deploy.log'));
  const deployCode = await new Promise((res) => {
    const child = spawn(
      'flock',
      [join(ROOT, 'deployments', '.deploy.lock'), 'bash', '-c', '"$0" script script/Deploy.s.sol --rpc-url "$1" --broadcast --private-key "$2" && cp "deployments/$3.json" "$4"', join(BIN, 'forge'), rpcUrl, deployerKey, String(CHAIN_ID), deploymentFile],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          DN_UNBONDING_PERIOD: String(UNBONDING_PERIOD),
          DN_EPOCH_LENGTH: String(EPOCH_LENGTH),
          DN_RESPONSE_WINDOW: String(RESPONSE_WINDOW),
          DN_CHALLENGE_WINDOW: String(CHALLENGE_WINDOW),
          DN_INITIAL_EMISSION: String(INITIAL_EMISSION),
          // as the Rust devnet: the validator stakes after genesis, during epoch 0, so its report
          // counts the stake at the epoch's end, and claims open at once (no veto window)
          DN_ACTIVATION_DELAY: '0',
          DN_VETO_WINDOW: '0',
          // the page account's worker reward comes from the user's tasks it served: the pre-probe
          // rules (the deploy script's default, probe emission, pays on the prober's tasks only)
          DN_PROBE_EMISSION: 'false',
        },
      },
    );
    child.stdout.pipe(deployLog);
    child.stderr.pipe(deployLog);
    child.on('exit', (code) => res(code));
  });
  if (deployCode !== 0) throw new Error(`forge script script/Deploy.s.sol failed (exit ${deployCode}):\n${logTail('deploy', 40)}`);
  const dep = JSON.parse(readFileSync(deploymentFile, 'utf8'));
  for (const k of ['chainId', 'token', 'staking', 'modelRegistry', 'taskManager', 'settlement']) assert(dep[k] !== undefined, `deployment file has ${k}`);
  assertEq(Number(dep.chainId), CHAIN_ID, 'deployment chainId');

  const staker = privateKeyToAccount(stakerKey);
  const minWorker = await callUint(dep.staking, 'minStake(uint8)(uint256)', 0);
  const minValidator = await callUint(dep.staking, 'minStake(uint8)(uint256)', 1);
  assertEq(await callUint(dep.staking, 'unbondingPeriod()(uint64)'), BigInt(UNBONDING_PERIOD), 'unbonding period from DN_UNBONDING_PERIOD');
  assert(minWorker > 0n && minValidator > 0n, `minimum stakes are positive (worker ${fmt(minWorker)}, validator ${fmt(minValidator)})`);
  const funding = minWorker + minValidator + 10_000n * DN;
  console.log(`web e2e: anvil ${rpcUrl}, staking ${dep.staking}, min worker ${fmt(minWorker)}, min validator ${fmt(minValidator)}, staker ${staker.address}`);

  // chain fixture: fund the staker; a model, a staked worker and one task for the explorer -----
  await send(deployerKey, dep.token, 'transfer(address,uint256)', staker.address, funding);
  assertEq(await callUint(dep.token, 'balanceOf(address)(uint256)', staker.address), funding, 'staker funded with DN');
  const worker = privateKeyToAccount(workerKey).address;
  const developer = privateKeyToAccount(developerKey).address;
  const user = privateKeyToAccount(userKey).address;
  await send(deployerKey, dep.token, 'transfer(address,uint256)', worker, minWorker);
  await send(deployerKey, dep.token, 'transfer(address,uint256)', developer, 10_000n * DN);
  await send(deployerKey, dep.token, 'transfer(address,uint256)', user, 10_000n * DN);
  await send(workerKey, dep.token, 'approve(address,uint256)', dep.staking, minWorker);
  await send(workerKey, dep.staking, 'stake(uint8,uint256)', 0, minWorker);
  await send(developerKey, dep.token, 'approve(address,uint256)', dep.modelRegistry, 10_000n * DN);
  const price = parseUnits('0.5', 18);
  await send(developerKey, dep.modelRegistry, 'registerModel(bytes32,string,uint96,uint32,uint8,uint32,uint32)', `0x${'ab'.repeat(32)}`, 'file://models/digits/digits.onnx', price, 10, 2, 0, 0);
  await send(workerKey, dep.modelRegistry, 'optIn(uint32)', 1);
  await send(userKey, dep.token, 'approve(address,uint256)', dep.taskManager, 10_000n * DN);
  await send(userKey, dep.taskManager, 'submitTask(uint32,bytes,uint256)', 1, '0x0102030405', price);
  assertEq(await callUint(dep.taskManager, 'taskCount()(uint256)'), 1n, 'one task submitted');
  await assign(userKey, dep.taskManager, [1n]);
  // The validator whose verifier posts the epoch reports: far more than 2/3 of the validator
  // stake, also once the page's account stakes as a validator.
  const validator = privateKeyToAccount(validatorKey).address;
  const validatorStake = 10n * minValidator;
  await send(deployerKey, dep.token, 'transfer(address,uint256)', validator, validatorStake);
  await send(validatorKey, dep.token, 'approve(address,uint256)', dep.staking, validatorStake);
  await send(validatorKey, dep.staking, 'stake(uint8,uint256)', 1, validatorStake);

  // indexer serving web/dist -----------------------------------------------------------------
  const indexerPort = await freePort();
  const indexerUrl = `http://127.0.0.1:${indexerPort}`;
  const indexer = startProcess('indexer', INDEXER, [
    '--rpc-url', rpcUrl, '--deployment', deploymentFile, '--db', join(RUN, 'indexer.sqlite'), '--listen', `127.0.0.1:${indexerPort}`,
    '--confirmations', '0', '--poll-interval-ms', '250', '--web-dir', join(WEB, 'dist'),
  ]);
  await waitFor('the indexer /health', async () => {
    if (indexer.exited) throw new Error(`indexer exited (${indexer.exitInfo}):\n${logTail('indexer')}`);
    return (await fetch(`${indexerUrl}/health`)).ok;
  });
  await waitFor('the indexer to index task 1', async () => (await fetch(`${indexerUrl}/tasks/1`)).ok, 30000);

  let baseUrl = indexerUrl;
  const served = await fetch(`${indexerUrl}/deployment.json`);
  const servedJson = served.ok ? await served.json().catch(() => undefined) : undefined;
  if (servedJson?.staking?.toLowerCase?.() === dep.staking.toLowerCase()) {
    console.log('web e2e: the indexer serves /deployment.json');
  } else {
    const msg = `the indexer does not serve /deployment.json (HTTP ${served.status})`;
    if (process.env.DN_WEB_STRICT_DEPLOYMENT === '1') throw new Error(`web e2e: ${msg}`);
    console.log(`web e2e: WARNING ${msg}; serving it from a local proxy in front of the indexer`);
    baseUrl = await startDeploymentProxy(indexerUrl, deploymentFile);
  }

  // browser ----------------------------------------------------------------------------------
  const profile = join(RUN, 'chromium-profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
    timeout: 60000,
  });
  try {
    await runBrowserFlow(context, {
      dep, baseUrl, indexerUrl, staker, stakerKey, minWorker, minValidator, funding, workerAddress: worker,
      developerKey, userKey, validatorKey, deploymentFile, price,
    });
  } finally {
    await context.close().catch(() => {});
  }
}

/** Fallback until the indexer serves the deployment file: /deployment.json here, the rest proxied. */
async function startDeploymentProxy(indexerUrl, deploymentFile) {
  const port = await freePort();
  const server = createServer(async (req, res) => {
    try {
      if (req.url === '/deployment.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(readFileSync(deploymentFile));
        return;
      }
      const upstream = await fetch(`${indexerUrl}${req.url}`, { method: req.method, headers: { accept: req.headers.accept ?? '*/*' } });
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream' });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    } catch (err) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  process.on('exit', () => server.close());
  server.unref();
  return `http://127.0.0.1:${port}`;
}

async function runBrowserFlow(context, opts) {
  const { dep, baseUrl, indexerUrl, staker, stakerKey, minWorker, minValidator, funding, workerAddress } = opts;
  const wallet = new TestWallet({ rpcUrl, privateKey: stakerKey, chainId: CHAIN_ID, startChainId: WRONG_CHAIN_ID, log: (l) => process.env.DN_WEB_VERBOSE && console.log(l) });
  await wallet.install(context);
  const origin = new URL(baseUrl).origin;
  const offsite = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:')) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  page = context.pages()[0] ?? (await context.newPage());
  wallet.page = page;
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // The rewards panel asks the indexer for the account's leaf of each epoch and for its trust
    // history; a 404 there means "none" (Chromium logs each 404 as a console error).
    if (/status of 404/.test(msg.text()) && OPTIONAL_LOOKUP.test(msg.location()?.url ?? '')) return;
    pageErrors.push(`console: ${msg.text()}`);
  });

  const stakeOf = (role) => callUint(dep.staking, 'stakeOf(address,uint8)(uint256)', staker.address, role);
  const slashableOf = (role) => callUint(dep.staking, 'slashableOf(address,uint8)(uint256)', staker.address, role);
  const balanceOf = () => callUint(dep.token, 'balanceOf(address)(uint256)', staker.address);
  const prompts = () => wallet.prompts.splice(0);

  await step('page loads from the indexer with the deployment and explorer views', async () => {
    await page.goto(baseUrl, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    assert((await text('#network-name')).includes(`chain ${CHAIN_ID}`), `network pill names chain ${CHAIN_ID}: "${await text('#network-name')}"`);
    assert((await text('#contracts')).includes(dep.staking), 'footer lists the Staking address');
    assert(await page.locator('#load-error').isHidden(), 'no load error banner');
    // Settlement is deployed: the rewards and trust panels and the epochs view are on.
    const rewards = await text('#rewards-card');
    assert(!rewards.includes('Not available until settlement'), `rewards panel is on with settlement deployed: "${rewards}"`);
    assert(rewards.includes('Connect a wallet'), `rewards panel asks for a wallet: "${rewards}"`);
    assert((await text('#trust-card')).includes('Connect a wallet'), 'trust panel asks for a wallet');
    assert((await text('#contracts')).includes(`Settlement ${dep.settlement}`), 'footer lists the Settlement address');
    await waitFor('the empty epochs view', async () => (await text('#epochs')).includes('No epoch has ended yet'), 15000);
    await waitFor('the models table', async () => (await page.locator('table[data-view="models"] tbody tr').count()) === 1, 15000);
    const modelRow = (await page.locator('table[data-view="models"] tbody tr').first().innerText()).replace(/\s+/g, ' ');
    assert(modelRow.includes('0.5 DN') && modelRow.includes('digits.onnx') && modelRow.includes('argmax'), `model row shows price, uri and rule: "${modelRow}"`);
    assertEq((await page.locator('table[data-view="models"] tbody td[data-col="tasks.total"]').innerText()).trim(), '1', 'model usage (tasks) from /models/1');
    await waitFor('the tasks table', async () => (await page.locator('table[data-view="tasks"] tbody tr').count()) === 1, 15000);
    await page.getByRole('button', { name: 'Task 1' }).click();
    await waitFor('the audit trail', async () => (await page.locator('#task-detail ol.trail li').count()) >= 2, 10000);
    const trail = await page.locator('#task-detail ol.trail').innerText();
    assert(/submitted/.test(trail) && /assigned/.test(trail), `audit trail lists submitted and assigned: "${trail}"`);
    const nodesTable = await text('#nodes');
    assert(nodesTable.includes(workerAddress.slice(0, 6)), `node leaderboard lists the staked worker ${workerAddress}: "${nodesTable}"`);
    await screenshot('explorer');
  });

  await step('connect: the wallet account shows and the wrong chain is detected', async () => {
    await page.getByRole('button', { name: 'Connect wallet' }).click();
    await waitFor('the account pill', async () => (await page.locator('#account').getAttribute('data-address')) === staker.address, 10000);
    await page.locator('#chain-banner').waitFor({ state: 'visible', timeout: 5000 });
    const banner = await text('#chain-banner');
    assert(banner.includes(`chain ${WRONG_CHAIN_ID}`) && banner.includes(`chain ${CHAIN_ID}`), `banner names both chains: "${banner}"`);
    assertEq(await text('#balance'), '–', 'no balance read on the wrong chain');
    await screenshot('wrong-chain');
  });

  await step('staking on the wrong chain fails with "wrong chain" and asks the wallet nothing', async () => {
    prompts();
    const r = await stake('100', 0, true);
    assertEq(r.state, 'failed', 'entry state');
    assertEq(r.kind, 'wrong-chain', `failure kind (${r.text})`);
    assert(/wrong chain/i.test(r.text), `says wrong chain: "${r.text}"`);
    assertEq(prompts().length, 0, 'wallet prompts');
  });

  await step('switch network: wallet_switchEthereumChain, then the DN balance shows', async () => {
    const r = await act(() => page.getByRole('button', { name: 'Switch network' }).click());
    assertEq(r.state, 'confirmed', `switch entry (${r.text})`);
    assertEq(wallet.chainId, CHAIN_ID, 'wallet chain after switching');
    await page.locator('#chain-banner').waitFor({ state: 'hidden', timeout: 5000 });
    await waitFor('the balance', async () => (await text('#balance')) === `${Number(funding / DN).toLocaleString('en-US')} DN`, 10000);
    assert((await text('#stake-worker')) === '0 DN', 'worker stake 0 DN');
    await waitFor('the empty rewards panel', async () => (await text('#rewards-status')).includes('No rewards for this account yet'), 10000);
    await waitFor('the empty trust panel', async () => (await text('#trust-status')).includes('No trust history yet'), 10000);
    assert(await page.locator('#trust-chart svg').count() === 0, 'no trust chart without history');
    assert(await page.getByRole('button', { name: 'Claim all' }).isDisabled(), 'Claim all disabled with nothing to claim');
    prompts();
  });

  await step('insufficient balance is reported before any signature', async () => {
    const r = await stake(formatUnits(funding + DN, 18), 0, true);
    assertEq(r.kind, 'insufficient-balance', `failure kind (${r.text})`);
    assert(/insufficient balance/i.test(r.text), `says insufficient balance: "${r.text}"`);
    assertEq(prompts().length, 0, 'wallet prompts');
  });

  const workerAmount = minWorker + 500n * DN;
  await step('a rejected permit signature (code 4001) shows "rejected" and stakes nothing', async () => {
    wallet.rejectNext('eth_signTypedData_v4');
    const r = await stake(formatUnits(workerAmount, 18), 0, true);
    assertEq(r.state, 'failed', 'entry state');
    assertEq(r.kind, 'rejected', `failure kind (${r.text})`);
    assert(/rejected/i.test(r.text), `says rejected: "${r.text}"`);
    assertEq(prompts().join(','), 'eth_signTypedData_v4 (rejected)', 'wallet prompts');
    assertEq(await stakeOf(0), 0n, 'on-chain worker stake');
    assertEq(await balanceOf(), funding, 'on-chain DN balance');
    await screenshot('rejected');
  });

  await step('a stake below the minimum shows the decoded BelowMinimumStake error', async () => {
    const r = await stake(formatUnits(minWorker / 2n, 18), 0, true);
    assertEq(r.state, 'failed', 'entry state');
    assertEq(r.error, 'BelowMinimumStake', `decoded custom error (${r.text})`);
    assert(r.text.includes('BelowMinimumStake') && r.text.includes(`minimum is ${Number(minWorker / DN).toLocaleString('en-US')} DN`), `explains the minimum: "${r.text}"`);
    assertEq(await stakeOf(0), 0n, 'on-chain worker stake');
    prompts();
    await screenshot('below-minimum');
  });

  await step('stake as worker with permit: one signature, one transaction, stake on-chain', async () => {
    const r = await stake(formatUnits(workerAmount, 18), 0, true);
    assertEq(r.state, 'confirmed', `entry state (${r.text})`);
    assertEq(prompts().join(','), 'eth_signTypedData_v4,eth_sendTransaction', 'wallet prompts');
    assertEq(await stakeOf(0), workerAmount, 'on-chain worker stake');
    assertEq(await balanceOf(), funding - workerAmount, 'on-chain DN balance');
    await waitFor('the worker stake on the page', async () => (await text('#stake-worker')) === `${Number(workerAmount / DN).toLocaleString('en-US')} DN`, 10000);
  });

  const extraValidator = 100n * DN;
  const validatorTotal = minValidator + extraValidator;
  await step('a wallet without typed-data signing falls back to approve + stake', async () => {
    wallet.unsupported.add('eth_signTypedData_v4');
    try {
      const r = await stake(formatUnits(minValidator, 18), 1, true);
      assertEq(r.state, 'confirmed', `entry state (${r.text})`);
      assert(r.text.includes('approve + stake'), `says approve + stake: "${r.text}"`);
    } finally {
      wallet.unsupported.delete('eth_signTypedData_v4');
    }
    assertEq(prompts().join(','), 'eth_signTypedData_v4 (unsupported),eth_sendTransaction,eth_sendTransaction', 'wallet prompts (permit refused, approve, stake)');
    assertEq(await stakeOf(1), minValidator, 'on-chain validator stake');
    assertEq(await balanceOf(), funding - workerAmount - minValidator, 'on-chain DN balance');
  });

  await step('stake with the permit box unticked: approve + stake', async () => {
    const r = await stake(formatUnits(extraValidator, 18), 1, false);
    assertEq(r.state, 'confirmed', `entry state (${r.text})`);
    assertEq(prompts().join(','), 'eth_sendTransaction,eth_sendTransaction', 'wallet prompts (approve, stake)');
    assertEq(await stakeOf(1), validatorTotal, 'on-chain validator stake');
    assertEq(await balanceOf(), funding - workerAmount - validatorTotal, 'on-chain DN balance');
  });

  const unstakeAmount = 500n * DN;
  await step('other reverts are decoded to their custom error (unstake more than staked)', async () => {
    const form = page.locator('#unstake-form');
    await form.getByRole('radio', { name: 'Worker' }).check();
    await form.getByLabel('Amount (DN)').fill('1000000');
    const r = await act(() => form.getByRole('button', { name: 'Request unstake' }).click());
    assertEq(r.state, 'failed', 'entry state');
    assertEq(r.error, 'InsufficientStake', `decoded custom error (${r.text})`);
    assert(r.text.includes('InsufficientStake(role=worker') && r.text.includes('requested=1,000,000 DN'), `names the error and its arguments: "${r.text}"`);
    assertEq(prompts().length, 0, 'wallet prompts (the call is simulated first)');
    assertEq(await stakeOf(0), workerAmount, 'on-chain worker stake');
  });

  await step('request unstake: the entry unbonds with its release time', async () => {
    const form = page.locator('#unstake-form');
    await form.getByRole('radio', { name: 'Worker' }).check();
    await form.getByLabel('Amount (DN)').fill('500');
    const r = await act(() => form.getByRole('button', { name: 'Request unstake' }).click());
    assertEq(r.state, 'confirmed', `entry state (${r.text})`);
    assertEq(await stakeOf(0), workerAmount - unstakeAmount, 'on-chain active worker stake');
    assertEq(await slashableOf(0), workerAmount, 'unbonding stake stays slashable');
    await waitFor('the unbonding row', async () => (await page.locator('#unbondings tbody tr[data-state="unbonding"]').count()) === 1, 10000);
    const row = (await page.locator('#unbondings tbody tr').first().innerText()).replace(/\s+/g, ' ');
    assert(row.includes('worker') && row.includes('500 DN') && /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(row) && row.includes('left'), `unbonding row: "${row}"`);
    assert(await page.getByRole('button', { name: 'Withdraw released stake' }).isDisabled(), 'withdraw disabled before release');
    prompts();
    await screenshot('unbonding');
  });

  await step('advance time past the unbonding period and withdraw', async () => {
    await rpc('evm_increaseTime', [UNBONDING_PERIOD + 1]);
    await rpc('evm_mine', []);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await waitFor('the released row', async () => (await page.locator('#unbondings tbody tr[data-state="released"]').count()) === 1, 10000);
    const before = await balanceOf();
    const button = page.getByRole('button', { name: 'Withdraw released stake' });
    await waitFor('withdraw to enable', async () => button.isEnabled(), 5000);
    const r = await act(() => button.click());
    assertEq(r.state, 'confirmed', `entry state (${r.text})`);
    assert(r.text.includes('500 DN'), `names the amount: "${r.text}"`);
    assertEq(prompts().join(','), 'eth_sendTransaction', 'wallet prompts');
    assertEq(await balanceOf(), before + unstakeAmount, 'on-chain DN balance after withdraw');
    assertEq(await slashableOf(0), workerAmount - unstakeAmount, 'nothing left unbonding');
    await waitFor('the empty unbonding table', async () => (await text('#unbondings tbody')).includes('Nothing unbonding'), 10000);
  });

  await step('the explorer lists the new stake from the indexer', async () => {
    await waitFor('the staker in /nodes', async () => {
      const body = await (await fetch(`${indexerUrl}/nodes`)).json();
      const node = (body.nodes ?? []).find((n) => n.address?.toLowerCase() === staker.address.toLowerCase());
      return node && BigInt(node.worker_stake) === workerAmount - unstakeAmount && BigInt(node.validator_stake) === validatorTotal;
    }, 20000);
    await waitFor('the staker in the leaderboard', async () => (await text('#nodes')).includes(staker.address.slice(0, 6)), 20000);
    await page.locator('#tx-h').scrollIntoViewIfNeeded();
    await screenshot('staked');
  });

  await settlementFlow({ ...opts, prompts, balanceOf });

  await step('responsive: the page fits a phone-sized viewport', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 1, `no horizontal page scroll at 390 px (overflow ${overflow} px)`);
    await waitFor('the restored account', async () => (await page.locator('#account').getAttribute('data-address')) === staker.address, 10000);
    await screenshot('mobile');
  });

  await step('accessibility basics and no off-site requests or page errors', async () => {
    const unlabeled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea')].filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.id || el.name),
    );
    assertEq(unlabeled.join(','), '', 'inputs without a label');
    assertEq(await page.locator('#tx-log').getAttribute('aria-live'), 'polite', 'transaction log is aria-live');
    assertEq(offsite.join(', '), '', 'requests to other origins (the page must work offline)');
    assertEq(pageErrors.join(' | '), '', 'page errors');
  });
}

/** Indexer lookups whose 404 means "nothing for this account" (the page treats it so). */
const OPTIONAL_LOOKUP = /\/epochs\/\d+\/rewards\/0x[0-9a-fA-F]{40}$|\/nodes\/0x[0-9a-fA-F]{40}\/trust$/;

/** A digits-model output as the executor writes it: safetensors with one I64 tensor "label". */
function labelOutput(label) {
  let header = JSON.stringify({ label: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } });
  header += ' '.repeat((8 - (header.length % 8)) % 8);
  const buf = Buffer.alloc(8 + header.length + 8);
  buf.writeBigUInt64LE(BigInt(header.length), 0);
  buf.write(header, 8, 'utf8');
  buf.writeBigInt64LE(BigInt(label), 8 + header.length);
  return toHex(buf);
}

async function chainTime() {
  return BigInt((await rpc('eth_getBlockByNumber', ['latest', false])).timestamp);
}

/** Moves chain time to at least `ts` and mines `blocks` blocks. */
async function advanceTo(ts, blocks = 1) {
  const now = await chainTime();
  if (ts > now) await rpc('evm_increaseTime', [Number(ts - now)]);
  for (let i = 0; i < blocks; i++) await rpc('evm_mine', []);
}

/** Draws the workers of `ids` (no executor runs here): two blocks on (the draw uses the hash of
 *  the block after the submission's), then `assignTasks` (anyone may) signed with `key`. */
async function assign(key, taskManager, ids) {
  await rpc('evm_mine', []);
  await rpc('evm_mine', []);
  await send(key, taskManager, 'assignTasks(uint256[])', `[${ids.join(',')}]`);
}

/** getTask(id) -> { worker, status } (cast prints the TaskView tuple). */
async function taskView(taskManager, id) {
  const out = await cast('call', '--rpc-url', rpcUrl, taskManager, 'getTask(uint256)((address,uint32,uint256,address,uint8,uint64,uint16,uint40,uint64))', String(id));
  const fields = out.replace(/^\(|\)$/g, '').split(', ');
  return { worker: fields[3], status: Number(fields[4]) };
}

async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/** Runs the verifier binary to completion; resolves { code, stdout }. */
async function runVerifier(args, key, timeoutMs = 180000) {
  const log = createWriteStream(join(RUN, 'verifier.log'), { flags: 'a' });
  const env = { ...process.env, DN_PRIVATE_KEY: key, RUST_LOG: 'warn,verifier=info' };
  for (const k of ['ETH_KEYSTORE', 'ETH_RPC_URL', 'DN_SIGNATURES_DIR', 'DN_VERIFIER_DB']) delete env[k];
  const child = spawn(VERIFIER, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.name = 'verifier';
  child.exited = false;
  children.push(child);
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    log.write(d);
  });
  child.stderr.pipe(log);
  const code = await new Promise((res) => {
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      res('timeout');
    }, timeoutMs);
    child.on('exit', (c, sig) => {
      child.exited = true;
      clearTimeout(timer);
      res(sig ? `signal ${sig}` : c);
    });
  });
  return { code, stdout };
}

/**
 * Settlement: the page's account works two epochs as the only worker of a new model, the real
 * verifier posts both reports, and the page claims the rewards and charts the trust history.
 */
async function settlementFlow(o) {
  const { dep, indexerUrl, staker, stakerKey, developerKey, userKey, validatorKey, deploymentFile, price, prompts, balanceOf } = o;
  const epochOf = async () => callUint(dep.settlement, 'currentEpoch()(uint64)');
  const epochEnd = (e) => callUint(dep.settlement, 'epochEnd(uint64)(uint256)', e);
  const modelId = 2;
  const rewards = {};

  await step('settlement fixture: the page account is the only worker of model 2 and works epochs 0 and 1', async () => {
    await send(developerKey, dep.modelRegistry, 'registerModel(bytes32,string,uint96,uint32,uint8,uint32,uint32)', `0x${'cd'.repeat(32)}`, 'file://models/digits/digits-v2.onnx', price, 10, 2, 0, 0);
    await send(stakerKey, dep.modelRegistry, 'optIn(uint32)', modelId);
    for (const epoch of [0n, 1n]) {
      if (epoch === 1n) await advanceTo((await epochEnd(0n)) + 1n);
      assertEq(await epochOf(), epoch, 'current epoch before its tasks');
      const first = (await callUint(dep.taskManager, 'taskCount()(uint256)')) + 1n;
      const inputs = Array.from({ length: TASKS_PER_EPOCH }, (_, i) => toHex(Buffer.from(`epoch ${epoch} input ${i}`)));
      await send(userKey, dep.taskManager, 'submitTasks(uint32,bytes[],uint256)', modelId, `[${inputs.join(',')}]`, price);
      const ids = inputs.map((_, i) => first + BigInt(i));
      await assign(userKey, dep.taskManager, ids);
      for (const id of ids) assertEq((await taskView(dep.taskManager, id)).worker.toLowerCase(), staker.address.toLowerCase(), `worker drawn for task ${id}`);
      const outputs = ids.map((id) => labelOutput(Number(id % 10n)));
      await send(stakerKey, dep.taskManager, 'commitBatch(uint256[],bytes32[],uint16[],bytes[])', `[${ids.join(',')}]`, `[${outputs.map((x) => keccak256(x)).join(',')}]`, `[${ids.map(() => 0).join(',')}]`, `[${outputs.join(',')}]`);
      await advanceTo((await chainTime()) + BigInt(CHALLENGE_WINDOW + 1));
      await send(userKey, dep.taskManager, 'finalizeBatch(uint256[])', `[${ids.join(',')}]`);
      for (const id of ids) assertEq((await taskView(dep.taskManager, id)).status, 4, `task ${id} finalized`);
      assertEq(await epochOf(), epoch, `tasks of epoch ${epoch} finalized inside it`);
    }
    // Let epoch 1 end, and its assignments' deadlines pass; blocks after the end for --confirmations.
    await advanceTo((await epochEnd(1n)) + BigInt(RESPONSE_WINDOW + 1), 3);
    prompts();
  });

  await step('the verifier binary posts the reports of epochs 0 and 1 and the indexer serves the rewards', async () => {
    const { code, stdout } = await runVerifier(
      ['--rpc-url', rpcUrl, '--deployment', deploymentFile, '--db', join(RUN, 'verifier.sqlite'), '--confirmations', '1', '--poll-interval-ms', '500', '--stop-after-epoch', '1'],
      validatorKey,
    );
    assertEq(code, 0, `verifier exit status (log: ${join(RUN, 'verifier.log')}):\n${logTail('verifier')}`);
    const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    for (const e of [0, 1]) assert(lines.some((l) => l.epoch === e && l.postedTx), `verifier printed a posted report for epoch ${e}: ${stdout}`);
    const latest = await cast('call', '--rpc-url', rpcUrl, dep.settlement, 'latestEpoch()(bool,uint64)');
    assertEq(latest.replace(/\s+/g, ' '), 'true 1', 'Settlement.latestEpoch()');
    await waitFor('the indexer to show both reports posted', async () => {
      const { epochs } = await getJson(`${indexerUrl}/epochs`);
      return [0, 1].every((e) => epochs.some((x) => x.epoch === e && x.posted === true));
    }, 30000, 250);
    for (const e of [0, 1]) {
      const r = await getJson(`${indexerUrl}/epochs/${e}/rewards/${staker.address}`);
      assert(BigInt(r.amount) > 0n && BigInt(r.parts.worker) > 0n, `epoch ${e} pays the page account a worker reward: ${JSON.stringify(r)}`);
      assertEq(r.claimed, false, `epoch ${e} reward not claimed yet`);
      rewards[e] = r;
    }
    console.log(`web e2e: rewards of ${staker.address}: epoch 0 ${fmt(BigInt(rewards[0].amount))}, epoch 1 ${fmt(BigInt(rewards[1].amount))}`);
  });

  await step('the Rewards panel lists both epochs with the indexer amounts, claimable', async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await waitFor('two claimable reward rows', async () => (await page.locator('#rewards tbody tr[data-state="claimable"]').count()) === 2, 20000);
    for (const e of [0, 1]) {
      const row = page.locator(`#rewards tbody tr[data-epoch="${e}"]`);
      assertEq(await row.getAttribute('data-wei'), rewards[e].amount, `epoch ${e} amount on the page (wei)`);
      const rowText = (await row.innerText()).replace(/\s+/g, ' ');
      assert(rowText.includes('Claimable') && rowText.includes('worker'), `epoch ${e} row: "${rowText}"`);
      assert(await page.getByRole('button', { name: `Claim the reward of epoch ${e}` }).isEnabled(), `Claim of epoch ${e} enabled`);
    }
    const total = BigInt(rewards[0].amount) + BigInt(rewards[1].amount);
    assertEq(await page.locator('#rewards-total').getAttribute('data-wei'), total.toString(), 'unclaimed total');
    await waitFor('the epochs view', async () => (await page.locator('table[data-view="epochs"] tbody tr').count()) === 2, 20000);
    // The explorer polls the indexer: the rows can appear a poll before the reports are seen posted.
    const postedCells = async () => (await page.locator('table[data-view="epochs"] tbody tr').allInnerTexts()).filter((r) => /\byes\b/.test(r)).length;
    await waitFor('both epochs shown as posted on-chain', async () => (await postedCells()) === 2, 20000);
    const epochsText = (await text('#epochs')).replace(/\s+/g, ' ');
    assert((await postedCells()) === 2, `epochs view shows both reports posted: "${epochsText}"`);
    await waitFor('the earners leaderboard', async () => (await text('#earners')).includes(staker.address.slice(0, 6)), 20000);
    // Measured model quality (ratings x canary accuracy) from /models/{id}, once an epoch is computed.
    const model2 = await getJson(`${indexerUrl}/models/2`);
    assert(typeof model2.measured_quality === 'number', `indexer reports the measured quality of model 2: ${JSON.stringify(model2).slice(0, 300)}`);
    await waitFor('the measured quality in the models view', async () => {
      const cells = await page.locator('table[data-view="models"] tbody td[data-col="measured_quality"]').allInnerTexts();
      return cells.some((c) => Number(c.trim()) === model2.measured_quality);
    }, 20000);
  });

  await step('the Trust panel charts one point per epoch of the history, with the four components', async () => {
    const body = await getJson(`${indexerUrl}/nodes/${staker.address}/trust`);
    const history = body.history;
    assert(Array.isArray(history) && history.length >= 2, `trust history has epochs 0 and 1: ${JSON.stringify(body).slice(0, 300)}`);
    await waitFor('the trust chart', async () => (await page.locator('#trust-chart svg circle').count()) === history.length, 20000);
    const svg = page.locator('#trust-chart svg');
    assertEq(await svg.getAttribute('role'), 'img', 'chart role');
    assert((await page.getByRole('img', { name: /Trust of .* per epoch/ }).count()) === 1, 'chart has an accessible name');
    const epochs = await page.locator('#trust-chart svg circle').evaluateAll((cs) => cs.map((c) => [Number(c.dataset.epoch), Number(c.dataset.trust)]));
    assertEq(JSON.stringify(epochs), JSON.stringify(history.map((h) => [h.epoch, h.trust])), 'chart points (epoch, trust)');
    assertEq(await page.locator('#trust-chart svg polyline').count(), 1, 'one line through the points');
    assertEq(await page.locator('#trust-table tbody tr').count(), history.length, 'one table row per epoch');
    for (const h of history) {
      const row = page.locator(`#trust-table tbody tr[data-epoch="${h.epoch}"]`);
      for (const c of ['completion', 'accuracy', 'uptime', 'speed']) {
        assertEq(await row.locator(`td[data-col="${c}"]`).innerText(), Number(h.components[c]).toFixed(2), `epoch ${h.epoch} ${c}`);
      }
      assertEq(await row.locator('td[data-col="trust"]').innerText(), Number(h.trust).toFixed(2), `epoch ${h.epoch} trust`);
    }
    assert(await page.locator('#trust-status').isHidden(), 'no empty-state text with a history');
    await page.locator('#rewards-h').scrollIntoViewIfNeeded();
    await screenshot('rewards-trust');
  });

  await step('Claim (epoch 0): one transaction, the DN balance rises by exactly the reward, the row shows claimed', async () => {
    const amount = BigInt(rewards[0].amount);
    const before = await balanceOf();
    const r = await act(() => page.getByRole('button', { name: 'Claim the reward of epoch 0' }).click());
    assertEq(r.state, 'confirmed', `entry state (${r.text})`);
    assertEq(prompts().join(','), 'eth_sendTransaction', 'wallet prompts');
    assertEq(await balanceOf(), before + amount, 'on-chain DN balance after the claim');
    assertEq(await cast('call', '--rpc-url', rpcUrl, dep.settlement, 'isClaimed(uint64,address)(bool)', '0', staker.address), 'true', 'isClaimed(0, account)');
    await waitFor('the claimed row', async () => (await page.locator('#rewards tbody tr[data-epoch="0"]').getAttribute('data-state')) === 'claimed', 10000);
    assert((await page.locator('#rewards tbody tr[data-epoch="0"]').innerText()).includes('Claimed'), 'row says Claimed');
    assert(await page.getByRole('button', { name: 'Claim the reward of epoch 0' }).isDisabled(), 'Claim of epoch 0 disabled once claimed');
    await waitFor('the indexer to record the claim', async () => (await getJson(`${indexerUrl}/epochs/0/rewards/${staker.address}`)).claimed === true, 20000);
  });

  await step('a claim relayed by someone else: Claim all meets AlreadyClaimed, decoded, nothing sent', async () => {
    // Anyone may relay a claim (paid to the account). The page has not reloaded its rewards, so
    // it still offers epoch 1: the simulated claim must explain the revert before any signature.
    const amount = BigInt(rewards[1].amount);
    const before = await balanceOf();
    await send(userKey, dep.settlement, 'claim(uint64,address,uint256,bytes32[])', 1, staker.address, amount, `[${rewards[1].proof.join(',')}]`);
    assertEq(await balanceOf(), before + amount, 'the relayed claim paid the account');
    assertEq(await page.locator('#rewards tbody tr[data-epoch="1"]').getAttribute('data-state'), 'claimable', 'page still shows epoch 1 claimable (not reloaded)');
    const r = await act(() => page.getByRole('button', { name: 'Claim all' }).click());
    assertEq(r.state, 'failed', `entry state (${r.text})`);
    assertEq(r.error, 'AlreadyClaimed', `decoded custom error (${r.text})`);
    assert(/already (been )?(claimed|paid)/i.test(r.text) && r.text.includes('epoch 1'), `explains it: "${r.text}"`);
    assertEq(prompts().length, 0, 'wallet prompts (simulated first, nothing signed)');
    assertEq(await balanceOf(), before + amount, 'on-chain DN balance unchanged by the failed claim');
    await waitFor('epoch 1 shown claimed after the reload', async () => (await page.locator('#rewards tbody tr[data-epoch="1"]').getAttribute('data-state')) === 'claimed', 10000);
    assert(await page.getByRole('button', { name: 'Claim all' }).isDisabled(), 'Claim all disabled once everything is claimed');
    assertEq(await page.locator('#rewards-total').getAttribute('data-wei'), '0', 'nothing left unclaimed');
    await page.locator('#rewards-h').scrollIntoViewIfNeeded();
    const file = await screenshot('claimed');
    // The README's screenshot is refreshed on demand (or when missing), so a test run leaves the
    // tracked file alone.
    const docsShot = join(ROOT, 'docs', 'web-staking.png');
    if (process.env.DN_WEB_UPDATE_DOCS === '1' || !existsSync(docsShot)) {
      mkdirSync(join(ROOT, 'docs'), { recursive: true });
      copyFileSync(file, docsShot);
      console.log(`web e2e: wrote ${docsShot}`);
    }
  });

  await step('feature check: without settlement in the deployment the panels say so', async () => {
    const other = await page.context().newPage();
    try {
      const json = JSON.parse(readFileSync(deploymentFile, 'utf8'));
      delete json.settlement;
      await other.route('**/deployment.json', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(json) }));
      await other.goto(page.url(), { waitUntil: 'load' });
      await other.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
      for (const card of ['#rewards-card', '#trust-card']) {
        const t = await other.locator(card).innerText();
        assert(t.includes('Not available until settlement'), `${card} says not available: "${t}"`);
      }
      assert(await other.locator('#epochs-card').isHidden(), 'epochs view hidden without settlement');
    } finally {
      await other.close();
    }
  });
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  if (failed === 0) {
    failed++;
    console.log(`not ok - setup\n  ${String(err.stack ?? err).split('\n').join('\n  ')}`);
  }
} finally {
  await stopAll();
  if (process.env.DN_WEB_KEEP !== '1') {
    rmSync(join(RUN, 'chromium-profile'), { recursive: true, force: true });
  }
}
console.log(`web e2e: screenshots and logs in ${OUT}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode || (failed > 0 ? 1 : 0));
