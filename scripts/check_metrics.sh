#!/usr/bin/env bash
# `promtool check metrics` (Debian's prometheus package, installed here
# when running as root and missing) against a live server's /metrics, after
# a tile, a histogram and a count have filled every family in.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-target/release/pointillist}"
PORT="${PORT:-8091}"
[ -x "$BIN" ] || cargo build --release --locked
if ! command -v promtool >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
command -v promtool >/dev/null || { echo "promtool is missing: apt-get install prometheus" >&2; exit 1; }
W=test-output/metrics
mkdir -p "$W"
if [ ! -f "$W/towers/manifest.json" ]; then
  "$BIN" gen towers --rows 50000 --seed 3 --out "$W/towers.parquet" >/dev/null 2>&1
  "$BIN" pack "$W/towers.parquet" --out "$W/towers" --force >/dev/null 2>&1
fi
source scripts/serve_lib.sh
start_server "$BIN" "$PORT" "$W/server.log" "$W/towers"
U="http://127.0.0.1:$PORT"
for path in "/tiles/towers/8/75/96.png?filter=range:0..2000" "/tiles/towers/2/1/1.png" \
  "/datasets/towers/histogram/radio?filter=range:0..2000" "/datasets/towers/count?filter=range:0..2000" \
  "/tiles/towers/8/75/96.png?filter=range:0..2000"; do
  curl -sf -o /dev/null "$U$path"
done
curl -sf "$U/metrics" > "$W/metrics.txt"
promtool check metrics < "$W/metrics.txt"
echo "promtool check metrics: ok ($(grep -c '^# HELP' "$W/metrics.txt") families)"
