// Offline basemap: Natural Earth 1:110m country outlines (world-atlas TopoJSON,
// vendored) drawn as fill + line layers on a plain background. No glyphs or
// sprites, so nothing is fetched beyond /static/vendor/countries-110m.json.

export const THEME_COLORS = {
  dark: { background: '#0b0e14', land: '#161b26', border: '#3a4458', borderTop: 'rgba(150,165,190,0.28)' },
  light: { background: '#dfe5ec', land: '#f7f7f4', border: '#b5bdc8', borderTop: 'rgba(60,70,90,0.28)' },
};

const EMPTY = { type: 'FeatureCollection', features: [] };

/** The offline style (countries source is filled in later by loadCountries). */
export function offlineStyle(theme, countries) {
  const c = THEME_COLORS[theme] || THEME_COLORS.dark;
  return {
    version: 8,
    name: `pointillist-offline-${theme}`,
    sources: { countries: { type: 'geojson', data: countries || EMPTY, attribution: 'Natural Earth' } },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': c.background } },
      { id: 'country-fill', type: 'fill', source: 'countries', paint: { 'fill-color': c.land, 'fill-antialias': false } },
      { id: 'country-line', type: 'line', source: 'countries', paint: { 'line-color': c.border, 'line-width': 0.6 } },
    ],
  };
}

/** Colours of the offline basemap for `theme` (applied without a style reload). */
export function applyTheme(map, theme) {
  const c = THEME_COLORS[theme] || THEME_COLORS.dark;
  if (map.getLayer('background')) map.setPaintProperty('background', 'background-color', c.background);
  if (map.getLayer('country-fill')) map.setPaintProperty('country-fill', 'fill-color', c.land);
  if (map.getLayer('country-line')) map.setPaintProperty('country-line', 'line-color', c.border);
  if (map.getLayer('country-line-top')) map.setPaintProperty('country-line-top', 'line-color', c.borderTop);
}

let countriesPromise = null;
/** Fetch and convert the vendored TopoJSON to GeoJSON (once). */
export function loadCountries() {
  if (!countriesPromise) {
    countriesPromise = fetch('/static/vendor/countries-110m.json')
      .then((r) => {
        if (!r.ok) throw new Error(`countries-110m.json: HTTP ${r.status}`);
        return r.json();
      })
      .then((topo) => fixAntimeridian(window.topojson.feature(topo, topo.objects.countries)));
  }
  return countriesPromise;
}

/**
 * world-atlas rings that cross the antimeridian jump from +180 to -180, which a
 * planar renderer draws as world-wide slivers. Unwrap longitudes so each ring is
 * continuous (MapLibre accepts |lon| > 180), and close rings that wind around a
 * pole (Antarctica) through that pole.
 */
export function fixAntimeridian(geo) {
  const POLE_LAT = 85.06;
  const fixRing = (ring) => {
    const out = [ring[0].slice()];
    for (let i = 1; i < ring.length; i++) {
      let lon = ring[i][0];
      const prev = out[i - 1][0];
      while (lon - prev > 180) lon -= 360;
      while (lon - prev < -180) lon += 360;
      out.push([lon, ring[i][1]]);
    }
    const first = out[0];
    const last = out[out.length - 1];
    if (Math.abs(last[0] - first[0]) > 180) {
      const meanLat = out.reduce((a, c) => a + c[1], 0) / out.length;
      const pole = meanLat < 0 ? -POLE_LAT : POLE_LAT;
      out.push([last[0], pole], [first[0], pole], first.slice());
    }
    return out;
  };
  for (const f of geo.features) {
    const g = f.geometry;
    if (!g) continue;
    if (g.type === 'Polygon') g.coordinates = g.coordinates.map(fixRing);
    else if (g.type === 'MultiPolygon') g.coordinates = g.coordinates.map((p) => p.map(fixRing));
  }
  return geo;
}
