// The trust history of a node (/nodes/{address}/trust): an inline SVG line chart (epochs on x,
// trust 0..1 on y) and a table of the four PoWR components per epoch. Pure DOM rendering.
import type { Row } from './explorer';

const SVG_NS = 'http://www.w3.org/2000/svg';
export const COMPONENTS = ['completion', 'accuracy', 'uptime', 'speed'] as const;

export interface TrustPoint {
  epoch: number;
  trust: number;
  quality?: number;
  components: Record<(typeof COMPONENTS)[number], number | undefined>;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);

/** The `history` of a /nodes/{address}/trust answer, oldest first. */
export function parseTrustHistory(body: unknown): TrustPoint[] {
  const history = body && typeof body === 'object' ? (body as Row).history : undefined;
  if (!Array.isArray(history)) return [];
  const out: TrustPoint[] = [];
  for (const h of history as Row[]) {
    const epoch = num(h.epoch);
    const trust = num(h.trust);
    if (epoch === undefined || trust === undefined) continue;
    const comps = (h.components ?? {}) as Row;
    out.push({
      epoch,
      trust,
      quality: num(h.quality),
      components: { completion: num(comps.completion), accuracy: num(comps.accuracy), uptime: num(comps.uptime), speed: num(comps.speed) },
    });
  }
  return out.sort((a, b) => a.epoch - b.epoch);
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

const fmt2 = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2));

/** Renders the line chart into `container` (replacing its content). */
export function renderTrustChart(container: HTMLElement, points: TrustPoint[], who: string): void {
  container.replaceChildren();
  if (points.length === 0) return;
  const W = 600;
  const H = 220;
  const pad = { left: 44, right: 16, top: 14, bottom: 34 };
  const plotW = W - pad.left - pad.right;
  const plotH = H - pad.top - pad.bottom;
  const first = points[0].epoch;
  const last = points[points.length - 1].epoch;
  const x = (epoch: number) => (last === first ? pad.left + plotW / 2 : pad.left + ((epoch - first) / (last - first)) * plotW);
  const y = (trust: number) => pad.top + (1 - Math.min(1, Math.max(0, trust))) * plotH;

  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'trust-chart-title trust-chart-desc', class: 'trust-chart' });
  root.append(svg('title', { id: 'trust-chart-title' }, `Trust of ${who} per epoch`));
  const lastPoint = points[points.length - 1];
  root.append(
    svg(
      'desc',
      { id: 'trust-chart-desc' },
      `${points.length} epoch${points.length === 1 ? '' : 's'}, from epoch ${first} to ${last}; latest trust ${fmt2(lastPoint.trust)} on a scale of 0 to 1. The table below lists the values.`,
    ),
  );
  const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    grid.append(svg('line', { x1: pad.left, x2: W - pad.right, y1: y(t), y2: y(t) }));
    grid.append(svg('text', { x: pad.left - 8, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, t.toFixed(2)));
  }
  // x ticks: every epoch when few, else about 8 evenly spaced.
  const step = Math.max(1, Math.ceil((last - first + 1) / 8));
  for (let e = first; e <= last; e += step) {
    grid.append(svg('text', { x: x(e), y: H - pad.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, String(e)));
  }
  grid.append(svg('text', { x: pad.left + plotW / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-label' }, 'epoch'));
  root.append(grid);
  if (points.length > 1) {
    root.append(svg('polyline', { class: 'line', points: points.map((p) => `${x(p.epoch).toFixed(1)},${y(p.trust).toFixed(1)}`).join(' '), 'aria-hidden': 'true' }));
  }
  const dots = svg('g', { class: 'points' });
  for (const p of points) {
    const c = svg('circle', { cx: x(p.epoch).toFixed(1), cy: y(p.trust).toFixed(1), r: 4.5, 'data-epoch': p.epoch, 'data-trust': p.trust });
    c.append(svg('title', {}, `Epoch ${p.epoch}: trust ${fmt2(p.trust)}`));
    dots.append(c);
  }
  root.append(dots);
  container.append(root);
}

/** Renders the per-epoch table (trust, quality and the four components) into `table`'s body. */
export function renderTrustTable(table: HTMLTableElement, points: TrustPoint[]): void {
  const body = table.tBodies[0] ?? table.createTBody();
  body.replaceChildren();
  for (const p of [...points].reverse()) {
    const tr = body.insertRow();
    tr.dataset.epoch = String(p.epoch);
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = String(p.epoch);
    tr.append(th);
    for (const [key, v] of [['trust', p.trust], ['quality', p.quality], ...COMPONENTS.map((c) => [c, p.components[c]] as const)] as const) {
      const td = tr.insertCell();
      td.className = 'num';
      td.dataset.col = key;
      td.textContent = fmt2(v);
    }
  }
}
