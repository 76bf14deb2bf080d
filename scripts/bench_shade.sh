#!/usr/bin/env bash
# Shading time (`render --timings`, median of RUNS) of spread and
# dynspread tiles, for one or more binaries side by side: each case runs
# every binary in turn before the next case, so load drifts hit all alike.
#   scripts/bench_shade.sh [DIR=bench-data/towers-10000000.pack] [RUNS=41]
#   BINS="/tmp/pointillist-old target/release/pointillist" scripts/bench_shade.sh
# DIR is a packed towers dataset (scripts/bench_pack.sh makes one).
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
DIR="${1:-$BENCH_DATA/towers-10000000.pack}"
RUNS="${2:-41}"
[[ -d "$DIR" ]] || die "no packed dataset at $DIR"
if [[ -z "${BINS:-}" ]]; then
    ensure_binary
    BINS="$POINTILLIST"
fi
read -r -a bins <<<"$BINS"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
log "uptime: $(uptime)"
header="| tile | agg | style |"
rule="|---|---|---|"
for b in "${bins[@]}"; do
    header+=" $(basename "$b") shade ms |"
    rule+="---|"
done
echo "$header"
echo "$rule"
while read -r tile agg style; do
    row="| $tile | $agg | \`$style\` |"
    for b in "${bins[@]}"; do
        # shellcheck disable=SC2086 # the style is several flags
        ms=$("$b" render "$DIR" --tile "$tile" --agg "$agg" $style -o "$OUT/t.png" \
            --timings "$RUNS" 2>/dev/null |
            python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)["shade_ms"])')
        row+=" $ms |"
    done
    echo "$row"
done <<'TILES'
8/75/96 count --spread 1
8/75/96 count --spread 3
8/75/96 count_cat:radio --spread 1
8/75/96 count_cat:radio --spread 3
12/1205/1539 count --spread 2
10/301/384 mean:range --spread 1
10/301/384 count --dynspread 0.5,3
12/1205/1539 count --dynspread 0.9,4
TILES
log "uptime: $(uptime)"
