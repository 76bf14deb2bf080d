#!/usr/bin/env bash
# Serving at scale: a brush-like trace (z0..z14, a new range filter on every
# request; count, count_cat and mean) against a release server, in RAM and,
# as root, inside a memory cgroup smaller than the data.
#
#   scripts/bench_scale.sh DIR NUMERIC CATEGORICAL [MEM_LIMIT_MB ...]
#   scripts/bench_scale.sh bench-data/towers-40000000.pack range radio 0 512
#
# A limit of 0 means no cgroup (in RAM). For a limit, the page cache is
# dropped first and the server runs in a fresh memory cgroup (v2
# memory.max, or v1 memory.limit_in_bytes) with that limit and
# --memory-budget of half of it; the report says how many OOM kills the
# cgroup saw. TIMEOUT_MS raises the server's request deadline (whole-map
# passes over a billion rows from disk take longer than the default 10 s);
# SERVE_ARGS adds serve flags (e.g. --no-read-ahead). ZOOMS (default 0,2,4,6,8,10,12,14) tile zooms; PER_CELL (default 12) requests per
# zoom and class; PORT (default 8099); BIN (default target/release/pointillist). Writes JSON next to the dataset
# under bench-data/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help|"") sed -n '2,13p' "$0"; exit 0 ;; esac
DIR=$1 NUMERIC=$2 CATEGORICAL=$3
shift 3
LIMITS=("${@:-0}")
PORT="${PORT:-8099}"
PER_CELL="${PER_CELL:-12}"
ZOOMS="${ZOOMS:-0,2,4,6,8,10,12,14}"
BIN="${BIN:-target/release/pointillist}"
[ -x "$BIN" ] || cargo build --release --locked
NAME=$(basename "$DIR")
mkdir -p bench-data/logs
CONFIG=()
if [ -n "${TIMEOUT_MS:-}" ]; then
  printf 'timeout_ms = %d\nidle_timeout_ms = %d\n' "$TIMEOUT_MS" $((TIMEOUT_MS + 60000)) \
    > "bench-data/logs/scale-$NAME.toml"
  CONFIG=(--config "bench-data/logs/scale-$NAME.toml")
fi
read -r -a EXTRA <<< "${SERVE_ARGS:-}"
echo "serve flags: ${CONFIG[*]} ${EXTRA[*]}"
echo "uptime: $(uptime)"
echo "dataset: $DIR ($(du -sh "$DIR" | cut -f1)), $(nproc) CPUs, $(free -m | awk '/Mem:/{print $2}') MiB RAM"

cgroup_dir() { # $1 = name; prints the cgroup directory it made
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo "+memory" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    mkdir -p "/sys/fs/cgroup/$1" && echo "/sys/fs/cgroup/$1"
  else
    mkdir -p "/sys/fs/cgroup/memory/$1" && echo "/sys/fs/cgroup/memory/$1"
  fi
}

oom_kills() { # $1 = cgroup directory
  if [ -f "$1/memory.events" ]; then
    awk '/^oom_kill /{print $2}' "$1/memory.events"
  elif [ -f "$1/memory.oom_control" ]; then
    awk '/^oom_kill /{print $2}' "$1/memory.oom_control"
  else
    echo "?"
  fi
}

for LIMIT in "${LIMITS[@]}"; do
  echo
  LOG=bench-data/logs/scale-$NAME-$LIMIT.log
  if [ "$LIMIT" = 0 ]; then
    echo "== in RAM"
    "$BIN" serve "$DIR" --bind "127.0.0.1:$PORT" "${CONFIG[@]}" "${EXTRA[@]}" > "$LOG" 2>&1 &
    SERVER=$!
    CG=""
  else
    [ "$(id -u)" = 0 ] || { echo "a memory cgroup needs root" >&2; exit 1; }
    echo "== inside a ${LIMIT} MiB memory cgroup (page cache dropped first)"
    CG=$(cgroup_dir "pointillist-bench-$$-$LIMIT")
    if [ -f "$CG/memory.max" ]; then
      echo $((LIMIT << 20)) > "$CG/memory.max"
      echo 0 > "$CG/memory.swap.max" 2>/dev/null || true
    else
      echo $((LIMIT << 20)) > "$CG/memory.limit_in_bytes"
    fi
    sync
    echo 3 > /proc/sys/vm/drop_caches
    # The heap gets half the limit (the caches sized to it); the rest is
    # page cache for the mapped data, which the kernel evicts as needed.
    sh -c "echo \$\$ > $CG/cgroup.procs && exec $BIN serve $DIR --bind 127.0.0.1:$PORT --memory-budget $((LIMIT / 2)) ${CONFIG[*]} ${EXTRA[*]}" > "$LOG" 2>&1 &
    SERVER=$!
  fi
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.2
  done
  python3 scripts/scale_trace.py --url "http://127.0.0.1:$PORT" --dataset "$NAME" \
    --numeric "$NUMERIC" --categorical "$CATEGORICAL" --per-cell "$PER_CELL" --zooms "$ZOOMS" \
    --json-out "bench-data/logs/scale-$NAME-$LIMIT.json" || echo "some requests failed"
  if kill -0 "$SERVER" 2>/dev/null; then
    echo "server alive; peak RSS $(awk '/VmHWM/{print $2, $3}' /proc/$SERVER/status 2>/dev/null || echo ?)"
  else
    echo "SERVER DIED (see $LOG)"
  fi
  [ -n "$CG" ] && echo "OOM kills in the cgroup: $(oom_kills "$CG")"
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null || true
  echo "long passes logged: $(grep -c 'long pass' "$LOG" || true)"
done
