#!/usr/bin/env bash
# Runs every test: Rust unit, property and integration tests, then the
# explorer's browser tests in headless Chromium against a real server.
#   scripts/test.sh            # everything
#   SKIP_BROWSER=1 scripts/test.sh   # Rust tests (and schemathesis) only
#   SKIP_SCHEMATHESIS=1 scripts/test.sh   # without the OpenAPI contract run
#   SKIP_CLUSTER=1 scripts/test.sh   # without the deployment kit and promtool checks and
#                                    # the 3-replica nginx runs (S3, local)
#   SKIP_RUST=1 BROWSER_ROWS=10000000 scripts/test.sh
#                                    # latency figures over 10M points
#                                    # (SKIP_RUST=1: browser tests only)
# Everything is built with the release profile: the tests reuse the
# dependencies `cargo run --release -- demo` compiled (a second, debug build
# of every dependency would double the set-up time), and they test the code
# as it ships.
# Browser tests need Debian's chromium (installed here when running as root)
# and Node.js with npm (playwright-core is installed from tests/browser).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SKIP_RUST:-0}" = 1 ]; then
  echo "Rust tests skipped (SKIP_RUST=1)"
else
  echo "== cargo test (unit, property, integration)"
  # tests/s3.rs runs against a real S3 server (moto), started here.
  source scripts/s3_lib.sh
  start_s3 "${S3_PORT:-8790}"
  trap stop_s3 EXIT
  POINTILLIST_TEST_S3="$S3_ENDPOINT" cargo test --release --all-targets --locked
  stop_s3
fi

if [ "${SKIP_RUST:-0}" = 1 ] || [ "${SKIP_SCHEMATHESIS:-0}" = 1 ]; then
  echo "schemathesis skipped"
else
  echo "== schemathesis: the server against its OpenAPI document"
  scripts/schemathesis.sh
fi

if [ "${SKIP_RUST:-0}" = 1 ] || [ "${SKIP_CLUSTER:-0}" = 1 ]; then
  echo "deployment kit checks skipped"
else
  echo "== deployment kit: manifests, nginx config, 3 replicas behind nginx"
  scripts/check_deploy.sh
  scripts/check_metrics.sh             # promtool check metrics, live server
  scripts/cluster_test.sh              # the catalog on a local S3 server
  DATA=local scripts/cluster_test.sh   # one local catalog, mapped by all
fi

if [ "${SKIP_BROWSER:-0}" = 1 ]; then
  echo "browser tests skipped (SKIP_BROWSER=1)"
  exit 0
fi

echo "== browser tests"
CHROMIUM_PATH="${CHROMIUM_PATH:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$CHROMIUM_PATH" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    CHROMIUM_PATH=$(command -v chromium)
  else
    echo "chromium is missing: apt-get install chromium (or set CHROMIUM_PATH)" >&2
    exit 1
  fi
fi
export CHROMIUM_PATH
command -v npm >/dev/null || { echo "npm is missing: install Node.js" >&2; exit 1; }
npm ci --prefix tests/browser --no-audit --no-fund --silent

cargo build --release --locked
BIN=target/release/pointillist
ROWS="${BROWSER_ROWS:-2000000}"
DATA=test-output/browser-data
mkdir -p "$DATA"
if [ ! -f "$DATA/towers/manifest.json" ] || [ "$(cat "$DATA/rows" 2>/dev/null)" != "$ROWS" ]; then
  "$BIN" gen towers --rows "$ROWS" --seed 7 --out "$DATA/towers.parquet"
  "$BIN" pack "$DATA/towers.parquet" --out "$DATA/towers" --force
  rm -f "$DATA/towers.parquet"
  echo "$ROWS" > "$DATA/rows"
fi
PORT="${BROWSER_PORT:-8089}"
source scripts/serve_lib.sh
start_server "$BIN" "$PORT" test-output/server.log "$DATA/towers"
POINTILLIST_URL="http://127.0.0.1:$PORT" SCREENSHOT_DIR=test-output/screenshots \
  node --test --test-reporter=spec tests/browser/explorer.test.mjs
