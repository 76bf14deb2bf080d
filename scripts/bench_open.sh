#!/usr/bin/env bash
# Dataset open time and memory: `pointillist info DIR`.
#
# usage: scripts/bench_open.sh [DIR=bench-data/towers-40000000.pack] [RUNS=7]
#
# Runs `pointillist info DIR` RUNS times under /usr/bin/time -v and reports
# the median "opened in X ms" that info prints (Dataset::open only), the
# median process wall time, and the peak RSS. The page cache is warm after the
# first run (the first run is reported separately; it is only cold if nothing
# read the dataset since the last reboot / cache drop). Pack the dataset first
# with scripts/bench_pack.sh; when DIR is the default and missing, this script
# generates and packs 40M towers itself.
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,12p' "$0"; exit 0 ;; esac
source "$(dirname "$0")/bench_common.sh"

ensure_binary
DIR="${1:-}"
if [[ -z "$DIR" ]]; then
    DIR="$(towers_packed 40000000)"
fi
RUNS="${2:-7}"
[[ -f "$DIR/manifest.json" ]] || die "$DIR is not a packed dataset (no manifest.json)"
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 1 ]] || die "RUNS must be a positive integer"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
print_env

echo "== pointillist info $DIR ($(du -sh "$DIR" | cut -f1) on disk) =="
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
OPEN=(); WALL=(); RSS=()
for i in $(seq 1 "$RUNS"); do
    /usr/bin/time -v -o "$TMP/time" "$POINTILLIST" info "$DIR" >"$TMP/out" 2>"$TMP/err" \
        || { cat "$TMP/err"; die "pointillist info failed"; }
    [[ $i -eq 1 ]] && sed -n '1,5p' "$TMP/out"
    o="$(sed -n 's/.*opened in \([0-9.]*\) ms.*/\1/p' "$TMP/out")"
    [[ -n "$o" ]] || die "no 'opened in X ms' in the info output"
    OPEN+=("$o"); WALL+=("$(time_wall_s "$TMP/time")"); RSS+=("$(time_peak_rss_mb "$TMP/time")")
    printf 'run %d: opened in %s ms, process wall %s s, peak RSS %s MB\n' "$i" "$o" "${WALL[-1]}" "${RSS[-1]}"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }
echo
echo "== open summary ($RUNS runs; load $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-28s %s\n' "first run open ms" "${OPEN[0]}"
printf '%-28s %s\n' "median open ms" "$(med "${OPEN[@]}")"
printf '%-28s %s\n' "median process wall s" "$(med "${WALL[@]}")"
printf '%-28s %s\n' "median peak RSS MB" "$(med "${RSS[@]}")"
printf '%-28s %s\n' "max peak RSS MB" "$(max "${RSS[@]}")"
