#!/usr/bin/env bash
# Pixel comparison of pointillist against Datashader (see compare_datashader.py).
#
# usage: scripts/compare_datashader.sh [--rows N] [--parquet F] [--dataset DIR]
#                                      [--cmap HEXLIST] [--work DIR] [--strict]
#
# Makes .venv-bench (scripts/requirements-bench.txt) and the release binary
# when missing, prints the environment, then runs compare_datashader.py.
# Exit status 1 when any total differs.
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,9p' "$0"; echo; exec_help=1 ;; *) exec_help=0 ;; esac
source "$(dirname "$0")/bench_common.sh"
ensure_venv
if [[ $exec_help == 1 ]]; then exec "$PY" "$REPO_ROOT/scripts/compare_datashader.py" --help; fi
ensure_binary
print_env
export POINTILLIST BENCH_DATA SEED
exec "$PY" "$REPO_ROOT/scripts/compare_datashader.py" "$@"
