// Pointillist explorer: map + linked histograms + URL state.
// Plain ES module; MapLibre GL JS and topojson-client are loaded as classic
// scripts (globals `maplibregl`, `topojson`) from /static/vendor/.
import {
  CMAPS,
  HOWS,
  initialState,
  cloneState,
  columnOf,
  histColumns,
  parseAgg,
  validAgg,
  toQuery,
  fromQuery,
  apiFilters,
  datasetFromQuery,
} from './state.js';
import {
  listDatasets,
  getDataset,
  getJSON,
  isAbort,
  histogramPath,
  countPath,
  legendPath,
  pointsPath,
  tileUrlTemplate,
  pendingRequests,
  onPendingChange,
} from './api.js';
import { createHistogram } from './histogram.js';
import { offlineStyle, applyTheme, loadCountries, THEME_COLORS } from './basemap.js';
import { fmtInt, fmtNum, fmtDateTime, axisStep } from './format.js';

const maplibregl = window.maplibregl;
const $ = (id) => document.getElementById(id);

const HIST_BINS = 48;
const HOVER_RADIUS_PX = 8;
const HOVER_LIMIT = 5;
const MOVE_DEBOUNCE_MS = 180;
const LIVE_THROTTLE_MS = 200;
const HOVER_THROTTLE_MS = 90;

const CMAP_PREVIEW = {
  fire: ['#000000', '#7a0403', '#e8430c', '#fca60f', '#fff6a1', '#ffffff'],
  bmy: ['#000b7d', '#8d1aa3', '#e0525f', '#fbb22f', '#fffe5b'],
  bgy: ['#000080', '#0a7f8c', '#3ab54a', '#bfe02f', '#f2f24a'],
  kbc: ['#000000', '#1c3ec2', '#2fa6e0', '#ffffff'],
  kb: ['#000000', '#0d1c5e', '#1f4ab8', '#4c8ff5'],
  gray: ['#000000', '#ffffff'],
  dimgray: ['#424242', '#eeeeee'],
  viridis: ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'],
  inferno: ['#000004', '#57106e', '#bc3754', '#f98e09', '#fcffa4'],
  magma: ['#000004', '#51127c', '#b73779', '#fc8961', '#fcfdbf'],
  plasma: ['#0d0887', '#7e03a8', '#cc4778', '#f89540', '#f0f921'],
  cividis: ['#00224e', '#434e6c', '#7d7c78', '#bcae6e', '#fee838'],
};
const HOW_LABEL = { eq_hist: 'eq_hist', log: 'log', cbrt: 'cbrt', linear: 'linear' };
const HOW_HELP = {
  eq_hist: 'Histogram equalisation: colour by rank',
  log: 'Logarithmic',
  cbrt: 'Cube root',
  linear: 'Linear',
};

// ------------------------------------------------------------------ app state

const app = {
  datasets: [],
  meta: null,
  state: null,
  map: null,
  basemapUrl: null,
  usingOnlineBasemap: false,
  hists: new Map(), // column -> histogram widget
  controllers: new Map(), // request key -> AbortController
  tileUrl: null,
  tileLoads: 0,
  tileErrors: 0,
  tileUrlChanges: 0,
  tileUrlChangedAt: 0,
  legend: null,
  lastCount: null,
  errors: [], // messages shown to the user (the error toast)
};

// Hooks for tests and the console.
window.__pointillist = {
  get map() {
    return app.map;
  },
  get state() {
    return app.state ? cloneState(app.state) : null;
  },
  get meta() {
    return app.meta;
  },
  tileUrl: () => app.tileUrl,
  get tileLoads() {
    return app.tileLoads;
  },
  get tileErrors() {
    return app.tileErrors;
  },
  get tileUrlChanges() {
    return app.tileUrlChanges;
  },
  get tileUrlChangedAt() {
    return app.tileUrlChangedAt;
  },
  pending: () => pendingRequests(),
  /** Error messages the page has shown to the user. */
  get errors() {
    return [...app.errors];
  },
  /** Resolves once the map is idle (tiles loaded) and no API request is in flight. */
  idle: () => waitIdle(),
  ready: null,
};

function waitIdle() {
  return new Promise((resolve) => {
    const check = () => {
      const m = app.map;
      if (m && m.loaded() && m.areTilesLoaded() && !m.isMoving() && pendingRequests() === 0 && !liveTimer && !moveTimer) resolve();
      else setTimeout(check, 30);
    };
    check();
  });
}

// ------------------------------------------------------------------ utilities

function debounce(fn, ms) {
  let t = null;
  const d = (...a) => {
    clearTimeout(t);
    t = setTimeout(() => {
      t = null;
      fn(...a);
    }, ms);
  };
  d.pending = () => t !== null;
  return d;
}

let toastTimer = null;
function showError(msg) {
  app.errors.push(msg);
  if (app.errors.length > 50) app.errors.shift();
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 6000);
}

/** Fetch JSON for `key`, aborting any earlier request with the same key. */
async function request(key, path) {
  const prev = app.controllers.get(key);
  if (prev) prev.abort();
  const ctl = new AbortController();
  app.controllers.set(key, ctl);
  try {
    return await getJSON(path, ctl.signal);
  } finally {
    if (app.controllers.get(key) === ctl) app.controllers.delete(key);
  }
}

const LAT_MAX = 85.05112878;
/** Current viewport as "west,south,east,north" (clamped to the Web Mercator world). */
function bboxParam() {
  const b = app.map.getBounds();
  let w = b.getWest();
  let e = b.getEast();
  if (e - w >= 360) {
    w = -180;
    e = 180;
  } else {
    // Bring the view centre into [-180, 180) and clamp (antimeridian views are cut).
    const shift = Math.floor((w + e) / 2 / 360 + 0.5) * 360;
    w = Math.max(-180, w - shift);
    e = Math.min(180, e - shift);
  }
  const s = Math.max(-LAT_MAX, b.getSouth());
  const n = Math.min(LAT_MAX, b.getNorth());
  const r = (v) => +v.toFixed(6);
  return `${r(w)},${r(s)},${r(e)},${r(n)}`;
}

/** The zoom of the 256-px tiles MapLibre currently requests (its zoom is 512-px based). */
function tileZoom() {
  return Math.max(0, Math.round(app.map.getZoom() + 1));
}

// ------------------------------------------------------------------ URL / history

function writeUrl(push) {
  const q = toQuery(app.state, app.meta);
  if (q === location.search) return;
  const url = location.pathname + q + location.hash;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

const replaceUrlSoon = debounce(() => writeUrl(false), 250);

window.addEventListener('popstate', () => {
  restoreFromUrl().catch((e) => showError(String(e.message || e)));
});

async function restoreFromUrl() {
  const name = datasetFromQuery(location.search) || app.state.dataset;
  if (name !== app.state.dataset) {
    await switchDataset(name, location.search, false);
    return;
  }
  const next = fromQuery(location.search, app.meta);
  if (!next.basemap && app.state.basemap) next.basemap = app.state.basemap;
  applyState(next);
}

/** Apply a whole new state (from the URL) without pushing history. */
function applyState(next) {
  const prevTheme = app.state.theme;
  app.state = next;
  syncControls();
  syncHistograms();
  if (next.theme !== prevTheme) applyTheme(app.map, next.theme);
  updateTiles();
  if (next.view) {
    const c = app.map.getCenter();
    const v = next.view;
    if (Math.abs(c.lng - v.lng) > 1e-4 || Math.abs(c.lat - v.lat) > 1e-4 || Math.abs(app.map.getZoom() - v.zoom) > 1e-3) {
      app.map.jumpTo({ center: [v.lng, v.lat], zoom: v.zoom });
    }
  }
  refreshData({});
}

// ------------------------------------------------------------------ state changes

/**
 * Apply a user change. `mutate(state)` edits the state in place.
 * live: a brush in progress — refresh the other histograms and the count only.
 * column: the column whose filter changed (its own histogram need not refresh).
 */
function change(mutate, { live = false, column = null } = {}) {
  const filtersBefore = apiFilters(app.state, app.meta).join('&');
  mutate(app.state);
  if (live) {
    scheduleLive(column);
    return;
  }
  const filtersChanged = liveDirty || apiFilters(app.state, app.meta).join('&') !== filtersBefore;
  liveDirty = false;
  cancelLive();
  syncControls();
  syncHistograms();
  updateTiles();
  if (filtersChanged) refreshData({ skip: column });
  else refreshLegend(); // rendering options only: histograms and count are unchanged
  writeUrl(true);
}

let liveTimer = null;
let liveColumn = null;
let liveLast = 0;
let liveDirty = false; // filters changed by a brush in progress (already in the state)
function scheduleLive(column) {
  liveColumn = column;
  liveDirty = true;
  if (liveTimer) return;
  const wait = Math.max(0, LIVE_THROTTLE_MS - (performance.now() - liveLast));
  liveTimer = setTimeout(() => {
    liveTimer = null;
    liveLast = performance.now();
    refreshData({ skip: liveColumn, live: true });
  }, wait);
}
function cancelLive() {
  clearTimeout(liveTimer);
  liveTimer = null;
}

function setFilter(column, filter, opts) {
  change(
    (s) => {
      if (filter) s.filters[column] = filter;
      else delete s.filters[column];
    },
    { ...opts, column },
  );
}

function toggleCategory(column, value) {
  const f = app.state.filters[column];
  const cur = new Set(f && f.type === 'in' ? f.values : []);
  if (cur.has(value)) cur.delete(value);
  else cur.add(value);
  setFilter(column, cur.size ? { type: 'in', values: [...cur] } : null, {});
}

// ------------------------------------------------------------------ tiles

function updateTiles() {
  const url = tileUrlTemplate(app.state, app.meta);
  if (url === app.tileUrl) return;
  app.tileUrl = url;
  app.tileUrlChanges++;
  app.tileUrlChangedAt = performance.now();
  const src = app.map && app.map.getSource('points');
  if (src) src.setTiles([url]);
}

function addPointsLayer() {
  const map = app.map;
  if (map.getSource('points')) return;
  const b = app.meta.bounds;
  const bounds = b && b.length === 4 && b.every(Number.isFinite) ? [Math.max(-180, b[0]), Math.max(-LAT_MAX, b[1]), Math.min(180, b[2]), Math.min(LAT_MAX, b[3])] : undefined;
  app.tileUrl = tileUrlTemplate(app.state, app.meta);
  map.addSource('points', { type: 'raster', tiles: [app.tileUrl], tileSize: 512, bounds, attribution: 'Pointillist' });
  map.addLayer({ id: 'points', type: 'raster', source: 'points', paint: { 'raster-fade-duration': 0 } });
  if (!app.usingOnlineBasemap) {
    // Faint country borders above the points keep the geography readable.
    map.addLayer({
      id: 'country-line-top',
      type: 'line',
      source: 'countries',
      paint: { 'line-color': THEME_COLORS[app.state.theme].borderTop, 'line-width': 0.5 },
    });
  }
  if (!map.getSource('hover')) {
    map.addSource('hover', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({
      id: 'hover',
      type: 'circle',
      source: 'hover',
      paint: { 'circle-radius': 6, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#7fd4ff', 'circle-stroke-width': 2 },
    });
  }
}

function removePointsLayer() {
  const map = app.map;
  for (const id of ['hover', 'country-line-top', 'points']) if (map.getLayer(id)) map.removeLayer(id);
  for (const id of ['hover', 'points']) if (map.getSource(id)) map.removeSource(id);
}

// ------------------------------------------------------------------ map

function createMap() {
  const s = app.state;
  const opts = {
    container: 'map',
    style: app.basemapUrl || offlineStyle(s.theme),
    attributionControl: { compact: true },
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    maxPitch: 0,
    renderWorldCopies: true,
    fadeDuration: 0,
  };
  app.usingOnlineBasemap = !!app.basemapUrl;
  if (s.view) Object.assign(opts, { center: [s.view.lng, s.view.lat], zoom: s.view.zoom });
  else Object.assign(opts, { bounds: fitBoundsOf(app.meta), fitBoundsOptions: { padding: 24 } });
  const map = new maplibregl.Map(opts);
  app.map = map;
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ maxWidth: 110 }), 'bottom-left');

  let styleLoaded = false;
  map.on('style.load', () => {
    styleLoaded = true;
    if (!app.usingOnlineBasemap) {
      loadCountries()
        .then((geo) => {
          const src = map.getSource('countries');
          if (src) src.setData(geo);
        })
        .catch((e) => showError(`Basemap: ${e.message || e}`));
    }
    addPointsLayer();
  });

  map.on('error', (e) => {
    const msg = (e.error && e.error.message) || 'map error';
    if (e.sourceId === 'points' || (e.tile && e.source && e.source.id === 'points')) {
      app.tileErrors++;
      showError(`Tile error: ${msg}`);
    } else if (!styleLoaded && app.usingOnlineBasemap) {
      // The online basemap is unreachable: fall back to the offline outlines.
      app.usingOnlineBasemap = false;
      map.setStyle(offlineStyle(app.state.theme), { diff: false });
      showError('Online basemap unavailable; using the offline outlines.');
    } else {
      showError(msg);
    }
  });

  map.on('data', (e) => {
    if (e.sourceId === 'points' && e.dataType === 'source' && e.tile) app.tileLoads++;
  });
  map.on('dataloading', updateBusy);
  map.on('idle', updateBusy);

  map.on('movestart', hideTooltip);
  map.on('moveend', () => {
    recordView();
    replaceUrlSoon();
    onMoveEnd();
  });
  map.on('mousemove', (e) => onHover(e));
  map.getCanvas().addEventListener('mouseleave', hideTooltip);
  return new Promise((resolve) => map.once('load', resolve));
}

let moveTimer = null;
function onMoveEnd() {
  clearTimeout(moveTimer);
  moveTimer = setTimeout(() => {
    moveTimer = null;
    refreshData({});
  }, MOVE_DEBOUNCE_MS);
}

function recordView() {
  const c = app.map.getCenter().wrap();
  app.state.view = { lng: c.lng, lat: c.lat, zoom: app.map.getZoom() };
}

function fitBoundsOf(meta) {
  const b = meta && meta.bounds;
  if (!b || b.length !== 4 || !b.every(Number.isFinite) || b[2] <= b[0] || b[3] <= b[1]) return [-170, -60, 170, 75];
  // Initial framing: skip the polar regions Web Mercator inflates, when that
  // still leaves a sensible box.
  const s = Math.max(-58, b[1]);
  const n = Math.min(78, b[3]);
  const [s2, n2] = n - s > 1 ? [s, n] : [Math.max(-84, b[1]), Math.min(84, b[3])];
  return [Math.max(-180, b[0]), s2, Math.min(180, b[2]), n2];
}

// ------------------------------------------------------------------ data refresh

/** Refresh histograms (all but `skip`), the count and (unless live) the legend. */
function refreshData({ skip = null, live = false }) {
  if (!app.map || !app.meta) return;
  const bbox = bboxParam();
  const brush = brushParam(skip);
  for (const [col, h] of app.hists) {
    if (col === skip) continue;
    refreshHistogram(col, h, bbox, brush);
  }
  refreshCount(bbox, brush);
  if (!live) refreshLegend();
  updateBusy();
}

/**
 * The `brush` hint while the range filter on `column` is brushed: its
 * histogram rounds the bounds to this step, so the server can answer every
 * bound of the drag from one index per linked histogram.
 */
function brushParam(column) {
  const f = column && app.state.filters[column];
  const h = column && app.hists.get(column);
  if (!h || h.col.kind === 'categorical' || (f && f.type !== 'range')) return undefined;
  const [lo, hi] = h.domain();
  const s = axisStep(h.col.kind, lo, hi);
  return s ? `${column}:${s.text}` : undefined;
}

let warmedBrush = null;
/**
 * Falcon's prefetch: when the pointer enters a range histogram, ask the
 * linked panels once with the brush hint, so the server builds their brush
 * indexes before the drag starts and even its first move reads them. The
 * answers equal those shown, so they are dropped.
 */
function prewarmBrush(column) {
  if (!app.map || !app.meta) return;
  const brush = brushParam(column);
  if (!brush) return;
  const bbox = bboxParam();
  const key = `${brush}|${bbox}|${apiFilters(app.state, app.meta).join('&')}`;
  if (key === warmedBrush) return;
  warmedBrush = key;
  for (const col of app.hists.keys()) {
    if (col === column) continue;
    const bins = columnOf(app.meta, col).kind === 'categorical' ? undefined : HIST_BINS;
    getJSON(histogramPath(app.state, app.meta, col, { bins, bbox, brush })).catch(() => {});
  }
  getJSON(countPath(app.state, app.meta, bbox, brush)).catch(() => {});
}

function refreshHistogram(col, h, bbox, brush) {
  const colMeta = columnOf(app.meta, col);
  const bins = colMeta.kind === 'categorical' ? undefined : HIST_BINS;
  h.setLoading(true);
  request(`hist:${col}`, histogramPath(app.state, app.meta, col, { bins, bbox, brush }))
    .then((data) => {
      h.setError(null);
      h.setData(data);
      h.setLoading(false);
    })
    .catch((e) => {
      if (isAbort(e)) return;
      h.setLoading(false);
      h.setError(e.message);
    });
}

function refreshCount(bbox, brush) {
  const el = $('count-selected');
  el.dataset.loading = 'true';
  request('count', countPath(app.state, app.meta, bbox, brush))
    .then((d) => {
      app.lastCount = d;
      el.textContent = fmtInt(d.count);
      el.dataset.count = String(d.count);
      el.dataset.loading = 'false';
      const total = d.total ?? app.meta.rows;
      $('count-total').textContent = `of ${fmtInt(total)} total · ${total ? ((100 * d.count) / total).toFixed(d.count / total < 0.01 ? 2 : 1) : 0}%`;
      $('count-bar-fill').style.width = `${total ? Math.min(100, (100 * d.count) / total) : 0}%`;
    })
    .catch((e) => {
      if (isAbort(e)) return;
      el.dataset.loading = 'false';
      showError(`Count: ${e.message}`);
    });
}

function refreshLegend() {
  request('legend', legendPath(app.state, app.meta, tileZoom()))
    .then((d) => {
      app.legend = d;
      renderLegend(d);
    })
    .catch((e) => {
      if (isAbort(e)) return;
      $('legend').hidden = true;
      showError(`Legend: ${e.message}`);
    });
}

/** Tiles outstanding this long show the map's progress overlay (shorter
 * waits would only flicker). */
const MAP_PROGRESS_DELAY_MS = 300;
let mapProgressTimer = null;

function updateBusy() {
  const busy = pendingRequests() > 0 || (app.map && !app.map.areTilesLoaded());
  $('busy').hidden = !busy;
  document.body.dataset.busy = busy ? 'true' : 'false';
  // A slow first answer (a new query over a large dataset) keeps the old
  // tiles on screen; the overlay says that new ones are being computed.
  const tilesPending = app.map && !app.map.areTilesLoaded();
  if (!tilesPending) {
    clearTimeout(mapProgressTimer);
    mapProgressTimer = null;
    $('map-progress').hidden = true;
  } else if (mapProgressTimer === null && $('map-progress').hidden) {
    mapProgressTimer = setTimeout(() => {
      mapProgressTimer = null;
      if (app.map && !app.map.areTilesLoaded()) $('map-progress').hidden = false;
    }, MAP_PROGRESS_DELAY_MS);
  }
}
onPendingChange(updateBusy);

// ------------------------------------------------------------------ legend

function aggTitle(agg) {
  const { kind, column } = parseAgg(agg);
  if (kind === 'count') return 'count';
  if (kind === 'count_cat') return `count by ${column}`;
  return `${kind} of ${column}`;
}

function renderLegend(d) {
  const box = $('legend');
  box.replaceChildren();
  const title = document.createElement('div');
  title.className = 'legend-title';
  title.textContent = aggTitle(app.state.agg);
  box.append(title);
  if (d.kind === 'categorical') {
    const list = document.createElement('div');
    list.className = 'legend-cats';
    const f = app.state.filters[d.column];
    const sel = f && f.type === 'in' ? new Set(f.values) : null;
    for (const c of d.categories) {
      const row = document.createElement('button');
      row.type = 'button';
      row.className = 'legend-cat' + (sel && !sel.has(c.value) ? ' dim' : '');
      row.dataset.value = c.value;
      row.dataset.testid = 'legend-category';
      row.title = `Toggle ${c.value}`;
      const sw = document.createElement('span');
      sw.className = 'legend-swatch';
      sw.style.background = c.color;
      const lab = document.createElement('span');
      lab.textContent = c.value;
      row.append(sw, lab);
      row.addEventListener('click', () => toggleCategory(d.column, c.value));
      list.append(row);
    }
    box.append(list);
    const h = app.hists.get(d.column);
    if (h && h.setColors) h.setColors(new Map(d.categories.map((c) => [c.value, c.color])));
  } else {
    const colors = d.colors || [];
    const bar = document.createElement('div');
    bar.className = 'legend-bar';
    const n = colors.length;
    const stops = [];
    const step = Math.max(1, Math.floor(n / 32));
    for (let i = 0; i < n; i += step) stops.push(`${colors[i]} ${((100 * i) / Math.max(1, n - 1)).toFixed(1)}%`);
    if (n) stops.push(`${colors[n - 1]} 100%`);
    bar.style.background = n ? `linear-gradient(to right, ${stops.join(', ')})` : 'transparent';
    const labels = document.createElement('div');
    labels.className = 'legend-labels';
    const { kind, column } = parseAgg(app.state.agg);
    const col = column ? columnOf(app.meta, column) : null;
    const fmt = (v) => (v === undefined || v === null ? '' : col && col.kind === 'temporal' && kind !== 'count' ? fmtDateTime(v) : fmtNum(v));
    const lo = document.createElement('span');
    lo.textContent = fmt(d.min);
    const hi = document.createElement('span');
    hi.textContent = fmt(d.max);
    labels.append(lo, hi);
    const note = document.createElement('div');
    note.className = 'legend-note';
    note.textContent = `${HOW_HELP[d.how || app.state.how] || d.how || ''} · z${tileZoom()}`;
    box.append(bar, labels, note);
    for (const h of app.hists.values()) if (h.setColors) h.setColors(null);
  }
  box.hidden = false;
}

// ------------------------------------------------------------------ tooltip

let hoverCtl = null;
let hoverLast = 0;
let hoverTimer = null;
let hoverEvent = null;

function onHover(e) {
  hoverEvent = e;
  if (hoverTimer) return;
  const wait = Math.max(0, HOVER_THROTTLE_MS - (performance.now() - hoverLast));
  hoverTimer = setTimeout(() => {
    hoverTimer = null;
    hoverLast = performance.now();
    doHover(hoverEvent);
  }, wait);
}

function doHover(e) {
  const map = app.map;
  if (!e || map.isMoving() || (e.originalEvent && e.originalEvent.buttons)) return;
  if (hoverCtl) hoverCtl.abort();
  hoverCtl = new AbortController();
  const ctl = hoverCtl;
  const zf = map.getZoom() + 1; // 256-px tile zoom (fractional)
  const z = Math.max(0, Math.round(zf));
  const radiusPx = Math.max(1, Math.round(HOVER_RADIUS_PX * 2 ** (z - zf)));
  const ll = e.lngLat.wrap();
  const path = pointsPath(app.state, app.meta, { lon: ll.lng, lat: ll.lat, z, radiusPx, limit: HOVER_LIMIT });
  const { clientX, clientY } = e.originalEvent;
  getJSON(path, ctl.signal)
    .then((d) => {
      if (ctl !== hoverCtl) return;
      showTooltip(d.points || [], clientX, clientY);
    })
    .catch((err) => {
      if (!isAbort(err)) hideTooltip();
    });
}

function fmtAttr(name, v) {
  const col = columnOf(app.meta, name);
  if (v === null || v === undefined) return '—';
  // Times come as RFC 3339 strings (older servers: epoch milliseconds).
  if (col && col.kind === 'temporal') return fmtDateTime(typeof v === 'number' ? v : Date.parse(v));
  if (typeof v === 'number') return fmtNum(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function showTooltip(points, x, y) {
  const tip = $('tooltip');
  const src = app.map.getSource('hover');
  if (!points.length) {
    hideTooltip();
    return;
  }
  const p = points[0];
  tip.replaceChildren();
  const head = document.createElement('div');
  head.className = 'tip-head';
  head.textContent = `${p.lat.toFixed(4)}°, ${p.lon.toFixed(4)}°`;
  tip.append(head);
  const table = document.createElement('table');
  const names = [...app.meta.columns.map((c) => c.name), ...Object.keys(p.attributes || {}).filter((k) => !columnOf(app.meta, k))];
  for (const name of names) {
    if (!(name in (p.attributes || {}))) continue;
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = name;
    const td = document.createElement('td');
    td.textContent = fmtAttr(name, p.attributes[name]);
    if (app.state.filters[name]) tr.className = 'filtered';
    tr.append(th, td);
    table.append(tr);
  }
  tip.append(table);
  if (points.length > 1) {
    const more = document.createElement('div');
    more.className = 'tip-more';
    more.textContent = `+${points.length - 1}${points.length >= HOVER_LIMIT ? '' : ''} more nearby`;
    tip.append(more);
  }
  tip.hidden = false;
  const pad = 14;
  const r = tip.getBoundingClientRect();
  let left = x + pad;
  let top = y + pad;
  if (left + r.width > window.innerWidth - 4) left = x - pad - r.width;
  if (top + r.height > window.innerHeight - 4) top = y - pad - r.height;
  tip.style.left = `${Math.max(4, left)}px`;
  tip.style.top = `${Math.max(4, top)}px`;
  if (src) src.setData({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: [p.lon, p.lat] } }] });
}

function hideTooltip() {
  if (hoverCtl) hoverCtl.abort();
  hoverCtl = null;
  clearTimeout(hoverTimer);
  hoverTimer = null;
  $('tooltip').hidden = true;
  const src = app.map && app.map.getSource('hover');
  if (src) src.setData({ type: 'FeatureCollection', features: [] });
}

// ------------------------------------------------------------------ controls

function option(value, label) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

function buildControls() {
  const ds = $('dataset');
  ds.replaceChildren(...app.datasets.map((d) => option(d.name, `${d.name}${d.rows ? ` · ${fmtRows(d.rows)}` : ''}`)));
  ds.onchange = () => {
    switchDataset(ds.value, null, true).catch((e) => showError(String(e.message || e)));
  };

  const how = $('how');
  how.replaceChildren(
    ...HOWS.map((h) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('role', 'radio');
      b.dataset.value = h;
      b.dataset.testid = `how-${h}`;
      b.textContent = HOW_LABEL[h];
      b.title = HOW_HELP[h];
      b.onclick = () => change((s) => (s.how = h));
      return b;
    }),
  );

  const cmap = $('cmap');
  cmap.replaceChildren(...CMAPS.map((c) => option(c, c)));
  cmap.onchange = () => change((s) => (s.cmap = cmap.value));

  const spread = $('spread');
  spread.oninput = () => ($('spread-out').textContent = `${spread.value} px`);
  spread.onchange = () => change((s) => (s.spread = Number(spread.value)));

  $('agg').onchange = () => change((s) => (s.agg = $('agg').value));
  $('clear-all').onclick = () => change((s) => (s.filters = {}));
  $('fit').onclick = () => app.map.fitBounds(fitBoundsOf(app.meta), { padding: 24 });
  $('theme').onclick = () => {
    change((s) => (s.theme = s.theme === 'dark' ? 'light' : 'dark'));
    applyTheme(app.map, app.state.theme);
  };
  $('add-hist').onchange = () => {
    const col = $('add-hist').value;
    if (!col) return;
    change((s) => (s.hists = [...histColumns(s, app.meta), col]));
  };
}

function fmtRows(n) {
  return n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M rows` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k rows` : `${n} rows`;
}

function buildAggOptions() {
  const sel = $('agg');
  sel.replaceChildren(option('count', 'count of points'));
  const cats = app.meta.columns.filter((c) => c.kind === 'categorical');
  const nums = app.meta.columns.filter((c) => c.kind === 'numeric');
  const group = (label, items) => {
    if (!items.length) return;
    const g = document.createElement('optgroup');
    g.label = label;
    g.append(...items);
    sel.append(g);
  };
  group('count by category', cats.map((c) => option(`count_cat:${c.name}`, `count by ${c.name}`)));
  group('mean', nums.map((c) => option(`mean:${c.name}`, `mean of ${c.name}`)));
  group('max', nums.map((c) => option(`max:${c.name}`, `max of ${c.name}`)));
  // An agg from the URL that the menu lacks (e.g. mean of a temporal column).
  if (![...sel.options].some((o) => o.value === app.state.agg) && validAgg(app.state.agg, app.meta)) {
    sel.append(option(app.state.agg, aggTitle(app.state.agg)));
  }
}

function syncControls() {
  const s = app.state;
  $('dataset').value = s.dataset;
  if (![...$('agg').options].some((o) => o.value === s.agg)) buildAggOptions();
  $('agg').value = s.agg;
  for (const b of $('how').children) {
    const on = b.dataset.value === s.how;
    b.setAttribute('aria-checked', on ? 'true' : 'false');
    b.classList.toggle('on', on);
  }
  $('cmap').value = s.cmap;
  const categorical = parseAgg(s.agg).kind === 'count_cat';
  $('cmap').disabled = categorical;
  $('cmap').title = categorical ? 'Colours come from the categories' : '';
  const prev = CMAP_PREVIEW[s.cmap] || CMAP_PREVIEW.fire;
  $('cmap-swatch').style.background = `linear-gradient(to right, ${prev.join(', ')})`;
  $('cmap-swatch').classList.toggle('disabled', categorical);
  $('spread').value = String(s.spread);
  $('spread-out').textContent = `${s.spread} px`;
  $('theme').textContent = s.theme === 'dark' ? 'light basemap' : 'dark basemap';
  $('theme').hidden = app.usingOnlineBasemap;
  document.documentElement.dataset.theme = s.theme;
  const nf = Object.keys(s.filters).length;
  $('clear-all').hidden = nf === 0;
  $('filter-count').hidden = nf === 0;
  $('filter-count').textContent = `${nf} active`;
}

// ------------------------------------------------------------------ histograms

const histHandlers = {
  onFilter: (column, filter, { live }) => setFilter(column, filter, { live }),
  onBrushHover: (column) => prewarmBrush(column),
  onRemove: (column) =>
    change(
      (s) => {
        s.hists = histColumns(s, app.meta).filter((c) => c !== column);
        delete s.filters[column];
      },
      { column },
    ),
};

/** Make the histogram widgets match the state (add/remove/reorder, filters). */
function syncHistograms() {
  const cols = histColumns(app.state, app.meta);
  const box = $('histograms');
  const added = [];
  for (const [col, h] of app.hists) {
    if (!cols.includes(col)) {
      h.destroy();
      app.hists.delete(col);
      const ctl = app.controllers.get(`hist:${col}`);
      if (ctl) ctl.abort();
    }
  }
  cols.forEach((col, i) => {
    let h = app.hists.get(col);
    if (!h) {
      h = createHistogram(columnOf(app.meta, col), histHandlers);
      app.hists.set(col, h);
      added.push(col);
    }
    if (box.children[i] !== h.root) box.insertBefore(h.root, box.children[i] || null);
    h.setFilter(app.state.filters[col] || null);
  });
  // "add histogram" menu
  const add = $('add-hist');
  const rest = app.meta.columns.filter((c) => !cols.includes(c.name));
  add.replaceChildren(option('', rest.length ? '+ add histogram…' : 'all columns shown'), ...rest.map((c) => option(c.name, `${c.name} (${c.kind})`)));
  add.value = '';
  add.disabled = rest.length === 0;
  if (added.length && app.map && app.map.loaded()) {
    const bbox = bboxParam();
    for (const col of added) refreshHistogram(col, app.hists.get(col), bbox);
    if (app.legend) renderLegend(app.legend);
  }
}

// ------------------------------------------------------------------ datasets

async function datasetMeta(name) {
  const fromList = app.datasets.find((d) => d.name === name);
  if (fromList && Array.isArray(fromList.columns)) return fromList;
  return getDataset(name);
}

async function switchDataset(name, search, push) {
  const meta = await datasetMeta(name);
  const keep = { theme: app.state.theme, basemap: app.state.basemap };
  app.meta = meta;
  app.state = search ? fromQuery(search, meta) : { ...initialState(meta), ...keep };
  app.state.dataset = meta.name;
  for (const h of app.hists.values()) h.destroy();
  app.hists.clear();
  app.legend = null;
  buildAggOptions();
  syncControls();
  syncHistograms();
  removePointsLayer();
  addPointsLayer();
  const v = app.state.view;
  if (v) app.map.jumpTo({ center: [v.lng, v.lat], zoom: v.zoom });
  else app.map.fitBounds(fitBoundsOf(meta), { padding: 24, animate: false });
  recordView();
  refreshData({});
  writeUrl(push);
}

// ------------------------------------------------------------------ boot

async function main() {
  const params = new URLSearchParams(location.search);
  let list;
  try {
    list = await listDatasets();
  } catch (e) {
    fatal(`Cannot reach the Pointillist server: ${e.message || e}`);
    return;
  }
  app.datasets = list.datasets || [];
  app.basemapUrl = params.get('basemap') || list.basemap || null;
  if (!app.datasets.length) {
    fatal('The server has no datasets loaded.');
    return;
  }
  let name = datasetFromQuery(location.search);
  if (!app.datasets.some((d) => d.name === name)) name = app.datasets[0].name;
  app.meta = await datasetMeta(name);
  app.state = fromQuery(location.search, app.meta);
  app.state.dataset = app.meta.name;
  if (params.get('basemap')) app.state.basemap = params.get('basemap');

  buildControls();
  buildAggOptions();
  syncControls();
  syncHistograms();
  await createMap();
  if (!app.state.view) {
    // Snap the fitted view to the URL's precision so that reloading the link
    // reproduces exactly this view.
    const c = app.map.getCenter();
    app.map.jumpTo({ center: [+c.lng.toFixed(4), +c.lat.toFixed(4)], zoom: +app.map.getZoom().toFixed(2) });
  }
  recordView();
  writeUrl(false);
  refreshData({});
  document.body.dataset.ready = 'true';
}

function fatal(msg) {
  const box = $('histograms');
  box.replaceChildren();
  const p = document.createElement('p');
  p.className = 'fatal';
  p.textContent = msg;
  box.append(p);
  showError(msg);
  document.body.dataset.ready = 'error';
}

window.__pointillist.ready = main();
