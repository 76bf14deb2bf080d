// Number / date formatting and axis ticks.

const intFmt = new Intl.NumberFormat('en-US');
const sigFmt = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 4 });
const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumSignificantDigits: 3 });

export const fmtInt = (n) => intFmt.format(Math.round(n));
export const fmtCompact = (n) => compactFmt.format(n);

export function fmtNum(v) {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1e6) return compactFmt.format(v);
  if (Number.isInteger(v)) return intFmt.format(v);
  return sigFmt.format(v);
}

const pad = (n) => String(n).padStart(2, '0');

/** Date text with a precision suited to `spanMs` (the visible range). */
export function fmtDate(ms, spanMs = Infinity) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  const ymd = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  if (spanMs > 3 * 86400e3) return ymd;
  return `${ymd} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

export function fmtDateTime(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  const s = d.toISOString();
  return s.endsWith('T00:00:00.000Z') ? s.slice(0, 10) : `${s.slice(0, 10)} ${s.slice(11, 16)} UTC`;
}

export const fmtValue = (v, kind, span) => (kind === 'temporal' ? fmtDate(v, span) : fmtNum(v));

/** "Nice" linear ticks in [lo, hi], about `count` of them. */
export function niceTicks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const DAY = 86400e3;
/** Calendar-aligned ticks for a temporal axis (UTC). */
export function timeTicks(lo, hi, count = 4) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const years = span / (365.25 * DAY);
  const out = [];
  if (years >= count * 0.8) {
    const step = [1, 2, 5, 10, 20, 50, 100].find((s) => years / s <= count + 1) || 100;
    for (let y = Math.ceil(new Date(lo).getUTCFullYear() / step) * step; ; y += step) {
      const t = Date.UTC(y, 0, 1);
      if (t > hi) break;
      if (t >= lo) out.push(t);
    }
    return out;
  }
  const months = span / (30.44 * DAY);
  if (months >= count * 0.8) {
    const step = [1, 2, 3, 6].find((s) => months / s <= count + 1) || 6;
    const d = new Date(lo);
    let y = d.getUTCFullYear();
    let m = Math.ceil(d.getUTCMonth() / step) * step;
    for (;;) {
      const t = Date.UTC(y, m, 1);
      if (t > hi) break;
      if (t >= lo) out.push(t);
      m += step;
    }
    return out;
  }
  const hour = 3600e3;
  const steps = [hour, 3 * hour, 6 * hour, 12 * hour, DAY, 2 * DAY, 7 * DAY, 14 * DAY];
  const step = steps.find((s) => span / s <= count + 1) || 14 * DAY;
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(t);
  return out;
}

export function fmtTick(v, kind, lo, hi) {
  if (kind !== 'temporal') return fmtCompact(v);
  const d = new Date(v);
  const span = hi - lo;
  if (span > 3 * 365 * DAY) return String(d.getUTCFullYear());
  if (span > 60 * DAY) return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
  if (span > 3 * DAY) return `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

/**
 * The step brushed values of an axis are rounded to, as a number and as the
 * text the API's `brush=COL:STEP` hint takes; null when the axis is empty.
 */
export function axisStep(kind, lo, hi) {
  const span = hi - lo;
  if (kind === 'temporal') {
    const unit = span > 60 * DAY ? DAY : span > 2 * DAY ? 3600e3 : 60e3;
    return { step: unit, text: String(unit) };
  }
  if (!(span > 0)) return null;
  const e = Math.floor(Math.log10(span / 500));
  return { step: 10 ** e, text: `1e${e}` };
}

/** Round a brushed value to a precision suited to the axis span. */
export function roundForAxis(v, kind, lo, hi) {
  const s = axisStep(kind, lo, hi);
  if (!s) return v;
  if (kind === 'temporal') return Math.round(v / s.step) * s.step;
  return +(Math.round(v / s.step) * s.step).toPrecision(12);
}
