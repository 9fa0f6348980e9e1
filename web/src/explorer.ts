// Read-only explorer over the indexer REST API (/health, /nodes, /models, /models/{id},
// /tasks, /tasks/{id}): network totals, node leaderboard, models with price and usage, recent
// tasks and one task's audit trail. Pure rendering helpers; main.ts fetches and schedules.
import { formatDN, formatTime, shortAddress } from './format';

export type Row = Record<string, unknown>;

export async function getJSON(path: string): Promise<unknown> {
  const url = new URL(path, document.baseURI);
  const res = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!res.ok) {
    let detail = '';
    try {
      const body = (await res.json()) as { error?: string; detail?: string };
      detail = [body.error, body.detail].filter(Boolean).join(': ');
    } catch {
      /* not JSON */
    }
    throw new Error(`${url.pathname}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`);
  }
  return res.json();
}

/** The list inside a response: `{ "nodes": [...] }`, `{ "tasks": [...], "next_cursor" }` or a bare array. */
export function asList(value: unknown, key: string): Row[] {
  if (Array.isArray(value)) return value as Row[];
  const inner = value && typeof value === 'object' ? (value as Row)[key] : undefined;
  return Array.isArray(inner) ? (inner as Row[]) : [];
}

/** `get(row, "tasks.finalized")`: a field one or more objects deep. */
export function get(row: Row, path: string): unknown {
  let cur: unknown = row;
  for (const part of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Row)[part];
  }
  return cur;
}

/** Integer value of a field that may be a decimal string (wei), a number, or missing. */
export function wei(row: Row, path: string): bigint {
  const v = get(row, path);
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.trunc(v));
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
  return 0n;
}

type Format = 'text' | 'dn' | 'address' | 'hash' | 'time' | 'int' | 'trust' | 'secs' | 'jail' | 'yesno';

export interface Column {
  path: string;
  label: string;
  format?: Format;
}

export interface Cell {
  text: string;
  title?: string;
  numeric?: boolean;
  mono?: boolean;
}

export function formatValue(value: unknown, format: Format = 'text', row?: Row): Cell {
  if (format === 'jail') {
    const until = Number(value ?? 0);
    return row && get(row, 'jailed') === true ? { text: `until ${formatTime(until)}` } : { text: 'no' };
  }
  if (format === 'yesno') return { text: value === true ? 'yes' : value === false ? 'no' : '–' };
  if (value === null || value === undefined || value === '') return { text: '–' };
  const raw = String(value);
  switch (format) {
    case 'dn':
      return /^\d+$/.test(raw) ? { text: formatDN(BigInt(raw)), title: `${raw} wei`, numeric: true } : { text: raw };
    case 'address':
      return { text: shortAddress(raw), title: raw, mono: true };
    case 'hash':
      return /^0x[0-9a-fA-F]{64}$/.test(raw) ? { text: `${raw.slice(0, 10)}…${raw.slice(-6)}`, title: raw, mono: true } : { text: raw, mono: true };
    case 'time':
      return /^\d+$/.test(raw) && Number(raw) > 0 ? { text: formatTime(Number(raw)), title: `unix ${raw}` } : { text: '–' };
    case 'int':
      return { text: raw, numeric: true };
    case 'secs':
      return { text: `${raw} s`, numeric: true };
    case 'trust':
      // trust_wad is 1e18-scaled; shown as 0.00 .. 1.00
      return /^\d+$/.test(raw) ? { text: (Number(BigInt(raw) / 10n ** 14n) / 1e4).toFixed(2), title: `${raw} (1e18 = 1)`, numeric: true } : { text: raw };
    default:
      return { text: typeof value === 'object' ? JSON.stringify(value) : raw };
  }
}

export const NODE_COLUMNS: Column[] = [
  { path: 'address', label: 'Address', format: 'address' },
  { path: 'worker_stake', label: 'Worker stake', format: 'dn' },
  { path: 'validator_stake', label: 'Validator stake', format: 'dn' },
  { path: 'trust_wad', label: 'Trust', format: 'trust' },
  { path: 'tasks.finalized', label: 'Finalized', format: 'int' },
  { path: 'tasks.assigned', label: 'Assigned', format: 'int' },
  { path: 'tasks.missed', label: 'Missed', format: 'int' },
  { path: 'earned', label: 'Earned', format: 'dn' },
  { path: 'slashed', label: 'Slashed', format: 'dn' },
  { path: 'jailed_until', label: 'Jailed', format: 'jail' },
];

export const MODEL_COLUMNS: Column[] = [
  { path: 'model_id', label: 'ID', format: 'int' },
  { path: 'uri', label: 'URI' },
  { path: 'developer', label: 'Developer', format: 'address' },
  { path: 'price_per_call', label: 'Price per call', format: 'dn' },
  { path: 'compute_units', label: 'Compute units', format: 'int' },
  { path: 'compare_rule.name', label: 'Comparison' },
  { path: 'status', label: 'Status' },
  { path: 'worker_count', label: 'Workers', format: 'int' },
  { path: 'tasks.total', label: 'Tasks', format: 'int' },
  { path: 'tasks.finalized', label: 'Finalized', format: 'int' },
  { path: 'royalties', label: 'Royalties', format: 'dn' },
  { path: 'measured_quality', label: 'Measured quality' },
];

export const EPOCH_COLUMNS: Column[] = [
  { path: 'epoch', label: 'Epoch', format: 'int' },
  { path: 'end_time', label: 'Ended', format: 'time' },
  { path: 'posted', label: 'Posted on-chain', format: 'yesno' },
  { path: 'tasks_finalized', label: 'Tasks finalized', format: 'int' },
  { path: 'report.totalRewards', label: 'Total rewards', format: 'dn' },
  { path: 'claimed', label: 'Claimed', format: 'dn' },
  { path: 'claims', label: 'Claims', format: 'int' },
];

/** /leaderboard?role=worker entries: what each worker earned over all computed epochs. */
export const EARNER_COLUMNS: Column[] = [
  { path: 'address', label: 'Address', format: 'address' },
  { path: 'rewards', label: 'Rewards earned', format: 'dn' },
  { path: 'trust_wad', label: 'Latest trust', format: 'trust' },
  { path: 'trust_epoch', label: 'Trust epoch', format: 'int' },
  { path: 'tasks_finalized', label: 'Tasks finalized', format: 'int' },
  { path: 'compute_units', label: 'Compute units', format: 'int' },
];

export const TASK_COLUMNS: Column[] = [
  { path: 'task_id', label: 'Task', format: 'int' },
  { path: 'model_id', label: 'Model', format: 'int' },
  { path: 'status', label: 'Status' },
  { path: 'code.name', label: 'Result' },
  { path: 'worker', label: 'Worker', format: 'address' },
  { path: 'fee', label: 'Fee', format: 'dn' },
  { path: 'latency_secs', label: 'Latency', format: 'secs' },
  { path: 'submitted.time', label: 'Submitted', format: 'time' },
];

/** Leaderboard order: most finalized tasks, then most stake. */
export function rankNodes(nodes: Row[]): Row[] {
  const stake = (n: Row) => wei(n, 'worker_stake') + wei(n, 'validator_stake');
  return [...nodes].sort((a, b) => {
    const fa = wei(a, 'tasks.finalized');
    const fb = wei(b, 'tasks.finalized');
    if (fa !== fb) return fb > fa ? 1 : -1;
    const sa = stake(a);
    const sb = stake(b);
    return sb > sa ? 1 : sb < sa ? -1 : 0;
  });
}

export function renderTable(
  container: HTMLElement,
  rows: Row[],
  opts: { view: string; caption: string; columns: Column[]; empty: string; rank?: boolean; action?: { label: (row: Row) => string; run: (row: Row) => void } },
): void {
  container.replaceChildren();
  if (rows.length === 0) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = opts.empty;
    container.append(p);
    return;
  }
  const table = document.createElement('table');
  table.dataset.view = opts.view;
  const caption = table.createCaption();
  caption.className = 'sr-only';
  caption.textContent = opts.caption;
  const head = table.createTHead().insertRow();
  const headers = [...(opts.rank ? ['#'] : []), ...opts.columns.map((c) => c.label), ...(opts.action ? ['Audit trail'] : [])];
  for (const h of headers) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  rows.forEach((row, i) => {
    const tr = body.insertRow();
    if (opts.rank) {
      const td = tr.insertCell();
      td.className = 'num';
      td.textContent = String(i + 1);
    }
    for (const col of opts.columns) {
      const td = tr.insertCell();
      const cell = formatValue(get(row, col.path), col.format, row);
      td.textContent = cell.text;
      td.dataset.col = col.path;
      if (cell.title) td.title = cell.title;
      if (cell.numeric) td.classList.add('num');
      if (cell.mono) td.classList.add('mono');
    }
    if (opts.action) {
      const td = tr.insertCell();
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'link';
      button.textContent = opts.action.label(row);
      button.addEventListener('click', () => opts.action?.run(row));
      td.append(button);
    }
  });
  container.append(table);
}

const TASK_FIELDS: Column[] = [
  { path: 'task_id', label: 'Task' },
  { path: 'status', label: 'Status' },
  { path: 'model_id', label: 'Model' },
  { path: 'submitter', label: 'Submitter', format: 'address' },
  { path: 'worker', label: 'Worker', format: 'address' },
  { path: 'fee', label: 'Fee', format: 'dn' },
  { path: 'code.name', label: 'Result code' },
  { path: 'code.description', label: 'Result' },
  { path: 'output_hash', label: 'Output hash', format: 'hash' },
  { path: 'input.bytes', label: 'Input bytes', format: 'int' },
  { path: 'output.bytes', label: 'Output bytes', format: 'int' },
  { path: 'batch_id', label: 'Batch' },
  { path: 'latency_secs', label: 'Latency', format: 'secs' },
  { path: 'compute_units', label: 'Compute units' },
  { path: 'quality', label: 'Quality' },
  { path: 'deadline', label: 'Deadline', format: 'time' },
  { path: 'misses', label: 'Missed deadlines' },
  { path: 'fee_split.developer', label: 'Developer share', format: 'dn' },
  { path: 'fee_split.worker', label: 'Worker share', format: 'dn' },
  { path: 'fee_split.validator', label: 'Validator share', format: 'dn' },
  { path: 'fee_split.protocol', label: 'Protocol share', format: 'dn' },
  { path: 'fee_split.refund', label: 'Refund', format: 'dn' },
];

/** A value inside an audit-trail event's `detail`, formatted by what its key says it is. */
export function formatDetail(key: string, value: unknown): string {
  const raw = String(value);
  if (/^0x[0-9a-fA-F]{40}$/.test(raw)) return shortAddress(raw);
  if (/^0x[0-9a-fA-F]{64}$/.test(raw)) return `${raw.slice(0, 10)}…`;
  if (/fee|amount|price|stake|refund|reward/i.test(key) && /^\d+$/.test(raw)) return formatDN(BigInt(raw));
  if (/deadline|time|until|_at$|At$/i.test(key) && /^\d{9,11}$/.test(raw)) return formatTime(Number(raw));
  return raw.length > 40 ? `${raw.slice(0, 20)}… (${raw.length} chars)` : raw;
}

/** One task (/tasks/{id}): its fields, then its audit trail (every event in block order). */
export function renderTaskDetail(container: HTMLElement, task: Row): void {
  container.replaceChildren();
  const kv = document.createElement('dl');
  kv.className = 'kv';
  for (const field of TASK_FIELDS) {
    const value = get(task, field.path);
    if (value === undefined || value === null) continue;
    const dt = document.createElement('dt');
    dt.textContent = field.label;
    const dd = document.createElement('dd');
    const cell = formatValue(value, field.format, task);
    dd.textContent = cell.text;
    if (cell.title) dd.title = cell.title;
    kv.append(dt, dd);
  }
  container.append(kv);
  const h = document.createElement('h4');
  h.textContent = 'Audit trail';
  container.append(h);
  const trail = asList(get(task, 'audit_trail'), 'events');
  if (trail.length === 0) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No events recorded for this task.';
    container.append(p);
    return;
  }
  const ol = document.createElement('ol');
  ol.className = 'trail';
  ol.setAttribute('aria-label', 'Audit trail, oldest first');
  for (const ev of trail) {
    const li = document.createElement('li');
    const parts = [String(get(ev, 'kind') ?? 'event')];
    const worker = get(ev, 'worker');
    if (typeof worker === 'string') parts.push(`worker ${shortAddress(worker)}`);
    parts.push(`block ${String(get(ev, 'block') ?? '?')}`);
    const time = formatValue(get(ev, 'time'), 'time');
    if (time.text !== '–') parts.push(time.text);
    const detail = get(ev, 'detail');
    if (detail && typeof detail === 'object' && Object.keys(detail).length > 0) {
      parts.push(
        Object.entries(detail as Row)
          .filter(([, v]) => v === null || typeof v !== 'object')
          .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${formatDetail(k, v)}`)
          .join(', '),
      );
    }
    li.textContent = parts.filter(Boolean).join(' · ');
    const tx = get(ev, 'tx');
    if (typeof tx === 'string') li.title = `tx ${tx}`;
    ol.append(li);
  }
  container.append(ol);
}
