// Entry point of the DeepNode staking page: loads the deployment, wires the wallet, the
// staking forms and the transaction log, and keeps the explorer views fresh.
import { allErrorsAbi } from './abis';
import { loadDeployment, type Deployment } from './deployment';
import { ActionError, describeError, type Failure } from './errors';
import {
  EARNER_COLUMNS,
  EPOCH_COLUMNS,
  MODEL_COLUMNS,
  NODE_COLUMNS,
  TASK_COLUMNS,
  asList,
  get,
  getJSON,
  rankNodes,
  renderTable,
  renderTaskDetail,
  wei,
  type Row,
} from './explorer';
import { formatDN, formatDuration, formatTime, parseDN, roleName, shortAddress } from './format';
import { Rewards, getOptional, listEpochs, postedSignature, type RewardRow } from './rewards';
import { Staking, type Position } from './staking';
import { parseTrustHistory, renderTrustChart, renderTrustTable, type TrustPoint } from './trust';
import { TxLog, type TxEntry } from './status';
import { Wallet, deepnodeChain } from './wallet';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
};

const POSITION_POLL_MS = 4000;
const EXPLORER_POLL_MS = 8000;
/** Models whose usage counts (/models/{id}) are fetched on each refresh. */
const MAX_MODEL_DETAILS = 25;

class App {
  private wallet?: Wallet;
  private staking?: Staking;
  private position?: Position;
  private busy = false;
  private rewards?: Rewards;
  private rewardRows: RewardRow[] = [];
  /** Bumped on each rewards refresh: an older answer arriving late is dropped. */
  private rewardsSeq = 0;
  /** Posted epochs seen by the last explorer refresh ('' before the first). */
  private postedEpochs?: string;
  private readonly log = new TxLog($<HTMLOListElement>('tx-log'), $('tx-empty'));

  constructor(private readonly dep: Deployment | undefined) {}

  start(): void {
    const dep = this.dep;
    if (dep) {
      $('network-name').textContent = `${deepnodeChain(dep).name} · chain ${dep.chainId}`;
      $('contracts').textContent = `Staking ${dep.staking} · DN token ${dep.token} · ModelRegistry ${dep.modelRegistry} · TaskManager ${dep.taskManager}${dep.settlement ? ` · Settlement ${dep.settlement}` : ''}`;
      this.setupRewardsPanel(dep);
      if (window.ethereum) {
        this.wallet = new Wallet(window.ethereum, dep, () => void this.onWalletChange());
        this.staking = new Staking(dep, this.wallet);
        if (dep.settlement) this.rewards = new Rewards({ ...dep, settlement: dep.settlement }, this.wallet);
        this.wallet.restore().then(() => this.onWalletChange(), () => undefined);
      } else {
        $('connect-hint').textContent = 'No browser wallet found (window.ethereum). Install an EIP-1193 wallet to stake; the explorer below works without one.';
      }
    }
    $('connect').addEventListener('click', () => void this.connect());
    $('switch-chain').addEventListener('click', () => void this.switchChain());
    $('refresh').addEventListener('click', () => {
      void this.refreshPosition();
      void this.refreshRewards();
    });
    $('claim-all').addEventListener('click', () => void this.claimAll());
    $('stake-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submitStake();
    });
    $('unstake-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submitUnstake();
    });
    $('withdraw').addEventListener('click', () => void this.submitWithdraw());
    void this.refreshExplorer();
    setInterval(() => void this.refreshExplorer(), EXPLORER_POLL_MS);
    setInterval(() => {
      if (!this.busy) void this.refreshPosition();
    }, POSITION_POLL_MS);
    document.body.dataset.ready = 'true';
  }

  /** Feature check: claiming, the trust chart and the epochs view need the settlement contract. */
  private setupRewardsPanel(dep: Deployment): void {
    const available = dep.settlement !== undefined;
    for (const panel of ['rewards', 'trust']) {
      $(`${panel}-unavailable`).hidden = available;
      $(`${panel}-available`).hidden = !available;
    }
    $('epochs-card').hidden = !available;
    $('earners-card').hidden = !available;
  }

  private async connect(): Promise<void> {
    if (!this.wallet) {
      const entry = this.log.start('Connect wallet');
      entry.fail({ kind: 'no-wallet', message: this.dep ? 'No EIP-1193 wallet found in this browser (window.ethereum is missing).' : 'The deployment file could not be loaded, so there is nothing to connect to.' });
      return;
    }
    try {
      await this.wallet.connect();
    } catch (err) {
      const entry = this.log.start('Connect wallet');
      entry.fail(describeError(err, allErrorsAbi));
    }
    await this.onWalletChange();
  }

  private async switchChain(): Promise<void> {
    if (!this.wallet || !this.dep) return;
    const entry = this.log.start(`Switch network to chain ${this.dep.chainId}`);
    try {
      await this.wallet.switchChain();
      if (!this.wallet.onRightChain) throw new ActionError('wrong-chain', `The wallet is still on chain ${this.wallet.chainId}.`);
      entry.set('confirmed', `Wallet is on chain ${this.dep.chainId}.`);
    } catch (err) {
      entry.fail(describeError(err, allErrorsAbi));
    }
    await this.onWalletChange();
  }

  private async onWalletChange(): Promise<void> {
    const w = this.wallet;
    const connected = !!w?.connected;
    const account = $('account');
    account.hidden = !connected;
    if (w?.account) {
      account.textContent = shortAddress(w.account);
      account.title = w.account;
      account.dataset.address = w.account;
    }
    const connect = $<HTMLButtonElement>('connect');
    connect.textContent = connected ? 'Connected' : 'Connect wallet';
    connect.disabled = connected;
    $('connect-hint').hidden = connected;
    const wrong = connected && !w?.onRightChain;
    $('chain-banner').hidden = !wrong;
    if (wrong && this.dep) {
      $('chain-banner-text').textContent = `Wrong network: your wallet is on chain ${w?.chainId}, DeepNode runs on chain ${this.dep.chainId}.`;
    }
    await Promise.all([this.refreshPosition(), this.refreshRewards()]);
  }

  private async refreshPosition(): Promise<void> {
    const w = this.wallet;
    if (!w?.account || !w.onRightChain || !this.staking) {
      this.position = undefined;
      this.renderPosition();
      return;
    }
    try {
      this.position = await this.staking.position(w.account);
      this.renderPosition();
    } catch (err) {
      $('balance').textContent = `unavailable: ${describeError(err, allErrorsAbi).message}`;
    }
  }

  private renderPosition(): void {
    const p = this.position;
    $('balance').textContent = p ? formatDN(p.balance) : '–';
    $('stake-worker').textContent = p ? formatDN(p.stake[0]) : '–';
    $('stake-validator').textContent = p ? formatDN(p.stake[1]) : '–';
    $('unbonding-period').textContent = p ? formatDuration(p.unbondingPeriod) : '–';
    $('min-worker').textContent = p ? `(minimum ${formatDN(p.minStake[0])})` : '';
    $('min-validator').textContent = p ? `(minimum ${formatDN(p.minStake[1])})` : '';
    const tbody = $<HTMLTableElement>('unbondings').tBodies[0];
    tbody.replaceChildren();
    let withdrawable = 0n;
    if (!p || p.unbondings.length === 0) {
      const td = tbody.insertRow().insertCell();
      td.colSpan = 4;
      td.className = 'muted';
      td.textContent = 'Nothing unbonding.';
    } else {
      for (const u of p.unbondings) {
        const released = u.releaseAt <= p.now;
        if (released) withdrawable += u.amount;
        const tr = tbody.insertRow();
        tr.dataset.state = released ? 'released' : 'unbonding';
        tr.insertCell().textContent = roleName(u.role);
        const amount = tr.insertCell();
        amount.className = 'num';
        amount.textContent = formatDN(u.amount);
        tr.insertCell().textContent = formatTime(u.releaseAt);
        tr.insertCell().textContent = released ? 'Released' : `Unbonding, ${formatDuration(u.releaseAt - p.now)} left`;
      }
    }
    $('withdrawable').textContent = `Withdrawable now: ${p ? formatDN(withdrawable) : '–'}`;
    $('withdrawable').dataset.wei = withdrawable.toString();
    $<HTMLButtonElement>('withdraw').disabled = this.busy || withdrawable === 0n;
  }

  /** Runs one action with its log entry: pending -> confirmed | failed (with the reason); returns the failure, if any. */
  private async run(label: string, action: (entry: TxEntry) => Promise<void>): Promise<Failure | undefined> {
    const entry = this.log.start(label);
    this.setBusy(true);
    let failure: Failure | undefined;
    try {
      if (!this.staking) throw new ActionError('no-wallet', 'Connect a wallet first.');
      await action(entry);
    } catch (err) {
      failure = describeError(err, allErrorsAbi);
      entry.fail(failure);
    } finally {
      this.setBusy(false);
      await Promise.all([this.refreshPosition(), this.refreshRewards()]);
      void this.refreshExplorer();
    }
    return failure;
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    for (const id of ['stake-submit', 'unstake-submit']) $<HTMLButtonElement>(id).disabled = busy;
    $('main').setAttribute('aria-busy', String(busy));
    if (busy) $<HTMLButtonElement>('withdraw').disabled = true;
    this.updateClaimButtons();
  }

  // ------------------------------------------------------------------------------------------
  // Rewards and trust (only with a settlement contract).

  private async refreshRewards(epochs?: Row[]): Promise<void> {
    if (!this.dep?.settlement) return;
    const seq = ++this.rewardsSeq;
    const w = this.wallet;
    if (!w?.account) {
      this.rewardRows = [];
      this.renderRewards('Connect a wallet to see the rewards of your account.');
      this.renderTrust([], undefined, 'Connect a wallet to see the trust history of your account.');
      return;
    }
    const account = w.account;
    const [rows, trust] = await Promise.allSettled([
      w.onRightChain && this.rewards ? this.rewards.load(account, epochs) : Promise.resolve(undefined),
      getOptional(`nodes/${account}/trust`),
    ]);
    if (seq !== this.rewardsSeq) return;
    if (!w.onRightChain) {
      this.rewardRows = [];
      this.renderRewards(`Switch your wallet to chain ${this.dep.chainId} to see and claim your rewards.`);
    } else if (rows.status === 'fulfilled') {
      this.rewardRows = rows.value ?? [];
      this.renderRewards(
        this.rewardRows.length === 0
          ? 'No rewards for this account yet. They appear here once an epoch in which it worked, validated or earned royalties is settled.'
          : `Rewards of ${shortAddress(account)} from the epoch reports (Merkle proofs from the indexer).`,
      );
    } else {
      this.renderRewards(`Rewards unavailable: ${describeError(rows.reason, allErrorsAbi).message}`);
    }
    if (trust.status === 'fulfilled') {
      const points = parseTrustHistory(trust.value);
      this.renderTrust(points, account, points.length === 0 ? 'No trust history yet: this account has not been evaluated in an epoch as a worker.' : undefined);
    } else {
      this.renderTrust([], account, `Trust history unavailable: ${(trust.reason as Error).message}`);
    }
  }

  private renderRewards(status: string): void {
    $('rewards-status').textContent = status;
    const table = $<HTMLTableElement>('rewards');
    const body = table.tBodies[0];
    body.replaceChildren();
    table.hidden = this.rewardRows.length === 0;
    let unclaimed = 0n;
    for (const row of this.rewardRows) {
      const state = row.claimed ? 'claimed' : row.posted ? 'claimable' : 'awaiting-report';
      if (state === 'claimable') unclaimed += row.amount;
      const tr = body.insertRow();
      tr.dataset.epoch = String(row.epoch);
      tr.dataset.state = state;
      tr.dataset.wei = row.amount.toString();
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = String(row.epoch);
      tr.append(th);
      const amount = tr.insertCell();
      amount.className = 'num';
      amount.textContent = formatDN(row.amount);
      amount.title = `${row.amount} wei`;
      const parts = Object.entries(row.parts)
        .filter(([, v]) => v > 0n)
        .map(([k, v]) => `${k} ${formatDN(v)}`);
      tr.insertCell().textContent = parts.join(', ') || '–';
      const st = tr.insertCell();
      st.className = 'status';
      st.textContent = state === 'claimed' ? 'Claimed' : state === 'claimable' ? 'Claimable' : 'Waiting for the epoch report on-chain';
      if (row.claimTx) st.title = `claim tx ${row.claimTx}`;
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Claim';
      button.dataset.epoch = String(row.epoch);
      button.setAttribute('aria-label', `Claim the reward of epoch ${row.epoch}`);
      button.addEventListener('click', () => void this.claim(row));
      tr.insertCell().append(button);
    }
    $('rewards-total').textContent = this.rewardRows.length ? `Unclaimed: ${formatDN(unclaimed)}` : '';
    $('rewards-total').dataset.wei = unclaimed.toString();
    this.updateClaimButtons();
  }

  /** A row's Claim button is enabled only while it is claimable and no action runs. */
  private updateClaimButtons(): void {
    let any = false;
    for (const row of this.rewardRows) {
      const claimable = row.posted && !row.claimed;
      any ||= claimable;
      const button = document.querySelector<HTMLButtonElement>(`#rewards button[data-epoch="${row.epoch}"]`);
      if (button) button.disabled = this.busy || !claimable;
    }
    $<HTMLButtonElement>('claim-all').disabled = this.busy || !any;
  }

  private renderTrust(points: TrustPoint[], account: string | undefined, status: string | undefined): void {
    const st = $('trust-status');
    st.hidden = status === undefined;
    st.textContent = status ?? '';
    $('trust-figure').hidden = points.length === 0;
    $<HTMLTableElement>('trust-table').hidden = points.length === 0;
    renderTrustChart($('trust-chart'), points, account ? shortAddress(account) : 'this account');
    renderTrustTable($<HTMLTableElement>('trust-table'), points);
  }

  private claim(row: RewardRow): Promise<Failure | undefined> {
    return this.run(`Claim ${formatDN(row.amount)} (epoch ${row.epoch})`, (entry) => {
      if (!this.rewards) throw new ActionError('no-wallet', 'Connect a wallet first.');
      return this.rewards.claim(entry, row);
    });
  }

  /** Claims every claimable epoch in turn (oldest first); stops when the wallet refuses. */
  private async claimAll(): Promise<void> {
    const queue = this.rewardRows.filter((r) => r.posted && !r.claimed).sort((a, b) => a.epoch - b.epoch);
    for (const row of queue) {
      // The list is refreshed after each claim: skip what has been claimed meanwhile.
      const fresh = this.rewardRows.find((r) => r.epoch === row.epoch);
      if (fresh?.claimed) continue;
      const failure = await this.claim(fresh ?? row);
      if (failure && ['rejected', 'wrong-chain', 'no-wallet'].includes(failure.kind)) break;
    }
  }

  private readAmount(inputId: string, label: string): bigint | undefined {
    const input = $<HTMLInputElement>(inputId);
    try {
      const wei = parseDN(input.value);
      input.removeAttribute('aria-invalid');
      return wei;
    } catch (err) {
      input.setAttribute('aria-invalid', 'true');
      this.log.start(label).fail({ kind: 'invalid-input', message: (err as Error).message });
      input.focus();
      return undefined;
    }
  }

  private selectedRole(name: string): number {
    const checked = document.querySelector<HTMLInputElement>(`input[name="${name}"]:checked`);
    return Number(checked?.value ?? 0);
  }

  private async submitStake(): Promise<void> {
    const role = this.selectedRole('role');
    const amount = this.readAmount('stake-amount', `Stake as ${roleName(role)}`);
    if (amount === undefined) return;
    const usePermit = $<HTMLInputElement>('use-permit').checked;
    await this.run(`Stake ${formatDN(amount)} as ${roleName(role)}${usePermit ? ' (permit)' : ''}`, (entry) =>
      this.staking!.stake(entry, role, amount, usePermit),
    );
  }

  private async submitUnstake(): Promise<void> {
    const role = this.selectedRole('unstake-role');
    const amount = this.readAmount('unstake-amount', `Unstake (${roleName(role)})`);
    if (amount === undefined) return;
    await this.run(`Request unstake of ${formatDN(amount)} (${roleName(role)})`, (entry) => this.staking!.requestUnstake(entry, role, amount));
  }

  private async submitWithdraw(): Promise<void> {
    const expected = BigInt($('withdrawable').dataset.wei ?? '0');
    await this.run('Withdraw released stake', (entry) => this.staking!.withdraw(entry, expected));
  }

  private async refreshExplorer(): Promise<void> {
    const status = $('indexer-status');
    const settled = !!this.dep?.settlement;
    const results = await Promise.allSettled([
      getJSON('health'),
      getJSON('nodes'),
      getJSON('models'),
      getJSON('tasks?limit=20'),
      settled ? listEpochs() : Promise.resolve([] as Row[]),
      settled ? getJSON('leaderboard?role=worker') : Promise.resolve({}),
    ]);
    const [health, nodes, models, tasks, epochs, earners] = results;
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).message);
    status.textContent = failures.length
      ? `Indexer unavailable or incomplete: ${failures.join('; ')}`
      : `From the indexer at ${new Date().toLocaleTimeString()}.`;

    const nodeRows = nodes.status === 'fulfilled' ? rankNodes(asList(nodes.value, 'nodes')) : [];
    let modelRows = models.status === 'fulfilled' ? asList(models.value, 'models') : [];
    const taskRows = tasks.status === 'fulfilled' ? asList(tasks.value, 'tasks') : [];
    // Usage counts live on /models/{id}; fetch them for the first models only.
    modelRows = await Promise.all(
      modelRows.map(async (m, i) => {
        if (i >= MAX_MODEL_DETAILS) return m;
        try {
          return (await getJSON(`models/${encodeURIComponent(String(m.model_id))}`)) as Row;
        } catch {
          return m;
        }
      }),
    );
    const healthRow = health.status === 'fulfilled' && health.value && typeof health.value === 'object' ? (health.value as Row) : undefined;
    const moreTasks = tasks.status === 'fulfilled' && get(tasks.value as Row, 'next_cursor') != null;
    this.renderTotals(healthRow, nodeRows, modelRows, taskRows, moreTasks);
    if (nodes.status === 'fulfilled') {
      renderTable($('nodes'), nodeRows, { view: 'nodes', caption: 'Nodes ranked by finalized tasks, then stake', columns: NODE_COLUMNS, empty: 'No staked nodes yet.', rank: true });
    }
    if (models.status === 'fulfilled') {
      renderTable($('models'), modelRows, { view: 'models', caption: 'Registered models with price and usage', columns: MODEL_COLUMNS, empty: 'No models registered yet.' });
    }
    if (settled && epochs.status === 'fulfilled') {
      renderTable($('epochs'), epochs.value, { view: 'epochs', caption: 'Epochs computed by the indexer, newest first', columns: EPOCH_COLUMNS, empty: 'No epoch has ended yet.' });
      // A newly posted report can pay this account: reload its rewards (not on every poll).
      const posted = postedSignature(epochs.value);
      if (this.postedEpochs !== undefined && posted !== this.postedEpochs) void this.refreshRewards(epochs.value);
      this.postedEpochs = posted;
    }
    if (settled && earners.status === 'fulfilled') {
      renderTable($('earners'), asList(earners.value, 'entries'), { view: 'earners', caption: 'Workers ranked by rewards earned over all epochs', columns: EARNER_COLUMNS, empty: 'No epoch rewards yet.', rank: true });
    }
    if (tasks.status === 'fulfilled') {
      renderTable($('tasks'), taskRows, {
        view: 'tasks',
        caption: 'Most recent tasks, newest first',
        columns: TASK_COLUMNS,
        empty: 'No tasks yet.',
        action: { label: (row) => `Task ${String(row.task_id)}`, run: (row) => void this.showTask(String(row.task_id)) },
      });
    }
  }

  private renderTotals(health: Row | undefined, nodes: Row[], models: Row[], tasks: Row[], moreTasks: boolean): void {
    const sum = (path: string) => nodes.reduce((acc, n) => acc + wei(n, path), 0n);
    const items: [string, string][] = [];
    if (health) {
      items.push(['indexer', String(health.status ?? '?')]);
      if (health.indexed_block != null) items.push(['indexed block', String(health.indexed_block)]);
    }
    items.push(['workers', String(nodes.filter((n) => wei(n, 'worker_stake') > 0n).length)]);
    items.push(['validators', String(nodes.filter((n) => wei(n, 'validator_stake') > 0n).length)]);
    items.push(['worker stake', formatDN(sum('worker_stake'))]);
    items.push(['validator stake', formatDN(sum('validator_stake'))]);
    items.push(['models', String(models.length)]);
    items.push(['recent tasks', `${tasks.length}${moreTasks ? '+' : ''}`]);
    items.push(['finalized (shown)', String(tasks.filter((t) => t.status === 'finalized').length)]);
    const dl = $('totals');
    dl.replaceChildren();
    for (const [k, v] of items) {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      div.dataset.total = k;
      div.append(dt, dd);
      dl.append(div);
    }
  }

  private async showTask(id: string): Promise<void> {
    const card = $('task-detail-card');
    card.hidden = false;
    $('task-detail-h').textContent = `Task ${id}: audit trail`;
    try {
      const task = await getJSON(`tasks/${encodeURIComponent(id)}`);
      renderTaskDetail($('task-detail'), task as Row);
    } catch (err) {
      $('task-detail').textContent = (err as Error).message;
    }
    $('task-detail-h').focus();
  }
}

async function main(): Promise<void> {
  let dep: Deployment | undefined;
  try {
    dep = await loadDeployment();
  } catch (err) {
    const banner = $('load-error');
    banner.hidden = false;
    banner.textContent = `Staking is unavailable: ${(err as Error).message}.`;
  }
  new App(dep).start();
}

void main();
