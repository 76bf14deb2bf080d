#!/usr/bin/env bash
# Pack throughput: `pointillist pack` against spatialpandas' pack_partitions.
#
# usage: scripts/bench_pack.sh [ROWS=40000000] [MORE_ROWS...]
#
# For each ROWS: generates bench-data/towers-ROWS.parquet if missing
# (`pointillist gen towers --seed $SEED`), then in the same run
#   (a) `pointillist pack` -> bench-data/towers-ROWS.pack (the dataset that
#       bench_open.sh / bench_render.sh use), under /usr/bin/time -v;
#   (b) scripts/sp_pack.py: dask read_parquet (2 partitions per core), lon/lat
#       projected to Web Mercator metres (as pack does), spatialpandas
#       PointArray geometry, pack_partitions(p=15) + to_parquet ->
#       bench-data/towers-ROWS.sp/, under /usr/bin/time -v in a subprocess.
# The input file is read into the page cache before each tool runs, so both
# read it warm. Prints a summary table (wall s, rows/s, peak RSS GB, speedup).
#
# Give a second, smaller ROWS when spatialpandas cannot do the first in
# reasonable time or memory, e.g. `scripts/bench_pack.sh 40000000 4000000`.
#
# env: SP_TIMEOUT  seconds before spatialpandas is stopped and reported as
#                  timed out (default 1800)
#      SKIP_SP=1   pointillist only
#      PACK_ARGS   extra arguments for `pointillist pack`
#      plus POINTILLIST, BENCH_DATA, VENV, SEED (see bench_common.sh)
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,25p' "$0"; exit 0 ;; esac
source "$(dirname "$0")/bench_common.sh"

SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(40000000)
for r in "${SIZES[@]}"; do
    check_rows "$r"
done
SP_TIMEOUT="${SP_TIMEOUT:-1800}"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"

ensure_binary
[[ "${SKIP_SP:-0}" == 1 ]] || ensure_venv
print_env

LOGDIR="$BENCH_DATA/logs"
mkdir -p "$LOGDIR"
RESULTS=()   # "rows|tool|wall|rows_per_s|rss|cpu|status|note"

for ROWS in "${SIZES[@]}"; do
    PARQUET="$(towers_parquet "$ROWS")"
    echo "== $ROWS rows: $PARQUET ($(du -h "$PARQUET" | cut -f1)) =="

    # (a) pointillist pack
    cat "$PARQUET" >/dev/null
    OUT="$BENCH_DATA/towers-$ROWS.pack"
    TLOG="$LOGDIR/pack-pointillist-$ROWS.time"
    echo "-- pointillist pack (load before: $(cut -d' ' -f1 /proc/loadavg))"
    set +e
    # shellcheck disable=SC2086
    /usr/bin/time -v -o "$TLOG" "$POINTILLIST" pack "$PARQUET" --out "$OUT" --force ${PACK_ARGS:-} \
        > "$LOGDIR/pack-pointillist-$ROWS.out" 2> "$LOGDIR/pack-pointillist-$ROWS.err"
    rc=$?
    set -e
    cat "$LOGDIR/pack-pointillist-$ROWS.out"
    if [[ $rc -ne 0 ]]; then
        tail -20 "$LOGDIR/pack-pointillist-$ROWS.err"
        RESULTS+=("$ROWS|pointillist|-|-|-|-|FAILED rc=$rc|")
    else
        wall="$(time_wall_s "$TLOG")"
        rss="$(time_peak_rss_gb "$TLOG")"
        self_s="$(sed -n 's/.* in \([0-9.]*\)s (.*/\1/p' "$LOGDIR/pack-pointillist-$ROWS.out" | head -1)"
        RESULTS+=("$ROWS|pointillist|$wall|$(awk -v n="$ROWS" -v s="$wall" 'BEGIN{printf "%.0f", n/s}')|$rss|$(time_cpu "$TLOG")|ok|own timer ${self_s}s, $(du -sh "$OUT" | cut -f1) on disk")
    fi
    echo "   load after: $(cut -d' ' -f1 /proc/loadavg)"

    # (b) spatialpandas
    if [[ "${SKIP_SP:-0}" != 1 ]]; then
        cat "$PARQUET" >/dev/null
        SPOUT="$BENCH_DATA/towers-$ROWS.sp"
        TLOG="$LOGDIR/pack-spatialpandas-$ROWS.time"
        echo "-- spatialpandas pack_partitions + to_parquet (timeout ${SP_TIMEOUT}s; load before: $(cut -d' ' -f1 /proc/loadavg))"
        set +e
        /usr/bin/time -v -o "$TLOG" timeout --signal=KILL "$SP_TIMEOUT" \
            "$PY" "$REPO_ROOT/scripts/sp_pack.py" "$PARQUET" "$SPOUT" \
            > "$LOGDIR/pack-spatialpandas-$ROWS.out" 2> "$LOGDIR/pack-spatialpandas-$ROWS.err"
        rc=$?
        set -e
        cat "$LOGDIR/pack-spatialpandas-$ROWS.out"
        wall="$(time_wall_s "$TLOG")"
        rss="$(time_peak_rss_gb "$TLOG")"
        if [[ $rc -eq 0 ]]; then
            note="$(sed -n 's/.*"import_s": \([0-9.]*\), "pack_s": \([0-9.]*\).*/imports \1s + work \2s/p' "$LOGDIR/pack-spatialpandas-$ROWS.out"), $(du -sh "$SPOUT" | cut -f1) on disk"
            RESULTS+=("$ROWS|spatialpandas|$wall|$(awk -v n="$ROWS" -v s="$wall" 'BEGIN{printf "%.0f", n/s}')|$rss|$(time_cpu "$TLOG")|ok|$note")
        else
            if [[ $rc -eq 137 || $rc -eq 124 ]]; then status="KILLED (timeout ${SP_TIMEOUT}s or out of memory)"; else status="FAILED rc=$rc"; fi
            tail -5 "$LOGDIR/pack-spatialpandas-$ROWS.err"
            RESULTS+=("$ROWS|spatialpandas|>=$wall|-|>=$rss|$(time_cpu "$TLOG")|$status|")
        fi
        echo "   load after: $(cut -d' ' -f1 /proc/loadavg)"
    fi
    echo
done

echo "== pack summary (wall, peak RSS, CPU from /usr/bin/time -v; rows/s = rows / wall; cpu_s = user+sys (share of one core)) =="
printf '%-10s %-14s %9s %12s %9s %14s  %-8s %s\n' rows tool wall_s rows/s rss_GB "cpu_s(cpu%)" status note
for r in "${RESULTS[@]}"; do
    IFS='|' read -r rows tool wall rps rss cpu status note <<<"$r"
    printf '%-10s %-14s %9s %12s %9s %14s  %-8s %s\n' "$rows" "$tool" "$wall" "$rps" "$rss" "$cpu" "$status" "$note"
done
echo
echo "== speedup and targets =="
for ROWS in "${SIZES[@]}"; do
    pw=""; sw=""; prss=""; sstatus=""; pc=""; sc=""
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r rows tool wall rps rss cpu status note <<<"$r"
        [[ "$rows" == "$ROWS" ]] || continue
        if [[ "$tool" == pointillist && "$status" == ok ]]; then pw="$wall"; prss="$rss"; pc="${cpu%%(*}"; fi
        if [[ "$tool" == spatialpandas ]]; then sw="$wall"; sstatus="$status"; sc="${cpu%%(*}"; fi
    done
    [[ -n "$pw" ]] || { echo "$ROWS rows: pointillist pack failed"; continue; }
    awk -v n="$ROWS" -v pw="$pw" -v rss="$prss" -v sw="$sw" -v st="$sstatus" -v pc="$pc" -v sc="$sc" 'BEGIN {
        scale = n / 40000000
        printf "%d rows: pointillist %.2f s, %.2f GB peak", n, pw, rss
        if (n == 40000000) printf "  [target <= 40 s: %s; <= 3 GB: %s]", (pw <= 40 ? "PASS" : "FAIL"), (rss <= 3 ? "PASS" : "FAIL")
        else printf "  [40M targets scaled to %d rows: <= %.1f s: %s]", n, 40 * scale, (pw <= 40 * scale ? "PASS" : "FAIL")
        printf "\n"
        if (sw != "") {
            s = sw; gsub(/>=/, "", s)
            if (st == "ok") printf "%d rows: speedup over spatialpandas %.1fx wall  [target >= 5x: %s]; %.1fx in CPU seconds\n", n, s / pw, (s / pw >= 5 ? "PASS" : "FAIL"), sc / pc
            else printf "%d rows: spatialpandas did not finish (%s); speedup >= %.1fx\n", n, st, s / pw
        }
    }'
done
