// Browser tests of the Pointillist explorer (GET /), in headless Chromium.
//
//   cd tests/browser && npm ci && POINTILLIST_URL=http://127.0.0.1:8089 node --test
//
// The server must already be running at POINTILLIST_URL (this file does not
// start it). Environment:
//   POINTILLIST_URL      base URL of the server (default http://127.0.0.1:8089)
//   POINTILLIST_DATASET  dataset to open (default: the page's default, the first one)
//   SCREENSHOT_DIR       where screenshots and latency.json go (default test-output/screenshots)
//   CHROMIUM_PATH        Chromium binary (default /usr/bin/chromium, or chromium-browser / google-chrome)
//   BROWSER_TIMEOUT_MS   timeout of each wait (default 30000)
//   LATENCY_BRUSHES      number of brushes timed (default 5)
//
// The tests run in order on one page: each builds on the state the previous
// one left (filters, history), like a person exploring.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.POINTILLIST_URL || 'http://127.0.0.1:8089').replace(/\/+$/, '');
const DATASET = process.env.POINTILLIST_DATASET || '';
const SHOTS = path.resolve(process.env.SCREENSHOT_DIR || 'test-output/screenshots');
const T = Number(process.env.BROWSER_TIMEOUT_MS || 30000);
const N_BRUSHES = Number(process.env.LATENCY_BRUSHES || 5);
const VIEWPORT = { width: 1400, height: 900 };

function chromiumPath() {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  const found = candidates.find((p) => p && fs.existsSync(p));
  if (!found) throw new Error('No Chromium found: install it (apt-get install chromium) or set CHROMIUM_PATH');
  return found;
}

let browser;
let page;
const consoleErrors = [];
/** Every tile request the page made: {url, query, start, end, status, failed}. */
const tiles = [];
const ctx = {}; // facts shared between the ordered tests

const isTile = (url) => new URL(url).pathname.startsWith('/tiles/');
const queryOf = (url) => url.slice(url.indexOf('?') + 1);

function attach(p) {
  p.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`console.error: ${m.text()}`);
  });
  p.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  p.on('request', (r) => {
    if (isTile(r.url())) tiles.push({ url: r.url(), query: queryOf(r.url()), start: Date.now(), end: null, status: null, failed: null, req: r });
  });
  const finish = (r, failed) => {
    const t = tiles.find((x) => x.req === r);
    if (!t) return;
    t.end = Date.now();
    t.failed = failed;
  };
  p.on('requestfinished', async (r) => {
    finish(r, null);
    const t = tiles.find((x) => x.req === r);
    if (t) {
      const res = await r.response().catch(() => null);
      t.status = res ? res.status() : null;
    }
  });
  p.on('requestfailed', (r) => finish(r, r.failure() ? r.failure().errorText : 'failed'));
}

async function withTimeout(promise, what, ms = T) {
  let timer;
  const t = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Map idle, tiles loaded, no API request in flight (the page's own hook). */
const waitIdle = (p = page) => withTimeout(p.evaluate(() => window.__pointillist.idle()), 'page idle');

async function waitReady(p = page) {
  await p.waitForFunction(() => document.body.dataset.ready === 'true' && window.__pointillist && window.__pointillist.map, null, { timeout: T });
  await waitIdle(p);
}

/** Messages the page showed in its error toast (API errors, tile errors). */
const pageErrors = (p = page) => p.evaluate(() => window.__pointillist.errors);
const tileUrl = (p = page) => p.evaluate(() => window.__pointillist.tileUrl());
const state = (p = page) => p.evaluate(() => window.__pointillist.state);

async function waitTileUrlChange(beforeUrl) {
  await page.waitForFunction((b) => window.__pointillist.tileUrl() !== b, beforeUrl, { timeout: T });
  return tileUrl();
}

/** Wait until tiles with this query were requested, all answered, and the map has them all. */
async function waitTilesDone(query) {
  const deadline = Date.now() + T;
  for (;;) {
    const reqs = tiles.filter((t) => t.query === query);
    if (reqs.length && reqs.every((t) => t.end !== null)) {
      const loaded = await page.evaluate(() => {
        const m = window.__pointillist.map;
        return m.loaded() && m.areTilesLoaded();
      });
      if (loaded) return reqs;
    }
    if (Date.now() > deadline) throw new Error(`tiles for ${query} not done: ${reqs.length} requested, ${reqs.filter((t) => t.end).length} finished`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function countSelected(p = page) {
  const v = await p.getAttribute('[data-testid=count-selected]', 'data-count');
  return v === null ? null : Number(v);
}

const card = (col) => `[data-testid="histogram-${col}"]`;
const cardAttr = (col, attr) => page.getAttribute(card(col), attr);

async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name) });
}

/** Decode PNG bytes / a same-origin URL in the page; count non-transparent pixels. */
function pngStats(src) {
  return page.evaluate(async (s) => {
    const img = new Image();
    img.src = s;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let opaque = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) opaque++;
    return { width: c.width, height: c.height, opaque };
  }, src);
}

/** Render the map with and without the tile layer; where do they differ? */
async function tileLayerFootprint() {
  const canvas = page.locator('#map canvas.maplibregl-canvas');
  const setVisible = (v) =>
    page.evaluate(
      (vis) =>
        new Promise((resolve) => {
          const m = window.__pointillist.map;
          m.once('idle', resolve);
          m.setLayoutProperty('points', 'visibility', vis);
          m.triggerRepaint();
        }),
      v,
    );
  const withPoints = (await canvas.screenshot()).toString('base64');
  await withTimeout(setVisible('none'), 'hide tile layer');
  const without = (await canvas.screenshot()).toString('base64');
  await withTimeout(setVisible('visible'), 'show tile layer');
  await waitIdle();
  return page.evaluate(
    async ([a, b]) => {
      const load = async (s) => {
        const img = new Image();
        img.src = 'data:image/png;base64,' + s;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        return g.getImageData(0, 0, c.width, c.height);
      };
      const A = await load(a);
      const B = await load(b);
      const W = A.width;
      const H = A.height;
      const S = 12; // block size for the density grid
      const gw = Math.ceil(W / S);
      const grid = new Uint32Array(gw * Math.ceil(H / S));
      let changed = 0;
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const i = (y * W + x) * 4;
          const d = Math.abs(A.data[i] - B.data[i]) + Math.abs(A.data[i + 1] - B.data[i + 1]) + Math.abs(A.data[i + 2] - B.data[i + 2]);
          if (d > 24) {
            changed++;
            grid[Math.floor(y / S) * gw + Math.floor(x / S)]++;
          }
        }
      const blocks = [...grid.keys()]
        .filter((k) => grid[k] > 0)
        .sort((p, q) => grid[q] - grid[p])
        .slice(0, 12)
        .map((k) => ({ x: (k % gw) * S + S / 2, y: Math.floor(k / gw) * S + S / 2, n: grid[k] }))
        // stay clear of the map's edges, controls and legend
        .filter((b) => b.x > 40 && b.y > 40 && b.x < W - 300 && b.y < H - 200);
      return { width: W, height: H, changed, fraction: changed / (W * H), dense: blocks };
    },
    [withPoints, without],
  );
}

/** Columns shown as histograms: the first categorical and the first numeric/temporal one. */
async function histogramColumns() {
  return page.evaluate(() => {
    const cards = [...document.querySelectorAll('[data-testid^="histogram-"][data-column]')];
    const cat = cards.find((c) => c.dataset.kind === 'categorical');
    const num = cards.find((c) => c.dataset.kind === 'numeric') || cards.find((c) => c.dataset.kind === 'temporal');
    return { cat: cat && cat.dataset.column, num: num && num.dataset.column, all: cards.map((c) => c.dataset.column) };
  });
}

/** Drag across a range histogram from fraction a to fraction b of its width. */
async function brush(col, a, b, steps = 8) {
  const overlay = page.locator(`[data-testid="brush-overlay-${col}"]`);
  await overlay.scrollIntoViewIfNeeded();
  const box = await overlay.boundingBox();
  assert.ok(box, `brush overlay of ${col}`);
  const y = box.y + box.height * 0.45;
  await page.mouse.move(box.x + box.width * a, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * b, y, { steps });
  await page.mouse.up();
}

/** Bars of a range histogram: [{x0, x1, count}] in overlay fractions. */
async function barsOf(col) {
  return page.evaluate((c) => {
    const root = document.querySelector(`[data-testid="histogram-${c}"]`);
    const ov = root.querySelector('.overlay').getBoundingClientRect();
    const counts = root.dataset.counts.split(',').map(Number);
    return [...root.querySelectorAll('rect.bar')].map((r, i) => {
      const b = r.getBoundingClientRect();
      return { x0: (b.left - ov.left) / ov.width, x1: (b.right - ov.left) / ov.width, count: counts[i] };
    });
  }, col);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : null;
};

// ---------------------------------------------------------------- setup

before(async () => {
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
  });
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  page = await context.newPage();
  attach(page);
});

after(async () => {
  if (browser) await browser.close();
});

// ---------------------------------------------------------------- tests

test('the page loads from the server with no console errors and renders tiles', { timeout: 4 * T }, async () => {
  const health = await fetch(`${BASE}/health`).then((r) => r.json());
  assert.equal(health.status, 'ok');
  const res = await page.goto(`${BASE}/${DATASET ? `?dataset=${encodeURIComponent(DATASET)}` : ''}`);
  assert.equal(res.status(), 200);
  await waitReady();

  // The URL now carries the whole state (dataset and map view at least).
  const u = new URL(page.url());
  assert.ok(u.searchParams.get('dataset'), `dataset in ${page.url()}`);
  assert.match(u.searchParams.get('map') || '', /^[\d.]+\/-?[\d.]+\/-?[\d.]+$/);

  // Tiles were requested with the page's tile URL and answered with PNGs.
  const query = queryOf(await tileUrl());
  const mine = tiles.filter((t) => t.query === query);
  assert.ok(mine.length > 0, 'no tile requested');
  await waitTilesDone(query);
  assert.ok(mine.some((t) => t.status === 200), `tile statuses: ${mine.map((t) => t.status)}`);
  const loads = await page.evaluate(() => window.__pointillist.tileLoads);
  assert.ok(loads > 0, 'the map reported no tile loaded');

  // At least one tile has non-transparent pixels.
  const urls = [...new Set(mine.filter((t) => t.status === 200).map((t) => t.url))].slice(0, 16);
  let best = null;
  for (const url of urls) {
    const s = await pngStats(url);
    assert.equal(s.width % 256, 0, `tile size ${s.width}`);
    if (!best || s.opaque > best.opaque) best = { url, ...s };
    if (s.opaque > 50) break;
  }
  assert.ok(best && best.opaque > 0, `all ${urls.length} tiles fetched are fully transparent`);

  // And on screen: the tile layer changes the map canvas.
  const fp = await tileLayerFootprint();
  ctx.footprint = fp;
  assert.ok(fp.changed > 100, `tile layer changes only ${fp.changed} pixels of the map`);

  // Histograms, count and legend are filled in.
  const cols = await histogramColumns();
  ctx.cols = cols;
  assert.ok(cols.all.length > 0, 'no histogram shown');
  for (const c of cols.all) assert.notEqual(await cardAttr(c, 'data-total'), null, `histogram ${c} got no data`);
  const n = await countSelected();
  assert.ok(Number.isFinite(n) && n > 0, `count-selected = ${n}`);
  assert.equal(await page.isVisible('[data-testid=legend]'), true, 'legend hidden');
  await shot('01-initial.png');
  assert.deepEqual(consoleErrors, [], 'console errors on load');
  assert.deepEqual(await pageErrors(), [], 'errors shown by the page');
});

test('clicking a category filters tiles, the count and the other histograms', { timeout: 4 * T }, async () => {
  const { cat, num } = ctx.cols;
  assert.ok(cat, 'no categorical histogram shown (the dataset needs a categorical column)');
  const rows = await page.$$eval(`[data-testid=category-bar][data-column="${cat}"]`, (els) =>
    els.map((e) => ({ value: e.dataset.value, count: Number(e.dataset.count) })),
  );
  const nonEmpty = rows.filter((r) => r.count > 0);
  assert.ok(nonEmpty.length >= 2, `need 2 non-empty categories in ${cat}: ${JSON.stringify(rows)}`);
  const pick = nonEmpty.sort((a, b) => b.count - a.count)[0];
  ctx.category = pick.value;

  const before = { url: await tileUrl(), count: await countSelected(), num: num && (await cardAttr(num, 'data-counts')) };
  await page.click(`[data-testid=category-bar][data-column="${cat}"][data-value="${pick.value.replace(/"/g, '\\"')}"]`);
  const url = await waitTileUrlChange(before.url);
  assert.ok(url.includes(`filter=${encodeURIComponent(`${cat}:in:`)}`), `tile URL lacks the ${cat} filter: ${url}`);
  await waitTilesDone(queryOf(url));
  await waitIdle();

  assert.equal(await page.getAttribute(`[data-testid=category-bar][data-column="${cat}"][data-value="${pick.value}"]`, 'data-selected'), 'true');
  const after = await countSelected();
  assert.ok(after < before.count, `count ${before.count} -> ${after}`);
  assert.ok(Math.abs(after - pick.count) <= Math.max(2, pick.count * 0.01), `count ${after} vs category bar ${pick.count}`);
  if (num) assert.notEqual(await cardAttr(num, 'data-counts'), before.num, `histogram ${num} did not change`);
  assert.equal(await page.isVisible(`[data-testid="clear-${cat}"]`), true, 'clear button hidden');
  assert.ok(new URL(page.url()).searchParams.getAll('filter').some((f) => f.startsWith(`${cat}:in:`)), `page URL ${page.url()}`);
  await shot('02-category.png');
  assert.deepEqual(await pageErrors(), [], 'errors shown by the page');
});

test('brushing a numeric histogram filters tiles, the count and the other histograms', { timeout: 4 * T }, async () => {
  const { cat, num } = ctx.cols;
  assert.ok(num, 'no numeric/temporal histogram shown');
  // Brush around the tallest bin so the selection is not empty.
  const bars = await barsOf(num);
  assert.ok(bars.length > 0, 'no bars');
  let k = 0;
  bars.forEach((b, i) => (b.count > bars[k].count ? (k = i) : 0));
  const a = Math.max(0.005, bars[k].x0 - 0.004);
  const b = Math.min(0.995, Math.max(bars[Math.min(bars.length - 1, k + 1)].x1 + 0.004, a + 0.05));

  const before = { url: await tileUrl(), count: await countSelected(), cat: cat && (await cardAttr(cat, 'data-counts')) };
  // The linked histograms and the count carry the brush hint during the drag.
  const hinted = [];
  const onRequest = (r) => {
    const u = new URL(r.url());
    if (u.searchParams.has('brush')) hinted.push(u);
  };
  page.on('request', onRequest);
  await brush(num, a, b);
  const url = await waitTileUrlChange(before.url);
  assert.ok(url.includes(`filter=${encodeURIComponent(`${num}:`)}`), `tile URL lacks the ${num} filter: ${url}`);
  assert.ok(url.includes(`filter=${encodeURIComponent(`${cat}:in:`)}`), 'the category filter was lost');
  await waitTilesDone(queryOf(url));
  await waitIdle();

  const after = await countSelected();
  assert.notEqual(after, before.count, 'count did not change');
  assert.ok(after > 0, 'brush selected nothing');
  if (cat) assert.notEqual(await cardAttr(cat, 'data-counts'), before.cat, `histogram ${cat} did not change`);
  assert.equal(await cardAttr(num, 'data-filtered'), 'true');
  assert.equal(await page.isVisible(`[data-testid="range-text-${num}"]`), true);
  const f = (await state()).filters[num];
  assert.equal(f.type, 'range');
  assert.ok(f.lo < f.hi);
  page.off('request', onRequest);
  assert.ok(hinted.length > 0, 'no request carried the brush hint');
  for (const u of hinted) assert.ok(u.searchParams.get('brush').startsWith(`${num}:`), `hint of another column: ${u}`);
  // Entering the histogram prewarmed the indexes before the drag: hinted
  // requests without a filter on the brushed column yet.
  const unbrushed = (u) => !u.searchParams.getAll('filter').some((f) => f.startsWith(`${num}:`));
  assert.ok(hinted.some(unbrushed), 'no prewarm before the drag');
  // A hinted answer is the one a scan gives without the hint.
  const last = hinted.filter((u) => u.pathname.endsWith('/count')).pop();
  assert.ok(last, 'the count carried no brush hint');
  const plain = new URL(last);
  plain.searchParams.delete('brush');
  const [h, p] = await page.evaluate(
    async ([x, y]) => Promise.all([x, y].map((u) => fetch(u).then((r) => r.json()))),
    [last.href, plain.href],
  );
  assert.deepEqual(h, p, `${last} differs from the scan`);
  ctx.brushCount = after;
  await shot('03-brush.png');
  assert.deepEqual(await pageErrors(), [], 'errors shown by the page');
});

test('hovering over dense data shows a tooltip for the point under the cursor', { timeout: 4 * T }, async () => {
  const fp = await tileLayerFootprint();
  assert.ok(fp.dense.length > 0, 'no drawn data on the map to hover');
  const canvasBox = await page.locator('#map canvas.maplibregl-canvas').boundingBox();
  let shown = false;
  for (const spot of fp.dense.slice(0, 6)) {
    await page.mouse.move(canvasBox.x + spot.x - 4, canvasBox.y + spot.y - 4);
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('/points'), { timeout: T });
    await page.mouse.move(canvasBox.x + spot.x, canvasBox.y + spot.y, { steps: 2 });
    await answered;
    try {
      await page.waitForSelector('[data-testid=tooltip]:not([hidden])', { timeout: 2000 });
      shown = true;
      break;
    } catch {
      /* try the next spot */
    }
  }
  assert.ok(shown, 'no tooltip over the densest spots');
  const text = await page.textContent('[data-testid=tooltip]');
  assert.ok(text.includes(ctx.cols.cat), `tooltip lacks ${ctx.cols.cat}: ${text}`);
  assert.ok(text.includes(ctx.category), `tooltip point is not a filtered ${ctx.category}: ${text}`);
  await shot('04-tooltip.png');
  await page.mouse.move(5, 5); // leave the map
  await page.waitForSelector('[data-testid=tooltip]', { state: 'hidden', timeout: T });
});

test('reloading the URL restores the state', { timeout: 4 * T }, async () => {
  const { cat, num } = ctx.cols;
  const before = {
    url: page.url(),
    state: await state(),
    tile: await tileUrl(),
    count: await countSelected(),
    selected: await page.$$eval('[data-testid=category-bar][data-selected=true]', (els) => els.map((e) => e.dataset.value)),
    range: await page.textContent(`[data-testid="range-text-${num}"]`),
  };
  await page.reload();
  await waitReady();
  const s = await state();
  assert.deepEqual(s.filters, before.state.filters);
  for (const k of ['dataset', 'agg', 'how', 'cmap', 'spread']) assert.equal(s[k], before.state[k], k);
  assert.ok(Math.abs(s.view.zoom - before.state.view.zoom) < 0.01, 'zoom');
  assert.ok(Math.abs(s.view.lng - before.state.view.lng) < 0.01 && Math.abs(s.view.lat - before.state.view.lat) < 0.01, 'center');
  assert.equal(await tileUrl(), before.tile);
  assert.deepEqual(await page.$$eval('[data-testid=category-bar][data-selected=true]', (els) => els.map((e) => e.dataset.value)), before.selected);
  assert.equal(await page.textContent(`[data-testid="range-text-${num}"]`), before.range);
  assert.equal(await countSelected(), before.count);
  assert.equal(await cardAttr(cat, 'data-filtered'), 'true');

  // A fresh browser context opening the shared link sees the same.
  const other = await browser.newContext({ viewport: VIEWPORT });
  const p2 = await other.newPage();
  attach(p2);
  await p2.goto(before.url);
  await waitReady(p2);
  assert.deepEqual((await state(p2)).filters, before.state.filters);
  assert.equal(await tileUrl(p2), before.tile);
  assert.equal(await countSelected(p2), before.count);
  await p2.screenshot({ path: path.join(SHOTS, '05-shared-link.png') });
  assert.deepEqual(await pageErrors(p2), [], 'errors shown by the page opened from the link');
  assert.deepEqual(await pageErrors(), [], 'errors shown by the page');
  await other.close();
});

test('the back button restores the previous selection; clear buttons clear', { timeout: 4 * T }, async () => {
  const { cat, num } = ctx.cols;
  const withBrush = await tileUrl();
  await page.goBack();
  const url = await waitTileUrlChange(withBrush);
  await waitIdle();
  let s = await state();
  assert.equal(s.filters[num], undefined, 'back did not remove the brush');
  assert.ok(s.filters[cat], 'back removed the category filter too');
  assert.ok(!url.includes(encodeURIComponent(`${num}:`)));
  assert.equal(await cardAttr(num, 'data-filtered'), 'false');

  await page.goForward();
  await waitTileUrlChange(url);
  await waitIdle();
  s = await state();
  assert.ok(s.filters[num] && s.filters[cat], 'forward did not restore both filters');
  assert.equal(await countSelected(), ctx.brushCount);

  const t0 = await tileUrl();
  await page.click(`[data-testid="clear-${cat}"]`);
  const t1 = await waitTileUrlChange(t0);
  await waitIdle();
  assert.ok(!t1.includes(encodeURIComponent(`${cat}:in:`)), 'category filter still in the tile URL');
  assert.equal((await state()).filters[cat], undefined);
  assert.equal(await page.locator('[data-testid=category-bar][data-selected=true]').count(), 0);
  assert.equal(await page.isVisible(`[data-testid="clear-${cat}"]`), false);
  assert.deepEqual(consoleErrors, [], 'console errors');
  assert.deepEqual(await pageErrors(), [], 'errors shown by the page');
});

test('a slow answer shows the map progress overlay until its tiles arrive', { timeout: 4 * T }, async () => {
  await waitIdle();
  assert.equal(await page.isVisible('[data-testid="map-progress"]'), false, 'overlay shown while idle');
  // Hold every tile response, as a slow first answer over a large dataset would.
  let release;
  const gate = new Promise((r) => (release = r));
  const hold = async (route) => {
    await gate;
    await route.continue();
  };
  await page.route('**/tiles/**', hold);
  try {
    // A zoom level not seen yet: every tile in view is new.
    await page.evaluate(() => {
      const m = window.__pointillist.map;
      m.jumpTo({ zoom: m.getZoom() + 1.5 });
    });
    await page.waitForSelector('[data-testid="map-progress"]:not([hidden])', { timeout: T });
  } finally {
    release();
  }
  await page.waitForSelector('[data-testid="map-progress"]', { state: 'hidden', timeout: T });
  await page.unroute('**/tiles/**', hold);
  await waitIdle();
  assert.deepEqual(consoleErrors, [], 'console errors');
  assert.deepEqual(await pageErrors(), [], 'errors shown by the page');
});

test('latency: brush end to new tiles loaded', { timeout: (N_BRUSHES + 2) * 2 * T }, async () => {
  const { num } = ctx.cols;
  await page.mouse.move(5, 5);
  await page.evaluate(() => {
    performance.setResourceTimingBufferSize(100000);
    window.__idleAt = 0;
    window.__pointillist.map.on('idle', () => (window.__idleAt = performance.now()));
  });
  const samples = [];
  for (let i = 0; i < N_BRUSHES; i++) {
    const a = 0.04 + 0.09 * i;
    const b = a + 0.18 + 0.05 * (i % 3);
    const before = await tileUrl();
    await page.evaluate(() => {
      performance.clearResourceTimings();
      window.__brushUp = null;
      window.addEventListener('pointerup', () => (window.__brushUp = performance.now()), { capture: true, once: true });
    });
    await brush(num, a, Math.min(0.98, b), 6);
    const url = await waitTileUrlChange(before);
    const query = queryOf(url);
    const reqs = await waitTilesDone(query);
    await page.waitForFunction(
      (q) => {
        const ends = performance
          .getEntriesByType('resource')
          .filter((e) => e.name.includes(q))
          .map((e) => e.responseEnd);
        return ends.length > 0 && window.__idleAt > Math.max(...ends);
      },
      query,
      { timeout: T },
    );
    const m = await page.evaluate((q) => {
      const entries = performance.getEntriesByType('resource').filter((e) => e.name.includes(q));
      const last = Math.max(...entries.map((e) => e.responseEnd));
      const first = Math.min(...entries.map((e) => e.startTime));
      return {
        tiles_loaded_ms: last - window.__brushUp,
        first_tile_request_ms: first - window.__brushUp,
        map_idle_ms: window.__idleAt - window.__brushUp,
        tiles: entries.length,
      };
    }, query);
    m.tile_requests = reqs.length;
    samples.push(m);
    await waitIdle();
  }
  await shot('06-after-latency.png');
  const result = {
    url: BASE,
    column: num,
    brushes: samples.length,
    median_tiles_loaded_ms: median(samples.map((s) => s.tiles_loaded_ms)),
    median_map_idle_ms: median(samples.map((s) => s.map_idle_ms)),
    median_first_tile_request_ms: median(samples.map((s) => s.first_tile_request_ms)),
    viewport: VIEWPORT,
    samples,
    when: new Date().toISOString(),
  };
  fs.mkdirSync(SHOTS, { recursive: true });
  fs.writeFileSync(path.join(SHOTS, 'latency.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(
    `brush -> tiles latency over ${samples.length} brushes: median ${result.median_tiles_loaded_ms.toFixed(1)} ms to the last tile response, ` +
      `${result.median_map_idle_ms.toFixed(1)} ms to the map idle (rendered); written to ${path.join(SHOTS, 'latency.json')}`,
  );
  for (const s of samples) assert.ok(s.tiles > 0 && s.tiles_loaded_ms >= 0, JSON.stringify(s));
  assert.deepEqual(consoleErrors, [], 'console errors');
  assert.deepEqual(await pageErrors(), [], 'errors shown by the page');
});
