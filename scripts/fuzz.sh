#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of the parsers that take
# outside input. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`).
#   scripts/fuzz.sh                 # every target for 10 minutes
#   SECONDS_PER_TARGET=20 scripts/fuzz.sh cover query_params
#   FUZZ_REPLAY=1 scripts/fuzz.sh   # run every committed input once (CI):
#                                   # deterministic, no new inputs
# Seeds: fuzz/seeds/ (committed, small); the corpus grows in fuzz/corpus/
# (committed after a run, minimized with `cargo fuzz cmin`). Crashes land in
# fuzz/artifacts/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECONDS_PER_TARGET:-600}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(open_dataset query_params csv_reader cover)
export FUZZ_TMP="${FUZZ_TMP:-/dev/shm}"
[ -d "$FUZZ_TMP" ] || FUZZ_TMP=/tmp
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  if [ "${FUZZ_REPLAY:-0}" = 1 ]; then
    echo "== fuzz $t: replay the committed corpus and seeds"
    LIMIT=(-runs=0)
  else
    echo "== fuzz $t for ${SECS}s"
    LIMIT=(-max_total_time="$SECS")
  fi
  set +e
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    "${LIMIT[@]}" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 > "fuzz/$t.log" 2>&1
  rc=$?
  set -e
  grep -E "^(#[0-9]+ *(DONE|INITED)|Done|stat::|==|SUMMARY|.*panicked|.*ERROR)" "fuzz/$t.log" || true
  if [ "$rc" != 0 ]; then
    tail -n 40 "fuzz/$t.log" >&2
    echo "fuzz $t failed (exit $rc): fuzz/$t.log" >&2
    exit 1
  fi
  if ls "fuzz/artifacts/$t"/crash-* "fuzz/artifacts/$t"/oom-* "fuzz/artifacts/$t"/timeout-* >/dev/null 2>&1; then
    echo "fuzz $t found a failure: fuzz/artifacts/$t" >&2
    exit 1
  fi
done
