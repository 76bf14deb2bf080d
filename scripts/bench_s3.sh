#!/usr/bin/env bash
# Tiles from s3:// (a local S3-compatible server, moto) against the same
# tiles from the local pack, cold and warm; see scripts/bench_s3.py.
#   scripts/bench_s3.sh                 # 5M towers, 300 tiles
#   ROWS=40000000 TILES=1000 scripts/bench_s3.sh
#   PARTITION_ROWS=65536 scripts/bench_s3.sh   # finer chunks: fewer bytes per cold tile
# ROWS, TILES, PARTITION_ROWS (pack's default unless set), PORT (server;
# moto on PORT+1), BIN. Release build; run it on
# a quiet machine. moto is a Python server: cold figures measure it as much
# as Pointillist, and a real S3 or MinIO is faster per range.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-5000000}"
TILES="${TILES:-300}"
PORT="${PORT:-8095}"
BIN="${BIN:-target/release/pointillist}"
[ -x "$BIN" ] || cargo build --release --locked
PARTS=()
[ -z "${PARTITION_ROWS:-}" ] || PARTS=(--partition-rows "$PARTITION_ROWS")
W=bench-data/s3-$ROWS-${PARTITION_ROWS:-default}
mkdir -p "$W/catalog"
if [ ! -f "$W/catalog/towers/manifest.json" ]; then
  "$BIN" gen towers --rows "$ROWS" --seed 1 --out "$W/towers.parquet"
  "$BIN" pack "$W/towers.parquet" --out "$W/catalog/towers" --force "${PARTS[@]}"
  rm -f "$W/towers.parquet"
fi
source scripts/s3_lib.sh
start_s3 $((PORT + 1))
export AWS_ENDPOINT_URL="$S3_ENDPOINT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
"$S3_VENV/bin/python" scripts/s3_upload.py --endpoint "$S3_ENDPOINT" --bucket bench \
  --prefix cat/towers_s3 --create "$W/catalog/towers"
rm -rf "$W/object-cache"
source scripts/serve_lib.sh
T0=$(date +%s.%N)
START_WAIT=300 start_server "$BIN" "$PORT" "$W/server.log" "$W/catalog" s3://bench/cat \
  --object-cache "$W/object-cache" --cache-mb 0 --timeout-ms 50000
trap 'kill $SERVER 2>/dev/null || true; stop_s3' EXIT
echo "server up (local and s3 datasets opened) in $(echo "$(date +%s.%N) - $T0" | bc) s"
echo "uptime: $(uptime)"
python3 scripts/bench_s3.py --url "http://127.0.0.1:$PORT" --local towers --remote towers_s3 \
  --tiles "$TILES" --json-out "$W/report.json"
