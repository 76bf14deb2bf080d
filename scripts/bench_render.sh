#!/usr/bin/env bash
# Tile render latency: pointillist vs Datashader (pandas, dask); see bench_render.py.
#
# usage: scripts/bench_render.sh [ROWS=40000000] [bench_render.py options...]
#        e.g. scripts/bench_render.sh 40000000 --runs 5 --pt-runs 7
#
# Uses bench-data/towers-ROWS.parquet and its packed dataset
# bench-data/towers-ROWS.pack (what bench_pack.sh makes); generates / packs
# them when missing. Makes .venv-bench when missing. Writes the measurements
# as JSON to bench-data/logs/render-ROWS.json too.
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,10p' "$0"; exit 0 ;; esac
source "$(dirname "$0")/bench_common.sh"
ROWS="${1:-40000000}"
[[ $# -gt 0 ]] && shift
check_rows "$ROWS"

ensure_venv
ensure_binary
PARQUET="$(towers_parquet "$ROWS")"
DATASET="$(towers_packed "$ROWS")"
mkdir -p "$BENCH_DATA/logs"
print_env
export POINTILLIST
exec "$PY" "$REPO_ROOT/scripts/bench_render.py" --parquet "$PARQUET" --dataset "$DATASET" \
    --json-out "$BENCH_DATA/logs/render-$ROWS.json" "$@"
