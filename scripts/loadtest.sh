#!/usr/bin/env bash
# Load test: a realistic mixed pan/zoom trace of tile requests (scripts/make_trace.py)
# replayed by wrk against `pointillist serve` on a packed dataset, with the tile
# cache off and on, at concurrency 1, 8 and 64; then a soak at concurrency 8 with
# the cache off, sampling the server's RSS to show it stays flat.
#
# usage: scripts/loadtest.sh [DATASET_DIR=bench-data/towers-40000000.pack]
#   DURATION=30 (s per run)  SOAK=300 (s, 0 to skip)  PORT=8097  POINTILLIST=target/release/pointillist
#   HOSTILE=1 (hostile mix; 0 to skip)  HOSTILE_CONNS=2  SLOW_CLIENTS=200
#   HISTOGRAMS=1, TABLE=1 (0 skips the histogram timings, or the cache/concurrency table)
# Installs wrk (Debian package) when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET="${1:-bench-data/towers-40000000.pack}"
DURATION="${DURATION:-30}"
SOAK="${SOAK:-300}"
PORT="${PORT:-8097}"
BIN="${POINTILLIST:-target/release/pointillist}"
[ -f "$DATASET/manifest.json" ] || { echo "no packed dataset at $DATASET (scripts/bench_pack.sh makes one)" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release
if ! command -v wrk >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
OUT=bench-data/logs; mkdir -p "$OUT"
NAME=$(basename "$DATASET")
TRACE="$OUT/trace.txt"
python3 scripts/make_trace.py --dataset "$NAME" --out "$TRACE"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dataset: $DATASET ($(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rows'])" "$DATASET/manifest.json") rows)"

SERVER=""
start_server() { # $1 = cache MiB
  "$BIN" serve "$DATASET" --bind "127.0.0.1:$PORT" --cache-mb "$1" > "$OUT/loadtest-server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0; sleep 0.1; done
  echo "server did not start" >&2; cat "$OUT/loadtest-server.log" >&2; exit 1
}
stop_server() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true; SERVER=""; }
trap stop_server EXIT
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$SERVER/status"; }
hwm_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$SERVER/status"; }

# Histogram latency: a numeric histogram over every row with two filters
# (median of 9). "repeat": the same three filters each time (a histogram
# re-requested, e.g. after a pan back; each filter's bitset is cached after
# the first). "brush": the range filter changes every time, as while an
# analyst brushes `range`: the other histograms must evaluate the new filter
# (one pass over its column) and reuse the cached bitsets of the others.
if [ "${HISTOGRAMS:-1}" = 1 ]; then
start_server 0
curl -sf "http://127.0.0.1:$PORT/datasets/$NAME/histogram/range?bins=50&filter=radio:in:LTE,NR&filter=created:2015-01-01.." >/dev/null
median_ms() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]*1000}'; }
n=0
for col in range created radio; do
  same=(); brush=()
  for _ in $(seq 1 9); do
    n=$((n + 1))  # a range no request has used yet
    same+=("$(curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/datasets/$NAME/histogram/$col?bins=50&filter=radio:in:LTE,NR&filter=created:2015-01-01..&filter=range:0..5000")")
    brush+=("$(curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/datasets/$NAME/histogram/$col?bins=50&filter=radio:in:LTE,NR&filter=created:2015-01-01..&filter=range:0..$((3000 + 37 * n))")")
  done
  printf 'histogram %-8s (all rows, crossfilter of 3 filters): median %.1f ms repeat, %.1f ms brush (new range filter each time)\n' "$col" \
    "$(printf '%s\n' "${same[@]}" | median_ms)" "$(printf '%s\n' "${brush[@]}" | median_ms)"
done
stop_server
fi

# Hostile mix: the normal trace at concurrency 8, alone, then beside hostile
# traffic: world-view counts and histograms (the explorer's own world view,
# which once aborted the server), grids over the request budget (413),
# whole-world aggregates and wide point searches, plus slow clients holding
# connections open one header byte a second. Reports p99 of the normal
# requests with and without it, the hostile share, and whether the server
# survived.
if [ "${HOSTILE:-1}" = 1 ]; then
  W="bbox=-180,-85.051129,180,85.051129"
  # Whole-map work, replayed by wrk as fast as the server answers it.
  HEAVY_TRACE="$OUT/hostile-heavy.txt"
  cat > "$HEAVY_TRACE" <<EOT
/datasets/$NAME/count?$W
/datasets/$NAME/histogram/range?$W&filter=radio:in:LTE
/datasets/$NAME/aggregate?$W&width=1024&height=1024&agg=count
/datasets/$NAME/points?lon=0&lat=20&z=0&radius_px=64&limit=100
/datasets/$NAME/count?bbox=-180,-90,180,90&filter=range:1..2500
/tiles/$NAME/0/0/0.png?agg=mean:range&filter=range:1..9999&tile_size=512
EOT
  # Requests over budget or malformed, paced so that hostile requests are
  # about 5% of all.
  CHEAP_TRACE="$OUT/hostile-cheap.txt"
  cat > "$CHEAP_TRACE" <<EOT
/datasets/$NAME/aggregate?$W&width=4096&height=4096&agg=std:range
/datasets/$NAME/aggregate?$W&width=4096&height=4096&agg=count_cat:radio
/datasets/$NAME/aggregate?$W&width=4096&height=4096&agg=by:radio:mean:range
/datasets/$NAME/aggregate?$W&width=4000&height=4000&format=json
/datasets/$NAME/points?lon=0&lat=20&z=0&radius_px=NaN
/tiles/$NAME/99/0/0.png
EOT
  start_server 0
  wrk -t1 -c4 -d10s -s scripts/loadtest.lua "http://127.0.0.1:$PORT" -- "$TRACE" >/dev/null
  base=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 10s -s scripts/loadtest.lua "http://127.0.0.1:$PORT" -- "$TRACE" | grep '^RESULT')
  rate=$(python3 -c "import sys; r=float(sys.argv[1].split('rps=')[1]); print(max(1.0, r * 0.05 / 0.95))" "$base")
  python3 scripts/slow_clients.py --port "$PORT" --connections "${SLOW_CLIENTS:-200}" --seconds "$DURATION" > "$OUT/slow.txt" &
  SLOW=$!
  python3 scripts/paced_requests.py --port "$PORT" --paths "$CHEAP_TRACE" --rate "$rate" --seconds "$DURATION" > "$OUT/paced.txt" &
  PACED=$!
  wrk -t1 -c"${HOSTILE_CONNS:-2}" -d"${DURATION}s" --timeout 10s -s scripts/loadtest.lua "http://127.0.0.1:$PORT" -- "$HEAVY_TRACE" > "$OUT/hostile-wrk.txt" &
  HWRK=$!
  mixed=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 10s -s scripts/loadtest.lua "http://127.0.0.1:$PORT" -- "$TRACE" | grep '^RESULT')
  wait "$HWRK" || true; wait "$SLOW" || true; wait "$PACED" || true
  heavy=$(grep '^RESULT' "$OUT/hostile-wrk.txt")
  alive=$(kill -0 "$SERVER" 2>/dev/null && curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && echo yes || echo NO)
  python3 - "$base" "$mixed" "$heavy" "$(cat "$OUT/paced.txt")" "$(cat "$OUT/slow.txt")" "$alive" "$(hwm_mb)" <<'PY'
import sys
def kv(line):
    return {k: float(v) for k, v in (f.split("=") for f in line.split()[1:])}
base, mixed, heavy = kv(sys.argv[1]), kv(sys.argv[2]), kv(sys.argv[3])
import re
m = re.match(r"PACED requests=(\d+) statuses=(.*)", sys.argv[4])
paced = {"requests": m.group(1), "statuses": m.group(2)}
paced_n = int(paced["requests"])
hostile = heavy["requests"] + paced_n
share = hostile / (hostile + mixed["requests"]) * 100
print(f"hostile mix (concurrency 8, normal trace): p99 alone {base['p99_ms']:.1f} ms, "
      f"beside hostile traffic {mixed['p99_ms']:.1f} ms (p50 {base['p50_ms']:.1f} -> {mixed['p50_ms']:.1f} ms); "
      f"normal requests {int(mixed['requests'])}, errors {int(mixed['errors_status'] + mixed['errors_other'])}")
print(f"hostile requests: {int(hostile)} ({share:.1f}% of all): {int(heavy['requests'])} whole-map "
      f"({int(heavy['errors_status'])} non-2xx), {paced_n} over budget or malformed (statuses {paced['statuses']})")
print(f"slow clients: {sys.argv[5]}")
print(f"server alive after the run: {sys.argv[6]}; peak RSS {sys.argv[7]} MB")
PY
  stop_server
fi

if [ "${TABLE:-1}" = 1 ]; then
printf '\n%-6s %-5s %10s %8s %8s %8s %8s %10s %8s %9s\n' cache conc requests errors p50_ms p90_ms p99_ms tiles/s rss_MB peak_MB
for cache in 0 256; do
  start_server "$cache"
  # Warm the page cache and the per-zoom colour scales once, as a running server has.
  wrk -t1 -c4 -d10s -s scripts/loadtest.lua "http://127.0.0.1:$PORT" -- "$TRACE" >/dev/null
  for conc in 1 8 64; do
    threads=$(( conc < 2 ? 1 : 2 ))
    line=$(wrk -t"$threads" -c"$conc" -d"${DURATION}s" --timeout 10s -s scripts/loadtest.lua \
      "http://127.0.0.1:$PORT" -- "$TRACE" | grep '^RESULT')
    eval "$(echo "$line" | sed 's/^RESULT //')"
    printf '%-6s %-5s %10s %8s %8s %8s %8s %10s %8s %9s\n' "$([ "$cache" = 0 ] && echo off || echo on)" "$conc" \
      "$requests" "$((errors_status + errors_other))" "$p50_ms" "$p90_ms" "$p99_ms" "$rps" "$(rss_mb)" "$(hwm_mb)"
  done
  stop_server
done
fi

if [ "$SOAK" -gt 0 ]; then
  echo; echo "soak: cache off, concurrency 8, ${SOAK}s; RSS sampled every 10 s"
  start_server 0
  wrk -t2 -c8 -d"${SOAK}s" --timeout 10s -s scripts/loadtest.lua "http://127.0.0.1:$PORT" -- "$TRACE" > "$OUT/soak.txt" &
  WRK=$!
  samples=()
  while kill -0 "$WRK" 2>/dev/null; do samples+=("$(rss_mb)"); sleep 10; done
  wait "$WRK" || true
  grep '^RESULT' "$OUT/soak.txt"
  echo "RSS MB samples: ${samples[*]}"
  python3 - "${samples[@]}" <<'PY'
import sys
s = [int(x) for x in sys.argv[1:] if x]
half = len(s) // 2
first, second = s[:half] or s, s[half:] or s
print(f"RSS first half max {max(first)} MB, second half max {max(second)} MB, "
      f"growth {max(second) - max(first):+d} MB over the run (peak {max(s)} MB)")
PY
  stop_server
fi
