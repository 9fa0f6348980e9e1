// The transaction log: one entry per action that moves from pending to confirmed or failed,
// announced to screen readers through the aria-live log region.
import type { Failure } from './errors';

export type TxState = 'pending' | 'confirmed' | 'failed';

const STATE_LABEL: Record<TxState, string> = { pending: 'Pending', confirmed: 'Confirmed', failed: 'Failed' };

export class TxEntry {
  private readonly stateEl: HTMLElement;
  private readonly reasonEl: HTMLElement;
  private readonly hashesEl: HTMLElement;

  constructor(
    readonly el: HTMLLIElement,
    action: string,
  ) {
    el.className = 'pending';
    this.stateEl = document.createElement('span');
    this.stateEl.className = 'state';
    const actionEl = document.createElement('span');
    actionEl.className = 'action';
    actionEl.textContent = action;
    this.reasonEl = document.createElement('span');
    this.reasonEl.className = 'reason';
    this.hashesEl = document.createElement('span');
    this.hashesEl.className = 'hashes mono muted';
    el.append(this.stateEl, actionEl, this.reasonEl, this.hashesEl);
    this.set('pending', 'Preparing…');
  }

  set(state: TxState, reason: string): void {
    this.el.className = state;
    this.el.dataset.state = state;
    this.stateEl.textContent = STATE_LABEL[state];
    this.reasonEl.textContent = reason;
  }

  /** Records a sent transaction hash (an action may send two: approve, then stake). */
  addHash(label: string, hash: string): void {
    const line = document.createElement('span');
    line.style.display = 'block';
    line.textContent = `${label}: ${hash}`;
    this.hashesEl.append(line);
  }

  fail(failure: Failure): void {
    this.el.dataset.kind = failure.kind;
    if (failure.errorName) this.el.dataset.error = failure.errorName;
    this.set('failed', failure.message);
  }
}

export class TxLog {
  constructor(
    private readonly list: HTMLOListElement,
    private readonly empty: HTMLElement,
  ) {}

  start(action: string): TxEntry {
    const li = document.createElement('li');
    const entry = new TxEntry(li, action);
    this.list.prepend(li);
    this.empty.hidden = true;
    return entry;
  }
}
