// Thin client for the Pointillist HTTP API (same origin only).
import { apiFilters } from './state.js';

const enc = encodeURIComponent;

/** Build "a=1&b=2&filter=..&filter=.." from [key, value] pairs (values encoded). */
export function query(pairs) {
  return pairs
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${enc(v)}`)
    .join('&');
}

/** Rendering parameters shared by tiles, tilejson and legend. */
export function renderPairs(state, meta) {
  return [
    ['agg', state.agg],
    ['how', state.how],
    ['cmap', state.cmap],
    ['spread', String(state.spread)],
    ...apiFilters(state, meta).map((f) => ['filter', f]),
  ];
}

/**
 * Absolute tile URL template ({z}/{x}/{y} left for MapLibre to fill in).
 * It names the dataset's version, so the browser may keep the tiles for good.
 */
export function tileUrlTemplate(state, meta) {
  const pairs = [...renderPairs(state, meta), ...(meta.version ? [['v', meta.version]] : [])];
  return `${location.origin}/tiles/${enc(state.dataset)}/{z}/{x}/{y}@2x.png?${query(pairs)}`;
}

let inFlight = 0;
const listeners = new Set();
export const pendingRequests = () => inFlight;
export function onPendingChange(fn) {
  listeners.add(fn);
}
const bump = (d) => {
  inFlight += d;
  for (const fn of listeners) fn(inFlight);
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET a JSON path; rejects with ApiError (server error) or AbortError. */
export async function getJSON(path, signal) {
  bump(1);
  try {
    const res = await fetch(path, { signal, headers: { Accept: 'application/json' } });
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      if (signal && signal.aborted) throw e; // aborted while reading the body
      if (res.ok) throw new ApiError(res.status, `invalid JSON from ${path.split('?')[0]}`);
    }
    if (!res.ok) throw new ApiError(res.status, (body && body.error) || `HTTP ${res.status}`);
    if (body === null || typeof body !== 'object') throw new ApiError(res.status, `unexpected response from ${path.split('?')[0]}`);
    return body;
  } finally {
    bump(-1);
  }
}

export const isAbort = (e) => !!e && e.name === 'AbortError';

export const listDatasets = () => getJSON('/datasets');
export const getDataset = (name) => getJSON(`/datasets/${enc(name)}`);

/**
 * `brush` (optional): `COL:STEP` while the range filter on COL is being
 * brushed, so that the server answers each new bound from one index.
 */
export function histogramPath(state, meta, column, { bins, bbox, brush }) {
  const pairs = [['bins', bins], ['bbox', bbox], ...apiFilters(state, meta).map((f) => ['filter', f]), ['brush', brush]];
  return `/datasets/${enc(state.dataset)}/histogram/${enc(column)}?${query(pairs)}`;
}

export function countPath(state, meta, bbox, brush) {
  return `/datasets/${enc(state.dataset)}/count?${query([['bbox', bbox], ...apiFilters(state, meta).map((f) => ['filter', f]), ['brush', brush]])}`;
}

export function legendPath(state, meta, z) {
  const pairs = [['agg', state.agg], ['how', state.how], ['cmap', state.cmap], ...apiFilters(state, meta).map((f) => ['filter', f]), ['z', String(z)]];
  return `/datasets/${enc(state.dataset)}/legend?${query(pairs)}`;
}

export function pointsPath(state, meta, { lon, lat, z, radiusPx, limit }) {
  const pairs = [
    ['lon', lon.toFixed(6)],
    ['lat', lat.toFixed(6)],
    ['z', String(z)],
    ['radius_px', String(radiusPx)],
    ['limit', String(limit)],
    ...apiFilters(state, meta).map((f) => ['filter', f]),
  ];
  return `/datasets/${enc(state.dataset)}/points?${query(pairs)}`;
}
