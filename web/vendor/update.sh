#!/usr/bin/env bash
# Re-fetch the vendored front-end libraries from the npm registry (npm pack),
# so web/vendor/ can be reproduced exactly. Usage: web/vendor/update.sh
# Versions are pinned below; bump them here and re-run to upgrade.
set -euo pipefail

MAPLIBRE_VERSION=5.24.1        # last 5.x: ships a self-contained UMD build (dist/maplibre-gl.js)
TOPOJSON_CLIENT_VERSION=3.1.0
WORLD_ATLAS_VERSION=2.0.2

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fetch() { # name version -> extracted into $tmp/<name>/package
  local name="$1" version="$2"
  local tgz
  tgz="$(npm pack --silent "${name}@${version}" 2>/dev/null | tail -n 1)"
  mkdir -p "$name"
  tar xzf "$tgz" -C "$name"
  echo "fetched ${name}@${version} ($(sha256sum "$tgz" | cut -c1-16)…)" >&2
}

fetch maplibre-gl "$MAPLIBRE_VERSION"
fetch topojson-client "$TOPOJSON_CLIENT_VERSION"
fetch world-atlas "$WORLD_ATLAS_VERSION"

mkdir -p "$here/licenses"

# MapLibre GL JS: production (minified) UMD build + stylesheet. The trailing
# sourceMappingURL comment is dropped: the .map file is not vendored.
sed '/^\/\/# sourceMappingURL=/d' maplibre-gl/package/dist/maplibre-gl.js > "$here/maplibre-gl.js"
sed '/sourceMappingURL=/d' maplibre-gl/package/dist/maplibre-gl.css > "$here/maplibre-gl.css"
cp maplibre-gl/package/LICENSE.txt "$here/licenses/maplibre-gl.LICENSE.txt"

# topojson-client: UMD minified build (global `topojson`).
cp topojson-client/package/dist/topojson-client.min.js "$here/topojson-client.min.js"
cp topojson-client/package/LICENSE "$here/licenses/topojson-client.LICENSE.txt"

# world-atlas: Natural Earth 1:110m country outlines as TopoJSON.
cp world-atlas/package/countries-110m.json "$here/countries-110m.json"
cp world-atlas/package/LICENSE "$here/licenses/world-atlas.LICENSE.txt"

cat > "$here/LICENSES.md" <<MD
# Vendored front-end libraries

Fetched from the npm registry with \`npm pack\` by \`web/vendor/update.sh\`; do not edit by hand.

| File | npm package | Version | Licence | Licence text |
| --- | --- | --- | --- | --- |
| \`maplibre-gl.js\`, \`maplibre-gl.css\` (from \`dist/\`, production build) | [maplibre-gl](https://www.npmjs.com/package/maplibre-gl) | ${MAPLIBRE_VERSION} | BSD-3-Clause (includes third-party notices) | [licenses/maplibre-gl.LICENSE.txt](licenses/maplibre-gl.LICENSE.txt) |
| \`topojson-client.min.js\` (from \`dist/\`) | [topojson-client](https://www.npmjs.com/package/topojson-client) | ${TOPOJSON_CLIENT_VERSION} | ISC | [licenses/topojson-client.LICENSE.txt](licenses/topojson-client.LICENSE.txt) |
| \`countries-110m.json\` | [world-atlas](https://www.npmjs.com/package/world-atlas) | ${WORLD_ATLAS_VERSION} | ISC (package); the geometry is derived from [Natural Earth](https://www.naturalearthdata.com/) 1:110m data, which is in the public domain | [licenses/world-atlas.LICENSE.txt](licenses/world-atlas.LICENSE.txt) |

The only change made to the upstream files is the removal of the trailing
\`sourceMappingURL\` comment from \`maplibre-gl.js\` / \`maplibre-gl.css\`
(the source maps are not vendored).
MD
echo "web/vendor updated" >&2
