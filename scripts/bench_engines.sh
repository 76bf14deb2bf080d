#!/usr/bin/env bash
# Pointillist against DuckDB and chdb (ClickHouse) on the same towers, side by
# side in one run: tiles and histograms, results checked; see bench_engines.py.
#
# usage: scripts/bench_engines.sh [ROWS=40000000] [bench_engines.py options...]
#        e.g. scripts/bench_engines.sh 10000000 --runs 9 --threads 2
#
# Uses the packed dataset bench-data/towers-ROWS.pack (what bench_pack.sh
# makes; generated and packed when missing). Makes .venv-engines from
# scripts/requirements-engines.txt when missing. Writes the figures as JSON to
# bench-data/logs/engines-ROWS.json too. Exit 1 if any result differs.
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,11p' "$0"; exit 0 ;; esac
source "$(dirname "$0")/bench_common.sh"
ROWS="${1:-40000000}"
[[ $# -gt 0 ]] && shift
check_rows "$ROWS"

ensure_engines_venv
VENV="$REPO_ROOT/.venv-engines"
PY="$ENGINES_PY"
ensure_binary
towers_parquet "$ROWS" >/dev/null
DATASET="$(towers_packed "$ROWS")"
mkdir -p "$BENCH_DATA/logs"
print_env
export POINTILLIST
exec "$PY" "$REPO_ROOT/scripts/bench_engines.py" --dataset "$DATASET" \
    --json-out "$BENCH_DATA/logs/engines-$ROWS.json" "$@"
