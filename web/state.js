// Explorer state: the model, its (de)serialisation to the page URL, and the
// filter syntax shared with the HTTP API.
//
// Page URL (query string), e.g.
//   /?dataset=towers&agg=count_cat:radio&how=log&cmap=fire&spread=1
//     &filter=radio:in:LTE,NR&filter=range:100..5000&filter=created:2015-01-01..2019-06-30
//     &hist=radio,range,created&map=3.25/40.7128/-74.006
// Only non-default values are written (dataset and map always are).

export const AGG_KINDS = ['count', 'count_cat', 'mean', 'max'];
export const HOWS = ['eq_hist', 'log', 'cbrt', 'linear'];
export const CMAPS = ['fire', 'bmy', 'bgy', 'kbc', 'kb', 'gray', 'dimgray', 'viridis', 'inferno', 'magma', 'plasma', 'cividis'];
export const THEMES = ['dark', 'light'];
export const DEFAULTS = Object.freeze({ agg: 'count', how: 'eq_hist', cmap: 'fire', spread: 0, theme: 'dark' });

/** A fresh state for `meta` (a dataset description from GET /datasets). */
export function initialState(meta) {
  return {
    dataset: meta ? meta.name : null,
    ...DEFAULTS,
    filters: {}, // column -> {type:'range', lo, hi} | {type:'in', values:[...]}
    hists: null, // null = the dataset's default_histograms
    view: null, // {lng, lat, zoom}; null = fit the dataset bounds
  };
}

export function cloneState(s) {
  return {
    ...s,
    filters: Object.fromEntries(
      Object.entries(s.filters).map(([k, f]) => [k, f.type === 'in' ? { type: 'in', values: [...f.values] } : { ...f }]),
    ),
    hists: s.hists ? [...s.hists] : null,
    view: s.view ? { ...s.view } : null,
  };
}

export const columnOf = (meta, name) => (meta ? meta.columns.find((c) => c.name === name) : undefined);

/** The histogram columns shown for `state` (defaults, plus any filtered column). */
export function histColumns(state, meta) {
  if (!meta) return [];
  let cols = state.hists ?? meta.default_histograms ?? defaultHistograms(meta);
  cols = cols.filter((c) => columnOf(meta, c));
  for (const c of Object.keys(state.filters)) if (!cols.includes(c) && columnOf(meta, c)) cols = [...cols, c];
  return cols;
}

function defaultHistograms(meta) {
  const cats = meta.columns.filter((c) => c.kind === 'categorical').map((c) => c.name);
  const others = meta.columns.filter((c) => c.kind !== 'categorical').map((c) => c.name);
  return [...cats, ...others.slice(0, 3)];
}

/** Parse an agg string ("count", "count_cat:radio", "mean:range") into {kind, column}. */
export function parseAgg(agg) {
  const i = agg.indexOf(':');
  return i < 0 ? { kind: agg, column: null } : { kind: agg.slice(0, i), column: agg.slice(i + 1) };
}

export function validAgg(agg, meta) {
  const { kind, column } = parseAgg(agg);
  if (kind === 'count') return column === null;
  const col = columnOf(meta, column);
  if (!col) return false;
  if (kind === 'count_cat') return col.kind === 'categorical';
  if (kind === 'mean' || kind === 'max') return col.kind === 'numeric' || col.kind === 'temporal';
  return false;
}

// ---------------------------------------------------------------- values

/** Temporal values: epoch ms <-> ISO text (a bare date when at midnight UTC). */
export function isoOf(ms) {
  const s = new Date(ms).toISOString();
  if (s.endsWith('T00:00:00.000Z')) return s.slice(0, 10);
  return s.endsWith('.000Z') ? s.slice(0, 19) + 'Z' : s;
}

export function parseTemporal(text) {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? text + 'T00:00:00Z' : text);
  return Number.isNaN(t) ? NaN : t;
}

/** Shortest decimal text for a number (no exponent surprises for API parsers). */
export function numText(v) {
  if (Number.isInteger(v)) return String(v);
  let s = String(+v.toPrecision(12));
  if (/e/i.test(s)) s = v.toFixed(12).replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

// ---------------------------------------------------------------- filters

/**
 * Filter -> "COL:LO..HI" / "COL:in:A,B" text.
 * mode 'api': temporal bounds as epoch ms; mode 'url': temporal as ISO dates.
 * Category values are percent-encoded inside the list (so a ',' in a value
 * cannot split it); the query-string encoder encodes the whole text again.
 */
export function filterText(column, f, colMeta, mode = 'api') {
  if (f.type === 'in') return `${column}:in:${f.values.map((v) => encodeURIComponent(v)).join(',')}`;
  const temporal = colMeta && colMeta.kind === 'temporal';
  const fmt = (v) => (temporal && mode === 'url' ? isoOf(v) : numText(v));
  return `${column}:${fmt(f.lo)}..${fmt(f.hi)}`;
}

/** Parse "COL:LO..HI" / "COL:in:A,B" against the dataset meta; null if invalid. */
export function parseFilter(text, meta) {
  const i = text.indexOf(':');
  if (i <= 0) return null;
  const column = text.slice(0, i);
  const rest = text.slice(i + 1);
  const col = columnOf(meta, column);
  if (!col) return null;
  if (rest.startsWith('in:')) {
    if (col.kind !== 'categorical') return null;
    const values = rest
      .slice(3)
      .split(',')
      .filter((v) => v !== '')
      .map((v) => {
        try {
          return decodeURIComponent(v);
        } catch {
          return v;
        }
      });
    return values.length ? { column, filter: { type: 'in', values: [...new Set(values)] } } : null;
  }
  const m = rest.split('..');
  if (m.length !== 2 || col.kind === 'categorical') return null;
  const parse = col.kind === 'temporal' ? parseTemporal : Number;
  let lo = parse(m[0]);
  let hi = parse(m[1]);
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || m[0] === '' || m[1] === '') return null;
  if (lo > hi) [lo, hi] = [hi, lo];
  return { column, filter: { type: 'range', lo, hi } };
}

/** All filters as API parameter values (sorted by column, for stable URLs). */
export function apiFilters(state, meta) {
  return Object.keys(state.filters)
    .sort()
    .map((c) => filterText(c, state.filters[c], columnOf(meta, c), 'api'));
}

// ---------------------------------------------------------------- page URL

/** Serialise the state to a query string ("?..."). */
export function toQuery(state, meta) {
  const p = new URLSearchParams();
  if (state.dataset) p.set('dataset', state.dataset);
  for (const k of ['agg', 'how', 'cmap', 'spread', 'theme']) if (state[k] !== DEFAULTS[k]) p.set(k, String(state[k]));
  for (const c of Object.keys(state.filters).sort()) {
    p.append('filter', filterText(c, state.filters[c], columnOf(meta, c), 'url'));
  }
  if (state.hists) p.set('hist', state.hists.join(','));
  if (state.view) {
    const { lng, lat, zoom } = state.view;
    p.set('map', `${zoom.toFixed(2)}/${lat.toFixed(4)}/${lng.toFixed(4)}`);
  }
  if (state.basemap) p.set('basemap', state.basemap);
  // Keep ':' ',' '/' readable in shared links; they are legal in a query string.
  return '?' + p.toString().replace(/%3A/gi, ':').replace(/%2C/gi, ',').replace(/%2F/gi, '/');
}

/** The dataset name requested by a query string (or null). */
export function datasetFromQuery(search) {
  return new URLSearchParams(search).get('dataset');
}

/** Parse a query string into a full state for the dataset `meta`. */
export function fromQuery(search, meta) {
  const p = new URLSearchParams(search);
  const s = initialState(meta);
  const agg = p.get('agg');
  if (agg && validAgg(agg, meta)) s.agg = agg;
  const how = p.get('how');
  if (HOWS.includes(how)) s.how = how;
  const cmap = p.get('cmap');
  if (CMAPS.includes(cmap)) s.cmap = cmap;
  const spread = Number(p.get('spread'));
  if (Number.isInteger(spread) && spread >= 0 && spread <= 3) s.spread = spread;
  const theme = p.get('theme');
  if (THEMES.includes(theme)) s.theme = theme;
  for (const f of p.getAll('filter')) {
    const parsed = parseFilter(f, meta);
    if (parsed) s.filters[parsed.column] = parsed.filter;
  }
  const hist = p.get('hist');
  if (hist !== null) s.hists = hist.split(',').filter((c) => columnOf(meta, c));
  const m = (p.get('map') || '').split('/').map(Number);
  if (m.length === 3 && m.every(Number.isFinite)) s.view = { zoom: m[0], lat: m[1], lng: m[2] };
  const basemap = p.get('basemap');
  if (basemap) s.basemap = basemap;
  return s;
}
