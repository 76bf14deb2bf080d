#!/usr/bin/env bash
# Pack throughput: `pointillist pack` against DuckDB (the engine users pick
# instead; issue #15 target 4) and spatialpandas' pack_partitions.
#
# usage: scripts/bench_pack.sh [ROWS=40000000] [MORE_ROWS...]
#
# For each ROWS: generates bench-data/towers-ROWS.parquet if missing
# (`pointillist gen towers --seed $SEED`), then RUNS interleaved rounds of
#   (a) `pointillist pack` -> bench-data/towers-ROWS.pack (the dataset that
#       bench_open.sh / bench_render.sh use);
#   (b) DuckDB, CREATE TABLE AS SELECT with the same projection (Web Mercator
#       quantized to u32, every other column kept) ORDER BY a Morton key of
#       the quantized coordinates, into a DuckDB file (scripts/duckdb_pack.py
#       --mode ctas) -> bench-data/towers-ROWS.duckdb;
#   (c) DuckDB, the same SELECT written by COPY ... TO Parquet (zstd)
#       (--mode copy) -> bench-data/towers-ROWS.duck.parquet;
# each under /usr/bin/time -v with the input read into the page cache first,
# DuckDB with as many threads as Pointillist (nproc). Then once:
#   (d) scripts/sp_pack.py: dask read_parquet, Web Mercator, spatialpandas
#       PointArray, pack_partitions(p=15) + to_parquet -> towers-ROWS.sp/.
# Prints each run, then medians (wall, CPU) and the largest peak RSS per tool,
# the ratios and the targets (40M: <= 20 s, <= 3 GiB, >= 2x the faster DuckDB
# mode, >= 5x spatialpandas).
#
# env: RUNS         rounds of (a)-(c) (default 3)
#      SKIP_DUCKDB=1, SKIP_SP=1   leave those peers out
#      SP_TIMEOUT   seconds before spatialpandas is stopped (default 1800)
#      PACK_ARGS    extra arguments for `pointillist pack`
#      plus POINTILLIST, BENCH_DATA, VENV, SEED (see bench_common.sh)
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,31p' "$0"; exit 0 ;; esac
source "$(dirname "$0")/bench_common.sh"

SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(40000000)
for r in "${SIZES[@]}"; do
    check_rows "$r"
done
RUNS="${RUNS:-3}"
check_rows "$RUNS"
SP_TIMEOUT="${SP_TIMEOUT:-1800}"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"

ensure_binary
[[ "${SKIP_SP:-0}" == 1 ]] || ensure_venv
[[ "${SKIP_DUCKDB:-0}" == 1 ]] || ensure_engines_venv
print_env

LOGDIR="$BENCH_DATA/logs"
mkdir -p "$LOGDIR"
RESULTS="$LOGDIR/pack-results.tsv"
: >"$RESULTS"   # rows tool run wall rss_gib cpu_s status note

# timed ROWS TOOL RUN TIMEOUT CMD... : runs CMD under /usr/bin/time -v (and
# `timeout`), appends a line to $RESULTS.
timed() {
    local rows="$1" tool="$2" run="$3" limit="$4"
    shift 4
    local base="$LOGDIR/pack-$tool-$rows-$run"
    echo "-- $tool, run $run (load before: $(cut -d' ' -f1 /proc/loadavg))"
    set +e
    /usr/bin/time -v -o "$base.time" timeout --signal=KILL "$limit" "$@" >"$base.out" 2>"$base.err"
    local rc=$?
    set -e
    cat "$base.out"
    local status=ok
    if [[ $rc -ne 0 ]]; then
        tail -5 "$base.err"
        if [[ $rc -eq 137 || $rc -eq 124 ]]; then status="KILLED"; else status="FAILED(rc=$rc)"; fi
    fi
    local cpu
    cpu="$(time_cpu "$base.time")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rows" "$tool" "$run" "$(time_wall_s "$base.time")" \
        "$(time_peak_rss_gb "$base.time")" "${cpu%%(*}" "$status" >>"$RESULTS"
}

for ROWS in "${SIZES[@]}"; do
    PARQUET="$(towers_parquet "$ROWS")"
    echo "== $ROWS rows: $PARQUET ($(du -h "$PARQUET" | cut -f1)) =="
    for run in $(seq 1 "$RUNS"); do
        cat "$PARQUET" >/dev/null
        # shellcheck disable=SC2086
        timed "$ROWS" pointillist "$run" 3600 \
            "$POINTILLIST" pack "$PARQUET" --out "$BENCH_DATA/towers-$ROWS.pack" --force ${PACK_ARGS:-}
        if [[ "${SKIP_DUCKDB:-0}" != 1 ]]; then
            for mode in ctas copy; do
                cat "$PARQUET" >/dev/null
                out="$BENCH_DATA/towers-$ROWS.duckdb"
                [[ $mode == copy ]] && out="$BENCH_DATA/towers-$ROWS.duck.parquet"
                timed "$ROWS" "duckdb-$mode" "$run" 3600 \
                    "$ENGINES_PY" "$REPO_ROOT/scripts/duckdb_pack.py" "$PARQUET" "$out" \
                    --mode "$mode" --threads "$(nproc)"
            done
        fi
    done
    if [[ "${SKIP_SP:-0}" != 1 ]]; then
        cat "$PARQUET" >/dev/null
        timed "$ROWS" spatialpandas 1 "$SP_TIMEOUT" \
            "$PY" "$REPO_ROOT/scripts/sp_pack.py" "$PARQUET" "$BENCH_DATA/towers-$ROWS.sp"
    fi
    echo "   load after: $(cut -d' ' -f1 /proc/loadavg)"
    echo
done

echo "== every run (wall s, peak RSS GiB, CPU s = user+sys; /usr/bin/time -v) =="
column -t -s $'\t' -N rows,tool,run,wall_s,rss_GiB,cpu_s,status "$RESULTS"
echo
echo "== medians and targets =="
python3 - "$RESULTS" <<'EOF'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    rows, tool, run, wall, rss, cpu, status = line.rstrip("\n").split("\t")
    runs[(int(rows), tool)].append((float(wall), float(rss), float(cpu), status))
for rows in sorted({r for r, _ in runs}):
    med = {}
    for (r, tool), rs in sorted(runs.items()):
        if r != rows:
            continue
        ok = [x for x in rs if x[3] == "ok"]
        if not ok:
            print(f"{rows} rows: {tool} did not finish ({rs[0][3]})")
            continue
        wall = statistics.median(x[0] for x in ok)
        med[tool] = wall
        print(f"{rows} rows: {tool:<14} median {wall:7.2f} s of {len(ok)} "
              f"({rows / wall / 1e6:.2f}M rows/s), peak RSS {max(x[1] for x in ok):.2f} GiB, "
              f"CPU {statistics.median(x[2] for x in ok):.1f} s")
    p = med.get("pointillist")
    if p is None:
        continue
    if rows == 40_000_000:
        rss = max(x[1] for x in runs[(rows, "pointillist")] if x[3] == "ok")
        print(f"  target <= 20 s: {'PASS' if p <= 20 else 'FAIL'}; <= 3 GiB: {'PASS' if rss <= 3 else 'FAIL'}")
    duck = [med[t] for t in ("duckdb-ctas", "duckdb-copy") if t in med]
    if duck:
        r = min(duck) / p
        print(f"  faster DuckDB mode / pointillist: {r:.2f}x  [target >= 2x: {'PASS' if r >= 2 else 'FAIL'}]")
    if "spatialpandas" in med:
        r = med["spatialpandas"] / p
        print(f"  spatialpandas / pointillist: {r:.1f}x  [target >= 5x: {'PASS' if r >= 5 else 'FAIL'}]")
EOF
