#!/usr/bin/env node
// End-to-end test of the staking web app in a real browser: starts anvil, deploys with
// script/Deploy.s.sol, starts the real indexer serving web/dist, opens the page in headless
// Chromium (playwright-core) with a scripted EIP-1193 wallet (test/wallet.mjs), clicks through
// connect -> switch network -> stake with permit -> approve + stake -> unstake -> advance time ->
// withdraw, and checks the failures a person can meet (wrong chain, insufficient balance,
// rejected signature, below minimum stake). Balances are asserted on-chain with `cast call`.
// Screenshots go to web/test-output/; the desktop one is copied to docs/web-staking.png.
//
// Needs: /usr/bin/chromium (tools/setup-chromium.sh), `npm ci && npm run build` in web/,
// `forge build`, `cargo build -p indexer`. Run from anywhere: `node web/test/staking.e2e.mjs`.
// Env: CHROMIUM_PATH, DN_INDEXER_BIN (default target/debug/indexer), DN_WEB_KEEP=1 keeps the
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
import { formatUnits, parseUnits } from 'viem';
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
const UNBONDING_PERIOD = 3600;
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
  const [deployerKey, , workerKey, developerKey, userKey, , , stakerKey] = keys;

  // deploy (serialised with other deploys in this checkout: forge writes deployments/<id>.json) --
  const deploymentFile = join(RUN, 'deployment.json');
  mkdirSync(join(ROOT, 'deployments'), { recursive: true });
  const deployLog = createWriteStream(join(RUN, 'deploy.log'));
  const deployCode = await new Promise((res) => {
    const child = spawn(
      'flock',
      [join(ROOT, 'deployments', '.deploy.lock'), 'bash', '-c', '"$0" script script/Deploy.s.sol --rpc-url "$1" --broadcast --private-key "$2" && cp "deployments/$3.json" "$4"', join(BIN, 'forge'), rpcUrl, deployerKey, String(CHAIN_ID), deploymentFile],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DN_UNBONDING_PERIOD: String(UNBONDING_PERIOD) } },
    );
    child.stdout.pipe(deployLog);
    child.stderr.pipe(deployLog);
    child.on('exit', (code) => res(code));
  });
  if (deployCode !== 0) throw new Error(`forge script script/Deploy.s.sol failed (exit ${deployCode}):\n${logTail('deploy', 40)}`);
  const dep = JSON.parse(readFileSync(deploymentFile, 'utf8'));
  for (const k of ['chainId', 'token', 'staking', 'modelRegistry', 'taskManager']) assert(dep[k] !== undefined, `deployment file has ${k}`);
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
    await runBrowserFlow(context, { dep, baseUrl, indexerUrl, staker, stakerKey, minWorker, minValidator, funding, workerAddress: worker });
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

async function runBrowserFlow(context, { dep, baseUrl, indexerUrl, staker, stakerKey, minWorker, minValidator, funding, workerAddress }) {
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
    if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`);
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
    const rewards = await text('#rewards-card');
    assert(rewards.includes('Not available until settlement'), `rewards panel says not available until settlement: "${rewards}"`);
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
    const file = await screenshot('staked');
    // The README's screenshot is refreshed on demand (or when missing), so a test run leaves the
    // tracked file alone.
    const docsShot = join(ROOT, 'docs', 'web-staking.png');
    if (process.env.DN_WEB_UPDATE_DOCS === '1' || !existsSync(docsShot)) {
      mkdirSync(join(ROOT, 'docs'), { recursive: true });
      copyFileSync(file, docsShot);
      console.log(`web e2e: wrote ${docsShot}`);
    }
  });

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
