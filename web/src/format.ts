// Display helpers: DN amounts, addresses, times. Pure functions, no DOM.
import { formatUnits, parseUnits } from 'viem';

export const DN_DECIMALS = 18;
export const ROLE_NAMES = ['worker', 'validator'] as const;

/** 1234500000000000000000n -> "1,234.5 DN" (at most 4 decimals shown; exact value in the title). */
export function formatDN(wei: bigint, withUnit = true): string {
  const negative = wei < 0n;
  const text = formatUnits(negative ? -wei : wei, DN_DECIMALS);
  const [whole, frac = ''] = text.split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  let shortFrac = frac.slice(0, 4).replace(/0+$/, '');
  if (shortFrac === '' && /[1-9]/.test(frac) && whole === '0') shortFrac = frac.replace(/0+$/, '');
  const out = `${negative ? '-' : ''}${grouped}${shortFrac ? '.' + shortFrac : ''}`;
  return withUnit ? `${out} DN` : out;
}

/** Parses what a person typed in an amount field ("1,000.5") to wei; throws a readable Error. */
export function parseDN(input: string): bigint {
  const text = input.trim().replace(/[,_\s]/g, '');
  if (text === '') throw new Error('Enter an amount in DN, for example 100 or 12.5.');
  if (!/^\d*\.?\d*$/.test(text) || text === '.') {
    throw new Error(`"${input.trim()}" is not an amount: use digits and at most one decimal point.`);
  }
  const [, frac = ''] = text.split('.');
  if (frac.length > DN_DECIMALS) throw new Error(`DN has ${DN_DECIMALS} decimals; "${input.trim()}" has ${frac.length}.`);
  const wei = parseUnits(text, DN_DECIMALS);
  if (wei === 0n) throw new Error('The amount must be more than 0 DN.');
  return wei;
}

export function roleName(role: number | bigint): string {
  return ROLE_NAMES[Number(role)] ?? `role ${role}`;
}

export function shortAddress(address: string): string {
  return /^0x[0-9a-fA-F]{40}$/.test(address) ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

/** Seconds -> "1 h", "3 d 4 h", "45 s". */
export function formatDuration(seconds: number | bigint): string {
  let s = Number(seconds);
  if (!Number.isFinite(s) || s < 0) return String(seconds);
  if (s < 60) return `${s} s`;
  const parts: string[] = [];
  const units: [string, number][] = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
  for (const [unit, size] of units) {
    const n = Math.floor(s / size);
    if (n > 0) parts.push(`${n} ${unit}`);
    s -= n * size;
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** Unix seconds -> local date and time, e.g. "2026-11-25 14:03:00". */
export function formatTime(unixSeconds: number | bigint): string {
  const d = new Date(Number(unixSeconds) * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
