#!/usr/bin/env bash
# Where a tile's server time goes (render, encoding, the server's own path),
# per case, from Server-Timing; see bench_tile_path.py.
#   scripts/bench_tile_path.sh [DIR=bench-data/towers-10000000.pack] [RUNS=61]
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
source "$(dirname "$0")/serve_lib.sh"
DIR="${1:-$BENCH_DATA/towers-10000000.pack}"
RUNS="${2:-61}"
[[ -d "$DIR" ]] || die "no packed dataset at $DIR"
ensure_binary
CAT="$(mktemp -d)"
ln -s "$(cd "$DIR" && pwd)" "$CAT/towers"
PORT="${PORT:-8097}"
start_server "$POINTILLIST" "$PORT" "$CAT.log" "$CAT" --cache-mb 0
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$CAT" "$CAT.log"' EXIT
log "uptime: $(uptime)"
python3 "$REPO_ROOT/scripts/bench_tile_path.py" --port "$PORT" --runs "$RUNS"
log "uptime: $(uptime)"
