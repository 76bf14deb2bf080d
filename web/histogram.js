// Linked histograms: a categorical "row chart" (click to toggle categories)
// and a numeric / temporal bar chart with a brush. Hand-written SVG/DOM.
import { fmtInt, fmtValue, fmtTick, niceTicks, timeTicks, roundForAxis } from './format.js';

const SVGNS = 'http://www.w3.org/2000/svg';

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const KIND_TAG = { categorical: 'cat', numeric: 'num', temporal: 'time' };

/** Base card: header with title, summary, clear / remove buttons, and a body. */
class Card {
  constructor(col, handlers) {
    this.col = col;
    this.handlers = handlers;
    this.filter = null;
    this.data = null;
    this.summaryEl = el('span', { class: 'hist-summary', 'data-testid': `histogram-summary-${col.name}` });
    this.clearBtn = el('button', {
      class: 'hist-btn hist-clear',
      type: 'button',
      title: 'Clear this selection',
      'data-testid': `clear-${col.name}`,
      text: 'clear',
      onclick: () => handlers.onFilter(col.name, null, { live: false }),
    });
    this.extraBtns = el('span', { class: 'hist-extra' });
    const removeBtn = el('button', {
      class: 'hist-btn hist-remove',
      type: 'button',
      title: 'Remove this histogram (and its selection)',
      'aria-label': `Remove histogram ${col.name}`,
      text: '×',
      onclick: () => handlers.onRemove(col.name),
    });
    this.body = el('div', { class: 'hist-body' });
    this.foot = el('div', { class: 'hist-foot' });
    this.root = el(
      'section',
      {
        class: `hist-card kind-${col.kind}`,
        'data-testid': `histogram-${col.name}`,
        'data-column': col.name,
        'data-kind': col.kind,
        'data-loading': 'true',
      },
      el(
        'header',
        { class: 'hist-head' },
        el('span', { class: 'hist-title', text: col.name, title: col.name }),
        el('span', { class: 'kind-tag', text: KIND_TAG[col.kind] || col.kind }),
        this.summaryEl,
        this.extraBtns,
        this.clearBtn,
        removeBtn,
      ),
      this.body,
      this.foot,
    );
  }

  setLoading(on) {
    this.root.dataset.loading = on ? 'true' : 'false';
  }

  setError(msg) {
    this.root.dataset.error = msg ? 'true' : 'false';
    if (msg) this.foot.textContent = `⚠ ${msg}`;
  }

  /** Expose the latest response on the element (stable hooks for tests). */
  markData() {
    const d = this.data;
    this.root.dataset.total = String(d.total);
    const counts = d.kind === 'categorical' ? (d.categories || []).map((c) => c.count) : (d.bins || []).map((b) => b.count);
    this.root.dataset.counts = counts.join(',');
    this.root.dataset.updates = String(Number(this.root.dataset.updates || 0) + 1);
  }

  updateChrome() {
    this.clearBtn.hidden = !this.filter;
    this.root.classList.toggle('filtered', !!this.filter);
    this.root.dataset.filtered = this.filter ? 'true' : 'false';
  }

  destroy() {
    this.root.remove();
  }
}

// ---------------------------------------------------------------- categorical

export class CategoryHistogram extends Card {
  constructor(col, handlers) {
    super(col, handlers);
    this.list = el('div', { class: 'cat-list', role: 'listbox', 'aria-multiselectable': 'true' });
    this.body.append(this.list);
    this.rows = new Map();
    this.colors = null; // value -> colour when the map is coloured by this column
    this.updateChrome();
  }

  setFilter(f) {
    this.filter = f && f.type === 'in' ? f : null;
    this.draw();
  }

  setColors(map) {
    this.colors = map;
    this.draw();
  }

  setData(data) {
    this.data = data;
    this.markData();
    this.draw();
  }

  toggle(value) {
    const cur = new Set(this.filter ? this.filter.values : []);
    if (cur.has(value)) cur.delete(value);
    else cur.add(value);
    const all = this.values().length;
    // Selecting every category is the same as selecting none: clear instead.
    const f = cur.size === 0 || (all > 1 && cur.size >= all) ? null : { type: 'in', values: [...cur] };
    this.handlers.onFilter(this.col.name, f, { live: false });
  }

  values() {
    const fromData = this.data ? this.data.categories.map((c) => c.value) : [];
    const meta = this.col.categories || [];
    if (meta.length && meta.length <= 60) return [...meta, ...fromData.filter((v) => !meta.includes(v))];
    return fromData.length ? fromData : meta;
  }

  draw() {
    this.updateChrome();
    const counts = new Map((this.data ? this.data.categories : []).map((c) => [c.value, c.count]));
    const values = this.values();
    const max = Math.max(1, ...counts.values());
    const sel = this.filter ? new Set(this.filter.values) : null;
    const seen = new Set();
    let i = 0;
    for (const v of values) {
      seen.add(v);
      let row = this.rows.get(v);
      if (!row) {
        row = this.makeRow(v);
        this.rows.set(v, row);
      }
      if (this.list.children[i] !== row.root) this.list.insertBefore(row.root, this.list.children[i] || null);
      i++;
      const n = counts.get(v) ?? 0;
      const selected = sel ? sel.has(v) : false;
      row.root.setAttribute('aria-selected', selected ? 'true' : 'false');
      row.root.dataset.selected = selected ? 'true' : 'false';
      row.root.classList.toggle('dim', !!sel && !selected);
      row.root.dataset.count = String(n);
      row.fill.style.width = `${(100 * n) / max}%`;
      const c = this.colors && this.colors.get(v);
      row.fill.style.background = c || '';
      row.swatch.style.background = c || '';
      row.swatch.hidden = !c;
      row.count.textContent = this.data ? fmtInt(n) : '';
      row.root.title = `${v}: ${fmtInt(n)} — click to ${selected ? 'deselect' : 'select'}`;
    }
    for (const [v, row] of this.rows) {
      if (!seen.has(v)) {
        row.root.remove();
        this.rows.delete(v);
      }
    }
    if (sel) this.summaryEl.textContent = sel.size <= 2 ? [...sel].join(', ') : `${sel.size} of ${values.length}`;
    else this.summaryEl.textContent = '';
    if (this.data && this.root.dataset.error !== 'true') this.foot.textContent = `${fmtInt(this.data.total)} in view`;
  }

  makeRow(v) {
    const swatch = el('span', { class: 'cat-swatch', hidden: true });
    const fill = el('span', { class: 'cat-fill' });
    const count = el('span', { class: 'cat-count' });
    const root = el(
      'div',
      {
        class: 'cat-row',
        role: 'option',
        tabindex: '0',
        'data-testid': 'category-bar',
        'data-column': this.col.name,
        'data-value': v,
        onclick: () => this.toggle(v),
        onkeydown: (e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            this.toggle(v);
          }
        },
      },
      swatch,
      el('span', { class: 'cat-label', text: v === '' ? '(empty)' : v }),
      el('span', { class: 'cat-track' }, fill),
      count,
    );
    return { root, fill, count, swatch };
  }
}

// ---------------------------------------------------------------- numeric / temporal

const M = { left: 6, right: 6, top: 6, bottom: 18 };
const HEIGHT = 86;

export class RangeHistogram extends Card {
  constructor(col, handlers) {
    super(col, handlers);
    this.logY = false;
    this.drag = null; // {mode, anchor, lo0, hi0, x0, range}
    this.width = 300;
    this.svg = svg('svg', { class: 'hist-svg', height: String(HEIGHT), 'data-testid': `histogram-plot-${col.name}` });
    this.gBars = svg('g', { class: 'bars' });
    this.gAxis = svg('g', { class: 'axis' });
    this.brushRect = svg('rect', { class: 'brush', 'data-testid': `brush-${col.name}`, visibility: 'hidden' });
    this.handleL = svg('rect', { class: 'brush-handle', visibility: 'hidden' });
    this.handleR = svg('rect', { class: 'brush-handle', visibility: 'hidden' });
    this.overlay = svg('rect', { class: 'overlay', 'data-testid': `brush-overlay-${col.name}` });
    this.emptyText = svg('text', { class: 'empty-text', 'text-anchor': 'middle' });
    this.svg.append(this.gBars, this.gAxis, this.brushRect, this.handleL, this.handleR, this.emptyText, this.overlay);
    this.body.append(this.svg);
    const logBtn = el('button', {
      class: 'hist-btn hist-log',
      type: 'button',
      title: 'Logarithmic count axis',
      'aria-pressed': 'false',
      text: 'log',
      onclick: () => {
        this.logY = !this.logY;
        logBtn.setAttribute('aria-pressed', String(this.logY));
        this.draw();
      },
    });
    this.extraBtns.append(logBtn);
    this.bindBrush();
    this.ro = new ResizeObserver(() => {
      const w = this.body.clientWidth;
      if (w > 0 && Math.abs(w - this.width) > 0.5) {
        this.width = w;
        this.draw();
      }
    });
    this.ro.observe(this.body);
    this.updateChrome();
  }

  destroy() {
    this.ro.disconnect();
    super.destroy();
  }

  setFilter(f) {
    if (this.drag) return; // don't fight the user's drag
    this.filter = f && f.type === 'range' ? f : null;
    this.draw();
  }

  setData(data) {
    this.data = data;
    this.markData();
    this.draw();
  }

  domain() {
    const d = this.data;
    let lo = d && Number.isFinite(d.min) ? d.min : this.col.min;
    let hi = d && Number.isFinite(d.max) ? d.max : this.col.max;
    if (d && d.bins && d.bins.length) {
      lo = Math.min(lo ?? d.bins[0].lo, d.bins[0].lo);
      hi = Math.max(hi ?? d.bins[d.bins.length - 1].hi, d.bins[d.bins.length - 1].hi);
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
    if (hi === lo) return [lo - 0.5, hi + 0.5];
    return [lo, hi];
  }

  sx(v) {
    const [lo, hi] = this.domain();
    return M.left + ((v - lo) / (hi - lo)) * (this.width - M.left - M.right);
  }

  invert(px) {
    const [lo, hi] = this.domain();
    const t = (px - M.left) / (this.width - M.left - M.right);
    return lo + Math.max(0, Math.min(1, t)) * (hi - lo);
  }

  currentRange() {
    return this.drag && this.drag.range ? this.drag.range : this.filter;
  }

  draw() {
    this.updateChrome();
    const w = this.width;
    this.svg.setAttribute('width', String(w));
    this.svg.setAttribute('viewBox', `0 0 ${w} ${HEIGHT}`);
    const [dlo, dhi] = this.domain();
    const range = this.currentRange();
    const bins = this.data ? this.data.bins || [] : [];
    const max = Math.max(1, ...bins.map((b) => b.count));
    const plotH = HEIGHT - M.top - M.bottom;
    const yScale = (c) => (this.logY ? Math.log1p(c) / Math.log1p(max) : c / max) * plotH;

    // bars (re-use rect elements)
    const rects = this.gBars.children;
    while (rects.length > bins.length) this.gBars.lastChild.remove();
    bins.forEach((b, i) => {
      let r = rects[i];
      if (!r) {
        r = svg('rect');
        r.append(svg('title'));
        this.gBars.append(r);
      }
      const x0 = this.sx(b.lo);
      const x1 = this.sx(b.hi);
      const h = b.count > 0 ? Math.max(1, yScale(b.count)) : 0;
      r.setAttribute('x', String(x0 + 0.5));
      r.setAttribute('width', String(Math.max(0.5, x1 - x0 - 1)));
      r.setAttribute('y', String(M.top + plotH - h));
      r.setAttribute('height', String(h));
      const inside = !range || (b.hi > range.lo && b.lo <= range.hi);
      r.setAttribute('class', inside ? 'bar' : 'bar out');
      r.firstChild.textContent = `${fmtValue(b.lo, this.col.kind, dhi - dlo)} – ${fmtValue(b.hi, this.col.kind, dhi - dlo)}: ${fmtInt(b.count)}`;
    });

    // axis
    this.gAxis.replaceChildren();
    const base = svg('line', { x1: String(M.left), x2: String(w - M.right), y1: String(HEIGHT - M.bottom + 0.5), y2: String(HEIGHT - M.bottom + 0.5), class: 'baseline' });
    this.gAxis.append(base);
    const nTicks = Math.max(2, Math.floor(w / 80));
    const ticks = this.col.kind === 'temporal' ? timeTicks(dlo, dhi, nTicks) : niceTicks(dlo, dhi, nTicks);
    for (const t of ticks) {
      const x = this.sx(t);
      if (x < M.left - 0.5 || x > w - M.right + 0.5) continue;
      this.gAxis.append(svg('line', { x1: String(x), x2: String(x), y1: String(HEIGHT - M.bottom), y2: String(HEIGHT - M.bottom + 3), class: 'tick' }));
      const label = svg('text', { x: String(Math.min(w - 14, Math.max(14, x))), y: String(HEIGHT - 4), 'text-anchor': 'middle' });
      label.textContent = fmtTick(t, this.col.kind, dlo, dhi);
      this.gAxis.append(label);
    }

    // brush
    const vis = range ? 'visible' : 'hidden';
    for (const e of [this.brushRect, this.handleL, this.handleR]) e.setAttribute('visibility', vis);
    if (range) {
      const x0 = Math.max(M.left, Math.min(w - M.right, this.sx(range.lo)));
      const x1 = Math.max(M.left, Math.min(w - M.right, this.sx(range.hi)));
      this.brushRect.setAttribute('x', String(x0));
      this.brushRect.setAttribute('width', String(Math.max(1, x1 - x0)));
      this.brushRect.setAttribute('y', String(M.top - 2));
      this.brushRect.setAttribute('height', String(plotH + 2));
      for (const [h, x] of [
        [this.handleL, x0],
        [this.handleR, x1],
      ]) {
        h.setAttribute('x', String(x - 1.5));
        h.setAttribute('width', '3');
        h.setAttribute('y', String(M.top + plotH / 2 - 9));
        h.setAttribute('height', '18');
        h.setAttribute('rx', '1.5');
      }
    }
    this.overlay.setAttribute('x', '0');
    this.overlay.setAttribute('y', '0');
    this.overlay.setAttribute('width', String(w));
    this.overlay.setAttribute('height', String(HEIGHT));

    const empty = this.data && this.data.total === 0;
    this.emptyText.textContent = empty ? 'no rows in view' : '';
    this.emptyText.setAttribute('x', String(w / 2));
    this.emptyText.setAttribute('y', String(M.top + plotH / 2));

    // footer: the selected range (full text) and counts
    const span = dhi - dlo;
    this.summaryEl.textContent = '';
    if (this.data && this.root.dataset.error !== 'true') {
      this.foot.replaceChildren();
      if (range) {
        const sel = document.createElement('span');
        sel.className = 'sel';
        sel.dataset.testid = `range-text-${this.col.name}`;
        sel.textContent = `${fmtValue(range.lo, this.col.kind, span)} – ${fmtValue(range.hi, this.col.kind, span)}`;
        const n = bins.reduce((a, b) => a + (b.hi > range.lo && b.lo <= range.hi ? b.count : 0), 0);
        this.foot.append(sel, ` · ~${fmtInt(n)} of ${fmtInt(this.data.total)}`);
      } else {
        this.foot.append(`${fmtInt(this.data.total)} in view`);
      }
    }
  }

  bindBrush() {
    const ov = this.overlay;
    // The pointer over a brushable axis: a drag may follow (see prewarmBrush).
    ov.addEventListener('pointerenter', () => this.handlers.onBrushHover && this.handlers.onBrushHover(this.col.name));
    const localX = (e) => {
      const r = this.svg.getBoundingClientRect();
      return ((e.clientX - r.left) / r.width) * this.width;
    };
    const round = (v) => {
      const [lo, hi] = this.domain();
      return roundForAxis(v, this.col.kind, lo, hi);
    };
    const edgeAt = (x) => {
      if (!this.filter) return null;
      const x0 = this.sx(this.filter.lo);
      const x1 = this.sx(this.filter.hi);
      if (Math.abs(x - x0) <= 6) return 'lo';
      if (Math.abs(x - x1) <= 6) return 'hi';
      if (x > x0 && x < x1) return 'move';
      return null;
    };
    ov.addEventListener('pointermove', (e) => {
      if (this.drag) return;
      const m = edgeAt(localX(e));
      ov.style.cursor = m === 'move' ? 'grab' : m ? 'ew-resize' : 'crosshair';
    });
    ov.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      ov.setPointerCapture(e.pointerId);
      const x = localX(e);
      const mode = edgeAt(x) || 'new';
      this.drag = { mode, x0: x, moved: false, range: this.filter ? { ...this.filter } : null, orig: this.filter ? { ...this.filter } : null };
      this.root.classList.add('brushing');
    });
    ov.addEventListener('pointermove', (e) => {
      const d = this.drag;
      if (!d) return;
      const x = localX(e);
      if (Math.abs(x - d.x0) >= 3) d.moved = true;
      if (!d.moved) return;
      const [dlo, dhi] = this.domain();
      const v = this.invert(x);
      if (d.mode === 'new') {
        const a = this.invert(d.x0);
        d.range = { type: 'range', lo: Math.min(a, v), hi: Math.max(a, v) };
      } else if (d.mode === 'move') {
        const delta = v - this.invert(d.x0);
        const width = d.orig.hi - d.orig.lo;
        let lo = d.orig.lo + delta;
        lo = Math.max(Math.min(dlo, d.orig.lo), Math.min(lo, Math.max(dhi, d.orig.hi) - width));
        d.range = { type: 'range', lo, hi: lo + width };
      } else {
        const other = d.mode === 'lo' ? d.orig.hi : d.orig.lo;
        d.range = { type: 'range', lo: Math.min(other, v), hi: Math.max(other, v) };
      }
      this.draw();
      this.handlers.onFilter(this.col.name, this.rounded(d.range, round), { live: true });
    });
    const end = (e) => {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      this.root.classList.remove('brushing');
      if (ov.hasPointerCapture(e.pointerId)) ov.releasePointerCapture(e.pointerId);
      if (!d.moved) {
        // A click: outside the brush clears it; inside keeps it.
        if (d.mode === 'new' && e.type === 'pointerup') this.handlers.onFilter(this.col.name, null, { live: false });
        else this.draw();
        return;
      }
      const f = this.rounded(d.range, round);
      this.filter = f;
      this.draw();
      this.handlers.onFilter(this.col.name, f, { live: false });
    };
    ov.addEventListener('pointerup', end);
    ov.addEventListener('pointercancel', end);
    ov.addEventListener('dblclick', () => this.handlers.onFilter(this.col.name, null, { live: false }));
  }

  rounded(r, round) {
    if (!r) return null;
    let lo = round(r.lo);
    let hi = round(r.hi);
    if (hi < lo) [lo, hi] = [hi, lo];
    if (hi === lo) hi = r.hi; // keep a non-empty range
    return { type: 'range', lo, hi };
  }
}

export function createHistogram(col, handlers) {
  return col.kind === 'categorical' ? new CategoryHistogram(col, handlers) : new RangeHistogram(col, handlers);
}

